//! The inference worker: GeoCLIP (or a fake) on a named thread, driven by commands, reporting
//! by events, as STYLE.md's worker pattern has it.
//!
//! - [`InferenceWorker::start`] spawns the "inference" thread with a bounded command channel
//!   and a bounded event channel. The model and its device are built and live inside that
//!   thread ([`InferenceWorker::load_model`] sends an [`EmbedderFactory`]).
//! - [`InferenceWorker::run`] queues photos; runs execute one after another. Each photo gives
//!   [`WorkerEvent::Ranked`] or [`WorkerEvent::Failed`], then [`WorkerEvent::Progress`]; a run
//!   ends with [`WorkerEvent::Finished`] or [`WorkerEvent::Cancelled`].
//! - [`InferenceWorker::cancel_all`] bumps an `AtomicU64` generation that the thread checks
//!   between photos (and during a gallery precompute), so cancelling takes effect within one
//!   photo. Events carry the generation of their run; the UI ignores older ones.
//! - The repaint callback is called after each event; the UI drains
//!   [`InferenceWorker::events`] (`try_iter`) each frame.
//! - `Drop` cancels, sends `Shutdown` and joins.
//!
//! The model sits behind [`Embedder`], so tests and demos use [`FakeEmbedder`].
//!
//! Results are [`PhotoResult`]s: the top-k candidates, and for the heatmap the most probable
//! gallery points with their positions ([`HeatPoint`](crate::domain::HeatPoint)): at most [`HEAT_MAX_POINTS`](crate::domain::HEAT_MAX_POINTS), fewer
//! once they hold [`HEAT_MASS`](crate::domain::HEAT_MASS) of the probability. The full 100K vector is not kept: it is
//! 400 KB a photo, while the kept points are the part of the heatmap that is visible at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryIter, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::domain::{PhotoResult, Prediction, Provenance, RegionConstraint, RepaintFn};
use crate::geo::{LatLon, Region};
use crate::model::engine::{GeoClip, LoadEvent, ModelPaths, prepare_photo};
use crate::model::{DeviceChoice, ModelError};

/// Commands waiting for the thread, at most.
pub const COMMAND_QUEUE: usize = 16;
/// Events waiting for the UI, at most (the thread waits when the UI falls behind).
pub const EVENT_QUEUE: usize = 256;

/// A photo geolocation model, run inside the worker thread.
///
/// A photo is reduced once to its image feature (L2-normalised; opaque to callers); every score
/// after that (the gallery, any other points, a group's sum) starts from the feature, so
/// nothing needs the photo again.
pub trait Embedder: Send {
    /// Which model this is, stored with every result.
    fn provenance(&self) -> Provenance;
    /// The photo's image feature. Errors are messages for the user (they name the file).
    fn image_feature(&mut self, photo: &Path) -> Result<Arc<[f32]>, String>;
    /// GeoCLIP's logits over the gallery for one feature.
    fn gallery_logits(&self, feature: &[f32]) -> Result<Vec<f32>, String>;
    /// Logits at any points on the gallery's scale (GeoCLIP's location encoder is continuous).
    fn location_logits(&self, feature: &[f32], points: &[LatLon]) -> Result<Vec<f32>, String>;
    /// The position of a gallery point (for the heatmap).
    fn gallery_position(&self, index: usize) -> Option<LatLon>;
    /// Ranks the gallery for one photo.
    fn locate(&mut self, photo: &Path, top_k: usize) -> Result<Prediction, String> {
        let feature = self.image_feature(photo)?;
        let logits = self.gallery_logits(&feature)?;
        Ok(Prediction::from_logits(&logits, top_k, |i| {
            self.gallery_position(i)
        }))
    }
}

/// The real GeoCLIP engine as an [`Embedder`].
pub struct GeoClipEmbedder {
    engine: GeoClip,
    provenance: Provenance,
}

impl GeoClipEmbedder {
    /// Loads the engine (see [`GeoClip::load`]); `on_event` returning `false` cancels.
    pub fn load(
        paths: &ModelPaths,
        device: DeviceChoice,
        on_event: &mut dyn FnMut(LoadEvent) -> bool,
    ) -> Result<Self, ModelError> {
        let dev = device.device()?;
        let engine = GeoClip::load(paths, &dev, on_event)?;
        Ok(Self::from_engine(engine, device))
    }

