//! The desktop app, driven headless through egui_kittest with the fake embedder (no model
//! files, no network): open a folder (dropped on the window), select a photo, run, see the
//! ranked candidates in the inspector and in the map plugin's output, accept one, undo, redo,
//! reopen from the database without recomputing, and cancel a batch mid-way.
//!
//! The app's other tests are this crate's modules, one file per part of the app: one test
//! executable for all of them, since each one links every dependency (0.4 GB, and a link step,
//! apiece).

#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use std::path::{Path, PathBuf};
use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use geoloupe::app::{App, AppOptions, Command, DecisionSource, ModelChoice, ModelState};
use geoloupe::domain::Decision;
use geoloupe::geo::{ClaimSource, LatLon};
use geoloupe::runtime::inference::FakeEmbedder;

#[path = "../common/mod.rs"]
mod common;

mod claim;
mod describe;
mod heat;
mod map;
mod model;
mod region;
mod review;
mod track;

use common::app::{
    TestApp, WINDOW, index_of, located_folder, options_with as options, photo_folder,
    run_all_shown, start_app_sized, step_until,
};

fn fixture_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

fn start_app(options: AppOptions) -> Harness<'static, TestApp> {
    start_app_sized(options, WINDOW, 10_000)
}

fn start_app_with_max_steps(options: AppOptions, max_steps: u64) -> Harness<'static, TestApp> {
    start_app_sized(options, WINDOW, max_steps)
}

/// A file or folder dropped onto the window (what the windowing integration hands egui).
#[derive(Debug)]
struct DroppedPath(PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_onto_window(harness: &mut Harness<'_, TestApp>, path: &Path) {
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(path.to_owned())));
}

#[test]
fn open_run_accept_undo_and_reopen_from_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let data_dir = tmp.path().join("data");
    let mut harness = start_app(options(&data_dir, ModelChoice::Fake(FakeEmbedder::new())));

    // Open the folder by dropping it on the window.
    drop_onto_window(&mut harness, &folder);
    step_until(&mut harness, "the scan", |app| {
        app.collection.photos.len() == 4
    });
    step_until(&mut harness, "the model", |app| {
        matches!(app.model.state, ModelState::Ready(_))
    });
    let app = harness.state().app();
    let empty = index_of(app, "empty.jpg");
    assert!(
        app.collection.photos[empty].error().is_some(),
        "the empty file is listed with its error"
    );
    assert!(
        app.collection.photos[index_of(app, "gps.jpg")]
            .entry
            .gps()
            .is_some()
    );

    // Select kauai.jpg in the grid (by its accessible label).
    harness.get_by_label_contains("kauai.jpg").click();
    harness.step();
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    assert_eq!(harness.state().app().collection.selected, Some(kauai));
    harness.get_by_label_contains("Not located yet");

    // Run on the selection.
    harness.get_by_label("Run on selection (1)").click();
    step_until(&mut harness, "the result", |app| {
        app.collection.photos[kauai].result.is_some() && app.model.batch.is_none()
    });
    harness.step();
    harness.step();

    // Ranked candidates in the inspector...
    let result = harness.state().app().collection.photos[kauai]
        .result
        .clone()
        .expect("located");
    assert_eq!(result.candidates.len(), 5);
    assert_eq!(
        result.candidates[0].position,
        FakeEmbedder::peak_for("kauai.jpg")
    );
    for rank in 1..=5 {
        harness.get_by_label(&format!("Accept #{rank}"));
    }
    harness.get_by_label(&format!("{:.1}%", result.candidates[0].probability * 100.0));
    // ...and on the map: the plugin drew each candidate, ranked, and the heatmap has points.
    let drawn = harness.state().app().map.output.candidates.clone();
    assert_eq!(
        drawn.iter().map(|c| c.rank).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    for (d, c) in drawn.iter().zip(&result.candidates) {
        assert_eq!(d.position, c.position);
        assert_eq!(d.probability, c.probability);
    }
    assert!(harness.state().app().map.heat.point_count() > 0);

    // Accept candidate #2: the inspector and the map show it.
    harness.get_by_label("Accept #2").click();
    harness.step();
    harness.step();
    let expected = Decision::Accepted {
        rank: 2,
        position: result.candidates[1].position,
    };
    assert_eq!(
        harness.state().app().collection.photos[kauai].decision,
        Some(expected.clone())
    );
    assert!(harness.state().app().map.output.accepted_screen.is_some());
    harness.get_by_label_contains("(candidate #2)");

    // Undo, then redo (the library thread answers: the buttons follow its state).
    step_until(&mut harness, "undo enabled", |app| app.can_undo);
    harness.get_by_label("Undo").click();
    step_until(&mut harness, "the undo", |app| {
        app.collection.photos[kauai].decision.is_none()
    });
    harness.step();
    assert_eq!(
        harness.state().app().collection.photos[kauai].decision,
        None
    );
    assert!(harness.state().app().map.output.accepted_screen.is_none());
    step_until(&mut harness, "redo enabled", |app| app.can_redo);
    harness.get_by_label("Redo").click();
    step_until(&mut harness, "the redo", |app| {
        app.collection.photos[kauai].decision.is_some()
    });
    assert_eq!(
        harness.state().app().collection.photos[kauai].decision,
        Some(expected.clone())
    );
    drop(harness);

    // Reopen: the result and the decision come from the database; nothing is recomputed
    // (the model is never asked: no batch, and the result is marked as stored).
    let mut options = options(&data_dir, ModelChoice::Fake(FakeEmbedder::new()));
    options.initial_paths = vec![folder.clone()];
    let mut harness = start_app(options);
    step_until(&mut harness, "the reopened folder", |app| {
        app.collection.photos.len() == 4
            && app
                .collection
                .photos
                .iter()
                .any(|p| p.entry.file_name() == "kauai.jpg" && p.result.is_some())
    });
    let app = harness.state().app();
    let kauai = index_of(app, "kauai.jpg");
    let photo = &app.collection.photos[kauai];
    assert!(photo.result_from_store);
    assert!(app.model.batch.is_none() && app.model.batch_summary.is_none());
    assert_eq!(photo.result.as_ref().unwrap().candidates, result.candidates);
    assert_eq!(photo.decision, Some(expected));
    assert!(
        app.collection.photos[index_of(app, "gps.jpg")]
            .result
            .is_none()
    );
    harness.get_by_label_contains("kauai.jpg").click();
    harness.step();
    harness.step();
    harness.get_by_label_contains("From the database");
    harness.get_by_label_contains("(candidate #2)");
    // Heat points are loaded from the database on selection.
    assert!(harness.state().app().map.heat.point_count() > 0);
}

