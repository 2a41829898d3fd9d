//! The preview pane beside the map: the selected photo large (decoded off the UI thread, see
//! [`crate::app::preview`]), zoomable to 100 % (wheel about the pointer, drag to pan,
//! double-click or the buttons for fit / 100 %), its EXIF summary (camera, time, size,
//! orientation applied), and compare mode: a pinned photo beside the selected one, each with
//! its own zoom ("are these the same place?").

use crate::app::preview::{Detail, PreviewState, ZoomPan};
use crate::app::{App, Command};

pub fn preview_ui(ui: &mut egui::Ui, app: &mut App) {
    let Some(selected) = app.collection.selected else {
        ui.centered_and_justified(|ui| ui.label("Select a photo to see it large."));
        return;
    };
    let compare = app.viewer.compare_with.filter(|&c| c != selected);
    ui.horizontal_wrapped(|ui| {
        ui.strong("Preview");
        match compare {
            None => {
                if ui
                    .button("Compare…")
                    .on_hover_text(
                        "Pin this photo, then select another: both are shown side by side",
                    )
                    .clicked()
                {
                    app.commands.push(Command::CompareWith(Some(selected)));
                }
            }
            Some(_) => {
                if ui.button("Stop comparing").clicked() {
                    app.commands.push(Command::CompareWith(None));
                }
            }
        }
        if app.viewer.compare_with == Some(selected) {
            ui.label(egui::RichText::new("Pinned: now select the photo to compare").weak());
        }
    });
    match compare {
        None => {
            if app.viewer.zoom_for != Some(selected) {
                app.viewer.zoom = ZoomPan::FIT;
                app.viewer.zoom_for = Some(selected);
            }
            let mut zoom = app.viewer.zoom;
            photo_pane_ui(ui, app, selected, &mut zoom);
            app.viewer.zoom = zoom;
        }
        Some(pinned) => {
            let mut left = app.viewer.compare_zoom;
            let mut right = app.viewer.zoom;
            ui.columns(2, |columns| {
                photo_pane_ui(&mut columns[0], app, pinned, &mut left);
                photo_pane_ui(&mut columns[1], app, selected, &mut right);
            });
            app.viewer.compare_zoom = left;
            app.viewer.zoom = right;
            app.viewer.zoom_for = Some(selected);
        }
    }
}

/// One photo, zoomable, with its summary below.
fn photo_pane_ui(ui: &mut egui::Ui, app: &mut App, index: usize, zoom: &mut ZoomPan) {
    let Some(photo) = app.collection.photos.get(index) else {
        return;
    };
    let path = photo.entry.path.clone();
    let name = photo.entry.file_name();
    let ctx = app.ctx.clone();
    let repaint_ctx = ctx.clone();
    let repaint = move || -> crate::domain::RepaintFn {
        let ctx = repaint_ctx.clone();
        Box::new(move || ctx.request_repaint())
    };
    let state = app
        .viewer
        .previews
        .want(&ctx, &path, Detail::Preview, repaint.clone());
    let ppp = ui.ctx().pixels_per_point();
    // The pane's size is known before its title row, which shows the zoom it is drawn at.
    let title_height = ui.spacing().interact_size.y + ui.spacing().item_spacing.y;
    let summary_height = ui.text_style_height(&egui::TextStyle::Small) * 2.0 + 8.0;
    let pane_size = egui::vec2(
        ui.available_width(),
        (ui.available_height() - title_height - summary_height).max(40.0),
    );
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new(&name).strong());
        if let PreviewState::Ready(preview) = &state {
            ui.label(format!(
                "{:.0} %",
                zoom.percent(preview.image_px(), pane_size, ppp)
            ));
        }
    });
    let (pane, response) = ui.allocate_exact_size(pane_size, egui::Sense::click_and_drag());
    response.widget_info(|| {
        egui::WidgetInfo::labeled(egui::Role::Image, true, format!("Preview of {name}"))
    });
    ui.painter()
        .rect_filled(pane, 2.0, ui.visuals().extreme_bg_color);
    match &state {
        PreviewState::Loading => {
            ui.put(
                egui::Rect::from_center_size(pane.center(), egui::vec2(24.0, 24.0)),
                egui::Spinner::new(),
            );
        }
        PreviewState::Failed(error) => {
            ui.painter().text(
                pane.center(),
                egui::Align2::CENTER_CENTER,
                format!("Can't show this photo: {error}"),
                egui::FontId::proportional(12.0),
                ui.visuals().error_fg_color,
            );
        }
        PreviewState::Ready(preview) => {
            let image_px = preview.image_px();
            if response.hovered() {
                let (scroll, pinch) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
                let factor = pinch * (scroll / 200.0).exp();
                if (factor - 1.0).abs() > 1e-4
                    && let Some(pointer) = response.hover_pos()
                {
                    zoom.zoom_about(factor, pointer, image_px, pane);
                }
            }
            if response.dragged() {
                zoom.pan_by(response.drag_delta(), image_px, pane.size());
            }
            if response.double_clicked() {
                if zoom.scale.is_some() {
                    *zoom = ZoomPan::FIT;
                } else {
                    zoom.set_scale(1.0 / ppp, image_px, pane);
                }
            }
            if zoom.needs_full_detail(image_px, preview.texture_px(), pane.size(), ppp) {
                let _ = app.viewer.previews.want(&ctx, &path, Detail::Full, repaint);
            }
            let drawn = zoom.image_rect(image_px, pane);
            ui.painter_at(pane).image(
                preview.texture.id(),
                drawn,
                egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                egui::Color32::WHITE,
            );
            ui.horizontal_wrapped(|ui| {
                if ui.small_button("Fit").clicked() {
                    *zoom = ZoomPan::FIT;
                }
                if ui
                    .small_button("100 %")
                    .on_hover_text("One photo pixel per screen pixel (double-click toggles)")
                    .clicked()
                {
                    zoom.set_scale(1.0 / ppp, image_px, pane);
                }
                ui.label(egui::RichText::new(preview.facts.summary()).small());
            });
        }
    }
}
