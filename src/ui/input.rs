//! Keys and dropped files, turned into [`Command`]s: arrows act on the panel clicked last (they
//! move the browser's selection, or pan the map when the map was clicked, where + and - zoom),
//! F fits the map to the selected photo, Enter centres the map, Space runs the model on the
//! selection (the app runs only a ready model), Ctrl+Z / Ctrl+Y (or Ctrl+Shift+Z) undo and
//! redo decisions: Cmd instead of Ctrl on macOS (egui's `modifiers.command`). Nothing here while
//! a text field has focus. Every shortcut shown to the user is written by [`shortcut_text`].

use std::path::PathBuf;

use crate::app::{App, Command, ViewMode};

/// Undo: Ctrl+Z, ⌘Z on macOS.
pub const UNDO: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Z);
/// Redo as Windows and Linux programs show it: Ctrl+Y (Ctrl+Shift+Z works too).
pub const REDO: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Y);
/// Redo as macOS programs show it: ⇧⌘Z (⌘Y works too).
pub const REDO_MAC: egui::KeyboardShortcut = egui::KeyboardShortcut::new(
    egui::Modifiers::COMMAND.plus(egui::Modifiers::SHIFT),
    egui::Key::Z,
);

/// How a shortcut is written for the user on `os`: "Ctrl+Z" on Windows and Linux; on macOS
/// "⌘Z", with the symbols macOS menus use, when the font has them (`has_glyphs`), else
/// "Cmd+Z". The one place labels, tooltips and help text get a shortcut's name from (through
/// [`shortcut_label`]).
pub fn shortcut_text(
    shortcut: &egui::KeyboardShortcut,
    os: egui::os::OperatingSystem,
    has_glyphs: impl FnOnce(&str) -> bool,
) -> String {
    if !os.is_mac() {
        return shortcut.format(&egui::ModifierNames::NAMES, false);
    }
    let symbols = shortcut.format(&egui::ModifierNames::SYMBOLS, true);
    if has_glyphs(&symbols) {
        symbols
    } else {
        shortcut.format(&egui::ModifierNames::NAMES, true)
    }
}

/// [`shortcut_text`] for this window's system and body font.
pub fn shortcut_label(ctx: &egui::Context, shortcut: &egui::KeyboardShortcut) -> String {
    let font = egui::TextStyle::Body.resolve(&ctx.global_style());
    shortcut_text(shortcut, ctx.os(), |text| {
        ctx.fonts_mut(|fonts| fonts.has_glyphs(&font, text))
    })
}

/// ⌘ alone, cut from emoji-icon-font (`assets/fonts/symbols-command.LICENSE.txt` says how):
/// egui's default fonts lack it in the body font.
const COMMAND_SYMBOL_FONT: &[u8] = include_bytes!("../../assets/fonts/symbols-command.ttf");

/// Adds the macOS modifier symbols shortcut labels use to the body font, as last fallbacks: ⌘
/// from [`COMMAND_SYMBOL_FONT`], ⇧ from egui's own Hack (already loaded, for monospace text).
/// Text that has its glyphs in the earlier fonts looks the same.
pub fn add_shortcut_symbols(fonts: &mut egui::FontDefinitions) {
    const NAME: &str = "geoloupe-command-symbol";
    fonts.font_data.insert(
        NAME.to_owned(),
        std::sync::Arc::new(egui::FontData::from_static(COMMAND_SYMBOL_FONT)),
    );
    let body = fonts
        .families
        .entry(egui::FontFamily::Proportional)
        .or_default();
    for name in ["Hack", NAME] {
        if (name == NAME || fonts.font_data.contains_key(name)) && !body.iter().any(|n| n == name) {
            body.push(name.to_owned());
        }
    }
}

/// The redo shortcut to show on `os` ([`REDO_MAC`] on macOS, else [`REDO`]).
pub fn redo_shortcut(os: egui::os::OperatingSystem) -> egui::KeyboardShortcut {
    if os.is_mac() { REDO_MAC } else { REDO }
}

