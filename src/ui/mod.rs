//! The top layer: [`app_ui`] runs one frame, [`window`] opens the native window. The panels,
//! one file each: [`browser`] (left), [`map`] (centre), [`model_panel`] and
//! [`inspector`] (right), and the map [`overlays`]. Panels read the [`App`] and push
//! [`crate::app::Command`]s; they never run anything long.

pub mod browser;
pub mod claim;
pub mod describe;
pub mod input;
pub mod inspector;
pub mod layout;
pub mod map;
pub mod model_panel;
pub mod overlays;
pub mod preview;
pub mod region;
pub mod review;
pub mod status;
pub mod track;
pub mod window;
pub mod writes;

use crate::app::export::WriteTarget;
use crate::app::{self, App, Command};

/// One frame of the app: drains the workers, reads keys and dropped files, draws every panel,
/// then applies the commands the frame produced. Called by eframe (`window`) and by
/// egui_kittest harnesses.
pub fn app_ui(ui: &mut egui::Ui, app: &mut App) {
    app.begin_frame();
    input::handle_dropped_files(ui.ctx(), app);
    review::handle_review_keys(ui.ctx(), app);
    input::handle_keys(ui.ctx(), app);
    frame_ui(ui, app);
    app.end_frame();
}

/// The whole window for one frame.
pub fn frame_ui(ui: &mut egui::Ui, app: &mut App) {
    app.refresh_view();
    egui::Panel::top("menu").show(ui, |ui| menu_ui(ui, app));
    egui::Panel::bottom("status").show(ui, |ui| status_ui(ui, app));
    panels_ui(ui, app);
    if app.jobs.confirm_download {
        model_panel::confirm_download_ui(ui.ctx(), app);
    }
    if app.jobs.write_confirm.is_some() {
        confirm_writes_ui(ui.ctx(), app);
    }
    if app.jobs.export_choice.is_some() {
        writes::export_choice_ui(ui.ctx(), app);
    }
}

/// The browser (left), the side panel (right), and in the centre the preview beside (or
/// above) the map, sized by [`layout`] so the map keeps a usable size and nothing overlaps:
/// each panel is capped, and the preview collapses when there is no room for it.
fn panels_ui(ui: &mut egui::Ui, app: &mut App) {
    let window_width = ui.available_width();
    let show_browser = app.viewer.show_browser;
    let mut rects = app::viewer::PanelRects::default();
    if app.viewer.show_side {
        let max = layout::side_max_width(
            ui.available_width(),
            if show_browser {
                layout::BROWSER_MIN_WIDTH
            } else {
                0.0
            },
            layout::SIDE_MIN_WIDTH,
        );
        let shown = egui::Panel::right("side")
            .resizable(true)
            .default_size(layout::side_default_width(window_width).min(max))
            .min_size(layout::SIDE_MIN_WIDTH)
            .max_size(max)
            .show(ui, |ui| {
                // Both ways: what does not fit the panel's width can be scrolled to, and the
                // panel never widens for good to fit it.
                egui::ScrollArea::both()
                    .auto_shrink([false, false])
                    .show(ui, |ui| {
                        model_panel::model_panel_ui(ui, app);
                        ui.separator();
                        inspector::inspector_ui(ui, app);
                    });
            });
        rects.side = Some(shown.response.rect);
    }
    if show_browser {
        let max = layout::side_max_width(ui.available_width(), 0.0, layout::BROWSER_MIN_WIDTH);
        let shown = egui::Panel::left("browser")
            .resizable(true)
            .default_size(layout::browser_default_width(window_width).min(max))
            .min_size(layout::BROWSER_MIN_WIDTH)
            .max_size(max)
            .show(ui, |ui| browser::browser_ui(ui, app));
        rects.browser = Some(shown.response.rect);
    }
    egui::CentralPanel::default()
        .frame(egui::Frame::NONE)
        .show(ui, |ui| {
            if app.viewer.review.is_some() {
                egui::Panel::top("review").show(ui, |ui| review::review_banner_ui(ui, app));
            }
            if app.viewer.show_preview {
                let placement = layout::preview_placement(ui.available_size());
                let shown = match placement {
                    layout::PreviewPlacement::Beside {
                        default_width,
                        max_width,
                    } => Some(
                        egui::Panel::right("preview beside")
                            .resizable(true)
                            .default_size(default_width)
                            .min_size(layout::PREVIEW_MIN_WIDTH)
                            .max_size(max_width)
                            .show(ui, |ui| preview::preview_ui(ui, app)),
                    ),
                    layout::PreviewPlacement::Above {
                        default_height,
                        max_height,
                    } => Some(
                        egui::Panel::top("preview above")
                            .resizable(true)
                            .default_size(default_height)
                            .min_size(layout::PREVIEW_MIN_HEIGHT)
                            .max_size(max_height)
                            .show(ui, |ui| preview::preview_ui(ui, app)),
                    ),
                    layout::PreviewPlacement::Collapsed => None,
                };
                rects.preview = shown.map(|s| s.response.rect);
            }
            rects.map = Some(ui.available_rect_before_wrap());
            map::map_ui(ui, app);
        });
    app.viewer.rects = rects;
}

