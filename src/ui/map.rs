//! The map: walkers with the offline Natural Earth basemap at the bottom (always, so the map
//! is never blank), OpenStreetMap tiles over it while the network is on (disk-cached), the
//! heatmap as a semi-transparent tile layer, the place names (while the basemap is what shows)
//! and the markers plugin. Attribution of every layer shown is drawn in the corner; the heatmap
//! legend beside it.
//!
//! The wheel zooms about the cursor; dragging pans; "Fit map" (or F) frames the selected photo's
//! candidates, EXIF position and claim. The world wraps: panning past 180° comes round to the
//! other side, and beyond the antimeridian the basemap's copies of the world are drawn (walkers
//! draws one world; OpenStreetMap tiles are not repeated). A search box finds built-in places.
//! Photos dragged from the browser and dropped on the map are placed there by hand.

use std::collections::BTreeSet;

use egui::{Align2, Color32, Vec2};

use crate::app::map::{BasemapTiles, HeatLayer, HeatView, from_position, to_position};
use crate::app::{App, Command, DecisionSource};
use crate::geo::LatLon;
use crate::geo::heatmap::{colour_ramp, mercator_unit};
use crate::geo::place_search::PlaceIndex;
use crate::ui::overlays::{
    ClaimPlugin, DraggedPhotos, MarkersPlugin, PlaceLabelsPlugin, RegionPlugin, TrackPlugin,
};

/// The zoom a place chosen in the search box is shown at.
const SEARCH_ZOOM: f64 = 11.0;
/// How far one arrow key press pans the map, in points.
pub const ARROW_PAN_PX: f32 = 120.0;