pub fn handle_dropped_files(ctx: &egui::Context, app: &mut App) {
    let dropped: Vec<PathBuf> = ctx.input(|i| {
        i.raw
            .dropped_files
            .iter()
            .map(|f| f.path().to_owned())
            .collect()
    });
    if !dropped.is_empty() {
        app.commands.push(Command::Open(dropped));
    }
}

pub fn handle_keys(ctx: &egui::Context, app: &mut App) {
    // Undo and redo work whatever has focus (a button clicked last keeps it), except while
    // typing; the other keys only when no widget has focus (Space and Enter press a focused
    // button).
    if ctx.text_edit_focused() {
        return;
    }
    let (undo, redo) = undo_redo_pressed(ctx);
    if undo {
        app.commands.push(Command::Undo);
    }
    if redo {
        app.commands.push(Command::Redo);
    }
    if ctx.memory(|m| m.focused().is_some()) {
        return;
    }
    let columns = super::browser::columns_hint(ctx).max(1) as isize;
    let (left, right, up, down, enter, space) = ctx.input(|i| {
        (
            i.key_pressed(egui::Key::ArrowLeft),
            i.key_pressed(egui::Key::ArrowRight),
            i.key_pressed(egui::Key::ArrowUp),
            i.key_pressed(egui::Key::ArrowDown),
            i.key_pressed(egui::Key::Enter),
            i.key_pressed(egui::Key::Space),
        )
    });
    if app.map.keys_to_map {
        map_keys(ctx, app, [left, right, up, down]);
    } else {
        let step = match app.settings.view_mode {
            ViewMode::Grid => columns,
            ViewMode::List => 1,
        };
        for (pressed, delta) in [(left, -1), (right, 1), (up, -step), (down, step)] {
            if pressed {
                app.commands.push(Command::MoveSelection { delta });
            }
        }
    }
    if ctx.input(|i| i.key_pressed(egui::Key::F) && i.modifiers.is_none()) {
        super::map::fit_map(app);
    }
    if enter
        && let Some(at) = app
            .collection
            .selected_photo()
            .and_then(|p| p.focus_on_enter())
    {
        app.commands.push(Command::CenterMap(at));
    }
    if space {
        app.commands.push(Command::Run { all: false });
    }
}

/// Whether [`UNDO`] or redo ([`REDO`], [`REDO_MAC`]) was pressed this frame: `command`, which
/// is Cmd on macOS and Ctrl elsewhere, never `ctrl`.
fn undo_redo_pressed(ctx: &egui::Context) -> (bool, bool) {
    ctx.input(|i| {
        let cmd = i.modifiers.command;
        (
            cmd && !i.modifiers.shift && i.key_pressed(egui::Key::Z),
            cmd && (i.key_pressed(egui::Key::Y)
                || (i.modifiers.shift && i.key_pressed(egui::Key::Z))),
        )
    })
}

