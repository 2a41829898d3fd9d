//! The claim check in the app (issue 9, item 4), driven headless through egui_kittest with the
//! fake embedder: a photo with EXIF GPS gets a typed claim too and shows both checks, each
//! with its plain sentence; an ambiguous place name gives a pick list; typed claims are kept
//! in the library and come back after a restart.

#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use crate::common;

use std::path::{Path, PathBuf};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use geoloupe::app::{App, Command, ModelState};
use geoloupe::geo::{ClaimSource, LatLon};
use geoloupe::library::store::StoredClaim;

use common::app::{SMALL_WINDOW, TestApp, fake_options, start_app_sized, step_until};

/// The app on `folder` in the small window: the claim section must fit the side panel there.
fn start_app(data_dir: &Path, folder: &Path) -> Harness<'static, TestApp> {
    let mut options = fake_options(data_dir);
    options.initial_paths = vec![folder.to_owned()];
    start_app_sized(options, SMALL_WINDOW, 10_000)
}

/// gps.jpg (with EXIF GPS) and kauai.jpg (without).
fn photo_folder(root: &Path) -> PathBuf {
    let folder = root.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["gps.jpg", "kauai.jpg"] {
        std::fs::copy(common::image_path(name), folder.join(name)).unwrap();
    }
    folder
}

fn path_of(app: &App, name: &str) -> (usize, PathBuf) {
    let index = app
        .collection
        .photos
        .iter()
        .position(|p| p.entry.file_name() == name)
        .unwrap_or_else(|| panic!("{name} is not in the collection"));
    (index, app.collection.photos[index].entry.path.clone())
}

fn select(harness: &mut Harness<'_, TestApp>, index: usize) {
    harness.state_mut().app_mut().apply(Command::Select {
        index,
        extend: false,
    });
    harness.step();
    harness.step();
}

fn count(harness: &Harness<'_, TestApp>, label: &str) -> usize {
    harness.query_all_by_label_contains(label).count()
}

