//! The window: eframe's native options, the icon, settings through eframe's storage (in
//! `<config>/app.ron`, copied once from eframe's old place), and the
//! environment switches of demos and tests (`GEOLOUPE_OFFLINE`, `GEOLOUPE_FAKE_MODEL`).

use std::path::PathBuf;

use crate::app::settings::SETTINGS_KEY;
use crate::app::{App, AppOptions, ModelChoice, Settings};
use crate::model::files::DataDirs;
use crate::runtime::inference::FakeEmbedder;

/// eframe glue: settings through eframe's storage, the frame through [`super::app_ui`].
pub struct EframeApp {
    pub app: App,
}

impl EframeApp {
    pub fn new(cc: &eframe::CreationContext<'_>, mut options: AppOptions) -> Self {
        let mut fonts = egui::FontDefinitions::default();
        super::input::add_shortcut_symbols(&mut fonts);
        cc.egui_ctx.set_fonts(fonts);
        if let Some(storage) = cc.storage
            && let Some(settings) = eframe::get_value::<Settings>(storage, SETTINGS_KEY)
        {
            options.settings = settings;
        }
        if options.initial_paths.is_empty() {
            options.initial_paths = options
                .settings
                .last_opened
                .iter()
                .filter(|p| p.exists())
                .cloned()
                .collect();
        }
        Self {
            app: App::new(&cc.egui_ctx, options),
        }
    }
}

impl eframe::App for EframeApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(secs) = frame.info().cpu_usage {
            self.app.note_frame_cost(secs);
        }
        super::app_ui(ui, &mut self.app);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.app.settings);
    }
}

/// The app icon (256 px PNG from `icons/`), for the window.
pub const ICON_PNG: &[u8] = include_bytes!("../../icons/geoloupe-256.png");

/// Decodes [`ICON_PNG`] for the window manager.
pub fn window_icon() -> Option<egui::IconData> {
    let image = image::load_from_memory(ICON_PNG).ok()?.into_rgba8();
    let (width, height) = image.dimensions();
    Some(egui::IconData {
        rgba: image.into_raw(),
        width,
        height,
    })
}

/// Opens the desktop app on `paths` (blocks until the window closes).
pub fn run_native(dirs: DataDirs, paths: Vec<PathBuf>) -> anyhow::Result<()> {
    let paths: Vec<PathBuf> = paths
        .into_iter()
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .collect();
    log::info!(
        "opening the app with {} paths; data in {}",
        paths.len(),
        dirs.data_dir.display()
    );
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("geoloupe")
        .with_app_id("org.geoloupe.geoloupe")
        .with_inner_size([1400.0, 860.0])
        .with_min_inner_size([800.0, 500.0])
        .with_drag_and_drop(true);
    if let Some(icon) = window_icon() {
        viewport = viewport.with_icon(icon);
    }
    let settings_file = dirs.settings_file();
    if let Some(legacy) = crate::model::files::legacy_settings_file() {
        match crate::model::files::migrate_settings(&settings_file, &legacy) {
            Ok(true) => log::info!(
                "settings copied from {} to {}",
                legacy.display(),
                settings_file.display()
            ),
            Ok(false) => {}
            Err(e) => log::warn!("could not copy the settings from {}: {e}", legacy.display()),
        }
    }
    let native = eframe::NativeOptions {
        viewport,
        // Settings live in the config folder (`DataDirs`), not in eframe's own data folder.
        persistence_path: Some(settings_file),
        ..Default::default()
    };
    let mut options = AppOptions::new(dirs);
    options.initial_paths = paths;
    if std::env::var_os("GEOLOUPE_OFFLINE").is_some() {
        // Nothing touches the network (the map shows the offline basemap).
        options.network_allowed = false;
    }
    if std::env::var_os("GEOLOUPE_FAKE_MODEL").is_some() {
        // Demos and screenshots without the 1.7 GB model.
        // GEOLOUPE_FAKE_DELAY_MS: each photo takes that long (measuring the frame time of a
        // batch without its CPU load).
        let delay_ms = std::env::var("GEOLOUPE_FAKE_DELAY_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        options.model = ModelChoice::Fake(FakeEmbedder::with_delay(
            std::time::Duration::from_millis(delay_ms),
        ));
    }
    eframe::run_native(
        "geoloupe",
        native,
        Box::new(move |cc| Ok(Box::new(EframeApp::new(cc, options)))),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}
