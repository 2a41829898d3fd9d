//! The photo browser: a virtualised thumbnail grid or list (only visible rows are laid out and
//! only their thumbnails requested, so 10,000 photos scroll smoothly), per-photo badges (EXIF
//! GPS, located, accepted, error), sort and filters. Keys: arrows move, Enter centres the map,
//! Space runs the model on the selection (handled in [`super::input`]).

use egui::{Color32, Sense, Vec2};

use crate::app::{App, Command, Photo, SortKey, StateFilter, Thumb, ViewMode};
use crate::domain::Origin;

const GRID_COLUMNS_ID: &str = "geoloupe.grid_columns";
const LIST_ROW_HEIGHT: f32 = 24.0;

/// The number of grid columns drawn last frame (for Up/Down in the grid).
pub fn columns_hint(ctx: &egui::Context) -> usize {
    ctx.data(|d| d.get_temp::<usize>(egui::Id::unique(GRID_COLUMNS_ID)))
        .unwrap_or(1)
}

pub fn browser_ui(ui: &mut egui::Ui, app: &mut App) {
    toolbar_ui(ui, app);
    ui.separator();
    if app.collection.photos.is_empty() {
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.label("No photos yet.");
            ui.label("Open photos or a folder, or drop them onto the window.");
        });
        return;
    }
    if app.collection.view.is_empty() {
        ui.label("No photo matches the filters.");
        return;
    }
    match app.settings.view_mode {
        ViewMode::Grid => grid_ui(ui, app),
        ViewMode::List => list_ui(ui, app),
    }
}

fn toolbar_ui(ui: &mut egui::Ui, app: &mut App) {
    let before = (
        app.settings.sort,
        app.settings.sort_descending,
        app.settings.state_filter,
        app.settings.name_filter.clone(),
        app.settings.folder_filter.clone(),
    );
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(&mut app.settings.view_mode, ViewMode::Grid, "Grid");
        ui.selectable_value(&mut app.settings.view_mode, ViewMode::List, "List");
        ui.separator();
        let label = ui.label("Sort");
        egui::ComboBox::from_id_salt("sort")
            .selected_text(format!("{:?}", app.settings.sort))
            .show_ui(ui, |ui| {
                for key in [SortKey::Path, SortKey::Name, SortKey::Date, SortKey::State] {
                    ui.selectable_value(&mut app.settings.sort, key, format!("{key:?}"));
                }
            })
            .response
            .labelled_by(label.id);
        ui.toggle_value(&mut app.settings.sort_descending, "Desc")
            .on_hover_text("Sort descending");
    });
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("Show");
        egui::ComboBox::from_id_salt("state filter")
            .selected_text(app.settings.state_filter.label())
            .show_ui(ui, |ui| {
                for f in StateFilter::ALL {
                    ui.selectable_value(&mut app.settings.state_filter, f, f.label());
                }
            })
            .response
            .labelled_by(label.id);
        let folder_text = app
            .settings
            .folder_filter
            .as_ref()
            .and_then(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "All folders".into());
        let label = ui.label("in");
        egui::ComboBox::from_id_salt("folder filter")
            .selected_text(folder_text)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut app.settings.folder_filter, None, "All folders");
                // Listed only while the menu is open (it walks every photo).
                for f in app.collection.folders() {
                    let label = f.display().to_string();
                    ui.selectable_value(&mut app.settings.folder_filter, Some(f), label);
                }
            })
            .response
            .labelled_by(label.id);
        ui.add(
            egui::TextEdit::singleline(&mut app.settings.name_filter)
                .hint_text("Filter by name")
                .desired_width(120.0),
        );
    });
    if before
        != (
            app.settings.sort,
            app.settings.sort_descending,
            app.settings.state_filter,
            app.settings.name_filter.clone(),
            app.settings.folder_filter.clone(),
        )
    {
        app.collection.mark_view_dirty();
    }
}

