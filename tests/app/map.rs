//! The map panel, driven headless through egui_kittest with the fake embedder: the wheel zooms
//! about the cursor, arrow keys act on the panel clicked last, "fit" frames the selected
//! photo's points, photos dragged from the browser onto the map are placed there (undoable),
//! and the place search box finds Lihue.

#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use crate::common;

use std::path::{Path, PathBuf};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use geoloupe::app::{App, Command, ModelState};
use geoloupe::domain::Decision;
use geoloupe::geo::LatLon;
use geoloupe::geo::heatmap::{mercator_unit, mercator_unit_to_lat_lon};

use common::app::{TestApp, WINDOW, fake_options, index_of, start_app_sized, step_until};

/// The app with the fake model, no network, and (when given) photos opened.
fn app_with(tmp: &Path, paths: Vec<PathBuf>) -> Harness<'static, TestApp> {
    app_with_size(tmp, paths, WINDOW)
}

fn app_with_size(tmp: &Path, paths: Vec<PathBuf>, size: egui::Vec2) -> Harness<'static, TestApp> {
    let mut options = fake_options(&tmp.join("data"));
    options.settings.view_mode = geoloupe::app::ViewMode::List;
    options.initial_paths = paths;
    start_app_sized(options, size, 10_000)
}

/// kauai.jpg and gps.jpg (which has EXIF GPS) copied into a folder.
fn photo_folder(root: &Path) -> PathBuf {
    let folder = root.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["gps.jpg", "kauai.jpg"] {
        std::fs::copy(
            common::fixtures().join("images").join(name),
            folder.join(name),
        )
        .unwrap();
    }
    folder
}

fn viewport(app: &App) -> egui::Rect {
    app.map.viewport.expect("the map was drawn")
}

fn centre(app: &App) -> LatLon {
    app.map.centre(geoloupe::ui::map::map_home())
}

/// Where a position is on screen (the copy of the world nearest the centre), as walkers
/// projects it: Web Mercator, 256 points per tile.
fn screen_of(app: &App, p: LatLon) -> egui::Pos2 {
    let world = 256.0 * 2f64.powf(app.map.memory.zoom());
    let (cx, cy) = mercator_unit(centre(app));
    let (x, y) = mercator_unit(p);
    let mut dx = x - cx;
    dx -= dx.round();
    viewport(app).center() + egui::vec2((dx * world) as f32, ((y - cy) * world) as f32)
}

/// The position under a screen point.
fn lat_lon_at(app: &App, pos: egui::Pos2) -> LatLon {
    let world = 256.0 * 2f64.powf(app.map.memory.zoom());
    let (cx, cy) = mercator_unit(centre(app));
    let d = pos - viewport(app).center();
    mercator_unit_to_lat_lon(cx + f64::from(d.x) / world, cy + f64::from(d.y) / world)
}

fn click_at(harness: &mut Harness<'_, TestApp>, at: egui::Pos2) {
    harness.event(egui::Event::PointerMoved(at));
    for pressed in [true, false] {
        harness.event(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        harness.step();
    }
}

#[test]
fn the_wheel_zooms_about_the_cursor_without_ctrl() {
    let tmp = tempfile::tempdir().unwrap();
    let mut harness = app_with(tmp.path(), Vec::new());
    harness.step();
    let app = harness.state().app();
    let zoom_before = app.map.memory.zoom();
    let cursor = viewport(app).center() + egui::vec2(150.0, -80.0);
    let under_cursor = lat_lon_at(app, cursor);
    harness.event(egui::Event::PointerMoved(cursor));
    harness.step();
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: egui::vec2(0.0, 3.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: egui::Modifiers::NONE,
    });
    for _ in 0..30 {
        harness.step();
    }
    let app = harness.state().app();
    let zoom_after = app.map.memory.zoom();
    assert!(
        zoom_after > zoom_before + 0.05,
        "zoomed in: {zoom_before} -> {zoom_after}"
    );
    let now = screen_of(app, under_cursor);
    assert!(
        now.distance(cursor) < 2.0,
        "{under_cursor} stayed under the cursor: it is at {now:?}, the cursor at {cursor:?}"
    );
}

