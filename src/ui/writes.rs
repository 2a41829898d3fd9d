//! Which photos a write or an export takes. Review comes before writing: the default is the
//! accepted locations only; the model's unreviewed estimates are included only when the user
//! asks and then confirms, with their count, and are marked `estimate (unreviewed)` wherever
//! they are written.

use crate::app::export::{self, WritePlan, WriteScope};
use crate::app::{App, Command};

/// The dry run's part that says which photos it takes, with the explicit, separately
/// confirmed choice to include the unreviewed estimates. `confirming` is the second step's
/// state (kept by the app while the dialog is open).
pub fn write_scope_ui(
    ui: &mut egui::Ui,
    plan: &WritePlan,
    confirming: &mut bool,
) -> Option<Command> {
    let counts = plan.counts;
    ui.label(egui::RichText::new(export::scope_note(plan.scope, counts)).strong());
    let mut command = None;
    match plan.scope {
        WriteScope::AcceptedOnly if counts.unreviewed > 0 && !*confirming => {
            if ui
                .button(format!(
                    "Also write the {} unreviewed estimates…",
                    counts.unreviewed
                ))
                .on_hover_text("Asks again before anything changes")
                .clicked()
            {
                *confirming = true;
            }
        }
        WriteScope::AcceptedOnly if counts.unreviewed > 0 => {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "Write {} locations nobody reviewed? They are the model's best guesses, \
                         each marked “estimate (unreviewed)”. Review mode (R) steps through \
                         them one key at a time.",
                        counts.unreviewed
                    ),
                );
                ui.horizontal(|ui| {
                    if ui
                        .button(format!("Include {} estimates", counts.unreviewed))
                        .clicked()
                    {
                        *confirming = false;
                        command = Some(Command::WriteScope(WriteScope::WithEstimates));
                    }
                    if ui.button("Keep accepted only").clicked() {
                        *confirming = false;
                    }
                });
            });
        }
        WriteScope::AcceptedOnly => {}
        WriteScope::WithEstimates => {
            if ui.button("Accepted locations only").clicked() {
                command = Some(Command::WriteScope(WriteScope::AcceptedOnly));
            }
        }
    }
    command
}

/// The export window: which photos (accepted only by default; the unreviewed estimates only
/// when ticked, with their count), then the file.
pub fn export_choice_ui(ctx: &egui::Context, app: &mut App) {
    let Some(mut scope) = app.jobs.export_choice else {
        return;
    };
    let counts = app.review_counts();
    let mut command = None;
    let mut open = true;
    egui::Window::new("Export located photos")
        .collapsible(false)
        .resizable(false)
        .open(&mut open)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label(export::scope_note(scope, counts));
            if counts.unreviewed > 0 {
                let mut include = scope == WriteScope::WithEstimates;
                if ui
                    .checkbox(
                        &mut include,
                        format!(
                            "Also export the {} unreviewed estimates (marked “estimate \
                             (unreviewed)”)",
                            counts.unreviewed
                        ),
                    )
                    .changed()
                {
                    scope = if include {
                        WriteScope::WithEstimates
                    } else {
                        WriteScope::AcceptedOnly
                    };
                }
            }
            ui.horizontal(|ui| {
                let n = counts.taken(scope);
                if ui
                    .add_enabled(n > 0, egui::Button::new(format!("Export {n} photos…")))
                    .on_hover_text("GPX, CSV or GeoJSON, by the file's extension")
                    .clicked()
                {
                    command = Some(Command::PickExport);
                }
                if ui.button("Cancel").clicked() {
                    command = Some(Command::CancelExport);
                }
            });
        });
    app.jobs.export_choice = Some(scope);
    if !open {
        command = Some(Command::CancelExport);
    }
    app.commands.extend(command);
}