#[test]
fn a_batch_can_be_cancelled_midway() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("many");
    std::fs::create_dir_all(&folder).unwrap();
    let total = 40;
    for i in 0..total {
        std::fs::copy(
            fixture_images().join("small.png"),
            folder.join(format!("photo{i:02}.png")),
        )
        .unwrap();
    }
    let mut options = options(
        &tmp.path().join("data"),
        ModelChoice::Fake(FakeEmbedder::with_delay(Duration::from_millis(40))),
    );
    options.initial_paths = vec![folder];
    let mut harness = start_app(options);
    step_until(&mut harness, "the scan and the model", |app| {
        app.collection.photos.len() == total && matches!(app.model.state, ModelState::Ready(_))
    });
    harness
        .get_by_label(&format!("Run on all shown ({total})"))
        .click();
    step_until(&mut harness, "a few results", |app| {
        app.model.batch.as_ref().is_some_and(|b| b.done >= 2)
    });
    harness.get_by_label_contains("Locating").hover();
    harness.get_by_label("Cancel run").click();
    step_until(&mut harness, "the cancellation", |app| {
        app.model.batch.is_none()
    });
    let located = |app: &App| {
        app.collection
            .photos
            .iter()
            .filter(|p| p.is_located())
            .count()
    };
    let after_cancel = located(harness.state().app());
    assert!(after_cancel >= 2 && after_cancel < total, "{after_cancel}");
    assert!(
        harness
            .state()
            .app()
            .model
            .batch_summary
            .as_deref()
            .is_some_and(|s| s.starts_with("Cancelled")),
        "{:?}",
        harness.state().app().model.batch_summary
    );
    // Cancelling takes effect within one photo: at most the photo in flight still lands
    // (as a stale generation, it is ignored).
    for _ in 0..40 {
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(located(harness.state().app()), after_cancel);
}

#[test]
fn without_a_model_the_app_browses_and_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut options = options(&tmp.path().join("data"), ModelChoice::Installed);
    options.initial_paths = vec![folder];
    let mut harness = start_app(options);
    step_until(&mut harness, "the scan and the model check", |app| {
        app.collection.photos.len() == 4 && app.model.info.is_some()
    });
    harness.step();
    let app = harness.state().app();
    assert!(matches!(app.model.state, ModelState::NotLoaded(Some(_))));
    assert!(
        harness
            .query_all_by_label_contains("GeoCLIP release")
            .next()
            .is_some()
    );
    // Each missing part once, with the buttons that get it; no terminal commands.
    for button in [
        "Import geoclip wheel…",
        "Import GeoCLIP folder…",
        "Download (1.9 GB)…",
        "Import CLIP folder…",
    ] {
        assert_eq!(harness.query_all_by_label(button).count(), 1, "{button}");
    }
    assert!(
        harness
            .query_all_by_label_contains("geoloupe model")
            .next()
            .is_none()
    );
    assert!(
        harness
            .get_by_label("Run on selection (1)")
            .accesskit_node()
            .is_disabled()
    );
    // The map is drawn from the offline basemap (the network is off), with EXIF markers.
    assert!(!harness.state().app().settings.network_enabled);
    assert!(harness.state().app().map.output.exif_markers >= 1);
}

#[test]
fn arrow_keys_move_the_selection_in_the_list() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut options = options(
        &tmp.path().join("data"),
        ModelChoice::Fake(FakeEmbedder::new()),
    );
    options.initial_paths = vec![folder];
    options.settings.view_mode = geoloupe::app::ViewMode::List;
    let mut harness = start_app(options);
    step_until(&mut harness, "the scan", |app| {
        app.collection.photos.len() == 4
    });
    harness.step();
    let first = harness.state().app().collection.view[0];
    let second = harness.state().app().collection.view[1];
    assert_eq!(harness.state().app().collection.selected, Some(first));
    harness.key_press(egui::Key::ArrowDown);
    harness.step();
    harness.step();
    assert_eq!(harness.state().app().collection.selected, Some(second));
    harness.key_press(egui::Key::ArrowUp);
    harness.step();
    harness.step();
    assert_eq!(harness.state().app().collection.selected, Some(first));
    // Filters narrow the view.
    harness.state_mut().app_mut().settings.name_filter = "kauai".into();
    harness.state_mut().app_mut().collection.mark_view_dirty();
    harness.step();
    assert_eq!(harness.state().app().collection.view.len(), 1);
}

#[test]
fn no_subcommand_opens_the_app_and_subcommands_stay_headless() {
    use clap::Parser as _;
    use geoloupe::cli::{Cli, Command};
    let cli = Cli::try_parse_from(["geoloupe", "a.jpg", "photos"]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(
        cli.paths,
        vec![PathBuf::from("a.jpg"), PathBuf::from("photos")]
    );
    let cli = Cli::try_parse_from(["geoloupe"]).unwrap();
    assert!(cli.command.is_none() && cli.paths.is_empty());
    let cli = Cli::try_parse_from(["geoloupe", "--data-dir", "d", "model", "info"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Model(_))));
    let cli = Cli::try_parse_from(["geoloupe", "locate", "a.jpg"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Locate(_))));
}