#[test]
fn arrow_keys_pan_the_map_only_after_it_was_clicked() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut harness = app_with(tmp.path(), vec![folder]);
    step_until(&mut harness, "the scan", |app| {
        app.collection.photos.len() == 2
    });
    harness.step();
    let first = harness.state().app().collection.view[0];
    let second = harness.state().app().collection.view[1];
    assert_eq!(harness.state().app().collection.selected, Some(first));

    // Click the map (away from every marker and overlay): arrows pan it, the selection stays.
    let map_spot = viewport(harness.state().app()).center() + egui::vec2(0.0, 150.0);
    click_at(&mut harness, map_spot);
    assert!(harness.state().app().map.keys_to_map);
    let before = centre(harness.state().app());
    harness.key_press(egui::Key::ArrowDown);
    harness.step();
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    let after = centre(harness.state().app());
    assert_eq!(harness.state().app().collection.selected, Some(first));
    assert!(after.lat_deg < before.lat_deg - 1.0, "{before} -> {after}");
    assert!(after.lon_deg > before.lon_deg + 1.0, "{before} -> {after}");

    // Click a photo in the browser: arrows move the selection; the map is not panned (it only
    // centres on the newly selected photo, when that has a position).
    let name = harness.state().app().collection.photos[second]
        .entry
        .file_name();
    harness.get_by_label_contains(&name).click();
    harness.step();
    harness.step();
    assert!(!harness.state().app().map.keys_to_map);
    assert_eq!(harness.state().app().collection.selected, Some(second));
    let before_key = centre(harness.state().app());
    harness.key_press(egui::Key::ArrowUp);
    harness.step();
    harness.step();
    let app = harness.state().app();
    assert_eq!(app.collection.selected, Some(first));
    let expected = app.collection.photos[first].focus().unwrap_or(before_key);
    assert!(
        centre(app).distance_km(&expected) < 0.01,
        "{} is not {expected}",
        centre(app)
    );
}

#[test]
fn fit_frames_the_candidates_and_the_exif_position() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut harness = app_with(tmp.path(), vec![folder.join("gps.jpg"), folder]);
    step_until(&mut harness, "the scan and the model", |app| {
        app.collection.photos.len() == 2 && matches!(app.model.state, ModelState::Ready(_))
    });
    let gps = index_of(harness.state().app(), "gps.jpg");
    assert_eq!(harness.state().app().collection.selected, Some(gps));
    harness
        .state_mut()
        .app_mut()
        .commands
        .push(Command::Run { all: false });
    step_until(&mut harness, "the result", |app| {
        app.collection.photos[gps].result.is_some() && app.model.batch.is_none()
    });
    harness.step();
    let points = harness.state().app().fit_points();
    assert!(
        points.len() >= 6,
        "5 candidates and the EXIF position: {points:?}"
    );
    let zoom_before = harness.state().app().map.memory.zoom();

    harness.get_by_label("Fit map").click();
    harness.step();
    harness.step();
    let app = harness.state().app();
    let rect = viewport(app);
    for &p in &points {
        let at = screen_of(app, p);
        assert!(
            rect.shrink(20.0).contains(at),
            "{p} at {at:?} is outside {rect:?}"
        );
    }
    assert_ne!(app.map.memory.zoom(), zoom_before);
    // The candidates the plugin drew are on screen too (fanned out where they overlap).
    assert_eq!(app.map.output.candidates.len(), 5);
    for c in &app.map.output.candidates {
        assert!(rect.contains(c.screen), "#{} at {:?}", c.rank, c.screen);
    }

    // F does the same after the map was moved away.
    harness
        .state_mut()
        .app_mut()
        .map
        .center_at(LatLon::new(-60.0, 100.0));
    harness.step();
    harness.key_press(egui::Key::F);
    harness.step();
    harness.step();
    let app = harness.state().app();
    for &p in &points {
        assert!(viewport(app).contains(screen_of(app, p)), "{p} after F");
    }
}

