//! The region control in the app (issue 11, item 3), driven headless through egui_kittest with
//! the fake embedder: a country typed into the inspector with completion restricts the
//! selected photo's candidates and heat to the points inside, says how much of the model's
//! belief lay there, goes into exports, and clearing it restores the unconstrained answer; a
//! box with no gallery point inside gives the clear error.

#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use crate::common;

use egui_kittest::kittest::Queryable as _;
use geoloupe::app::Command;
use geoloupe::geo::parse_region;

use common::app::{index_of, located_folder, step_until};

/// Tall enough that the inspector's Region section, below five candidates with their refined
/// rows, is on screen without scrolling the right panel (egui does not click what is scrolled
/// out of view).
const WINDOW: egui::Vec2 = egui::Vec2::new(1400.0, 1400.0);

#[test]
fn a_country_with_completion_restricts_and_clearing_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _folder) = located_folder(tmp.path(), WINDOW);
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: kauai,
        extend: false,
    });
    harness.step();
    harness.step();
    let path = harness.state().app().collection.photos[kauai]
        .entry
        .path
        .clone();
    let before = harness.state().app().collection.photos[kauai]
        .result
        .clone()
        .unwrap();

    // Typing part of a name offers the country; clicking it restricts the photo.
    let field = harness.get_by_label("Restrict to a country or box");
    field.focus();
    harness.step();
    harness
        .get_by_label("Restrict to a country or box")
        .type_text("Ukra");
    harness.step();
    harness.step();
    harness.get_by_label("Ukraine (UA)").click();
    step_until(&mut harness, "the re-ranking", |app| {
        app.regions.active.contains_key(&path)
    });
    harness.step();
    let ukraine = parse_region("UA").unwrap();
    let app = harness.state().app();
    let result = app.collection.photos[kauai].result.clone().unwrap();
    assert!(!result.candidates.is_empty());
    for c in &result.candidates {
        assert!(ukraine.contains(c.position), "{:?}", c.position);
    }
    for h in &result.heat {
        assert!(ukraine.contains(h.position), "{:?}", h.position);
    }
    let held: f32 = result.heat.iter().map(|h| h.probability).sum();
    assert!((held - 1.0).abs() < 1e-3, "renormalised inside: {held}");
    let constraint = app.regions.constraint(&path).unwrap().clone();
    assert!(constraint.share_inside > 0.0 && constraint.share_inside < 1.0);
    assert_eq!(constraint.spec, "country:UA");
    harness.get_by_label(&constraint.sentence());
    assert!(
        constraint
            .sentence()
            .ends_with("of the model's belief lies inside Ukraine (UA)")
    );
    // Exports record the region and the share.
    let records = harness.state().app().export_records();
    let record = records.iter().find(|r| r.path == path).unwrap();
    assert_eq!(record.within.as_ref(), Some(&constraint));
    assert!(ukraine.contains(record.location));

    // Clearing it restores the unconstrained answer.
    harness.get_by_label("Clear region").click();
    harness.step();
    harness.step();
    let app = harness.state().app();
    assert!(app.regions.active.is_empty());
    let after = app.collection.photos[kauai].result.clone().unwrap();
    assert_eq!(after.candidates, before.candidates);
    assert_eq!(after.heat, before.heat);

    // A box with no gallery point inside (the fake's grid is every 5 degrees) says so.
    harness.state_mut().app_mut().apply(Command::RestrictTo {
        paths: vec![path.clone()],
        region: parse_region("0.1,0.1,0.2,0.2").unwrap(),
    });
    step_until(&mut harness, "the failure", |app| {
        app.regions.errors.contains_key(&path)
    });
    harness.step();
    let error = harness.state().app().regions.errors[&path].clone();
    assert!(
        error.starts_with("no gallery point lies inside the box 0.1,0.1,0.2,0.2"),
        "{error}"
    );
    harness.get_by_label(&error);
    // The unconstrained answer stays.
    assert_eq!(
        harness.state().app().collection.photos[kauai]
            .result
            .as_ref()
            .unwrap()
            .candidates,
        before.candidates
    );
}

