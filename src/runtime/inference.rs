//! The inference worker: GeoCLIP (or a fake) on a named thread, driven by commands, reporting
//! by events, as STYLE.md's worker pattern has it.
//!
//! - [`InferenceWorker::start`] spawns the "inference" thread with a bounded command channel
//!   and a bounded event channel. The model and its device are built and live inside that
//!   thread ([`InferenceWorker::load_model`] sends an [`EmbedderFactory`]).
//! - [`InferenceWorker::run`] queues photos; runs execute one after another. Each photo gives
//!   [`WorkerEvent::Ranked`] or [`WorkerEvent::Failed`], then [`WorkerEvent::Progress`]; a run
//!   ends with [`WorkerEvent::Finished`] or [`WorkerEvent::Cancelled`]. Photos are embedded
//!   [`Embedder::batch_size`] at a time: one on the CPU, [`DeviceChoice::GPU_BATCH`] on a GPU.
//! - [`InferenceWorker::cancel_all`] bumps an `AtomicU64` generation that the thread checks
//!   between photos (and during a gallery precompute), so cancelling takes effect within one
//!   photo (one batch on a GPU). Events carry the generation of their run; the UI ignores
//!   older ones.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryIter, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::domain::{
    PhotoResult, Prediction, Provenance, RegionConstraint, RepaintFn, predict_features,
};
use crate::geo::heat_grid::{self, HeatTile};
use crate::geo::{LatLon, Region};
use crate::model::engine::{GeoClip, LoadEvent, ModelPaths, prepare_photo};
use crate::model::{DeviceChoice, ModelError, Precision};

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
    /// Photos a run embeds per call of [`Self::image_features`]: 1 (the default) keeps a cancel
    /// or a heat request waiting for at most one photo; a GPU is only busy with many.
    fn batch_size(&self) -> usize {
        1
    }
    /// Several photos' image features, in order, each its own result (an unreadable photo
    /// fails alone). The default embeds them one by one.
    fn image_features(&mut self, photos: &[PathBuf]) -> Vec<Result<Arc<[f32]>, String>> {
        photos.iter().map(|p| self.image_feature(p)).collect()
    }
    /// GeoCLIP's logits over the gallery for one feature.
    fn gallery_logits(&self, feature: &[f32]) -> Result<Vec<f32>, String>;
    /// Logits at any points on the gallery's scale (GeoCLIP's location encoder is continuous).
    fn location_logits(&self, feature: &[f32], points: &[LatLon]) -> Result<Vec<f32>, String>;
    /// The position of a gallery point (for the heatmap).
    fn gallery_position(&self, index: usize) -> Option<LatLon>;
    /// `exp(logit_scale)`: a logit divided by it is a cosine similarity (1 for the fake,
    /// whose logits are no similarities).
    fn logit_scale_exp(&self) -> f32 {
        1.0
    }
    /// A text's feature, scored like a photo's (issue 14): CLIP's text tower through GeoCLIP's
    /// image MLP, L2-normalised; with `ensemble`, CLIP's prompt templates averaged.
    fn text_feature(&mut self, text: &str, ensemble: bool) -> Result<Arc<[f32]>, String> {
        let _ = (text, ensemble);
        Err("this model has no text tower".into())
    }
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
    batch_size: usize,
}

impl GeoClipEmbedder {
    /// Loads the engine (see [`GeoClip::load`]); `on_event` returning `false` cancels.
    pub fn load(
        paths: &ModelPaths,
        device: DeviceChoice,
        precision: Precision,
        on_event: &mut dyn FnMut(LoadEvent) -> bool,
    ) -> Result<Self, ModelError> {
        let dev = device.device()?;
        let engine = GeoClip::load(paths, &dev, precision, on_event)?;
        Ok(Self::from_engine(engine, device))
    }

    /// Runs in batches of [`DeviceChoice::GPU_BATCH`] photos on a GPU, photo by photo on the
    /// CPU (where a batch is no faster per photo).
    pub fn from_engine(engine: GeoClip, device: DeviceChoice) -> Self {
        let provenance = engine.provenance(device);
        let batch_size = if device.is_gpu() {
            DeviceChoice::GPU_BATCH
        } else {
            1
        };
        Self {
            engine,
            provenance,
            batch_size,
        }
    }

    /// Photos per forward pass from now on (at least 1), whatever the device.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
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

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn text_feature(&mut self, text: &str, ensemble: bool) -> Result<Arc<[f32]>, String> {
        self.engine
            .text_feature(text, ensemble)
            .map(Arc::from)
            .map_err(|e| e.to_string())
    }

