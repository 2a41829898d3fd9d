//! The headless command line: `geoloupe locate`, `geoloupe geotag`, `geoloupe query`,
//! `geoloupe model ...`, `geoloupe bench`.

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rayon::prelude::*;

use crate::domain::PointKind;
use crate::domain::{
    Candidate, LocationLogitsFn, Origin, Prediction, Provenance, RegionConstraint, predict_features,
};
use crate::export::csv::CSV_LINE_END;
use crate::export::exif_write::{BackupStore, RestoreOutcome};
use crate::export::xmp::SidecarStyle;
use crate::export::{
    self, ExportCandidate, ExportFormat, ExportRecord, ExportWriter, PathStyle, PhotoPaths,
    PointSet, WriteBack,
};
use crate::geo::{ClaimCheck, ClaimSource, LatLon, Place};
use crate::library::PhotoEntry;
use crate::library::scan::{ScanOptions, scan_paths};
use crate::model::engine::{LoadEvent, ModelPaths, prepare_photo};
use crate::model::files::{self, DataDirs};
use crate::model::{DeviceChoice, GeoClip, Precision, download};

mod cluster;
mod geotag;
mod query;

#[derive(Debug, Parser)]
#[command(
    name = "geoloupe",
    version,
    about = "Where was this photo taken? GeoCLIP, on your own machine.",
    long_about = "Where was this photo taken? GeoCLIP, on your own machine.\n\n\
        With no subcommand, `geoloupe [PATHS]` opens the desktop app on those photos or folders."
)]
pub struct Cli {
    /// Where models and caches live (default: the platform's data folder, or $GEOLOUPE_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Photos or folders to open in the desktop app (when no subcommand is given).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A headless subcommand; without one, the desktop app opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rank likely GPS locations for photos.
    Locate(LocateArgs),
    /// Install, download and inspect model files.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Measure speed on a full-size ViT-L/14 with random weights.
    Bench(BenchArgs),
    /// The originals kept when `locate --write-exif` changed photos.
    #[command(subcommand)]
    Backups(BackupsCommand),
    /// Place photos on GPS tracks (GPX, KML, NMEA) by capture time, as exiftool's -geotag
    /// does, or by neighbouring photos with GPS (--neighbours).
    Geotag(geotag::GeotagArgs),
    /// Put the parts of a sharded run (`locate --output`) into one Parquet file, checking they
    /// used one model and gallery and reporting missing shards, duplicate and failed photos.
    Merge(cluster::MergeArgs),
    /// The app's library.
    #[command(subcommand)]
    Library(cluster::LibraryCommand),
    /// Where a description looks likely: CLIP's text tower through GeoCLIP, ranked over the
    /// gallery as a photo is ("a snowy harbour with red roofs").
    Query(query::QueryArgs),
}

#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// List the kept originals.
    List,
    /// Delete every kept original (the changed photos stay as they are).
    Clear,
    /// Put each kept original back in place of the changed photo, then forget it. Only photos
    /// still exactly as geoloupe wrote them are restored; the others are listed with the
    /// reason and their originals stay in the backups.
    Restore,
}

/// How XMP sidecars are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SidecarNaming {
    /// `photo.jpg.xmp` (darktable, digiKam)
    #[value(name = "photo.jpg.xmp")]
    PhotoJpgXmp,
    /// `photo.xmp` (Lightroom)
    #[value(name = "photo.xmp")]
    PhotoXmp,
}

/// A claimed location as the app reads it ([`crate::geo::parse_claim`]): `LAT,LON`, hemisphere
/// letters, degrees-minutes-seconds, or the name of one built-in place.
fn parse_claimed(text: &str) -> Result<crate::geo::LatLon, String> {
    match crate::geo::parse_claim(text).map_err(|e| e.to_string())? {
        crate::geo::ParsedClaim::Position(position) => Ok(position),
        crate::geo::ParsedClaim::Places(places) if places.len() == 1 => Ok(places[0].position),
        crate::geo::ParsedClaim::Places(places) => {
            let examples: Vec<String> = places.iter().take(4).map(|p| p.label()).collect();
            Err(format!(
                "{} places are called {text:?}: add the region or country after a comma, e.g. {}",
                places.len(),
                examples.join("; ")
            ))
        }
    }
}

/// The write-backs `locate` and `geotag` share: sidecars, EXIF and a dry run.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Write each photo's location (`locate`: its top-1 or trip point; `geotag`: the track's)
    /// and its provenance into XMP sidecars (merged into an existing sidecar; photos with
    /// EXIF GPS are skipped).
    #[arg(long)]
    pub xmp_sidecars: bool,
    #[arg(long, value_enum, default_value_t = SidecarNaming::PhotoJpgXmp)]
    pub sidecar_style: SidecarNaming,
    /// Write each photo's location as EXIF GPS into the JPEG itself (pixels untouched; the
    /// original is kept until `geoloupe backups clear`; photos with EXIF GPS are skipped).
    #[arg(long)]
    pub write_exif: bool,
    /// With --export, --xmp-sidecars or --write-exif: list what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --xmp-sidecars or --write-exif: also replace EXIF GPS that is present but invalid
    /// (latitude 999, unknown reference letters, ...). Without it such photos are skipped
    /// (`geotag` then does not place them either: photos with valid GPS are its neighbours).
    #[arg(long)]
    pub overwrite_invalid_gps: bool,
    /// With --xmp-sidecars: also write the nearest place's names as IPTC location
    /// (photoshop:City, photoshop:State, photoshop:Country, Iptc4xmpCore:CountryCode), as
    /// digiKam and Lightroom read them. For `locate` these are the top-1 estimate's places:
    /// ask for them only when you vouch for the estimates (the app writes them for accepted
    /// locations). A sidecar's own values (not written by geoloupe) are kept.
    #[arg(long, requires = "xmp_sidecars")]
    pub iptc_location: bool,
}

/// The model options of `locate` and `query`.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// exact: f32, PyTorch's numbers. bf16: fast mode, the towers' matrix products in bf16
    /// (about half the time on CPUs with AVX-512 BF16; image features within a cosine of 0.9998
    /// of exact). Where fast mode cannot run, a warning says so and exact runs; the provenance's
    /// device says which ran (`cpu+bf16`).
    #[arg(long, value_enum, default_value_t = Precision::Exact)]
    pub precision: Precision,
    /// A CLIP folder in Hugging Face layout (default: the installed backbone; text queries
    /// need its tokenizer.json).
    #[arg(long, value_name = "DIR")]
    pub backbone: Option<PathBuf>,
    /// A gallery CSV with LAT,LON columns (default: the release's 100K points).
    #[arg(long, value_name = "CSV")]
    pub gallery: Option<PathBuf>,
}

impl ModelArgs {
    /// The installed model files, with `--backbone` and `--gallery` in their place.
    pub fn paths(&self, dirs: &DataDirs) -> ModelPaths {
        let mut paths = ModelPaths::installed(dirs);
        if let Some(backbone) = &self.backbone {
            paths.backbone_dir = backbone.clone();
        }
        paths.gallery_csv = self.gallery.clone();
        paths
    }
}