    pub fn from_engine(engine: GeoClip, device: DeviceChoice) -> Self {
        let provenance = engine.provenance(device);
        Self { engine, provenance }
    }

    pub fn engine(&self) -> &GeoClip {
        &self.engine
    }
}

impl Embedder for GeoClipEmbedder {
    fn provenance(&self) -> Provenance {
        self.provenance.clone()
    }

    fn image_feature(&mut self, photo: &Path) -> Result<Arc<[f32]>, String> {
        let prepared =
            prepare_photo(photo, self.engine.preprocess_config()).map_err(|e| e.to_string())?;
        self.engine
            .normalized_image_features(&[&prepared])
            .map_err(|e| format!("{e}: {}", photo.display()))?
            .into_iter()
            .next()
            .map(Arc::from)
            .ok_or_else(|| format!("the model returned nothing: {}", photo.display()))
    }

    fn gallery_logits(&self, feature: &[f32]) -> Result<Vec<f32>, String> {
        self.engine
            .gallery_logits(&[feature])
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| "the model returned no logits".to_owned())
    }

    fn location_logits(&self, feature: &[f32], points: &[LatLon]) -> Result<Vec<f32>, String> {
        let coords: Vec<[f32; 2]> = points
            .iter()
            .map(|p| [p.lat_deg as f32, p.lon_deg as f32])
            .collect();
        self.engine
            .location_logits(feature, &coords)
            .map_err(|e| e.to_string())
    }

    fn gallery_position(&self, index: usize) -> Option<LatLon> {
        self.engine.gallery().lat_lon(index)
    }
}

/// A stand-in model for tests and demos: no weights, instant, deterministic.
///
/// Its gallery is a 5° grid over the world (36 x 72 points). A photo's probabilities peak at a
/// point derived from a hash of its file name (not its path, so a moved photo gets the same
/// answer) and fall off with distance. Files that are empty or not images (by their first
/// bytes) fail as the real model would. `delay` makes each photo take that long (for
/// cancellation tests), `load_delay` the load ([`fake_factory`]: a model still loading).
#[derive(Clone, Debug, Default)]
pub struct FakeEmbedder {
    pub delay: Duration,
    pub load_delay: Duration,
}

impl FakeEmbedder {
    pub const ROWS: usize = 36;
    pub const COLS: usize = 72;

    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_delay(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// A fake whose load takes `load_delay` (reporting, and cancellable, every 10 ms).
    pub fn with_load_delay(load_delay: Duration) -> Self {
        Self {
            load_delay,
            ..Self::default()
        }
    }

    /// The point a file name peaks at.
    pub fn peak_for(file_name: &str) -> LatLon {
        let hash = crate::model::sha256_bytes(file_name.as_bytes());
        let n = u64::from_str_radix(&hash[..12], 16).unwrap_or(0) as usize;
        Self::grid_position(n % (Self::ROWS * Self::COLS)).unwrap_or(LatLon::new(0.0, 0.0))
    }

    fn grid_position(index: usize) -> Option<LatLon> {
        (index < Self::ROWS * Self::COLS).then(|| {
            let (row, col) = (index / Self::COLS, index % Self::COLS);
            LatLon::new(-87.5 + 5.0 * row as f64, -177.5 + 5.0 * col as f64)
        })
    }
}

impl Embedder for FakeEmbedder {
    fn provenance(&self) -> Provenance {
        Provenance {
            model: "fake (tests)".into(),
            weights_sha256: "0".repeat(64),
            gallery_sha256: "0".repeat(64),
            backbone: "none".into(),
            backbone_sha256: None,
            device: "cpu".into(),
        }
    }

