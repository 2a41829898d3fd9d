//! The desktop app: [`App`] holds the runtime handles (workers, database, textures, map
//! state), [`Settings`] what is persisted, and panels push [`Command`]s that [`App::apply`]
//! runs after the frame. Everything long runs on named threads (`scan`, `thumbnails`,
//! `inference`, `library`, `dialog`, `model-files`); each frame only drains their channels.

pub mod command;
pub mod export;
pub mod settings;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub use command::{Command, DecisionSource};
pub use settings::{Settings, SortKey, StateFilter, ViewMode};

use crate::geo::{ClaimSource, LatLon};
use crate::library::store::{self, Decision, PhotoRecord, Store};
use crate::library::{PhotoEntry, RepaintFn, ScanEvent, Scanner, ThumbnailEvent, ThumbnailWorker};
use crate::model::engine::{LoadEvent, ModelPaths};
use crate::model::files::{self, ComponentInfo, DataDirs};
use crate::model::worker::{
    EmbedderFactory, FakeEmbedder, InferenceWorker, PhotoResult, RunProvenance, WorkerEvent,
    geoclip_factory, ready_factory,
};
use crate::ui::overlays::{BasemapTiles, HeatTiles, MapOutput};

/// Which model the app runs.
#[derive(Clone, Debug)]
pub enum ModelChoice {
    /// The installed GeoCLIP (release + backbone in the data dir).
    Installed,
    /// The deterministic stand-in (tests, demos, screenshots).
    Fake(FakeEmbedder),
}

/// How the app starts.
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub dirs: DataDirs,
    /// Photos or folders to open at start.
    pub initial_paths: Vec<PathBuf>,
    pub model: ModelChoice,
    pub settings: Settings,
    /// When `false`, the network switch is forced off and can't be turned on (tests).
    pub network_allowed: bool,
}

impl AppOptions {
    pub fn new(dirs: DataDirs) -> Self {
        Self {
            dirs,
            initial_paths: Vec::new(),
            model: ModelChoice::Installed,
            settings: Settings::default(),
            network_allowed: true,
        }
    }
}

/// A thumbnail's state in the browser.
#[derive(Clone, Default)]
pub enum Thumb {
    #[default]
    None,
    Requested,
    Ready(egui::TextureHandle),
    Failed(String),
}

impl std::fmt::Debug for Thumb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Requested => f.write_str("Requested"),
            Self::Ready(t) => write!(f, "Ready({:?})", t.size()),
            Self::Failed(e) => write!(f, "Failed({e:?})"),
        }
    }
}

/// One photo of the collection.
#[derive(Clone, Debug)]
pub struct Photo {
    pub entry: PhotoEntry,
    /// The model's latest result (from this session or the database). Heat points are loaded
    /// when the photo is selected.
    pub result: Option<PhotoResult>,
    /// Whether `result` came from the database (not computed in this session).
    pub result_from_store: bool,
    /// The result is older than the file's content.
    pub result_stale: bool,
    pub decision: Option<Decision>,
    /// Why the model could not run on it.
    pub run_error: Option<String>,
    pub thumb: Thumb,
    /// Frame the thumbnail was last visible in (for evicting textures).
    pub thumb_seen_frame: u64,
}

impl Photo {
    fn new(entry: PhotoEntry) -> Self {
        Self {
            entry,
            result: None,
            result_from_store: false,
            result_stale: false,
            decision: None,
            run_error: None,
            thumb: Thumb::None,
            thumb_seen_frame: 0,
        }
    }

    pub fn error(&self) -> Option<&str> {
        self.entry
            .error
            .as_deref()
            .or(self.run_error.as_deref())
            .or(match &self.thumb {
                Thumb::Failed(e) => Some(e.as_str()),
                _ => None,
            })
    }

    pub fn is_located(&self) -> bool {
        self.result.is_some()
    }

    pub fn matches(&self, filter: StateFilter) -> bool {
        match filter {
            StateFilter::All => true,
            StateFilter::HasExifGps => self.entry.gps().is_some(),
            StateFilter::Located => self.is_located(),
            StateFilter::NotLocated => !self.is_located(),
            StateFilter::Accepted => self.decision.is_some(),
            StateFilter::Failed => self.error().is_some(),
        }
    }
}

/// The model as the app sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelState {
    /// Not loaded; the reason (what is missing and how to get it) when known.
    NotLoaded(Option<String>),
    Loading(String),
    Ready(RunProvenance),
    Failed(String),
}

/// A batch the inference worker is running.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub generation: u64,
    pub done: usize,
    pub total: usize,
    pub failed: usize,
    pub eta: Option<Duration>,
}

impl Batch {
    /// Done over total, for progress bars (0 for an empty batch).
    pub fn fraction(&self) -> f32 {
        if self.total == 0 {
            0.0
        } else {
            self.done as f32 / self.total as f32
        }
    }
}

/// A one-shot job on a named thread whose answer arrives on a channel.
pub struct Task<T> {
    pub label: String,
    receiver: Receiver<T>,
}

impl<T: Send + 'static> Task<T> {
    pub fn spawn(
        thread_name: &str,
        label: impl Into<String>,
        repaint: RepaintFn,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (tx, receiver) = sync_channel(1);
        std::thread::Builder::new()
            .name(thread_name.into())
            .spawn(move || {
                let _ = tx.send(job());
                repaint();
            })
            .with_context(|| format!("starting the {thread_name} thread"))?;
        Ok(Self {
            label: label.into(),
            receiver,
        })
    }

    /// The answer, once (then the task is done).
    pub fn poll(&self) -> Option<T> {
        self.receiver.try_recv().ok()
    }
}

/// Map state: walkers' memory, the tile layers and what the markers plugin reported.
pub struct MapState {
    pub memory: walkers::MapMemory,
    pub basemap: BasemapTiles,
    /// OpenStreetMap, only while the network is on (dropped when switched off).
    pub osm: Option<walkers::HttpTiles>,
    pub heat: HeatTiles,
    pub output: MapOutput,
    /// Clicking the map places the selected photo.
    pub place_mode: bool,
    /// Whether OpenStreetMap tiles arrive.
    pub tile_watch: TileWatch,
}

/// Notices when OpenStreetMap tiles don't arrive (no network, a proxy, the server down): walkers
/// logs failed fetches and never retries them, and the basemap underneath hides the gap, so
/// without this the map would look offline while the switch says online.
#[derive(Debug, Default)]
pub struct TileWatch {
    missing_since: Option<Instant>,
}

impl TileWatch {
    /// How long the tile under the map's centre may be missing before the map says so.
    pub const GRACE: Duration = Duration::from_secs(8);