#[test]
fn placing_by_hand_on_the_map_is_a_decision_that_can_be_undone() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut options = options(
        &tmp.path().join("data"),
        ModelChoice::Fake(FakeEmbedder::new()),
    );
    options.initial_paths = vec![folder.join("kauai.jpg"), folder];
    let mut harness = start_app(options);
    step_until(&mut harness, "the scan", |app| {
        app.collection.photos.len() == 4
    });
    harness.step();
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    assert_eq!(
        harness.state().app().collection.selected,
        Some(kauai),
        "named first: selected"
    );
    harness.get_by_label("Place by hand").click();
    harness.step();
    // Click the middle of the map (between the browser and the side panel).
    let at = egui::pos2(720.0, 480.0);
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
    let decision = harness.state().app().collection.photos[kauai]
        .decision
        .clone();
    assert!(
        matches!(decision, Some(Decision::Manual { position }) if position.is_valid()),
        "{decision:?}"
    );
    harness.get_by_label_contains("(by hand)");
    step_until(&mut harness, "undo enabled", |app| app.can_undo);
    harness.get_by_label("Undo").click();
    step_until(&mut harness, "the undo", |app| {
        app.collection.photos[kauai].decision.is_none()
    });
    assert_eq!(
        harness.state().app().collection.photos[kauai].decision,
        None
    );
}

/// The `(name, lat, lon)` of each waypoint of a GPX document.
fn gpx_waypoints(gpx: &str) -> Vec<(String, f64, f64)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(gpx);
    let mut out = Vec::new();
    let mut current: Option<(String, f64, f64)> = None;
    let mut in_name = false;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) if e.name().as_ref() == b"wpt" => {
                let mut wpt = (String::new(), f64::NAN, f64::NAN);
                for attr in e.attributes() {
                    let attr = attr.unwrap();
                    let value: f64 = String::from_utf8_lossy(&attr.value).parse().unwrap();
                    match attr.key.as_ref() {
                        b"lat" => wpt.1 = value,
                        b"lon" => wpt.2 = value,
                        _ => {}
                    }
                }
                current = Some(wpt);
            }
            Event::Start(e) if e.name().as_ref() == b"name" => in_name = current.is_some(),
            Event::Text(t) if in_name => {
                if let Some(wpt) = &mut current {
                    wpt.0.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(e) if e.name().as_ref() == b"name" => in_name = false,
            Event::End(e) if e.name().as_ref() == b"wpt" => out.extend(current.take()),
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

#[test]
fn the_claim_section_checks_the_exif_position_against_the_estimate() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _folder) = located_folder(tmp.path(), WINDOW);
    let gps = index_of(harness.state().app(), "gps.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: gps,
        extend: false,
    });
    step_until(&mut harness, "the place index", |app| app.places_ready());
    harness.step();
    harness.step();

    let app = harness.state().app();
    let photo = &app.collection.photos[gps];
    let exif = photo.entry.gps().expect("gps.jpg has EXIF GPS");
    let result = photo.result.clone().expect("located");
    assert!(!result.heat.is_empty());
    let check = geoloupe::app::export::claim_check(&result, exif, ClaimSource::ExifGps).unwrap();
    // Recompute the expected numbers independently of the app.
    let top1 = result.candidates[0].position;
    assert!((check.top1_distance_km - exif.distance_km(&top1)).abs() < 1e-9);
    let within_200: f64 = result
        .heat
        .iter()
        .filter(|h| exif.distance_km(&h.position) <= 200.0)
        .map(|h| f64::from(h.probability))
        .sum();
    assert!((check.probability_within_200_km - within_200).abs() < 1e-6);

    harness.get_by_label(&format!("Claimed: {exif} (EXIF GPS)"));
    assert_claim_shown(&harness, &check);
    // Every candidate shows its nearest place.
    for c in &result.candidates {
        let place = geoloupe::geo::nearest_place(c.position).unwrap();
        harness.get_by_label(&format!("#{} {}", c.rank, place.describe()));
    }

    // A photo without EXIF GPS takes a typed claim; typed at its top-1 candidate, the
    // distance is 0 and the nearby shares are positive.
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: kauai,
        extend: false,
    });
    harness.step();
    harness.get_by_label_contains("Claimed lat, lon");
    let photo = harness.state().app().collection.photos[kauai].clone();
    let result = photo.result.clone().unwrap();
    let top1 = result.candidates[0].position;
    harness.state_mut().app_mut().set_claim_text(
        photo.entry.path.clone(),
        format!("{}, {}", top1.lat_deg, top1.lon_deg),
        None,
    );
    harness.step();
    harness.step();
    harness.get_by_label_contains("(typed)");
    let check = geoloupe::app::export::claim_check(&result, top1, ClaimSource::User).unwrap();
    assert!(check.top1_distance_km < 1e-6);
    assert!(check.probability_within_25_km > 0.0);
    assert!(check.probability_within_200_km >= check.probability_within_25_km);
    assert_claim_shown(&harness, &check);
}

/// The inspector's claim grid shows these numbers (shares as lower bounds).
fn assert_claim_shown(harness: &Harness<'_, TestApp>, check: &geoloupe::geo::ClaimCheck) {
    let shown = |text: String| {
        assert!(
            harness.query_all_by_label(&text).next().is_some(),
            "not shown: {text}"
        );
    };
    shown("Claim to #1".into());
    shown(format!("{:.1} km", check.top1_distance_km));
    shown("Probability within 25 km".into());
    shown(format!("≥ {:.1}%", check.probability_within_25_km * 100.0));
    shown("Probability within 200 km".into());
    shown(format!("≥ {:.1}%", check.probability_within_200_km * 100.0));
}