/// Clicks the window at `pos` (press and release on one frame each).
fn click_at(harness: &mut egui_kittest::Harness<'static, common::app::TestApp>, pos: egui::Pos2) {
    harness
        .input_mut()
        .events
        .push(egui::Event::PointerMoved(pos));
    harness.step();
    for pressed in [true, false] {
        harness.input_mut().events.push(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        harness.step();
    }
}

#[test]
fn a_box_drawn_on_the_map_restricts_the_photo() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _folder) = located_folder(tmp.path(), WINDOW);
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: kauai,
        extend: false,
    });
    harness.step();
    harness.step();
    let path = harness.state().app().collection.photos[kauai]
        .entry
        .path
        .clone();
    harness.get_by_label("Draw a box on the map").click();
    harness.step();
    harness.step();
    assert!(harness.state().app().regions.drawing.is_some());
    let rect = harness.state().app().map.viewport.unwrap();
    let (a, b) = (
        rect.center() - egui::vec2(60.0, 60.0),
        rect.center() + egui::vec2(60.0, 60.0),
    );
    click_at(&mut harness, a);
    assert_eq!(
        harness
            .state()
            .app()
            .regions
            .drawing
            .as_ref()
            .map(|d| d.vertices.len()),
        Some(1)
    );
    click_at(&mut harness, b);
    step_until(&mut harness, "the re-ranking", |app| {
        app.regions.active.contains_key(&path) || app.regions.errors.contains_key(&path)
    });
    let app = harness.state().app();
    assert!(app.regions.drawing.is_none());
    let restricted = app
        .regions
        .active
        .get(&path)
        .unwrap_or_else(|| panic!("{:?}", app.regions.errors.get(&path)));
    assert!(restricted.constraint.spec.starts_with("box:"));
    for c in &app.collection.photos[kauai]
        .result
        .as_ref()
        .unwrap()
        .candidates
    {
        assert!(restricted.region.contains(c.position), "{:?}", c.position);
    }
}

#[test]
fn a_polygon_drawn_on_the_map_closes_with_enter() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _folder) = located_folder(tmp.path(), WINDOW);
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: kauai,
        extend: false,
    });
    harness.step();
    harness.step();
    let path = harness.state().app().collection.photos[kauai]
        .entry
        .path
        .clone();
    harness.get_by_label("Draw a polygon").click();
    harness.step();
    harness.step();
    let rect = harness.state().app().map.viewport.unwrap();
    let c = rect.center();
    for offset in [
        egui::vec2(-80.0, 60.0),
        egui::vec2(80.0, 60.0),
        egui::vec2(0.0, -80.0),
    ] {
        click_at(&mut harness, c + offset);
    }
    assert_eq!(
        harness
            .state()
            .app()
            .regions
            .drawing
            .as_ref()
            .map(|d| d.vertices.len()),
        Some(3)
    );
    harness.input_mut().events.push(egui::Event::Key {
        key: egui::Key::Enter,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: egui::Modifiers::NONE,
    });
    harness.step();
    step_until(&mut harness, "the re-ranking", |app| {
        app.regions.active.contains_key(&path) || app.regions.errors.contains_key(&path)
    });
    let app = harness.state().app();
    assert!(app.regions.drawing.is_none());
    let restricted = app
        .regions
        .active
        .get(&path)
        .unwrap_or_else(|| panic!("{:?}", app.regions.errors.get(&path)));
    assert!(restricted.constraint.spec.starts_with("polygon:"));
    for c in &app.collection.photos[kauai]
        .result
        .as_ref()
        .unwrap()
        .candidates
    {
        assert!(restricted.region.contains(c.position), "{:?}", c.position);
    }
}