pub fn map_ui(ui: &mut egui::Ui, app: &mut App) {
    egui::Frame::new()
        .inner_margin(egui::Margin::symmetric(6, 4))
        .show(ui, |ui| toolbar_ui(ui, app));
    app.ensure_tiles();
    // Zoomed in: the continuous layer (last frame's viewport; the first frame has none).
    let heat_view = app.map.viewport.map(|r| HeatView {
        centre: app.map.centre(map_home()),
        zoom: app.map.memory.zoom(),
        size_px: [r.width(), r.height()],
    });
    let selected = app.collection.selected;
    // A description's heat (issue 14) in place of the photo's. Zoomed in, the words alone have
    // a continuous layer too; combinations stay on the gallery layer.
    let photo_located = selected
        .and_then(|i| app.collection.photos.get(i))
        .is_some_and(|p| p.result.is_some());
    let words_key = app
        .describe
        .heat_key(selected.and_then(|i| app.collection.photos.get(i)?.result.as_ref()));
    let words_combined =
        words_key.is_some() && app.describe.continuous_source(photo_located).is_none();
    let continuous = app.update_continuous_heat(if words_combined { None } else { heat_view });
    let selected_photo = selected.and_then(|i| app.collection.photos.get(i));
    let selected_exif = selected_photo.and_then(|p| p.entry.gps());
    let accepted = selected_photo
        .and_then(|p| p.decision.as_ref())
        .map(|d| d.position());
    let candidates = selected_photo
        .and_then(|p| p.result.as_ref())
        .map(|r| r.candidates.clone())
        .unwrap_or_default();
    let photo_result = selected_photo.and_then(|p| p.result.as_ref());
    let heat_key = match words_key {
        Some(key) => Some(key),
        None => selected
            .zip(photo_result)
            .map(|(i, r)| format!("{i}:{}:{}", r.computed_at_unix_secs, r.heat.len())),
    };
    let describe = &app.describe;
    let heat_title = match (app.describe.answer.is_some(), continuous) {
        (true, true) => format!(
            "Heatmap: {}, continuous",
            app.describe.shown.label().to_lowercase()
        ),
        (true, false) => format!("Heatmap: {}", app.describe.shown.label().to_lowercase()),
        (false, _) => legend_title(continuous).to_owned(),
    };
    app.map.heat.set(heat_key, || {
        let points = match describe.heat_key(photo_result) {
            Some(_) => describe.heat_points(photo_result),
            None => photo_result.map(|r| r.heat.clone()).unwrap_or_default(),
        };
        (
            points.iter().map(|h| h.position).collect::<Vec<LatLon>>(),
            points.iter().map(|h| h.probability).collect::<Vec<f32>>(),
        )
    });
    let exif_positions: Vec<LatLon> = if app.settings.show_exif_markers {
        app.collection
            .photos
            .iter()
            .filter_map(|p| p.entry.gps())
            .collect()
    } else {
        Vec::new()
    };

    let claims = selected_photo.map(|p| app.claims_of(p)).unwrap_or_default();
    let region_outline = selected_photo
        .and_then(|p| app.regions.active.get(&p.entry.path))
        .map(|r| r.region.outline())
        .unwrap_or_default();
    let drawing = app.regions.drawing.as_ref().map(|d| d.vertices.clone());
    let mut region_click = None;
    let mut region_double_click = false;
    let polygon = app.regions.drawing.as_ref().is_some_and(|d| d.polygon);
    let show_heat = app.settings.show_heatmap && (continuous || !app.map.heat.is_empty());
    let opacity = app.settings.heatmap_opacity;
    let place_mode = app.map.place_mode && selected.is_some();
    let network = app.settings.network_enabled;
    let (track_line, landings, trip_line) = track_layers(app);
    let track_picking = app.sources.picking_offset && app.sources.track.is_some();
    let state = &mut app.map;
    let centre = centre_tile(&state.memory);
    let mut attributions = vec![walkers::Tiles::attribution(&state.basemap)];
    // Beyond the antimeridian (walkers draws one world): ocean, with the basemap's copies of the
    // world over it.
    let map_rect = ui.available_rect_before_wrap();
    let [r, g, b, _] = crate::app::map::basemap::OCEAN_RGBA;
    ui.painter()
        .rect_filled(map_rect, 0.0, Color32::from_rgb(r, g, b));
    paint_world_copies(
        &ui.painter().with_clip_rect(map_rect),
        map_rect,
        &state.memory,
        &mut state.basemap,
    );
    let mut map = walkers::Map::new(
        Some(&mut state.basemap),
        &mut state.memory,
        walkers::lat_lon(MAP_HOME_LAT_LON.0, MAP_HOME_LAT_LON.1),
    )
    // The wheel zooms (about the cursor) like every map; dragging pans.
    .zoom_with_ctrl(false);
    let mut tiles_missing = false;
    match state.osm.as_mut().filter(|_| network) {
        Some(osm) => {
            let loaded = walkers::Tiles::at(osm, centre).is_some();
            tiles_missing = state.tile_watch.update(std::time::Instant::now(), loaded);
            if !loaded && !tiles_missing {
                // Look again when the grace period is over, even if nothing else repaints.
                ui.ctx().request_repaint_after(crate::app::TileWatch::GRACE);
            }
            attributions.push(walkers::Tiles::attribution(osm));
            map = map.with_layer(osm, 1.0);
        }
        None => state.tile_watch.reset(),
    }
    let mut heat_layer = HeatLayer {
        continuous: continuous.then_some(&mut state.continuous),
        gallery: &mut state.heat,
    };
    if show_heat {
        attributions.push(walkers::Tiles::attribution(&heat_layer));
        map = map.with_layer(&mut heat_layer, opacity);
    }
    if !network || tiles_missing {
        map = map.with_plugin(PlaceLabelsPlugin {
            cache: &mut state.labels,
        });
    }
    map = map.with_plugin(ClaimPlugin { claims: &claims });
    map = map.with_plugin(RegionPlugin {
        outline: &region_outline,
        drawing: drawing.as_deref(),
        polygon,
        clicked: &mut region_click,
        double_clicked: &mut region_double_click,
    });
    let mut track_click = None;
    map = map.with_plugin(TrackPlugin {
        track: &track_line,
        landings: &landings,
        trip: &trip_line,
        picking: track_picking,
        clicked: &mut track_click,
    });
    map = map.with_plugin(MarkersPlugin {
        exif_positions: &exif_positions,
        selected_exif,
        candidates: &candidates,
        accepted,
        place_mode,
        output: &mut state.output,
    });
    let response = map.show(ui, |_, _, _, _| ()).response;
    let rect = response.rect;
    app.map.viewport = Some(rect);
    app.map.wrap_centre();
    // Arrow keys go to the panel clicked last: the map, or (anywhere else) the browser.
    if let Some(pressed_at) = ui.input(|i| {
        i.pointer
            .any_pressed()
            .then(|| i.pointer.interact_pos())
            .flatten()
    }) {
        app.map.keys_to_map = rect.contains(pressed_at);
    }

    let attribution = attribution_ui(ui, rect, &attributions, network);
    if tiles_missing {
        tiles_missing_ui(ui, rect);
    }
    if show_heat {
        // Beside the attribution where the map is wide enough, above it where it is not.
        let bottom = if rect.left() + LEGEND_WIDTH + 16.0 > attribution.left() {
            attribution.top() - 4.0
        } else {
            rect.bottom() - 8.0
        };
        legend_ui(
            ui,
            egui::pos2(rect.left() + 8.0, bottom),
            opacity,
            &heat_title,
        );
    }
    zoom_buttons_ui(ui, rect, app);
    search_ui(ui, rect, app);
    drag_hint_ui(ui);

    region_draw(ui, app, selected, region_click, region_double_click);
    if let Some(at) = track_click {
        app.commands.push(Command::TrackClicked(at));
    }
    let output = app.map.output.clone();
    if let Some(rank) = output.clicked_rank
        && let Some(c) = candidates.iter().find(|c| c.rank == rank)
    {
        app.commands.push(Command::CenterMap(c.position));
    }
    if let Some((photos, position)) = output.dropped {
        for index in photos {
            app.commands.push(Command::Accept {
                index,
                position,
                source: DecisionSource::Manual,
            });
        }
    }
    if let (Some(index), Some(position)) = (selected, output.placed) {
        app.commands.push(Command::Accept {
            index,
            position,
            source: DecisionSource::Manual,
        });
    }
}