#[test]
fn exported_gpx_has_one_waypoint_per_located_photo() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, folder) = located_folder(tmp.path(), WINDOW);
    // Accept candidate #2 of kauai.jpg: the export uses it instead of the top-1.
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    let second = harness.state().app().collection.photos[kauai]
        .result
        .as_ref()
        .unwrap()
        .candidates[1]
        .position;
    harness.state_mut().app_mut().apply(Command::Accept {
        index: kauai,
        position: second,
        source: DecisionSource::Candidate { rank: 2 },
    });
    harness.step();

    let app = harness.state().app();
    let records = app.export_records();
    let mut expected: Vec<(String, f64, f64)> = app
        .collection
        .photos
        .iter()
        .filter_map(|p| {
            let at = match &p.decision {
                Some(d) => d.position(),
                None => p.result.as_ref()?.candidates[0].position,
            };
            Some((p.entry.file_name(), at.lat_deg, at.lon_deg))
        })
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(expected.len(), 3, "gps.jpg, kauai.jpg, small.png");
    assert_eq!(records.len(), 3);
    let gps_record = records.iter().find(|r| r.file_name() == "gps.jpg").unwrap();
    assert!(gps_record.claim.is_some(), "EXIF GPS is the claim");

    let check = |gpx: &str| {
        let mut waypoints = gpx_waypoints(gpx);
        waypoints.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(waypoints.len(), expected.len(), "{gpx}");
        for (w, e) in waypoints.iter().zip(&expected) {
            assert_eq!(w.0, e.0);
            assert!((w.1 - e.1).abs() < 1e-6, "{w:?} {e:?}");
            assert!((w.2 - e.2).abs() < 1e-6, "{w:?} {e:?}");
        }
    };
    check(&geoloupe::export::gpx::render_gpx(
        &records,
        geoloupe::export::PointSet::Chosen,
    ));

    // The same through the app's command (what the save dialog's answer runs).
    let out = tmp.path().join("out.gpx");
    harness.state_mut().app_mut().jobs.export_scope =
        geoloupe::app::export::WriteScope::WithEstimates;
    harness
        .state_mut()
        .app_mut()
        .apply(Command::ExportTo(out.clone()));
    step_until(&mut harness, "the export", |app| app.jobs.export.is_none());
    check(&std::fs::read_to_string(&out).unwrap());
    assert!(
        harness
            .state()
            .app()
            .messages
            .last()
            .is_some_and(|m| m.starts_with("Exported 3 photos")),
        "{:?}",
        harness.state().app().messages
    );
    let claim_before = gps_record.claim.clone();
    drop(harness);

    // Reopened, results come from the database as summaries (no heat points loaded): the
    // export still checks the EXIF claim, against the stored heat points.
    let mut options = options(
        &tmp.path().join("data"),
        ModelChoice::Fake(FakeEmbedder::new()),
    );
    options.initial_paths = vec![folder];
    let mut harness = start_app(options);
    step_until(&mut harness, "the stored results", |app| {
        app.collection
            .photos
            .iter()
            .filter(|p| p.result_from_store)
            .count()
            == 3
    });
    let app = harness.state().app();
    let gps = &app.collection.photos[index_of(app, "gps.jpg")];
    assert!(gps.result.as_ref().unwrap().heat.is_empty(), "a summary");
    let records = app.export_records();
    assert_eq!(records.len(), 3);
    let gps_record = records.iter().find(|r| r.file_name() == "gps.jpg").unwrap();
    assert_eq!(gps_record.claim, claim_before);
}

#[test]
fn xmp_sidecars_are_written_only_after_confirming() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, folder) = located_folder(tmp.path(), WINDOW);
    let sidecars = || -> Vec<PathBuf> {
        let mut found = Vec::new();
        for dir in [folder.clone(), folder.join("sub")] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "xmp") {
                    found.push(path);
                }
            }
        }
        found.sort();
        found
    };

    // The dry run lists, then Cancel: nothing written.
    dry_run_with_estimates(&mut harness, "Write XMP sidecars…");
    harness.step();
    harness.get_by_label_contains("sidecars would be written");
    harness.get_by_label_contains("kauai.jpg.xmp");
    assert!(sidecars().is_empty());
    harness.get_by_label("Cancel").click();
    harness.step();
    harness.step();
    assert!(harness.state().app().jobs.write_confirm.is_none());
    assert!(sidecars().is_empty());

    // Again, and Write.
    dry_run_with_estimates(&mut harness, "Write XMP sidecars…");
    harness.step();
    for _ in 0..10 {
        harness.step();
    }
    assert!(sidecars().is_empty(), "nothing before confirming");
    harness.get_by_label("Write sidecars").click();
    step_until(&mut harness, "the writes", |app| {
        app.jobs.write_confirm.is_none() && app.jobs.export.is_none()
    });
    // gps.jpg has a measured fix and no accepted location: skipped (an estimate never
    // replaces a fix).
    assert_eq!(
        sidecars(),
        vec![
            folder.join("kauai.jpg.xmp"),
            folder.join("sub/small.png.xmp")
        ]
    );
    let text = std::fs::read_to_string(folder.join("kauai.jpg.xmp")).unwrap();
    assert!(text.contains("GPSLatitude"), "{text}");
    assert!(
        harness
            .state()
            .app()
            .messages
            .last()
            .is_some_and(|m| m.starts_with("Wrote 2 XMP sidecars")),
        "{:?}",
        harness.state().app().messages
    );
}