#[derive(Debug, clap::Args)]
pub struct LocateArgs {
    /// Photos or folders (searched recursively, as the app does: JPEG, PNG, WebP, TIFF, GIF,
    /// BMP, and HEIC/HEIF/AVIF (with the `heif` feature) by extension, hidden files and folders
    /// skipped).
    #[arg(required_unless_present = "manifest", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A file listing photos, for archives on object-store mounts where listing folders is
    /// slow: one path a line (empty lines and lines starting with # skipped), or a column of a
    /// CSV (.csv) or Parquet (.parquet) file (--manifest-column). Relative paths start from the
    /// file's folder. With --shard, a listed photo's key is its path as listed.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// The column of a CSV or Parquet --manifest that holds the paths.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "path",
        requires = "manifest"
    )]
    pub manifest_column: String,
    /// Write the results to a Parquet file too (one row per photo, failures included; see
    /// README, "Millions of photos"), and resume: photos already located in FILE, or in its
    /// journal (FILE.journal/, left by a run that was stopped), are skipped. Rows are committed
    /// in groups of --row-group; FILE itself appears, complete, when the run ends.
    #[arg(long, value_name = "FILE.parquet")]
    pub output: Option<PathBuf>,
    /// With --output: photos per committed group (a killed run loses at most one group).
    #[arg(long, value_name = "N", default_value_t = crate::export::parquet::DEFAULT_GROUP_ROWS,
          requires = "output", value_parser = parse_group_rows)]
    pub row_group: usize,
    /// Candidates per photo.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub top_k: u32,
    /// What to print, photo by photo as the results come.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// How photo paths are written, on standard output and in --export files: relative (to the
    /// export file's folder; on standard output, to the current folder), name (file name only)
    /// or full (absolute).
    #[arg(long = "paths", value_enum, default_value_t = PathStyle::Relative, value_name = "STYLE")]
    pub path_style: PathStyle,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Photos per forward pass [default: 8 on the CPU, 32 on a GPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch_size: Option<u32>,
    /// Also write the results to FILE: GPX (.gpx), CSV (.csv) or GeoJSON (.geojson, .json), by
    /// extension, with place names, claim checks and provenance. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub export: Vec<PathBuf>,
    /// In GPX/GeoJSON output and --export files, one point per photo (its top-1 candidate)
    /// instead of every top-k candidate.
    #[arg(long)]
    pub best_only: bool,
    /// A claimed location to check the answer against (distance to the top-1 candidate, share
    /// of the probability within 25 and 200 km). Without it, a photo's EXIF GPS is its claim.
    /// Also `22.07 N, 159.5 W`, `22°04'12"N 159°30'W` or a place (`"Lihue, Hawaii"`).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_claimed, allow_hyphen_values = true)]
    pub claimed: Option<crate::geo::LatLon>,
    #[command(flatten)]
    pub write: WriteArgs,
    /// Refine each candidate on GeoCLIP's continuous location encoder: a coarse-to-fine grid
    /// search around its gallery point down to about 100 m. Every output shows both points
    /// (the gallery point stays `position`; the refined one is `refined`, with its cosine
    /// similarity), and the top-1 location becomes the refined point, marked `refined`.
    #[arg(long)]
    pub refine: bool,
    /// Locate all the photos together, as views of one place: their logits over the gallery
    /// are summed (the product of their beliefs), giving one set of candidates. Each photo is
    /// still printed and exported as its own record, carrying the group's candidates and the
    /// group's members (`group`), so sidecars and EXIF write-backs work per photo.
    #[arg(long)]
    pub together: bool,
    /// Restrict the answer to a region: a country (name, ISO alpha-2 `UA` or alpha-3 `UKR`) or a
    /// box `LAT_MIN,LON_MIN,LAT_MAX,LON_MAX` in degrees (crossing the antimeridian when
    /// LON_MIN > LON_MAX). Probabilities are renormalised over the gallery points inside,
    /// candidates come from inside only, and every output records the region and the share of
    /// the model's belief that lay inside.
    #[arg(long, value_name = "COUNTRY_OR_BOX", allow_hyphen_values = true)]
    pub within: Option<String>,
    /// Locate the photos as one trip (issue 12): ordered by capture time (EXIF), each photo's
    /// top 200 candidates are combined with its neighbours' under a travel model (the time
    /// between two photos bounds how far apart they can be), and each photo's location becomes
    /// the trip's point for it (origin `trip`), with the single-photo answer kept beside it in
    /// every output. Photos without a capture time keep their single-photo answer; photos with
    /// their own EXIF GPS anchor the trip there.
    #[arg(long, conflicts_with = "together")]
    pub trip: bool,
    /// With --trip: the top speed between two photos, km/h (default: --travel's).
    #[arg(long, value_name = "KMH", requires = "trip", conflicts_with = "travel",
          value_parser = parse_speed_kmh)]
    pub max_speed: Option<f64>,
    /// With --trip: how the photographer travelled, for the top speed.
    #[arg(long, value_enum, requires = "trip")]
    pub travel: Option<Travel>,
    /// Locate only shard I of N (counted from 0): the photos whose path, relative to the folder
    /// given that holds it, hashes to I modulo N. N workers given the same folders split them
    /// with no photo twice or left out, and a photo keeps its shard when others are added.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, conflicts_with = "shards")]
    pub shard: Option<crate::library::shard::Shard>,
    /// Locate one of N shards, its index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)
    /// or SLURM_ARRAY_TASK_ID (a Slurm job array).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,
}

fn parse_group_rows(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("a row group is 1 or more photos, not {text:?}")),
    }
}

fn parse_shard(text: &str) -> Result<crate::library::shard::Shard, String> {
    crate::library::shard::Shard::parse(text).map_err(|e| e.to_string())
}

impl LocateArgs {
    /// Photos per forward pass: `--batch-size`, else 8 on the CPU (no faster per photo in
    /// larger batches, and memory grows with them) and [`DeviceChoice::GPU_BATCH`] on a GPU.
    pub fn batch_size(&self) -> usize {
        match self.batch_size {
            Some(n) => n as usize,
            None if self.model.device.is_gpu() => DeviceChoice::GPU_BATCH,
            None => 8,
        }
    }
}

/// `locate --travel`: a top speed for the trip's travel model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Travel {
    /// 7 km/h: on foot (a brisk walk, a little running).
    Walk,
    /// 30 km/h: by bicycle.
    Bike,
    /// 130 km/h (the default): by car, the motorway limit in most of Europe.
    Car,
    /// 300 km/h: by high-speed train.
    Train,
    /// 950 km/h: by plane (an airliner's cruising speed).
    Plane,
}

impl Travel {
    /// When neither --max-speed nor --travel is given: most photo trips are road trips, and a
    /// bound set too high only weakens the constraint, while one set too low breaks true pairs
    /// (which the teleport weight then has to absorb).
    pub const DEFAULT: Self = Self::Car;

    pub fn max_speed_kmh(self) -> f64 {
        match self {
            Self::Walk => 7.0,
            Self::Bike => 30.0,
            Self::Car => 130.0,
            Self::Train => 300.0,
            Self::Plane => 950.0,
        }
    }
}

/// A top speed: finite, above 0.
fn parse_speed_kmh(text: &str) -> Result<f64, String> {
    let speed: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("not a speed in km/h: {text:?}"))?;
    if speed.is_finite() && speed > 0.0 {
        Ok(speed)
    } else {
        Err(format!("the top speed must be above 0 km/h: {text:?}"))
    }
}

impl LocateArgs {
    /// `--max-speed`, else `--travel`'s speed, else [`Travel::DEFAULT`]'s.
    pub fn trip_max_speed_kmh(&self) -> f64 {
        self.max_speed
            .unwrap_or_else(|| self.travel.unwrap_or(Travel::DEFAULT).max_speed_kmh())
    }
}

/// `locate`'s output. Every format is written as the results come, each photo flushed as soon
/// as it is located, so a run cut short keeps the photos done (`json`, `gpx` and `geojson` then
/// lack only their closing part). A path that isn't plain UTF-8 text is written readably plus
/// its exact bytes in hex (`path_bytes_hex`; see [`crate::export::paths`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people: each photo's path, then its candidates with the nearest place.
    Table,
    /// One JSON document: `provenance`, `places_attribution`, and `photos` (an array).
    Json,
    /// JSON Lines: one JSON object per photo and line (the items of `json`'s `photos`).
    Jsonl,
    /// One row per candidate: `path,rank,lat_deg,lon_deg,probability,gallery_index,path_bytes_hex`
    /// (the gallery point), then `refined_lat_deg,refined_lon_deg,refined_similarity` (with
    /// `--refine`) and `group_size` (with `--together`); with `--within`, then
    /// `within,within_share_inside`.
    Csv,
    /// GPX 1.1, as `--export FILE.gpx` writes it.
    Gpx,
    /// GeoJSON, as `--export FILE.geojson` writes it.
    Geojson,
    /// Nothing (for runs that write `--output` or `--export` files); errors still go to
    /// standard error.
    None,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Import the geoclip wheel (`pip download --no-deps geoclip==1.3.0`), an unpacked geoclip
    /// package, a GeoCLIP release folder, or a CLIP backbone folder (Hugging Face layout).
    Import {
        #[arg(value_name = "WHEEL_OR_FOLDER")]
        source: PathBuf,
    },
    /// Download the GeoCLIP release and the CLIP ViT-L/14 backbone from the Hugging Face Hub.
    Download {
        /// Don't ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Never touch the network: install from the Hugging Face cache only (also HF_HUB_OFFLINE=1).
        #[arg(long)]
        offline: bool,
        /// Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Hugging Face cache folder (default: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub).
        #[arg(long, value_name = "DIR")]
        hf_cache: Option<PathBuf>,
    },
    /// Encode the GPS gallery into the feature cache now (what the first `locate` would do),
    /// so workers of a cluster run mount the data folder read-only and start at once.
    Prepare {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Show what is installed, where, sizes and hashes, and what is missing.
    Info {
        /// Re-hash every file against its manifest.
        #[arg(long)]
        verify: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Batch sizes to time.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub batch_sizes: Vec<usize>,
    /// Timed passes per batch size.
    #[arg(long, default_value_t = 2)]
    pub repeats: usize,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// `exact`: time exact mode only. `bf16`: exact and bf16 (the default; fast mode is always
    /// compared with exact, and skipped with the reason where it cannot run).
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    #[arg(long)]
    pub json: bool,
    /// Time the continuous heatmap instead: the location encoder over the tile grid of one
    /// 1280x800 map view at zoom 10 (the installed heads, else random weights of that shape).
    #[arg(long)]
    pub heat_grid: bool,
    /// Time a trip instead (`locate --trip`): synthetic photos, each with its top candidates,
    /// solved with the travel model; prints time and peak memory.
    #[arg(long, conflicts_with = "heat_grid")]
    pub trip: bool,
    /// With --trip: photos in the trip.
    #[arg(long, default_value_t = 5000, requires = "trip")]
    pub trip_photos: usize,
    /// With --trip: candidates per photo.
    #[arg(long, default_value_t = 200, requires = "trip")]
    pub trip_candidates: usize,
}

/// Runs a headless subcommand (`main` opens the desktop app when there is none). What it
/// ended with: `Ok(true)` if every photo succeeded.
pub fn run(dirs: &DataDirs, command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Locate(args) => locate(dirs, &args),
        Command::Model(cmd) => model(dirs, cmd).map(|()| true),
        Command::Bench(args) => bench(dirs, &args).map(|()| true),
        Command::Backups(cmd) => backups(dirs, &cmd).map(|()| true),
        Command::Geotag(args) => geotag::geotag(dirs, &args),
        Command::Query(args) => query::query(dirs, &args),
        Command::Merge(args) => cluster::merge(&args),
        Command::Library(cmd) => cluster::library(dirs, &cmd),
    }
}