    /// Called each frame with whether the centre tile is there; true once it has been missing
    /// for [`Self::GRACE`].
    pub fn update(&mut self, now: Instant, centre_tile_loaded: bool) -> bool {
        if centre_tile_loaded {
            self.missing_since = None;
            return false;
        }
        let since = *self.missing_since.get_or_insert(now);
        now.duration_since(since) >= Self::GRACE
    }

    /// Forget the wait (the network was switched off).
    pub fn reset(&mut self) {
        self.missing_since = None;
    }
}

/// A model download in progress.
pub struct Download {
    pub task: Task<Result<String, String>>,
    pub progress: std::sync::Arc<std::sync::Mutex<DownloadStatus>>,
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone, Debug, Default)]
pub struct DownloadStatus {
    pub file: String,
    pub done_bytes: u64,
    pub total_bytes: Option<u64>,
}

/// Earlier results and decisions for newly listed photos (from the `library` thread).
type IdentifyAnswer = Result<Vec<(PathBuf, PhotoRecord)>, String>;
/// What a file dialog returned: whether it was for a model import, and the paths picked
/// (`None`: cancelled).
pub type DialogAnswer = Option<(DialogPurpose, Vec<PathBuf>)>;

/// What a file dialog was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogPurpose {
    OpenPhotos,
    ImportModel,
    /// Where to save an export (GPX, CSV or GeoJSON).
    Export,
}

/// The running app.
pub struct App {
    pub ctx: egui::Context,
    pub settings: Settings,
    pub dirs: DataDirs,
    pub network_allowed: bool,
    pub photos: Vec<Photo>,
    by_path: HashMap<PathBuf, usize>,
    /// Indices into `photos`, filtered and sorted as the browser shows them.
    pub view: Vec<usize>,
    view_dirty: bool,
    /// The photo the inspector and the map show.
    pub selected: Option<usize>,
    /// All selected photos (Ctrl-click adds).
    pub selection: BTreeSet<usize>,
    pub scanner: Option<Scanner>,
    pub scan_status: Option<String>,
    /// A photo given by name at start, selected once the scan lists it.
    pending_select: Option<PathBuf>,
    pub thumbnails: Option<ThumbnailWorker>,
    thumbs_in_flight: usize,
    pub worker: Option<InferenceWorker>,
    pub model_choice: ModelChoice,
    pub model_state: ModelState,
    pub model_info: Option<Vec<ComponentInfo>>,
    pub model_info_task: Option<Task<Vec<ComponentInfo>>>,
    pub batch: Option<Batch>,
    /// The last batch's outcome, for the status line.
    pub batch_summary: Option<String>,
    pub store: Option<Store>,
    identify_task: Option<Task<IdentifyAnswer>>,
    pub dialog: Option<Task<DialogAnswer>>,
    pub import_task: Option<Task<Result<String, String>>>,
    pub download: Option<Download>,
    pub confirm_download: bool,
    /// An export (GPX/CSV/GeoJSON) being written on the `export` thread.
    pub export_task: Option<Task<Result<export::WriteOutcome, String>>>,
    /// The dry run of "Write XMP sidecars" being prepared on the `export` thread.
    pub write_plan_task: Option<Task<export::WritePlan>>,
    /// The dry run waiting for the user's confirmation (nothing is written before).
    pub write_confirm: Option<export::WritePlan>,
    /// Claimed locations typed in the inspector, per photo (`lat, lon` text).
    pub claim_inputs: HashMap<PathBuf, String>,
    /// Set once the offline place index is built (the `places` thread); until then the
    /// inspector doesn't look places up, so no frame waits for it.
    pub places_ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub map: MapState,
    /// Errors and notes for the user, newest last (shown once each in the status line).
    pub messages: Vec<String>,
    pub commands: Vec<Command>,
    /// Recent frame times, for the status line (display rate while a batch runs).
    frame_times: std::collections::VecDeque<f32>,
}

impl App {
    /// Builds the app, starts its workers and opens `options.initial_paths`. Nothing here
    /// blocks on the disk beyond opening the database.
    pub fn new(ctx: &egui::Context, options: AppOptions) -> Self {
        let repaint = |ctx: &egui::Context| -> RepaintFn {
            let ctx = ctx.clone();
            Box::new(move || ctx.request_repaint())
        };
        let mut messages = Vec::new();
        let mut settings = options.settings.sanitised();
        if !options.network_allowed {
            settings.network_enabled = false;
        }
        let thumbnails = crate::library::thumbnails::default_cache_dir()
            .map(|_| options.dirs.cache_dir.join("thumbnails"))
            .or_else(|_| Ok::<_, anyhow::Error>(options.dirs.cache_dir.join("thumbnails")))
            .and_then(|dir| ThumbnailWorker::start(dir, 256, repaint(ctx)).context("thumbnails"))
            .map_err(|e| messages.push(format!("{e:#}")))
            .ok();
        let worker = InferenceWorker::start(repaint(ctx))
            .map_err(|e| messages.push(e.to_string()))
            .ok();
        let store = Store::open(&store::default_path(&options.dirs))
            .map_err(|e| messages.push(format!("results will not be saved: {e}")))
            .ok();
        let mut app = Self {
            ctx: ctx.clone(),
            settings,
            dirs: options.dirs,
            network_allowed: options.network_allowed,
            photos: Vec::new(),
            by_path: HashMap::new(),
            view: Vec::new(),
            view_dirty: false,
            selected: None,
            selection: BTreeSet::new(),
            scanner: None,
            scan_status: None,
            pending_select: None,
            thumbnails,
            thumbs_in_flight: 0,
            worker,
            model_choice: options.model,
            model_state: ModelState::NotLoaded(None),
            model_info: None,
            model_info_task: None,
            batch: None,
            batch_summary: None,
            store,
            identify_task: None,
            dialog: None,
            import_task: None,
            download: None,
            confirm_download: false,
            export_task: None,
            write_plan_task: None,
            write_confirm: None,
            claim_inputs: HashMap::new(),
            places_ready: Default::default(),
            map: MapState {
                memory: walkers::MapMemory::default(),
                basemap: BasemapTiles::new(ctx.clone()),
                osm: None,
                heat: HeatTiles::new(ctx.clone()),
                output: MapOutput::default(),
                place_mode: false,
                tile_watch: TileWatch::default(),
            },
            messages,
            commands: Vec::new(),
            frame_times: std::collections::VecDeque::new(),
        };
        let _ = app.map.memory.set_zoom(2.0);
        app.warm_up_places();
        app.refresh_model_info();
        app.load_model();
        if !options.initial_paths.is_empty() {
            app.pending_select = options.initial_paths.iter().find(|p| p.is_file()).cloned();
            app.open(options.initial_paths);
        }
        app
    }

