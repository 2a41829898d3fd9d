//! The model panel: which model files are installed (and verified), import and download
//! (download only after confirming, with progress and cancel), device, top-k, run on the
//! selection or on every photo shown, and the batch's progress with its time left.

use crate::app::{App, Command, ModelChoice, ModelState};
use crate::model::DeviceChoice;

pub fn model_panel_ui(ui: &mut egui::Ui, app: &mut App) {
    ui.heading("Model");
    match &app.model.state {
        ModelState::Ready(p) => {
            ui.label(format!("Ready: {} on {}", p.model, p.device));
        }
        ModelState::Loading(stage) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(stage);
            });
        }
        ModelState::Failed(e) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("Could not load: {e}"));
        }
        ModelState::NotLoaded(reason) => {
            ui.label(reason.as_deref().unwrap_or("Not loaded.").to_owned());
        }
    }
    if matches!(app.model.choice, ModelChoice::Installed) {
        files_ui(ui, app);
    }
    ui.add_space(4.0);
    egui::Grid::new("model settings")
        .num_columns(2)
        .show(ui, |ui| {
            let label = ui.label("Device");
            let before = app.settings.device;
            egui::ComboBox::from_id_salt("device")
                .selected_text(format!("{:?}", app.settings.device))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut app.settings.device, DeviceChoice::Cpu, "CPU");
                    if cfg!(feature = "cuda") {
                        ui.selectable_value(&mut app.settings.device, DeviceChoice::Cuda, "CUDA");
                    }
                    if cfg!(feature = "metal") {
                        ui.selectable_value(&mut app.settings.device, DeviceChoice::Metal, "Metal");
                    }
                })
                .response
                .labelled_by(label.id);
            if before != app.settings.device {
                app.commands.push(Command::LoadModel);
            }
            ui.end_row();
            let label = ui.label("Top-k");
            ui.add(egui::DragValue::new(&mut app.settings.top_k).range(1..=100))
                .labelled_by(label.id);
            ui.end_row();
        });
    ui.horizontal_wrapped(|ui| {
        let ready = matches!(app.model.state, ModelState::Ready(_)) && app.model.batch.is_none();
        let n_selected = app.collection.selection.len();
        if ui
            .add_enabled(
                ready && n_selected > 0,
                egui::Button::new(format!("Run on selection ({n_selected})")),
            )
            .on_hover_text("Space")
            .clicked()
        {
            app.commands.push(Command::Run { all: false });
        }
        if ui
            .add_enabled(
                ready && !app.collection.view.is_empty(),
                egui::Button::new(format!("Run on all shown ({})", app.collection.view.len())),
            )
            .clicked()
        {
            app.commands.push(Command::Run { all: true });
        }
        let new_or_stale = app.collection.new_or_stale_count();
        if ui
            .add_enabled(
                ready && new_or_stale > 0,
                egui::Button::new(format!("Run on new or stale ({new_or_stale})")),
            )
            .on_hover_text(
                "Only the photos shown that have no result yet, or whose file changed since",
            )
            .clicked()
        {
            app.commands.push(Command::RunNewOrStale);
        }
    });
    if let Some(batch) = app.model.batch.clone() {
        let eta = batch
            .eta
            .map(|d| format!(" · {} left", super::format_duration(d)))
            .unwrap_or_default();
        ui.add(
            egui::ProgressBar::new(batch.fraction())
                .show_percentage()
                .text(format!("{}/{} photos{eta}", batch.done, batch.total)),
        );
        if ui.button("Cancel run").clicked() {
            app.commands.push(Command::CancelRun);
        }
    }
}

fn files_ui(ui: &mut egui::Ui, app: &mut App) {
    match &app.model.info {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Checking model files…");
            });
        }
        Some(info) => {
            for c in info {
                let (mark, colour) = if c.installed {
                    ("Installed", egui::Color32::from_rgb(20, 150, 60))
                } else {
                    ("Missing", ui.visuals().error_fg_color)
                };
                ui.horizontal(|ui| {
                    ui.colored_label(colour, mark);
                    ui.label(c.name);
                })
                .response
                .on_hover_text(c.dir.display().to_string());
                if let Some(detail) = &c.detail {
                    ui.label(egui::RichText::new(detail).small());
                }
                if let Some(problem) = &c.problem {
                    ui.label(egui::RichText::new(problem).small().weak());
                }
                if let Some(fix) = &c.fix {
                    ui.label(egui::RichText::new(format!("To fix: {fix}")).small());
                }
            }
        }
    }
    ui.horizontal_wrapped(|ui| {
        let busy = app.jobs.import.is_some() || app.jobs.download.is_some();
        if ui
            .add_enabled(!busy, egui::Button::new("Import…"))
            .on_hover_text(
                "The geoclip wheel (pip download --no-deps geoclip==1.3.0) or a model folder",
            )
            .clicked()
        {
            app.commands.push(Command::PickModelImport);
        }
        if ui
            .add_enabled(
                !busy && app.settings.network_enabled,
                egui::Button::new("Download…"),
            )
            .on_disabled_hover_text("Turn the network on to download")
            .clicked()
        {
            app.jobs.confirm_download = true;
        }
        if ui
            .add_enabled(app.model.info_task.is_none(), egui::Button::new("Verify"))
            .on_hover_text("Re-hash every installed file against its manifest")
            .clicked()
        {
            app.verify_model_files();
        }
    });
    if let Some(task) = &app.model.info_task {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(&task.label);
        });
    }
    if let Some(task) = &app.jobs.import {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(&task.label);
        });
    }
    if let Some(download) = &app.jobs.download {
        let status = download
            .progress
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let fraction = status
            .total_bytes
            .filter(|&t| t > 0)
            .map(|t| status.done_bytes as f32 / t as f32);
        let text = format!(
            "{} {:.0} MB{}",
            status.file,
            status.done_bytes as f64 / 1e6,
            status
                .total_bytes
                .map(|t| format!(" of {:.0} MB", t as f64 / 1e6))
                .unwrap_or_default()
        );
        ui.add(
            egui::ProgressBar::new(fraction.unwrap_or(0.0))
                .text(text)
                .animate(fraction.is_none()),
        );
        if ui.button("Cancel download").clicked() {
            app.commands.push(Command::CancelDownload);
        }
    }
}

/// The confirmation before a download (about 1.9 GB from the Hugging Face Hub).
pub fn confirm_download_ui(ctx: &egui::Context, app: &mut App) {
    let mut open = true;
    egui::Window::new("Download the model?")
        .collapsible(false)
        .resizable(false)
        .open(&mut open)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label("This downloads about 1.9 GB from the Hugging Face Hub:");
            for repo in crate::model::files::hub_repos() {
                ui.label(format!("• {} @ {}", repo.repo_id, repo.revision));
            }
            ui.horizontal(|ui| {
                if ui.button("Download").clicked() {
                    app.commands.push(Command::StartDownload);
                }
                if ui.button("Not now").clicked() {
                    app.jobs.confirm_download = false;
                }
            });
        });
    if !open {
        app.jobs.confirm_download = false;
    }
}