/// The photos `locate` works on, found by the app's scanner ([`scan_paths`]: the same
/// extensions, hidden files and folders skipped, sorted, no duplicates), with their EXIF GPS;
/// and one error line (path last) for each file or folder it could not use.
fn find_photos(paths: &[PathBuf]) -> anyhow::Result<(Vec<PhotoEntry>, Vec<String>)> {
    let (photos, bad) = find_photos_keyed(paths, paths, None)?;
    Ok((
        photos,
        bad.iter().map(|(path, e)| error_line(e, path)).collect(),
    ))
}

/// A file `locate` found but could not use, and why.
type Unreadable = (PathBuf, String);

/// `{error}: {path}`: a failed photo's line on stderr (after `error: `).
fn error_line(error: &str, path: &std::path::Path) -> String {
    format!("{error}: {}", path.display())
}

/// [`find_photos`], keeping only `shard`'s photos (and its unreadable files) when there is one,
/// with shard keys relative to `roots` (the folders given, and a manifest's folder); the files
/// it could not use with why.
fn find_photos_keyed(
    paths: &[PathBuf],
    roots: &[PathBuf],
    shard: Option<crate::library::shard::Shard>,
) -> anyhow::Result<(Vec<PhotoEntry>, Vec<Unreadable>)> {
    let never = std::sync::atomic::AtomicBool::new(false);
    let mut entries = scan_paths(
        paths,
        ScanOptions { read_exif: true },
        &never,
        &mut |_| {},
        &mut |_| {},
    )?;
    if let Some(shard) = shard {
        let roots: Vec<&std::path::Path> = roots.iter().map(PathBuf::as_path).collect();
        entries.retain(|e| shard.contains(&crate::library::shard::key(&e.path, &roots)));
    }
    let (bad, photos): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.error.is_some());
    let errors = bad
        .into_iter()
        .map(|e| (e.path, e.error.unwrap_or_default()))
        .collect();
    Ok((photos, errors))
}