#[test]
fn exif_gps_is_written_after_confirming_with_a_backup_and_results_stay_current() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, folder) = located_folder(tmp.path(), WINDOW);
    let kauai = folder.join("kauai.jpg");
    let original = std::fs::read(&kauai).unwrap();
    let top1 = {
        let app = harness.state().app();
        app.collection.photos[index_of(app, "kauai.jpg")]
            .result
            .as_ref()
            .unwrap()
            .candidates[0]
            .position
    };

    dry_run_with_estimates(&mut harness, "Write EXIF GPS…");
    harness.step();
    harness.get_by_label_contains("1 photos would get EXIF GPS");
    assert_eq!(
        std::fs::read(&kauai).unwrap(),
        original,
        "nothing before confirming"
    );
    harness.get_by_label("Write EXIF GPS").click();
    step_until(&mut harness, "the writes", |app| {
        app.jobs.write_confirm.is_none() && app.jobs.export.is_none()
    });

    // The JPEG now carries the top-1 candidate as EXIF GPS; gps.jpg (a fix of its own, no
    // accepted location) and small.png (not a JPEG) are untouched.
    // Marked as geoloupe's estimate, so not read back as a GPS fix.
    let written = geoloupe::library::exif::read_exif(&kauai)
        .unwrap()
        .gps_estimate
        .unwrap()
        .position;
    assert!(
        (written.lat_deg - top1.lat_deg).abs() < 1e-5,
        "{written:?} vs {top1:?}"
    );
    assert!(
        (written.lon_deg - top1.lon_deg).abs() < 1e-5,
        "{written:?} vs {top1:?}"
    );
    assert_eq!(
        std::fs::read(folder.join("gps.jpg")).unwrap(),
        std::fs::read(fixture_images().join("gps.jpg")).unwrap()
    );
    let app = harness.state().app();
    assert!(
        app.messages
            .last()
            .is_some_and(|m| m.starts_with("Wrote EXIF GPS into 1 photos")),
        "{:?}",
        app.messages
    );
    // The browser shows the new EXIF position as soon as the library thread has adopted the
    // write (it re-reads the EXIF there, off the UI thread).
    let kauai_index = index_of(app, "kauai.jpg");
    step_until(&mut harness, "the adopted write", |app| {
        app.collection.photos[kauai_index]
            .entry
            .exif
            .gps_estimate
            .is_some()
    });
    let app = harness.state().app();
    let entry = &app.collection.photos[kauai_index].entry;
    assert_eq!(
        entry.exif.gps_estimate.as_ref().map(|e| e.position),
        Some(written)
    );
    assert_eq!(entry.gps(), None, "an estimate is not a fix");
    // The original is in the backups, byte for byte.
    let backups = geoloupe::export::exif_write::BackupStore::in_data_dir(&tmp.path().join("data"));
    let entries = backups.list().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(std::fs::read(&entries[0].backup).unwrap(), original);

    // Reopened from the database, the result is current: our own write is not an edit.
    drop(harness);
    let mut options = options(
        &tmp.path().join("data"),
        ModelChoice::Fake(FakeEmbedder::new()),
    );
    options.initial_paths = vec![folder.clone()];
    let mut harness = start_app(options);
    step_until(&mut harness, "the reopened results", |app| {
        app.collection.photos.len() == 4
            && app
                .collection
                .photos
                .iter()
                .filter(|p| p.is_located())
                .count()
                == 3
    });
    let app = harness.state().app();
    assert!(!app.collection.photos[index_of(app, "kauai.jpg")].result_stale);
}

// ----- issue 8: one owner for every piece of state ---------------------------------------

/// A folder of `count` small PNGs (`p0000.png`, ...), for long scans and identifies.
fn big_folder(root: &Path, name: &str, count: usize) -> PathBuf {
    let folder = root.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let bytes = std::fs::read(fixture_images().join("small.png")).unwrap();
    for i in 0..count {
        std::fs::write(folder.join(format!("p{i:04}.png")), &bytes).unwrap();
    }
    folder
}

/// Waits until the library thread has answered everything it was sent.
fn library_settled(app: &App) -> bool {
    app.scanners.is_empty() && app.identify_pending == 0 && app.decisions_in_flight() == 0
}

/// The decision the database holds for `path` (read after the app is gone).
fn stored_decision(data_dir: &Path, path: &Path) -> Option<Decision> {
    let store = geoloupe::library::Store::open(&data_dir.join("library.sqlite3")).unwrap();
    store.decision(path).unwrap()
}

/// Issue 8, items 1 and 2: Accepts made while a 2,000-photo folder is read in are saved (the
/// UI, the identify and the writes share one connection on the library thread: no "database
/// is locked"), and an identify snapshot taken before an Accept never reverts it.
#[test]
fn accepts_during_a_long_identify_are_saved_and_never_reverted() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = big_folder(tmp.path(), "many", 2000);
    let data_dir = tmp.path().join("data");
    let mut options = options(&data_dir, ModelChoice::Fake(FakeEmbedder::new()));
    options.initial_paths = vec![folder.clone()];
    let mut harness = start_app(options);
    step_until(&mut harness, "the scan", |app| {
        app.collection.photos.len() == 2000
    });
    assert!(
        harness.state().app().identify_pending > 0,
        "the Accepts below happen while the folder is still being identified"
    );
    let first = LatLon::new(10.0, 20.0);
    let last = LatLon::new(-30.0, 40.0);
    let app = harness.state_mut().app_mut();
    let index_first = index_of(app, "p0000.png");
    let index_last = index_of(app, "p1999.png");
    for (index, position) in [(index_first, first), (index_last, last)] {
        app.apply(Command::Accept {
            index,
            position,
            source: DecisionSource::Manual,
        });
    }
    step_until(
        &mut harness,
        "the identify and the decisions",
        library_settled,
    );
    for _ in 0..5 {
        harness.step();
    }
    let app = harness.state().app();
    assert_eq!(
        app.collection.photos[index_first].decision,
        Some(Decision::Manual { position: first })
    );
    assert_eq!(
        app.collection.photos[index_last].decision,
        Some(Decision::Manual { position: last })
    );
    assert!(
        app.messages.iter().all(|m| !m.contains("locked")),
        "{:?}",
        app.messages
    );
    drop(harness);
    assert_eq!(
        stored_decision(&data_dir, &folder.join("p0000.png")),
        Some(Decision::Manual { position: first })
    );
    assert_eq!(
        stored_decision(&data_dir, &folder.join("p1999.png")),
        Some(Decision::Manual { position: last })
    );
}

/// Issue 8, item 3: a second folder opened while the first is being scanned adds to it; both
/// folders' photos are listed and both get their earlier results from the database.
#[test]
fn two_folders_opened_in_a_row_are_both_read_in_with_their_results() {
    let tmp = tempfile::tempdir().unwrap();
    let first = big_folder(tmp.path(), "first", 300);
    let second = photo_folder(tmp.path());
    let data_dir = tmp.path().join("data");
    // Earlier results for one photo of each folder.
    {
        let mut store = geoloupe::library::Store::open(&data_dir.join("library.sqlite3")).unwrap();
        let mut fake = FakeEmbedder::new();
        for path in [first.join("p0123.png"), second.join("kauai.jpg")] {
            use geoloupe::runtime::inference::Embedder as _;
            let prediction = fake.locate(&path, 3).unwrap();
            let result = geoloupe::domain::PhotoResult::from_prediction(
                &prediction,
                3,
                fake.provenance(),
                &|i| fake.gallery_position(i),
            );
            store.save_result(&path, &result).unwrap();
        }
    }
    let mut harness = start_app(options(&data_dir, ModelChoice::Fake(FakeEmbedder::new())));
    {
        let app = harness.state_mut().app_mut();
        app.apply(Command::Open(vec![first.clone()]));
        app.apply(Command::Open(vec![second.clone()]));
        assert_eq!(app.scanners.len(), 2, "the first scan goes on");
    }
    step_until(&mut harness, "both scans and identifies", |app| {
        app.collection.photos.len() == 304 && library_settled(app)
    });
    let app = harness.state().app();
    for name in ["p0123.png", "kauai.jpg"] {
        let photo = &app.collection.photos[index_of(app, name)];
        assert!(
            photo.result.is_some() && photo.result_from_store,
            "{name}: earlier result loaded"
        );
    }
}

