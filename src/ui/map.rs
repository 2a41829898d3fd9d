//! The map: walkers with the offline Natural Earth basemap at the bottom (always, so the map
//! is never blank), OpenStreetMap tiles over it while the network is on (disk-cached), the
//! heatmap as a semi-transparent tile layer, and the markers plugin. Attribution of every layer
//! shown is drawn in the corner; the heatmap legend beside it.

use egui::{Align2, Color32, Vec2};

use crate::app::map::{from_position, to_position};
use crate::app::{App, Command, DecisionSource};
use crate::geo::LatLon;
use crate::geo::heatmap::colour_ramp;
use crate::ui::overlays::{ClaimPlugin, MarkersPlugin};

pub fn map_ui(ui: &mut egui::Ui, app: &mut App) {
    egui::Frame::new()
        .inner_margin(egui::Margin::symmetric(6, 4))
        .show(ui, |ui| toolbar_ui(ui, app));
    app.ensure_tiles();

    let selected = app.collection.selected;
    let selected_photo = selected.and_then(|i| app.collection.photos.get(i));
    let selected_exif = selected_photo.and_then(|p| p.entry.gps());
    let accepted = selected_photo
        .and_then(|p| p.decision)
        .map(|d| d.position());
    let candidates = selected_photo
        .and_then(|p| p.result.as_ref())
        .map(|r| r.candidates.clone())
        .unwrap_or_default();
    let heat_key = selected
        .zip(selected_photo.and_then(|p| p.result.as_ref()))
        .map(|(i, r)| format!("{i}:{}:{}", r.computed_at_unix_secs, r.heat.len()));
    let heat_source = selected_photo
        .and_then(|p| p.result.as_ref())
        .map(|r| {
            (
                r.heat.iter().map(|h| h.position).collect::<Vec<LatLon>>(),
                r.heat.iter().map(|h| h.probability).collect::<Vec<f32>>(),
            )
        })
        .unwrap_or_default();
    app.map.heat.set(heat_key, move || heat_source);
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
    let show_heat = app.settings.show_heatmap && !app.map.heat.is_empty();
    let opacity = app.settings.heatmap_opacity;
    let place_mode = app.map.place_mode && selected.is_some();
    let network = app.settings.network_enabled;
    let state = &mut app.map;
    let centre = centre_tile(&state.memory);
    let mut attributions = vec![walkers::Tiles::attribution(&state.basemap)];
    let mut map = walkers::Map::new(
        Some(&mut state.basemap),
        &mut state.memory,
        walkers::lat_lon(MAP_HOME_LAT_LON.0, MAP_HOME_LAT_LON.1),
    );
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
    if show_heat {
        attributions.push(walkers::Tiles::attribution(&state.heat));
        map = map.with_layer(&mut state.heat, opacity);
    }
    map = map.with_plugin(ClaimPlugin { claims: &claims });
    map = map.with_plugin(MarkersPlugin {
        exif_positions: &exif_positions,
        selected_exif,
        candidates: &candidates,
        accepted,
        place_mode,
        output: &mut state.output,
    });
    // Beyond the antimeridian (walkers does not wrap the world) it is ocean, not a hole.
    let [r, g, b, _] = crate::app::map::basemap::OCEAN_RGBA;
    ui.painter().rect_filled(
        ui.available_rect_before_wrap(),
        0.0,
        Color32::from_rgb(r, g, b),
    );
    let response = map.show(ui, |_, _, _, _| ()).response;
    let rect = response.rect;

    attribution_ui(ui, rect, &attributions, network);
    if tiles_missing {
        tiles_missing_ui(ui, rect);
    }
    if show_heat {
        legend_ui(ui, rect, opacity);
    }
    zoom_buttons_ui(ui, rect, app);

    let output = app.map.output.clone();
    if let Some(rank) = output.clicked_rank
        && let Some(c) = candidates.iter().find(|c| c.rank == rank)
    {
        app.commands.push(Command::CenterMap(c.position));
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

fn tiles_missing_ui(ui: &egui::Ui, rect: egui::Rect) {
    egui::Area::new(egui::Id::unique("map tiles missing"))
        .fixed_pos(rect.left_top() + Vec2::new(8.0, 8.0))
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
                if let Some(p) = app.collection.selected_photo()
                    && let Some(at) = p
                        .decision
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

fn attribution_ui(
    ui: &mut egui::Ui,
    rect: egui::Rect,
    attributions: &[walkers::sources::Attribution],
    network: bool,
) {
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
        });
}

fn legend_ui(ui: &mut egui::Ui, rect: egui::Rect, opacity: f32) {
    egui::Area::new(egui::Id::unique("heat legend"))
        .pivot(Align2::LEFT_BOTTOM)
        .fixed_pos(rect.left_bottom() + Vec2::new(8.0, -8.0))
        .show(ui.ctx(), |ui| {
            egui::Frame::new()
                .fill(Color32::from_white_alpha(210))
                .inner_margin(6)
                .corner_radius(4)
                .show(ui, |ui| {
                    ui.label(
                        egui::RichText::new("Probability (relative to the peak)")
                            .small()
                            .color(Color32::BLACK),
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
                        ui.label(egui::RichText::new("peak").small().color(Color32::BLACK));
                    });
                });
        });
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