    fn repaint_fn(&self) -> RepaintFn {
        let ctx = self.ctx.clone();
        Box::new(move || ctx.request_repaint())
    }

    /// Draws one frame and applies the commands it produced. Call from `eframe::App::ui`, or
    /// from an egui_kittest harness.
    pub fn app_ui(&mut self, ui: &mut egui::Ui) {
        self.drain_events();
        self.handle_dropped_files(ui.ctx());
        self.handle_keys(ui.ctx());
        crate::ui::frame_ui(ui, self);
        let commands = std::mem::take(&mut self.commands);
        for command in commands {
            self.apply(command);
        }
    }

    /// Records how long the last frame's work took (eframe's `cpu_usage`: `ui` plus rendering,
    /// wall time without the vsync wait).
    pub fn note_frame_cost(&mut self, secs: f32) {
        self.frame_times.push_back(secs);
        if self.frame_times.len() > 120 {
            self.frame_times.pop_front();
        }
    }

    /// The median and the slowest of the last 120 frames' work, in milliseconds. Under 16.7 ms
    /// a 60 Hz display never waits for the app.
    pub fn recent_frame_ms(&self) -> Option<(f32, f32)> {
        let mut times: Vec<f32> = self.frame_times.iter().copied().collect();
        times.sort_by(f32::total_cmp);
        let median = *times.get(times.len() / 2)?;
        let worst = *times.last()?;
        Some((median * 1000.0, worst * 1000.0))
    }

    pub fn is_busy(&self) -> bool {
        self.batch.is_some()
            || self.scanner.is_some()
            || self.identify_task.is_some()
            || self.download.is_some()
            || self.import_task.is_some()
            || self.export_task.is_some()
            || self.write_plan_task.is_some()
            || matches!(self.model_state, ModelState::Loading(_))
    }

    // ----- events from the workers -------------------------------------------------------

    /// Drains every worker's channel (never blocks).
    pub fn drain_events(&mut self) {
        self.drain_scan();
        self.drain_identify();
        self.drain_thumbnails();
        self.drain_inference();
        self.drain_tasks();
    }

    fn drain_scan(&mut self) {
        let Some(scanner) = &self.scanner else {
            return;
        };
        let mut finished = None;
        let mut ended = false;
        for event in scanner.events() {
            match event {
                ScanEvent::Progress(p) => {
                    self.scan_status = Some(format!(
                        "Scanning… {} photos in {} files",
                        p.photos_found, p.files_seen
                    ));
                }
                ScanEvent::Found(_) => {}
                ScanEvent::Finished { entries, .. } => {
                    finished = Some(entries);
                    ended = true;
                }
                ScanEvent::Cancelled => ended = true,
                ScanEvent::Failed(e) => {
                    self.messages.push(e);
                    ended = true;
                }
            }
        }
        if let Some(entries) = finished {
            self.add_entries(entries);
        }
        if ended {
            self.scanner = None;
            self.scan_status = None;
        }
    }

    fn add_entries(&mut self, entries: Vec<PhotoEntry>) {
        let mut new_paths = Vec::new();
        for entry in entries {
            if self.by_path.contains_key(&entry.path) {
                continue;
            }
            if entry.is_ok() {
                new_paths.push(entry.path.clone());
            }
            self.by_path.insert(entry.path.clone(), self.photos.len());
            self.photos.push(Photo::new(entry));
        }
        self.view_dirty = true;
        if let Some(path) = self.pending_select.take()
            && let Some(&index) = self.by_path.get(&path)
        {
            self.select(index, false);
        }
        // Earlier results and decisions, from the database, off the UI thread (new files are
        // hashed for their content key).
        if self.store.is_some() && !new_paths.is_empty() {
            let db = self.store.as_ref().map(|s| s.path().to_owned());
            if let Some(db) = db {
                self.identify_task = Task::spawn(
                    "library",
                    "Reading earlier results",
                    self.repaint_fn(),
                    move || {
                        let mut store = Store::open(&db).map_err(|e| e.to_string())?;
                        let records = store.identify_many(&new_paths).map_err(|e| e.to_string())?;
                        Ok(new_paths
                            .into_iter()
                            .zip(records)
                            .filter_map(|(p, r)| r.ok().map(|r| (p, r)))
                            .collect())
                    },
                )
                .map_err(|e| self.messages.push(format!("{e:#}")))
                .ok();
            }
        }
    }

    fn drain_identify(&mut self) {
        let Some(answer) = self.identify_task.as_ref().and_then(Task::poll) else {
            return;
        };
        self.identify_task = None;
        match answer {
            Ok(records) => {
                for (path, record) in records {
                    let Some(&index) = self.by_path.get(&path) else {
                        continue;
                    };
                    let photo = &mut self.photos[index];
                    photo.decision = record.decision;
                    if photo.result.is_none()
                        && let Some(summary) = record.result
                    {
                        photo.result = Some(PhotoResult {
                            top_k: summary.candidates.len(),
                            candidates: summary.candidates,
                            heat: Vec::new(),
                            heat_mass: 0.0,
                            gallery_len: 0,
                            provenance: RunProvenance::default(),
                            computed_at_unix_secs: summary.computed_at_unix_secs,
                        });
                        photo.result_from_store = true;
                        photo.result_stale = summary.stale;
                    }
                }
                self.view_dirty = true;
                if let Some(i) = self.selected {
                    self.load_full_result(i);
                }
            }
            Err(e) => self
                .messages
                .push(format!("could not read earlier results: {e}")),
        }
    }

    /// Loads the heat points of a result that came from the database as a summary.
    fn load_full_result(&mut self, index: usize) {
        let Some(photo) = self.photos.get_mut(index) else {
            return;
        };
        if !photo.result_from_store || photo.result.as_ref().is_some_and(|r| !r.heat.is_empty()) {
            return;
        }
        let Some(store) = &self.store else {
            return;
        };
        match store.result(&photo.entry.path) {
            Ok(Some(stored)) => {
                photo.result = Some(stored.result);
                photo.result_stale = stored.stale;
            }
            Ok(None) => {}
            Err(e) => self.messages.push(e.to_string()),
        }
    }