#[test]
fn dragging_a_photo_onto_the_map_places_it_and_undo_takes_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut harness = app_with(tmp.path(), vec![folder]);
    step_until(&mut harness, "the scan", |app| {
        app.collection.photos.len() == 2
    });
    harness.step();
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    assert_eq!(
        harness.state().app().collection.photos[kauai].decision,
        None
    );

    // Press on the photo's row in the browser, drag it onto the map, let go.
    let row = harness.get_by_label_contains("kauai.jpg").rect().center();
    let drop_at = viewport(harness.state().app()).center() + egui::vec2(-40.0, 60.0);
    let expected = lat_lon_at(harness.state().app(), drop_at);
    harness.event(egui::Event::PointerMoved(row));
    harness.event(egui::Event::PointerButton {
        pos: row,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    harness.step();
    for i in 1..=10 {
        let t = i as f32 / 10.0;
        harness.event(egui::Event::PointerMoved(row + (drop_at - row) * t));
        harness.step();
    }
    harness.get_by_label_contains("Drop on the map to place");
    harness.event(egui::Event::PointerButton {
        pos: drop_at,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    harness.step();
    harness.step();
    let decision = harness.state().app().collection.photos[kauai]
        .decision
        .clone();
    let Some(Decision::Manual { position }) = decision else {
        panic!("placed by hand: {decision:?}");
    };
    assert!(
        position.distance_km(&expected) < 50.0,
        "dropped at {expected}, placed at {position}"
    );

    step_until(&mut harness, "undo enabled", |app| app.can_undo);
    harness.state_mut().app_mut().commands.push(Command::Undo);
    step_until(&mut harness, "the undo", |app| {
        app.collection.photos[kauai].decision.is_none()
    });
}

#[test]
fn the_place_search_finds_lihue_and_centres_the_map_there() {
    let tmp = tempfile::tempdir().unwrap();
    let mut harness = app_with(tmp.path(), Vec::new());
    harness.get_by_label("Find place").click();
    harness.step();
    harness.get_by_label("Find place").type_text("lihue");
    step_until(&mut harness, "the place list", |app| {
        !app.map.search.hits.is_empty()
    });
    harness.step();
    harness.get_by_label("Lihue, Hawaii, United States").click();
    harness.step();
    harness.step();
    let app = harness.state().app();
    let lihue = LatLon::new(21.98, -159.37);
    assert!(
        centre(app).distance_km(&lihue) < 2.0,
        "centred on {}",
        centre(app)
    );
    assert!(app.map.memory.zoom() >= 10.0);
    // With the network off, the basemap names the places around.
    step_until(&mut harness, "the labels", |app| {
        !app.map.labels.labels.is_empty()
    });
    assert!(
        harness
            .state()
            .app()
            .map
            .labels
            .labels
            .iter()
            .any(|l| l.name == "Lihue"),
        "{:?}",
        harness.state().app().map.labels.labels
    );
}

#[test]
fn the_map_wraps_at_the_antimeridian_and_nearby_exif_markers_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    // Three photos taken at the same spot: one marker with a count at low zoom.
    for copy in ["gps-2.jpg", "gps-3.jpg"] {
        std::fs::copy(folder.join("gps.jpg"), folder.join(copy)).unwrap();
    }
    let mut harness = app_with(tmp.path(), vec![folder.join("kauai.jpg"), folder]);
    step_until(&mut harness, "the scan", |app| {
        app.collection.photos.len() == 4
    });
    let gps = index_of(harness.state().app(), "gps.jpg");
    let spot = harness.state().app().collection.photos[gps]
        .entry
        .gps()
        .unwrap();
    harness.state_mut().app_mut().map.center_at(spot);
    harness.step();
    harness.step();
    let app = harness.state().app();
    assert_eq!(app.map.output.exif_markers, 3);
    assert_eq!(app.map.output.exif_clusters, vec![3]);

    // kauai.jpg placed just west of the antimeridian, the map just east of it: the pin is
    // drawn beside the centre, not a world away.
    let kauai = index_of(app, "kauai.jpg");
    let west_of_it = LatLon::new(-17.0, -179.5);
    harness
        .state_mut()
        .app_mut()
        .commands
        .push(Command::Accept {
            index: kauai,
            position: west_of_it,
            source: geoloupe::app::DecisionSource::Manual,
        });
    harness.step();
    {
        let map = &mut harness.state_mut().app_mut().map;
        map.center_at(LatLon::new(-17.0, 179.5));
        map.memory.set_zoom(6.0).unwrap();
    }
    harness.step();
    harness.step();
    let app = harness.state().app();
    let rect = viewport(app);
    let pin = app.map.output.accepted_screen.expect("the pin is drawn");
    assert!(
        (pin.x - rect.center().x).abs() < 60.0 && rect.contains(pin),
        "pin at {pin:?}, map centre {:?}",
        rect.center()
    );
    // Pan east with the arrow keys (after clicking the map): the centre comes round to -180..
    click_at(&mut harness, rect.center() + egui::vec2(100.0, 150.0));
    for _ in 0..3 {
        harness.key_press(egui::Key::ArrowRight);
        harness.step();
    }
    let lon = centre(harness.state().app()).lon_deg;
    assert!((-180.0..-170.0).contains(&lon), "centre at {lon}° E");
}

#[test]
fn the_search_box_and_the_zoom_buttons_fit_the_map_of_a_small_window() {
    for size in [egui::vec2(1024.0, 700.0), egui::vec2(1600.0, 1000.0)] {
        let tmp = tempfile::tempdir().unwrap();
        let folder = photo_folder(tmp.path());
        let mut harness = app_with_size(tmp.path(), vec![folder.join("gps.jpg"), folder], size);
        step_until(&mut harness, "the scan", |app| {
            app.collection.photos.len() == 2
        });
        harness.step();
        harness.step();
        let map = viewport(harness.state().app());
        let search = harness.get_by_label("Find place").rect();
        let search_label = harness.get_by_label_contains("Find place").rect();
        let buttons = ["Fit map", "Centre", " + ", " - "].map(|b| harness.get_by_label(b).rect());
        for r in buttons.iter().chain([&search, &search_label]) {
            assert!(
                map.contains_rect(*r),
                "{size:?}: {r:?} outside the map {map:?}"
            );
        }
        for b in &buttons {
            assert!(
                !b.intersects(search),
                "{size:?}: a zoom button {b:?} under the search box {search:?}"
            );
        }
    }
}
