//! The inspector: the selected photo, its EXIF position, the model's ranked candidates
//! (probability, distance to the EXIF position; accept or show each), and the accepted
//! location with undo/redo; the nearest place of each candidate (offline), then the claim
//! section ([`super::claim`]).

use crate::app::{App, Command, DecisionSource};
use crate::domain::Decision;
use crate::geo::nearest_place;

pub fn inspector_ui(ui: &mut egui::Ui, app: &mut App) {
    ui.heading("Photo");
    let Some(index) = app.collection.selected else {
        ui.label("Select a photo.");
        super::track::track_ui(ui, app);
        return;
    };
    let Some(photo) = app.collection.photos.get(index) else {
        return;
    };
    ui.label(egui::RichText::new(photo.entry.file_name()).strong());
    ui.label(
        egui::RichText::new(photo.entry.path.display().to_string())
            .small()
            .weak(),
    );
    if let Some(e) = photo.error() {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let exif = photo.entry.gps();
    let exif_note = photo.entry.gps_note();
    let exif_invalid = photo.entry.exif.gps_invalid.is_some();
    egui::Grid::new("photo facts")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("EXIF position");
            // Short here (the grid does not wrap); what it is follows below the grid.
            match (&exif, &photo.entry.exif.gps_estimate) {
                (Some(fix), _) => ui.label(fix.to_string()),
                (None, Some(estimate)) => ui.label(format!("{} (estimate)", estimate.position)),
                (None, None) if exif_invalid => {
                    ui.colored_label(ui.visuals().error_fg_color, "invalid")
                }
                (None, None) => ui.label("none"),
            };
            ui.end_row();
            if let Some(taken) = &photo.entry.exif.taken_at {
                ui.label("Taken");
                ui.label(taken);
                ui.end_row();
            }
            ui.label("Accepted");
            match &photo.decision {
                Some(Decision::Accepted { rank, position }) => {
                    ui.label(format!("{position} (candidate #{rank})"))
                }
                Some(Decision::Manual { position }) => ui.label(format!("{position} (by hand)")),
                Some(Decision::Placed { position, origin }) => {
                    ui.label(format!("{position} ({})", origin.as_str()))
                }
                None => ui.label("not yet"),
            };
            ui.end_row();
            // Always a row, so accepting never moves what is below.
            ui.label("Origin");
            ui.label(
                photo
                    .decision
                    .as_ref()
                    .map_or_else(|| "–".to_owned(), |d| d.origin().describe()),
            );
            ui.end_row();
        });
    if let Some(note) = exif_note.filter(|_| exif.is_none()) {
        let text = egui::RichText::new(note).small();
        if exif_invalid {
            ui.colored_label(ui.visuals().error_fg_color, text);
        } else {
            ui.label(text.weak());
        }
    }
    let mut commands = Vec::new();
    // Always there (disabled without a decision), so accepting never inserts a row that moves
    // the candidates' Accept buttons under the pointer.
    if ui
        .add_enabled(
            photo.decision.is_some(),
            egui::Button::new("Clear accepted location"),
        )
        .clicked()
    {
        commands.push(Command::ClearDecision { index });
    }

    ui.add_space(6.0);
    ui.label(egui::RichText::new("Candidates").strong());
    match &photo.result {
        None => {
            ui.label("Not located yet: press Space or “Run on selection”.");
        }
        Some(result) => {
            if app.collection.photos[index].result_from_store {
                ui.label(
                    egui::RichText::new("From the database (computed earlier)")
                        .small()
                        .weak(),
                );
            }
            if app.collection.photos[index].result_stale {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    "The file changed since: run again for a fresh result.",
                );
            }
            if let Some(group) = &result.group {
                ui.label(
                    egui::RichText::new(format!(
                        "Group result: located together with {} other photo(s); these are \
                         the group's candidates",
                        group.len().saturating_sub(1)
                    ))
                    .strong(),
                )
                .on_hover_text(
                    group
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            // The Accept buttons come first: a narrow panel clips the last column, never them.
            // A refined candidate gets a second row under its gallery point (the columns stay
            // four, so nothing more is clipped).
            egui::Grid::new("candidates")
                .num_columns(4)
                .striped(true)
                .show(ui, |ui| {
                    ui.label("");
                    ui.label("Position");
                    ui.label("Prob.");
                    ui.label("To EXIF");
                    ui.end_row();
                    for c in &result.candidates {
                        let accepted = matches!(
                            photo.decision,
                            Some(Decision::Accepted { rank, .. }) if rank == c.rank
                        );
                        // The same button in every state (disabled once accepted), of one
                        // width: the rows and columns keep their place.
                        let width = egui::vec2(86.0, 0.0);
                        if accepted {
                            ui.add_enabled(
                                false,
                                egui::Button::new(format!("Accepted #{}", c.rank)).min_size(width),
                            );
                        } else if ui
                            .add(egui::Button::new(format!("Accept #{}", c.rank)).min_size(width))
                            .clicked()
                        {
                            commands.push(Command::Accept {
                                index,
                                position: c.position,
                                source: DecisionSource::Candidate { rank: c.rank },
                            });
                        }
                        if ui
                            .link(format!(
                                "{:.3}, {:.3}",
                                c.position.lat_deg, c.position.lon_deg
                            ))
                            .on_hover_text(format!("Show on the map: {}", c.position))
                            .clicked()
                        {
                            commands.push(Command::CenterMap(c.position));
                        }
                        ui.label(format!("{:.1}%", c.probability * 100.0));
                        ui.label(
                            exif.map(|e| format!("{:.0} km", e.distance_km(&c.position)))
                                .unwrap_or_else(|| "–".into()),
                        );
                        ui.end_row();
                        if let Some(r) = &c.refined {
                            ui.label(egui::RichText::new("refined").small().weak())
                                .on_hover_text(
                                    "The location encoder's best point near this gallery point \
                                     (searched down to ~100 m)",
                                );
                            if ui
                                .link(format!(
                                    "{:.4}, {:.4}",
                                    r.position.lat_deg, r.position.lon_deg
                                ))
                                .on_hover_text(format!(
                                    "Refined point, {:.2} km from gallery point #{}: show on \
                                     the map",
                                    r.position.distance_km(&c.position),
                                    c.rank
                                ))
                                .clicked()
                            {
                                commands.push(Command::CenterMap(r.position));
                            }
                            ui.label(format!("sim {:.3}", r.similarity)).on_hover_text(
                                "Cosine similarity between the photo and this point",
                            );
                            ui.label(
                                exif.map(|e| format!("{:.0} km", e.distance_km(&r.position)))
                                    .unwrap_or_else(|| "–".into()),
                            );
                            ui.end_row();
                        }
                    }
                });
            places_ui(ui, app, result);
            if let Some(warning) = result.provenance.stand_in_warning() {
                ui.colored_label(ui.visuals().warn_fg_color, warning);
            }
            if !result.provenance.model.is_empty() {
                ui.label(
                    egui::RichText::new(format!(
                        "{} · weights {} · gallery {}",
                        result.provenance.model,
                        short_hash(&result.provenance.weights_sha256),
                        short_hash(&result.provenance.gallery_sha256)
                    ))
                    .small()
                    .weak(),
                );
            }
        }
    }
    app.commands.extend(commands);
    super::claim::claim_ui(ui, app, index);
    super::region::region_ui(ui, app, index);
    super::track::track_ui(ui, app);
}

/// The nearest populated place of each candidate (once the place index is built).
fn places_ui(ui: &mut egui::Ui, app: &App, result: &crate::domain::PhotoResult) {
    ui.add_space(4.0);
    ui.label(egui::RichText::new("Nearest places").strong())
        .on_hover_text(crate::geo::PLACES_ATTRIBUTION);
    if !app.places_ready() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Loading place names…");
        });
        return;
    }
    for c in &result.candidates {
        let text = nearest_place(c.position)
            .map(|p| p.describe())
            .unwrap_or_else(|| "no place".into());
        ui.label(format!("#{} {text}", c.rank));
    }
}

fn short_hash(hash: &str) -> &str {
    hash.get(..10).unwrap_or(hash)
}