    fn drain_thumbnails(&mut self) {
        let Some(worker) = &self.thumbnails else {
            return;
        };
        let frame = self.ctx.cumulative_frame_nr();
        for event in worker.events() {
            self.thumbs_in_flight = self.thumbs_in_flight.saturating_sub(1);
            match event {
                ThumbnailEvent::Ready(ready) => {
                    if let Some(&i) = self.by_path.get(&ready.path) {
                        let image = egui::ColorImage::from_rgba_unmultiplied(
                            [ready.w as usize, ready.h as usize],
                            &ready.rgba,
                        );
                        let texture = self.ctx.load_texture(
                            format!("thumb/{i}"),
                            image,
                            egui::TextureOptions::LINEAR,
                        );
                        self.photos[i].thumb = Thumb::Ready(texture);
                        self.photos[i].thumb_seen_frame = frame;
                    }
                }
                ThumbnailEvent::Failed { path, error } => {
                    if let Some(&i) = self.by_path.get(&path) {
                        self.photos[i].thumb = Thumb::Failed(error);
                    }
                }
            }
        }
    }

    /// Asks for the thumbnails of these photos (the visible ones) and evicts textures that
    /// have not been visible for a while, so 10,000 photos never hold 10,000 textures.
    pub fn want_thumbnails(&mut self, indices: &[usize]) {
        const MAX_TEXTURES: usize = 600;
        const MAX_IN_FLIGHT: usize = 48;
        let frame = self.ctx.cumulative_frame_nr();
        let Some(worker) = &self.thumbnails else {
            return;
        };
        for &i in indices {
            let Some(photo) = self.photos.get_mut(i) else {
                continue;
            };
            photo.thumb_seen_frame = frame;
            if matches!(photo.thumb, Thumb::None)
                && photo.entry.is_ok()
                && self.thumbs_in_flight < MAX_IN_FLIGHT
                && worker.request(photo.entry.path.clone())
            {
                photo.thumb = Thumb::Requested;
                self.thumbs_in_flight += 1;
            }
        }
        let ready = self
            .photos
            .iter()
            .filter(|p| matches!(p.thumb, Thumb::Ready(_)))
            .count();
        if ready > MAX_TEXTURES {
            let mut by_age: Vec<(u64, usize)> = self
                .photos
                .iter()
                .enumerate()
                .filter(|(_, p)| matches!(p.thumb, Thumb::Ready(_)))
                .map(|(i, p)| (p.thumb_seen_frame, i))
                .collect();
            by_age.sort_unstable();
            for &(_, i) in by_age.iter().take(ready - MAX_TEXTURES) {
                self.photos[i].thumb = Thumb::None;
            }
        }
    }

    fn drain_inference(&mut self) {
        let Some(worker) = &self.worker else {
            return;
        };
        let live = worker.generation();
        let events: Vec<WorkerEvent> = worker.events().collect();
        for event in events {
            if event.generation().is_some_and(|g| g != live) {
                continue;
            }
            match event {
                WorkerEvent::ModelLoading { stage } => {
                    self.model_state = ModelState::Loading(match stage {
                        LoadEvent::LoadingWeights => "Loading weights…".into(),
                        LoadEvent::GalleryFromCache { points } => {
                            format!("Gallery from cache ({points} points)…")
                        }
                        LoadEvent::EncodingGallery { done, total } => {
                            format!("Encoding the gallery {done}/{total}…")
                        }
                    });
                }
                WorkerEvent::ModelReady { provenance } => {
                    self.model_state = ModelState::Ready(provenance);
                }
                WorkerEvent::ModelFailed { error } => {
                    self.model_state = ModelState::Failed(error);
                }
                WorkerEvent::Progress {
                    done, total, eta, ..
                } => {
                    if let Some(batch) = &mut self.batch {
                        batch.done = done;
                        batch.total = total;
                        batch.eta = eta;
                    }
                }
                WorkerEvent::Ranked { path, result, .. } => {
                    if let Some(store) = &mut self.store
                        && let Err(e) = store.save_result(&path, &result)
                    {
                        self.messages
                            .push(format!("could not save the result: {e}"));
                    }
                    if let Some(&i) = self.by_path.get(&path) {
                        // The selected photo's answer: show its best candidate.
                        if self.selected == Some(i)
                            && let Some(best) = result.best()
                        {
                            self.map
                                .memory
                                .center_at(crate::ui::overlays::to_position(best.position));
                        }
                        let photo = &mut self.photos[i];
                        photo.result = Some(result);
                        photo.result_from_store = false;
                        photo.result_stale = false;
                        photo.run_error = None;
                    }
                    self.view_dirty = true;
                }
                WorkerEvent::Failed { path, error, .. } => {
                    if let Some(&i) = self.by_path.get(&path) {
                        self.photos[i].run_error = Some(error);
                    }
                    if let Some(batch) = &mut self.batch {
                        batch.failed += 1;
                    }
                    self.view_dirty = true;
                }
                WorkerEvent::NoModel { .. } => {
                    self.batch = None;
                    self.messages
                        .push("No model is loaded: see the Model panel.".into());
                }
                WorkerEvent::Cancelled { done, total, .. } => {
                    self.batch = None;
                    self.batch_summary = Some(format!("Cancelled after {done} of {total}"));
                }
                WorkerEvent::Finished {
                    done,
                    failed,
                    elapsed,
                    ..
                } => {
                    self.batch = None;
                    self.batch_summary = Some(format!(
                        "Located {} photos in {:.1} s{}",
                        done - failed,
                        elapsed.as_secs_f32(),
                        if failed > 0 {
                            format!(", {failed} failed")
                        } else {
                            String::new()
                        }
                    ));
                }
            }
        }
    }

