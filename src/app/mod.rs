//! The desktop app's state, as a composition of parts with one owner each:
//!
//! | part | what it holds |
//! |---|---|
//! | [`Collection`] (`collection`) | the photos, what is known of each, the view, the selection (no egui) |
//! | [`Thumbs`] (`thumbs`) | thumbnail textures and the "thumbnails" worker |
//! | [`ModelPart`] (`model`) | the inference worker, the model's state, the batch in progress |
//! | [`LibraryThread`] (`library`) | the only SQLite connection, on the "library" thread |
//! | [`Jobs`] (`jobs`) | one-shot tasks: dialogs, import, download, exports and writes |
//! | [`MapState`] (`map`) | walkers' memory, tile layers, what the markers reported |
//! | [`Messages`] (`messages`) | the newest errors and notes, bounded |
//!
//! Panels (in `ui`) read this state and push [`Command`]s; [`App::apply`] runs them after the
//! frame. [`App::begin_frame`] drains every worker's channel without blocking. Nothing here
//! draws: drawing is `ui`'s, which is the only layer above this one.

pub mod claims;
pub mod collection;
pub mod command;
mod continuous_heat;
pub mod describe;
pub mod export;
pub mod map;
pub mod messages;
pub mod model_files;
pub mod preview;
pub mod regions;
pub mod review;
pub mod settings;
pub mod sources;
pub mod thumbs;
pub mod track;
pub mod trip;
pub mod viewer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use collection::{Collection, Photo};
pub use command::{Command, DecisionSource};
pub use map::{MapState, TileWatch};
pub use messages::Messages;
pub use model_files::{Download, DownloadStatus, ModelFilesWatch};
pub use settings::{Settings, SortKey, StateFilter, ViewMode};
pub use thumbs::{Thumb, Thumbs};

use crate::domain::{Decision, PhotoResult, Provenance, RepaintFn};
use crate::geo::{ClaimSource, LatLon};
use crate::library::store::{self, DecisionChange, PhotoRecord};
use crate::library::{ScanEvent, Scanner, ThumbnailWorker};
use crate::model::engine::{LoadEvent, ModelPaths};
use crate::model::files::{self, ComponentInfo, DataDirs};
use crate::runtime::inference::{
    EmbedderFactory, FakeEmbedder, InferenceWorker, WorkerEvent, fake_factory, geoclip_factory,
};
use crate::runtime::library::{LibraryCommand, LibraryEvent, LibraryThread};
use crate::runtime::task::{Task, TaskFailed};

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
    /// Where `Download` fetches from; `None`: the environment's (`HF_ENDPOINT`, `HF_HUB_CACHE`…).
    pub download_options: Option<crate::model::download::DownloadOptions>,
}

impl AppOptions {
    pub fn new(dirs: DataDirs) -> Self {
        Self {
            dirs,
            initial_paths: Vec::new(),
            model: ModelChoice::Installed,
            settings: Settings::default(),
            network_allowed: true,
            download_options: None,
        }
    }
}

/// The model as the app sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelState {
    /// Not loaded; the reason (what is missing and how to get it) when known.
    NotLoaded(Option<String>),
    Loading(String),
    Ready(Provenance),
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

/// The model: its worker, its state and the batch in progress.
pub struct ModelPart {
    pub worker: Option<InferenceWorker>,
    pub choice: ModelChoice,
    pub state: ModelState,
    pub info: Option<Vec<ComponentInfo>>,
    pub info_task: Option<Task<Vec<ComponentInfo>>>,
    pub batch: Option<Batch>,
    /// The last batch's outcome, for the status line.
    pub batch_summary: Option<String>,
    /// Notices model files installed elsewhere while the app runs.
    pub watch: ModelFilesWatch,
    /// Where `Download` fetches from (`None`: the environment's settings).
    pub download_options: Option<crate::model::download::DownloadOptions>,
}

impl ModelPart {
    pub fn is_ready(&self) -> bool {
        matches!(self.state, ModelState::Ready(_))
    }
}

/// What a file dialog returned: what it was for, and the paths picked (`None`: cancelled).
pub type DialogAnswer = Option<(DialogPurpose, Vec<PathBuf>)>;

/// What a file dialog was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogPurpose {
    OpenPhotos,
    ImportModel,
    /// Where to save an export (GPX, CSV or GeoJSON).
    Export,
    /// GPS tracks to load (GPX, KML, NMEA).
    Track,
}

/// One-shot jobs on named threads, one slot each. Dropping a slot joins its thread.
#[derive(Default)]
pub struct Jobs {
    pub dialog: Option<Task<DialogAnswer>>,
    pub import: Option<Task<Result<String, String>>>,
    pub download: Option<Download>,
    pub confirm_download: bool,
    /// An export (GPX/CSV/GeoJSON) or a confirmed write being done on the `export` thread.
    pub export: Option<Task<Result<export::WriteOutcome, String>>>,
    /// The dry run of "Write XMP sidecars" / "Write EXIF GPS" being prepared.
    pub write_plan: Option<Task<export::WritePlan>>,
    /// The dry run waiting for the user's confirmation (nothing is written before).
    pub write_confirm: Option<export::WritePlan>,
    /// The user asked to include unreviewed estimates in the dry run shown: the second
    /// confirmation (with the count) is open.
    pub confirm_estimates: bool,
    /// The export window (which photos, then the file) is open.
    pub export_choice: Option<export::WriteScope>,
    /// Which photos the next export takes (set by the export window).
    pub export_scope: export::WriteScope,
    /// The offline place index being built, once.
    places: Option<Task<()>>,
}

impl Jobs {
    pub fn is_busy(&self) -> bool {
        self.dialog.is_some()
            || self.import.is_some()
            || self.download.is_some()
            || self.export.is_some()
            || self.write_plan.is_some()
    }
}

/// A decision sent to the library thread and not yet confirmed: the UI shows it at once, and
/// an older snapshot of the photo (an identify that ran before) does not overwrite it.
#[derive(Clone, Debug)]
struct PendingDecision {
    in_flight: usize,
    /// The last decision the database confirmed (what a failure goes back to).
    confirmed: Option<Decision>,
}

/// The running app. See the module docs.
pub struct App {
    pub ctx: egui::Context,
    pub settings: Settings,
    pub dirs: DataDirs,
    pub network_allowed: bool,
    pub collection: Collection,
    pub thumbs: Thumbs,
    /// Scans in progress, one per open action (a second folder opened while the first is read
    /// in gets its own).
    pub scanners: Vec<Scanner>,
    pub scan_status: Option<String>,
    pub model: ModelPart,
    pub library: LibraryThread,
    /// Whether the database could be opened (results and decisions are saved).
    pub library_available: bool,
    pending_decisions: HashMap<usize, PendingDecision>,
    /// Earlier results still being looked up in the database (photos sent, not yet answered).
    pub identify_pending: usize,
    pub can_undo: bool,
    pub can_redo: bool,
    pub jobs: Jobs,
    /// Claimed locations typed in the inspector, per photo (kept in the library).
    pub claims: claims::Claims,
    /// Photos restricted to a region (the inspector's region field, a box drawn on the map).
    pub regions: regions::Regions,
    /// A GPS track with its offset preview, and the trip shown (issue 12).
    pub sources: sources::Sources,
    /// The description typed over the map, its answer and the heat shown (issue 14).
    pub describe: describe::Descriptions,
    /// Set once the offline place index is built; until then the inspector doesn't look places
    /// up, so no frame waits for it.
    places_ready: bool,
    pub map: MapState,
    pub messages: Messages,
    /// The preview, compare and review modes, the panels shown.
    pub viewer: viewer::Viewer,
    pub commands: Vec<Command>,
    /// Recent frame times, for the status line (display rate while a batch runs).
    frame_times: std::collections::VecDeque<f32>,
}