    /// The fake's feature is its peak, `[lat, lon]`.
    fn image_feature(&mut self, photo: &Path) -> Result<Arc<[f32]>, String> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let mut head = [0u8; 32];
        let n = std::fs::File::open(photo)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| format!("could not read {}: {e}", photo.display()))?;
        if n == 0 {
            return Err(format!("empty file (0 bytes): {}", photo.display()));
        }
        if crate::domain::PhotoFormat::sniff(&head[..n]).is_none() {
            return Err(format!(
                "not a supported image ({}): {}",
                crate::domain::SUPPORTED_FORMATS,
                photo.display()
            ));
        }
        let name = photo
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let peak = Self::peak_for(&name);
        Ok(Arc::from([peak.lat_deg as f32, peak.lon_deg as f32]))
    }

    fn gallery_logits(&self, feature: &[f32]) -> Result<Vec<f32>, String> {
        let points: Vec<LatLon> = (0..Self::ROWS * Self::COLS)
            .filter_map(Self::grid_position)
            .collect();
        self.location_logits(feature, &points)
    }

    /// Minus the distance from the peak in thousands of km.
    fn location_logits(&self, feature: &[f32], points: &[LatLon]) -> Result<Vec<f32>, String> {
        let &[lat, lon] = feature else {
            return Err(format!(
                "the fake model's features are [lat, lon], not {} numbers",
                feature.len()
            ));
        };
        let peak = LatLon::new(f64::from(lat), f64::from(lon));
        Ok(points
            .iter()
            .map(|p| -(p.distance_km(&peak) / 1000.0) as f32)
            .collect())
    }

    fn gallery_position(&self, index: usize) -> Option<LatLon> {
        Self::grid_position(index)
    }
}

/// Builds an embedder inside the worker thread. The callback reports load progress; it
/// returns `false` when the load should stop (cancelled).
pub type EmbedderFactory =
    Box<dyn FnOnce(&mut dyn FnMut(LoadEvent) -> bool) -> Result<Box<dyn Embedder>, String> + Send>;

/// A factory for the installed GeoCLIP on `device`.
pub fn geoclip_factory(paths: ModelPaths, device: DeviceChoice) -> EmbedderFactory {
    Box::new(move |on_event: &mut dyn FnMut(LoadEvent) -> bool| {
        GeoClipEmbedder::load(&paths, device, on_event)
            .map(|e| Box::new(e) as Box<dyn Embedder>)
            .map_err(|e| e.to_string())
    })
}