    fn drain_tasks(&mut self) {
        if let Some(info) = self.model_info_task.as_ref().and_then(Task::poll) {
            self.model_info_task = None;
            let missing: Vec<String> = info
                .iter()
                .filter(|c| !c.installed)
                .map(|c| {
                    format!(
                        "{} is missing{}",
                        c.name,
                        c.fix
                            .as_ref()
                            .map(|f| format!(". To get it: {f}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            if matches!(self.model_choice, ModelChoice::Installed)
                && matches!(self.model_state, ModelState::NotLoaded(_))
            {
                self.model_state =
                    ModelState::NotLoaded((!missing.is_empty()).then(|| missing.join("\n")));
            }
            self.model_info = Some(info);
        }
        if let Some(answer) = self.dialog.as_ref().and_then(Task::poll) {
            self.dialog = None;
            match answer {
                Some((DialogPurpose::ImportModel, paths)) => {
                    if let Some(p) = paths.into_iter().next() {
                        self.commands.push(Command::ImportModel(p));
                    }
                }
                Some((DialogPurpose::Export, paths)) => {
                    if let Some(p) = paths.into_iter().next() {
                        self.commands.push(Command::ExportTo(p));
                    }
                }
                Some((DialogPurpose::OpenPhotos, paths)) if !paths.is_empty() => {
                    self.commands.push(Command::Open(paths));
                }
                _ => {}
            }
        }
        if let Some(answer) = self.export_task.as_ref().and_then(Task::poll) {
            self.export_task = None;
            match answer {
                Ok(outcome) => {
                    self.adopt_rewritten(&outcome.rewritten);
                    self.messages.push(outcome.note);
                }
                Err(e) => self.messages.push(format!("export failed: {e}")),
            }
        }
        if let Some(plan) = self.write_plan_task.as_ref().and_then(Task::poll) {
            self.write_plan_task = None;
            if plan.records.is_empty() {
                self.messages
                    .push("No located photos in the view: nothing to write".into());
            } else {
                self.write_confirm = Some(plan);
            }
        }
        if let Some(answer) = self.import_task.as_ref().and_then(Task::poll) {
            self.import_task = None;
            match answer {
                Ok(note) => {
                    self.messages.push(note);
                    self.refresh_model_info();
                    self.model_state = ModelState::NotLoaded(None);
                    self.load_model();
                }
                Err(e) => self.messages.push(format!("import failed: {e}")),
            }
        }
        if let Some(answer) = self.download.as_ref().and_then(|d| d.task.poll()) {
            self.download = None;
            match answer {
                Ok(note) => {
                    self.messages.push(note);
                    self.refresh_model_info();
                    self.model_state = ModelState::NotLoaded(None);
                    self.load_model();
                }
                Err(e) => self.messages.push(format!("download failed: {e}")),
            }
        }
    }

    // ----- input -------------------------------------------------------------------------

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .collect()
        });
        if !dropped.is_empty() {
            self.commands.push(Command::Open(dropped));
        }
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        if ctx.memory(|m| m.focused().is_some()) {
            return;
        }
        let columns = crate::ui::browser::columns_hint(ctx, self).max(1) as isize;
        let (left, right, up, down, enter, space, undo, redo) = ctx.input(|i| {
            let cmd = i.modifiers.command;
            (
                i.key_pressed(egui::Key::ArrowLeft),
                i.key_pressed(egui::Key::ArrowRight),
                i.key_pressed(egui::Key::ArrowUp),
                i.key_pressed(egui::Key::ArrowDown),
                i.key_pressed(egui::Key::Enter),
                i.key_pressed(egui::Key::Space),
                cmd && !i.modifiers.shift && i.key_pressed(egui::Key::Z),
                cmd && (i.key_pressed(egui::Key::Y)
                    || (i.modifiers.shift && i.key_pressed(egui::Key::Z))),
            )
        });
        let step = match self.settings.view_mode {
            ViewMode::Grid => columns,
            ViewMode::List => 1,
        };
        for (pressed, delta) in [(left, -1), (right, 1), (up, -step), (down, step)] {
            if pressed {
                self.commands.push(Command::MoveSelection { delta });
            }
        }
        if enter
            && let Some(i) = self.selected
            && let Some(p) = self.photos.get(i)
            && let Some(at) = p
                .decision
                .map(|d| d.position())
                .or(p.result.as_ref().and_then(|r| r.best()).map(|c| c.position))
                .or(p.entry.gps())
        {
            self.commands.push(Command::CenterMap(at));
        }
        if space {
            self.commands.push(Command::Run { all: false });
        }
        if undo {
            self.commands.push(Command::Undo);
        }
        if redo {
            self.commands.push(Command::Redo);
        }
    }

    // ----- the view ----------------------------------------------------------------------

    /// Recomputes the filtered, sorted view when something it depends on changed.
    pub fn refresh_view(&mut self) {
        if !self.view_dirty {
            return;
        }
        self.view_dirty = false;
        let name = self.settings.name_filter.to_lowercase();
        let folder = self.settings.folder_filter.clone();
        let filter = self.settings.state_filter;
        let mut view: Vec<usize> = (0..self.photos.len())
            .filter(|&i| {
                let p = &self.photos[i];
                p.matches(filter)
                    && (name.is_empty() || p.entry.file_name().to_lowercase().contains(&name))
                    && folder
                        .as_deref()
                        .is_none_or(|f| p.entry.path.starts_with(f))
            })
            .collect();
        let photos = &self.photos;
        let state_rank = |p: &Photo| {
            u8::from(p.decision.is_some()) * 4
                + u8::from(p.is_located()) * 2
                + u8::from(p.entry.gps().is_some())
        };
        match self.settings.sort {
            SortKey::Path => view.sort_by(|&a, &b| photos[a].entry.path.cmp(&photos[b].entry.path)),
            SortKey::Name => {
                view.sort_by_cached_key(|&i| photos[i].entry.file_name().to_lowercase())
            }
            SortKey::Date => view.sort_by_key(|&i| {
                (
                    photos[i].entry.exif.taken_at.clone(),
                    photos[i].entry.modified,
                )
            }),
            SortKey::State => view.sort_by_key(|&i| std::cmp::Reverse(state_rank(&photos[i]))),
        }
        if self.settings.sort_descending {
            view.reverse();
        }
        self.view = view;
        if self.selected.is_none()
            && let Some(&first) = self.view.first()
        {
            self.select(first, false);
        }
    }

    pub fn mark_view_dirty(&mut self) {
        self.view_dirty = true;
    }

    /// The folders of the collection (for the folder filter).
    pub fn folders(&self) -> Vec<PathBuf> {
        let set: BTreeSet<PathBuf> = self
            .photos
            .iter()
            .map(|p| p.entry.folder().to_owned())
            .collect();
        set.into_iter().collect()
    }

    pub fn selected_photo(&self) -> Option<&Photo> {
        self.selected.and_then(|i| self.photos.get(i))
    }

    pub fn photo_index(&self, path: &Path) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    fn select(&mut self, index: usize, extend: bool) {
        if index >= self.photos.len() {
            return;
        }
        if !extend {
            self.selection.clear();
        }
        self.selection.insert(index);
        self.selected = Some(index);
        self.load_full_result(index);
        if let Some(p) = self.photos.get(index)
            && let Some(at) = p.decision.map(|d| d.position()).or(p.entry.gps()).or(p
                .result
                .as_ref()
                .and_then(|r| r.best())
                .map(|c| c.position))
        {
            self.map
                .memory
                .center_at(crate::ui::overlays::to_position(at));
        }
    }

    // ----- commands ----------------------------------------------------------------------

    /// Applies one command (after the frame that produced it).
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::PickPaths { folders } => self.pick_paths(folders),
            Command::Open(paths) => self.open(paths),
            Command::CloseAll => {
                self.photos.clear();
                self.by_path.clear();
                self.view.clear();
                self.selection.clear();
                self.selected = None;
                self.settings.last_opened.clear();
            }
            Command::Select { index, extend } => self.select(index, extend),
            Command::MoveSelection { delta } => {
                self.refresh_view();
                let at = self
                    .selected
                    .and_then(|s| self.view.iter().position(|&i| i == s));
                let next = match at {
                    Some(at) => at
                        .saturating_add_signed(delta)
                        .min(self.view.len().saturating_sub(1)),
                    None => 0,
                };
                if let Some(&index) = self.view.get(next) {
                    self.select(index, false);
                }
            }
            Command::Run { all } => self.run(all),
            Command::CancelRun => {
                if let Some(worker) = &self.worker {
                    let _ = worker.cancel_all();
                }
                if let Some(batch) = self.batch.take() {
                    self.batch_summary =
                        Some(format!("Cancelled after {} of {}", batch.done, batch.total));
                }
            }
            Command::LoadModel => {
                self.model_state = ModelState::NotLoaded(None);
                self.load_model();
            }
            Command::Accept {
                index,
                position,
                source,
            } => {
                let decision = match source {
                    DecisionSource::Candidate { rank } => Decision::Accepted { rank, position },
                    DecisionSource::Manual => Decision::Manual { position },
                };
                self.decide(index, Some(decision));
            }
            Command::ClearDecision { index } => self.decide(index, None),
            Command::Undo => self.undo_redo(true),
            Command::Redo => self.undo_redo(false),
            Command::CenterMap(at) => {
                self.map
                    .memory
                    .center_at(crate::ui::overlays::to_position(at));
            }
            Command::PickModelImport => self.pick_model_import(),
            Command::ImportModel(path) => self.import_model(path),
            Command::StartDownload => self.start_download(),
            Command::PickExport => self.pick_export(),
            Command::ExportTo(path) => self.export_to(path),
            Command::PlanWrites(target) => self.plan_writes(target),
            Command::WriteConfirmed => self.write_confirmed(),
            Command::CancelWrites => self.write_confirm = None,
            Command::CancelDownload => {
                if let Some(d) = self.download.take() {
                    d.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
                    self.messages.push(
                        "Download cancelled (the file in progress stops at its next chunk)".into(),
                    );
                }
            }
        }
    }