/// Small coloured pills: GPS (EXIF position), LOC (located by the model), OK (accepted),
/// ERR (unusable), with the meaning on hover.
fn badges(photo: &Photo) -> Vec<(&'static str, Color32, &'static str)> {
    let mut out = Vec::new();
    if photo.entry.gps().is_some() {
        out.push((
            "GPS",
            Color32::from_rgb(30, 110, 230),
            "Has an EXIF GPS position",
        ));
    }
    if photo.entry.exif.gps_estimate.is_some() {
        out.push((
            "EST",
            Color32::from_rgb(130, 80, 200),
            "Its EXIF GPS is an estimate geoloupe wrote, not a fix",
        ));
    }
    if photo.entry.exif.gps_invalid.is_some() {
        out.push((
            "BAD GPS",
            Color32::from_rgb(200, 30, 30),
            "Its EXIF GPS is invalid: never overwritten unless you ask",
        ));
    }
    if photo.is_located() {
        out.push((
            "LOC",
            Color32::from_rgb(230, 120, 10),
            "Located by the model",
        ));
    }
    if let Some(decision) = &photo.decision {
        out.push(("OK", Color32::from_rgb(20, 150, 60), "Location accepted"));
        out.push(origin_badge(&decision.origin()));
    }
    if photo.error().is_some() {
        out.push((
            "ERR",
            Color32::from_rgb(200, 30, 30),
            "Can't be used: see the inspector",
        ));
    }
    out
}

/// Where an accepted location came from (issue 12): `track`, `neighbour`, `trip`,
/// `estimate` or `hand`.
fn origin_badge(origin: &Origin) -> (&'static str, Color32, &'static str) {
    let (colour, meaning) = match origin {
        Origin::Estimate => (
            Color32::from_rgb(150, 90, 20),
            "From the model's estimate for this photo alone",
        ),
        Origin::Trip { .. } => (
            Color32::from_rgb(180, 60, 140),
            "From the trip posterior (estimates that agree in time)",
        ),
        Origin::Track { .. } => (
            Color32::from_rgb(20, 120, 160),
            "From a GPS track at the photo's capture time",
        ),
        Origin::Neighbour { .. } => (
            Color32::from_rgb(60, 110, 60),
            "From a neighbouring photo's GPS",
        ),
        Origin::Hand => (Color32::from_rgb(90, 90, 90), "Placed by hand"),
    };
    (origin.as_str(), colour, meaning)
}

fn paint_badges(painter: &egui::Painter, photo: &Photo, mut at: egui::Pos2) {
    for (text, colour, _) in badges(photo) {
        let galley = painter.layout_no_wrap(
            text.to_owned(),
            egui::FontId::proportional(9.5),
            Color32::WHITE,
        );
        let rect = egui::Rect::from_min_size(at, galley.size() + Vec2::new(6.0, 2.0));
        painter.rect_filled(rect, 3.0, colour);
        painter.galley(at + Vec2::new(3.0, 1.0), galley, Color32::WHITE);
        at.x = rect.max.x + 2.0;
    }
}

fn describe(photo: &Photo) -> String {
    let mut text = photo.entry.file_name();
    for (_, _, meaning) in badges(photo) {
        text.push_str(", ");
        text.push_str(meaning);
    }
    text
}

fn click_command(ui: &egui::Ui, response: &egui::Response, index: usize) -> Option<Command> {
    response.clicked().then(|| Command::Select {
        index,
        extend: ui.input(|i| i.modifiers.command || i.modifiers.shift),
    })
}

