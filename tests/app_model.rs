//! The model panel, driven headless through egui_kittest with the installed model (no network):
//! each missing part shown once with its buttons, an install made elsewhere (as
//! `geoloupe model import` does) noticed without any click and the model loaded, a CLIP folder
//! imported from the app, and a stand-in backbone named as such.
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use geoloupe::app::{App, AppOptions, Command, ModelChoice, ModelState};
use geoloupe::model::files::{self, DataDirs};

/// The app is built inside the first frame, with the harness's egui context.
struct TestApp {
    options: Option<AppOptions>,
    app: Option<App>,
}

impl TestApp {
    fn app(&self) -> &App {
        self.app.as_ref().expect("built in the first frame")
    }
    fn app_mut(&mut self) -> &mut App {
        self.app.as_mut().expect("built in the first frame")
    }
}

fn start_app(options: AppOptions) -> Harness<'static, TestApp> {
    // A loading model keeps a spinner turning: never stable, so few steps at the start.
    let mut harness = Harness::builder()
        .with_size(egui::Vec2::new(1024.0, 700.0))
        .with_max_steps(20)
        .build_ui_state(
            |ui, state: &mut TestApp| {
                if state.app.is_none()
                    && let Some(options) = state.options.take()
                {
                    state.app = Some(App::new(ui.ctx(), options));
                }
                if let Some(app) = &mut state.app {
                    geoloupe::ui::app_ui(ui, app);
                }
            },
            TestApp {
                options: Some(options),
                app: None,
            },
        );
    harness.step();
    harness
}

fn installed_options(data_dir: &Path) -> AppOptions {
    let mut options = AppOptions::new(DataDirs::resolve(Some(data_dir)).unwrap());
    options.model = ModelChoice::Installed;
    options.network_allowed = false;
    options
}

/// Steps the app until `done` holds, for at most `limit` of real time (loading the model
/// encodes the gallery when it is not cached).
fn step_until(
    harness: &mut Harness<'_, TestApp>,
    what: &str,
    limit: Duration,
    done: impl Fn(&App) -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < limit {
        harness.step();
        if done(harness.state().app()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "gave up waiting for: {what}; state {:?}, messages {:?}",
        harness.state().app().model.state,
        harness.state().app().messages
    );
}

fn count(harness: &Harness<'_, TestApp>, label: &str) -> usize {
    harness.query_all_by_label(label).count()
}

fn installed(app: &App, component: files::Component) -> bool {
    app.model
        .info
        .as_ref()
        .is_some_and(|info| info.iter().any(|c| c.component == component && c.installed))
}

/// The gallery features of the shared test install, linked into `dirs`' cache when they are
/// there, so loading the model need not encode 100K points again.
fn share_gallery_cache(dirs: &DataDirs) {
    let shared = common::data_dirs().gallery_cache_dir();
    let Ok(entries) = std::fs::read_dir(&shared) else {
        return;
    };
    std::fs::create_dir_all(dirs.gallery_cache_dir()).unwrap();
    for entry in entries.flatten() {
        let to = dirs.gallery_cache_dir().join(entry.file_name());
        if std::fs::hard_link(entry.path(), &to).is_err() {
            let _ = std::fs::copy(entry.path(), &to);
        }
    }
}

#[test]
fn an_install_made_elsewhere_is_noticed_and_loaded_without_a_click() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut harness = start_app(installed_options(&data_dir));
    step_until(
        &mut harness,
        "the model files check",
        Duration::from_secs(30),
        |app| app.model.info.is_some(),
    );
    harness.step();
    assert!(matches!(
        harness.state().app().model.state,
        ModelState::NotLoaded(_)
    ));
    // Both parts missing: each once, with its buttons, and no terminal commands.
    assert_eq!(count(&harness, "Missing"), 2);
    for button in [
        "Import geoclip wheel…",
        "Import GeoCLIP folder…",
        "Download (1.9 GB)…",
        "Import CLIP folder…",
    ] {
        assert_eq!(count(&harness, button), 1, "{button}");
    }
    assert!(
        harness
            .query_all_by_label_contains("geoloupe model")
            .next()
            .is_none(),
        "no terminal commands in the panel"
    );

    // Meanwhile, in a terminal: `geoloupe model import` of a release folder and a CLIP folder.
    let dirs = DataDirs::resolve(Some(&data_dir)).unwrap();
    share_gallery_cache(&dirs);
    files::import(&common::data_dirs().release_dir(), &dirs).unwrap();
    files::import(&common::tiny_clip(), &dirs).unwrap();

    // No click: the panel notices and the model loads.
    step_until(
        &mut harness,
        "the panel to notice the install",
        Duration::from_secs(30),
        |app| {
            installed(app, files::Component::Release) && installed(app, files::Component::Backbone)
        },
    );
    step_until(
        &mut harness,
        "the model to load",
        Duration::from_secs(300),
        |app| matches!(app.model.state, ModelState::Ready(_)),
    );
    harness.step();
    let ModelState::Ready(provenance) = harness.state().app().model.state.clone() else {
        unreachable!()
    };
    // The tiny test backbone is named for what it is wherever results are shown.
    assert!(provenance.backbone_is_stand_in(), "{provenance:?}");
    assert_eq!(count(&harness, "Installed"), 2);
    assert_eq!(count(&harness, "Missing"), 0);
    assert!(
        harness
            .query_all_by_label_contains("NOT CLIP ViT-L/14")
            .count()
            >= 2,
        "in the backbone's row and under Ready"
    );
    assert!(
        harness
            .query_all_by_label_contains("results are not GeoCLIP's")
            .next()
            .is_some()
    );
    assert_eq!(count(&harness, "Download (1.9 GB)…"), 0);
    assert!(
        harness
            .state()
            .app()
            .messages
            .iter()
            .any(|m| m.contains("changed on disk")),
        "{:?}",
        harness.state().app().messages
    );
}

#[test]
fn a_clip_folder_is_imported_from_the_app() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut harness = start_app(installed_options(&data_dir));
    step_until(
        &mut harness,
        "the model files check",
        Duration::from_secs(30),
        |app| app.model.info.is_some(),
    );
    // What the folder dialog behind "Import CLIP folder…" answers with.
    harness
        .state_mut()
        .app_mut()
        .commands
        .push(Command::ImportModel(common::tiny_clip()));
    step_until(&mut harness, "the import", Duration::from_secs(60), |app| {
        app.jobs.import.is_none() && installed(app, files::Component::Backbone)
    });
    harness.step();
    let app = harness.state().app();
    assert!(
        app.messages.iter().any(|m| m.contains("Imported 3 files")),
        "{:?}",
        app.messages
    );
    assert!(files::Backbone::open(&app.dirs.backbone_dir()).is_ok());
    // The backbone is installed (and said to be a stand-in); only the release is missing,
    // with its own buttons.
    assert_eq!(count(&harness, "Missing"), 1);
    assert_eq!(count(&harness, "Installed"), 1);
    assert_eq!(count(&harness, "Import CLIP folder…"), 0);
    assert_eq!(count(&harness, "Download (1.9 GB)…"), 0);
    assert_eq!(count(&harness, "Import geoclip wheel…"), 1);
    assert!(
        harness
            .query_all_by_label_contains("NOT CLIP ViT-L/14")
            .next()
            .is_some()
    );
    assert!(matches!(
        harness.state().app().model.state,
        ModelState::NotLoaded(_)
    ));
}
