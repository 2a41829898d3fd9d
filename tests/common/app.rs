//! The desktop app in an egui_kittest harness, shared by the app tests: the [`App`] is built
//! inside the first frame with the harness's egui context, and every frame runs
//! `geoloupe::ui::app_ui`, exactly as the native window does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use egui_kittest::Harness;
use geoloupe::app::{App, AppOptions, ModelChoice, ModelState};
use geoloupe::model::files::DataDirs;
use geoloupe::runtime::inference::FakeEmbedder;

/// The harness's default window, in points.
pub const WINDOW: egui::Vec2 = egui::Vec2::new(1400.0, 900.0);
/// The small window the app must stay usable in.
pub const SMALL_WINDOW: egui::Vec2 = egui::Vec2::new(1024.0, 700.0);

/// The harness state: the options until the first frame builds the app from them.
pub struct TestApp {
    options: Option<AppOptions>,
    app: Option<App>,
}

impl TestApp {
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("built in the first frame")
    }
    pub fn app_mut(&mut self) -> &mut App {
        self.app.as_mut().expect("built in the first frame")
    }
}

/// The app in a `size` window. `max_steps` bounds how long building the harness runs the app
/// until it is stable (a model still loading keeps a spinner turning, so it never is).
pub fn start_app_sized(
    options: AppOptions,
    size: egui::Vec2,
    max_steps: u64,
) -> Harness<'static, TestApp> {
    let mut harness = Harness::builder()
        .with_size(size)
        .with_max_steps(max_steps)
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

/// Options with `model`, the data in `data_dir`, and no network.
pub fn options_with(data_dir: &Path, model: ModelChoice) -> AppOptions {
    let dirs = DataDirs::resolve(Some(data_dir)).unwrap();
    let mut options = AppOptions::new(dirs);
    options.model = model;
    options.network_allowed = false;
    options
}

/// Options with the fake embedder, the data in `data_dir`, and no network.
pub fn fake_options(data_dir: &Path) -> AppOptions {
    options_with(data_dir, ModelChoice::Fake(FakeEmbedder::new()))
}

/// Steps the app until `done` holds (background threads need real time to answer).
pub fn step_until(harness: &mut Harness<'_, TestApp>, what: &str, done: impl Fn(&App) -> bool) {
    for _ in 0..3000 {
        harness.step();
        if done(harness.state().app()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("gave up waiting for: {what}");
}

/// The collection index of the photo named `name`.
pub fn index_of(app: &App, name: &str) -> usize {
    app.collection
        .photos
        .iter()
        .position(|p| p.entry.file_name() == name)
        .unwrap_or_else(|| panic!("{name} is not in the collection"))
}

/// A folder of copies of fixture photos: gps.jpg (with EXIF GPS), kauai.jpg, sub/small.png and
/// an empty file that can't be read.
pub fn photo_folder(root: &Path) -> PathBuf {
    let folder = root.join("photos");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    for name in ["gps.jpg", "kauai.jpg"] {
        std::fs::copy(super::image_path(name), folder.join(name)).unwrap();
    }
    std::fs::copy(
        super::image_path("small.png"),
        folder.join("sub").join("small.png"),
    )
    .unwrap();
    std::fs::write(folder.join("empty.jpg"), b"").unwrap();
    folder
}

/// Clicks "Run on all shown (`shown`)" and waits until the batch is over with `located` photos
/// located.
pub fn run_all_shown(harness: &mut Harness<'static, TestApp>, shown: usize, located: usize) {
    use egui_kittest::kittest::Queryable as _;
    harness
        .get_by_label(&format!("Run on all shown ({shown})"))
        .click();
    step_until(harness, "the batch", |app| {
        app.model.batch.is_none()
            && app
                .collection
                .photos
                .iter()
                .filter(|p| p.is_located())
                .count()
                == located
    });
}

/// [`photo_folder`] opened in a `size` window with the fake model, and every usable photo
/// located (3: the empty file can't be).
pub fn located_folder(tmp: &Path, size: egui::Vec2) -> (Harness<'static, TestApp>, PathBuf) {
    let folder = photo_folder(tmp);
    let mut options = fake_options(&tmp.join("data"));
    options.initial_paths = vec![folder.clone()];
    let mut harness = start_app_sized(options, size, 10_000);
    step_until(&mut harness, "the scan and the model", |app| {
        app.collection.photos.len() == 4 && matches!(app.model.state, ModelState::Ready(_))
    });
    run_all_shown(&mut harness, 4, 3);
    harness.step();
    (harness, folder)
}