    /// Scans paths (folders recursively) on the scan thread.
    pub fn open(&mut self, paths: Vec<PathBuf>) {
        for p in &paths {
            if !self.settings.last_opened.contains(p) {
                self.settings.last_opened.push(p.clone());
            }
        }
        match Scanner::start(paths, Default::default(), self.repaint_fn()) {
            Ok(scanner) => {
                self.scan_status = Some("Scanning…".into());
                self.scanner = Some(scanner);
            }
            Err(e) => self.messages.push(e.to_string()),
        }
    }

    fn pick_paths(&mut self, folders: bool) {
        if self.dialog.is_some() {
            return;
        }
        let start = self.settings.last_opened.last().cloned();
        self.dialog = Task::spawn("dialog", "Choosing photos", self.repaint_fn(), move || {
            let mut dialog = rfd::FileDialog::new();
            if let Some(dir) = start.filter(|p| p.is_dir()) {
                dialog = dialog.set_directory(dir);
            }
            let picked = if folders {
                dialog.set_title("Open folders").pick_folders()
            } else {
                dialog
                    .set_title("Open photos")
                    .add_filter("Images", crate::cli::PHOTO_EXTENSIONS)
                    .pick_files()
            };
            picked.map(|p| (DialogPurpose::OpenPhotos, p))
        })
        .map_err(|e| self.messages.push(format!("{e:#}")))
        .ok();
    }

    fn pick_model_import(&mut self) {
        if self.dialog.is_some() {
            return;
        }
        self.dialog = Task::spawn("dialog", "Choosing model files", self.repaint_fn(), || {
            rfd::FileDialog::new()
                .set_title("Import the GeoCLIP wheel (.whl) or a model folder")
                .add_filter("GeoCLIP wheel", &["whl"])
                .pick_file()
                .map(|p| (DialogPurpose::ImportModel, vec![p]))
        })
        .map_err(|e| self.messages.push(format!("{e:#}")))
        .ok();
    }

    // ----- exports -----------------------------------------------------------------------

    /// Builds the offline place index on the `places` thread, once.
    fn warm_up_places(&mut self) {
        let ready = self.places_ready.clone();
        let repaint = self.repaint_fn();
        let started = std::thread::Builder::new()
            .name("places".into())
            .spawn(move || {
                crate::geo::warm_up_places();
                ready.store(true, std::sync::atomic::Ordering::Release);
                repaint();
            });
        if let Err(e) = started {
            self.messages.push(format!(
                "place names unavailable: starting the places thread: {e}"
            ));
        }
    }

    /// Whether place names can be looked up without waiting.
    pub fn places_ready(&self) -> bool {
        self.places_ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The claimed location of a photo: its EXIF GPS, else what the user typed for it.
    pub fn claim_of(&self, photo: &Photo) -> Option<(LatLon, ClaimSource)> {
        photo
            .entry
            .gps()
            .map(|p| (p, ClaimSource::ExifGps))
            .or_else(|| {
                self.claim_inputs
                    .get(&photo.entry.path)
                    .and_then(|t| export::parse_claim(t))
                    .map(|p| (p, ClaimSource::User))
            })
    }

    /// What an export holds for the located photos of the current view: the accepted location
    /// (else top-1), the candidates and provenance of the stored result, and the claim (EXIF
    /// GPS or typed) checked over the heat points. Cheap: no place look-ups, no file or
    /// database reads (claims of results loaded as summaries, without heat points, are left
    /// for [`export::complete_claims`] on the worker thread).
    pub fn export_inputs(&self) -> Vec<export::ExportInput> {
        self.view
            .iter()
            .filter_map(|&i| self.photos.get(i))
            .filter_map(|photo| {
                let result = photo.result.as_ref()?;
                let claimed = self.claim_of(photo);
                let (claim, unchecked_claim) = match claimed {
                    Some(c) if result.heat.is_empty() && self.store.is_some() => (None, Some(c)),
                    Some((at, source)) => (export::claim_check(result, at, source), None),
                    None => (None, None),
                };
                Some(export::ExportInput {
                    path: photo.entry.path.clone(),
                    candidates: result.candidates.clone(),
                    provenance: export::provenance_of(result),
                    accepted: photo.decision.as_ref().map(Decision::position),
                    claim,
                    unchecked_claim,
                })
            })
            .collect()
    }

    /// What the `export` thread does with [`App::export_inputs`] (claims completed from the
    /// database, place look-ups, EXIF times), here on the calling thread, for tests.
    pub fn export_records(&self) -> Vec<crate::export::ExportRecord> {
        export::build_records(self.export_job()())
    }

    /// The inputs, and the job that completes them on a worker thread.
    fn export_job(&self) -> impl FnOnce() -> Vec<export::ExportInput> + Send + 'static {
        let mut inputs = self.export_inputs();
        let store_path = store::default_path(&self.dirs);
        move || {
            export::complete_claims(&mut inputs, &store_path);
            inputs
        }
    }