fn progress_bar(len: u64, message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

/// The model, with a progress bar while the gallery is encoded (once: it is cached).
fn load_engine(
    paths: &ModelPaths,
    device: &candle_core::Device,
    precision: Precision,
) -> anyhow::Result<GeoClip> {
    let mut gallery_bar: Option<indicatif::ProgressBar> = None;
    let engine = GeoClip::load(paths, device, precision, &mut |event| {
        if let LoadEvent::EncodingGallery { done, total } = event {
            let bar = gallery_bar.get_or_insert_with(|| {
                eprintln!("Encoding the GPS gallery once (cached for later runs)...");
                progress_bar(total as u64, "gallery")
            });
            bar.set_position(done as u64);
        }
        true
    })
    .context("could not load the model")?;
    if let Some(bar) = gallery_bar {
        bar.finish_and_clear();
    }
    Ok(engine)
}

fn locate(dirs: &DataDirs, args: &LocateArgs) -> anyhow::Result<bool> {
    let device = args.model.device.device()?;
    let paths = args.model.paths(dirs);
    let export_formats = export_formats(&args.export)?;
    // Read before the model loads, so a typo costs nothing.
    let within = args
        .within
        .as_deref()
        .map(crate::geo::parse_region)
        .transpose()
        .map_err(|e| anyhow!("--within: {e}"))?;
    let shard = match (args.shard, args.shards) {
        (Some(shard), _) => Some(shard),
        (None, Some(count)) => Some(
            crate::library::shard::Shard::from_env(count, |name| std::env::var(name).ok())
                .map_err(|e| anyhow!("--shards: {e}"))?,
        ),
        (None, None) => None,
    };
    let (mut inputs, mut roots) = (args.paths.clone(), args.paths.clone());
    if let Some(manifest) = &args.manifest {
        let dir = manifest
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        inputs.extend(cluster::manifest_paths(
            manifest,
            &args.manifest_column,
            &dir,
        )?);
        roots.push(dir);
    }
    let (mut photos, unreadable) = find_photos_keyed(&inputs, &roots, shard)?;
    let mut failures: Vec<String> = unreadable.iter().map(|(p, e)| error_line(e, p)).collect();
    if let Some(shard) = shard {
        eprintln!(
            "shard {} of {} (counted from 0): {} photos",
            shard.index,
            shard.count,
            photos.len() + failures.len()
        );
    }
    for e in &failures {
        eprintln!("error: {e}");
    }
    log::info!(
        "locate: {} photos found ({} unreadable), top {} on {:?}",
        photos.len(),
        failures.len(),
        args.top_k,
        args.model.device
    );
    let engine = load_engine(&paths, &device, args.model.precision)?;
    log::info!("locate: model loaded");
    if let Some(note) = engine.precision_note() {
        eprintln!("warning: {note}");
    }

    let point_set = if args.best_only {
        PointSet::Chosen
    } else {
        PointSet::AllCandidates
    };
    // On standard output, relative paths start from the current folder.
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let provenance = engine.provenance(args.model.device);
    // --output: the part file, resumed when an earlier run of it left rows.
    let mut part = match &args.output {
        Some(path) => Some(cluster::open_part(
            path,
            args,
            &provenance,
            shard,
            engine.gallery().coords_lat_lon_deg.len(),
        )?),
        None => None,
    };
    // A group's or a trip's answer depends on every photo in it: those runs locate all their
    // photos again (each photo's row is still written once).
    let resumable = !(args.together || args.trip);
    if let (Some(part), Some(output), true) = (&part, &args.output, resumable) {
        let before = photos.len();
        photos.retain(|e| !part.is_located(&e.path));
        if photos.len() < before {
            eprintln!(
                "{} photo(s) already located in {} are skipped",
                before - photos.len(),
                output.display()
            );
        }
    }
    let mut failed_rows: Vec<export::parquet::PhotoRow> = unreadable
        .iter()
        .map(|(path, e)| export::parquet::PhotoRow::failed(path, e.clone()))
        .collect();
    let hash_rows = part.is_some();
    let estimated_at = export::utc_now_rfc3339();
    let stdout = std::io::stdout();
    let mut printer = Printer::begin(
        args.format,
        point_set,
        PhotoPaths::from_dir(args.path_style, &cwd),
        std::io::BufWriter::new(stdout.lock()),
        &provenance,
        within.is_some(),
        args.trip,
    )?;
    let bar = (photos.len() > 3).then(|| progress_bar(photos.len() as u64, "locating"));
    let mut records: Vec<ExportRecord> = Vec::new();
    let gallery_coords = &engine.gallery().coords_lat_lon_deg;
    let cfg = engine.preprocess_config().clone();
    // Which gallery points lie inside the region: once per run.
    let within_mask = match &within {
        Some(region) => {
            let started = std::time::Instant::now();
            let mask = region.mask(gallery_coords);
            let inside = mask.iter().filter(|&&m| m).count();
            log::info!(
                "locate: {inside} of {} gallery points inside {} ({:.1} ms)",
                mask.len(),
                region.label(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            if inside == 0 {
                bail!(crate::geo::EmptyRegion {
                    region: region.label()
                });
            }
            Some((region, mask))
        }
        None => None,
    };
    // A photo that failed: its line on stderr, and its row with --output.
    let mut report = |path: &std::path::Path, line: String| {
        match &bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
        let error = line.strip_prefix("error: ").unwrap_or(&line);
        failed_rows.push(export::parquet::PhotoRow::failed(path, error));
        failures.push(line);
    };
    // A located photo's row with --output (`sha256`: its file's, when already hashed).
    let mut keep =
        |entry: &PhotoEntry, record: &ExportRecord, sha256: Option<String>| -> anyhow::Result<()> {
            if let Some(part) = &mut part {
                part.push(cluster::photo_row(entry, record, sha256))?;
            }
            Ok(())
        };
    let top_k = args.top_k as usize;
    let position_of = |i: usize| engine.gallery().lat_lon(i);
    let gallery_logits = |f: &[f32]| -> Result<Vec<f32>, String> {
        engine
            .gallery_logits(&[f])
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| "the model returned no logits".to_owned())
    };
    let location_logits = |f: &[f32], points: &[LatLon]| -> Result<Vec<f32>, String> {
        let coords: Vec<[f32; 2]> = points
            .iter()
            .map(|p| [p.lat_deg as f32, p.lon_deg as f32])
            .collect();
        engine
            .location_logits(f, &coords)
            .map_err(|e| e.to_string())
    };
    let refine = args.refine.then_some((
        engine.logit_scale_exp(),
        &location_logits as &LocationLogitsFn,
    ));
    let within_ref = within_mask
        .as_ref()
        .map(|(region, mask)| (*region, mask.as_slice()));
    // One photo's (or, with --together, the group's) answer from image features, within the
    // region when there is one.
    let predict = |features: &[&[f32]]| -> anyhow::Result<(Prediction, Option<RegionConstraint>)> {
        predict_features(
            features,
            top_k,
            gallery_logits,
            position_of,
            refine,
            within_ref,
        )
        .map_err(|e| anyhow!(e))
    };
    let claim_of = |entry: &PhotoEntry| {
        // A claim is a fix: geoloupe's own estimate in the EXIF is none.
        args.claimed
            .map(|c| (c, ClaimSource::User))
            .or_else(|| entry.exif.gps.map(|g| (g, ClaimSource::ExifGps)))
    };
    // A photo's record of an answer (its own, a group's), with the write options.
    let record_of = |entry: &PhotoEntry, prediction: &Prediction| {
        ExportRecord::from_prediction(
            &entry.path,
            prediction,
            gallery_coords,
            provenance.clone(),
            estimated_at.clone(),
            None,
            claim_of(entry),
        )
        .map(|mut record| {
            record.overwrite_invalid_gps = args.write.overwrite_invalid_gps;
            record.iptc_location = args.write.iptc_location;
            record
        })
    };
    // Every photo's image feature, in order (for the answers that need them all first: a
    // group's, a trip's); an unreadable photo is reported and left out.
    let embed_all =
        |report: &mut dyn FnMut(&std::path::Path, String)| -> anyhow::Result<Vec<(&PhotoEntry, Vec<f32>)>> {
            let mut embedded = Vec::with_capacity(photos.len());
            for chunk in photos.chunks(args.batch_size()) {
                let prepared: Vec<_> = chunk
                    .par_iter()
                    .map(|p| prepare_photo(&p.path, &cfg))
                    .collect();
                let ok: Vec<_> = prepared.iter().filter_map(|r| r.as_ref().ok()).collect();
                let mut features = engine.normalized_image_features(&ok)?.into_iter();
                for (entry, prep) in chunk.iter().zip(&prepared) {
                    match prep {
                        Err(e) => report(&entry.path, format!("error: {e}")),
                        Ok(_) => embedded.push((
                            entry,
                            features
                                .next()
                                .context("internal error: fewer features than photos")?,
                        )),
                    }
                    if let Some(b) = &bar {
                        b.inc(1);
                    }
                }
            }
            Ok(embedded)
        };
    let mut locate_all = || -> anyhow::Result<()> {
        if args.trip {
            // Every photo's single-photo answer first, with the top candidates the trip weighs;
            // then the trip; then the output, in the photos' order.
            let trip_k = top_k.max(TRIP_CANDIDATES);
            let mut legs: Vec<TripLeg> = Vec::new();
            for (entry, feature) in embed_all(&mut report)? {
                let (wide, constraint) = predict_features(
                    &[&feature],
                    trip_k,
                    gallery_logits,
                    position_of,
                    None,
                    within_ref,
                )
                .map_err(|e| anyhow!(e))?;
                let options = wide.candidates.iter().map(TripOption::new).collect();
                // The single-photo answer exactly as without --trip.
                let single = if args.refine {
                    predict(&[&feature])?.0
                } else {
                    let mut single = wide;
                    single.candidates.truncate(top_k);
                    single
                };
                match record_of(entry, &single) {
                    Some(mut record) => {
                        record.within = constraint;
                        legs.push(TripLeg {
                            record,
                            options,
                            gps: entry.exif.gps,
                        });
                    }
                    None => report(
                        &entry.path,
                        format!("error: no candidates: {}", entry.path.display()),
                    ),
                }
            }
            let max_speed_kmh = args.trip_max_speed_kmh();
            let (notes, breaks) = solve_trip(&mut legs, max_speed_kmh)?;
            let count = |f: fn(&TripNote) -> bool| notes.iter().filter(|n| f(n)).count();
            let summary = format!(
                "trip: {} photo(s) placed by the trip at up to {max_speed_kmh} km/h, {} anchored \
                 by their own GPS, {} without a capture time left out (their single-photo \
                 answer stays); the path breaks the travel bound {breaks} time(s)",
                count(|n| matches!(n, TripNote::Placed { .. })),
                count(|n| matches!(n, TripNote::Anchor { .. })),
                count(|n| matches!(n, TripNote::NoCaptureTime)),
            );
            match &bar {
                Some(b) => b.suspend(|| eprintln!("{summary}")),
                None => eprintln!("{summary}"),
            }
            for (leg, note) in legs.into_iter().zip(&notes) {
                printer.photo_noted(&leg.record, Some(note))?;
                if hash_rows {
                    let entry = photos.iter().find(|e| e.path == leg.record.path);
                    if let Some(entry) = entry {
                        keep(entry, &leg.record, cluster::file_sha256(&entry.path))?;
                    }
                }
                records.push(leg.record);
            }
            return Ok(());
        }
        if args.together {
            // Every photo's feature first; then one answer for the group.
            let members = embed_all(&mut report)?;
            if members.is_empty() {
                return Ok(());
            }
            let features: Vec<&[f32]> = members.iter().map(|(_, f)| f.as_slice()).collect();
            let (prediction, constraint) = predict(&features)?;
            let group: Vec<PathBuf> = members.iter().map(|(e, _)| e.path.clone()).collect();
            for (entry, _) in &members {
                match record_of(entry, &prediction) {
                    Some(mut record) => {
                        record.group = group.clone();
                        record.within = constraint.clone();
                        match &bar {
                            Some(b) => b.suspend(|| printer.photo(&record))?,
                            None => printer.photo(&record)?,
                        }
                        let sha256 = hash_rows.then(|| cluster::file_sha256(&entry.path));
                        keep(entry, &record, sha256.flatten())?;
                        records.push(record);
                    }
                    None => report(
                        &entry.path,
                        format!("error: no candidates: {}", entry.path.display()),
                    ),
                }
            }
            return Ok(());
        }
        for chunk in photos.chunks(args.batch_size()) {
            // Each photo is decoded and reduced to its 224 x 224 tensor by one rayon worker
            // before that worker decodes the next: at most one decoded photo per worker.
            let (prepared, hashes): (Vec<_>, Vec<_>) = chunk
                .par_iter()
                .map(|p| {
                    let sha256 = hash_rows.then(|| cluster::file_sha256(&p.path));
                    (prepare_photo(&p.path, &cfg), sha256.flatten())
                })
                .unzip();
            let ok: Vec<_> = prepared.iter().filter_map(|r| r.as_ref().ok()).collect();
            let mut predictions = if args.refine || within_ref.is_some() {
                engine
                    .normalized_image_features(&ok)?
                    .iter()
                    .map(|f| predict(&[f]))
                    .collect::<anyhow::Result<Vec<_>>>()?
            } else {
                engine
                    .predict(&ok, top_k)?
                    .into_iter()
                    .map(|p| (p, None))
                    .collect()
            }
            .into_iter();
            for ((entry, prep), sha256) in chunk.iter().zip(&prepared).zip(hashes) {
                if let Err(e) = prep {
                    report(&entry.path, format!("error: {e}"));
                } else {
                    let Some((prediction, constraint)) = predictions.next() else {
                        bail!("internal error: fewer predictions than photos")
                    };
                    if let Some(reason) = &entry.exif.gps_invalid {
                        let line = format!(
                            "warning: invalid EXIF GPS ({reason}): not used as a claim, never \
                             overwritten without --overwrite-invalid-gps: {}",
                            entry.path.display()
                        );
                        match &bar {
                            Some(b) => b.suspend(|| eprintln!("{line}")),
                            None => eprintln!("{line}"),
                        }
                    }
                    match record_of(entry, &prediction) {
                        Some(mut record) => {
                            record.within = constraint;
                            match &bar {
                                Some(b) => b.suspend(|| printer.photo(&record))?,
                                None => printer.photo(&record)?,
                            }
                            keep(entry, &record, sha256)?;
                            records.push(record);
                        }
                        None => report(
                            &entry.path,
                            format!("error: no candidates: {}", entry.path.display()),
                        ),
                    }
                }
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
        }
        Ok(())
    };
    let located = locate_all();
    // Close the output (JSON's bracket, GPX's last tag) even when a batch failed.
    let closed = printer.finish();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    located?;
    closed?;
    if let (Some(mut part), Some(path)) = (part, &args.output) {
        for row in failed_rows {
            part.push(row)?;
        }
        let rows = part.finish()?;
        eprintln!("{rows} photo(s) in {}", path.display());
    }
    log::info!(
        "locate: {} photos located, {} failed",
        records.len(),
        failures.len()
    );
    failures.extend(write_exports(
        dirs,
        &WriteOptions {
            export: &args.export,
            path_style: args.path_style,
            write: &args.write,
        },
        &export_formats,
        &records,
        point_set,
    ));
    if !failures.is_empty() {
        eprintln!("{} input(s) failed; the others are above", failures.len());
    }
    Ok(failures.is_empty())
}

/// `locate`'s results on standard output, written photo by photo as they come and flushed
/// after each, so nothing waits for the last photo.
struct Printer<W: Write> {
    format: OutputFormat,
    paths: PhotoPaths,
    out: W,
    /// For `gpx` and `geojson`: the export pipeline's writer.
    export: Option<ExportWriter>,
    photos: usize,
}

impl<W: Write> Printer<W> {
    /// Writes the opening part (CSV header, JSON's `provenance` and the start of `photos`);
    /// `within` and `trip` add `--within`'s and `--trip`'s CSV columns.
    fn begin(
        format: OutputFormat,
        set: PointSet,
        paths: PhotoPaths,
        mut out: W,
        provenance: &Provenance,
        within: bool,
        trip: bool,
    ) -> anyhow::Result<Self> {
        let export_format = match format {
            OutputFormat::Gpx => Some(ExportFormat::Gpx),
            OutputFormat::Geojson => Some(ExportFormat::GeoJson),
            _ => None,
        };
        let mut export = export_format.map(|f| ExportWriter::new(f, set, paths.clone()));
        match format {
            OutputFormat::Table | OutputFormat::Jsonl | OutputFormat::None => {}
            OutputFormat::Csv => {
                let within = if within {
                    ",within,within_share_inside"
                } else {
                    ""
                };
                let trip = if trip { TRIP_CSV_COLUMNS } else { "" };
                write!(
                    out,
                    "path,rank,lat_deg,lon_deg,probability,gallery_index,path_bytes_hex,\
                     refined_lat_deg,refined_lon_deg,refined_similarity,group_size{within}{trip}{CSV_LINE_END}"
                )?
            }
            OutputFormat::Json => {
                let mut head = String::from("{\n  \"provenance\": ");
                let provenance = serde_json::to_string_pretty(provenance)?;
                head.push_str(&provenance.replace('\n', "\n  "));
                head.push_str(",\n  \"places_attribution\": ");
                head.push_str(&serde_json::to_string(crate::geo::PLACES_ATTRIBUTION)?);
                head.push_str(",\n  \"photos\": [");
                out.write_all(head.as_bytes())?;
            }
            OutputFormat::Gpx | OutputFormat::Geojson => {
                if let Some(w) = &mut export {
                    w.begin(&mut out)?;
                }
            }
        }
        out.flush()?;
        Ok(Self {
            format,
            paths,
            out,
            export,
            photos: 0,
        })
    }

    /// One photo's result, flushed.
    fn photo(&mut self, record: &ExportRecord) -> anyhow::Result<()> {
        self.photo_noted(record, None)
    }

    /// One photo's result with what `locate --trip` did with it, flushed.
    fn photo_noted(
        &mut self,
        record: &ExportRecord,
        trip: Option<&TripNote>,
    ) -> anyhow::Result<()> {
        let json = |record| PhotoJson {
            trip,
            ..PhotoJson::new(record, &self.paths)
        };
        match self.format {
            OutputFormat::Table => {
                write_table(&mut self.out, &self.paths, record)?;
                if let Some(note) = trip {
                    write_trip_lines(&mut self.out, record, note)?;
                }
            }
            OutputFormat::Csv => {
                let extra = trip.map(|n| trip_csv_fields(record, n)).unwrap_or_default();
                write_csv(&mut self.out, &self.paths, record, &extra)?
            }
            OutputFormat::Json => {
                let mut item = String::from(if self.photos == 0 { "\n" } else { ",\n" });
                export::push_indented(&mut item, &json(record), 4);
                self.out.write_all(item.as_bytes())?;
            }
            OutputFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, &json(record))?;
                writeln!(self.out)?;
            }
            OutputFormat::Gpx | OutputFormat::Geojson => {
                if let Some(w) = &mut self.export {
                    w.record(&mut self.out, record)?;
                }
            }
            OutputFormat::None => {}
        }
        self.photos += 1;
        self.out.flush()?;
        Ok(())
    }

    /// Writes the closing part.
    fn finish(mut self) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Json => {
                let tail = if self.photos == 0 {
                    "]\n}\n"
                } else {
                    "\n  ]\n}\n"
                };
                self.out.write_all(tail.as_bytes())?;
            }
            OutputFormat::Gpx | OutputFormat::Geojson => {
                if let Some(w) = &mut self.export {
                    w.end(&mut self.out)?;
                }
            }
            OutputFormat::Table | OutputFormat::Csv | OutputFormat::Jsonl | OutputFormat::None => {}
        }
        self.out.flush()?;
        Ok(())
    }
}