/// Issue 8, item 8: Space runs only a ready model (as the button does), and cancelling what
/// the user started never cancels a model load.
#[test]
fn space_waits_for_the_model_and_never_cancels_its_load() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut options = options(
        &tmp.path().join("data"),
        ModelChoice::Fake(FakeEmbedder::with_load_delay(Duration::from_secs(5))),
    );
    options.initial_paths = vec![folder.join("kauai.jpg")];
    let mut harness = start_app_with_max_steps(options, 20);
    step_until(&mut harness, "the photo", |app| {
        app.collection.selected.is_some()
    });
    assert!(
        matches!(harness.state().app().model.state, ModelState::Loading(_)),
        "{:?}",
        harness.state().app().model.state
    );
    harness.key_press(egui::Key::Space);
    harness.step();
    let app = harness.state().app();
    assert!(
        app.model.batch.is_none(),
        "nothing was queued behind the load"
    );
    assert!(
        app.messages
            .last()
            .is_some_and(|m| m.contains("still loading")),
        "{:?}",
        app.messages
    );
    harness.state_mut().app_mut().apply(Command::CancelRun);
    step_until(&mut harness, "the model", |app| {
        !matches!(app.model.state, ModelState::Loading(_))
    });
    assert!(
        matches!(harness.state().app().model.state, ModelState::Ready(_)),
        "{:?}",
        harness.state().app().model.state
    );
    harness.key_press(egui::Key::Space);
    step_until(&mut harness, "the run", |app| {
        app.model.batch.is_none() && app.collection.photos.iter().any(|p| p.is_located())
    });
}

/// Issue 8, item 9: closing the window while EXIF GPS is being written finishes the write and
/// records it (the result stays current), instead of leaving it unrecorded.
#[test]
fn closing_the_window_mid_write_still_records_the_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, folder) = located_folder(tmp.path(), WINDOW);
    let kauai = folder.join("kauai.jpg");
    let original = std::fs::read(&kauai).unwrap();
    dry_run_with_estimates(&mut harness, "Write EXIF GPS…");
    harness.step();
    harness.get_by_label("Write EXIF GPS").click();
    harness.step();
    assert!(
        harness.state().app().jobs.export.is_some(),
        "the write started"
    );
    // The window closes at once.
    drop(harness);
    assert_ne!(
        std::fs::read(&kauai).unwrap(),
        original,
        "the write finished"
    );
    let mut store =
        geoloupe::library::Store::open(&tmp.path().join("data").join("library.sqlite3")).unwrap();
    let record = store.identify(&kauai).unwrap();
    let result = record.result.expect("the result is kept");
    assert!(
        !result.stale,
        "geoloupe's own write was recorded, not taken for an edit"
    );
}

/// Ctrl+Z undoes also right after a button was clicked (the button keeps keyboard focus), as
/// in any editor; only typing in a text field keeps the keys for itself.
#[test]
fn ctrl_z_undoes_right_after_clicking_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _folder) = located_folder(tmp.path(), WINDOW);
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    harness.get_by_label_contains("kauai.jpg").click();
    step_until(&mut harness, "kauai selected", |app| {
        app.collection.selected == Some(kauai)
    });
    harness.step();
    harness.get_by_label("Accept #1").click();
    step_until(&mut harness, "the decision saved", |app| {
        app.can_undo && app.decisions_in_flight() == 0
    });
    assert!(
        harness.state().app().collection.photos[kauai]
            .decision
            .is_some()
    );
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    step_until(&mut harness, "the undo", |app| {
        app.collection.photos[kauai].decision.is_none()
    });
}

/// Issue 8, item 4: the app's exports write photo paths as the user chose (relative to the
/// exported file by default, names only, or in full), and never the data folder's path.
#[test]
fn app_exports_write_photo_paths_as_chosen() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, folder) = located_folder(tmp.path(), WINDOW);
    let data_dir = tmp.path().join("data");
    let export = |harness: &mut Harness<'static, TestApp>, style, name: &str| {
        let out = tmp.path().join(name);
        let app = harness.state_mut().app_mut();
        app.settings.export_paths = style;
        app.jobs.export_scope = geoloupe::app::export::WriteScope::WithEstimates;
        app.apply(Command::ExportTo(out.clone()));
        step_until(harness, "the export", |app| app.jobs.export.is_none());
        std::fs::read_to_string(out).unwrap()
    };
    use geoloupe::export::PathStyle;
    let relative = export(&mut harness, PathStyle::Relative, "relative.csv");
    let names = export(&mut harness, PathStyle::Name, "names.csv");
    let full = export(&mut harness, PathStyle::Full, "full.csv");
    let folder_text = folder.display().to_string();
    assert!(
        relative.contains("photos/kauai.jpg") && !relative.contains(&folder_text),
        "{relative}"
    );
    assert!(
        names.contains(",kauai.jpg,") && !names.contains("photos/kauai.jpg"),
        "{names}"
    );
    assert!(full.contains(&format!("{folder_text}/kauai.jpg")), "{full}");
    for text in [&relative, &names, &full] {
        assert!(!text.contains(&data_dir.display().to_string()), "{text}");
    }
}