    /// Whether the view shows a located photo (what the export buttons need).
    pub fn view_has_located(&self) -> bool {
        self.view
            .iter()
            .any(|&i| self.photos.get(i).is_some_and(Photo::is_located))
    }

    fn pick_export(&mut self) {
        if self.dialog.is_some() {
            return;
        }
        let start = self.settings.last_opened.last().cloned();
        self.dialog = Task::spawn(
            "dialog",
            "Choosing where to export",
            self.repaint_fn(),
            || {
                let mut dialog = rfd::FileDialog::new();
                if let Some(dir) = start.filter(|p| p.is_dir()) {
                    dialog = dialog.set_directory(dir);
                }
                dialog
                    .set_title("Export the located photos")
                    .add_filter("GPX", &["gpx"])
                    .add_filter("CSV", &["csv"])
                    .add_filter("GeoJSON", &["geojson", "json"])
                    .set_file_name("geoloupe.gpx")
                    .save_file()
                    .map(|p| (DialogPurpose::Export, vec![p]))
            },
        )
        .map_err(|e| self.messages.push(format!("{e:#}")))
        .ok();
    }

    fn export_to(&mut self, path: PathBuf) {
        if self.export_task.is_some() {
            self.messages
                .push("An export is already being written".into());
            return;
        }
        if !self.view_has_located() {
            self.messages
                .push("No located photos in the view: nothing to export".into());
            return;
        }
        let job = self.export_job();
        self.export_task = Task::spawn(
            "export",
            format!("Exporting to {}", path.display()),
            self.repaint_fn(),
            move || {
                export::export_to(&path, job()).map(|note| export::WriteOutcome {
                    note,
                    rewritten: Vec::new(),
                })
            },
        )
        .map_err(|e| self.messages.push(format!("{e:#}")))
        .ok();
    }

    /// Prepares the dry run of "Write XMP sidecars" or "Write EXIF GPS"; the confirmation
    /// dialog shows it.
    fn plan_writes(&mut self, target: export::WriteTarget) {
        if self.write_plan_task.is_some() || self.export_task.is_some() {
            return;
        }
        if !self.view_has_located() {
            self.messages
                .push("No located photos in the view: nothing to write".into());
            return;
        }
        let job = self.export_job();
        self.write_plan_task = Task::spawn(
            "export",
            "Listing what would be written",
            self.repaint_fn(),
            move || export::plan_writes(target, export::build_records(job())),
        )
        .map_err(|e| self.messages.push(format!("{e:#}")))
        .ok();
    }

    /// Writes what the user confirmed (only after they pressed "Write").
    fn write_confirmed(&mut self) {
        let Some(confirmed) = self.write_confirm.take() else {
            return;
        };
        if self.export_task.is_some() {
            self.messages
                .push("An export is already being written".into());
            self.write_confirm = Some(confirmed);
            return;
        }
        let backups = crate::export::exif_write::BackupStore::in_data_dir(&self.dirs.data_dir);
        let label = match confirmed.target {
            export::WriteTarget::XmpSidecars => "Writing XMP sidecars",
            export::WriteTarget::ExifGps => "Writing EXIF GPS",
        };
        self.export_task = Task::spawn("export", label, self.repaint_fn(), move || {
            Ok(export::write_confirmed(&confirmed, &backups))
        })
        .map_err(|e| self.messages.push(format!("{e:#}")))
        .ok();
    }

    /// After geoloupe rewrote these photos' EXIF: the browser shows their new EXIF GPS, and
    /// the library adopts the new bytes so their results stay current.
    fn adopt_rewritten(&mut self, rewritten: &[PathBuf]) {
        for path in rewritten {
            if let Some(store) = self.store.as_mut()
                && let Err(e) = store.adopt_own_write(path)
            {
                self.messages.push(format!("library: {e}"));
            }
            if let Some(photo) = self.photos.iter_mut().find(|p| &p.entry.path == path)
                && let Ok(exif) = crate::library::exif::read_exif(path)
            {
                photo.entry.exif = exif;
            }
        }
    }

    fn import_model(&mut self, source: PathBuf) {
        let dirs = self.dirs.clone();
        self.import_task = Task::spawn(
            "model-files",
            format!("Importing {}", source.display()),
            self.repaint_fn(),
            move || {
                files::import(&source, &dirs)
                    .map(|r| format!("Imported {} files from {}", r.files.len(), source.display()))
                    .map_err(|e| e.to_string())
            },
        )
        .map_err(|e| self.messages.push(format!("{e:#}")))
        .ok();
    }

    fn start_download(&mut self) {
        self.confirm_download = false;
        if !self.settings.network_enabled {
            self.messages
                .push("The network is switched off: turn it on to download.".into());
            return;
        }
        let progress = std::sync::Arc::new(std::sync::Mutex::new(DownloadStatus::default()));
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dirs = self.dirs.clone();
        let (thread_progress, thread_cancel) = (progress.clone(), cancel.clone());
        match Task::spawn(
            "model-files",
            "Downloading the model",
            self.repaint_fn(),
            move || download_models(&dirs, &thread_progress, &thread_cancel),
        ) {
            Ok(task) => {
                self.download = Some(Download {
                    task,
                    progress,
                    cancel,
                })
            }
            Err(e) => self.messages.push(format!("{e:#}")),
        }
    }

    /// Re-reads what model files are installed (on a thread: it opens the files).
    pub fn refresh_model_info(&mut self) {
        self.read_model_info(false);
    }

    /// Verifies installed files against their manifests (slow: hashes ~1.7 GB).
    pub fn verify_model_files(&mut self) {
        self.read_model_info(true);
    }

    fn read_model_info(&mut self, verify_hashes: bool) {
        let dirs = self.dirs.clone();
        let label = if verify_hashes {
            "Verifying model files"
        } else {
            "Checking model files"
        };
        self.model_info_task = Task::spawn("model-files", label, self.repaint_fn(), move || {
            files::info(&dirs, verify_hashes)
        })
        .map_err(|e| self.messages.push(format!("{e:#}")))
        .ok();
    }