/// The OpenStreetMap tile under the map's centre at the zoom walkers draws.
fn centre_tile(memory: &walkers::MapMemory) -> walkers::TileId {
    let centre = memory
        .detached()
        .map(from_position)
        .unwrap_or(LatLon::new(MAP_HOME_LAT_LON.0, MAP_HOME_LAT_LON.1));
    let zoom = memory.zoom().round().clamp(0.0, 19.0) as u8;
    let (x, y) = crate::geo::heatmap::mercator_unit(centre);
    let n = 1u32 << zoom;
    let index = |unit: f64| ((unit * f64::from(n)) as u32).min(n - 1);
    walkers::TileId {
        x: index(x),
        y: index(y),
        zoom,
    }
}

/// Where the map centres until it is moved: `(lat, lon)` in degrees.
const MAP_HOME_LAT_LON: (f64, f64) = (20.0, 0.0);

/// The map's home as a [`LatLon`].
pub fn map_home() -> LatLon {
    LatLon::new(MAP_HOME_LAT_LON.0, MAP_HOME_LAT_LON.1)
}

/// Frames [`App::fit_points`]; false when there is nothing to frame.
/// What the track overlay draws: the track, the preview's landings, the trip's path.
fn track_layers(app: &App) -> (Vec<LatLon>, Vec<LatLon>, Vec<LatLon>) {
    let track = app
        .sources
        .track
        .as_ref()
        .map(|t| t.polyline())
        .unwrap_or_default();
    let landings = app
        .sources
        .preview
        .iter()
        .filter_map(|item| match item.landing {
            crate::app::track::Landing::Lands { position, .. } => Some(position),
            _ => None,
        })
        .collect();
    let trip = app
        .sources
        .trip
        .as_ref()
        .map(|t| t.points.iter().map(|p| p.position).collect())
        .unwrap_or_default();
    (track, landings, trip)
}

pub fn fit_map(app: &mut App) -> bool {
    let points = app.fit_points();
    app.map.fit(&points)
}

