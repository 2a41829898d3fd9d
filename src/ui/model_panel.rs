//! The model panel: which model files are installed, each missing part once with the button
//! that gets it (import a file or a folder, download after confirming, with speed, time left
//! and cancel), a stand-in backbone named as such, device, top-k, run on the selection or on
//! every photo shown, and the batch's progress with its time left.

use crate::app::{App, Command, ModelChoice, ModelState};
use crate::model::files::{Component, ComponentInfo};
use crate::model::{DeviceChoice, Precision};

fn precision_label(precision: Precision) -> &'static str {
    match precision {
        Precision::Exact => "Exact (f32)",
        Precision::Bf16 => "Fast (bf16)",
    }
}

/// When fast mode was chosen and the loaded model runs exact (its provenance's device has no
/// `+bf16`), why: the fallback is never silent.
fn fast_mode_unavailable(precision: Precision, device: &str) -> Option<String> {
    if precision != Precision::Bf16 || device.ends_with("+bf16") {
        return None;
    }
    let reason = match crate::model::bf16::Bf16Kernel::detect() {
        Err(why) => why,
        Ok(_) => "not on this device".to_owned(),
    };
    Some(format!(
        "Fast mode is not available ({reason}): running exact."
    ))
}

/// About how much `Download` fetches (the CLIP ViT-L/14 weights, the GeoCLIP release).
const DOWNLOAD_SIZE: &str = "1.9 GB";