    fn load_model(&mut self) {
        let Some(worker) = &self.worker else {
            return;
        };
        let factory: EmbedderFactory = match &self.model_choice {
            ModelChoice::Fake(fake) => ready_factory(fake.clone()),
            ModelChoice::Installed => {
                let paths = ModelPaths::installed(&self.dirs);
                if !paths.release_dir.join("manifest.json").exists() && !paths.backbone_dir.exists()
                {
                    self.model_state = ModelState::NotLoaded(Some(
                        "No model installed: import the GeoCLIP wheel or download it (Model panel)."
                            .into(),
                    ));
                    return;
                }
                geoclip_factory(paths, self.settings.device)
            }
        };
        match worker.load_model(factory) {
            Ok(()) => self.model_state = ModelState::Loading("Loading the model…".into()),
            Err(e) => self.model_state = ModelState::Failed(e.to_string()),
        }
    }

    /// Runs the model on the selection (or the whole view).
    fn run(&mut self, all: bool) {
        if self.worker.is_none() {
            return;
        }
        if self.batch.is_some() {
            self.messages
                .push("A batch is already running: cancel it first.".into());
            return;
        }
        self.refresh_view();
        let indices: Vec<usize> = if all {
            self.view.clone()
        } else {
            self.selection.iter().copied().collect()
        };
        let jobs: Vec<PathBuf> = indices
            .iter()
            .filter_map(|&i| self.photos.get(i))
            .filter(|p| p.entry.is_ok())
            .map(|p| p.entry.path.clone())
            .collect();
        if jobs.is_empty() {
            return;
        }
        let total = jobs.len();
        let Some(worker) = &self.worker else {
            return;
        };
        match worker.run(jobs, self.settings.top_k) {
            Ok(generation) => {
                self.batch = Some(Batch {
                    generation,
                    done: 0,
                    total,
                    failed: 0,
                    eta: None,
                });
                self.batch_summary = None;
            }
            Err(e) => self.messages.push(e.to_string()),
        }
    }

    fn decide(&mut self, index: usize, decision: Option<Decision>) {
        let Some(photo) = self.photos.get_mut(index) else {
            return;
        };
        match &mut self.store {
            Some(store) => match store.decide(&photo.entry.path, decision) {
                Ok(change) => photo.decision = change.after,
                Err(e) => self
                    .messages
                    .push(format!("could not save the decision: {e}")),
            },
            None => {
                photo.decision = decision;
                self.messages
                    .push("No database: the decision is not saved and can't be undone.".into());
            }
        }
        self.view_dirty = true;
    }

    fn undo_redo(&mut self, undo: bool) {
        let Some(store) = &mut self.store else {
            return;
        };
        let change = if undo { store.undo() } else { store.redo() };
        match change {
            Ok(Some(change)) => {
                let path = change.path.clone();
                let index = self.by_path.get(&path).copied().or_else(|| {
                    // The store keys photos by absolute path.
                    self.photos
                        .iter()
                        .position(|p| std::path::absolute(&p.entry.path).is_ok_and(|a| a == path))
                });
                if let Some(i) = index {
                    self.photos[i].decision = change.after;
                    self.view_dirty = true;
                }
            }
            Ok(None) => {}
            Err(e) => self.messages.push(e.to_string()),
        }
    }

    pub fn can_undo(&self) -> bool {
        self.store
            .as_ref()
            .is_some_and(|s| s.can_undo().unwrap_or(false))
    }

    pub fn can_redo(&self) -> bool {
        self.store
            .as_ref()
            .is_some_and(|s| s.can_redo().unwrap_or(false))
    }

    /// Turns the network on or off: off drops the tile downloader at once.
    pub fn set_network(&mut self, enabled: bool) {
        self.settings.network_enabled = enabled && self.network_allowed;
        if !self.settings.network_enabled {
            self.map.osm = None;
        }
    }

    /// Creates the OpenStreetMap tile source when the network is on (with its disk cache).
    pub fn ensure_tiles(&mut self) {
        if self.settings.network_enabled && self.map.osm.is_none() {
            let options = walkers::HttpOptions {
                cache: Some(self.dirs.cache_dir.join("tiles")),
                ..Default::default()
            };
            self.map.osm = Some(walkers::HttpTiles::with_options(
                walkers::sources::OpenStreetMap,
                options,
                self.ctx.clone(),
            ));
        }
    }
}

/// Downloads the release and the backbone (as `geoloupe model download --yes` does), stopping
/// mid-file when `cancel` is set.
fn download_models(
    dirs: &DataDirs,
    status: &std::sync::Mutex<DownloadStatus>,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<String, String> {
    use crate::model::download::{self, DownloadProgress};
    struct Progress<'a>(&'a std::sync::Mutex<DownloadStatus>);
    impl DownloadProgress for Progress<'_> {
        fn file_started(&mut self, file: &str, total_bytes: Option<u64>) {
            if let Ok(mut s) = self.0.lock() {
                *s = DownloadStatus {
                    file: file.to_owned(),
                    done_bytes: 0,
                    total_bytes,
                };
            }
        }
        fn bytes(&mut self, _file: &str, done_bytes: u64) {
            if let Ok(mut s) = self.0.lock() {
                s.done_bytes = done_bytes;
            }
        }
        fn file_finished(&mut self, _file: &str) {}
    }
    let options = download::DownloadOptions::from_env();
    let reports = files::download_and_install(dirs, &options, &mut Progress(status), cancel)
        .map_err(|e| format!("{e}"))?;
    Ok(reports
        .iter()
        .map(|r| format!("{} installed in {}", r.kind, r.dir.display()))
        .collect::<Vec<_>>()
        .join("; "))
}

/// eframe glue: settings through eframe's storage, the frame through [`App::app_ui`].
pub struct EframeApp {
    pub app: App,
}

impl EframeApp {
    pub fn new(cc: &eframe::CreationContext<'_>, mut options: AppOptions) -> Self {
        if let Some(storage) = cc.storage
            && let Some(settings) = eframe::get_value::<Settings>(storage, settings::SETTINGS_KEY)
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
        self.app.app_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, settings::SETTINGS_KEY, &self.app.settings);
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
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("geoloupe")
        .with_app_id("org.geoloupe.geoloupe")
        .with_inner_size([1400.0, 860.0])
        .with_min_inner_size([800.0, 500.0])
        .with_drag_and_drop(true);
    if let Some(icon) = window_icon() {
        viewport = viewport.with_icon(icon);
    }
    let native = eframe::NativeOptions {
        viewport,
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