/// Makes a browser cell a drag source: dragging it carries the selection when the cell is
/// part of it, else just this photo ([`DraggedPhotos`]), to be dropped on the map.
pub fn offer_photo_drag(response: &egui::Response, index: usize, selection: &BTreeSet<usize>) {
    if response.drag_started() {
        let photos = if selection.contains(&index) {
            selection.iter().copied().collect()
        } else {
            vec![index]
        };
        egui::DragAndDrop::set_payload(&response.ctx, DraggedPhotos(photos));
    }
}

/// While photos are dragged: what dropping them does, beside the pointer.
fn drag_hint_ui(ui: &egui::Ui) {
    let Some(photos) = egui::DragAndDrop::payload::<DraggedPhotos>(ui.ctx()) else {
        return;
    };
    let Some(pointer) = ui.ctx().pointer_latest_pos() else {
        return;
    };
    let n = photos.0.len();
    egui::Area::new(egui::Id::unique("map drag hint"))
        .fixed_pos(pointer + Vec2::new(14.0, 14.0))
        .order(egui::Order::Tooltip)
        .interactable(false)
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.label(if n == 1 {
                    "Drop on the map to place this photo".to_owned()
                } else {
                    format!("Drop on the map to place these {n} photos")
                });
            });
        });
}

/// The basemap's copies of the world east and west of the one walkers draws (tiles whose
/// column is outside `0..2^zoom`), in the same tile grid walkers uses.
fn paint_world_copies(
    painter: &egui::Painter,
    rect: egui::Rect,
    memory: &walkers::MapMemory,
    basemap: &mut BasemapTiles,
) {
    let zoom = memory.zoom();
    let tile_zoom = zoom.round().clamp(0.0, 19.0) as u8;
    let n = 1i64 << tile_zoom;
    let world_px = 256.0 * 2f64.powf(zoom);
    let tile_px = (world_px / n as f64) as f32;
    let centre = memory.detached().map(from_position).unwrap_or(map_home());
    let (cx, cy) = mercator_unit(centre);
    let half = [
        f64::from(rect.width()) / 2.0 / world_px,
        f64::from(rect.height()) / 2.0 / world_px,
    ];
    let (left, right) = (cx - half[0], cx + half[0]);
    if left >= 0.0 && right <= 1.0 {
        return;
    }
    let column = |unit: f64| (unit * n as f64).floor() as i64;
    let (top, bottom) = (column(cy - half[1]).max(0), column(cy + half[1]).min(n - 1));
    let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
    for ty in top..=bottom {
        for tx in column(left)..=column(right) {
            if (0..n).contains(&tx) {
                continue;
            }
            let id = walkers::TileId {
                x: tx.rem_euclid(n) as u32,
                y: ty as u32,
                zoom: tile_zoom,
            };
            let Some(texture) = basemap.texture(id) else {
                continue;
            };
            let min = rect.center()
                + Vec2::new(
                    ((tx as f64 / n as f64 - cx) * world_px) as f32,
                    ((ty as f64 / n as f64 - cy) * world_px) as f32,
                );
            painter.image(
                texture.id(),
                egui::Rect::from_min_size(min, Vec2::splat(tile_px)),
                uv,
                Color32::WHITE,
            );
        }
    }
}

