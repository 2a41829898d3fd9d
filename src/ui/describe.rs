//! "Describe": asking the map in words (issue 14), drawn at the top of the map's search box.
//! A text ("a snowy harbour with red roofs") is ranked over the gallery as a photo is; its
//! heatmap can replace the photo's, be shown with it, or be multiplied with it, and the selected
//! photo is compared with it in the claim check's figures.

use crate::app::describe::{HeatShown, PhotoVsWords};
use crate::app::{App, Command};
use crate::geo::nearest_place;

pub fn describe_ui(ui: &mut egui::Ui, map_rect: egui::Rect, app: &mut App) {
    let mut ask = false;
    ui.horizontal(|ui| {
        let label = ui.label("Describe").on_hover_text(
            "Where a place like this is likely, in GeoCLIP's eyes (CLIP's text tower)",
        );
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut app.describe.input)
                    .hint_text("a snowy harbour with red roofs")
                    .desired_width((map_rect.width() - 300.0).clamp(70.0, 160.0)),
            )
            .labelled_by(label.id);
        ask |= edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let enabled = !app.describe.input.trim().is_empty();
        ask |= ui
            .add_enabled(enabled, egui::Button::new("Ask"))
            .on_hover_text("Rank the gallery for this description")
            .clicked();
    });
    let pending = app.describe.pending.as_ref().map(|(_, text)| text.clone());
    ui.horizontal(|ui| {
        ui.checkbox(&mut app.describe.ensemble, "Prompt templates")
            .on_hover_text(
                "Ask as CLIP's prompt ensemble: the text put into 8 templates (\"a photo taken \
                 in …\") and their answers averaged. Suits a place's name more than a \
                 description.",
            );
        if let Some(text) = &pending {
            ui.spinner();
            ui.label(egui::RichText::new(format!("Asking “{text}”…")).weak());
        }
    });
    if ask && !app.describe.input.trim().is_empty() {
        app.commands.push(Command::Describe {
            text: app.describe.input.clone(),
            ensemble: app.describe.ensemble,
        });
    }
    if let Some(error) = &app.describe.error {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    let Some(answer) = &app.describe.answer else {
        return;
    };
    let best = answer.result.candidates.first().cloned();
    let place = best
        .as_ref()
        .filter(|_| app.places_ready())
        .and_then(|c| nearest_place(c.position))
        .map(|p| p.describe());
    let summary = match (&best, place) {
        (Some(c), Some(place)) => format!("best guess {place} ({:.2} %)", 100.0 * c.probability),
        (Some(c), None) => format!("best guess {} ({:.2} %)", c.position, 100.0 * c.probability),
        (None, _) => "no answer".into(),
    };
    let templates = if answer.ensemble {
        " with templates"
    } else {
        ""
    };
    let line = format!("“{}”{templates}: {summary}", answer.text);
    let mut commands = Vec::new();
    ui.horizontal_wrapped(|ui| {
        let response = ui.label(line);
        if let Some(c) = &best {
            response.on_hover_text(format!("{}: Show centres the map there", c.position));
            if ui.small_button("Show").clicked() {
                commands.push(Command::CenterMap(c.position));
            }
        }
        if ui
            .small_button("Clear")
            .on_hover_text("Forget the description; the map shows the photo's heatmap")
            .clicked()
        {
            commands.push(Command::ClearDescription);
        }
    });
    app.commands.extend(commands);
    ui.horizontal_wrapped(|ui| {
        ui.label("Heat:");
        for shown in HeatShown::ALL {
            let response = ui
                .selectable_label(app.describe.shown == shown, shown.label())
                .on_hover_text(shown.hint());
            if response.clicked() {
                app.describe.shown = shown;
            }
        }
    });
    if app.describe.shown != HeatShown::Photo && app.map.heat.is_empty() {
        ui.label(
            egui::RichText::new(match app.describe.shown {
                HeatShown::Agreement => {
                    "No place lies in both heatmaps: the photo and the description disagree."
                }
                _ => "Nothing to show.",
            })
            .weak(),
        );
    }
    let photo = app
        .collection
        .selected_photo()
        .and_then(|p| p.result.as_ref());
    if let Some(photo) = photo
        && let Some(answer) = &app.describe.answer
        && let Some(vs) = PhotoVsWords::new(photo, &answer.result)
    {
        let explain = "The description's best guess taken as a claim about the selected photo, \
                       as the claim check reads one; the shared belief is the probability both \
                       heatmaps put on the same gallery points.";
        // On a small map the box keeps to one line, the rest on hover.
        if map_rect.height() < 420.0 {
            ui.label(egui::RichText::new(format!("Photo vs words: {}", vs.short())).small())
                .on_hover_text(format!("{}\n\n{explain}", vs.describe()));
        } else {
            ui.label(egui::RichText::new(format!("Photo vs words: {}", vs.describe())).small())
                .on_hover_text(explain);
        }
    }
}
