//! Issue 9, "view & review", driven headless through egui_kittest with the fake embedder: the
//! default write set (accepted only; estimates only after an explicit, confirmed choice with
//! their count), review mode's keys, the layout of a 1024 x 700 window, Accept buttons that
//! stay put, the preview and compare mode, the "without GPS" filter, hidden photos not run on,
//! "run on new or stale", and undo saying which photo it changed.

#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use std::path::{Path, PathBuf};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use geoloupe::app::export::WriteScope;
use geoloupe::app::{AppOptions, Command, DecisionSource};
use geoloupe::domain::Decision;

use crate::common;

use common::app::{
    SMALL_WINDOW, TestApp, WINDOW, fake_options as options, index_of, located_folder, photo_folder,
    start_app_sized, step_until,
};

fn fixture_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

fn start_app(options: AppOptions, size: egui::Vec2) -> Harness<'static, TestApp> {
    start_app_sized(options, size, 10_000)
}

fn accept_top1(harness: &mut Harness<'static, TestApp>, name: &str) -> usize {
    let app = harness.state_mut().app_mut();
    let index = index_of(app, name);
    let position = app.collection.photos[index]
        .result
        .as_ref()
        .unwrap()
        .candidates[0]
        .position;
    app.apply(Command::Accept {
        index,
        position,
        source: DecisionSource::Candidate { rank: 1 },
    });
    harness.step();
    index
}

#[test]
fn review_writes_take_accepted_locations_unless_estimates_are_confirmed() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, folder) = located_folder(tmp.path(), WINDOW);
    accept_top1(&mut harness, "kauai.jpg");

    // The dry run: the accepted location only, and what is left out, with the count.
    harness.get_by_label("Write XMP sidecars…").click();
    step_until(&mut harness, "the dry run", |app| {
        app.jobs.write_confirm.is_some()
    });
    harness.step();
    let plan = harness.state().app().jobs.write_confirm.clone().unwrap();
    assert_eq!(plan.scope, WriteScope::AcceptedOnly);
    assert_eq!(plan.records.len(), 1);
    assert_eq!(plan.records[0].file_name(), "kauai.jpg");
    assert_eq!((plan.counts.accepted, plan.counts.unreviewed), (1, 2));
    harness.get_by_label_contains("the 2 unreviewed estimates are left out");
    harness.get_by_label_contains("(accepted)");

    // Asking is not enough: a second confirmation says how many and what they are.
    harness
        .get_by_label("Also write the 2 unreviewed estimates…")
        .click();
    for _ in 0..3 {
        harness.step();
    }
    harness.get_by_label_contains("Write 2 locations nobody reviewed?");
    assert_eq!(
        harness
            .state()
            .app()
            .jobs
            .write_confirm
            .as_ref()
            .unwrap()
            .records
            .len(),
        1,
        "nothing changed before the confirmation"
    );
    harness.get_by_label("Keep accepted only").click();
    for _ in 0..3 {
        harness.step();
    }
    assert!(harness.query_by_label("Include 2 estimates").is_none());
    harness
        .get_by_label("Also write the 2 unreviewed estimates…")
        .click();
    for _ in 0..3 {
        harness.step();
    }
    harness.get_by_label("Include 2 estimates").click();
    step_until(&mut harness, "the dry run with the estimates", |app| {
        app.jobs
            .write_confirm
            .as_ref()
            .is_some_and(|p| p.scope == WriteScope::WithEstimates)
    });
    harness.step();
    let plan = harness.state().app().jobs.write_confirm.clone().unwrap();
    assert_eq!(plan.records.len(), 3);
    harness.get_by_label_contains("each marked “estimate (unreviewed)”");
    assert_eq!(
        harness
            .query_all_by_label_contains("(estimate (unreviewed))")
            .count(),
        1,
        "the dry run's lines say which are estimates (small.png; gps.jpg has a fix: skipped)"
    );
    harness.get_by_label("Write sidecars").click();
    step_until(&mut harness, "the writes", |app| {
        app.jobs.write_confirm.is_none() && app.jobs.export.is_none()
    });
    let kauai = std::fs::read_to_string(folder.join("kauai.jpg.xmp")).unwrap();
    assert!(kauai.contains("accepted"), "{kauai}");
    let small = std::fs::read_to_string(folder.join("sub/small.png.xmp")).unwrap();
    assert!(small.contains("estimate (unreviewed)"), "{small}");

    // Export: the same choice, accepted only unless ticked.
    harness.state_mut().app_mut().apply(Command::OpenExport);
    for _ in 0..3 {
        harness.step();
    }
    harness.get_by_label("Export 1 photos…");
    harness
        .get_by_label_contains("Also export the 2 unreviewed estimates")
        .click();
    for _ in 0..3 {
        harness.step();
    }
    harness.get_by_label("Export 3 photos…");
    harness.get_by_label("Cancel").click();
    harness.step();
    assert!(harness.state().app().jobs.export_choice.is_none());

    let export = |harness: &mut Harness<'static, TestApp>, scope, name: &str| {
        let out = tmp.path().join(name);
        let app = harness.state_mut().app_mut();
        app.jobs.export_scope = scope;
        app.apply(Command::ExportTo(out.clone()));
        step_until(harness, "the export", |app| app.jobs.export.is_none());
        std::fs::read_to_string(out).unwrap()
    };
    let accepted = export(&mut harness, WriteScope::AcceptedOnly, "accepted.csv");
    let rows: Vec<&str> = accepted.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{accepted}");
    assert!(rows[0].contains("kauai.jpg") && rows[0].contains(",accepted,"));
    let all = export(&mut harness, WriteScope::WithEstimates, "all.csv");
    assert!(accepted.lines().next().unwrap().contains(",review,"));
    assert_eq!(all.lines().count(), 4, "{all}");
    assert_eq!(
        all.lines()
            .filter(|l| l.contains(",estimate (unreviewed),"))
            .count(),
        2,
        "{all}"
    );
}

