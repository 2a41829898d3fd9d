//! The inspector's region section: restrict the selected photo (or every selected photo) to a
//! country (a field with completion) or a box (typed, or drawn on the map), and read how much
//! of the model's belief lay inside. Clearing it puts back the unconstrained answer.

use crate::app::{App, Command};
use crate::geo::region::complete_country;
use crate::geo::{RegionParseError, parse_region};

/// Countries offered while a name is typed, at most.
const MAX_COMPLETIONS: usize = 6;

pub fn region_ui(ui: &mut egui::Ui, app: &mut App, index: usize) {
    let Some(photo) = app.collection.photos.get(index) else {
        return;
    };
    let path = photo.entry.path.clone();
    let located = photo.result.is_some();
    let paths = app.collection.targets_of(index);
    let mut commands = Vec::new();
    ui.add_space(6.0);
    ui.label(egui::RichText::new("Region").strong());
    let mut text = app.regions.inputs.get(&path).cloned().unwrap_or_default();
    let label = ui.label("Restrict to a country or box");
    let edit = ui
        .add(
            egui::TextEdit::singleline(&mut text)
                .hint_text("Ukraine · UA · 44,22,52.5,40.3")
                .desired_width(ui.available_width().min(320.0)),
        )
        .labelled_by(label.id);
    if edit.changed() {
        commands.push(Command::SetRegionText {
            path: path.clone(),
            text: text.clone(),
        });
    }
    let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    if !text.trim().is_empty() {
        match parse_region(&text) {
            Ok(region) => {
                let restrict = ui
                    .add_enabled(
                        located,
                        egui::Button::new(format!("Restrict to {}", region.label())),
                    )
                    .on_disabled_hover_text("Locate the photo first");
                if located && (restrict.clicked() || entered) {
                    commands.push(Command::RestrictTo {
                        paths: paths.clone(),
                        region,
                    });
                }
            }
            Err(RegionParseError::UnknownCountry { .. }) => {
                let hits = complete_country(&text, MAX_COMPLETIONS);
                if hits.is_empty()
                    && let Err(e) = parse_region(&text)
                {
                    ui.colored_label(ui.visuals().error_fg_color, e.to_string());
                }
                for country in hits {
                    if ui.selectable_label(false, country.label()).clicked() {
                        commands.push(Command::SetRegionText {
                            path: path.clone(),
                            text: country.name.clone(),
                        });
                        if located {
                            commands.push(Command::RestrictTo {
                                paths: paths.clone(),
                                region: crate::geo::Region::Country(country.clone()),
                            });
                        }
                    }
                }
            }
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e.to_string());
            }
        }
    }
    let drawing = app.regions.drawing.as_ref().map(|d| d.polygon);
    ui.horizontal(|ui| {
        if ui
            .selectable_label(drawing == Some(false), "Draw a box on the map")
            .on_hover_text("Click two corners on the map; Esc cancels")
            .clicked()
        {
            commands.push(Command::DrawRegion(drawing != Some(false)));
        }
        if ui
            .selectable_label(drawing == Some(true), "Draw a polygon")
            .on_hover_text(
                "Click its corners on the map; double click or Enter closes it, Esc cancels",
            )
            .clicked()
        {
            commands.push(if drawing == Some(true) {
                Command::DrawRegion(false)
            } else {
                Command::DrawPolygon
            });
        }
    });
    if app.regions.is_pending(&path) {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Re-ranking within the region…");
        });
    }
    if let Some(error) = app.regions.errors.get(&path) {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    if let Some(constraint) = app.regions.constraint(&path) {
        ui.label(constraint.sentence());
        ui.label(
            egui::RichText::new(
                "Candidates and heat come from inside only; a low share is itself evidence.",
            )
            .small()
            .weak(),
        );
        if ui.button("Clear region").clicked() {
            commands.push(Command::ClearRegion(paths));
        }
    }
    app.commands.extend(commands);
}