/// A factory for the fake: ready after its `load_delay`, unless the load is cancelled.
pub fn fake_factory(fake: FakeEmbedder) -> EmbedderFactory {
    Box::new(move |on_event: &mut dyn FnMut(LoadEvent) -> bool| {
        let started = Instant::now();
        while started.elapsed() < fake.load_delay {
            if !on_event(LoadEvent::LoadingWeights) {
                return Err("cancelled".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Box::new(fake) as Box<dyn Embedder>)
    })
}

/// A factory for any ready embedder (e.g. [`FakeEmbedder`]).
pub fn ready_factory(embedder: impl Embedder + 'static) -> EmbedderFactory {
    Box::new(
        move |_: &mut dyn FnMut(LoadEvent) -> bool| Ok(Box::new(embedder) as Box<dyn Embedder>),
    )
}

/// What the inference thread is told.
pub enum Command {
    LoadModel {
        factory: EmbedderFactory,
        generation: u64,
    },
    Run {
        jobs: Vec<PathBuf>,
        generation: u64,
        top_k: usize,
    },
    /// One photo re-ranked within a region, from its feature (or re-embedded when `None`).
    RankWithin(Box<RankWithin>),
    Shutdown,
}

/// A photo to re-rank within a region ([`InferenceWorker::rank_within`]).
#[derive(Clone, Debug)]
pub struct RankWithin {
    /// Chosen by the caller; the answer carries it, so an older answer can be told apart.
    pub request: u64,
    pub path: PathBuf,
    /// The photo's image feature (`PhotoResult::image_feature`); `None` re-embeds the photo.
    pub feature: Option<Arc<[f32]>>,
    pub region: Region,
    pub top_k: usize,
}

/// What the inference thread reports. Run events carry their run's `generation`.
#[derive(Clone, Debug)]
pub enum WorkerEvent {
    /// Loading the model; `stage` says how far (gallery encoding has counts).
    ModelLoading {
        stage: LoadEvent,
    },
    ModelReady {
        provenance: Provenance,
    },
    /// The model could not be loaded (or the load was cancelled); the previous model, if any,
    /// stays in use.
    ModelFailed {
        error: String,
    },
    /// After each photo (and once at the start with `done` 0).
    Progress {
        generation: u64,
        done: usize,
        total: usize,
        /// Time left, from the mean time per photo so far.
        eta: Option<Duration>,
    },
    Ranked {
        generation: u64,
        path: PathBuf,
        result: PhotoResult,
    },
    Failed {
        generation: u64,
        path: PathBuf,
        error: String,
    },
    /// A run was asked for with no model loaded.
    NoModel {
        generation: u64,
    },
    Cancelled {
        generation: u64,
        done: usize,
        total: usize,
    },
    Finished {
        generation: u64,
        done: usize,
        failed: usize,
        elapsed: Duration,
    },
    /// A photo re-ranked within a region: the renormalised result (its `image_feature` set)
    /// and the constraint with the share of belief inside. Not part of a run (no generation).
    RankedWithin {
        request: u64,
        path: PathBuf,
        result: PhotoResult,
        constraint: RegionConstraint,
    },
    /// Re-ranking within a region failed (no model, an unreadable photo, no gallery point
    /// inside).
    WithinFailed {
        request: u64,
        path: PathBuf,
        error: String,
    },
}

impl WorkerEvent {
    /// The generation of run events; `None` for model events.
    pub fn generation(&self) -> Option<u64> {
        match self {
            Self::ModelLoading { .. }
            | Self::ModelReady { .. }
            | Self::ModelFailed { .. }
            | Self::RankedWithin { .. }
            | Self::WithinFailed { .. } => None,
            Self::Progress { generation, .. }
            | Self::Ranked { generation, .. }
            | Self::Failed { generation, .. }
            | Self::NoModel { generation }
            | Self::Cancelled { generation, .. }
            | Self::Finished { generation, .. } => Some(*generation),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("could not start the inference thread: {0}")]
    Spawn(std::io::Error),
    #[error("the inference queue is full; try again")]
    Busy,
    #[error("the inference thread has stopped")]
    Gone,
}

/// The handle the UI keeps. See the module docs.
pub struct InferenceWorker {
    commands: SyncSender<Command>,
    events: Receiver<WorkerEvent>,
    generation: Arc<AtomicU64>,
    /// Bumped to cancel a model load (apart from runs: cancelling a run queued behind a load
    /// leaves the load alone).
    load_generation: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl InferenceWorker {
    /// Starts the "inference" thread, with no model loaded.
    pub fn start(repaint: RepaintFn) -> Result<Self, WorkerError> {
        let (commands, command_rx) = sync_channel(COMMAND_QUEUE);
        let (event_tx, events) = sync_channel(EVENT_QUEUE);
        let generation = Arc::new(AtomicU64::new(0));
        let thread_generation = Arc::clone(&generation);
        let load_generation = Arc::new(AtomicU64::new(0));
        let thread_load_generation = Arc::clone(&load_generation);
        let thread = std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || {
                crate::threads::lower_current_thread_priority();
                let mut state = WorkerThread {
                    embedder: None,
                    events: event_tx,
                    generation: thread_generation,
                    load_generation: thread_load_generation,
                    repaint,
                    within_mask: None,
                };
                // Every parallel loop of a job runs in this low-priority pool, so the window
                // keeps its frames while a batch or the gallery encode uses all cores. Without
                // a pool (it could not be built) the jobs use the global one: slower frames,
                // same results.
                let mut serve = move || state.serve(&command_rx);
                match crate::threads::background_pool("inference") {
                    Ok(pool) => pool.install(serve),
                    Err(_) => serve(),
                }
            })
            .map_err(WorkerError::Spawn)?;
        Ok(Self {
            commands,
            events,
            generation,
            load_generation,
            thread: Some(thread),
        })
    }

    /// Loads (or replaces) the model inside the thread; `ModelLoading`.. then `ModelReady` or
    /// `ModelFailed` follow. Cancelled by [`cancel_load`](Self::cancel_load) (not by
    /// [`cancel_all`](Self::cancel_all), which cancels runs).
    pub fn load_model(&self, factory: EmbedderFactory) -> Result<(), WorkerError> {
        self.send(Command::LoadModel {
            factory,
            generation: self.load_generation.load(Ordering::SeqCst),
        })
    }

    /// Cancels a model load in progress or queued.
    pub fn cancel_load(&self) {
        self.load_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Queues a run over `jobs` (after any run already queued); returns its generation.
    pub fn run(&self, jobs: Vec<PathBuf>, top_k: usize) -> Result<u64, WorkerError> {
        let generation = self.generation();
        self.send(Command::Run {
            jobs,
            generation,
            top_k: top_k.max(1),
        })?;
        Ok(generation)
    }

    /// Queues re-ranking one photo within a region (after any queued run); answered by
    /// `RankedWithin` or `WithinFailed` with the same `request`.
    pub fn rank_within(&self, job: RankWithin) -> Result<(), WorkerError> {
        self.send(Command::RankWithin(Box::new(job)))
    }

    /// Cancels the running and queued runs within one photo (a model load goes on); returns
    /// the new generation. Events of older generations are stale from now on.
    pub fn cancel_all(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The current generation: events with an older one are stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The events so far, without blocking (call each frame).
    pub fn events(&self) -> TryIter<'_, WorkerEvent> {
        self.events.try_iter()
    }

    /// Blocks for the next event up to `timeout` (tests and headless use).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<WorkerEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    fn send(&self, command: Command) -> Result<(), WorkerError> {
        self.commands.try_send(command).map_err(|e| match e {
            TrySendError::Full(_) => WorkerError::Busy,
            TrySendError::Disconnected(_) => WorkerError::Gone,
        })
    }
}

impl Drop for InferenceWorker {
    fn drop(&mut self) {
        self.cancel_all();
        self.cancel_load();
        // Detach the events: the thread's sends fail from now on (it stops at its next event),
        // so it never waits on a UI that is gone, and nothing here has to poll.
        let (_, detached) = sync_channel(0);
        drop(std::mem::replace(&mut self.events, detached));
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct WorkerThread {
    embedder: Option<Box<dyn Embedder>>,
    events: SyncSender<WorkerEvent>,
    generation: Arc<AtomicU64>,
    load_generation: Arc<AtomicU64>,
    repaint: RepaintFn,
    /// The gallery points inside the last region asked for (its spec, the gallery's length):
    /// computed once per region.
    within_mask: Option<(String, Arc<[bool]>)>,
}

impl WorkerThread {
    fn serve(&mut self, commands: &Receiver<Command>) {
        for command in commands {
            let alive = match command {
                Command::Shutdown => false,
                Command::LoadModel {
                    factory,
                    generation,
                } => self.load(factory, generation),
                Command::Run {
                    jobs,
                    generation,
                    top_k,
                } => self.run(&jobs, generation, top_k),
                Command::RankWithin(job) => self.rank_within(*job),
            };
            if !alive {
                break;
            }
        }
    }

    fn current(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// `false` when the UI is gone.
    fn emit(&self, event: WorkerEvent) -> bool {
        let ok = self.events.send(event).is_ok();
        (self.repaint)();
        ok
    }

    fn load(&mut self, factory: EmbedderFactory, generation: u64) -> bool {
        if live_changed(&self.load_generation, generation) {
            return self.emit(WorkerEvent::ModelFailed {
                error: "cancelled".into(),
            });
        }
        let events = self.events.clone();
        let repaint = &self.repaint;
        let live = Arc::clone(&self.load_generation);
        let mut last_report: Option<Instant> = None;
        let result = factory(&mut |stage| {
            // Gallery encoding reports often: pass on about 10 a second.
            let now = Instant::now();
            if !matches!(stage, LoadEvent::EncodingGallery { .. })
                || last_report.is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100))
            {
                last_report = Some(now);
                let _ = events.send(WorkerEvent::ModelLoading { stage });
                repaint();
            }
            live.load(Ordering::SeqCst) == generation
        });
        match result {
            Ok(embedder) => {
                let provenance = embedder.provenance();
                log::info!(
                    "model ready: {} with {} on {}",
                    provenance.model,
                    provenance.backbone,
                    provenance.device
                );
                self.embedder = Some(embedder);
                self.emit(WorkerEvent::ModelReady { provenance })
            }
            Err(error) => {
                let error = if live_changed(&self.load_generation, generation) {
                    "cancelled".to_owned()
                } else {
                    error
                };
                log::warn!("model not loaded: {error}");
                self.emit(WorkerEvent::ModelFailed { error })
            }
        }
    }

    fn run(&mut self, jobs: &[PathBuf], generation: u64, top_k: usize) -> bool {
        let total = jobs.len();
        if generation != self.current() {
            return self.emit(WorkerEvent::Cancelled {
                generation,
                done: 0,
                total,
            });
        }
        let Some(embedder) = self.embedder.as_mut() else {
            return self.emit(WorkerEvent::NoModel { generation });
        };
        let provenance = embedder.provenance();
        log::info!("run {generation}: locating {total} photos, top {top_k}");
        let started = Instant::now();
        let mut failed = 0;
        let mut events = Vec::with_capacity(2);
        if !self.emit(WorkerEvent::Progress {
            generation,
            done: 0,
            total,
            eta: None,
        }) {
            return false;
        }
        for (i, path) in jobs.iter().enumerate() {
            if live_changed(&self.generation, generation) {
                log::info!("run {generation}: cancelled after {i} of {total} photos");
                return self.emit(WorkerEvent::Cancelled {
                    generation,
                    done: i,
                    total,
                });
            }
            let Some(embedder) = self.embedder.as_mut() else {
                return self.emit(WorkerEvent::NoModel { generation });
            };
            let located = embedder.image_feature(path).and_then(|feature| {
                let logits = embedder.gallery_logits(&feature)?;
                Ok((feature, logits))
            });
            match located {
                Ok((feature, logits)) => {
                    let position_of = |index: usize| embedder.gallery_position(index);
                    let prediction = Prediction::from_logits(&logits, top_k, position_of);
                    let mut result = PhotoResult::from_prediction(
                        &prediction,
                        top_k,
                        provenance.clone(),
                        &position_of,
                    );
                    result.image_feature = Some(feature);
                    events.push(WorkerEvent::Ranked {
                        generation,
                        path: path.clone(),
                        result,
                    });
                }
                Err(error) => {
                    failed += 1;
                    log::warn!("run {generation}: {error}");
                    events.push(WorkerEvent::Failed {
                        generation,
                        path: path.clone(),
                        error,
                    });
                }
            }
            let done = i + 1;
            let per_photo = started.elapsed() / u32::try_from(done).unwrap_or(u32::MAX);
            events.push(WorkerEvent::Progress {
                generation,
                done,
                total,
                eta: Some(per_photo * u32::try_from(total - done).unwrap_or(u32::MAX)),
            });
            for event in events.drain(..) {
                if !self.emit(event) {
                    return false;
                }
            }
        }
        log::info!(
            "run {generation}: {total} photos done, {failed} failed, in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        self.emit(WorkerEvent::Finished {
            generation,
            done: total,
            failed,
            elapsed: started.elapsed(),
        })
    }
}

impl WorkerThread {
    fn rank_within(&mut self, job: RankWithin) -> bool {
        let RankWithin {
            request,
            path,
            feature,
            region,
            top_k,
        } = job;
        match self.ranked_within(&path, feature, &region, top_k.max(1)) {
            Ok((result, constraint)) => self.emit(WorkerEvent::RankedWithin {
                request,
                path,
                result,
                constraint,
            }),
            Err(error) => {
                log::warn!("within {}: {error}", region.label());
                self.emit(WorkerEvent::WithinFailed {
                    request,
                    path,
                    error,
                })
            }
        }
    }

    fn ranked_within(
        &mut self,
        path: &Path,
        feature: Option<Arc<[f32]>>,
        region: &Region,
        top_k: usize,
    ) -> Result<(PhotoResult, RegionConstraint), String> {
        let Some(embedder) = self.embedder.as_mut() else {
            return Err("no model is loaded: see the Model panel".into());
        };
        let feature = match feature {
            Some(f) => f,
            None => embedder.image_feature(path)?,
        };
        let logits = embedder.gallery_logits(&feature)?;
        let spec = region.spec();
        let mask = match &self.within_mask {
            Some((s, mask)) if *s == spec && mask.len() == logits.len() => Arc::clone(mask),
            _ => {
                let started = Instant::now();
                let mask: Arc<[bool]> = (0..logits.len())
                    .map(|i| {
                        embedder
                            .gallery_position(i)
                            .is_some_and(|p| region.contains(p))
                    })
                    .collect();
                log::info!(
                    "within {}: {} of {} gallery points inside ({:.1} ms)",
                    region.label(),
                    mask.iter().filter(|&&m| m).count(),
                    mask.len(),
                    started.elapsed().as_secs_f64() * 1000.0
                );
                self.within_mask = Some((spec, Arc::clone(&mask)));
                mask
            }
        };
        let position_of = |index: usize| embedder.gallery_position(index);
        let prediction = Prediction::from_logits(&logits, top_k, position_of);
        let (within, constraint) = prediction
            .within(region, &mask, top_k, position_of)
            .map_err(|e| e.to_string())?;
        let mut result =
            PhotoResult::from_prediction(&within, top_k, embedder.provenance(), &position_of);
        result.image_feature = Some(feature);
        Ok((result, constraint))
    }
}

fn live_changed(live: &AtomicU64, generation: u64) -> bool {
    live.load(Ordering::SeqCst) != generation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_is_deterministic_by_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png");
        let a = dir.path().join("a.png");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let b = dir.path().join("sub").join("a.png");
        std::fs::copy(&src, &a).unwrap();
        std::fs::copy(&src, &b).unwrap();
        let mut fake = FakeEmbedder::new();
        let pa = fake.locate(&a, 3).unwrap();
        let pb = fake.locate(&b, 3).unwrap();
        assert_eq!(pa.candidates, pb.candidates);
        assert_eq!(pa.candidates.len(), 3);
        assert_eq!(pa.candidates[0].position, FakeEmbedder::peak_for("a.png"));
        let sum: f32 = pa.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4);
    }

    /// A load that reports for about `steps` x 5 ms and stops when told.
    fn slow_factory(steps: usize) -> EmbedderFactory {
        Box::new(move |on_event: &mut dyn FnMut(LoadEvent) -> bool| {
            for _ in 0..steps {
                if !on_event(LoadEvent::LoadingWeights) {
                    return Err("stopped".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(Box::new(FakeEmbedder::new()) as Box<dyn Embedder>)
        })
    }

    fn load_outcome(worker: &InferenceWorker) -> WorkerEvent {
        loop {
            match worker.recv_timeout(Duration::from_secs(20)) {
                Some(
                    event @ (WorkerEvent::ModelReady { .. } | WorkerEvent::ModelFailed { .. }),
                ) => {
                    return event;
                }
                Some(_) => {}
                None => panic!("the load never ended"),
            }
        }
    }

    #[test]
    fn cancelling_a_run_queued_behind_a_load_leaves_the_load_alone() {
        let worker = InferenceWorker::start(crate::domain::no_repaint()).unwrap();
        worker.load_model(slow_factory(40)).unwrap();
        worker.run(vec![PathBuf::from("queued.jpg")], 1).unwrap();
        worker.cancel_all();
        assert!(
            matches!(load_outcome(&worker), WorkerEvent::ModelReady { .. }),
            "the load went on"
        );
    }

    #[test]
    fn a_load_can_be_cancelled_on_its_own() {
        let worker = InferenceWorker::start(crate::domain::no_repaint()).unwrap();
        worker.load_model(slow_factory(4000)).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        worker.cancel_load();
        match load_outcome(&worker) {
            WorkerEvent::ModelFailed { error } => assert_eq!(error, "cancelled"),
            other => panic!("expected a cancelled load, got {other:?}"),
        }
    }
}
