//! The messages in the status line: the newest one still shown, in its kind's colour (errors in
//! the error colour until dismissed, warnings in the warning colour and notes in the normal text
//! colour, both fading out after a few seconds), and the "Log" button listing the last 64 with
//! the time they came.

use std::time::Instant;

use crate::app::App;
use crate::app::messages::{Message, MessageKind, Messages};

/// The log button and the current message (nothing when there has been none).
pub fn messages_ui(ui: &mut egui::Ui, app: &mut App) {
    let messages = &mut app.messages;
    if messages.is_empty() {
        return;
    }
    let now = Instant::now();
    ui.separator();
    log_button_ui(ui, messages);
    let Some(message) = messages.current(now) else {
        return;
    };
    if let Some(after) = message.next_change(now) {
        ui.ctx().request_repaint_after(after);
    }
    let colour = kind_colour(ui.visuals(), message.kind).gamma_multiply(message.opacity(now));
    let text = message.text.clone();
    let dismiss = ui
        .small_button("x")
        .on_hover_text("Dismiss (the log keeps it)")
        .clicked();
    ui.add(egui::Label::new(egui::RichText::new(&text).color(colour)).truncate())
        .on_hover_text(&text);
    if dismiss {
        messages.dismiss_current(now);
    }
}

fn kind_colour(visuals: &egui::Visuals, kind: MessageKind) -> egui::Color32 {
    match kind {
        MessageKind::Error => visuals.error_fg_color,
        MessageKind::Warning => visuals.warn_fg_color,
        MessageKind::Info => visuals.text_color(),
    }
}

/// "Log (N)": the messages kept, newest first, with their time and kind.
fn log_button_ui(ui: &mut egui::Ui, messages: &mut Messages) {
    let open_errors = messages.open_errors();
    let title = if open_errors > 0 {
        format!("Log ({}, {open_errors} errors)", messages.len())
    } else {
        format!("Log ({})", messages.len())
    };
    ui.menu_button(title, |ui| {
        ui.set_min_width(420.0);
        ui.set_max_width(ui.ctx().content_rect().width().min(720.0) - 40.0);
        ui.horizontal(|ui| {
            ui.strong(format!("The last {} messages", Messages::CAPACITY));
            if ui
                .button("Dismiss all")
                .on_hover_text("Clears the status line; the log keeps them")
                .clicked()
            {
                messages.dismiss_all();
            }
        });
        ui.separator();
        egui::ScrollArea::vertical()
            .max_height(320.0)
            .show(ui, |ui| {
                for message in messages.iter().rev() {
                    log_line_ui(ui, message);
                }
            });
    })
    .response
    .on_hover_text("Every error, warning and note of this session (the last 64)");
}

fn log_line_ui(ui: &mut egui::Ui, message: &Message) {
    ui.horizontal_top(|ui| {
        ui.label(
            egui::RichText::new(message.time_of_day_utc())
                .monospace()
                .weak(),
        );
        ui.label(
            egui::RichText::new(message.kind.label())
                .color(kind_colour(ui.visuals(), message.kind)),
        );
        ui.add(egui::Label::new(&message.text).wrap());
    });
}