fn repaint_for(ctx: &egui::Context) -> RepaintFn {
    let ctx = ctx.clone();
    Box::new(move || ctx.request_repaint())
}

impl App {
    /// Builds the app, starts its workers and opens `options.initial_paths`. Nothing here
    /// blocks on the disk: the database is opened on the library thread.
    pub fn new(ctx: &egui::Context, options: AppOptions) -> Self {
        let mut messages = Messages::default();
        let mut settings = options.settings.sanitised();
        if !options.network_allowed {
            settings.network_enabled = false;
        }
        let thumbnails = ThumbnailWorker::start(
            options.dirs.cache_dir.join("thumbnails"),
            256,
            repaint_for(ctx),
        )
        .map_err(|e| messages.push(format!("thumbnails: {e}")))
        .ok();
        let worker = InferenceWorker::start(repaint_for(ctx))
            .map_err(|e| messages.push(e.to_string()))
            .ok();
        let mut library_available = true;
        let library =
            LibraryThread::start(Some(store::default_path(&options.dirs)), repaint_for(ctx))
                .unwrap_or_else(|e| {
                    messages.push(format!(
                        "results will not be saved: starting the library thread: {e}"
                    ));
                    library_available = false;
                    LibraryThread::unavailable()
                });
        let mut app = Self {
            ctx: ctx.clone(),
            settings,
            dirs: options.dirs,
            network_allowed: options.network_allowed,
            collection: Collection::default(),
            thumbs: Thumbs::new(thumbnails),
            scanners: Vec::new(),
            scan_status: None,
            model: ModelPart {
                worker,
                choice: options.model,
                state: ModelState::NotLoaded(None),
                info: None,
                info_task: None,
                batch: None,
                batch_summary: None,
                watch: ModelFilesWatch::default(),
                download_options: options.download_options,
            },
            library,
            library_available,
            pending_decisions: HashMap::new(),
            identify_pending: 0,
            can_undo: false,
            can_redo: false,
            jobs: Jobs::default(),
            claims: claims::Claims::default(),
            regions: regions::Regions::default(),
            describe: describe::Descriptions::default(),
            sources: sources::Sources::default(),
            places_ready: false,
            map: MapState::new(ctx),
            messages,
            viewer: viewer::Viewer::default(),
            commands: Vec::new(),
            frame_times: std::collections::VecDeque::new(),
        };
        app.warm_up_places();
        app.refresh_model_info();
        app.load_model();
        if !options.initial_paths.is_empty() {
            app.collection.pending_select =
                options.initial_paths.iter().find(|p| p.is_file()).cloned();
            app.open(options.initial_paths);
        }
        app
    }

    fn repaint_fn(&self) -> RepaintFn {
        repaint_for(&self.ctx)
    }

    /// Before drawing a frame: sends what waits for the library thread and drains every
    /// worker's channel (never blocks), then brings the view up to date.
    pub fn begin_frame(&mut self) {
        self.library.flush();
        self.drain_scans();
        self.drain_library();
        self.thumbs.drain(&self.ctx, &mut self.collection);
        self.drain_inference();
        self.drain_tasks();
        self.refresh_track_preview();
        self.watch_model_files();
        let ctx = self.ctx.clone();
        self.viewer.previews.drain(&ctx, || repaint_for(&ctx));
        self.refresh_view();
    }