pub fn model_panel_ui(ui: &mut egui::Ui, app: &mut App) {
    ui.heading("Model");
    let installed = matches!(app.model.choice, ModelChoice::Installed);
    match &app.model.state {
        ModelState::Ready(p) => {
            ui.label(format!("Ready: {} on {}", p.model, p.device));
            if let Some(why) = fast_mode_unavailable(app.settings.precision, &p.device) {
                ui.colored_label(ui.visuals().warn_fg_color, why);
            }
            if let Some(warning) = p.stand_in_warning() {
                ui.colored_label(ui.visuals().warn_fg_color, warning);
            }
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
        // With the installed model, the parts below say what is missing.
        ModelState::NotLoaded(_) if installed && app.model.info.is_some() => {
            ui.label("Not loaded: it needs both parts below.");
        }
        ModelState::NotLoaded(reason) => {
            ui.label(reason.as_deref().unwrap_or("Not loaded.").to_owned());
        }
    }
    if installed {
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
            let label = ui.label("Precision");
            let before = app.settings.precision;
            egui::ComboBox::from_id_salt("precision")
                .selected_text(precision_label(app.settings.precision))
                .show_ui(ui, |ui| {
                    for precision in [Precision::Exact, Precision::Bf16] {
                        ui.selectable_value(
                            &mut app.settings.precision,
                            precision,
                            precision_label(precision),
                        );
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text(
                    "Exact: f32, GeoCLIP's own numbers. Fast: the image tower's matrix \
                     products in bf16, about half the time on CPUs with AVX-512 BF16; image \
                     features within a cosine of 0.9998 of exact, and the results say so \
                     (device cpu+bf16)",
                );
            if before != app.settings.precision {
                app.commands.push(Command::LoadModel);
            }
            ui.end_row();
            let label = ui.label("Top-k");
            ui.add(egui::DragValue::new(&mut app.settings.top_k).range(1..=100))
                .labelled_by(label.id);
            ui.end_row();
            ui.label("");
            ui.checkbox(&mut app.settings.refine_candidates, "Refine candidates")
                .on_hover_text(
                    "Search GeoCLIP's continuous location encoder around each gallery \
                     candidate, down to about 100 m, and show the refined point beside it",
                );
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
        if ui
            .add_enabled(
                ready && n_selected > 1,
                egui::Button::new(format!("Locate together ({n_selected})")),
            )
            .on_hover_text(
                "Views of one place: one answer for the selected photos, their beliefs multiplied",
            )
            .clicked()
        {
            app.commands.push(Command::LocateTogether);
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
    let busy = app.jobs.import.is_some() || app.jobs.download.is_some();
    let mut commands = Vec::new();
    let mut confirm_download = false;
    match &app.model.info {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Checking model files…");
            });
        }
        Some(info) => {
            let network = app.settings.network_enabled;
            for c in info {
                part_ui(ui, c, busy, network, &mut commands, &mut confirm_download);
            }
        }
    }
    let all_installed = app
        .model
        .info
        .as_ref()
        .is_some_and(|info| info.iter().all(|c| c.installed));
    ui.horizontal_wrapped(|ui| {
        if all_installed {
            // Replacing what is installed: the same two imports, out of the way.
            ui.menu_button("Import…", |ui| {
                if ui
                    .add_enabled(!busy, egui::Button::new("geoclip wheel…"))
                    .clicked()
                {
                    commands.push(Command::PickModelImport { folder: false });
                    ui.close();
                }
                if ui
                    .add_enabled(!busy, egui::Button::new("Folder (CLIP, release, package)…"))
                    .clicked()
                {
                    commands.push(Command::PickModelImport { folder: true });
                    ui.close();
                }
            });
        }
        if ui
            .add_enabled(app.model.info_task.is_none(), egui::Button::new("Verify"))
            .on_hover_text("Re-hash every installed file against its manifest")
            .clicked()
        {
            app.verify_model_files();
        }
    });
    app.commands.extend(commands);
    if confirm_download {
        app.jobs.confirm_download = true;
    }
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
        let fraction = status.fraction();
        ui.add(
            egui::ProgressBar::new(fraction.unwrap_or(0.0))
                .text(status.describe())
                .animate(fraction.is_none()),
        );
        if ui
            .button("Cancel download")
            .on_hover_text("What was fetched is kept: the next Download resumes from there")
            .clicked()
        {
            app.commands.push(Command::CancelDownload);
        }
    }
}

/// One part of the model: installed (with what it is), or missing with the buttons that get
/// it, shown once.
fn part_ui(
    ui: &mut egui::Ui,
    c: &ComponentInfo,
    busy: bool,
    network: bool,
    commands: &mut Vec<Command>,
    confirm_download: &mut bool,
) {
    let (mark, colour) = if c.installed {
        ("Installed", egui::Color32::from_rgb(20, 150, 60))
    } else if c.absent {
        ("Missing", ui.visuals().error_fg_color)
    } else {
        ("Broken", ui.visuals().error_fg_color)
    };
    ui.horizontal_wrapped(|ui| {
        ui.colored_label(colour, mark);
        ui.label(c.name);
    })
    .response
    .on_hover_text(c.dir.display().to_string());
    if let Some(detail) = &c.detail {
        if detail.starts_with("ViT-L/14") {
            ui.label(egui::RichText::new(detail).small());
        } else {
            // A stand-in backbone (the tiny test one, another CLIP): said plainly.
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "Stand-in backbone, NOT CLIP ViT-L/14: results will not be GeoCLIP's ({detail})"
                ),
            );
        }
    }
    if c.installed {
        return;
    }
    if !c.absent
        && let Some(problem) = &c.problem
    {
        ui.label(problem);
    }
    if c.partial_download_bytes > 0 {
        ui.label(format!(
            "An interrupted download left {:.0} MB: Download goes on from there.",
            c.partial_download_bytes as f64 / 1e6
        ));
    }
    ui.horizontal_wrapped(|ui| match c.component {
        Component::Release => {
            if ui
                .add_enabled(!busy, egui::Button::new("Import geoclip wheel…"))
                .on_hover_text("geoclip-1.3.0-py3-none-any.whl, from PyPI")
                .clicked()
            {
                commands.push(Command::PickModelImport { folder: false });
            }
            if ui
                .add_enabled(!busy, egui::Button::new("Import GeoCLIP folder…"))
                .on_hover_text("A GeoCLIP release folder, or an unpacked geoclip package")
                .clicked()
            {
                commands.push(Command::PickModelImport { folder: true });
            }
        }
        Component::Backbone => {
            if ui
                .add_enabled(
                    !busy && network,
                    egui::Button::new(format!("Download ({DOWNLOAD_SIZE})…")),
                )
                .on_hover_text("From the Hugging Face Hub, after you confirm; an interrupted download resumes")
                .on_disabled_hover_text("Turn the network on to download")
                .clicked()
            {
                *confirm_download = true;
            }
            if ui
                .add_enabled(!busy, egui::Button::new("Import CLIP folder…"))
                .on_hover_text(
                    "A Hugging Face CLIP folder: config.json, model.safetensors, preprocessor_config.json",
                )
                .clicked()
            {
                commands.push(Command::PickModelImport { folder: true });
            }
        }
    });
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
            ui.label(format!(
                "This downloads about {DOWNLOAD_SIZE} from the Hugging Face Hub:"
            ));
            for repo in crate::model::files::hub_repos() {
                ui.label(format!("• {} @ {}", repo.repo_id, repo.revision));
            }
            ui.label(
                "If it is interrupted (or the app closes), the next Download resumes where it stopped.",
            );
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