/// Arrow keys (`[left, right, up, down]`) pan the map, + and - zoom it.
fn map_keys(ctx: &egui::Context, app: &mut App, [left, right, up, down]: [bool; 4]) {
    let step = super::map::ARROW_PAN_PX;
    let mut delta = egui::Vec2::ZERO;
    for (pressed, d) in [
        (left, egui::vec2(-step, 0.0)),
        (right, egui::vec2(step, 0.0)),
        (up, egui::vec2(0.0, -step)),
        (down, egui::vec2(0.0, step)),
    ] {
        if pressed {
            delta += d;
        }
    }
    if delta != egui::Vec2::ZERO {
        app.map.pan_by(super::map::map_home(), delta);
    }
    let (zoom_in, zoom_out) = ctx.input(|i| {
        (
            i.key_pressed(egui::Key::Plus) || i.key_pressed(egui::Key::Equals),
            i.key_pressed(egui::Key::Minus),
        )
    });
    if zoom_in {
        let _ = app.map.memory.zoom_in();
    }
    if zoom_out {
        let _ = app.map.memory.zoom_out();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::os::OperatingSystem;

    #[test]
    fn shortcuts_say_cmd_on_macos_and_ctrl_elsewhere() {
        let all_glyphs = |_: &str| true;
        for os in [OperatingSystem::Windows, OperatingSystem::Nix] {
            assert_eq!(shortcut_text(&UNDO, os, all_glyphs), "Ctrl+Z");
            assert_eq!(shortcut_text(&redo_shortcut(os), os, all_glyphs), "Ctrl+Y");
            assert_eq!(shortcut_text(&REDO_MAC, os, all_glyphs), "Ctrl+Shift+Z");
        }
        let mac = OperatingSystem::Mac;
        assert_eq!(shortcut_text(&UNDO, mac, all_glyphs), "⌘Z");
        assert_eq!(shortcut_text(&redo_shortcut(mac), mac, all_glyphs), "⇧⌘Z");
        let no_glyphs = |_: &str| false;
        assert_eq!(shortcut_text(&UNDO, mac, no_glyphs), "Cmd+Z");
        assert_eq!(shortcut_text(&REDO_MAC, mac, no_glyphs), "Shift+Cmd+Z");
    }

    /// egui's default fonts have neither ⌘ nor ⇧ in the body font: the names are shown.
    #[test]
    fn labels_with_the_default_fonts() {
        let ctx = egui::Context::default();
        ctx.run_ui(egui::RawInput::default(), |_| {})
            .textures_delta
            .clear();
        ctx.set_os(OperatingSystem::Mac);
        assert_eq!(shortcut_label(&ctx, &UNDO), "Cmd+Z");
        assert_eq!(
            shortcut_label(&ctx, &redo_shortcut(ctx.os())),
            "Shift+Cmd+Z"
        );
        ctx.set_os(OperatingSystem::Windows);
        assert_eq!(shortcut_label(&ctx, &UNDO), "Ctrl+Z");
        assert_eq!(shortcut_label(&ctx, &redo_shortcut(ctx.os())), "Ctrl+Y");
    }

    /// With the symbols geoloupe adds (what the window uses): macOS reads ⌘Z and ⇧⌘Z.
    #[test]
    fn labels_with_geoloupes_fonts() {
        let ctx = egui::Context::default();
        let mut fonts = egui::FontDefinitions::default();
        add_shortcut_symbols(&mut fonts);
        let families = fonts.families.clone();
        add_shortcut_symbols(&mut fonts);
        assert_eq!(fonts.families, families, "added once");
        ctx.set_fonts(fonts);
        ctx.run_ui(egui::RawInput::default(), |_| {})
            .textures_delta
            .clear();
        ctx.set_os(OperatingSystem::Mac);
        assert_eq!(shortcut_label(&ctx, &UNDO), "⌘Z");
        assert_eq!(shortcut_label(&ctx, &redo_shortcut(ctx.os())), "⇧⌘Z");
        ctx.set_os(OperatingSystem::Nix);
        assert_eq!(shortcut_label(&ctx, &UNDO), "Ctrl+Z");
    }

    /// The keys the labels name are the keys that act: `command` is Cmd on macOS and Ctrl
    /// elsewhere, so one test with `command` covers both.
    #[test]
    fn the_labelled_shortcuts_undo_and_redo() {
        let pressed = |modifiers: egui::Modifiers, key: egui::Key| {
            let ctx = egui::Context::default();
            let mut input = egui::RawInput::default();
            input.events.push(egui::Event::ModifiersChanged(modifiers));
            input.events.push(egui::Event::Key {
                key,
                physical_key: None,
                pressed: true,
                repeat: false,
                modifiers,
            });
            let mut seen = (false, false);
            ctx.run_ui(input, |ui| {
                seen = undo_redo_pressed(ui.ctx());
            })
            .textures_delta
            .clear();
            seen
        };
        for shortcut in [UNDO, REDO, REDO_MAC] {
            let (undo, redo) = pressed(shortcut.modifiers, shortcut.logical_key);
            assert_eq!(
                (undo, redo),
                (shortcut == UNDO, shortcut != UNDO),
                "{shortcut:?}"
            );
        }
        // Ctrl alone on a Mac (`ctrl` without `command`) is not the shortcut.
        let mac_ctrl = egui::Modifiers {
            ctrl: true,
            ..Default::default()
        };
        assert_eq!(pressed(mac_ctrl, egui::Key::Z), (false, false));
    }
}
