//! "Describe" over the map (issue 14), driven headless through egui_kittest with the fake
//! embedder (whose text feature peaks where a file of that name would): a description typed
//! and asked with Enter gives an answer line and the description's heatmap; the heat modes
//! combine it with the selected photo's; the photo is compared with it in the claim check's
//! figures; Clear puts the photo's heatmap back.

#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use crate::common;

use egui_kittest::kittest::Queryable as _;
use geoloupe::app::Command;
use geoloupe::app::describe::HeatShown;
use geoloupe::runtime::inference::FakeEmbedder;

use common::app::{SMALL_WINDOW, located_folder, step_until};

#[test]
fn a_description_is_asked_shown_combined_with_the_photo_and_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut harness, _) = located_folder(tmp.path(), SMALL_WINDOW);
    step_until(&mut harness, "the places", |app| app.places_ready());
    let kauai = common::app::index_of(harness.state().app(), "kauai.jpg");
    harness.state_mut().app_mut().apply(Command::Select {
        index: kauai,
        extend: false,
    });
    harness.step();
    let photo_heat = harness.state().app().map.heat.point_count();
    assert!(photo_heat > 0);

    harness.get_by_label("Describe").click();
    harness.step();
    harness
        .get_by_label("Describe")
        .type_text("a snowy harbour with red roofs");
    harness.step();
    harness.key_press(egui::Key::Enter);
    step_until(&mut harness, "the answer", |app| {
        app.describe.answer.is_some()
    });
    harness.step();
    harness.step();
    let app = harness.state().app();
    let answer = app.describe.answer.as_ref().unwrap();
    assert_eq!(answer.text, "a snowy harbour with red roofs");
    assert!(!answer.ensemble);
    // The fake's answer peaks at its point for that text.
    let peak = FakeEmbedder::peak_for("a snowy harbour with red roofs");
    assert!(answer.result.candidates[0].position.distance_km(&peak) < 1.0);
    assert_eq!(app.describe.shown, HeatShown::Description);
    assert!(
        harness
            .query_by_label_contains("“a snowy harbour with red roofs”: best guess")
            .is_some()
    );
    assert!(harness.query_by_label_contains("Heatmap: words").is_some());
    // Zoomed in, the continuous layer is the words' too (their own feature).
    let continuous_key = |h: &egui_kittest::Harness<'_, common::app::TestApp>| {
        h.state()
            .app()
            .map
            .continuous
            .photo_key()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(continuous_key(&harness).starts_with("words"));
    // The photo against the words, in the claim check's figures.
    assert!(
        harness
            .query_by_label_contains("Photo vs words: Best guesses")
            .is_some()
    );
    // The small window's map is short: the distance and the shared belief, the rest on hover.
    assert!(harness.query_by_label_contains("of their belief").is_some());

    // Where both agree: the product of the two beliefs.
    harness.get_by_label("Where both agree").click();
    harness.step();
    harness.step();
    assert_eq!(harness.state().app().describe.shown, HeatShown::Agreement);
    // A combination stays on the gallery layer; the continuous one is the photo's again.
    assert!(!continuous_key(&harness).starts_with("words"));
    // The fake's beliefs for kauai.jpg and for these words lie far apart: nothing is in both,
    // and the box says so instead of showing an empty map.
    assert_eq!(harness.state().app().map.heat.point_count(), 0);
    assert!(
        harness
            .query_by_label_contains("No place lies in both heatmaps")
            .is_some()
    );
    // Both: the two beliefs side by side.
    harness.get_by_label("Both").click();
    harness.step();
    harness.step();
    assert!(harness.state().app().map.heat.point_count() > photo_heat);
    assert!(harness.query_by_label_contains("Heatmap: both").is_some());

    // With the templates, another answer replaces it.
    harness.get_by_label("Prompt templates").click();
    harness.step();
    harness.get_by_label("Ask").click();
    step_until(&mut harness, "the ensemble's answer", |app| {
        app.describe.answer.as_ref().is_some_and(|a| a.ensemble)
    });
    harness.step();
    assert!(harness.query_by_label_contains("with templates").is_some());

    harness.get_by_label("Clear").click();
    harness.step();
    harness.step();
    let app = harness.state().app();
    assert!(app.describe.answer.is_none());
    assert_eq!(app.describe.shown, HeatShown::Photo);
    assert_eq!(app.map.heat.point_count(), photo_heat);
    assert!(harness.query_by_label_contains("Photo vs words").is_none());
}