/// Issue 8, items 6 and 15 in the app: invalid EXIF GPS shows as such (badge, inspector, not a
/// claim) and is only replaced when the user ticks the box in the confirmation; geoloupe's own
/// estimate, once written, shows as an estimate, not as a fix.
#[test]
fn invalid_gps_and_written_estimates_show_for_what_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let bad = folder.join("bad.jpg");
    std::fs::copy(fixture_images().join("landscape.jpg"), &bad).unwrap();
    let status = std::process::Command::new("exiftool")
        .args([
            "-n",
            "-GPSLatitude=999",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=10",
            "-GPSLongitudeRef=E",
            "-overwrite_original",
        ])
        .arg(&bad)
        .status()
        .expect("exiftool (libimage-exiftool-perl) is needed");
    assert!(status.success());
    let original = std::fs::read(&bad).unwrap();
    let mut options = options(
        &tmp.path().join("data"),
        ModelChoice::Fake(FakeEmbedder::new()),
    );
    options.initial_paths = vec![folder.clone()];
    let mut harness = start_app(options);
    step_until(&mut harness, "the scan and the model", |app| {
        app.collection.photos.len() == 5 && app.model.is_ready()
    });
    run_all_shown(&mut harness, 5, 4);
    harness.get_by_label_contains("Its EXIF GPS is invalid");
    let index = index_of(harness.state().app(), "bad.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index,
        extend: false,
    });
    harness.step();
    harness.step();
    harness.get_by_label("invalid: latitude 999° is beyond ±90°");
    harness.get_by_label_contains("The EXIF GPS is not a claim");

    // Write EXIF GPS: skipped unless asked.
    dry_run_with_estimates(&mut harness, "Write EXIF GPS…");
    harness.step();
    harness.get_by_label_contains("the photo has invalid GPS");
    harness
        .get_by_label("Also replace invalid EXIF GPS")
        .click();
    step_until(&mut harness, "the new dry run", |app| {
        app.jobs
            .write_confirm
            .as_ref()
            .is_some_and(|plan| plan.overwrite_invalid_gps())
    });
    harness.step();
    harness.get_by_label("Write EXIF GPS").click();
    step_until(&mut harness, "the writes and their adoption", |app| {
        app.jobs.export.is_none()
            && app.jobs.write_confirm.is_none()
            && app.collection.photos[index]
                .entry
                .exif
                .gps_estimate
                .is_some()
    });
    assert_ne!(
        std::fs::read(&bad).unwrap(),
        original,
        "replaced when asked"
    );
    harness.step();
    let app = harness.state().app();
    let photo = &app.collection.photos[index];
    assert_eq!(photo.entry.gps(), None, "an estimate is not a fix");
    assert_eq!(photo.entry.exif.gps_invalid, None);
    // Both JPEGs written (kauai.jpg had no GPS) now show as estimates in the browser.
    assert_eq!(
        harness
            .query_all_by_label_contains("Its EXIF GPS is an estimate geoloupe wrote")
            .count(),
        2
    );
    // The inspector (position and claim) says so, with the uncertainty written.
    assert!(
        harness
            .query_all_by_label_contains("an estimate geoloupe wrote, ±")
            .count()
            >= 1
    );
}

/// Issue 9: messages have a kind. The status line shows the newest still shown: a note goes
/// after a few seconds (one from a minute ago is not shown), an error stays until dismissed;
/// the log lists them all, newest first, with time and kind.
#[test]
fn errors_stay_until_dismissed_notes_go_and_the_log_keeps_both() {
    use geoloupe::app::messages::MessageKind;
    use std::time::Instant;

    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut harness = start_app(options(&data_dir, ModelChoice::Fake(FakeEmbedder::new())));
    harness.run();
    {
        let messages = &mut harness.state_mut().app_mut().messages;
        messages.error("could not write: disk full");
        messages.add(
            MessageKind::Info,
            "Exported 2 photos a minute ago".into(),
            Instant::now() - Duration::from_secs(60),
        );
    }
    harness.run();
    assert!(
        harness
            .query_by_label("could not write: disk full")
            .is_some(),
        "the error is shown: the newer note's time is over"
    );
    assert!(
        harness
            .query_by_label("Exported 2 photos a minute ago")
            .is_none()
    );

    harness
        .state_mut()
        .app_mut()
        .messages
        .info("Exported 3 photos");
    harness.run();
    assert!(harness.query_by_label("Exported 3 photos").is_some());
    assert!(
        harness
            .query_by_label("could not write: disk full")
            .is_none()
    );

    // The log: every message, the error counted as open.
    harness.get_by_label("Log (3, 1 errors)").click();
    harness.run();
    for text in [
        "could not write: disk full",
        "Exported 2 photos a minute ago",
    ] {
        assert!(harness.query_by_label(text).is_some(), "{text} in the log");
    }
    assert_eq!(harness.query_all_by_label("Exported 3 photos").count(), 2);
    assert_eq!(harness.query_all_by_label("note").count(), 2);
    assert_eq!(harness.query_all_by_label("error").count(), 1);
    harness.key_press(egui::Key::Escape);
    harness.run();

    // The note is dismissed (as if its time were over), then the error: nothing is left in the
    // status line, the log keeps all three.
    harness.get_by_label("x").click();
    harness.run();
    assert!(
        harness
            .query_by_label("could not write: disk full")
            .is_some()
    );
    harness.get_by_label("x").click();
    harness.run();
    assert!(
        harness
            .query_by_label("could not write: disk full")
            .is_none()
    );
    assert!(harness.query_by_label("x").is_none());
    let app = harness.state().app();
    assert_eq!(app.messages.len(), 3);
    assert_eq!(app.messages.open_errors(), 0);
    harness.get_by_label("Log (3)");
}

