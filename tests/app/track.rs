//! Tracks and trips in the app (issue 12), driven headless through egui_kittest with the fake
//! embedder: a generated GPX loaded (the track layer and its point count), the offset preview
//! (changing the offset moves the landings; a photo outside the track is listed as refused; a
//! photo with its own GPS is kept), "Apply to selection" (decisions with `Origin::Track`, one
//! undo step restores every photo), and "Locate as trip" accepted with `Origin::Trip`.

#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use crate::common;

use std::path::Path;

use egui_kittest::kittest::Queryable as _;
use geoloupe::app::track::Landing;
use geoloupe::app::{App, Command};
use geoloupe::domain::{Decision, Origin};

use common::app::{index_of, located_folder, step_until};

const WINDOW: egui::Vec2 = egui::Vec2::new(1400.0, 1600.0);

/// A walk north along lon 10°: 61 fixes a minute apart from 2024-05-01 10:00:00 UTC, 0.001° a
/// minute, with elevations.
fn write_gpx(path: &Path) {
    let mut gpx = String::from(
        "<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" creator=\"test\" \
         xmlns=\"http://www.topografix.com/GPX/1/1\"><trk><name>walk</name><trkseg>\n",
    );
    for i in 0..=60 {
        let (hour, minute) = (10 + i / 60, i % 60);
        gpx.push_str(&format!(
            "<trkpt lat=\"{:.3}\" lon=\"10.0\"><ele>{}</ele>\
             <time>2024-05-01T{hour}:{minute:02}:00Z</time></trkpt>\n",
            45.0 + 0.001 * f64::from(i),
            100 + i,
        ));
    }
    gpx.push_str("</trkseg></trk></gpx>\n");
    std::fs::write(path, gpx).unwrap();
}

/// Gives the photo a capture time as the library would read it from EXIF.
fn set_taken_at(app: &mut App, name: &str, taken_at: &str) {
    let i = index_of(app, name);
    app.collection.photos[i].entry.exif.taken_at = Some(taken_at.to_owned());
}

fn select(harness: &mut egui_kittest::Harness<'static, common::app::TestApp>, names: &[&str]) {
    for (n, name) in names.iter().enumerate() {
        let index = index_of(harness.state().app(), name);
        harness.state_mut().app_mut().apply(Command::Select {
            index,
            extend: n > 0,
        });
    }
    harness.step();
    harness.step();
}

fn landing_lat(app: &App, name: &str) -> Option<f64> {
    let index = index_of(app, name);
    app.track_preview()
        .into_iter()
        .find(|item| item.index == index)
        .and_then(|item| match item.landing {
            Landing::Lands { position, .. } => Some(position.lat_deg),
            _ => None,
        })
}