#[test]
fn review_mode_steps_through_unreviewed_results_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _) = located_folder(tmp.path(), WINDOW);
    // The queue is the view's order (by path): gps.jpg, kauai.jpg, sub/small.png.
    let (gps, kauai, small) = {
        let app = harness.state().app();
        (
            index_of(app, "gps.jpg"),
            index_of(app, "kauai.jpg"),
            index_of(app, "small.png"),
        )
    };
    // R starts review mode on the view's located photos without a decision.
    harness.key_press(egui::Key::R);
    harness.step();
    harness.step();
    let review = harness.state().app().viewer.review.clone().expect("review");
    assert_eq!(review.queue, vec![gps, kauai, small]);
    assert_eq!(harness.state().app().collection.selected, Some(gps));
    harness.get_by_label_contains("Reviewing 1 of 3");
    harness.get_by_label_contains("P place by hand");

    // 2 accepts candidate #2 and moves on.
    harness.key_press(egui::Key::Num2);
    harness.step();
    harness.step();
    let app = harness.state().app();
    let second = app.collection.photos[gps]
        .result
        .as_ref()
        .unwrap()
        .candidates[1]
        .position;
    assert_eq!(
        app.collection.photos[gps].decision,
        Some(Decision::Accepted {
            rank: 2,
            position: second
        })
    );
    assert_eq!(app.collection.selected, Some(kauai));
    // The map frames the photo now under review: its candidates' box holds the map's centre.
    let centre = app.map.centre(geoloupe::ui::map::map_home());
    let candidates = &app.collection.photos[kauai]
        .result
        .as_ref()
        .unwrap()
        .candidates;
    let (lat_min, lat_max, lon_min, lon_max) = candidates.iter().fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(a, b, c, d), x| {
            let p = x.position;
            (
                a.min(p.lat_deg),
                b.max(p.lat_deg),
                c.min(p.lon_deg),
                d.max(p.lon_deg),
            )
        },
    );
    assert!(
        (lat_min - 0.5..=lat_max + 0.5).contains(&centre.lat_deg)
            && (lon_min - 0.5..=lon_max + 0.5).contains(&centre.lon_deg),
        "the map's centre {centre} is not among kauai.jpg's candidates"
    );

    // Right skips (no decision), Left goes back.
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    harness.step();
    assert_eq!(harness.state().app().collection.selected, Some(small));
    assert_eq!(
        harness.state().app().collection.photos[kauai].decision,
        None
    );
    harness.key_press(egui::Key::ArrowLeft);
    harness.step();
    harness.step();
    assert_eq!(harness.state().app().collection.selected, Some(kauai));

    // Enter accepts #1.
    harness.key_press(egui::Key::Enter);
    harness.step();
    harness.step();
    let app = harness.state().app();
    assert!(matches!(
        app.collection.photos[kauai].decision,
        Some(Decision::Accepted { rank: 1, .. })
    ));
    assert_eq!(app.collection.selected, Some(small));

    // P turns on the map's place mode; the click on the map decides and goes on.
    harness.key_press(egui::Key::P);
    harness.step();
    harness.step();
    assert!(harness.state().app().map.place_mode);
    let map = harness.state().app().viewer.rects.map.unwrap();
    let at = map.center() + egui::vec2(0.0, 60.0);
    for pressed in [true, false] {
        harness.event(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        harness.step();
    }
    harness.step();
    let app = harness.state().app();
    assert!(
        matches!(
            app.collection.photos[small].decision,
            Some(Decision::Manual { .. })
        ),
        "{:?}",
        app.collection.photos[small].decision
    );
    assert!(!app.map.place_mode);
    harness.get_by_label_contains("All reviewed");

    // Esc leaves, with what was done.
    harness.key_press(egui::Key::Escape);
    harness.step();
    harness.step();
    let app = harness.state().app();
    assert!(app.viewer.review.is_none());
    assert!(
        app.messages
            .last()
            .is_some_and(|m| m.starts_with("Review: 3 accepted, 1 skipped")),
        "{:?}",
        app.messages
    );
    // Outside review mode the number keys do nothing.
    harness.key_press(egui::Key::Num1);
    harness.step();
    assert_eq!(
        harness
            .state()
            .app()
            .collection
            .photos
            .iter()
            .filter(|p| p.decision.is_some())
            .count(),
        3
    );
}

