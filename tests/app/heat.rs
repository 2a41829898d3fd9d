//! The continuous heatmap in the app, driven headless through egui_kittest with the fake
//! embedder: zoomed out the map shows the gallery layer; zoomed in past
//! `CONTINUOUS_MIN_ZOOM` the continuous layer (the location encoder over the visible tiles,
//! computed on the inference thread) replaces it, and the legend says which is shown.

#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use crate::common;

use egui_kittest::kittest::Queryable as _;
use geoloupe::app::{App, Command, ModelState};
use geoloupe::geo::heat_grid::{CONTINUOUS_MIN_ZOOM, HeatTile, LEVELS, visible_tiles};
use geoloupe::ui::map::{LEGEND_MEANING, legend_title, map_home};

use common::app::{WINDOW, fake_options, index_of, start_app_sized, step_until};

/// The tiles of the map's current view, nearest the centre first.
fn view_tiles(app: &App) -> Vec<HeatTile> {
    let rect = app.map.viewport.expect("the map was drawn");
    visible_tiles(
        app.map.centre(map_home()),
        app.map.memory.zoom(),
        [rect.width(), rect.height()],
    )
}

#[test]
fn zooming_in_past_the_threshold_replaces_the_gallery_layer_with_the_continuous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = tmp.path().join("kauai.jpg");
    std::fs::copy(common::image_path("kauai.jpg"), &photo).unwrap();
    let mut options = fake_options(&tmp.path().join("data"));
    options.initial_paths = vec![photo];
    let mut harness = start_app_sized(options, WINDOW, 10_000);
    step_until(&mut harness, "the scan and the model", |app| {
        app.collection.photos.len() == 1 && matches!(app.model.state, ModelState::Ready(_))
    });
    let index = index_of(harness.state().app(), "kauai.jpg");
    harness
        .state_mut()
        .app_mut()
        .commands
        .push(Command::Run { all: false });
    step_until(&mut harness, "the result", |app| {
        app.collection.photos[index].result.is_some() && app.model.batch.is_none()
    });
    let best = harness.state().app().collection.photos[index]
        .result
        .as_ref()
        .and_then(|r| r.best())
        .unwrap()
        .position;

    // Zoomed out: the gallery layer, and nothing asked of the location encoder.
    {
        let app = harness.state_mut().app_mut();
        app.map.center_at(best);
        app.map.memory.set_zoom(4.0).unwrap();
    }
    for _ in 0..40 {
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    harness.get_by_label(legend_title(false));
    harness.get_by_label(LEGEND_MEANING);
    assert!(harness.query_by_label(legend_title(true)).is_none());
    let app = harness.state().app();
    assert!(!app.map.heat.is_empty(), "the gallery layer has points");
    assert_eq!(app.map.continuous.cached_len(), 0);
    assert!(!app.map.continuous.is_waiting());

    // Zoomed in past the threshold: once the view settles, the inference thread samples the
    // location encoder over the visible tiles, coarse to fine, and the continuous layer draws.
    let zoom = f64::from(CONTINUOUS_MIN_ZOOM) + 3.0;
    harness
        .state_mut()
        .app_mut()
        .map
        .memory
        .set_zoom(zoom)
        .unwrap();
    step_until(
        &mut harness,
        "the view's tiles at the finest level",
        |app| {
            let tiles = view_tiles(app);
            !tiles.is_empty()
                && tiles
                    .iter()
                    .all(|t| app.map.continuous.cached_level(*t) == Some(LEVELS - 1))
        },
    );
    harness.step();
    harness.get_by_label(legend_title(true));
    harness.get_by_label(LEGEND_MEANING);
    harness.get_by_label("Heatmap: GeoCLIP location encoder");
    assert!(harness.query_by_label(legend_title(false)).is_none());
    let app = harness.state().app();
    assert_eq!(view_tiles(app)[0].zoom, zoom as u8);
    // The fake's probabilities fall off over thousands of km: around its best candidate every
    // tile is visible.
    assert_eq!(
        app.map.continuous.visible_tiles_cached(),
        view_tiles(app).len()
    );

    // Zooming out brings the gallery layer back and cancels what was asked.
    harness
        .state_mut()
        .app_mut()
        .map
        .memory
        .set_zoom(4.0)
        .unwrap();
    for _ in 0..5 {
        harness.step();
    }
    harness.get_by_label(legend_title(false));
    assert!(!harness.state().app().map.continuous.is_waiting());
}