/// One photo in `--format json` (an item of `photos`) and `--format jsonl` (a line).
#[derive(serde::Serialize)]
struct PhotoJson<'a> {
    /// The path as `--paths` says; lossy when `path_bytes_hex` is present.
    path: String,
    /// The path's exact bytes, only when it isn't plain UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes_hex: Option<String>,
    candidates: &'a [ExportCandidate],
    place: Option<&'a Place>,
    claim: Option<&'a ClaimCheck>,
    taken_at: Option<String>,
    provenance: &'a Provenance,
    estimated_at: &'a str,
    /// The exported location (the top-1's refined point with `--refine`) and which point it is.
    location: crate::geo::LatLon,
    location_kind: Option<PointKind>,
    /// With `--together`: the group this photo was located with (its candidates are the
    /// group's).
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<GroupJson>,
    /// The region the answer was restricted to (`--within`) and the share of belief inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    within: Option<&'a RegionConstraint>,
    /// Where `location` came from (`estimate`, or `trip` with the single-photo answer).
    origin: &'a Origin,
    /// With `--trip`: what the trip did with this photo.
    #[serde(skip_serializing_if = "Option::is_none")]
    trip: Option<&'a TripNote>,
}

/// A `--together` group in `--format json`.
#[derive(serde::Serialize)]
struct GroupJson {
    size: usize,
    /// Paths as `--paths` says.
    members: Vec<String>,
}

impl<'a> PhotoJson<'a> {
    fn new(record: &'a ExportRecord, paths: &PhotoPaths) -> Self {
        let path = paths.text(&record.path);
        Self {
            path: path.text,
            path_bytes_hex: path.bytes_hex,
            candidates: &record.candidates,
            place: record.place.as_ref(),
            claim: record.claim.as_ref(),
            taken_at: record.taken_at.as_ref().map(|t| t.local_with_offset()),
            provenance: &record.provenance,
            estimated_at: &record.estimated_at,
            location: record.location,
            location_kind: record.location_kind,
            group: (!record.group.is_empty()).then(|| GroupJson {
                size: record.group.len(),
                members: record.group.iter().map(|p| paths.text(p).text).collect(),
            }),
            within: record.within.as_ref(),
            origin: &record.origin,
            trip: None,
        }
    }
}

fn write_table(
    out: &mut impl Write,
    paths: &PhotoPaths,
    record: &ExportRecord,
) -> std::io::Result<()> {
    let path = paths.text(&record.path);
    writeln!(out, "{}", path.text)?;
    if let Some(hex) = &path.bytes_hex {
        writeln!(out, "  path bytes (hex): {hex}")?;
    }
    if let Some(within) = &record.within {
        writeln!(
            out,
            "  within {}: {}; candidates from inside only",
            within.spec,
            within.sentence()
        )?;
    }
    writeln!(
        out,
        "  {:>4}  {:>10}  {:>11}  {:>11}  nearest place",
        "rank", "lat_deg", "lon_deg", "probability"
    )?;
    // With --refine, each gallery row is followed by its refined point (`ref`).
    for c in &record.candidates {
        let place = c.place.as_ref().map(|p| p.describe()).unwrap_or_default();
        writeln!(
            out,
            "  {:>4}  {:>10.5}  {:>11.5}  {:>11.6}  {place}",
            c.rank, c.position.lat_deg, c.position.lon_deg, c.probability
        )?;
        if let Some(r) = &c.refined {
            let place = r.place.as_ref().map(|p| p.describe()).unwrap_or_default();
            writeln!(
                out,
                "   ref  {:>10.5}  {:>11.5}  sim {:>7.4}  refined point ({:.2} km from the gallery point) {place}",
                r.position.lat_deg,
                r.position.lon_deg,
                r.similarity,
                r.position.distance_km(&c.position)
            )?;
        }
    }
    if !record.group.is_empty() {
        writeln!(
            out,
            "  located together with {} photo(s): the group's candidates",
            record.group.len()
        )?;
    }
    if let Some(claim) = &record.claim {
        writeln!(
            out,
            "  claimed ({}) {}: {:.1} km from the top candidate; {:.1}% of the probability within 25 km, {:.1}% within 200 km",
            claim.source.as_str(),
            claim.claimed,
            claim.top1_distance_km,
            100.0 * claim.probability_within_25_km,
            100.0 * claim.probability_within_200_km
        )?;
    }
    Ok(())
}

/// One row per candidate; `extra` (`,a,b`: `--trip`'s fields) ends every row.
fn write_csv(
    out: &mut impl Write,
    paths: &PhotoPaths,
    record: &ExportRecord,
    extra: &str,
) -> std::io::Result<()> {
    let path = paths.text(&record.path);
    let (p, hex) = (
        export::csv::csv_field(&path.text),
        path.bytes_hex.unwrap_or_default(),
    );
    let group_size = if record.group.is_empty() {
        String::new()
    } else {
        record.group.len().to_string()
    };
    let within = record
        .within
        .as_ref()
        .map(|w| format!(",{},{:.6}", export::csv::csv_field(&w.spec), w.share_inside))
        .unwrap_or_default();
    for c in &record.candidates {
        let refined = c
            .refined
            .as_ref()
            .map(|r| {
                format!(
                    "{:.6},{:.6},{:.6}",
                    r.position.lat_deg, r.position.lon_deg, r.similarity
                )
            })
            .unwrap_or_else(|| ",,".to_owned());
        write!(
            out,
            "{p},{},{:.6},{:.6},{:.8},{},{hex},{refined},{group_size}{within}{extra}{CSV_LINE_END}",
            c.rank, c.position.lat_deg, c.position.lon_deg, c.probability, c.gallery_index
        )?;
    }
    Ok(())
}

/// How many candidates per photo a trip weighs (`locate --trip`): GeoCLIP's right answer is
/// among its top 200 far more often than among its top 5, and 200 keeps 5,000 photos within
/// the trip's time and memory targets (`geoloupe bench --trip`).
const TRIP_CANDIDATES: usize = 200;

/// `locate --trip --format csv`'s columns after the others (the same on every row of a photo).
const TRIP_CSV_COLUMNS: &str = ",origin,trip_lat_deg,trip_lon_deg,trip_posterior,\
                                single_photo_lat_deg,single_photo_lon_deg";

/// One of a photo's candidates as the trip weighs it.
#[derive(Clone, Copy, Debug)]
struct TripOption {
    rank: usize,
    gallery_index: usize,
    position: LatLon,
    probability: f32,
}