/// Which panels are shown (a small window can hide the ones it does not need).
fn panel_toggles_ui(ui: &mut egui::Ui, app: &mut App) {
    ui.toggle_value(&mut app.viewer.show_browser, "Photos")
        .on_hover_text("Show or hide the photo browser");
    ui.toggle_value(&mut app.viewer.show_preview, "Preview")
        .on_hover_text("Show or hide the large view of the photo beside the map");
    ui.toggle_value(&mut app.viewer.show_side, "Details")
        .on_hover_text("Show or hide the model panel and the inspector");
    let reviewing = app.viewer.review.is_some();
    if ui
        .add_enabled(!reviewing, egui::Button::new("Review (R)"))
        .on_hover_text(format!(
            "Step through the unreviewed results one key press at a time: {}",
            review::REVIEW_KEYS
        ))
        .clicked()
    {
        app.commands
            .push(Command::Review(app::review::ReviewAction::Start));
    }
}

/// The dry run of "Write XMP sidecars" or "Write EXIF GPS": every file that would be written,
/// and nothing written until the user presses "Write".
fn confirm_writes_ui(ctx: &egui::Context, app: &mut App) {
    let Some(confirm) = app.jobs.write_confirm.as_ref() else {
        return;
    };
    let target = confirm.target;
    let mut command = None;
    egui::Window::new(target.title())
        .collapsible(false)
        .resizable(true)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            let writes = confirm.plan.iter().filter(|p| !p.action.is_skip()).count();
            ui.label(target.plan_note(writes));
            command = writes::write_scope_ui(ui, confirm, &mut app.jobs.confirm_estimates);
            let invalid_gps = confirm.plan.iter().any(|p| {
                matches!(
                    p.action,
                    crate::export::WriteAction::Skip(crate::export::SkipReason::InvalidGps { .. })
                )
            });
            let mut overwrite = confirm.overwrite_invalid_gps();
            if (invalid_gps || overwrite)
                && ui
                    .checkbox(&mut overwrite, "Also replace invalid EXIF GPS")
                    .on_hover_text(
                        "Photos whose EXIF GPS is present but invalid are skipped unless you ask",
                    )
                    .changed()
            {
                command = Some(Command::OverwriteInvalidGps(overwrite));
            }
            let mut iptc = app.settings.xmp_iptc_location;
            if target == WriteTarget::XmpSidecars
                && ui
                    .checkbox(&mut iptc, "Also write City, State, Country (IPTC)")
                    .on_hover_text(
                        "For accepted locations only: the nearest place's names as \
                         photoshop:City/State/Country and Iptc4xmpCore:CountryCode, as digiKam \
                         and Lightroom read them. A sidecar's own values are kept",
                    )
                    .changed()
            {
                command = Some(Command::IptcLocation(iptc));
            }
            egui::ScrollArea::vertical()
                .max_height(300.0)
                .show(ui, |ui| {
                    for planned in &confirm.plan {
                        ui.label(planned.to_string());
                    }
                });
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(writes > 0, egui::Button::new(target.confirm_label()))
                    .clicked()
                {
                    command = Some(Command::WriteConfirmed);
                }
                if ui.button("Cancel").clicked() {
                    command = Some(Command::CancelWrites);
                }
            });
        });
    app.commands.extend(command);
}