/// Issue 9: "Write XMP sidecars" also writes the IPTC location (City, State, Country,
/// CountryCode) of accepted locations, as a setting the dialog shows (on by default); an
/// estimate nobody accepted gets none.
#[test]
fn xmp_sidecars_carry_the_iptc_location_of_accepted_locations() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, folder) = located_folder(tmp.path(), WINDOW);
    // Placed by hand on Kauai (the fake model's candidates fall anywhere).
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    harness.state_mut().app_mut().apply(Command::Accept {
        index: kauai,
        position: LatLon::new(21.97, -159.37),
        source: DecisionSource::Manual,
    });
    harness.step();
    assert!(harness.state().app().settings.xmp_iptc_location);

    harness.get_by_label("Write XMP sidecars…").click();
    step_until(&mut harness, "the dry run", |app| {
        app.jobs.write_confirm.is_some()
    });
    harness.step();
    let iptc_lines = |harness: &Harness<'_, TestApp>| {
        harness
            .query_all_by_label_contains(", IPTC location ")
            .count()
    };
    assert_eq!(iptc_lines(&harness), 1, "kauai.jpg's, the accepted one");
    harness.get_by_label_contains("kauai.jpg.xmp (XMP GPS");

    // Off: planned again without it; on again.
    harness
        .get_by_label("Also write City, State, Country (IPTC)")
        .click();
    step_until(&mut harness, "the plan without IPTC", |app| {
        app.jobs.write_confirm.as_ref().is_some_and(|plan| {
            !app.settings.xmp_iptc_location && plan.records.iter().all(|r| !r.iptc_location)
        })
    });
    harness.step();
    assert_eq!(iptc_lines(&harness), 0);
    harness
        .get_by_label("Also write City, State, Country (IPTC)")
        .click();
    step_until(&mut harness, "the plan with IPTC", |app| {
        app.jobs
            .write_confirm
            .as_ref()
            .is_some_and(|plan| plan.records.iter().any(|r| r.iptc_location))
    });
    harness.step();
    assert_eq!(iptc_lines(&harness), 1);

    harness.get_by_label("Write sidecars").click();
    step_until(&mut harness, "the writes", |app| {
        app.jobs.write_confirm.is_none() && app.jobs.export.is_none()
    });
    let kauai_xmp = std::fs::read_to_string(folder.join("kauai.jpg.xmp")).unwrap();
    assert!(kauai_xmp.contains("photoshop:City="), "{kauai_xmp}");
    assert!(
        kauai_xmp.contains("photoshop:Country=\"United States\""),
        "{kauai_xmp}"
    );
    assert!(
        kauai_xmp.contains("Iptc4xmpCore:CountryCode=\"US\""),
        "{kauai_xmp}"
    );
    assert!(
        !folder.join("sub/small.png.xmp").exists(),
        "an unreviewed estimate is written only when asked"
    );

    // The estimates too, asked for and confirmed: small.png's sidecar has GPS, no IPTC.
    dry_run_with_estimates(&mut harness, "Write XMP sidecars…");
    harness.get_by_label("Write sidecars").click();
    step_until(&mut harness, "the writes with the estimates", |app| {
        app.jobs.write_confirm.is_none() && app.jobs.export.is_none()
    });
    let small_xmp = std::fs::read_to_string(folder.join("sub/small.png.xmp")).unwrap();
    assert!(small_xmp.contains("GPSLatitude"), "{small_xmp}");
    assert!(
        !small_xmp.contains("photoshop:") && !small_xmp.contains("Iptc4xmpCore:"),
        "an estimate nobody accepted: {small_xmp}"
    );
}

/// Opens the dry run of `button` ("Write XMP sidecars…" or "Write EXIF GPS…"), which takes the
/// accepted locations only, and includes the unreviewed estimates as the user would: the
/// button, then the second confirmation with the count.
fn dry_run_with_estimates(harness: &mut Harness<'static, TestApp>, button: &str) {
    use geoloupe::app::export::WriteScope;
    harness.get_by_label(button).click();
    step_until(harness, "the dry run", |app| {
        app.jobs.write_confirm.is_some()
    });
    // A new window settles (sizes and centres itself) over a few frames.
    for _ in 0..3 {
        harness.step();
    }
    let unreviewed = harness
        .state()
        .app()
        .jobs
        .write_confirm
        .as_ref()
        .unwrap()
        .counts
        .unreviewed;
    harness
        .get_by_label(&format!(
            "Also write the {unreviewed} unreviewed estimates…"
        ))
        .click();
    for _ in 0..3 {
        harness.step();
    }
    harness
        .get_by_label(&format!("Include {unreviewed} estimates"))
        .click();
    step_until(harness, "the dry run with the estimates", |app| {
        app.jobs
            .write_confirm
            .as_ref()
            .is_some_and(|plan| plan.scope == WriteScope::WithEstimates)
    });
}

/// "Locate together" (issue 11, item 4) on a selection: every member gets the group's
/// candidates, marked as a group result, and the inspector says so.
#[test]
fn locate_together_gives_the_selection_one_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = photo_folder(tmp.path());
    let mut options = common::app::fake_options(&tmp.path().join("data"));
    options.initial_paths = vec![folder];
    let mut harness = start_app_sized(options, WINDOW, 10_000);
    step_until(&mut harness, "the model and the photos", |app| {
        app.model.is_ready() && app.collection.photos.len() == 4
    });
    let gps = index_of(harness.state().app(), "gps.jpg");
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    for (index, extend) in [(gps, false), (kauai, true)] {
        harness
            .state_mut()
            .app_mut()
            .apply(Command::Select { index, extend });
    }
    harness.step();
    harness.get_by_label("Locate together (2)").click();
    step_until(&mut harness, "the group", |app| {
        app.model.batch.is_none()
            && app.collection.photos[gps].result.is_some()
            && app.collection.photos[kauai].result.is_some()
    });
    let app = harness.state().app();
    let a = app.collection.photos[gps].result.clone().unwrap();
    let b = app.collection.photos[kauai].result.clone().unwrap();
    assert_eq!(a.candidates, b.candidates);
    assert_eq!(a.group.as_ref().map(|g| g.len()), Some(2));
    // Refinement is on by default: the candidates carry refined points.
    assert!(a.candidates.iter().all(|c| c.refined.is_some()));
    harness.step();
    harness.step();
    assert!(
        harness
            .query_by_label_contains("Group result: located together with 1 other photo")
            .is_some()
    );
}