    /// Decodes the photos in parallel (one decoded photo per rayon worker at a time, as
    /// `locate` does), then one forward pass for those that decoded.
    fn image_features(&mut self, photos: &[PathBuf]) -> Vec<Result<Arc<[f32]>, String>> {
        use rayon::prelude::*;
        let cfg = self.engine.preprocess_config();
        let prepared: Vec<_> = photos
            .par_iter()
            .map(|p| prepare_photo(p, cfg).map_err(|e| e.to_string()))
            .collect();
        let ok: Vec<_> = prepared.iter().filter_map(|r| r.as_ref().ok()).collect();
        let mut features = match self.engine.normalized_image_features(&ok) {
            Ok(features) => features.into_iter(),
            // The batch failed as a whole (e.g. out of GPU memory): each photo with the error.
            Err(e) => {
                return photos
                    .iter()
                    .zip(prepared)
                    .map(|(p, r)| r.and(Err(format!("{e}: {}", p.display()))))
                    .collect();
            }
        };
        photos
            .iter()
            .zip(prepared)
            .map(|(p, r)| {
                r.and_then(|_| {
                    features
                        .next()
                        .map(Arc::from)
                        .ok_or_else(|| format!("the model returned nothing: {}", p.display()))
                })
            })
            .collect()
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

    fn logit_scale_exp(&self) -> f32 {
        self.engine.logit_scale_exp()
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

    /// The fake's text feature peaks where a file of that name would (another point with the
    /// ensemble).
    fn text_feature(&mut self, text: &str, ensemble: bool) -> Result<Arc<[f32]>, String> {
        let key = if ensemble {
            format!("{text} (ensemble)")
        } else {
            text.to_owned()
        };
        let peak = Self::peak_for(&key);
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
pub fn geoclip_factory(
    paths: ModelPaths,
    device: DeviceChoice,
    precision: Precision,
) -> EmbedderFactory {
    Box::new(move |on_event: &mut dyn FnMut(LoadEvent) -> bool| {
        GeoClipEmbedder::load(&paths, device, precision, on_event)
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
    /// Look at the heat slot ([`InferenceWorker::request_heat`]): a wake-up, the job is in the
    /// slot (only the newest one is kept).
    Heat,
    /// Locate these photos together, as views of one place (see
    /// [`InferenceWorker::run_group`]).
    RunGroup {
        jobs: Vec<PathBuf>,
        generation: u64,
        top_k: usize,
    },
    /// One photo re-ranked within a region, from its feature (or re-embedded when `None`).
    RankWithin(Box<RankWithin>),
    /// A text ranked over the gallery as a photo is (see [`InferenceWorker::describe`]).
    Describe(Box<Describe>),
    Shutdown,
}

/// A text query ([`InferenceWorker::describe`]).
#[derive(Clone, Debug)]
pub struct Describe {
    /// Chosen by the caller; the answer carries it, so an older answer can be told apart.
    pub request: u64,
    pub text: String,
    /// CLIP's prompt templates averaged ([`crate::model::text::TEMPLATES`]).
    pub ensemble: bool,
    pub top_k: usize,
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
    /// One level of the continuous heatmap for one tile: the full grid of relative logits at
    /// `level` (see [`heat_grid`]). `heat_generation` is the request's
    /// ([`InferenceWorker::request_heat`]), apart from the runs' generation.
    HeatTile {
        heat_generation: u64,
        photo_key: String,
        tile: HeatTile,
        level: u8,
        values: Arc<[f32]>,
    },
    /// A heat request failed (no model, the photo could not be read); logged once.
    HeatFailed {
        heat_generation: u64,
        photo_key: String,
        error: String,
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
    /// A text ranked over the gallery: its result reads as a photo's (candidates, heat points,
    /// `image_feature` the text's feature). Not part of a run (no generation).
    Described {
        request: u64,
        text: String,
        ensemble: bool,
        result: PhotoResult,
    },
    /// A text query failed (no model, no text tower or tokenizer).
    DescribeFailed {
        request: u64,
        error: String,
    },
}

impl WorkerEvent {
    /// The generation of run events; `None` for model and heat events.
    pub fn generation(&self) -> Option<u64> {
        match self {
            Self::ModelLoading { .. }
            | Self::ModelReady { .. }
            | Self::ModelFailed { .. }
            | Self::HeatTile { .. }
            | Self::HeatFailed { .. }
            | Self::RankedWithin { .. }
            | Self::WithinFailed { .. }
            | Self::Described { .. }
            | Self::DescribeFailed { .. } => None,
            Self::Progress { generation, .. }
            | Self::Ranked { generation, .. }
            | Self::Failed { generation, .. }
            | Self::NoModel { generation }
            | Self::Cancelled { generation, .. }
            | Self::Finished { generation, .. } => Some(*generation),
        }
    }

    /// The heat generation of heat events.
    pub fn heat_generation(&self) -> Option<u64> {
        match self {
            Self::HeatTile {
                heat_generation, ..
            }
            | Self::HeatFailed {
                heat_generation, ..
            } => Some(*heat_generation),
            _ => None,
        }
    }
}

/// A request for the continuous heatmap of one photo over the visible tiles.
#[derive(Clone, Debug)]
pub struct HeatJob {
    /// Names the photo and its result for the caller; sent back with every event.
    pub photo_key: String,
    pub source: HeatSource,
    /// The tiles to sample, in the order wanted (the view's centre first).
    pub tiles: Vec<HeatTile>,
    /// The region the photo's answer is restricted to: samples outside it are drawn as nothing,
    /// and colours are relative to the best gallery point inside it (as the restricted gallery
    /// layer's are).
    pub region: Option<Region>,
}

/// The relative logit of a sample outside the job's region: far under anything drawn.
pub const HEAT_OUTSIDE_REGION: f32 = -30.0;

/// What a heat request scores from.
#[derive(Clone, Debug)]
pub enum HeatSource {
    /// The photo's image feature (from a run in this session).
    Feature(Arc<[f32]>),
    /// The photo, when its feature is unknown (a result read back from the library): embedded
    /// once, then its feature is kept (the last [`HEAT_FEATURES_KEPT`] photos).
    Photo(PathBuf),
}

/// Photos whose re-embedded feature the thread keeps for heat requests.
pub const HEAT_FEATURES_KEPT: usize = 16;
/// Features whose best gallery logit the thread keeps.
pub const HEAT_MAX_LOGITS_KEPT: usize = 8;

/// A small least-recently-used list: few entries, found by a linear scan.
#[derive(Debug)]
pub struct SmallLru<K, V> {
    capacity: usize,
    /// Most recently used last.
    entries: Vec<(K, V)>,
}

impl<K: PartialEq, V: Clone> SmallLru<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Vec::new(),
        }
    }

    /// The value for `key`, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(i);
        let value = entry.1.clone();
        self.entries.push(entry);
        Some(value)
    }

    /// Keeps `value` for `key`, forgetting the least recently used entry when full.
    pub fn insert(&mut self, key: K, value: V) {
        self.entries.retain(|(k, _)| k != &key);
        if self.entries.len() >= self.capacity {
            self.entries.remove(0);
        }
        self.entries.push((key, value));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The newest heat request and its generation, shared by the handle and the thread.
type HeatSlot = Arc<Mutex<Option<(u64, HeatJob)>>>;

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
    /// The newest heat request (latest wins) and its own generation: a newer view cancels the
    /// heat job, never a run.
    heat_slot: HeatSlot,
    heat_generation: Arc<AtomicU64>,
    /// Whether runs refine each candidate on the location encoder ([`Self::set_refine`]).
    refine: Arc<AtomicBool>,
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
        let heat_slot: HeatSlot = Arc::new(Mutex::new(None));
        let heat_generation = Arc::new(AtomicU64::new(0));
        let thread_heat_slot = Arc::clone(&heat_slot);
        let thread_heat_generation = Arc::clone(&heat_generation);
        let refine = Arc::new(AtomicBool::new(false));
        let thread_refine = Arc::clone(&refine);
        let thread = std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || {
                crate::threads::lower_current_thread_priority();
                let mut state = WorkerThread {
                    embedder: None,
                    events: event_tx,
                    generation: thread_generation,
                    load_generation: thread_load_generation,
                    refine: thread_refine,
                    repaint,
                    heat: HeatState {
                        slot: thread_heat_slot,
                        generation: thread_heat_generation,
                        features: SmallLru::new(HEAT_FEATURES_KEPT),
                        max_logits: SmallLru::new(HEAT_MAX_LOGITS_KEPT),
                    },
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
            heat_slot,
            heat_generation,
            refine,
            thread: Some(thread),
        })
    }

    /// Asks for the continuous heatmap of `job` (replacing any heat request not yet done);
    /// returns its heat generation. [`WorkerEvent::HeatTile`]s follow: level 0 of every tile,
    /// then level 1, then level 2. During a run the thread serves it between two photos.
    pub fn request_heat(&self, job: HeatJob) -> u64 {
        let generation = self.heat_generation.fetch_add(1, Ordering::SeqCst) + 1;
        *lock_slot(&self.heat_slot) = Some((generation, job));
        // A full queue needs no wake-up: the thread looks at the slot after every command.
        let _ = self.send(Command::Heat);
        generation
    }

    /// Cancels the heat request (within one call to the location encoder); returns the new
    /// heat generation.
    pub fn cancel_heat(&self) -> u64 {
        let generation = self.heat_generation.fetch_add(1, Ordering::SeqCst) + 1;
        *lock_slot(&self.heat_slot) = None;
        generation
    }

    /// The current heat generation: heat events with an older one are stale.
    pub fn heat_generation(&self) -> u64 {
        self.heat_generation.load(Ordering::SeqCst)
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

    /// Whether the photos located from now on get refined candidates
    /// ([`crate::domain::refine_candidates`]: the location encoder searched around each gallery
    /// candidate down to about 100 m). Off until set.
    pub fn set_refine(&self, on: bool) {
        self.refine.store(on, Ordering::SeqCst);
    }

    /// Queues a run that locates `jobs` together, as views of one place: each photo's feature,
    /// then the members' gallery logits summed ([`predict_features`]), so every member gets
    /// [`WorkerEvent::Ranked`] with the group's candidates ([`PhotoResult::group`] names the
    /// members; its `image_feature` is its own). A photo that fails gets `Failed` and is left
    /// out of the group. Returns the run's generation.
    pub fn run_group(&self, jobs: Vec<PathBuf>, top_k: usize) -> Result<u64, WorkerError> {
        let generation = self.generation();
        self.send(Command::RunGroup {
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

    /// Ranks a text over the gallery; the answer is `Described` (or `DescribeFailed`) with
    /// the job's `request`. The text tower is read on the first query.
    pub fn describe(&self, job: Describe) -> Result<(), WorkerError> {
        self.send(Command::Describe(Box::new(job)))
    }

    /// Cancels the running and queued runs within one photo (one batch on a GPU; a model load
    /// goes on); returns the new generation. Events of older generations are stale from now on.
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
        self.cancel_heat();
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
    refine: Arc<AtomicBool>,
    repaint: RepaintFn,
    /// The gallery points inside the last region asked for (its spec, the gallery's length):
    /// computed once per region.
    within_mask: Option<(String, Arc<[bool]>)>,
    heat: HeatState,
}

/// The thread's side of heat requests: the slot, its generation and what it keeps between
/// requests (features of re-embedded photos, each feature's best gallery logit).
struct HeatState {
    slot: HeatSlot,
    generation: Arc<AtomicU64>,
    features: SmallLru<PathBuf, Arc<[f32]>>,
    /// Keyed by the feature and the region's spec (empty without one).
    max_logits: SmallLru<(Arc<[f32]>, String), f32>,
}

fn lock_slot(slot: &HeatSlot) -> std::sync::MutexGuard<'_, Option<(u64, HeatJob)>> {
    // A panic while holding the lock left a whole `Option`: still usable.
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                Command::Heat => true,
                Command::RunGroup {
                    jobs,
                    generation,
                    top_k,
                } => self.run_group(&jobs, generation, top_k),
                Command::RankWithin(job) => self.rank_within(*job),
                Command::Describe(job) => self.describe(*job),
            };
            // The heat slot after every command (a wake-up may have found the queue full).
            if !alive || !self.serve_heat() {
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
                // Features and logits belong to the model they came from.
                self.heat.features.clear();
                self.heat.max_logits.clear();
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
        let batch = embedder.batch_size().max(1);
        log::info!("run {generation}: locating {total} photos, top {top_k}, {batch} a batch");
        let started = Instant::now();
        let mut failed = 0;
        if !self.emit(WorkerEvent::Progress {
            generation,
            done: 0,
            total,
            eta: None,
        }) {
            return false;
        }
        let mut done = 0;
        for chunk in jobs.chunks(batch) {
            // The map never waits for a whole run: a heat request goes between two batches
            // (two photos on the CPU).
            if !self.serve_heat() {
                return false;
            }
            if live_changed(&self.generation, generation) {
                log::info!("run {generation}: cancelled after {done} of {total} photos");
                return self.emit(WorkerEvent::Cancelled {
                    generation,
                    done,
                    total,
                });
            }
            let Some(embedder) = self.embedder.as_mut() else {
                return self.emit(WorkerEvent::NoModel { generation });
            };
            let features = padded(embedder.image_features(chunk), chunk.len());
            for (path, feature) in chunk.iter().zip(features) {
                // Cancelled during a batch: the photos left in it are not scored.
                if live_changed(&self.generation, generation) {
                    log::info!("run {generation}: cancelled after {done} of {total} photos");
                    return self.emit(WorkerEvent::Cancelled {
                        generation,
                        done,
                        total,
                    });
                }
                let Some(embedder) = self.embedder.as_ref() else {
                    return self.emit(WorkerEvent::NoModel { generation });
                };
                if !self.emit_located(
                    embedder.as_ref(),
                    path,
                    feature,
                    (generation, top_k),
                    &provenance,
                    &mut failed,
                ) {
                    return false;
                }
                done += 1;
                let per_photo = started.elapsed() / u32::try_from(done).unwrap_or(u32::MAX);
                if !self.emit(WorkerEvent::Progress {
                    generation,
                    done,
                    total,
                    eta: Some(per_photo * u32::try_from(total - done).unwrap_or(u32::MAX)),
                }) {
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

    /// One photo of a run from its feature: `Ranked` (gallery logits, top-k, refined when runs
    /// are) or `Failed`. `false` when the UI is gone.
    fn emit_located(
        &self,
        embedder: &dyn Embedder,
        path: &Path,
        feature: Result<Arc<[f32]>, String>,
        (generation, top_k): (u64, usize),
        provenance: &Provenance,
        failed: &mut usize,
    ) -> bool {
        let located = feature.and_then(|feature| {
            let logits = embedder.gallery_logits(&feature)?;
            Ok((feature, logits))
        });
        match located {
            Ok((feature, logits)) => {
                let position_of = |index: usize| embedder.gallery_position(index);
                let mut prediction = Prediction::from_logits(&logits, top_k, position_of);
                if self.refine.load(Ordering::SeqCst) {
                    let scale = embedder.logit_scale_exp();
                    let refined =
                        crate::domain::refine_candidates(&mut prediction.candidates, scale, {
                            let feature = &feature;
                            move |points: &[LatLon]| embedder.location_logits(feature, points)
                        });
                    if let Err(e) = refined {
                        log::warn!("run {generation}: not refined: {e}: {}", path.display());
                    }
                }
                let mut result = PhotoResult::from_prediction(
                    &prediction,
                    top_k,
                    provenance.clone(),
                    &position_of,
                );
                result.image_feature = Some(feature);
                self.emit(WorkerEvent::Ranked {
                    generation,
                    path: path.to_path_buf(),
                    result,
                })
            }
            Err(error) => {
                *failed += 1;
                log::warn!("run {generation}: {error}");
                self.emit(WorkerEvent::Failed {
                    generation,
                    path: path.to_path_buf(),
                    error,
                })
            }
        }
    }
}

impl WorkerThread {
    /// Runs the heat requests in the slot until it is empty; `false` when the UI is gone.
    fn serve_heat(&mut self) -> bool {
        loop {
            let Some((generation, job)) = lock_slot(&self.heat.slot).take() else {
                return true;
            };
            if !self.heat_job(job, generation) {
                return false;
            }
        }
    }

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

    fn describe(&mut self, job: Describe) -> bool {
        let Describe {
            request,
            text,
            ensemble,
            top_k,
        } = job;
        match self.described(&text, ensemble, top_k.max(1)) {
            Ok(result) => self.emit(WorkerEvent::Described {
                request,
                text,
                ensemble,
                result,
            }),
            Err(error) => {
                log::warn!("text query {text:?}: {error}");
                self.emit(WorkerEvent::DescribeFailed { request, error })
            }
        }
    }

    fn described(
        &mut self,
        text: &str,
        ensemble: bool,
        top_k: usize,
    ) -> Result<PhotoResult, String> {
        let Some(embedder) = self.embedder.as_mut() else {
            return Err("no model is loaded: see the Model panel".into());
        };
        let started = Instant::now();
        let feature = embedder.text_feature(text, ensemble)?;
        let embedder = &**embedder;
        let position_of = |index: usize| embedder.gallery_position(index);
        let (prediction, _) = predict_features(
            &[&feature],
            top_k,
            |f| embedder.gallery_logits(f),
            position_of,
            None,
            None,
        )?;
        let mut result =
            PhotoResult::from_prediction(&prediction, top_k, embedder.provenance(), &position_of);
        result.image_feature = Some(feature);
        log::info!(
            "text query {text:?} answered in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(result)
    }

    /// One heat request: level 0 of every tile, then level 1, then level 2, each (tile,
    /// level) an event; stops quietly when a newer request (or a cancel) bumps the heat
    /// generation. `false` when the UI is gone.
    fn heat_job(&mut self, job: HeatJob, generation: u64) -> bool {
        let live = |heat: &HeatState| heat.generation.load(Ordering::SeqCst) == generation;
        // Logged by the app, which shows it.
        let failed = |this: &Self, error: String| {
            this.emit(WorkerEvent::HeatFailed {
                heat_generation: generation,
                photo_key: job.photo_key.clone(),
                error,
            })
        };
        if !live(&self.heat) || job.tiles.is_empty() {
            return true;
        }
        let Some(embedder) = self.embedder.as_mut() else {
            return failed(self, "no model is loaded".into());
        };
        let feature = match &job.source {
            HeatSource::Feature(feature) => Arc::clone(feature),
            HeatSource::Photo(path) => match self.heat.features.get(path) {
                Some(feature) => feature,
                None => match embedder.image_feature(path) {
                    Ok(feature) => {
                        self.heat
                            .features
                            .insert(path.clone(), Arc::clone(&feature));
                        feature
                    }
                    Err(error) => return failed(self, error),
                },
            },
        };
        let region = job.region.as_ref();
        let max_key = (
            Arc::clone(&feature),
            region.map(Region::spec).unwrap_or_default(),
        );
        let max_logit = match self.heat.max_logits.get(&max_key) {
            Some(max) => max,
            None => match embedder.gallery_logits(&feature) {
                Ok(logits) => {
                    let inside = |i: usize| {
                        region.is_none_or(|r| {
                            embedder.gallery_position(i).is_some_and(|p| r.contains(p))
                        })
                    };
                    let max = logits
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| inside(i))
                        .map(|(_, &l)| l)
                        .fold(f32::NEG_INFINITY, f32::max);
                    if !max.is_finite() {
                        return failed(self, "no gallery point lies inside the region".into());
                    }
                    self.heat.max_logits.insert(max_key, max);
                    max
                }
                Err(error) => return failed(self, error),
            },
        };
        // Each tile's grid at the last level done, and the tiles still to refine: a tile far
        // under the best gallery point everywhere is sent at the finest level, upsampled,
        // and not scored again.
        let started = Instant::now();
        let mut grids: Vec<Vec<f32>> = vec![Vec::new(); job.tiles.len()];
        let mut active: Vec<usize> = (0..job.tiles.len()).collect();
        let finest = heat_grid::LEVELS - 1;
        for level in 0..heat_grid::LEVELS {
            let per_tile = heat_grid::added_per_tile(level);
            let mut still_active = Vec::with_capacity(active.len());
            for chunk in active.chunks(heat_grid::tiles_per_call(level)) {
                if !live(&self.heat) {
                    return true;
                }
                let points: Vec<LatLon> = chunk
                    .iter()
                    .flat_map(|&t| heat_grid::new_sample_positions(job.tiles[t], level))
                    .collect();
                let Some(embedder) = self.embedder.as_ref() else {
                    return failed(self, "no model is loaded".into());
                };
                let logits = match embedder.location_logits(&feature, &points) {
                    Ok(logits) if logits.len() == points.len() => logits,
                    Ok(logits) => {
                        return failed(
                            self,
                            format!("{} logits for {} points", logits.len(), points.len()),
                        );
                    }
                    Err(error) => return failed(self, error),
                };
                for ((&t, added), at) in chunk
                    .iter()
                    .zip(logits.chunks(per_tile))
                    .zip(points.chunks(per_tile))
                {
                    let relative: Vec<f32> = added
                        .iter()
                        .zip(at)
                        .map(|(l, &p)| match region {
                            Some(r) if !r.contains(p) => HEAT_OUTSIDE_REGION,
                            _ => l - max_logit,
                        })
                        .collect();
                    let Some(grid) = heat_grid::refine_values(&grids[t], level, &relative) else {
                        return failed(self, format!("heat grid of level {level} does not fit"));
                    };
                    let (sent_level, values) = if level < finest && heat_grid::is_invisible(&grid) {
                        let mut fine = grid.clone();
                        for l in level..finest {
                            fine = heat_grid::upsample(&fine, l).unwrap_or_default();
                        }
                        (finest, fine)
                    } else {
                        still_active.push(t);
                        (level, grid.clone())
                    };
                    grids[t] = grid;
                    if !self.emit(WorkerEvent::HeatTile {
                        heat_generation: generation,
                        photo_key: job.photo_key.clone(),
                        tile: job.tiles[t],
                        level: sent_level,
                        values: Arc::from(values.as_slice()),
                    }) {
                        return false;
                    }
                }
            }
            log::debug!(
                "heat {generation}: level {level} of {} tiles ({} refined) after {:.3} s",
                job.tiles.len(),
                active.len(),
                started.elapsed().as_secs_f64()
            );
            active = still_active;
        }
        true
    }

    /// A group run: each photo's feature (in batches, cancellable between them, a `Progress`
    /// after each photo), then one answer for the members that worked, sent to each of them.
    fn run_group(&mut self, jobs: &[PathBuf], generation: u64, top_k: usize) -> bool {
        let total = jobs.len();
        if generation != self.current() {
            return self.emit(WorkerEvent::Cancelled {
                generation,
                done: 0,
                total,
            });
        }
        if self.embedder.is_none() {
            return self.emit(WorkerEvent::NoModel { generation });
        }
        log::info!("run {generation}: locating {total} photos together, top {top_k}");
        let started = Instant::now();
        if !self.emit(WorkerEvent::Progress {
            generation,
            done: 0,
            total,
            eta: None,
        }) {
            return false;
        }
        let mut members: Vec<(PathBuf, Arc<[f32]>)> = Vec::new();
        let mut failed = 0;
        let mut done = 0;
        let batch = self.embedder.as_ref().map_or(1, |e| e.batch_size().max(1));
        for chunk in jobs.chunks(batch) {
            if live_changed(&self.generation, generation) {
                return self.emit(WorkerEvent::Cancelled {
                    generation,
                    done,
                    total,
                });
            }
            // The map's heat request between two batches, as in `run`.
            if !self.serve_heat() {
                return false;
            }
            let Some(embedder) = self.embedder.as_mut() else {
                return self.emit(WorkerEvent::NoModel { generation });
            };
            let features = padded(embedder.image_features(chunk), chunk.len());
            for (path, feature) in chunk.iter().zip(features) {
                match feature {
                    Ok(feature) => members.push((path.clone(), feature)),
                    Err(error) => {
                        failed += 1;
                        log::warn!("run {generation}: {error}");
                        if !self.emit(WorkerEvent::Failed {
                            generation,
                            path: path.clone(),
                            error,
                        }) {
                            return false;
                        }
                    }
                }
                // The group's answer is the last step: the members' progress stops short of it.
                done += 1;
                let per_photo = started.elapsed() / u32::try_from(done).unwrap_or(u32::MAX);
                if done < total
                    && !self.emit(WorkerEvent::Progress {
                        generation,
                        done,
                        total,
                        eta: Some(per_photo * u32::try_from(total - done).unwrap_or(u32::MAX)),
                    })
                {
                    return false;
                }
            }
        }
        let Some(embedder) = self.embedder.as_ref() else {
            return self.emit(WorkerEvent::NoModel { generation });
        };
        let features: Vec<&[f32]> = members.iter().map(|(_, f)| &f[..]).collect();
        let location_logits = |f: &[f32], points: &[LatLon]| embedder.location_logits(f, points);
        let refine = self
            .refine
            .load(Ordering::SeqCst)
            .then_some((embedder.logit_scale_exp(), &location_logits as _));
        let position_of = |index: usize| embedder.gallery_position(index);
        let mut events = Vec::new();
        if !members.is_empty() {
            match predict_features(
                &features,
                top_k,
                |f| embedder.gallery_logits(f),
                position_of,
                refine,
                None,
            ) {
                Ok((prediction, _)) => {
                    let group: Arc<[PathBuf]> = members.iter().map(|(p, _)| p.clone()).collect();
                    let result = PhotoResult::from_prediction(
                        &prediction,
                        top_k,
                        embedder.provenance(),
                        &position_of,
                    );
                    for (path, feature) in &members {
                        let mut result = result.clone();
                        result.image_feature = Some(Arc::clone(feature));
                        result.group = Some(Arc::clone(&group));
                        events.push(WorkerEvent::Ranked {
                            generation,
                            path: path.clone(),
                            result,
                        });
                    }
                }
                Err(error) => {
                    for (path, _) in &members {
                        failed += 1;
                        events.push(WorkerEvent::Failed {
                            generation,
                            path: path.clone(),
                            error: error.clone(),
                        });
                    }
                }
            }
        }
        events.push(WorkerEvent::Progress {
            generation,
            done: total,
            total,
            eta: Some(Duration::ZERO),
        });
        for event in events {
            if !self.emit(event) {
                return false;
            }
        }
        log::info!(
            "run {generation}: {} photos located together, {failed} failed, in {:.1} s",
            members.len(),
            started.elapsed().as_secs_f64()
        );
        self.emit(WorkerEvent::Finished {
            generation,
            done: total,
            failed,
            elapsed: started.elapsed(),
        })
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
        let embedder = &**embedder;
        let position_of = |index: usize| embedder.gallery_position(index);
        let location_logits = |f: &[f32], points: &[LatLon]| embedder.location_logits(f, points);
        let refine = self
            .refine
            .load(Ordering::SeqCst)
            .then_some((embedder.logit_scale_exp(), &location_logits as _));
        // The same path as a run (refined when runs are), with the logits already at hand.
        let (within, constraint) = predict_features(
            &[&feature],
            top_k,
            |_| Ok(logits.clone()),
            position_of,
            refine,
            Some((region, &mask)),
        )?;
        let constraint =
            constraint.ok_or_else(|| "internal error: no region constraint".to_owned())?;
        let mut result =
            PhotoResult::from_prediction(&within, top_k, embedder.provenance(), &position_of);
        result.image_feature = Some(feature);
        Ok((result, constraint))
    }
}

fn live_changed(live: &AtomicU64, generation: u64) -> bool {
    live.load(Ordering::SeqCst) != generation
}

/// A batch's features, exactly `len` of them: an embedder that returned fewer fails the rest.
fn padded(
    features: Vec<Result<Arc<[f32]>, String>>,
    len: usize,
) -> impl Iterator<Item = Result<Arc<[f32]>, String>> {
    let returned = features.len();
    features
        .into_iter()
        .chain(std::iter::repeat_with(move || {
            Err(format!(
                "internal error: the model returned {returned} features for {len} photos"
            ))
        }))
        .take(len)
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

    /// The fake, counting the points scored by the location encoder, each call taking `delay`.
    struct CountingEmbedder {
        fake: FakeEmbedder,
        counts: Arc<Counts>,
        delay: Duration,
    }

    #[derive(Default)]
    struct Counts {
        scored: std::sync::atomic::AtomicUsize,
        embedded: std::sync::atomic::AtomicUsize,
    }

    impl Counts {
        fn scored(&self) -> usize {
            self.scored.load(Ordering::SeqCst)
        }
    }

    impl Embedder for CountingEmbedder {
        fn provenance(&self) -> Provenance {
            self.fake.provenance()
        }
        fn image_feature(&mut self, photo: &Path) -> Result<Arc<[f32]>, String> {
            self.counts.embedded.fetch_add(1, Ordering::SeqCst);
            self.fake.image_feature(photo)
        }
        fn gallery_logits(&self, feature: &[f32]) -> Result<Vec<f32>, String> {
            self.fake.gallery_logits(feature)
        }
        fn location_logits(&self, feature: &[f32], points: &[LatLon]) -> Result<Vec<f32>, String> {
            std::thread::sleep(self.delay);
            self.counts.scored.fetch_add(points.len(), Ordering::SeqCst);
            self.fake.location_logits(feature, points)
        }
        fn gallery_position(&self, index: usize) -> Option<LatLon> {
            self.fake.gallery_position(index)
        }
    }

    fn counting_worker(delay: Duration) -> (InferenceWorker, Arc<Counts>) {
        let counts = Arc::new(Counts::default());
        let worker = InferenceWorker::start(crate::domain::no_repaint()).unwrap();
        worker
            .load_model(ready_factory(CountingEmbedder {
                fake: FakeEmbedder::new(),
                counts: Arc::clone(&counts),
                delay,
            }))
            .unwrap();
        assert!(matches!(
            load_outcome(&worker),
            WorkerEvent::ModelReady { .. }
        ));
        (worker, counts)
    }

    fn heat_job(key: &str, tiles: Vec<HeatTile>) -> HeatJob {
        HeatJob {
            photo_key: key.into(),
            // A point of the fake's gallery (its 5° grid).
            source: HeatSource::Feature(Arc::from([22.5_f32, -157.5])),
            tiles,
            region: None,
        }
    }

    /// Every sample of a full request: each tile's finest grid.
    fn full_points(tiles: usize) -> usize {
        tiles * heat_grid::sample_count(heat_grid::LEVELS - 1)
    }

    /// The heat events up to the one for which `last` holds.
    fn heat_events_until(
        worker: &InferenceWorker,
        mut last: impl FnMut(&WorkerEvent) -> bool,
    ) -> Vec<WorkerEvent> {
        let mut events = Vec::new();
        loop {
            let event = worker
                .recv_timeout(Duration::from_secs(30))
                .expect("a heat event");
            let done = last(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }

    #[test]
    fn heat_comes_coarse_first_and_scores_each_sample_once() {
        let (worker, counts) = counting_worker(Duration::ZERO);
        let tiles = heat_grid::visible_tiles(LatLon::new(22.5, -157.5), 9.0, [600.0, 400.0]);
        let generation = worker.request_heat(heat_job("kauai", tiles.clone()));
        let expected = tiles.len() * heat_grid::LEVELS as usize;
        let mut n = 0;
        let events = heat_events_until(&worker, |_| {
            n += 1;
            n == expected
        });
        let mut levels = Vec::new();
        for event in &events {
            match event {
                WorkerEvent::HeatTile {
                    heat_generation,
                    photo_key,
                    tile,
                    level,
                    values,
                } => {
                    assert_eq!(*heat_generation, generation);
                    assert_eq!(photo_key, "kauai");
                    assert_eq!(values.len(), heat_grid::sample_count(*level));
                    // Relative to the best gallery point: the fake's gallery has its peak, so
                    // nothing scores above it.
                    assert!(values.iter().all(|&v| v <= 1e-5), "{tile:?}");
                    // ... and the peak's tile holds values near it (under 100 km away).
                    assert!(values.iter().any(|&v| v > -0.1), "{tile:?}");
                    levels.push((*level, *tile));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // Level 0 for every tile (centre first), then 1, then 2.
        assert!(levels.windows(2).all(|w| w[0].0 <= w[1].0), "{levels:?}");
        assert_eq!(levels[0], (0, tiles[0]));
        assert_eq!(levels[tiles.len()], (1, tiles[0]));
        // Nested levels: no sample scored twice.
        assert_eq!(counts.scored(), full_points(tiles.len()));
    }

    #[test]
    fn a_newer_view_cancels_the_old_heat_job() {
        // 20 ms a call, about 1024 points a call: the old job takes well over a second in full.
        let (worker, counts) = counting_worker(Duration::from_millis(20));
        let old_tiles = heat_grid::visible_tiles(LatLon::new(21.0, -159.0), 10.0, [1280.0, 800.0]);
        let old = worker.request_heat(heat_job("old", old_tiles.clone()));
        heat_events_until(&worker, |e| matches!(e, WorkerEvent::HeatTile { .. }));
        let new_tiles = vec![HeatTile::new(10, 20, 400)];
        let new = worker.request_heat(heat_job("new", new_tiles.clone()));
        assert!(new > old);
        assert_eq!(worker.heat_generation(), new);
        let events = heat_events_until(&worker, |e| {
            matches!(e, WorkerEvent::HeatTile { level, heat_generation, .. }
                if *level == heat_grid::LEVELS - 1 && *heat_generation == new)
        });
        // The old job stopped: it scored less than half its samples, the new one all of its.
        let total = counts.scored();
        let old_scored = total - full_points(new_tiles.len());
        assert!(
            old_scored < full_points(old_tiles.len()) / 2,
            "old job scored {old_scored} of {}",
            full_points(old_tiles.len())
        );
        assert!(events.iter().any(|e| e.heat_generation() == Some(new)));
        // Cancelling alone stops it too, and leaves runs alone.
        let run_generation = worker.generation();
        worker.request_heat(heat_job("again", old_tiles));
        worker.cancel_heat();
        assert_eq!(worker.generation(), run_generation);
    }

    #[test]
    fn heat_of_a_photo_without_a_feature_embeds_it_once() {
        let (worker, counts) = counting_worker(Duration::ZERO);
        let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png");
        let tile = HeatTile::new(8, 10, 100);
        for _ in 0..2 {
            worker.request_heat(HeatJob {
                photo_key: "small".into(),
                source: HeatSource::Photo(photo.clone()),
                tiles: vec![tile],
                region: None,
            });
            heat_events_until(
                &worker,
                |e| matches!(e, WorkerEvent::HeatTile { level, .. } if *level == heat_grid::LEVELS - 1),
            );
        }
        assert_eq!(
            counts.embedded.load(Ordering::SeqCst),
            1,
            "embedded once, then kept"
        );
        let missing = worker.request_heat(HeatJob {
            photo_key: "missing".into(),
            source: HeatSource::Photo(PathBuf::from("/nonexistent/x.jpg")),
            tiles: vec![tile],
            region: None,
        });
        match worker.recv_timeout(Duration::from_secs(30)) {
            Some(WorkerEvent::HeatFailed {
                heat_generation,
                error,
                ..
            }) => {
                assert_eq!(heat_generation, missing);
                assert!(error.contains("x.jpg"), "{error}");
            }
            other => panic!("expected HeatFailed, got {other:?}"),
        }
    }

    /// With a region, samples outside it are drawn as nothing and colours are relative to the
    /// best gallery point inside (the restricted gallery layer's scale).
    #[test]
    fn heat_within_a_region_masks_outside_and_rescales_inside() {
        let (worker, _) = counting_worker(Duration::ZERO);
        // The fake peaks at (22.5, -157.5); the box lies east of it, its best gallery point is
        // (22.5, -152.5) (the fake's 5° grid), about 515 km from the peak.
        let region = crate::geo::parse_region("20,-156,25,-150").unwrap();
        let tile = HeatTile::new(6, 5, 27); // lon -151.9..-146.25, lat 21.9..27.1
        let mut job = heat_job("boxed", vec![tile]);
        job.region = Some(region.clone());
        worker.request_heat(job);
        let events = heat_events_until(
            &worker,
            |e| matches!(e, WorkerEvent::HeatTile { level, .. } if *level == heat_grid::LEVELS - 1),
        );
        let Some(WorkerEvent::HeatTile { level, values, .. }) = events.last() else {
            panic!("no tile: {events:?}");
        };
        let side = heat_grid::samples_per_side(*level);
        let positions: Vec<LatLon> = (0..side * side)
            .map(|i| heat_grid::sample_position(tile, *level, i % side, i / side))
            .collect();
        let (mut inside, mut outside) = (0, 0);
        for (v, p) in values.iter().zip(&positions) {
            if region.contains(*p) {
                inside += 1;
                // Relative to the best point inside: 0 there, never far above it.
                assert!(*v < 0.05 && *v > -1.0, "{p:?}: {v}");
            } else {
                outside += 1;
                assert_eq!(*v, HEAT_OUTSIDE_REGION, "{p:?}");
            }
        }
        assert!(
            inside > 0 && outside > 0,
            "{inside} inside, {outside} outside"
        );
    }

    #[test]
    fn tiles_far_under_the_best_point_are_not_refined() {
        let (worker, counts) = counting_worker(Duration::ZERO);
        // The fake's relative logit is minus the distance in 1000 km: near its peak every tile
        // is refined, on the far side of the world (over 9 210 km away) none is.
        let near = heat_grid::visible_tiles(LatLon::new(22.5, -157.5), 9.0, [256.0, 256.0]);
        let far = heat_grid::visible_tiles(LatLon::new(-20.0, 20.0), 9.0, [256.0, 256.0]);
        let mut tiles = near.clone();
        tiles.extend(&far);
        worker.request_heat(heat_job("mixed", tiles.clone()));
        let expected = near.len() * heat_grid::LEVELS as usize + far.len();
        let mut n = 0;
        let events = heat_events_until(&worker, |_| {
            n += 1;
            n == expected
        });
        for event in &events {
            if let WorkerEvent::HeatTile {
                tile,
                level,
                values,
                ..
            } = event
                && far.contains(tile)
            {
                assert_eq!(*level, heat_grid::LEVELS - 1, "sent once, as finished");
                assert_eq!(values.len(), heat_grid::sample_count(*level));
                assert!(heat_grid::is_invisible(values));
            }
        }
        assert_eq!(
            counts.scored(),
            full_points(near.len()) + far.len() * heat_grid::sample_count(0)
        );
    }

    /// The fake, embedding `batch` photos a call (each call taking `delay`) and recording how
    /// many it was given each time.
    struct BatchingEmbedder {
        fake: FakeEmbedder,
        batch: usize,
        delay: Duration,
        calls: Arc<Mutex<Vec<usize>>>,
    }

    impl Embedder for BatchingEmbedder {
        fn provenance(&self) -> Provenance {
            self.fake.provenance()
        }
        fn image_feature(&mut self, photo: &Path) -> Result<Arc<[f32]>, String> {
            self.fake.image_feature(photo)
        }
        fn batch_size(&self) -> usize {
            self.batch
        }
        fn image_features(&mut self, photos: &[PathBuf]) -> Vec<Result<Arc<[f32]>, String>> {
            self.calls.lock().unwrap().push(photos.len());
            std::thread::sleep(self.delay);
            photos.iter().map(|p| self.fake.image_feature(p)).collect()
        }
        fn gallery_logits(&self, feature: &[f32]) -> Result<Vec<f32>, String> {
            self.fake.gallery_logits(feature)
        }
        fn location_logits(&self, feature: &[f32], points: &[LatLon]) -> Result<Vec<f32>, String> {
            self.fake.location_logits(feature, points)
        }
        fn gallery_position(&self, index: usize) -> Option<LatLon> {
            self.fake.gallery_position(index)
        }
    }

    fn batching_worker(batch: usize, delay: Duration) -> (InferenceWorker, Arc<Mutex<Vec<usize>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let worker = InferenceWorker::start(crate::domain::no_repaint()).unwrap();
        worker
            .load_model(ready_factory(BatchingEmbedder {
                fake: FakeEmbedder::new(),
                batch,
                delay,
                calls: Arc::clone(&calls),
            }))
            .unwrap();
        assert!(matches!(
            load_outcome(&worker),
            WorkerEvent::ModelReady { .. }
        ));
        (worker, calls)
    }

    /// `n` photos the fake can read, named apart, and an empty file (which fails) third.
    fn photos(dir: &Path, n: usize) -> Vec<PathBuf> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png");
        (0..n)
            .map(|i| {
                let path = dir.join(format!("photo{i}.png"));
                if i == 2 {
                    std::fs::write(&path, b"").unwrap();
                } else {
                    std::fs::copy(&src, &path).unwrap();
                }
                path
            })
            .collect()
    }

    /// A run's events, each as a line (times left out), up to its end.
    fn run_events(worker: &InferenceWorker, generation: u64) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let event = worker
                .recv_timeout(Duration::from_secs(30))
                .expect("a run event");
            assert_eq!(event.generation(), Some(generation), "{event:?}");
            let line = match &event {
                WorkerEvent::Progress { done, total, .. } => format!("progress {done}/{total}"),
                WorkerEvent::Ranked { path, result, .. } => format!(
                    "ranked {} {:?} {:?}",
                    path.display(),
                    result.candidates,
                    result.image_feature
                ),
                WorkerEvent::Failed { path, error, .. } => {
                    format!("failed {} {error}", path.display())
                }
                WorkerEvent::Finished { done, failed, .. } => format!("finished {done} {failed}"),
                WorkerEvent::Cancelled { done, total, .. } => format!("cancelled {done}/{total}"),
                other => panic!("unexpected {other:?}"),
            };
            lines.push(line);
            if matches!(
                event,
                WorkerEvent::Finished { .. } | WorkerEvent::Cancelled { .. }
            ) {
                return lines;
            }
        }
    }

    #[test]
    fn a_batched_run_gives_the_events_of_a_run_photo_by_photo() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = photos(dir.path(), 7);
        let (single, single_calls) = batching_worker(1, Duration::ZERO);
        let (batched, batched_calls) = batching_worker(3, Duration::ZERO);
        let one = run_events(&single, single.run(jobs.clone(), 3).unwrap());
        let three = run_events(&batched, batched.run(jobs.clone(), 3).unwrap());
        assert_eq!(one, three);
        // Each photo: its answer (the empty one fails), then its progress.
        assert_eq!(one.len(), 1 + 2 * 7 + 1, "{one:#?}");
        assert!(one[1].starts_with("ranked"), "{}", one[1]);
        assert!(one[5].starts_with("failed"), "{}", one[5]);
        assert_eq!(one[6], "progress 3/7");
        assert_eq!(one.last().map(String::as_str), Some("finished 7 1"));
        assert_eq!(*single_calls.lock().unwrap(), vec![1; 7]);
        assert_eq!(*batched_calls.lock().unwrap(), vec![3, 3, 1]);

        // A group run embeds in batches too, with the same answer.
        let group = |worker: &InferenceWorker| {
            let generation = worker.run_group(jobs.clone(), 3).unwrap();
            run_events(worker, generation)
        };
        assert_eq!(group(&single), group(&batched));
        assert_eq!(batched_calls.lock().unwrap()[3..], [3, 3, 1]);
    }

    #[test]
    fn a_batched_run_is_cancelled_within_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = photos(dir.path(), 8);
        // Each batch takes 500 ms: the cancel below comes early in the second at the latest.
        let (worker, calls) = batching_worker(2, Duration::from_millis(500));
        let generation = worker.run(jobs, 1).unwrap();
        // The first photo's answer comes after the first batch.
        loop {
            match worker.recv_timeout(Duration::from_secs(30)) {
                Some(WorkerEvent::Ranked { .. }) => break,
                Some(_) => {}
                None => panic!("no answer"),
            }
        }
        worker.cancel_all();
        let rest = run_events(&worker, generation);
        let last = rest.last().cloned().unwrap_or_default();
        assert!(
            ["cancelled 1/8", "cancelled 2/8"].contains(&last.as_str()),
            "{rest:?}"
        );
        // The batch in flight at most, never the rest of the run.
        assert!(
            calls.lock().unwrap().len() <= 2,
            "{:?}",
            calls.lock().unwrap()
        );
    }

    #[test]
    fn small_lru_forgets_the_least_recently_used() {
        let mut lru = SmallLru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get(&"a"), Some(1));
        lru.insert("c", 3);
        assert_eq!(lru.get(&"b"), None, "b was used least recently");
        assert_eq!(lru.get(&"a"), Some(1));
        assert_eq!(lru.get(&"c"), Some(3));
        lru.insert("c", 4);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get(&"c"), Some(4));
    }
}