/// The place search box at the map's top left: typing lists built-in places (name, region,
/// country); choosing one centres the map there.
fn search_ui(ui: &mut egui::Ui, rect: egui::Rect, app: &mut App) {
    egui::Area::new(egui::Id::unique("map place search"))
        .fixed_pos(rect.left_top() + Vec2::new(8.0, 8.0))
        .order(egui::Order::Middle)
        .constrain_to(rect)
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                // Clear of the zoom buttons on the right.
                ui.set_max_width((rect.width() - 120.0).clamp(160.0, 336.0));
                crate::ui::describe::describe_ui(ui, rect, app);
                let search = &mut app.map.search;
                let edit = ui.horizontal(|ui| {
                    let label = ui.label("Find place");
                    ui.add(
                        egui::TextEdit::singleline(&mut search.query)
                            .hint_text("town or city")
                            // Narrower on a small map, clear of the zoom buttons.
                            .desired_width((rect.width() - 190.0).clamp(80.0, 170.0)),
                    )
                    .labelled_by(label.id)
                });
                let edit = edit.inner;
                let query = search.query.trim().to_owned();
                if query != search.searched {
                    match PlaceIndex::embedded_if_ready() {
                        Some(index) => {
                            search.hits = index.search(&query, 8);
                            search.searched = query.clone();
                        }
                        None => {
                            ui.label(egui::RichText::new("Loading places…").weak());
                            ui.ctx()
                                .request_repaint_after(std::time::Duration::from_millis(100));
                        }
                    }
                }
                if query.is_empty() || query != search.searched {
                    return;
                }
                if search.hits.is_empty() {
                    ui.label(egui::RichText::new("No place of that name").weak());
                    return;
                }
                let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                let mut chosen = enter.then(|| search.hits[0].position);
                let mut place_photo = None;
                let selected = app.collection.selected;
                for hit in &search.hits {
                    ui.horizontal(|ui| {
                        if ui
                            .add(egui::Button::new(&hit.label).frame(false))
                            .on_hover_text(format!("Show {} on the map", hit.position))
                            .clicked()
                        {
                            chosen = Some(hit.position);
                        }
                        if let Some(index) = selected
                            && ui
                                .small_button("Place photo")
                                .on_hover_text("Place the selected photo here (by hand)")
                                .clicked()
                        {
                            chosen = Some(hit.position);
                            place_photo = Some((index, hit.position));
                        }
                    });
                }
                if let Some(at) = chosen {
                    search.hits.clear();
                    search.query.clear();
                    search.searched.clear();
                    app.map.center_at(at);
                    let _ = app.map.memory.set_zoom(SEARCH_ZOOM);
                }
                if let Some((index, position)) = place_photo {
                    app.commands.push(Command::Accept {
                        index,
                        position,
                        source: DecisionSource::Manual,
                    });
                }
            });
        });
}

fn tiles_missing_ui(ui: &egui::Ui, rect: egui::Rect) {
    egui::Area::new(egui::Id::unique("map tiles missing"))
        .fixed_pos(rect.left_top() + Vec2::new(8.0, 52.0))
        .order(egui::Order::Foreground)
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    "OpenStreetMap tiles are not loading: showing the offline basemap",
                )
                .on_hover_text(
                    "No answer from tile.openstreetmap.org (no network, a proxy or a firewall?). \
                     Coastlines and borders come from the built-in Natural Earth basemap.",
                );
            });
        });
}

fn toolbar_ui(ui: &mut egui::Ui, app: &mut App) {
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut app.settings.show_heatmap, "Heatmap");
        ui.add_enabled(
            app.settings.show_heatmap,
            egui::Slider::new(&mut app.settings.heatmap_opacity, 0.0..=1.0).text("opacity"),
        );
        ui.checkbox(&mut app.settings.show_exif_markers, "EXIF positions");
        ui.add_enabled(
            app.collection.selected.is_some(),
            egui::Checkbox::new(&mut app.map.place_mode, "Place by hand"),
        )
        .on_hover_text(
            "Click the map to set the selected photo's location; drag the green pin to move it",
        );
        if !app.settings.network_enabled {
            ui.label(egui::RichText::new("Offline basemap").weak())
                .on_hover_text("The network is off: coastlines and borders from Natural Earth");
        }
    });
}