    /// After drawing: applies the commands the frame produced.
    pub fn end_frame(&mut self) {
        for command in std::mem::take(&mut self.commands) {
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
        self.model.batch.is_some()
            || !self.scanners.is_empty()
            || self.identify_pending > 0
            || self.jobs.is_busy()
            || matches!(self.model.state, ModelState::Loading(_))
    }

    // ----- events from the workers -------------------------------------------------------

    fn drain_scans(&mut self) {
        let mut finished = Vec::new();
        let mut ended = vec![false; self.scanners.len()];
        for (i, scanner) in self.scanners.iter().enumerate() {
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
                        finished.push(entries);
                        ended[i] = true;
                    }
                    ScanEvent::Cancelled => ended[i] = true,
                    ScanEvent::Failed(e) => {
                        self.messages.push(e);
                        ended[i] = true;
                    }
                }
            }
        }
        for entries in finished {
            self.add_entries(entries);
        }
        if ended.iter().any(|&e| e) {
            let mut ended = ended.into_iter();
            self.scanners.retain(|_| !ended.next().unwrap_or(false));
            if self.scanners.is_empty() {
                self.scan_status = None;
            }
        }
    }

    fn add_entries(&mut self, entries: Vec<crate::library::PhotoEntry>) {
        let new_paths = self.collection.add_entries(entries);
        if let Some(path) = self.collection.pending_select.take() {
            match self.collection.index_of(&path) {
                Some(index) => self.select(index, false),
                None => self.collection.pending_select = Some(path),
            }
        }
        // Earlier results and decisions, from the database (new files are hashed for their
        // content key on the library thread).
        if !new_paths.is_empty() {
            self.identify_pending += new_paths.len();
            self.library.send(LibraryCommand::Identify(new_paths));
        }
    }

    fn drain_library(&mut self) {
        let events: Vec<LibraryEvent> = self.library.events().collect();
        for event in events {
            match event {
                LibraryEvent::Unavailable(e) => {
                    self.library_available = false;
                    self.identify_pending = 0;
                    self.messages
                        .push(format!("results will not be saved: {e}"));
                }
                LibraryEvent::Identified { records, processed } => {
                    self.identify_pending = self.identify_pending.saturating_sub(processed);
                    self.identified(records);
                }
                LibraryEvent::Decided { path, change } => {
                    self.decision_saved(&path, &change, true);
                }
                LibraryEvent::DecideFailed { path, error } => {
                    self.messages.push(error);
                    if let Some(i) = self.collection.index_of(&path)
                        && let Some(pending) = self.pending_decisions.get_mut(&i)
                    {
                        pending.in_flight = pending.in_flight.saturating_sub(1);
                        if pending.in_flight == 0 {
                            let confirmed = pending.confirmed.take();
                            self.pending_decisions.remove(&i);
                            if let Some(photo) = self.collection.get_mut(i) {
                                photo.decision = confirmed;
                            }
                            self.collection.photo_state_changed(&self.settings);
                        }
                    }
                }
                LibraryEvent::UndoneOrRedone { change } => {
                    let path = change.path.clone();
                    self.decision_saved(&path, &change, false);
                    self.show_undone(&change);
                }
                LibraryEvent::UndoState { can_undo, can_redo } => {
                    self.can_undo = can_undo;
                    self.can_redo = can_redo;
                }
                LibraryEvent::Adopted { path, exif } => {
                    if let Some(i) = self.collection.index_of(&path)
                        && let Some(photo) = self.collection.get_mut(i)
                    {
                        photo.entry.exif = exif;
                        self.collection.mark_view_dirty();
                    }
                }
                LibraryEvent::Loaded { path, stored } => {
                    if let Some(i) = self.collection.index_of(&path)
                        && let Some(photo) = self.collection.get_mut(i)
                        && photo.result_from_store
                        && let Some(stored) = stored
                    {
                        photo.result = Some(stored.result);
                        photo.result_stale = stored.stale;
                    }
                }
                LibraryEvent::Error(e) => self.messages.push(e),
            }
        }
    }

    /// Earlier results and decisions arrived for some photos.
    fn identified(&mut self, records: Vec<(PathBuf, PhotoRecord)>) {
        let mut selected_loaded = false;
        for (path, record) in records {
            let Some(index) = self.collection.index_of(&path) else {
                continue;
            };
            let pending = self.pending_decisions.contains_key(&index);
            let Some(photo) = self.collection.get_mut(index) else {
                continue;
            };
            if !pending {
                // A decision made since this snapshot is still on its way: keep it.
                photo.decision = record.decision;
            }
            if let Some(claim) = record.claim {
                self.claims.restore(&path, claim);
            }
            if photo.result.is_none()
                && let Some(summary) = record.result
            {
                photo.result = Some(PhotoResult {
                    top_k: summary.candidates.len(),
                    candidates: summary.candidates,
                    heat: Vec::new(),
                    heat_mass: 0.0,
                    gallery_len: 0,
                    provenance: Provenance::default(),
                    computed_at_unix_secs: summary.computed_at_unix_secs,
                    image_feature: None,
                    group: None,
                });
                photo.result_from_store = true;
                photo.result_stale = summary.stale;
                selected_loaded |= self.collection.selected == Some(index);
            }
        }
        self.collection.photo_state_changed(&self.settings);
        if selected_loaded && let Some(i) = self.collection.selected {
            // The selected photo's earlier result arrived after it was selected: show it.
            if let Some(at) = self.collection.get(i).and_then(Photo::focus) {
                self.map.center_at(at);
            }
            self.load_full_result(i);
        }
    }

    /// A decision (made here, or undone/redone) is in the database.
    fn decision_saved(&mut self, path: &std::path::Path, change: &DecisionChange, ours: bool) {
        let Some(index) = self.collection.index_of(path) else {
            return;
        };
        match self.pending_decisions.get_mut(&index) {
            Some(pending) => {
                pending.confirmed = change.after.clone();
                if ours {
                    pending.in_flight = pending.in_flight.saturating_sub(1);
                }
                if pending.in_flight == 0 {
                    self.pending_decisions.remove(&index);
                    if let Some(photo) = self.collection.get_mut(index) {
                        photo.decision = change.after.clone();
                    }
                }
            }
            None => {
                if let Some(photo) = self.collection.get_mut(index) {
                    photo.decision = change.after.clone();
                }
            }
        }
        self.collection.photo_state_changed(&self.settings);
    }

    /// Undo or redo changed a photo: say which, and select it when the view shows it (it may
    /// not be the photo on screen).
    fn show_undone(&mut self, change: &DecisionChange) {
        let Some(index) = self.collection.index_of(&change.path) else {
            return;
        };
        let name = self
            .collection
            .get(index)
            .map(|p| p.entry.file_name())
            .unwrap_or_default();
        let now = match &change.after {
            Some(Decision::Accepted { rank, position }) => {
                format!("candidate #{rank} accepted ({position})")
            }
            Some(Decision::Manual { position }) => format!("placed by hand ({position})"),
            Some(Decision::Placed { position, origin }) => {
                format!("placed from {} ({position})", origin.describe())
            }
            None => "no accepted location".to_owned(),
        };
        self.messages
            .info(format!("Undo/redo changed {name}: {now}"));
        if self.collection.selected != Some(index) && self.collection.view.contains(&index) {
            self.select(index, false);
        }
    }

    /// Asks the library thread for the heat points of a result that came from the database as
    /// a summary.
    fn load_full_result(&mut self, index: usize) {
        let Some(photo) = self.collection.get(index) else {
            return;
        };
        if !photo.result_from_store || photo.result.as_ref().is_some_and(|r| !r.heat.is_empty()) {
            return;
        }
        let path = photo.entry.path.clone();
        self.library.send(LibraryCommand::LoadResult(path));
    }

    fn drain_inference(&mut self) {
        let Some(worker) = &self.model.worker else {
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
                    self.model.state = ModelState::Loading(match stage {
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
                    self.model.state = ModelState::Ready(provenance);
                }
                WorkerEvent::ModelFailed { error } => {
                    self.model.state = ModelState::Failed(error);
                }
                WorkerEvent::Progress {
                    done, total, eta, ..
                } => {
                    if let Some(batch) = &mut self.model.batch {
                        batch.done = done;
                        batch.total = total;
                        batch.eta = eta;
                    }
                }
                WorkerEvent::RankedWithin {
                    request,
                    path,
                    result,
                    constraint,
                } => self.ranked_within(request, path, result, constraint),
                WorkerEvent::WithinFailed {
                    request,
                    path,
                    error,
                } => {
                    if self.regions.answered(&path, request).is_some() {
                        self.messages.warning(format!("Region: {error}"));
                        self.regions.errors.insert(path, error);
                    }
                }
                WorkerEvent::Described {
                    request,
                    text,
                    ensemble,
                    result,
                } => {
                    let answer = describe::Described {
                        text,
                        ensemble,
                        result,
                    };
                    self.describe.answered(request, Ok(answer));
                }
                WorkerEvent::DescribeFailed { request, error } => {
                    if self.describe.answered(request, Err(error.clone())) {
                        self.messages.warning(format!("Describe: {error}"));
                    }
                }
                WorkerEvent::Ranked { path, result, .. } => {
                    // A new answer replaces any restricted one.
                    self.regions.clear(&path);
                    self.library.send(LibraryCommand::SaveResult {
                        path: path.clone(),
                        result: Box::new(result.clone()),
                    });
                    if let Some(i) = self.collection.index_of(&path) {
                        // The selected photo's answer: show its best candidate.
                        if self.collection.selected == Some(i)
                            && let Some(best) = result.best()
                        {
                            self.map.center_at(best.position);
                        }
                        if let Some(photo) = self.collection.get_mut(i) {
                            photo.result = Some(result);
                            photo.result_from_store = false;
                            photo.result_stale = false;
                            photo.run_error = None;
                        }
                    }
                    self.collection.photo_state_changed(&self.settings);
                }
                WorkerEvent::Failed { path, error, .. } => {
                    if let Some(i) = self.collection.index_of(&path)
                        && let Some(photo) = self.collection.get_mut(i)
                    {
                        photo.run_error = Some(error);
                    }
                    if let Some(batch) = &mut self.model.batch {
                        batch.failed += 1;
                    }
                    self.collection.photo_state_changed(&self.settings);
                }
                WorkerEvent::NoModel { .. } => {
                    self.model.batch = None;
                    self.messages
                        .warning("No model is loaded: see the Model panel.");
                }
                WorkerEvent::HeatTile {
                    heat_generation,
                    photo_key,
                    tile,
                    level,
                    values,
                } => self.continuous_heat_tile(heat_generation, &photo_key, tile, level, values),
                WorkerEvent::HeatFailed {
                    heat_generation,
                    photo_key,
                    error,
                } => self.continuous_heat_failed(heat_generation, &photo_key, &error),
                WorkerEvent::Cancelled { done, total, .. } => {
                    self.model.batch = None;
                    self.model.batch_summary = Some(format!("Cancelled after {done} of {total}"));
                }
                WorkerEvent::Finished {
                    done,
                    failed,
                    elapsed,
                    ..
                } => {
                    self.model.batch = None;
                    let located = done - failed;
                    self.model.batch_summary = Some(format!(
                        "Located {located} photo{} in {:.1} s{}",
                        if located == 1 { "" } else { "s" },
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

    /// Takes the answer of a finished task out of its slot (the slot is free again, also when
    /// the task panicked: that is reported once).
    fn take_answer<T: Send + 'static>(
        slot: &mut Option<Task<T>>,
        messages: &mut Messages,
    ) -> Option<T> {
        let answer = slot.as_ref()?.poll()?;
        *slot = None;
        answer
            .map_err(|e: TaskFailed| messages.push(e.to_string()))
            .ok()
    }

    fn drain_tasks(&mut self) {
        self.drain_track();
        if Self::take_answer(&mut self.jobs.places, &mut self.messages).is_some() {
            self.places_ready = true;
        }
        if let Some(info) = Self::take_answer(&mut self.model.info_task, &mut self.messages) {
            // The panel shows each part with the button that fixes it; the state only names them.
            let missing: Vec<&str> = info
                .iter()
                .filter(|c| !c.installed)
                .map(|c| c.name)
                .collect();
            if matches!(self.model.choice, ModelChoice::Installed)
                && matches!(self.model.state, ModelState::NotLoaded(_))
            {
                self.model.state = ModelState::NotLoaded(
                    (!missing.is_empty()).then(|| format!("Missing: {}", missing.join(", "))),
                );
            }
            self.model.info = Some(info);
        }
        if let Some(answer) = Self::take_answer(&mut self.jobs.dialog, &mut self.messages) {
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
                Some((DialogPurpose::Track, paths)) if !paths.is_empty() => {
                    self.commands.push(Command::LoadTrack(paths));
                }
                Some((DialogPurpose::OpenPhotos, paths)) if !paths.is_empty() => {
                    self.commands.push(Command::Open(paths));
                }
                _ => {}
            }
        }
        if let Some(answer) = Self::take_answer(&mut self.jobs.export, &mut self.messages) {
            match answer {
                Ok(outcome) if outcome.failed > 0 => self.messages.error(outcome.note),
                Ok(outcome) => self.messages.info(outcome.note),
                Err(e) => self.messages.push(format!("export failed: {e}")),
            }
        }
        if let Some(plan) = Self::take_answer(&mut self.jobs.write_plan, &mut self.messages) {
            if plan.records.is_empty() && plan.counts.unreviewed == 0 {
                self.messages
                    .warning("No located photos in the view: nothing to write");
            } else {
                self.jobs.write_confirm = Some(plan);
            }
        }
        if let Some(answer) = Self::take_answer(&mut self.jobs.import, &mut self.messages) {
            match answer {
                Ok(note) => {
                    self.messages.info(note);
                    self.reload_model_files();
                }
                Err(e) => self.messages.push(format!("import failed: {e}")),
            }
        }
        let download = self.jobs.download.as_ref().and_then(|d| d.task.poll());
        if let Some(answer) = download {
            self.jobs.download = None;
            match answer {
                Ok(Ok(note)) => {
                    self.messages.info(note);
                    self.reload_model_files();
                }
                Ok(Err(e)) => self.messages.push(format!("download failed: {e}")),
                Err(e) => self.messages.push(e.to_string()),
            }
        }
    }

    fn reload_model_files(&mut self) {
        self.model.watch.remember(&self.dirs);
        self.refresh_model_info();
        self.model.state = ModelState::NotLoaded(None);
        self.load_model();
    }

    /// Reloads the model files when someone else installed, replaced or removed them (checked
    /// every [`ModelFilesWatch::PERIOD`]; not during the app's own import or download, whose
    /// answer reloads, nor during a batch).
    fn watch_model_files(&mut self) {
        if !matches!(self.model.choice, ModelChoice::Installed) {
            return;
        }
        self.ctx.request_repaint_after(ModelFilesWatch::PERIOD);
        if self.jobs.import.is_some() || self.jobs.download.is_some() || self.model.batch.is_some()
        {
            return;
        }
        if self
            .model
            .watch
            .changed(std::time::Instant::now(), &self.dirs)
        {
            self.messages
                .info("The model files changed on disk: reading them again");
            self.reload_model_files();
        }
    }

    // ----- the view ----------------------------------------------------------------------

    /// Recomputes the filtered, sorted view when something it depends on changed.
    pub fn refresh_view(&mut self) {
        if let Some(first) = self.collection.refresh_view(&self.settings) {
            self.select(first, false);
        }
    }

    fn select(&mut self, index: usize, extend: bool) {
        if !self.collection.select(index, extend) {
            return;
        }
        self.load_full_result(index);
        if let Some(at) = self.collection.get(index).and_then(Photo::focus) {
            self.map.center_at(at);
        }
    }

    /// Asks for the thumbnails of these photos (the visible ones).
    pub fn want_thumbnails(&mut self, indices: &[usize]) {
        self.thumbs.want(&self.ctx, &self.collection, indices);
    }

    // ----- commands ----------------------------------------------------------------------

    /// Applies one command (after the frame that produced it).
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::PickPaths { folders } => self.pick_paths(folders),
            Command::Open(paths) => self.open(paths),
            Command::SetClaim { path, text, picked } => self.set_claim_text(path, text, picked),
            Command::SetRegionText { path, text } => {
                self.regions.inputs.insert(path, text);
            }
            Command::RestrictTo { paths, region } => {
                for path in paths {
                    self.restrict_to(path, region.clone());
                }
            }
            Command::ClearRegion(paths) => {
                for path in paths {
                    self.clear_region(&path);
                }
            }
            Command::DrawRegion(on) => {
                self.regions.drawing = on.then(regions::Drawing::default);
            }
            Command::PickTrack => self.pick_track(),
            Command::LoadTrack(paths) => self.load_track(paths),
            Command::CloseTrack => {
                self.sources.track = None;
                self.sources.picking_offset = false;
            }
            Command::SetTrackOffset(offset_secs) => {
                if let Some(track) = self.sources.track.as_mut() {
                    track.offset_secs = offset_secs;
                }
            }
            Command::SetTrackZone(text) => {
                if let Some(track) = self.sources.track.as_mut() {
                    track.zone_text = text;
                }
            }
            Command::PickTrackOffset(on) => self.sources.picking_offset = on,
            Command::TrackClicked(at) => self.track_offset_from_click(at),
            Command::ApplyTrack => self.apply_track(),
            Command::LocateAsTrip => self.locate_as_trip(),
            Command::SetTripSpeed(kmh) => self.sources.trip_speed_kmh = kmh,
            Command::AcceptTrip => self.accept_trip(),
            Command::ClearTrip => self.sources.trip = None,
            Command::DrawPolygon => {
                self.regions.drawing = Some(regions::Drawing {
                    vertices: Vec::new(),
                    polygon: true,
                });
            }
            Command::CloseAll => {
                self.collection.clear();
                self.thumbs.clear();
                self.pending_decisions.clear();
                self.settings.last_opened.clear();
                self.viewer.previews.clear();
                self.viewer.review = None;
                self.viewer.compare_with = None;
            }
            Command::Select { index, extend } => self.select(index, extend),
            Command::MoveSelection { delta } => {
                self.refresh_view();
                if let Some(index) = self.collection.moved_selection(delta) {
                    self.select(index, false);
                }
            }
            Command::Run { all } => self.run(all),
            Command::RunNewOrStale => {
                self.run_these(Collection::runnable_new_or_stale);
            }
            Command::LocateTogether => {
                self.run_these_with(|collection| collection.runnable(false), true);
            }
            Command::CancelRun => {
                if let Some(worker) = &self.model.worker {
                    let _ = worker.cancel_all();
                }
                if let Some(batch) = self.model.batch.take() {
                    self.model.batch_summary =
                        Some(format!("Cancelled after {} of {}", batch.done, batch.total));
                }
            }
            Command::LoadModel => {
                self.model.state = ModelState::NotLoaded(None);
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
                self.review_decided(index, source);
            }
            Command::ClearDecision { index } => self.decide(index, None),
            Command::Review(action) => self.apply_review(action),
            Command::CompareWith(index) => {
                self.viewer.compare_with = index;
                self.viewer.compare_zoom = preview::ZoomPan::FIT;
                if index.is_some() {
                    self.viewer.show_preview = true;
                }
            }
            Command::Undo => self.library.send(LibraryCommand::Undo),
            Command::Redo => self.library.send(LibraryCommand::Redo),
            Command::CenterMap(at) => self.map.center_at(at),
            Command::Describe { text, ensemble } => self.ask_description(text, ensemble),
            Command::ClearDescription => self.describe.clear(),
            Command::PickModelImport { folder } => self.pick_model_import(folder),
            Command::ImportModel(path) => self.import_model(path),
            Command::StartDownload => self.start_download(),
            Command::PickExport => {
                self.jobs.export_scope = self.jobs.export_choice.take().unwrap_or_default();
                self.pick_export();
            }
            Command::ExportTo(path) => self.export_to(path),
            Command::PlanWrites(target) => {
                self.plan_writes(target, export::WriteScope::AcceptedOnly, false)
            }
            Command::WriteScope(scope) => {
                // The dry run again with (or without) the unreviewed estimates: the user's
                // explicit, confirmed choice.
                if let Some(plan) = self.jobs.write_confirm.take() {
                    self.plan_writes(plan.target, scope, plan.overwrite_invalid_gps());
                }
            }
            Command::CancelExport => self.jobs.export_choice = None,
            Command::OpenExport => {
                self.jobs.export_choice = Some(export::WriteScope::AcceptedOnly);
            }
            Command::WriteConfirmed => self.write_confirmed(),
            Command::CancelWrites => self.jobs.write_confirm = None,
            Command::OverwriteInvalidGps(overwrite) => self.replan_writes(overwrite),
            Command::IptcLocation(on) => self.set_iptc_location(on),
            Command::CancelDownload => {
                if let Some(d) = self.jobs.download.take() {
                    d.cancel.store(true, Ordering::SeqCst);
                    self.messages
                        .info("Download cancelled (the file in progress stops at its next chunk)");
                }
            }
        }
    }

    /// Scans paths (folders recursively) on a scan thread of their own; scans already running
    /// go on.
    pub fn open(&mut self, paths: Vec<PathBuf>) {
        // Tracks (GPX, KML, NMEA) dropped, picked or given on the command line are loaded as
        // a track, not scanned for photos.
        let (tracks, paths): (Vec<PathBuf>, Vec<PathBuf>) = paths
            .into_iter()
            .partition(|p| p.is_file() && track::is_track_file(p));
        if !tracks.is_empty() {
            self.load_track(tracks);
        }
        if paths.is_empty() {
            return;
        }
        for p in &paths {
            if !self.settings.last_opened.contains(p) {
                self.settings.last_opened.push(p.clone());
            }
        }
        match Scanner::start(paths, Default::default(), self.repaint_fn()) {
            Ok(scanner) => {
                self.scan_status = Some("Scanning…".into());
                self.scanners.push(scanner);
            }
            Err(e) => self.messages.push(e.to_string()),
        }
    }

    fn spawn_dialog(&mut self, label: &str, job: impl FnOnce() -> DialogAnswer + Send + 'static) {
        if self.jobs.dialog.is_some() {
            return;
        }
        self.jobs.dialog = Task::spawn("dialog", label, self.repaint_fn(), job)
            .map_err(|e| {
                self.messages
                    .push(format!("starting the dialog thread: {e}"))
            })
            .ok();
    }

    fn pick_paths(&mut self, folders: bool) {
        let start = self.settings.last_opened.last().cloned();
        self.spawn_dialog("Choosing photos", move || {
            let mut dialog = rfd::FileDialog::new();
            if let Some(dir) = start.filter(|p| p.is_dir()) {
                dialog = dialog.set_directory(dir);
            }
            let picked = if folders {
                dialog.set_title("Open folders").pick_folders()
            } else {
                dialog
                    .set_title("Open photos")
                    .add_filter("Images", crate::library::scan::PHOTO_EXTENSIONS)
                    .pick_files()
            };
            picked.map(|p| (DialogPurpose::OpenPhotos, p))
        });
    }

    fn pick_track(&mut self) {
        self.spawn_dialog("Choosing a track", move || {
            rfd::FileDialog::new()
                .set_title("Load a GPS track")
                .add_filter("GPS tracks", track::TRACK_EXTENSIONS)
                .add_filter("Any file", &["*"])
                .pick_files()
                .map(|p| (DialogPurpose::Track, p))
        });
    }

    /// The dialog for an import: a file (the geoclip wheel) or a folder (an unpacked geoclip
    /// package, a GeoCLIP release folder or a Hugging Face CLIP folder); `files::import` tells
    /// them apart.
    fn pick_model_import(&mut self, folder: bool) {
        self.spawn_dialog("Choosing model files", move || {
            let dialog = rfd::FileDialog::new();
            let picked = if folder {
                dialog
                    .set_title("Import a CLIP folder, a GeoCLIP release folder or an unpacked geoclip package")
                    .pick_folder()
            } else {
                dialog
                    .set_title("Import the geoclip wheel (geoclip-1.3.0-py3-none-any.whl)")
                    .add_filter("geoclip wheel", &["whl"])
                    .add_filter("Any file", &["*"])
                    .pick_file()
            };
            picked.map(|p| (DialogPurpose::ImportModel, vec![p]))
        });
    }

    fn pick_export(&mut self) {
        let start = self.settings.last_opened.last().cloned();
        self.spawn_dialog("Choosing where to export", || {
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
        });
    }

    // ----- exports -----------------------------------------------------------------------

    /// Builds the offline place index on the `places` thread, once.
    fn warm_up_places(&mut self) {
        self.jobs.places = Task::spawn(
            "places",
            "Building the place index",
            self.repaint_fn(),
            crate::geo::warm_up_places,
        )
        .map_err(|e| {
            self.messages.push(format!(
                "place names unavailable: starting the places thread: {e}"
            ))
        })
        .ok();
    }

    /// Whether place names can be looked up without waiting.
    pub fn places_ready(&self) -> bool {
        self.places_ready
    }

    /// The claimed location of a photo: its EXIF GPS, else what the user typed for it (the
    /// first of [`App::claims_of`]).
    pub fn claim_of(&self, photo: &Photo) -> Option<(LatLon, ClaimSource)> {
        self.claims_of(photo).first().copied()
    }

    /// What "fit" frames: the selected photo's candidates (its top-k), its claims (the EXIF
    /// GPS and the typed claim) and its accepted location.
    pub fn fit_points(&self) -> Vec<LatLon> {
        let Some(photo) = self.collection.selected_photo() else {
            return Vec::new();
        };
        let mut points: Vec<LatLon> = photo
            .result
            .as_ref()
            .map(|r| r.candidates.iter().map(|c| c.position).collect())
            .unwrap_or_default();
        points.extend(self.claims_of(photo).into_iter().map(|(p, _)| p));
        points.extend(photo.decision.as_ref().map(|d| d.position()));
        points
    }

    /// Every claimed location of a photo: its EXIF GPS, then what the user typed for it.
    pub fn claims_of(&self, photo: &Photo) -> Vec<(LatLon, ClaimSource)> {
        self.claims.of(&photo.entry.path, photo.entry.gps())
    }

    /// The user typed `text` as the claim of the photo at `path` (or picked the place at
    /// `picked` from a list): the claim it reads as is checked and kept in the library.
    /// Sends the photo's feature (or, for a result read back from the library, the photo
    /// itself) to the inference thread to be re-ranked within `region`.
    fn restrict_to(&mut self, path: PathBuf, region: crate::geo::Region) {
        let Some(i) = self.collection.index_of(&path) else {
            return;
        };
        let Some(photo) = self.collection.get_mut(i) else {
            return;
        };
        // Re-ranking starts from the unconstrained result, wherever it is kept now.
        let base = self
            .regions
            .active
            .get(&path)
            .map(|r| &r.unconstrained)
            .or(photo.result.as_ref());
        let Some(base) = base else {
            self.messages
                .warning("Locate the photo first: a region restricts the model's answer.");
            return;
        };
        let (feature, top_k) = (base.image_feature.clone(), base.top_k);
        let Some(worker) = &self.model.worker else {
            self.messages
                .warning("The inference thread is not running.");
            return;
        };
        let request = self.regions.begin(&path, region.clone());
        let job = crate::runtime::inference::RankWithin {
            request,
            path: path.clone(),
            feature,
            region,
            top_k,
        };
        if let Err(e) = worker.rank_within(job) {
            self.regions.answered(&path, request);
            self.messages.warning(format!("Region: {e}"));
        }
    }

    /// Ranks a description over the gallery on the inference thread (its answer replaces the
    /// last one; an older one arriving late is dropped).
    fn ask_description(&mut self, text: String, ensemble: bool) {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        let request = self.describe.ask(&text);
        let job = crate::runtime::inference::Describe {
            request,
            text,
            ensemble,
            top_k: self.settings.top_k.max(1),
        };
        let sent = match &self.model.worker {
            Some(worker) => worker.describe(job).map_err(|e| e.to_string()),
            None => Err("the inference thread is not running".into()),
        };
        if let Err(error) = sent {
            self.describe.answered(request, Err(error.clone()));
            self.messages.warning(format!("Describe: {error}"));
        }
    }

    /// Puts back the photo's unconstrained result.
    fn clear_region(&mut self, path: &std::path::Path) {
        if let Some(unconstrained) = self.regions.clear(path)
            && let Some(i) = self.collection.index_of(path)
            && let Some(photo) = self.collection.get_mut(i)
        {
            photo.result = Some(unconstrained);
            self.collection.photo_state_changed(&self.settings);
        }
    }

    fn ranked_within(
        &mut self,
        request: u64,
        path: PathBuf,
        result: crate::domain::PhotoResult,
        constraint: crate::domain::RegionConstraint,
    ) {
        let Some(region) = self.regions.answered(&path, request) else {
            return;
        };
        let Some(i) = self.collection.index_of(&path) else {
            return;
        };
        let previous = self.regions.active.remove(&path).map(|r| r.unconstrained);
        let Some(photo) = self.collection.get_mut(i) else {
            return;
        };
        let Some(mut unconstrained) = previous.or_else(|| photo.result.take()) else {
            return;
        };
        if unconstrained.image_feature.is_none() {
            unconstrained.image_feature = result.image_feature.clone();
        }
        let best = result.best().map(|c| c.position);
        photo.result = Some(result);
        self.regions.active.insert(
            path,
            regions::Restricted {
                region,
                constraint,
                unconstrained,
            },
        );
        if self.collection.selected == Some(i)
            && let Some(best) = best
        {
            self.map.center_at(best);
        }
        self.collection.photo_state_changed(&self.settings);
    }

    pub fn set_claim_text(&mut self, path: PathBuf, text: String, picked: Option<LatLon>) {
        if let Some(claim) = self.claims.set(&path, text, picked, self.places_ready) {
            self.library.send(LibraryCommand::SetClaim { path, claim });
        }
    }

    /// What an export holds for the located photos of the current view: the accepted location
    /// (else top-1), the candidates and provenance of the stored result, and the claim (EXIF
    /// GPS or typed) checked over the heat points. Cheap: no place look-ups, no file or
    /// database reads (claims of results loaded as summaries, without heat points, are left
    /// for [`export::complete_claims`] on the worker thread, which asks the library thread).
    pub fn export_inputs(&self) -> Vec<export::ExportInput> {
        self.export_inputs_in(export::WriteScope::WithEstimates)
    }

    /// [`App::export_inputs`] of the photos `scope` takes (by default the accepted ones only).
    pub fn export_inputs_in(&self, scope: export::WriteScope) -> Vec<export::ExportInput> {
        self.collection
            .view
            .iter()
            .filter_map(|&i| self.collection.get(i))
            .filter(|photo| scope.takes(photo.decision.is_some()))
            .filter_map(|photo| {
                let placed_origin = match &photo.decision {
                    Some(Decision::Placed { origin, .. }) => Some(origin.clone()),
                    _ => None,
                };
                let Some(result) = photo.result.as_ref() else {
                    // Placed from a track or a neighbour without running the model: the
                    // location alone, with the provenance of a measured position.
                    let origin = placed_origin.filter(|o| !o.is_from_pixels())?;
                    return Some(export::ExportInput {
                        path: photo.entry.path.clone(),
                        candidates: Vec::new(),
                        provenance: crate::domain::Provenance::measured(&origin),
                        estimated_at: crate::export::utc_now_rfc3339(),
                        accepted: photo.decision.as_ref().map(Decision::position),
                        claim: None,
                        unchecked_claim: None,
                        other_claims: Vec::new(),
                        unchecked_other_claims: Vec::new(),
                        within: None,
                        origin: Some(origin),
                    });
                };
                // The typed claim first (the one every format carries), then the EXIF GPS.
                let mut claimed = self.claims_of(photo);
                claimed.reverse();
                let later = result.heat.is_empty() && self.library_available;
                let (mut claim, mut unchecked_claim) = (None, None);
                let (mut other_claims, mut unchecked_other_claims) = (Vec::new(), Vec::new());
                for (i, (at, source)) in claimed.into_iter().enumerate() {
                    match (i, later) {
                        (0, true) => unchecked_claim = Some((at, source)),
                        (0, false) => claim = export::claim_check(result, at, source),
                        (_, true) => unchecked_other_claims.push((at, source)),
                        (_, false) => other_claims.extend(export::claim_check(result, at, source)),
                    }
                }
                Some(export::ExportInput {
                    path: photo.entry.path.clone(),
                    candidates: result.candidates.clone(),
                    provenance: result.provenance.clone(),
                    estimated_at: export::estimated_at(result),
                    accepted: photo.decision.as_ref().map(Decision::position),
                    claim,
                    unchecked_claim,
                    other_claims,
                    unchecked_other_claims,
                    within: self.regions.constraint(&photo.entry.path).cloned(),
                    origin: placed_origin,
                })
            })
            .collect()
    }

    /// What the `export` thread does with [`App::export_inputs`] (claims completed from the
    /// database, place look-ups, EXIF times), here on the calling thread, for tests. Blocks
    /// until the library thread answers: never call it from a frame.
    pub fn export_records(&self) -> Vec<crate::export::ExportRecord> {
        export::build_records(self.export_job(export::WriteScope::WithEstimates)())
    }

    /// The located photos of the view with an accepted location, and those with only the
    /// model's estimate (one pass over the view: for dialogs, not every frame).
    pub fn review_counts(&self) -> export::ReviewCounts {
        let mut counts = export::ReviewCounts::default();
        for photo in self
            .collection
            .view
            .iter()
            .filter_map(|&i| self.collection.get(i))
        {
            match (&photo.result, &photo.decision) {
                (_, Some(_)) => counts.accepted += 1,
                (Some(_), None) => counts.unreviewed += 1,
                (None, None) => {}
            }
        }
        counts
    }

    /// The inputs, and the job that completes them on a worker thread. (Commands still in the
    /// outbox are sent first by the callers that can: [`LibraryThread::flush`].)
    fn export_job(
        &self,
        scope: export::WriteScope,
    ) -> impl FnOnce() -> Vec<export::ExportInput> + Send + 'static {
        let mut inputs = self.export_inputs_in(scope);
        let library = self.library.sender();
        move || {
            export::complete_claims(&mut inputs, |paths| {
                library.read_results(paths).unwrap_or_default()
            });
            inputs
        }
    }

    /// Whether the view shows a located photo, or one placed from a track or a neighbour (what
    /// the export and write buttons need).
    pub fn view_has_located(&self) -> bool {
        self.collection.view_has_located()
    }

    fn spawn_export(
        &mut self,
        label: String,
        job: impl FnOnce() -> Result<export::WriteOutcome, String> + Send + 'static,
    ) {
        self.jobs.export = Task::spawn("export", label, self.repaint_fn(), job)
            .map_err(|e| {
                self.messages
                    .push(format!("starting the export thread: {e}"))
            })
            .ok();
    }

    fn export_to(&mut self, path: PathBuf) {
        if self.jobs.export.is_some() {
            self.messages.warning("An export is already being written");
            return;
        }
        if !self.view_has_located() {
            self.messages
                .warning("No located photos in the view: nothing to export");
            return;
        }
        let scope = self.jobs.export_scope;
        if self.review_counts().taken(scope) == 0 {
            self.messages.warning(
                "No accepted locations in the view: review the estimates first, or include \
                 them explicitly (Export…)",
            );
            return;
        }
        self.library.flush();
        let job = self.export_job(scope);
        let style = self.settings.export_paths;
        self.spawn_export(format!("Exporting to {}", path.display()), move || {
            export::export_to_with_paths(&path, job(), style).map(|note| export::WriteOutcome {
                note,
                ..export::WriteOutcome::default()
            })
        });
    }

    /// Prepares the dry run of "Write XMP sidecars" or "Write EXIF GPS"; the confirmation
    /// dialog shows it.
    fn plan_writes(
        &mut self,
        target: export::WriteTarget,
        scope: export::WriteScope,
        overwrite_invalid_gps: bool,
    ) {
        if self.jobs.write_plan.is_some() || self.jobs.export.is_some() {
            return;
        }
        if !self.view_has_located() {
            self.messages
                .warning("No located photos in the view: nothing to write");
            return;
        }
        self.library.flush();
        let job = self.export_job(scope);
        let counts = self.review_counts();
        let iptc = self.settings.xmp_iptc_location;
        self.jobs.confirm_estimates = false;
        self.jobs.write_plan = Task::spawn(
            "export",
            "Listing what would be written",
            self.repaint_fn(),
            move || {
                let mut records = export::with_iptc_location(export::build_records(job()), iptc);
                for record in &mut records {
                    record.overwrite_invalid_gps = overwrite_invalid_gps;
                }
                export::plan_writes(target, records, scope, counts)
            },
        )
        .map_err(|e| {
            self.messages
                .push(format!("starting the export thread: {e}"))
        })
        .ok();
    }

    /// Plans the confirmation's writes again with invalid EXIF GPS replaced (or not): the
    /// user's explicit choice.
    fn replan_writes(&mut self, overwrite_invalid_gps: bool) {
        let Some(mut plan) = self.jobs.write_confirm.take() else {
            return;
        };
        for record in &mut plan.records {
            record.overwrite_invalid_gps = overwrite_invalid_gps;
        }
        let (target, records, scope, counts) = (plan.target, plan.records, plan.scope, plan.counts);
        self.jobs.write_plan = Task::spawn(
            "export",
            "Listing what would be written",
            self.repaint_fn(),
            move || export::plan_writes(target, records, scope, counts),
        )
        .map_err(|e| {
            self.messages
                .push(format!("starting the export thread: {e}"))
        })
        .ok();
    }

    /// The IPTC location setting, and the pending confirmation planned again with it.
    fn set_iptc_location(&mut self, on: bool) {
        self.settings.xmp_iptc_location = on;
        if let Some(plan) = &mut self.jobs.write_confirm {
            let overwrite = plan.overwrite_invalid_gps();
            plan.records = export::with_iptc_location(std::mem::take(&mut plan.records), on);
            self.replan_writes(overwrite);
        }
    }

    /// Writes what the user confirmed (only after they pressed "Write"). The job itself tells
    /// the library thread about the photos it rewrote, so the record is kept even when the
    /// window closes meanwhile (closing waits for the write to end).
    fn write_confirmed(&mut self) {
        let Some(confirmed) = self.jobs.write_confirm.take() else {
            return;
        };
        if self.jobs.export.is_some() {
            self.messages.warning("An export is already being written");
            self.jobs.write_confirm = Some(confirmed);
            return;
        }
        let backups = crate::export::exif_write::BackupStore::in_data_dir(&self.dirs.data_dir);
        let label = match confirmed.target {
            export::WriteTarget::XmpSidecars => "Writing XMP sidecars",
            export::WriteTarget::ExifGps => "Writing EXIF GPS",
        };
        let library = self.library.sender();
        self.spawn_export(label.to_owned(), move || {
            let outcome = export::write_confirmed(&confirmed, &backups);
            if !outcome.rewritten.is_empty() {
                library.send(LibraryCommand::AdoptOwnWrites(outcome.rewritten.clone()));
            }
            Ok(outcome)
        });
    }

    // ----- model files -------------------------------------------------------------------

    fn import_model(&mut self, source: PathBuf) {
        let dirs = self.dirs.clone();
        self.jobs.import = Task::spawn(
            "model-files",
            format!("Importing {}", source.display()),
            self.repaint_fn(),
            move || {
                files::import(&source, &dirs)
                    .map(|r| format!("Imported {} files from {}", r.files.len(), source.display()))
                    .map_err(|e| e.to_string())
            },
        )
        .map_err(|e| {
            self.messages
                .push(format!("starting the import thread: {e}"))
        })
        .ok();
    }

    fn start_download(&mut self) {
        self.jobs.confirm_download = false;
        if !self.settings.network_enabled {
            self.messages
                .warning("The network is switched off: turn it on to download.");
            return;
        }
        let progress = Arc::new(std::sync::Mutex::new(DownloadStatus::default()));
        let cancel = Arc::new(AtomicBool::new(false));
        let dirs = self.dirs.clone();
        let options = self
            .model
            .download_options
            .clone()
            .unwrap_or_else(crate::model::download::DownloadOptions::from_env);
        let (thread_progress, thread_cancel) = (progress.clone(), cancel.clone());
        match Task::spawn(
            "model-files",
            "Downloading the model",
            self.repaint_fn(),
            move || model_files::download_models(&dirs, &options, &thread_progress, &thread_cancel),
        ) {
            Ok(task) => {
                self.jobs.download = Some(Download {
                    task,
                    progress,
                    cancel,
                })
            }
            Err(e) => self
                .messages
                .push(format!("starting the download thread: {e}")),
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
        let hub = self.model.download_options.clone();
        self.model.info_task = Task::spawn("model-files", label, self.repaint_fn(), move || {
            let hub = hub.unwrap_or_else(crate::model::download::DownloadOptions::from_env);
            files::info_with_hub(&dirs, verify_hashes, &hub)
        })
        .map_err(|e| {
            self.messages
                .push(format!("starting the model-files thread: {e}"))
        })
        .ok();
    }

    fn load_model(&mut self) {
        let Some(worker) = &self.model.worker else {
            return;
        };
        let factory: EmbedderFactory = match &self.model.choice {
            ModelChoice::Fake(fake) => fake_factory(fake.clone()),
            ModelChoice::Installed => {
                let paths = ModelPaths::installed(&self.dirs);
                // Both parts installed (each install ends with its manifest), else the panel
                // shows what is missing, once, with the button that gets it.
                if !paths.release_dir.join(files::MANIFEST_FILE).exists()
                    || !paths.backbone_dir.join(files::MANIFEST_FILE).exists()
                {
                    self.model.state = ModelState::NotLoaded(None);
                    return;
                }
                geoclip_factory(paths, self.settings.device, self.settings.precision)
            }
        };
        match worker.load_model(factory) {
            Ok(()) => self.model.state = ModelState::Loading("Loading the model…".into()),
            Err(e) => self.model.state = ModelState::Failed(e.to_string()),
        }
    }

    /// Runs the model on the selection (or the whole view). Only a ready model runs, whether
    /// asked by the button or by Space.
    fn run(&mut self, all: bool) {
        self.run_these(|collection| collection.runnable(all));
    }

    /// Runs the model on the photos `pick` chooses from the (refreshed) collection.
    fn run_these(&mut self, pick: impl FnOnce(&Collection) -> Vec<PathBuf>) {
        self.run_these_with(pick, false);
    }

    /// [`Self::run_these`], the photos located one by one or (`together`) as one group.
    fn run_these_with(&mut self, pick: impl FnOnce(&Collection) -> Vec<PathBuf>, together: bool) {
        if self.model.batch.is_some() {
            self.messages
                .warning("A batch is already running: cancel it first.");
            return;
        }
        if !self.model.is_ready() {
            self.messages.warning(match &self.model.state {
                ModelState::Loading(_) => "The model is still loading: run it once it is ready.",
                _ => "No model is loaded: see the Model panel.",
            });
            return;
        }
        self.refresh_view();
        let jobs = pick(&self.collection);
        if jobs.is_empty() {
            return;
        }
        let total = jobs.len();
        let Some(worker) = &self.model.worker else {
            return;
        };
        worker.set_refine(self.settings.refine_candidates);
        let queued = if together {
            worker.run_group(jobs, self.settings.top_k)
        } else {
            worker.run(jobs, self.settings.top_k)
        };
        match queued {
            Ok(generation) => {
                self.model.batch = Some(Batch {
                    generation,
                    done: 0,
                    total,
                    failed: 0,
                    eta: None,
                });
                self.model.batch_summary = None;
            }
            Err(e) => self.messages.push(e.to_string()),
        }
    }

    /// Shows the decision at once and sends it to the library thread; the photo keeps it
    /// until the database confirms (or refuses) it.
    fn decide(&mut self, index: usize, decision: Option<Decision>) {
        let Some(photo) = self.collection.get_mut(index) else {
            return;
        };
        let before = photo.decision.take();
        photo.decision = decision.clone();
        let path = photo.entry.path.clone();
        let pending = self
            .pending_decisions
            .entry(index)
            .or_insert(PendingDecision {
                in_flight: 0,
                confirmed: before,
            });
        pending.in_flight += 1;
        self.library.send(LibraryCommand::Decide { path, decision });
        self.collection.photo_state_changed(&self.settings);
    }

    /// Decisions sent to the library thread and not yet confirmed.
    pub fn decisions_in_flight(&self) -> usize {
        self.pending_decisions.values().map(|p| p.in_flight).sum()
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

impl Drop for App {
    /// Closing the window: every job runs to its end (a write is finished and recorded, not
    /// cut off), then the library thread saves what it was sent and stops.
    fn drop(&mut self) {
        // The library thread must not wait on events nobody reads while jobs wait on it.
        self.library.detach_events();
        self.jobs = Jobs::default();
        self.model.info_task = None;
        self.scanners.clear();
    }
}