fn grid_ui(ui: &mut egui::Ui, app: &mut App) {
    let cell = app.settings.thumbnail_size;
    let cell_size = Vec2::new(cell, cell + 30.0);
    let spacing = 6.0;
    let columns = ((ui.available_width() + spacing) / (cell_size.x + spacing))
        .floor()
        .max(1.0) as usize;
    ui.ctx()
        .data_mut(|d| d.insert_temp(egui::Id::unique(GRID_COLUMNS_ID), columns));
    let rows = app.collection.view.len().div_ceil(columns);
    let scroll_to = scroll_target(ui, app, columns);
    let mut area = egui::ScrollArea::vertical().auto_shrink([false, false]);
    if let Some(row) = scroll_to {
        let y = row as f32 * (cell_size.y + spacing);
        area = area
            .vertical_scroll_offset(y.max(0.0) - ui.available_height() / 2.0 + cell_size.y / 2.0);
    }
    let mut visible = Vec::new();
    let mut commands = Vec::new();
    area.show_rows(ui, cell_size.y, rows, |ui, row_range| {
        ui.spacing_mut().item_spacing = Vec2::splat(spacing);
        for row in row_range {
            ui.horizontal(|ui| {
                for col in 0..columns {
                    let Some(&index) = app.collection.view.get(row * columns + col) else {
                        break;
                    };
                    visible.push(index);
                    let photo = &app.collection.photos[index];
                    let selected = app.collection.selection.contains(&index);
                    let (rect, response) =
                        ui.allocate_exact_size(cell_size, Sense::click_and_drag());
                    super::map::offer_photo_drag(&response, index, &app.collection.selection);
                    response.widget_info(|| {
                        egui::WidgetInfo::selected(
                            egui::Role::Button,
                            true,
                            selected,
                            describe(photo),
                        )
                    });
                    if ui.is_rect_visible(rect) {
                        paint_cell(
                            ui,
                            rect,
                            photo,
                            app.thumbs.get(index),
                            selected,
                            response.hovered(),
                        );
                    }
                    if let Some(c) = click_command(ui, &response, index) {
                        commands.push(c);
                    }
                    photo_menu(&response, app.collection.selection.len(), &mut commands);
                    if let Some(e) = photo.error() {
                        response.on_hover_text(e.to_owned());
                    }
                }
            });
        }
    });
    app.commands.extend(commands);
    app.want_thumbnails(&visible);
}

/// A photo's right-click menu: "Locate together" when several photos are selected.
fn photo_menu(response: &egui::Response, selected: usize, commands: &mut Vec<Command>) {
    if selected < 2 {
        return;
    }
    response.context_menu(|ui| {
        if ui
            .button(format!("Locate together ({selected})"))
            .on_hover_text("Views of one place: one answer for the selected photos")
            .clicked()
        {
            commands.push(Command::LocateTogether);
            ui.close();
        }
    });
}