fn zoom_buttons_ui(ui: &mut egui::Ui, rect: egui::Rect, app: &mut App) {
    egui::Area::new(egui::Id::unique("map zoom"))
        .pivot(Align2::RIGHT_TOP)
        .fixed_pos(rect.right_top() + Vec2::new(-10.0, 10.0))
        .show(ui.ctx(), |ui| {
            ui.vertical(|ui| {
                if ui.button(" + ").on_hover_text("Zoom in").clicked() {
                    let _ = app.map.memory.zoom_in();
                }
                if ui.button(" - ").on_hover_text("Zoom out").clicked() {
                    let _ = app.map.memory.zoom_out();
                }
                if ui
                    .add_enabled(!app.fit_points().is_empty(), egui::Button::new("Fit map"))
                    .on_hover_text(
                        "Frame the selected photo's candidates, EXIF position and claim (F)",
                    )
                    .clicked()
                {
                    fit_map(app);
                }
                if let Some(p) = app.collection.selected_photo()
                    && let Some(at) = p
                        .decision
                        .as_ref()
                        .map(|d| d.position())
                        .or(p.result.as_ref().and_then(|r| r.best()).map(|c| c.position))
                        .or(p.entry.gps())
                    && ui
                        .add(egui::Button::new("Centre").wrap_mode(egui::TextWrapMode::Extend))
                        .on_hover_text("Centre on the photo")
                        .clicked()
                {
                    app.map.memory.center_at(to_position(at));
                }
            });
        });
}

/// The legend's width with its frame, in points.
const LEGEND_WIDTH: f32 = 250.0;

/// Draws the attributions in the map's bottom right corner; returns where.
fn attribution_ui(
    ui: &mut egui::Ui,
    rect: egui::Rect,
    attributions: &[walkers::sources::Attribution],
    network: bool,
) -> egui::Rect {
    egui::Area::new(egui::Id::unique("map attribution"))
        .pivot(Align2::RIGHT_BOTTOM)
        .fixed_pos(rect.right_bottom() - Vec2::new(4.0, 4.0))
        .show(ui.ctx(), |ui| {
            egui::Frame::new()
                .fill(Color32::from_white_alpha(200))
                .inner_margin(4)
                .corner_radius(3)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.spacing_mut().item_spacing.x = 4.0;
                        for (i, a) in attributions.iter().enumerate() {
                            if i > 0 {
                                ui.label(egui::RichText::new("·").color(Color32::DARK_GRAY));
                            }
                            let text = if a.text.contains("OpenStreetMap") {
                                format!("© {}", a.text)
                            } else {
                                a.text.to_owned()
                            };
                            if network {
                                ui.hyperlink_to(
                                    egui::RichText::new(text).small().color(Color32::DARK_BLUE),
                                    a.url,
                                );
                            } else {
                                ui.label(egui::RichText::new(text).small().color(Color32::BLACK));
                            }
                        }
                    });
                });
        })
        .response
        .rect
}

/// The legend's title for the layer shown (the continuous layer zoomed in, else the gallery's).
pub fn legend_title(continuous: bool) -> &'static str {
    if continuous {
        "Heatmap: continuous (location encoder)"
    } else {
        "Heatmap: gallery points"
    }
}

/// What the legend's colours mean: the same in both layers.
pub const LEGEND_MEANING: &str = "Probability relative to the best gallery point";

/// The heatmap's legend, its bottom left corner at `left_bottom`: which layer is shown and
/// what its colours mean.
fn legend_ui(ui: &mut egui::Ui, left_bottom: egui::Pos2, opacity: f32, title: &str) {
    egui::Area::new(egui::Id::unique("heat legend"))
        .pivot(Align2::LEFT_BOTTOM)
        .fixed_pos(left_bottom)
        .show(ui.ctx(), |ui| {
            egui::Frame::new()
                .fill(Color32::from_white_alpha(210))
                .inner_margin(6)
                .corner_radius(4)
                .show(ui, |ui| {
                    ui.label(
                        egui::RichText::new(title)
                            .small()
                            .strong()
                            .color(Color32::BLACK),
                    );
                    ui.label(
                        egui::RichText::new(LEGEND_MEANING)
                            .small()
                            .color(Color32::BLACK),
                    )
                    .on_hover_text(
                        "exp(logit − the best gallery logit): 1 (red) where a point scores as \
                         well as the photo's best gallery candidate. Zoomed in, the location \
                         encoder is sampled between the gallery's points, on the same scale.",
                    );
                    let (bar, _) =
                        ui.allocate_exact_size(Vec2::new(180.0, 12.0), egui::Sense::hover());
                    let steps = 60;
                    for s in 0..steps {
                        let t = (s as f32 + 0.5) / steps as f32;
                        let [r, g, b, a] = colour_ramp(t);
                        let x0 = bar.min.x + bar.width() * s as f32 / steps as f32;
                        let x1 = bar.min.x + bar.width() * (s + 1) as f32 / steps as f32;
                        ui.painter().rect_filled(
                            egui::Rect::from_min_max(
                                egui::pos2(x0, bar.min.y),
                                egui::pos2(x1, bar.max.y),
                            ),
                            0.0,
                            Color32::from_rgba_unmultiplied(
                                r,
                                g,
                                b,
                                (f32::from(a) * opacity) as u8,
                            ),
                        );
                    }
                    ui.horizontal(|ui| {
                        ui.label(egui::RichText::new("low").small().color(Color32::BLACK));
                        ui.add_space(120.0);
                        ui.label(egui::RichText::new("best").small().color(Color32::BLACK));
                    });
                });
        });
}