#[test]
fn review_layout_at_1024_by_700_keeps_the_map_usable_and_panels_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _) = located_folder(tmp.path(), SMALL_WINDOW);
    // A long message in the status bar must not widen anything for good.
    harness
        .state_mut()
        .app_mut()
        .messages
        .push("x ".repeat(400));
    for _ in 0..5 {
        harness.step();
    }
    let check = |harness: &Harness<'static, TestApp>| {
        let rects = harness.state().app().viewer.rects;
        let map = rects.map.expect("the map is drawn");
        assert!(
            map.width() >= 300.0 && map.height() >= 250.0,
            "map {map:?} in {rects:?}"
        );
        assert!(rects.preview.is_some(), "{rects:?}");
        assert_eq!(rects.overlaps(), Vec::new(), "{rects:?}");
        for (name, rect) in rects.drawn() {
            assert!(
                rect.max.x <= 1024.5 && rect.min.x >= -0.5,
                "{name} {rect:?} outside the window"
            );
        }
    };
    check(&harness);
    // The side panel dragged very wide is capped.
    let side = harness.state().app().viewer.rects.side.unwrap();
    let grip = egui::pos2(side.min.x + 1.0, side.center().y);
    harness.hover_at(grip);
    harness.step();
    harness.drag_at(grip);
    harness.step();
    harness.hover_at(egui::pos2(40.0, side.center().y));
    harness.step();
    harness.drop_at(egui::pos2(40.0, side.center().y));
    for _ in 0..3 {
        harness.step();
    }
    check(&harness);
    // Panels can be hidden.
    harness.get_by_label("Details").click();
    harness.step();
    harness.step();
    let rects = harness.state().app().viewer.rects;
    assert!(rects.side.is_none());
    assert!(rects.map.unwrap().width() >= 300.0);
}

#[test]
fn review_accept_buttons_stay_put_when_one_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _) = located_folder(tmp.path(), WINDOW);
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: kauai,
        extend: false,
    });
    harness.step();
    harness.step();
    let before = harness.get_by_label("Accept #1").rect();
    harness.get_by_label("Accept #2").click();
    harness.step();
    harness.step();
    assert!(matches!(
        harness.state().app().collection.photos[kauai].decision,
        Some(Decision::Accepted { rank: 2, .. })
    ));
    harness.get_by_label("Accepted #2");
    let after = harness.get_by_label("Accept #1").rect();
    assert_eq!(before, after, "Accept #1 did not move");
}

#[test]
fn review_preview_shows_the_photo_large_and_compares_two() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut options = options(&tmp.path().join("data"));
    options.initial_paths = vec![folder.join("kauai.jpg"), folder];
    let mut harness = start_app(options, WINDOW);
    step_until(&mut harness, "the scan", |app| {
        app.collection.photos.len() == 4
    });
    step_until(&mut harness, "the preview", |app| {
        app.viewer.previews.cached() == 1 && !app.viewer.previews.is_loading()
    });
    harness.step();
    harness.get_by_label("Preview of kauai.jpg");
    harness.get_by_label_contains(" px · ");
    let rects = harness.state().app().viewer.rects;
    assert!(rects.preview.is_some());
    assert_eq!(rects.overlaps(), Vec::new(), "{rects:?}");

    // 100 % and back to fit.
    harness.get_by_label("100 %").click();
    harness.step();
    harness.step();
    assert!(harness.state().app().viewer.zoom.scale.is_some());
    harness.get_by_label("Fit").click();
    harness.step();
    assert_eq!(harness.state().app().viewer.zoom.scale, None);

    // Compare: pin kauai.jpg, select gps.jpg: both shown.
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    harness.get_by_label("Compare…").click();
    harness.step();
    assert_eq!(harness.state().app().viewer.compare_with, Some(kauai));
    let gps = index_of(harness.state().app(), "gps.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: gps,
        extend: false,
    });
    step_until(&mut harness, "the second preview", |app| {
        app.viewer.previews.cached() == 2 && !app.viewer.previews.is_loading()
    });
    harness.step();
    harness.get_by_label("Preview of kauai.jpg");
    harness.get_by_label("Preview of gps.jpg");
    harness.get_by_label("Stop comparing").click();
    harness.step();
    harness.step();
    assert!(harness.query_by_label("Preview of kauai.jpg").is_none());

    // The empty file can't be decoded: the pane says so.
    let empty = index_of(harness.state().app(), "empty.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: empty,
        extend: false,
    });
    step_until(&mut harness, "the failed decode", |app| {
        !app.viewer.previews.is_loading()
    });
    harness.step();
    harness.step();
    harness.get_by_label("Preview of empty.jpg");
}