impl TripOption {
    fn new(c: &Candidate) -> Self {
        Self {
            rank: c.rank,
            gallery_index: c.gallery_index,
            position: c.position,
            probability: c.probability,
        }
    }
}

/// One located photo of a `locate --trip` run.
struct TripLeg {
    /// Its single-photo answer; the trip then sets `location` and `origin`.
    record: ExportRecord,
    /// Its top [`TRIP_CANDIDATES`] candidates.
    options: Vec<TripOption>,
    /// Its own EXIF GPS, which anchors the trip.
    gps: Option<LatLon>,
}

/// What the trip did with one photo: `trip` in JSON, lines in the table, columns in CSV.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
enum TripNote {
    /// The trip placed it: `location` is the trip's point (Viterbi path), `origin` says `trip`
    /// with the single-photo answer. `posterior` is the point's posterior probability,
    /// `posterior_within_25_km` that of all the photo's candidates within 25 km of it (GeoCLIP's
    /// neighbouring gallery points share the belief in one place), `rank` its rank in the
    /// photo's own single-photo ranking.
    Placed {
        posterior: f32,
        posterior_within_25_km: f32,
        rank: usize,
        gallery_index: usize,
        km_from_single_photo: f64,
    },
    /// Its own EXIF GPS anchored the trip; its record keeps the single-photo answer.
    Anchor { gps: LatLon },
    /// No capture time: left out of the trip; its single-photo answer stays.
    NoCaptureTime,
}

/// Solves `locate --trip` over `legs` ([`crate::geo::trip::solve`]) and sets each placed
/// photo's location (the chosen candidate's refined point when it was refined) and origin.
/// Times are UTC when every photo's camera recorded its offset, else the cameras' local clocks.
/// Returns each leg's note and how many times the path breaks the travel bound.
fn solve_trip(
    legs: &mut [TripLeg],
    max_speed_kmh: f64,
) -> Result<(Vec<TripNote>, usize), crate::geo::trip::TripError> {
    use crate::geo::trip::{TravelModel, TripPhoto, solve};
    let utc = legs
        .iter()
        .filter_map(|l| l.record.taken_at.as_ref())
        .all(|t| t.utc_offset_minutes.is_some());
    let mut notes = vec![TripNote::NoCaptureTime; legs.len()];
    let mut members = Vec::new();
    let mut photos = Vec::new();
    for (i, leg) in legs.iter().enumerate() {
        let time = leg.record.taken_at.as_ref().and_then(|t| {
            if utc {
                t.utc_unix_secs()
            } else {
                t.local_clock_secs()
            }
        });
        let Some(time) = time else { continue };
        let photo = match leg.gps {
            Some(gps) => {
                notes[i] = TripNote::Anchor { gps };
                TripPhoto::anchored(time as f64, gps)
            }
            None if leg.options.is_empty() => continue,
            None => TripPhoto::from_probabilities(
                time as f64,
                leg.options.iter().map(|o| (o.position, o.probability)),
            ),
        };
        members.push(i);
        photos.push(photo);
    }
    let trip = solve(&photos, &TravelModel::new(max_speed_kmh))?;
    for (m, &i) in members.iter().enumerate() {
        let leg = &mut legs[i];
        if leg.gps.is_some() {
            continue;
        }
        let chosen = leg.options[trip.path[m]];
        let single = leg.record.location;
        let (location, kind) = leg
            .record
            .candidates
            .iter()
            .find(|c| c.gallery_index == chosen.gallery_index)
            .and_then(|c| c.refined.as_ref())
            .map_or((chosen.position, PointKind::Gallery), |r| {
                (r.position, PointKind::Refined)
            });
        leg.record.location = location;
        leg.record.location_kind = Some(kind);
        leg.record.place = crate::geo::nearest_place(location);
        leg.record.origin = Origin::Trip {
            max_speed_kmh,
            single_photo: single,
        };
        let posterior_within_25_km = leg
            .options
            .iter()
            .zip(&trip.marginals[m])
            .filter(|(o, _)| o.position.distance_km(&chosen.position) <= 25.0)
            .map(|(_, p)| p)
            .sum::<f32>()
            .min(1.0);
        notes[i] = TripNote::Placed {
            posterior: trip.path_posterior(m),
            posterior_within_25_km,
            rank: chosen.rank,
            gallery_index: chosen.gallery_index,
            km_from_single_photo: location.distance_km(&single),
        };
    }
    Ok((notes, trip.breaks))
}

/// `locate --trip`'s lines in the table, after the candidates.
fn write_trip_lines(
    out: &mut impl Write,
    record: &ExportRecord,
    note: &TripNote,
) -> std::io::Result<()> {
    match (note, &record.origin) {
        (
            TripNote::Placed {
                posterior,
                posterior_within_25_km,
                rank,
                km_from_single_photo,
                ..
            },
            Origin::Trip { single_photo, .. },
        ) => {
            let place = record
                .place
                .as_ref()
                .map(|p| format!(" ({})", p.describe()))
                .unwrap_or_default();
            writeln!(
                out,
                "  {}: {}{place}, posterior {posterior:.4} ({posterior_within_25_km:.4} within 25 km), single-photo rank {rank}",
                record.origin.describe(),
                record.location
            )?;
            writeln!(
                out,
                "  single-photo answer: {single_photo} ({km_from_single_photo:.1} km from the trip's point)"
            )
        }
        (TripNote::Anchor { gps }, _) => {
            writeln!(out, "  trip: anchored by its own GPS {gps}")
        }
        _ => writeln!(
            out,
            "  trip: left out (no capture time); the single-photo answer stays"
        ),
    }
}

/// `locate --trip --format csv`'s fields for one photo ([`TRIP_CSV_COLUMNS`]).
fn trip_csv_fields(record: &ExportRecord, note: &TripNote) -> String {
    let single = match &record.origin {
        Origin::Trip { single_photo, .. } => *single_photo,
        _ => record.location,
    };
    match note {
        TripNote::Placed { posterior, .. } => format!(
            ",{},{:.6},{:.6},{posterior:.6},{:.6},{:.6}",
            record.origin.as_str(),
            record.location.lat_deg,
            record.location.lon_deg,
            single.lat_deg,
            single.lon_deg
        ),
        _ => format!(
            ",{},,,,{:.6},{:.6}",
            record.origin.as_str(),
            single.lat_deg,
            single.lon_deg
        ),
    }
}

/// The format of each `--export` file, by extension; a name without a known one is an error
/// before anything runs.
fn export_formats(paths: &[PathBuf]) -> anyhow::Result<Vec<ExportFormat>> {
    paths
        .iter()
        .map(|p| {
            ExportFormat::from_path(p).ok_or_else(|| {
                anyhow!(
                    "--export needs a .gpx, .csv or .geojson file name: {}",
                    p.display()
                )
            })
        })
        .collect()
}

/// `--export`, `--xmp-sidecars`, `--write-exif` (or, with `--dry-run`, what they would write).
/// Progress goes to stderr; returns one line per failure.
/// What `locate` and `geotag` write besides standard output: export files and write-backs.
struct WriteOptions<'a> {
    export: &'a [PathBuf],
    path_style: PathStyle,
    write: &'a WriteArgs,
}

fn write_exports(
    dirs: &DataDirs,
    args: &WriteOptions<'_>,
    formats: &[ExportFormat],
    records: &[ExportRecord],
    set: PointSet,
) -> Vec<String> {
    let mut failures = Vec::new();
    let dry = if args.write.dry_run {
        "dry run: would "
    } else {
        ""
    };
    for (path, format) in args.export.iter().zip(formats) {
        if args.write.dry_run {
            let text = format.render(records, set, &PhotoPaths::for_file(args.path_style, path));
            eprintln!(
                "{dry}write {format:?} ({} photos, {} bytes): {}",
                records.len(),
                text.len(),
                path.display()
            );
        } else {
            match export::write_export(path, records, set, args.path_style) {
                Ok(format) => eprintln!(
                    "wrote {format:?} ({} photos): {}",
                    records.len(),
                    path.display()
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    failures.push(format!("error: {e}"));
                }
            }
        }
    }
    let mut write_backs = Vec::new();
    if args.write.xmp_sidecars {
        write_backs.push(WriteBack::XmpSidecars(match args.write.sidecar_style {
            SidecarNaming::PhotoJpgXmp => SidecarStyle::AppendXmp,
            SidecarNaming::PhotoXmp => SidecarStyle::ReplaceExtension,
        }));
    }
    if args.write.write_exif {
        write_backs.push(WriteBack::ExifGps);
    }
    let backups = BackupStore::in_data_dir(&dirs.data_dir);
    for write_back in write_backs {
        if args.write.dry_run {
            for p in write_back.plan(records) {
                eprintln!("{dry}{p}");
            }
            continue;
        }
        for r in write_back.write(records, &backups) {
            match r {
                Ok(p) => eprintln!("{p}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    failures.push(format!("error: {e}"));
                }
            }
        }
    }
    failures
}

