//! The headless command line: `geoloupe locate`, `geoloupe model ...`, `geoloupe bench`.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rayon::prelude::*;

use crate::export::csv::render_csv;
use crate::export::exif_write::{BackupStore, RestoreOutcome};
use crate::export::geojson::render_geojson;
use crate::export::gpx::render_gpx;
use crate::export::xmp::SidecarStyle;
use crate::export::{self, ExportProvenance, ExportRecord, PointSet};
use crate::geo::ClaimSource;
use crate::model::engine::{LoadEvent, ModelPaths, prepare_photo};
use crate::model::files::{self, DataDirs};
use crate::model::{DeviceChoice, GeoClip, Prediction, download};

/// File extensions `locate` picks up when walking a folder.
pub const PHOTO_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "tif", "tiff", "gif", "bmp"];

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

/// `LAT,LON` in degrees.
fn parse_lat_lon(text: &str) -> Result<crate::geo::LatLon, String> {
    let (lat, lon) = text
        .split_once(',')
        .ok_or_else(|| format!("expected LAT,LON (e.g. 48.8566,2.3522), got {text:?}"))?;
    let parse = |v: &str| v.trim().parse::<f64>().map_err(|e| format!("{v:?}: {e}"));
    let position = crate::geo::LatLon::new(parse(lat)?, parse(lon)?);
    if position.is_valid() {
        Ok(position)
    } else {
        Err(format!(
            "latitude must be in [-90, 90] and longitude in [-180, 180]: {text}"
        ))
    }
}

#[derive(Debug, clap::Args)]
pub struct LocateArgs {
    /// Photos or folders (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Candidates per photo.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub top_k: u32,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// A CLIP folder in Hugging Face layout (default: the installed backbone).
    #[arg(long, value_name = "DIR")]
    pub backbone: Option<PathBuf>,
    /// A gallery CSV with LAT,LON columns (default: the release's 100K points).
    #[arg(long, value_name = "CSV")]
    pub gallery: Option<PathBuf>,
    /// Photos per forward pass.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch_size: u32,
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
    #[arg(long, value_name = "LAT,LON", value_parser = parse_lat_lon, allow_hyphen_values = true)]
    pub claimed: Option<crate::geo::LatLon>,
    /// Write each photo's top-1 location and its provenance into XMP sidecars (merged into an
    /// existing sidecar; photos with EXIF GPS are skipped).
    #[arg(long)]
    pub xmp_sidecars: bool,
    #[arg(long, value_enum, default_value_t = SidecarNaming::PhotoJpgXmp)]
    pub sidecar_style: SidecarNaming,
    /// Write each photo's top-1 location as EXIF GPS into the JPEG itself (pixels untouched;
    /// the original is kept until `geoloupe backups clear`; photos with EXIF GPS are skipped).
    #[arg(long)]
    pub write_exif: bool,
    /// With --export, --xmp-sidecars or --write-exif: list what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
    Gpx,
    Geojson,
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
    #[arg(long)]
    pub json: bool,
}

/// What a run ended with: `Ok(true)` if every photo succeeded.
pub fn run(cli: Cli) -> anyhow::Result<bool> {
    let dirs = DataDirs::resolve(cli.data_dir.as_deref())?;
    match cli.command {
        None => crate::app::run_native(dirs, cli.paths).map(|()| true),
        Some(Command::Locate(args)) => locate(&dirs, &args),
        Some(Command::Model(cmd)) => model(&dirs, cmd).map(|()| true),
        Some(Command::Bench(args)) => bench(&dirs, &args).map(|()| true),
        Some(Command::Backups(cmd)) => backups(&dirs, &cmd).map(|()| true),
    }
}

/// Expands folders into the photos below them (sorted); files are kept as given.
pub fn collect_photos(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut photos = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found, &mut errors);
            found.sort();
            photos.extend(found);
        } else if path.exists() {
            photos.push(path.clone());
        } else if path.symlink_metadata().is_ok() {
            // A link that leads nowhere (dangling or a loop): reading it names the reason.
            photos.push(path.clone());
        } else {
            errors.push(format!("no such file or folder: {}", path.display()));
        }
    }
    (photos, errors)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return errors.push(format!("could not list folder ({e}): {}", dir.display())),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&path, found, errors);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            found.push(path);
        }
    }
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