fn paint_cell(
    ui: &egui::Ui,
    rect: egui::Rect,
    photo: &Photo,
    thumb: &Thumb,
    selected: bool,
    hovered: bool,
) {
    let painter = ui.painter();
    let visuals = ui.visuals();
    let image_rect = egui::Rect::from_min_size(rect.min, Vec2::splat(rect.width()));
    painter.rect_filled(image_rect, 4.0, visuals.extreme_bg_color);
    match thumb {
        Thumb::Ready(texture) => {
            let size = texture.size_vec2();
            let scale = (image_rect.width() / size.x).min(image_rect.height() / size.y);
            let drawn = egui::Rect::from_center_size(image_rect.center(), size * scale);
            painter.image(
                texture.id(),
                drawn,
                egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        Thumb::Failed(_) => {
            painter.text(
                image_rect.center(),
                egui::Align2::CENTER_CENTER,
                "can't decode",
                egui::FontId::proportional(11.0),
                visuals.error_fg_color,
            );
        }
        Thumb::None | Thumb::Requested => {
            if let Some(error) = &photo.entry.error {
                // A build without libheif says so on the tile, not "unreadable" (the file is fine).
                let label = if error.starts_with(crate::domain::NO_HEIF_SUPPORT) {
                    "no HEIC support"
                } else {
                    "unreadable"
                };
                painter.text(
                    image_rect.center(),
                    egui::Align2::CENTER_CENTER,
                    label,
                    egui::FontId::proportional(11.0),
                    visuals.error_fg_color,
                );
            }
        }
    }
    paint_badges(painter, photo, image_rect.min + Vec2::new(3.0, 3.0));
    let name = photo.entry.file_name();
    painter.text(
        egui::pos2(rect.center().x, image_rect.max.y + 4.0),
        egui::Align2::CENTER_TOP,
        truncate(&name, (rect.width() / 6.5) as usize),
        egui::FontId::proportional(11.5),
        visuals.text_color(),
    );
    if selected {
        painter.rect_stroke(
            rect.expand(2.0),
            5.0,
            egui::Stroke::new(2.5, visuals.selection.stroke.color),
            egui::StrokeKind::Outside,
        );
    } else if hovered {
        painter.rect_stroke(
            rect.expand(1.0),
            5.0,
            visuals.widgets.hovered.bg_stroke,
            egui::StrokeKind::Outside,
        );
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars.max(4) {
        text.to_owned()
    } else {
        let head: String = text.chars().take(max_chars.max(4) - 1).collect();
        format!("{head}…")
    }
}

/// The row to scroll to when the selection moved by keyboard (so it stays in sight).
fn scroll_target(ui: &egui::Ui, app: &App, columns: usize) -> Option<usize> {
    let moved = ui.input(|i| {
        i.key_pressed(egui::Key::ArrowDown)
            || i.key_pressed(egui::Key::ArrowUp)
            || i.key_pressed(egui::Key::ArrowLeft)
            || i.key_pressed(egui::Key::ArrowRight)
    });
    if !moved {
        return None;
    }
    let selected = app.collection.selected?;
    let at = app.collection.view.iter().position(|&i| i == selected)?;
    Some(at / columns.max(1))
}

fn list_ui(ui: &mut egui::Ui, app: &mut App) {
    let rows = app.collection.view.len();
    let scroll_to = scroll_target(ui, app, 1);
    let mut area = egui::ScrollArea::vertical().auto_shrink([false, false]);
    if let Some(row) = scroll_to {
        area = area.vertical_scroll_offset(
            (row as f32 * LIST_ROW_HEIGHT - ui.available_height() / 2.0).max(0.0),
        );
    }
    let mut commands = Vec::new();
    let mut visible = Vec::new();
    area.show_rows(ui, LIST_ROW_HEIGHT, rows, |ui, row_range| {
        for row in row_range {
            let index = app.collection.view[row];
            visible.push(index);
            let photo = &app.collection.photos[index];
            let selected = app.collection.selection.contains(&index);
            let (rect, response) = ui.allocate_exact_size(
                Vec2::new(ui.available_width(), LIST_ROW_HEIGHT),
                Sense::click_and_drag(),
            );
            super::map::offer_photo_drag(&response, index, &app.collection.selection);
            response.widget_info(|| {
                egui::WidgetInfo::selected(egui::Role::Button, true, selected, describe(photo))
            });
            let painter = ui.painter();
            if selected {
                painter.rect_filled(rect, 2.0, ui.visuals().selection.bg_fill);
            } else if response.hovered() {
                painter.rect_filled(rect, 2.0, ui.visuals().widgets.hovered.weak_bg_fill);
            }
            let thumb_rect = egui::Rect::from_min_size(
                rect.min + Vec2::new(2.0, 2.0),
                Vec2::splat(LIST_ROW_HEIGHT - 4.0),
            );
            if let Thumb::Ready(texture) = app.thumbs.get(index) {
                painter.image(
                    texture.id(),
                    thumb_rect,
                    egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                    Color32::WHITE,
                );
            }
            painter.text(
                egui::pos2(thumb_rect.max.x + 6.0, rect.center().y),
                egui::Align2::LEFT_CENTER,
                photo.entry.file_name(),
                egui::FontId::proportional(13.0),
                ui.visuals().text_color(),
            );
            let date = photo.entry.exif.taken_at.clone().unwrap_or_default();
            painter.text(
                egui::pos2(rect.max.x - 150.0, rect.center().y),
                egui::Align2::RIGHT_CENTER,
                date,
                egui::FontId::proportional(11.0),
                ui.visuals().weak_text_color(),
            );
            paint_badges(
                painter,
                photo,
                egui::pos2(rect.max.x - 145.0, rect.min.y + 5.0),
            );
            if let Some(c) = click_command(ui, &response, index) {
                commands.push(c);
            }
            photo_menu(&response, app.collection.selection.len(), &mut commands);
            if let Some(e) = photo.error() {
                response.on_hover_text(e.to_owned());
            }
        }
    });
    app.commands.extend(commands);
    app.want_thumbnails(&visible);
}