fn backups(dirs: &DataDirs, cmd: &BackupsCommand) -> anyhow::Result<()> {
    let store = BackupStore::in_data_dir(&dirs.data_dir);
    match cmd {
        BackupsCommand::List => {
            let entries = store.list()?;
            if entries.is_empty() {
                println!("no backups in {}", store.dir().display());
            }
            for b in entries {
                println!(
                    "{}  {:>10} bytes  {} <- {}",
                    b.created_at,
                    b.size_bytes,
                    b.original.display(),
                    b.backup.display()
                );
            }
        }
        BackupsCommand::Clear => {
            let n = store.clear()?;
            println!("deleted {n} backup(s) from {}", store.dir().display());
        }
        BackupsCommand::Restore => {
            let reports = store.restore_all()?;
            for r in &reports {
                println!("{}: {}", r.outcome, r.entry.original.display());
            }
            let count =
                |f: fn(&RestoreOutcome) -> bool| reports.iter().filter(|r| f(&r.outcome)).count();
            let (restored, skipped) = (
                count(RestoreOutcome::is_restored),
                count(RestoreOutcome::is_skipped),
            );
            let failed = reports.len() - restored - skipped;
            println!("restored {restored}, skipped {skipped}, failed {failed}");
            if skipped > 0 {
                println!(
                    "the originals of skipped photos stay in {} (`geoloupe backups clear` deletes them)",
                    store.dir().display()
                );
            }
            if failed > 0 {
                bail!("{failed} original(s) could not be restored");
            }
        }
    }
    Ok(())
}

fn model(dirs: &DataDirs, cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Import { source } => {
            eprintln!("Importing {} ...", source.display());
            let report = files::import(&source, dirs)
                .with_context(|| format!("import failed: {}", source.display()))?;
            println!("Installed the {} in {}", report.kind, report.dir.display());
            for f in &report.files {
                println!(
                    "  {:<28} {:>12} bytes  sha256 {}",
                    f.name, f.size_bytes, f.sha256
                );
            }
            Ok(())
        }
        ModelCommand::Download {
            yes,
            offline,
            endpoint,
            hf_cache,
        } => download_models(dirs, yes, offline, endpoint, hf_cache),
        ModelCommand::Prepare { model } => {
            let started = std::time::Instant::now();
            let paths = model.paths(dirs);
            let engine = load_engine(&paths, &model.device.device()?, model.precision)?;
            let provenance = engine.provenance(model.device);
            let cache = crate::model::gallery::cache_path(
                &paths.gallery_cache_dir,
                &provenance.weights_sha256,
                &provenance.gallery_sha256,
            );
            println!(
                "The gallery's {} features are cached in {} ({:.1} s); mount {} read-only on \
                 the workers",
                engine.gallery().coords_lat_lon_deg.len(),
                cache.display(),
                started.elapsed().as_secs_f64(),
                dirs.data_dir.display()
            );
            Ok(())
        }
        ModelCommand::Info { verify, json } => {
            let info = files::info(dirs, verify);
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
                return Ok(());
            }
            println!("data folder: {}", dirs.data_dir.display());
            println!("cache folder: {}", dirs.cache_dir.display());
            println!("settings: {}", dirs.settings_file().display());
            for c in &info {
                let state = if c.installed {
                    if verify {
                        "installed, verified"
                    } else {
                        "installed"
                    }
                } else {
                    "MISSING"
                };
                println!("\n{}: {state}\n  folder: {}", c.name, c.dir.display());
                if let Some(detail) = &c.detail {
                    println!("  model:  {detail}");
                }
                for f in &c.files {
                    println!(
                        "  {:<28} {:>12} bytes  sha256 {}",
                        f.name, f.size_bytes, f.sha256
                    );
                }
                if let Some(problem) = &c.problem {
                    println!("  problem: {problem}");
                }
                if let Some(fix) = &c.fix {
                    println!("  to fix:  {fix}");
                }
                if c.partial_download_bytes > 0 {
                    println!(
                        "  an interrupted download left {} bytes: `geoloupe model download` resumes it",
                        c.partial_download_bytes
                    );
                }
            }
            let cache = dirs.gallery_cache_dir();
            let cached = std::fs::read_dir(&cache)
                .map(|d| d.flatten().count())
                .unwrap_or(0);
            println!(
                "\ngallery feature cache: {cached} file(s) in {}",
                cache.display()
            );
            Ok(())
        }
    }
}

struct BarProgress {
    bar: Option<indicatif::ProgressBar>,
    /// No byte count seen yet for the current file (the first one may be a resume's offset).
    first_bytes: bool,
}

impl download::DownloadProgress for BarProgress {
    fn file_started(&mut self, file: &str, total_bytes: Option<u64>) {
        let bar = indicatif::ProgressBar::with_draw_target(
            total_bytes,
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(file.to_owned());
        self.bar = Some(bar);
        self.first_bytes = true;
    }
    fn bytes(&mut self, _file: &str, done_bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done_bytes);
            if std::mem::take(&mut self.first_bytes) {
                // A resumed file starts part-way: its speed counts from here, not from 0.
                b.reset_eta();
            }
        }
    }
    fn file_finished(&mut self, _file: &str) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
    }
}

fn download_models(
    dirs: &DataDirs,
    yes: bool,
    offline: bool,
    endpoint: Option<String>,
    hf_cache: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut options = download::DownloadOptions::from_env();
    options.offline |= offline;
    if endpoint.is_some() {
        options.endpoint = endpoint;
    }
    if hf_cache.is_some() {
        options.cache_dir = hf_cache;
    }
    let repos = files::hub_repos();
    if !options.offline && !yes {
        let endpoint = options
            .endpoint
            .clone()
            .unwrap_or_else(|| "https://huggingface.co".into());
        eprintln!("This downloads about 1.9 GB from {endpoint}:");
        for r in &repos {
            eprintln!("  {} @ {}: {}", r.repo_id, r.revision, r.files.join(", "));
        }
        if !std::io::stdin().is_terminal() {
            bail!("not confirmed: run `geoloupe model download --yes` to download without asking");
        }
        eprint!("Download now? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            bail!("download cancelled");
        }
    }
    let mut progress = BarProgress {
        bar: None,
        first_bytes: true,
    };
    let never = std::sync::atomic::AtomicBool::new(false);
    let reports = files::download_and_install(dirs, &options, &mut progress, &never)
        .context("downloading the model files")?;
    for report in reports {
        println!("Installed the {} in {}", report.kind, report.dir.display());
    }
    Ok(())
}