fn locate(dirs: &DataDirs, args: &LocateArgs) -> anyhow::Result<bool> {
    let device = args.device.device()?;
    let mut paths = ModelPaths::installed(dirs);
    if let Some(backbone) = &args.backbone {
        paths.backbone_dir = backbone.clone();
    }
    paths.gallery_csv = args.gallery.clone();
    let export_kinds = args
        .export
        .iter()
        .map(|p| export_kind(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (photos, mut failures) = collect_photos(&args.paths);
    for e in &failures {
        eprintln!("error: {e}");
    }
    let mut gallery_bar: Option<indicatif::ProgressBar> = None;
    let engine = GeoClip::load(&paths, &device, &mut |event| {
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

    let bar = (photos.len() > 3).then(|| progress_bar(photos.len() as u64, "locating"));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut records: Vec<ExportRecord> = Vec::new();
    let export_provenance = ExportProvenance::from_engine(engine.provenance());
    let gallery_coords = &engine.gallery().coords_lat_lon_deg;
    if args.format == OutputFormat::Csv {
        writeln!(out, "path,rank,lat_deg,lon_deg,probability,gallery_index")?;
    }
    let cfg = engine.preprocess_config().clone();
    for chunk in photos.chunks(args.batch_size as usize) {
        let prepared: Vec<_> = chunk.par_iter().map(|p| prepare_photo(p, &cfg)).collect();
        let ok: Vec<_> = prepared.iter().filter_map(|r| r.as_ref().ok()).collect();
        let mut predictions = engine.predict(&ok, args.top_k as usize)?.into_iter();
        for (path, prep) in chunk.iter().zip(&prepared) {
            match prep {
                Err(e) => {
                    let line = format!("error: {e}");
                    match &bar {
                        Some(b) => b.suspend(|| eprintln!("{line}")),
                        None => eprintln!("{line}"),
                    }
                    failures.push(line);
                }
                Ok(_) => {
                    let Some(prediction) = predictions.next() else {
                        bail!("internal error: fewer predictions than photos")
                    };
                    let claim = args
                        .claimed
                        .map(|c| (c, ClaimSource::User))
                        .or_else(|| photo_gps(path).map(|g| (g, ClaimSource::ExifGps)));
                    let record = ExportRecord::from_prediction(
                        path,
                        &prediction,
                        gallery_coords,
                        export_provenance.clone(),
                        None,
                        claim,
                    );
                    match args.format {
                        OutputFormat::Table => {
                            write_table(&mut out, path, &prediction, record.as_ref())?
                        }
                        OutputFormat::Csv => write_csv(&mut out, path, &prediction)?,
                        OutputFormat::Json | OutputFormat::Gpx | OutputFormat::Geojson => {}
                    }
                    records.extend(record);
                }
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
        out.flush()?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let point_set = if args.best_only {
        PointSet::Chosen
    } else {
        PointSet::AllCandidates
    };
    match args.format {
        OutputFormat::Json => write_json(&mut out, &records, engine.provenance())?,
        OutputFormat::Gpx => out.write_all(render_gpx(&records, point_set).as_bytes())?,
        OutputFormat::Geojson => out.write_all(render_geojson(&records, point_set).as_bytes())?,
        OutputFormat::Table | OutputFormat::Csv => {}
    }
    out.flush()?;
    failures.extend(write_exports(
        dirs,
        args,
        &export_kinds,
        &records,
        point_set,
    ));
    if !failures.is_empty() {
        eprintln!("{} input(s) failed; the others are above", failures.len());
    }
    Ok(failures.is_empty())
}

fn write_table(
    out: &mut impl Write,
    path: &Path,
    prediction: &Prediction,
    record: Option<&ExportRecord>,
) -> std::io::Result<()> {
    writeln!(out, "{}", path.display())?;
    writeln!(
        out,
        "  {:>4}  {:>10}  {:>11}  {:>11}  nearest place",
        "rank", "lat_deg", "lon_deg", "probability"
    )?;
    for (i, c) in prediction.candidates.iter().enumerate() {
        let place = record
            .and_then(|r| r.candidates.get(i))
            .and_then(|e| e.place.as_ref())
            .map(|p| p.describe())
            .unwrap_or_default();
        writeln!(
            out,
            "  {:>4}  {:>10.5}  {:>11.5}  {:>11.6}  {place}",
            c.rank, c.position.lat_deg, c.position.lon_deg, c.probability
        )?;
    }
    if let Some(claim) = record.and_then(|r| r.claim.as_ref()) {
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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn write_csv(out: &mut impl Write, path: &Path, prediction: &Prediction) -> std::io::Result<()> {
    let p = csv_field(&path.display().to_string());
    for c in &prediction.candidates {
        writeln!(
            out,
            "{p},{},{:.6},{:.6},{:.8},{}",
            c.rank, c.position.lat_deg, c.position.lon_deg, c.probability, c.gallery_index
        )?;
    }
    Ok(())
}

fn write_json(
    out: &mut impl Write,
    records: &[ExportRecord],
    provenance: &crate::model::engine::Provenance,
) -> anyhow::Result<()> {
    let photos: Vec<_> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "path": r.path,
                "candidates": r.candidates,
                "place": r.place,
                "claim": r.claim,
                "taken_at": r.taken_at.as_ref().map(|t| t.local_with_offset()),
            })
        })
        .collect();
    serde_json::to_writer_pretty(
        &mut *out,
        &serde_json::json!({
            "provenance": provenance,
            "places_attribution": crate::geo::PLACES_ATTRIBUTION,
            "photos": photos,
        }),
    )?;
    writeln!(out)?;
    Ok(())
}

/// The EXIF GPS position of a photo, when it has one (its default claim).
fn photo_gps(path: &Path) -> Option<crate::geo::LatLon> {
    crate::library::exif::read_exif(path).ok()?.gps
}

/// What `--export FILE` writes, by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExportKind {
    Gpx,
    Csv,
    GeoJson,
}

fn export_kind(path: &Path) -> anyhow::Result<ExportKind> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("gpx") => Ok(ExportKind::Gpx),
        Some("csv") => Ok(ExportKind::Csv),
        Some("geojson" | "json") => Ok(ExportKind::GeoJson),
        _ => bail!(
            "--export needs a .gpx, .csv or .geojson file name: {}",
            path.display()
        ),
    }
}

/// `--export`, `--xmp-sidecars`, `--write-exif` (or, with `--dry-run`, what they would write).
/// Progress goes to stderr; returns one line per failure.
fn write_exports(
    dirs: &DataDirs,
    args: &LocateArgs,
    kinds: &[ExportKind],
    records: &[ExportRecord],
    set: PointSet,
) -> Vec<String> {
    let mut failures = Vec::new();
    let dry = if args.dry_run { "dry run: would " } else { "" };
    for (path, kind) in args.export.iter().zip(kinds) {
        let text = match kind {
            ExportKind::Gpx => render_gpx(records, set),
            ExportKind::Csv => render_csv(records, set),
            ExportKind::GeoJson => render_geojson(records, set),
        };
        if args.dry_run {
            eprintln!(
                "{dry}write {kind:?} ({} photos, {} bytes): {}",
                records.len(),
                text.len(),
                path.display()
            );
        } else {
            match export::write_atomic(path, text.as_bytes()) {
                Ok(()) => eprintln!(
                    "wrote {kind:?} ({} photos): {}",
                    records.len(),
                    path.display()
                ),
                Err(e) => failures.push(format!("error: {e}")),
            }
        }
    }
    let mut report = |results: Vec<Result<export::PlannedWrite, export::ExportError>>| {
        for r in results {
            match r {
                Ok(p) => eprintln!("{dry}{p}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    failures.push(format!("error: {e}"));
                }
            }
        }
    };
    if args.xmp_sidecars {
        let style = match args.sidecar_style {
            SidecarNaming::PhotoJpgXmp => SidecarStyle::AppendXmp,
            SidecarNaming::PhotoXmp => SidecarStyle::ReplaceExtension,
        };
        report(if args.dry_run {
            export::xmp::plan_sidecars(records, style)
                .into_iter()
                .map(Ok)
                .collect()
        } else {
            export::xmp::write_sidecars(records, style)
        });
    }
    if args.write_exif {
        let backups = BackupStore::in_data_dir(&dirs.data_dir);
        report(if args.dry_run {
            export::exif_write::plan_exif_writes(records)
                .into_iter()
                .map(Ok)
                .collect()
        } else {
            export::exif_write::write_exif_gps_all(records, &backups)
        });
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
        ModelCommand::Info { verify, json } => {
            let info = files::info(dirs, verify);
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
                return Ok(());
            }
            println!("data folder: {}", dirs.data_dir.display());
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
    }
    fn bytes(&mut self, _file: &str, done_bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done_bytes);
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
    let mut progress = BarProgress { bar: None };
    let never = std::sync::atomic::AtomicBool::new(false);
    let reports = files::download_and_install(dirs, &options, &mut progress, &never)
        .context("downloading the model files")?;
    for report in reports {
        println!("Installed the {} in {}", report.kind, report.dir.display());
    }
    Ok(())
}

fn bench(dirs: &DataDirs, args: &BenchArgs) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let options = crate::model::bench::BenchOptions {
        batch_sizes: args.batch_sizes.clone(),
        repeats: args.repeats,
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