#[test]
fn exif_and_typed_claims_are_both_checked_and_kept_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let folder = photo_folder(tmp.path());
    let mut harness = start_app(&data_dir, &folder);
    step_until(&mut harness, "the scan, the model, the places", |app| {
        app.collection.photos.len() == 2
            && matches!(app.model.state, ModelState::Ready(_))
            && app.places_ready()
    });
    harness
        .state_mut()
        .app_mut()
        .apply(Command::Run { all: true });
    step_until(&mut harness, "the batch", |app| {
        app.model.batch.is_none() && app.collection.photos.iter().all(|p| p.is_located())
    });

    // gps.jpg has EXIF GPS; a place name typed as well gives a second check.
    let (gps, gps_path) = path_of(harness.state().app(), "gps.jpg");
    select(&mut harness, gps);
    assert_eq!(count(&harness, "Claim to #1"), 1, "the EXIF check alone");
    // Typed into the inspector's field.
    let field = harness.get_by_label("Claimed lat, lon or place");
    field.focus();
    harness.step();
    harness
        .get_by_label("Claimed lat, lon or place")
        .type_text("Lihue, Hawaii");
    harness.step();
    harness.step();
    harness.step();
    let app = harness.state().app();
    let photo = &app.collection.photos[gps];
    let claims = app.claims_of(photo);
    assert_eq!(claims.len(), 2, "{claims:?}");
    assert_eq!(claims[0].1, ClaimSource::ExifGps);
    assert_eq!(claims[1].1, ClaimSource::User);
    let lihue = claims[1].0;
    assert!(
        lihue.distance_km(&LatLon::new(21.98, -159.37)) < 2.0,
        "{lihue}"
    );
    assert_eq!(count(&harness, "Claim to #1"), 2, "both checks");
    harness.get_by_label(&format!("Claimed: {lihue} (typed)"));
    // Each check is read in one plain sentence, with its own figures.
    let result = photo.result.clone().unwrap();
    for (claimed, source) in claims {
        let check = geoloupe::app::export::claim_check(&result, claimed, source).unwrap();
        harness.get_by_label(&geoloupe::geo::describe_claim_check(&check));
    }
    assert_eq!(count(&harness, "of the EXIF position"), 1);
    assert_eq!(count(&harness, "of the claim ("), 1);
    // Exports carry both: the typed claim in every format's claim fields, the EXIF check
    // beside it (GeoJSON's `other_claims`).
    let records = harness.state().app().export_records();
    let record = records.iter().find(|r| r.path == gps_path).unwrap();
    let claim = record.claim.as_ref().unwrap();
    assert_eq!((claim.claimed, claim.source), (lihue, ClaimSource::User));
    assert_eq!(record.other_claims.len(), 1);
    assert_eq!(record.other_claims[0].source, ClaimSource::ExifGps);
    let geojson =
        geoloupe::export::geojson::geojson_value(&records, geoloupe::export::PointSet::Chosen);
    let feature = geojson["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["claim"]["source"] == "user")
        .unwrap();
    assert_eq!(
        feature["properties"]["other_claims"][0]["source"],
        "exif-gps"
    );

    // A bad coordinate says which part is wrong, and is no claim.
    let (kauai, kauai_path) = path_of(harness.state().app(), "kauai.jpg");
    select(&mut harness, kauai);
    harness.state_mut().app_mut().apply(Command::SetClaim {
        path: kauai_path.clone(),
        text: "95 N, 159 W".into(),
        picked: None,
    });
    harness.step();
    harness.step();
    harness.get_by_label_contains("latitude 95 is out of range");
    assert_eq!(count(&harness, "Claim to #1"), 0);

    // An ambiguous name gives a pick list; the pick is the claim.
    harness.state_mut().app_mut().apply(Command::SetClaim {
        path: kauai_path.clone(),
        text: "Springfield".into(),
        picked: None,
    });
    harness.step();
    harness.step();
    harness.get_by_label_contains("places have this name: pick one");
    assert!(harness.state().app().claims.typed(&kauai_path).is_none());
    // Further down the list (sorted by country): scrolled into view, then clicked.
    harness
        .get_by_label_contains("Springfield, Illinois")
        .scroll_to_me();
    harness.step();
    harness.step();
    harness
        .get_by_label_contains("Springfield, Illinois")
        .click_accesskit();
    harness.step();
    harness.step();
    let picked = harness
        .state()
        .app()
        .claims
        .typed(&kauai_path)
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the pick is the claim; typed {:?}",
                harness.state().app().claims.inputs.get(&kauai_path)
            )
        });
    assert!(
        picked.text.starts_with("Springfield, Illinois"),
        "{picked:?}"
    );
    assert!(
        picked.position.distance_km(&LatLon::new(39.80, -89.64)) < 5.0,
        "{picked:?}"
    );
    harness.get_by_label_contains("(typed)");
    drop(harness);

    // Restart: both typed claims come back from the library, with the text as typed.
    let mut harness = start_app(&data_dir, &folder);
    step_until(&mut harness, "the claims from the library", |app| {
        app.collection.photos.len() == 2 && app.identify_pending == 0 && app.claims.kept.len() == 2
    });
    let app = harness.state().app();
    assert_eq!(
        app.claims.typed(&gps_path),
        Some(&StoredClaim {
            text: "Lihue, Hawaii".into(),
            position: lihue
        })
    );
    assert_eq!(app.claims.typed(&kauai_path), Some(&picked));
    assert_eq!(
        app.claims.inputs.get(&gps_path).map(String::as_str),
        Some("Lihue, Hawaii")
    );
    let (gps, _) = path_of(app, "gps.jpg");
    select(&mut harness, gps);
    harness.get_by_label(&format!("Claimed: {lihue} (typed)"));
}