fn bench(dirs: &DataDirs, args: &BenchArgs) -> anyhow::Result<()> {
    if args.trip {
        let report =
            crate::model::bench::run_trip(args.trip_photos, args.trip_candidates, args.repeats)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        return Ok(());
    }
    let device = args.device.device()?;
    if args.heat_grid {
        let report =
            crate::model::bench::run_heat_grid(dirs, &device, [1280, 800], 10.0, &mut |line| {
                eprintln!("{line}")
            })?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        return Ok(());
    }
    let options = crate::model::bench::BenchOptions {
        batch_sizes: args.batch_sizes.clone(),
        repeats: args.repeats,
        precisions: match args.precision {
            Some(precision) => vec![precision],
            None => vec![Precision::Exact, Precision::Bf16],
        },
        ..Default::default()
    };
    let report =
        crate::model::bench::run(&options, dirs, &device, &mut |line| eprintln!("{line}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::Path;
    use std::rc::Rc;

    use super::*;
    use crate::geo::LatLon;
    use crate::model::Candidate;

    #[test]
    fn iptc_location_goes_with_xmp_sidecars() {
        use clap::Parser as _;
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["geoloupe", "locate", "--iptc-location", "a.jpg"]).is_err());
        let cli = parse(&[
            "geoloupe",
            "locate",
            "--xmp-sidecars",
            "--iptc-location",
            "a.jpg",
        ]);
        match cli.map(|c| c.command) {
            Ok(Some(Command::Locate(args))) => {
                assert!(args.write.iptc_location && args.write.xmp_sidecars)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn locate_batches_32_photos_on_a_gpu_and_8_on_the_cpu_unless_told() {
        use clap::Parser as _;
        let batch = |args: &[&str]| {
            let argv = ["geoloupe", "locate", "a.jpg"].iter().chain(args).copied();
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Some(Command::Locate(args))) => args.batch_size(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(batch(&[]), 8);
        assert_eq!(batch(&["--device", "cuda"]), DeviceChoice::GPU_BATCH);
        assert_eq!(batch(&["--device", "metal"]), DeviceChoice::GPU_BATCH);
        assert_eq!(batch(&["--device", "cuda", "--batch-size", "3"]), 3);
        assert_eq!(batch(&["--batch-size", "1"]), 1);
        let zero = ["geoloupe", "locate", "a.jpg", "--batch-size", "0"];
        assert!(Cli::try_parse_from(zero).is_err());
    }

    #[test]
    fn locate_and_the_app_run_exact_unless_fast_mode_is_asked_for() {
        use clap::Parser as _;
        let precision = |args: &[&str]| {
            let argv = ["geoloupe", "locate", "a.jpg"].iter().chain(args).copied();
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Some(Command::Locate(args))) => args.model.precision,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(precision(&[]), Precision::Exact);
        assert_eq!(precision(&["--device", "cuda"]), Precision::Exact);
        assert_eq!(precision(&["--precision", "bf16"]), Precision::Bf16);
        assert_eq!(precision(&["--precision", "exact"]), Precision::Exact);
        let typo = ["geoloupe", "locate", "a.jpg", "--precision", "fp8"];
        assert!(Cli::try_parse_from(typo).is_err());
        #[cfg(feature = "app")]
        {
            assert_eq!(crate::app::Settings::default().precision, Precision::Exact);
            // Settings written before fast mode existed read as exact.
            let old: crate::app::Settings = serde_json::from_str(r#"{"top_k": 7}"#).unwrap();
            assert_eq!((old.top_k, old.precision), (7, Precision::Exact));
        }
    }

    /// A writer that shows only what was flushed.
    #[derive(Default)]
    struct FlushLog {
        pending: Vec<u8>,
        flushed: Rc<RefCell<Vec<u8>>>,
    }

    impl Write for FlushLog {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.pending.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.flushed.borrow_mut().append(&mut self.pending);
            Ok(())
        }
    }

    fn record(name: &str) -> ExportRecord {
        let candidates = [Candidate {
            rank: 1,
            gallery_index: 7,
            position: LatLon::new(48.85, 2.35),
            probability: 0.5,
            refined: None,
        }];
        ExportRecord::new(
            Path::new(name),
            &candidates,
            provenance(),
            "2026-11-30T00:00:00Z".into(),
            None,
            None,
        )
        .unwrap()
    }

    fn provenance() -> Provenance {
        Provenance {
            model: "GeoCLIP".into(),
            weights_sha256: "a".repeat(64),
            gallery_sha256: "b".repeat(64),
            backbone: "clip".into(),
            backbone_sha256: None,
            device: "cpu".into(),
        }
    }

    #[test]
    fn each_photo_is_flushed_complete_before_the_next() {
        let engine_provenance = provenance();
        for format in OutputFormat::value_variants() {
            let log = FlushLog::default();
            let flushed = Rc::clone(&log.flushed);
            let text = || String::from_utf8(flushed.borrow().clone()).unwrap();
            let mut printer = Printer::begin(
                *format,
                PointSet::AllCandidates,
                PhotoPaths::as_recorded(),
                log,
                &engine_provenance,
                false,
                false,
            )
            .unwrap();
            printer.photo(&record("first.jpg")).unwrap();
            let after_one = text();
            if *format == OutputFormat::None {
                assert_eq!(after_one, "", "--format none prints nothing");
                continue;
            }
            assert!(after_one.contains("first.jpg"), "{format:?}: {after_one}");
            // Only the closing part is missing.
            match format {
                OutputFormat::Json => {
                    let v: serde_json::Value =
                        serde_json::from_str(&format!("{after_one}\n  ]\n}}")).unwrap();
                    assert_eq!(v["photos"][0]["path"], "first.jpg");
                }
                OutputFormat::Jsonl => {
                    let v: serde_json::Value = serde_json::from_str(&after_one).unwrap();
                    assert_eq!(v["path"], "first.jpg");
                }
                _ => {}
            }
            printer.photo(&record("second.jpg")).unwrap();
            assert!(text().starts_with(&after_one) && text().contains("second.jpg"));
            printer.finish().unwrap();
            let whole = text();
            match format {
                OutputFormat::Json | OutputFormat::Geojson => {
                    serde_json::from_str::<serde_json::Value>(&whole).unwrap();
                }
                OutputFormat::Jsonl => assert_eq!(whole.lines().count(), 2),
                OutputFormat::Gpx => assert!(whole.ends_with("</gpx>\n")),
                // RFC 4180 line ends on every system.
                OutputFormat::Csv => {
                    assert_eq!(whole.matches(CSV_LINE_END).count(), 3, "{whole:?}");
                    assert_eq!(whole.matches('\n').count(), 3, "{whole:?}");
                }
                OutputFormat::Table | OutputFormat::None => {}
            }
        }
    }

    #[test]
    fn claimed_reads_what_the_app_reads() {
        assert_eq!(parse_claimed("-33.8,151.2"), Ok(LatLon::new(-33.8, 151.2)));
        assert_eq!(
            parse_claimed("22.07 N, 159.5 W"),
            Ok(LatLon::new(22.07, -159.5))
        );
        let lihue = parse_claimed("Lihue, Hawaii").unwrap();
        assert!(lihue.distance_km(&LatLon::new(21.98, -159.37)) < 2.0);
        let ambiguous = parse_claimed("Springfield").unwrap_err();
        assert!(
            ambiguous.contains("add the region or country"),
            "{ambiguous}"
        );
        assert!(parse_claimed("91,0").unwrap_err().contains("latitude 91"));
    }
    /// A leg of a trip: single-photo candidates `(lat, lon, probability)`, ranked as given.
    fn leg(name: &str, taken: Option<&str>, options: &[(f64, f64, f32)]) -> TripLeg {
        let candidates: Vec<Candidate> = options
            .iter()
            .enumerate()
            .map(|(i, &(lat, lon, probability))| Candidate {
                rank: i + 1,
                gallery_index: 100 + i,
                position: LatLon::new(lat, lon),
                probability,
                refined: None,
            })
            .collect();
        let mut record = ExportRecord::new(
            Path::new(name),
            &candidates[..1],
            provenance(),
            "2026-11-30T00:00:00Z".into(),
            None,
            None,
        )
        .unwrap();
        record.taken_at = taken.and_then(crate::export::TakenAt::from_exif_text);
        TripLeg {
            record,
            options: candidates.iter().map(TripOption::new).collect(),
            gps: None,
        }
    }

    /// A minute after a photo sure of Paris, one whose single answer is Sydney (0.6) and whose
    /// second is Paris (0.4) is placed in Paris by car, its single answer kept beside; a photo
    /// without a capture time is left as it was; one with GPS anchors the trip.
    #[test]
    fn a_trip_moves_the_location_and_keeps_the_single_answer() {
        let mut legs = vec![
            leg(
                "paris.jpg",
                Some("2024-05-01T10:00:00"),
                &[(48.85, 2.35, 0.9)],
            ),
            leg(
                "odd.jpg",
                Some("2024-05-01T10:01:00"),
                &[(-33.87, 151.21, 0.6), (48.86, 2.34, 0.4)],
            ),
            leg("untimed.jpg", None, &[(40.0, -74.0, 0.9)]),
        ];
        let (notes, breaks) = solve_trip(&mut legs, 130.0).unwrap();
        assert_eq!(breaks, 0);
        let odd = &legs[1].record;
        assert_eq!(odd.location, LatLon::new(48.86, 2.34));
        assert_eq!(
            odd.origin,
            Origin::Trip {
                max_speed_kmh: 130.0,
                single_photo: LatLon::new(-33.87, 151.21)
            }
        );
        assert_eq!(odd.location_kind, Some(PointKind::Gallery));
        assert!(odd.place.as_ref().is_some_and(|p| p.country_code == "FR"));
        match &notes[1] {
            TripNote::Placed {
                posterior,
                posterior_within_25_km,
                rank,
                gallery_index,
                km_from_single_photo,
            } => {
                assert!(*posterior > 0.99);
                assert_eq!(posterior, posterior_within_25_km);
                assert_eq!((*rank, *gallery_index), (2, 101));
                assert!(*km_from_single_photo > 16_000.0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(notes[2], TripNote::NoCaptureTime);
        assert_eq!(legs[2].record.origin, Origin::Estimate);
        assert_eq!(legs[2].record.location, LatLon::new(40.0, -74.0));
        // Its table lines and CSV fields carry both answers.
        let mut table = Vec::new();
        write_trip_lines(&mut table, odd, &notes[1]).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.contains("trip posterior (up to 130 km/h): 48.86000°N 2.34000°E"));
        assert!(table.contains("single-photo rank 2"), "{table}");
        assert!(
            table.contains("single-photo answer: 33.87000°S 151.21000°E"),
            "{table}"
        );
        assert!(trip_csv_fields(odd, &notes[1]).starts_with(",trip,48.860000,2.340000,0.99"));
        // The exported point is the chosen candidate (rank 2 here), when it is shown.
        assert_eq!(odd.chosen_candidate(), None, "only rank 1 is in the record");

        // An anchor: a photo with its own GPS in Sydney a minute before makes Sydney win.
        let mut legs = vec![
            leg("phone.jpg", Some("2024-05-01T10:00:00"), &[(0.0, 0.0, 1.0)]),
            leg(
                "odd.jpg",
                Some("2024-05-01T10:01:00"),
                &[(48.86, 2.34, 0.6), (-33.86, 151.2, 0.4)],
            ),
        ];
        legs[0].gps = Some(LatLon::new(-33.87, 151.21));
        let (notes, _) = solve_trip(&mut legs, 130.0).unwrap();
        assert_eq!(
            notes[0],
            TripNote::Anchor {
                gps: LatLon::new(-33.87, 151.21)
            }
        );
        assert_eq!(legs[0].record.origin, Origin::Estimate);
        assert_eq!(legs[1].record.location, LatLon::new(-33.86, 151.2));
    }

    #[test]
    fn trip_speeds_come_from_max_speed_or_travel() {
        use clap::Parser as _;
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let speed = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Some(Command::Locate(args))) => args.trip_max_speed_kmh(),
            other => panic!("{other:?}"),
        };
        assert_eq!(speed(&["geoloupe", "locate", "--trip", "a.jpg"]), 130.0);
        assert_eq!(
            speed(&["geoloupe", "locate", "--trip", "--travel", "plane", "a.jpg"]),
            950.0
        );
        assert_eq!(
            speed(&[
                "geoloupe",
                "locate",
                "--trip",
                "--max-speed",
                "45.5",
                "a.jpg"
            ]),
            45.5
        );
        assert!(parse(&["geoloupe", "locate", "--max-speed", "45", "a.jpg"]).is_err());
        assert!(parse(&["geoloupe", "locate", "--trip", "--max-speed", "-3", "a.jpg"]).is_err());
        assert!(
            parse(&[
                "geoloupe",
                "locate",
                "--trip",
                "--together",
                "a.jpg",
                "b.jpg"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "geoloupe",
                "locate",
                "--trip",
                "--travel",
                "car",
                "--max-speed",
                "9",
                "a.jpg"
            ])
            .is_err()
        );
    }
}
