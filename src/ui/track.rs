//! The inspector's "Track and trip" section (issue 12): load a GPS track, set the camera
//! clock's offset (dragged in seconds, or typed as ±H:MM:SS) and the time zone for photos
//! without one, see where each selected photo lands (refused ones with their reason), set the
//! offset from a photo by clicking the track, apply it to the selection; and "Locate as trip"
//! on the selection, with its path on the map and a button to accept it.

use crate::app::track::{Landing, counts};
use crate::app::{App, Command};
use crate::domain::format_offset;
use crate::track::parse_offset;

/// Preview rows listed at most (the counts cover them all).
const MAX_ROWS: usize = 12;

pub fn track_ui(ui: &mut egui::Ui, app: &mut App) {
    let mut commands = Vec::new();
    ui.add_space(6.0);
    ui.label(egui::RichText::new("Track and trip").strong());
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                app.sources.loading.is_none(),
                egui::Button::new("Load track…"),
            )
            .on_hover_text("A GPX, KML or NMEA log: photos are placed on it by capture time")
            .clicked()
        {
            commands.push(Command::PickTrack);
        }
        if app.sources.loading.is_some() {
            ui.spinner();
        }
        if app.sources.track.is_some() && ui.button("Close track").clicked() {
            commands.push(Command::CloseTrack);
        }
    });
    if let Some(track) = &app.sources.track {
        ui.label(format!(
            "Track {}: {} points",
            track.name(),
            track.set.fixes.len()
        ));
        let mut offset = track.offset_secs;
        ui.horizontal(|ui| {
            let label = ui.label("Clock offset");
            let drag = ui
                .add(
                    egui::DragValue::new(&mut offset)
                        .speed(1.0)
                        .custom_formatter(|v, _| format_offset(v))
                        .custom_parser(parse_offset),
                )
                .labelled_by(label.id)
                .on_hover_text(
                    "Added to each photo's time to give the track's time (exiftool's \
                     -geosync): drag, or type +H:MM:SS",
                );
            if drag.changed() {
                commands.push(Command::SetTrackOffset(offset));
            }
            for (text, secs) in [("−1 h", -3600.0), ("+1 h", 3600.0)] {
                if ui.small_button(text).clicked() {
                    commands.push(Command::SetTrackOffset(offset + secs));
                }
            }
        });
        let mut zone = track.zone_text.clone();
        ui.horizontal(|ui| {
            let label = ui.label("Time zone");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut zone)
                        .hint_text("+02:00 · UTC")
                        .desired_width(90.0),
                )
                .labelled_by(label.id)
                .on_hover_text("For photos whose EXIF has no OffsetTimeOriginal");
            if edit.changed() {
                commands.push(Command::SetTrackZone(zone.clone()));
            }
            if track.zone_is_invalid() {
                ui.colored_label(ui.visuals().warn_fg_color, "not a zone");
            }
        });
        let picking = app.sources.picking_offset;
        if ui
            .selectable_label(picking, "Set offset from this photo")
            .on_hover_text(
                "Then click the track where the selected photo was taken: the offset that puts \
                 it there",
            )
            .clicked()
        {
            commands.push(Command::PickTrackOffset(!picking));
        }
        if picking {
            ui.label("Click the track where the selected photo was taken");
        }
        let preview = &app.sources.preview;
        let n = counts(preview);
        ui.label(format!(
            "Selection: {} land on the track, {} refused, {} keep their own GPS",
            n.lands, n.refused, n.own_gps
        ));
        egui::Grid::new("track_preview")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                for item in preview.iter().take(MAX_ROWS) {
                    ui.label(&item.name);
                    match &item.landing {
                        Landing::Lands {
                            position,
                            altitude_m,
                        } => ui.label(match altitude_m {
                            Some(alt) => format!("{position}, {alt:.0} m"),
                            None => position.to_string(),
                        }),
                        Landing::Refused(refusal) => ui.colored_label(
                            ui.visuals().warn_fg_color,
                            format!("refused: {}", refusal.describe()),
                        ),
                        Landing::OwnGps { .. } => ui.label("has its own GPS: kept"),
                    };
                    ui.end_row();
                }
            });
        if preview.len() > MAX_ROWS {
            ui.label(format!("… and {} more", preview.len() - MAX_ROWS));
        }
        if ui
            .add_enabled(n.lands > 0, egui::Button::new("Apply to selection"))
            .on_hover_text(
                "Accept the track's position for each selected photo that lands on it (one undo \
                 step); refused photos and photos with their own GPS are left as they are",
            )
            .clicked()
        {
            commands.push(Command::ApplyTrack);
        }
    }
    ui.separator();
    ui.horizontal(|ui| {
        let mut speed = app.sources.trip_speed_kmh;
        let label = ui.label("Top speed");
        if ui
            .add(
                egui::DragValue::new(&mut speed)
                    .range(1.0..=1000.0)
                    .suffix(" km/h"),
            )
            .labelled_by(label.id)
            .changed()
        {
            commands.push(Command::SetTripSpeed(speed));
        }
        if ui
            .button("Locate as trip")
            .on_hover_text(
                "The selected photos with results and capture times as one trip: each photo's \
                 candidates weighed with its neighbours' in time",
            )
            .clicked()
        {
            commands.push(Command::LocateAsTrip);
        }
    });
    if let Some(trip) = &app.sources.trip {
        ui.label(format!(
            "Trip: {} photos, {} moved from their own best guess, {} jumps",
            trip.points.len(),
            trip.moved(),
            trip.breaks
        ));
        for (name, why) in trip.skipped.iter().take(MAX_ROWS) {
            ui.label(format!("{name}: left out, {why}"));
        }
        ui.horizontal(|ui| {
            if ui.button("Accept trip").clicked() {
                commands.push(Command::AcceptTrip);
            }
            if ui.button("Clear trip").clicked() {
                commands.push(Command::ClearTrip);
            }
        });
    }
    app.commands.extend(commands);
}
