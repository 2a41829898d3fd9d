//! The inspector's claim section: a field for the claimed location (a place name from the
//! built-in places, or coordinates in any common form; a pick list when several places share
//! the name), then one check per claim, the EXIF GPS and the typed one each: the distance to
//! the model's best guess, the shares of its belief within 25 and 200 km, and one sentence
//! that reads those figures without a verdict.

use crate::app::claims::{ClaimReading, read_claim};
use crate::app::{App, Command, export};
use crate::geo::{ClaimSource, describe_claim_check, nearest_place};

/// Choices shown when a place name is ambiguous, at most.
const MAX_CHOICES: usize = 60;

pub fn claim_ui(ui: &mut egui::Ui, app: &mut App, index: usize) {
    let Some(photo) = app.collection.photos.get(index) else {
        return;
    };
    let path = photo.entry.path.clone();
    let mut commands = Vec::new();
    ui.add_space(6.0);
    ui.label(egui::RichText::new("Claim").strong());
    if let Some(note) = photo
        .entry
        .gps_note()
        .filter(|_| photo.entry.gps().is_none())
    {
        ui.label(format!("The EXIF GPS is not a claim: {note}"));
    }

    let mut text = app.claims.inputs.get(&path).cloned().unwrap_or_default();
    let label = ui.label("Claimed lat, lon or place");
    let edit = ui
        .add(
            egui::TextEdit::singleline(&mut text)
                .hint_text("Lihue, Hawaii · 22°04'N 159°30'W")
                .desired_width(ui.available_width().min(320.0)),
        )
        .labelled_by(label.id);
    if edit.changed() {
        commands.push(Command::SetClaim {
            path: path.clone(),
            text: text.clone(),
            picked: None,
        });
    }
    let typed = app.claims.typed(&path).cloned();
    match read_claim(&text, app.places_ready()) {
        ClaimReading::Empty => {}
        ClaimReading::Claim(_) => {}
        ClaimReading::Waiting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Loading place names…");
            });
        }
        ClaimReading::Invalid(why) => {
            ui.colored_label(ui.visuals().error_fg_color, why);
        }
        ClaimReading::Ambiguous(choices) => {
            let picked = typed.as_ref().map(|c| c.position);
            ui.label(format!(
                "{} places have this name: pick one.",
                choices.len()
            ));
            egui::ScrollArea::vertical()
                .id_salt("claim choices")
                .max_height(140.0)
                .show(ui, |ui| {
                    for (label, position) in choices.into_iter().take(MAX_CHOICES) {
                        let selected = picked == Some(position);
                        if ui.selectable_label(selected, &label).clicked() {
                            commands.push(Command::SetClaim {
                                path: path.clone(),
                                text: label,
                                picked: Some(position),
                            });
                        }
                    }
                });
        }
    }

    let claims = app.claims_of(photo);
    let mut lower_bounds_noted = false;
    for (claimed, source) in claims {
        ui.add_space(4.0);
        ui.horizontal_wrapped(|ui| {
            match source {
                ClaimSource::ExifGps => ui.label(format!("Claimed: {claimed} (EXIF GPS)")),
                ClaimSource::User => ui.label(format!("Claimed: {claimed} (typed)")),
            };
            if ui
                .small_button("Show")
                .on_hover_text("Centre the map on the claim")
                .clicked()
            {
                commands.push(Command::CenterMap(claimed));
            }
        });
        let Some(result) = photo.result.as_ref() else {
            ui.label("Locate the photo to check the claim.");
            continue;
        };
        match export::claim_check(result, claimed, source) {
            Some(check) => {
                egui::Grid::new(("claim check", source.as_str()))
                    .num_columns(2)
                    .show(ui, |ui| {
                        ui.label("Claim to #1");
                        ui.label(format!("{:.1} km", check.top1_distance_km));
                        ui.end_row();
                        ui.label("Probability within 25 km");
                        ui.label(format!("≥ {:.1}%", check.probability_within_25_km * 100.0));
                        ui.end_row();
                        ui.label("Probability within 200 km");
                        ui.label(format!("≥ {:.1}%", check.probability_within_200_km * 100.0));
                        ui.end_row();
                    });
                ui.label(describe_claim_check(&check));
                if app.places_ready()
                    && let Some(place) = nearest_place(claimed)
                {
                    ui.label(format!("Claim: {}", place.describe()));
                }
                if !lower_bounds_noted {
                    lower_bounds_noted = true;
                    ui.label(
                        egui::RichText::new(format!(
                            "Shares are lower bounds: the stored heat points hold {:.0}% of the probability.",
                            result.heat_mass * 100.0
                        ))
                        .small()
                        .weak(),
                    );
                }
            }
            None => {
                ui.label("The claim can't be checked against this result.");
            }
        }
    }
    app.commands.extend(commands);
}