/// The draw mode: two clicked corners make a box, or clicked vertices a polygon (closed by a
/// double click or Enter), that the selected photos are restricted to; Esc cancels.
fn region_draw(
    ui: &egui::Ui,
    app: &mut App,
    selected: Option<usize>,
    clicked: Option<LatLon>,
    double_clicked: bool,
) {
    let Some(drawing) = app.regions.drawing.as_mut() else {
        return;
    };
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        app.commands.push(Command::DrawRegion(false));
        return;
    }
    if let Some(point) = clicked {
        drawing.vertices.push(point);
    }
    let region = if drawing.polygon {
        let close = double_clicked || ui.input(|i| i.key_pressed(egui::Key::Enter));
        if !close || drawing.vertices.len() < 3 {
            return;
        }
        match crate::geo::Region::polygon(drawing.vertices.clone()) {
            Some(region) => region,
            None => return,
        }
    } else {
        if drawing.vertices.len() < 2 {
            return;
        }
        crate::geo::Region::Box(crate::geo::GeoBox::from_corners(
            drawing.vertices[0],
            drawing.vertices[1],
        ))
    };
    app.commands.push(Command::DrawRegion(false));
    let Some(index) = selected else {
        return;
    };
    let paths = app.collection.targets_of(index);
    // A box can be typed too: show it in the field.
    if let (Some(path), crate::geo::Region::Box(b)) = (paths.first(), &region) {
        app.regions.inputs.insert(path.clone(), b.spec());
    }
    app.commands.push(Command::RestrictTo { paths, region });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::TileWatch;
    use std::time::{Duration, Instant};

    #[test]
    fn centre_tile_follows_the_map() {
        let mut memory = walkers::MapMemory::default();
        memory.set_zoom(2.0).expect("zoom 2");
        // Home (20° N, 0°) at zoom 2: column 2 of 4, row 1 of 4.
        assert_eq!(
            centre_tile(&memory),
            walkers::TileId {
                x: 2,
                y: 1,
                zoom: 2
            }
        );
        // Sydney (33.87° S, 151.21° E) at zoom 10: the OSM tile 942, 614.
        memory.center_at(to_position(LatLon::new(-33.87, 151.21)));
        memory.set_zoom(10.0).expect("zoom 10");
        assert_eq!(
            centre_tile(&memory),
            walkers::TileId {
                x: 942,
                y: 614,
                zoom: 10
            }
        );
    }

    #[test]
    fn tile_watch_speaks_up_only_after_the_grace_period() {
        let mut watch = TileWatch::default();
        let t0 = Instant::now();
        assert!(!watch.update(t0, false));
        assert!(!watch.update(t0 + TileWatch::GRACE - Duration::from_millis(1), false));
        assert!(watch.update(t0 + TileWatch::GRACE, false));
        // A tile arrives: quiet again, and the wait starts over.
        assert!(!watch.update(t0 + TileWatch::GRACE * 2, true));
        assert!(!watch.update(t0 + TileWatch::GRACE * 2, false));
        assert!(watch.update(t0 + TileWatch::GRACE * 3, false));
        watch.reset();
        assert!(!watch.update(t0 + TileWatch::GRACE * 3, false));
    }
}