#[test]
fn review_filters_runs_and_undo_say_what_they_touch() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, folder) = located_folder(tmp.path(), WINDOW);

    // Every usable photo has a current result: nothing new or stale.
    harness.get_by_label("Run on new or stale (0)");
    // A new photo: only it is run.
    std::fs::copy(fixture_images().join("kauai.jpg"), folder.join("new.jpg")).unwrap();
    harness
        .state_mut()
        .app_mut()
        .apply(Command::Open(vec![folder.join("new.jpg")]));
    step_until(&mut harness, "the new photo", |app| {
        app.collection.photos.len() == 5 && app.identify_pending == 0
    });
    harness.step();
    harness.get_by_label("Run on new or stale (1)").click();
    harness.step();
    assert_eq!(harness.state().app().model.batch.as_ref().unwrap().total, 1);
    step_until(&mut harness, "the run", |app| app.model.batch.is_none());
    harness.step();
    harness.get_by_label("Run on new or stale (0)");

    // "Without EXIF GPS" hides gps.jpg, which then is no target of "Run on selection".
    let gps = index_of(harness.state().app(), "gps.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: gps,
        extend: false,
    });
    harness.step();
    harness.get_by_label("Run on selection (1)");
    {
        let app = harness.state_mut().app_mut();
        app.settings.state_filter = geoloupe::app::StateFilter::NoExifGps;
        app.collection.mark_view_dirty();
    }
    harness.step();
    harness.step();
    let app = harness.state().app();
    assert!(!app.collection.view.contains(&gps));
    assert_eq!(app.collection.view.len(), 4, "all but gps.jpg");
    assert!(app.collection.runnable(false).is_empty());
    harness.get_by_label("Run on selection (0)");

    // Undo with another photo selected says which photo changed, and selects it.
    let kauai = accept_top1(&mut harness, "kauai.jpg");
    step_until(&mut harness, "the decision saved", |app| {
        app.can_undo && app.decisions_in_flight() == 0
    });
    let new = index_of(harness.state().app(), "new.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: new,
        extend: false,
    });
    harness.step();
    harness.get_by_label("Undo").click();
    step_until(&mut harness, "the undo", |app| {
        app.collection.photos[kauai].decision.is_none()
    });
    harness.step();
    let app = harness.state().app();
    assert_eq!(app.collection.selected, Some(kauai));
    assert!(
        app.messages
            .last()
            .is_some_and(|m| m.contains("kauai.jpg") && m.contains("no accepted location")),
        "{:?}",
        app.messages
    );
}

#[test]
fn review_layout_at_1600_by_1000_puts_the_preview_beside_the_map() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _) = located_folder(tmp.path(), egui::Vec2::new(1600.0, 1000.0));
    for _ in 0..3 {
        harness.step();
    }
    let rects = harness.state().app().viewer.rects;
    let (map, preview) = (rects.map.unwrap(), rects.preview.unwrap());
    assert!(map.width() >= 320.0 && map.height() >= 600.0, "{rects:?}");
    assert!(
        preview.min.x >= map.max.x - 1.0,
        "beside, to the right: {rects:?}"
    );
    assert!(preview.width() >= 260.0, "{rects:?}");
    assert_eq!(rects.overlaps(), Vec::new(), "{rects:?}");
    assert!(rects.drawn().iter().all(|(_, r)| r.max.x <= 1600.5));
}

/// A dialog over review mode takes the keys: "1" pressed while the export window asks which
/// photos to take decides nothing behind it.
#[test]
fn review_keys_do_nothing_while_a_dialog_is_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _) = located_folder(tmp.path(), WINDOW);
    harness.key_press(egui::Key::R);
    harness.step();
    harness.step();
    let first = harness
        .state()
        .app()
        .collection
        .selected
        .expect("review selects");
    harness
        .state_mut()
        .app_mut()
        .commands
        .push(Command::OpenExport);
    harness.step();
    harness.step();
    assert!(harness.state().app().jobs.export_choice.is_some());
    harness.key_press(egui::Key::Num1);
    harness.step();
    harness.step();
    let app = harness.state().app();
    assert_eq!(app.collection.photos[first].decision, None);
    assert_eq!(app.collection.selected, Some(first));
}