#[test]
fn a_track_previews_applies_as_one_step_and_undo_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _folder) = located_folder(tmp.path(), WINDOW);
    let gpx = tmp.path().join("walk.gpx");
    write_gpx(&gpx);
    {
        let app = harness.state_mut().app_mut();
        set_taken_at(app, "kauai.jpg", "2024-05-01T12:10:00+02:00");
        set_taken_at(app, "small.png", "2023-01-01T00:00:00Z");
        set_taken_at(app, "gps.jpg", "2024-05-01T10:30:00Z");
        // Opening a .gpx (as a drop or the command line does) loads it as a track.
        app.apply(Command::Open(vec![gpx.clone()]));
    }
    step_until(&mut harness, "the track", |app| app.sources.track.is_some());
    harness.step();
    let app = harness.state().app();
    let track = app.sources.track.as_ref().unwrap();
    assert_eq!(track.set.fixes.len(), 61);
    assert_eq!(track.polyline().len(), 61);
    assert_eq!(
        app.collection.len(),
        4,
        "the track is not scanned as a photo"
    );
    harness.get_by_label("Track walk.gpx: 61 points");

    select(&mut harness, &["kauai.jpg", "small.png", "gps.jpg"]);
    let app = harness.state().app();
    // 12:10 at +02:00 is ten minutes along the walk.
    assert!((landing_lat(app, "kauai.jpg").unwrap() - 45.010).abs() < 1e-9);
    assert_eq!(landing_lat(app, "small.png"), None);
    harness.get_by_label_contains("refused: ");
    harness.get_by_label("has its own GPS: kept");
    harness.get_by_label("Selection: 1 land on the track, 1 refused, 1 keep their own GPS");

    // Five minutes on the clock moves the preview five fixes north.
    harness
        .state_mut()
        .app_mut()
        .apply(Command::SetTrackOffset(300.0));
    harness.step();
    assert!((landing_lat(harness.state().app(), "kauai.jpg").unwrap() - 45.015).abs() < 1e-9);
    // What the panel and the map draw (kept between frames) followed the offset.
    let app = harness.state().app();
    assert_eq!(app.sources.preview, app.track_preview());

    // Before: kauai by hand, so undo must bring that back (not just clear).
    let kauai = index_of(harness.state().app(), "kauai.jpg");
    let by_hand = Decision::Manual {
        position: geoloupe::geo::LatLon::new(22.0, -159.5),
    };
    harness.state_mut().app_mut().apply(Command::Accept {
        index: kauai,
        position: by_hand.position(),
        source: geoloupe::app::DecisionSource::Manual,
    });
    step_until(&mut harness, "the manual decision", |app| {
        app.decisions_in_flight() == 0 && app.can_undo
    });

    harness.get_by_label("Apply to selection").click();
    step_until(&mut harness, "the track's decisions", |app| {
        app.decisions_in_flight() == 0
            && matches!(
                app.collection.photos[kauai].decision,
                Some(Decision::Placed { .. })
            )
    });
    harness.step();
    let app = harness.state().app();
    let Some(Decision::Placed { position, origin }) = &app.collection.photos[kauai].decision else {
        unreachable!()
    };
    assert!((position.lat_deg - 45.015).abs() < 1e-9);
    assert_eq!(
        *origin,
        Origin::Track {
            track: "walk.gpx".into(),
            offset_secs: 300.0,
            altitude_m: Some(115.0),
        }
    );
    for name in ["small.png", "gps.jpg"] {
        assert_eq!(
            app.collection.photos[index_of(app, name)].decision,
            None,
            "{name}"
        );
    }
    // The inspector says where the location came from.
    select(&mut harness, &["kauai.jpg"]);
    harness.get_by_label("track walk.gpx, clock +0:05:00");
    // Exports and write-backs carry it too (not "placed by hand"), also for a photo the model
    // never ran on (a track is enough to write a location).
    let track_origin = Origin::Track {
        track: "walk.gpx".into(),
        offset_secs: 300.0,
        altitude_m: Some(115.0),
    };
    let kauai_record = |app: &geoloupe::app::App| {
        app.export_records()
            .into_iter()
            .find(|r| r.path.ends_with("kauai.jpg"))
            .expect("kauai.jpg is exported")
    };
    let record = kauai_record(harness.state().app());
    assert_eq!(record.origin, track_origin);
    assert!((record.location.lat_deg - 45.015).abs() < 1e-9);
    let result = harness.state_mut().app_mut().collection.photos[kauai]
        .result
        .take();
    let record = kauai_record(harness.state().app());
    assert_eq!(record.origin, track_origin);
    assert!(record.candidates.is_empty());
    assert_eq!(record.provenance.model, "gps-track");
    harness.state_mut().app_mut().collection.photos[kauai].result = result;

    // One undo step puts back what was there before.
    harness.get_by_label("Undo").click();
    step_until(&mut harness, "the undo", |app| {
        !matches!(
            app.collection.photos[kauai].decision,
            Some(Decision::Placed { .. })
        )
    });
    assert_eq!(
        harness.state().app().collection.photos[kauai].decision,
        Some(by_hand)
    );
}

#[test]
fn a_trip_is_located_and_accepted_with_its_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _folder) = located_folder(tmp.path(), WINDOW);
    {
        let app = harness.state_mut().app_mut();
        set_taken_at(app, "kauai.jpg", "2024-05-01T10:00:00");
        set_taken_at(app, "small.png", "2024-05-01T10:30:00");
        set_taken_at(app, "gps.jpg", "2024-05-01T11:00:00");
    }
    select(&mut harness, &["kauai.jpg", "small.png", "gps.jpg"]);
    harness.get_by_label("Locate as trip").click();
    step_until(&mut harness, "the trip", |app| app.sources.trip.is_some());
    harness.step();
    let trip = harness.state().app().sources.trip.clone().unwrap();
    assert_eq!(trip.points.len(), 3);
    harness.get_by_label("Accept trip").click();
    step_until(&mut harness, "the trip's decisions", |app| {
        app.decisions_in_flight() == 0
            && app
                .collection
                .photos
                .iter()
                .filter(|p| matches!(p.decision, Some(Decision::Placed { .. })))
                .count()
                == 3
    });
    let app = harness.state().app();
    for point in &trip.points {
        let decision = app.collection.photos[point.index].decision.clone().unwrap();
        assert_eq!(decision.position(), point.position);
        assert_eq!(
            decision.origin(),
            Origin::Trip {
                max_speed_kmh: 120.0,
                single_photo: point.single_photo,
            }
        );
    }
}