fn menu_ui(ui: &mut egui::Ui, app: &mut App) {
    ui.horizontal_wrapped(|ui| {
        ui.strong("geoloupe");
        ui.separator();
        if ui.button("Open photos…").clicked() {
            app.commands.push(Command::PickPaths { folders: false });
        }
        if ui.button("Open folder…").clicked() {
            app.commands.push(Command::PickPaths { folders: true });
        }
        ui.separator();
        let located = app.view_has_located();
        let exporting = app.jobs.export.is_some() || app.jobs.write_plan.is_some();
        if ui
            .add_enabled(located && !exporting, egui::Button::new("Export…"))
            .on_hover_text("Save the located photos shown as GPX, CSV or GeoJSON")
            .clicked()
        {
            app.commands.push(Command::OpenExport);
        }
        export_paths_ui(ui, app);
        for target in [WriteTarget::XmpSidecars, WriteTarget::ExifGps] {
            if ui
                .add_enabled(located && !exporting, egui::Button::new(target.menu_label()))
                .on_hover_text(target.menu_hint())
                .clicked()
            {
                app.commands.push(Command::PlanWrites(target));
            }
        }
        if let Some(task) = &app.jobs.export {
            ui.spinner();
            ui.label(&task.label);
        }
        if let Some(task) = &app.jobs.write_plan {
            ui.spinner();
            ui.label(&task.label);
        }
        if let Some(task) = &app.jobs.dialog {
            ui.spinner();
            ui.label(format!("A file dialog is open: {}", task.label));
        }
        ui.separator();
        if ui
            .add_enabled(app.can_undo, egui::Button::new("Undo"))
            .on_hover_text(format!(
                "Undo the last location decision ({})",
                input::shortcut_label(ui.ctx(), &input::UNDO)
            ))
            .clicked()
        {
            app.commands.push(Command::Undo);
        }
        if ui
            .add_enabled(app.can_redo, egui::Button::new("Redo"))
            .on_hover_text(format!(
                "Redo ({})",
                input::shortcut_label(ui.ctx(), &input::redo_shortcut(ui.ctx().os()))
            ))
            .clicked()
        {
            app.commands.push(Command::Redo);
        }
        ui.separator();
        let mut network = app.settings.network_enabled;
        let toggle = ui
            .add_enabled(app.network_allowed, egui::Checkbox::new(&mut network, "Network"))
            .on_hover_text(
                "Off: nothing touches the network (no map tiles, no downloads); the map shows the offline basemap",
            );
        if toggle.changed() {
            app.set_network(network);
        }
        ui.separator();
        panel_toggles_ui(ui, app);
    });
}

/// How exports write each photo's path: a file shared with others carries no more of the
/// user's folders than they choose.
fn export_paths_ui(ui: &mut egui::Ui, app: &mut App) {
    use crate::export::PathStyle;
    let label = |style: PathStyle| match style {
        PathStyle::Relative => "Paths: relative",
        PathStyle::Name => "Paths: names only",
        PathStyle::Full => "Paths: full",
    };
    egui::ComboBox::from_id_salt("export paths")
        .selected_text(label(app.settings.export_paths))
        .show_ui(ui, |ui| {
            for style in [PathStyle::Relative, PathStyle::Name, PathStyle::Full] {
                ui.selectable_value(&mut app.settings.export_paths, style, label(style));
            }
        })
        .response
        .on_hover_text(
            "How exports write each photo's path: relative to the exported file, the file name \
             only, or the full path",
        );
}

fn status_ui(ui: &mut egui::Ui, app: &mut App) {
    ui.horizontal(|ui| {
        if let Some(batch) = app.model.batch.clone() {
            let eta = batch
                .eta
                .map(|d| format!(", {} left", format_duration(d)))
                .unwrap_or_default();
            ui.add(
                egui::ProgressBar::new(batch.fraction())
                    .desired_width(260.0)
                    .text(format!("Locating {}/{}{eta}", batch.done, batch.total)),
            );
            if ui.button("Cancel").clicked() {
                app.commands.push(Command::CancelRun);
            }
        } else if let Some(summary) = &app.model.batch_summary {
            ui.label(summary);
        }
        if let Some(scan) = &app.scan_status {
            ui.separator();
            ui.spinner();
            ui.label(scan);
        }
        ui.separator();
        let total = app.collection.photos.len();
        ui.label(format!(
            "{total} {}, {} shown, {} located, {} accepted",
            if total == 1 { "photo" } else { "photos" },
            app.collection.view.len(),
            app.collection
                .photos
                .iter()
                .filter(|p| p.is_located())
                .count(),
            app.collection
                .photos
                .iter()
                .filter(|p| p.decision.is_some())
                .count()
        ));
        if let Some((median, worst)) = app.recent_frame_ms()
            && app.is_busy()
        {
            ui.separator();
            ui.label(format!(
                "frame time: median {median:.0} ms, worst {worst:.0} ms"
            ))
            .on_hover_text(
                "Work per frame (drawing and rendering) over the last 120 frames; \
                     under 17 ms keeps up with a 60 Hz display",
            );
        }
        status::messages_ui(ui, app);
    });
}

/// "1 h 02 min", "3 min 05 s", "12 s".
pub fn format_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}
