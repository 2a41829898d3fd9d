//! Keys and dropped files, turned into [`Command`]s: arrows act on the panel clicked last (they
//! move the browser's selection, or pan the map when the map was clicked, where + and - zoom),
//! F fits the map to the selected photo, Enter centres the map, Space runs the model on the
//! selection (the app runs only a ready model), Ctrl+Z / Ctrl+Y (or Ctrl+Shift+Z) undo and
//! redo decisions. Nothing here while a text field has focus.

use std::path::PathBuf;

use crate::app::{App, Command, ViewMode};

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
    let (undo, redo) = ctx.input(|i| {
        let cmd = i.modifiers.command;
        (
            cmd && !i.modifiers.shift && i.key_pressed(egui::Key::Z),
            cmd && (i.key_pressed(egui::Key::Y)
                || (i.modifiers.shift && i.key_pressed(egui::Key::Z))),
        )
    });
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
