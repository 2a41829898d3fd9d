//! The desktop app's frame time with 10,000 photos: the real `App` in an egui_kittest harness
//! (CPU only, no GPU: this times our UI code, layout and tessellation, not the driver), while
//! the grid scrolls and thumbnails stream in from the worker, then with the list view.
//!
//!     cargo bench --bench browser            # 10,000 photos
//!     cargo bench --bench browser -- 2000    # another count
//!
//! Photos are generated 320x240 JPEGs in 50 folders. Numbers are printed; nothing is asserted.

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use geoloupe::app::{App, AppOptions, ModelChoice, ViewMode};
use geoloupe::model::files::DataDirs;
use geoloupe::runtime::inference::FakeEmbedder;

struct State {
    options: Option<AppOptions>,
    app: Option<App>,
}

fn make_photos(root: &Path, count: usize) -> std::io::Result<()> {
    for i in 0..count {
        let dir = root.join(format!("folder{:02}", i % 50));
        std::fs::create_dir_all(&dir)?;
        let img = image::RgbImage::from_fn(320, 240, |x, y| {
            let t = (i * 37) as u32;
            image::Rgb([
                ((x + t) % 256) as u8,
                ((y * 2 + t) % 256) as u8,
                (((x ^ y) + t) % 256) as u8,
            ])
        });
        img.save(dir.join(format!("photo{i:05}.jpg")))
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(label: &str, mut frames: Vec<Duration>) {
    frames.sort();
    println!(
        "{label}: {} frames, median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        frames.len(),
        percentile(&frames, 0.5).as_secs_f64() * 1e3,
        percentile(&frames, 0.95).as_secs_f64() * 1e3,
        percentile(&frames, 1.0).as_secs_f64() * 1e3,
    );
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let photos = tmp.path().join("photos");
    let started = Instant::now();
    make_photos(&photos, count).expect("generate photos");
    println!(
        "generated {count} photos in {:.1} s",
        started.elapsed().as_secs_f32()
    );

    let dirs = DataDirs::resolve(Some(&tmp.path().join("data"))).expect("data dir");
    let mut options = AppOptions::new(dirs);
    options.model = ModelChoice::Fake(FakeEmbedder::new());
    options.network_allowed = false;
    options.initial_paths = vec![photos];
    let mut harness = Harness::builder()
        .with_size(egui::Vec2::new(1400.0, 900.0))
        .build_ui_state(
            |ui, state: &mut State| {
                if state.app.is_none()
                    && let Some(options) = state.options.take()
                {
                    state.app = Some(App::new(ui.ctx(), options));
                }
                if let Some(app) = &mut state.app {
                    geoloupe::ui::app_ui(ui, app);
                }
            },
            State {
                options: Some(options),
                app: None,
            },
        );

    let listed = Instant::now();
    loop {
        harness.step();
        let app = harness.state().app.as_ref().expect("app");
        if app.collection.photos.len() == count && app.scanners.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    println!(
        "listed {count} photos in the app in {:.2} s",
        listed.elapsed().as_secs_f32()
    );

    // Grid: scroll down step by step while thumbnails arrive.
    let mut frames = Vec::new();
    for i in 0..400 {
        if i % 4 == 0 {
            harness.event(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, -120.0),
                modifiers: egui::Modifiers::NONE,
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Wheel,
            });
            harness.hover_at(egui::pos2(180.0, 400.0));
        }
        let t = Instant::now();
        harness.step();
        frames.push(t.elapsed());
    }
    report("grid, scrolling while thumbnails load", frames);

    // Jump to the end with the keyboard, then the list view.
    let mut frames = Vec::new();
    for _ in 0..200 {
        harness.key_press(egui::Key::ArrowDown);
        let t = Instant::now();
        harness.step();
        frames.push(t.elapsed());
    }
    report("grid, arrow-key navigation", frames);
    if let Some(app) = harness.state_mut().app.as_mut() {
        app.settings.view_mode = ViewMode::List;
    }
    let mut frames = Vec::new();
    for _ in 0..200 {
        harness.key_press(egui::Key::ArrowDown);
        let t = Instant::now();
        harness.step();
        frames.push(t.elapsed());
    }
    report("list, arrow-key navigation", frames);
    let textures = harness
        .state()
        .app
        .as_ref()
        .map(|a| a.thumbs.textures())
        .unwrap_or(0);
    println!("thumbnail textures held: {textures} (capped, of {count} photos)");
}
