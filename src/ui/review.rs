//! Review mode's keys and banner. R starts it; then, one key press per photo: Enter or 1
//! accepts candidate #1, 2–5 accept that candidate, P places the photo by hand on the map,
//! S or the Right arrow skips, the Left arrow goes back, Esc leaves. The keys act only in
//! review mode (R only outside it), never while a text field has focus or a dialog is open; in
//! review mode they are taken before the browser's arrow keys see them.

use crate::app::review::ReviewAction;
use crate::app::{App, Command};

/// The keys, as the banner lists them.
pub const REVIEW_KEYS: &str = "Enter/1 accept #1 · 2–5 accept that candidate · P place by hand · S or Right arrow skip · Left arrow back · Esc leave";

pub fn handle_review_keys(ctx: &egui::Context, app: &mut App) {
    if ctx.text_edit_focused() || dialog_open(app) {
        return;
    }
    let none = egui::Modifiers::NONE;
    if app.viewer.review.is_none() {
        if ctx.input_mut(|i| i.consume_key(none, egui::Key::R)) {
            app.commands.push(Command::Review(ReviewAction::Start));
        }
        return;
    }
    use egui::Key;
    let keys: [(Key, ReviewAction); 11] = [
        (Key::Enter, ReviewAction::Accept { rank: 1 }),
        (Key::Num1, ReviewAction::Accept { rank: 1 }),
        (Key::Num2, ReviewAction::Accept { rank: 2 }),
        (Key::Num3, ReviewAction::Accept { rank: 3 }),
        (Key::Num4, ReviewAction::Accept { rank: 4 }),
        (Key::Num5, ReviewAction::Accept { rank: 5 }),
        (Key::P, ReviewAction::PlaceByHand),
        (Key::S, ReviewAction::Skip),
        (Key::ArrowRight, ReviewAction::Skip),
        (Key::ArrowLeft, ReviewAction::Back),
        (Key::Escape, ReviewAction::Leave),
    ];
    let pressed: Vec<ReviewAction> = ctx.input_mut(|i| {
        keys.iter()
            .filter(|(key, _)| i.consume_key(none, *key))
            .map(|(_, action)| *action)
            .collect()
    });
    // One step per frame: two keys in one frame would act on the same photo.
    if let Some(action) = pressed.first() {
        app.commands.push(Command::Review(*action));
    }
}

/// A dialog asks something (a write, an export, a download): keys go to it, never to a
/// decision behind it.
fn dialog_open(app: &App) -> bool {
    app.jobs.write_confirm.is_some()
        || app.jobs.export_choice.is_some()
        || app.jobs.confirm_download
}

/// The line above the preview and the map while reviewing: where the user is, and the keys.
pub fn review_banner_ui(ui: &mut egui::Ui, app: &mut App) {
    let Some(review) = &app.viewer.review else {
        return;
    };
    let mut command = None;
    ui.horizontal_wrapped(|ui| {
        match review.current() {
            Some(_) => ui.strong(format!("Reviewing {}", review.progress())),
            None => ui.strong("All reviewed"),
        };
        if review.placing {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "Click the map to place this photo",
            );
        }
        ui.label(egui::RichText::new(REVIEW_KEYS).small());
        if ui.button("Leave review").clicked() {
            command = Some(Command::Review(ReviewAction::Leave));
        }
    });
    app.commands.extend(command);
}
