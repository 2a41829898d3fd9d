//! The headless command line: `geoloupe locate`, `geoloupe geotag`, `geoloupe model ...`,
//! `geoloupe bench`.

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rayon::prelude::*;

use crate::domain::PointKind;
use crate::domain::{LocationLogitsFn, Prediction, Provenance, RegionConstraint, predict_features};
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
use crate::model::{DeviceChoice, GeoClip, download};

mod geotag;

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

#[derive(Debug, clap::Args)]
pub struct LocateArgs {
    /// Photos or folders (searched recursively, as the app does: JPEG, PNG, WebP, TIFF, GIF,
    /// BMP, and HEIC/HEIF/AVIF (with the `heif` feature) by extension, hidden files and folders
    /// skipped).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
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
    /// Also `22.07 N, 159.5 W`, `22°04'12"N 159°30'W` or a place (`"Lihue, Hawaii"`).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_claimed, allow_hyphen_values = true)]
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
    /// With --xmp-sidecars or --write-exif: also replace EXIF GPS that is present but invalid
    /// (latitude 999, unknown reference letters, ...). Without it such photos are skipped.
    #[arg(long)]
    pub overwrite_invalid_gps: bool,
    /// With --xmp-sidecars: also write the nearest place's names as IPTC location
    /// (photoshop:City, photoshop:State, photoshop:Country, Iptc4xmpCore:CountryCode), as
    /// digiKam and Lightroom read them. These are the top-1 estimate's places: ask for them only
    /// when you vouch for the estimates (the app writes them for accepted locations). A
    /// sidecar's own values (not written by geoloupe) are kept.
    #[arg(long, requires = "xmp_sidecars")]
    pub iptc_location: bool,
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
    /// Time the continuous heatmap instead: the location encoder over the tile grid of one
    /// 1280x800 map view at zoom 10 (the installed heads, else random weights of that shape).
    #[arg(long)]
    pub heat_grid: bool,
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
    }
}

/// The photos `locate` works on, found by the app's scanner ([`scan_paths`]: the same
/// extensions, hidden files and folders skipped, sorted, no duplicates), with their EXIF GPS;
/// and one error line (path last) for each file or folder it could not use.
fn find_photos(paths: &[PathBuf]) -> anyhow::Result<(Vec<PhotoEntry>, Vec<String>)> {
    let never = std::sync::atomic::AtomicBool::new(false);
    let entries = scan_paths(
        paths,
        ScanOptions { read_exif: true },
        &never,
        &mut |_| {},
        &mut |_| {},
    )?;
    let (bad, photos): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.error.is_some());
    let errors = bad
        .into_iter()
        .map(|e| format!("{}: {}", e.error.unwrap_or_default(), e.path.display()))
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

fn locate(dirs: &DataDirs, args: &LocateArgs) -> anyhow::Result<bool> {
    let device = args.device.device()?;
    let mut paths = ModelPaths::installed(dirs);
    if let Some(backbone) = &args.backbone {
        paths.backbone_dir = backbone.clone();
    }
    paths.gallery_csv = args.gallery.clone();
    let export_formats = args
        .export
        .iter()
        .map(|p| {
            ExportFormat::from_path(p).ok_or_else(|| {
                anyhow!(
                    "--export needs a .gpx, .csv or .geojson file name: {}",
                    p.display()
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Read before the model loads, so a typo costs nothing.
    let within = args
        .within
        .as_deref()
        .map(crate::geo::parse_region)
        .transpose()
        .map_err(|e| anyhow!("--within: {e}"))?;
    let (photos, mut failures) = find_photos(&args.paths)?;
    for e in &failures {
        eprintln!("error: {e}");
    }
    log::info!(
        "locate: {} photos found ({} unreadable), top {} on {:?}",
        photos.len(),
        failures.len(),
        args.top_k,
        args.device
    );
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
    log::info!("locate: model loaded");

    let point_set = if args.best_only {
        PointSet::Chosen
    } else {
        PointSet::AllCandidates
    };
    // On standard output, relative paths start from the current folder.
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let provenance = engine.provenance(args.device);
    let estimated_at = export::utc_now_rfc3339();
    let stdout = std::io::stdout();
    let mut printer = Printer::begin(
        args.format,
        point_set,
        PhotoPaths::from_dir(args.path_style, &cwd),
        std::io::BufWriter::new(stdout.lock()),
        &provenance,
        within.is_some(),
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
    let mut report = |line: String| {
        match &bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
        failures.push(line);
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
    let mut locate_all = || -> anyhow::Result<()> {
        if args.together {
            // Every photo's feature first; then one answer for the group.
            let mut members: Vec<(&PhotoEntry, Vec<f32>)> = Vec::new();
            for chunk in photos.chunks(args.batch_size as usize) {
                let prepared: Vec<_> = chunk
                    .par_iter()
                    .map(|p| prepare_photo(&p.path, &cfg))
                    .collect();
                let ok: Vec<_> = prepared.iter().filter_map(|r| r.as_ref().ok()).collect();
                let mut features = engine.normalized_image_features(&ok)?.into_iter();
                for (entry, prep) in chunk.iter().zip(&prepared) {
                    match prep {
                        Err(e) => report(format!("error: {e}")),
                        Ok(_) => members.push((
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
            if members.is_empty() {
                return Ok(());
            }
            let features: Vec<&[f32]> = members.iter().map(|(_, f)| f.as_slice()).collect();
            let (prediction, constraint) = predict(&features)?;
            let group: Vec<PathBuf> = members.iter().map(|(e, _)| e.path.clone()).collect();
            for (entry, _) in &members {
                match ExportRecord::from_prediction(
                    &entry.path,
                    &prediction,
                    gallery_coords,
                    provenance.clone(),
                    estimated_at.clone(),
                    None,
                    claim_of(entry),
                ) {
                    Some(mut record) => {
                        record.overwrite_invalid_gps = args.overwrite_invalid_gps;
                        record.iptc_location = args.iptc_location;
                        record.group = group.clone();
                        record.within = constraint.clone();
                        match &bar {
                            Some(b) => b.suspend(|| printer.photo(&record))?,
                            None => printer.photo(&record)?,
                        }
                        records.push(record);
                    }
                    None => report(format!("error: no candidates: {}", entry.path.display())),
                }
            }
            return Ok(());
        }
        for chunk in photos.chunks(args.batch_size as usize) {
            // Each photo is decoded and reduced to its 224 x 224 tensor by one rayon worker
            // before that worker decodes the next: at most one decoded photo per worker.
            let prepared: Vec<_> = chunk
                .par_iter()
                .map(|p| prepare_photo(&p.path, &cfg))
                .collect();
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
            for (entry, prep) in chunk.iter().zip(&prepared) {
                if let Err(e) = prep {
                    report(format!("error: {e}"));
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
                    let claim = claim_of(entry);
                    match ExportRecord::from_prediction(
                        &entry.path,
                        &prediction,
                        gallery_coords,
                        provenance.clone(),
                        estimated_at.clone(),
                        None,
                        claim,
                    ) {
                        Some(mut record) => {
                            record.within = constraint;
                            record.overwrite_invalid_gps = args.overwrite_invalid_gps;
                            record.iptc_location = args.iptc_location;
                            match &bar {
                                Some(b) => b.suspend(|| printer.photo(&record))?,
                                None => printer.photo(&record)?,
                            }
                            records.push(record);
                        }
                        None => report(format!("error: no candidates: {}", entry.path.display())),
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
    log::info!(
        "locate: {} photos located, {} failed",
        records.len(),
        failures.len()
    );
    failures.extend(write_exports(
        dirs,
        &WriteOptions::of_locate(args),
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
    /// Writes the opening part (CSV header, JSON's `provenance` and the start of `photos`).
    fn begin(
        format: OutputFormat,
        set: PointSet,
        paths: PhotoPaths,
        mut out: W,
        provenance: &Provenance,
        within: bool,
    ) -> anyhow::Result<Self> {
        let export_format = match format {
            OutputFormat::Gpx => Some(ExportFormat::Gpx),
            OutputFormat::Geojson => Some(ExportFormat::GeoJson),
            _ => None,
        };
        let mut export = export_format.map(|f| ExportWriter::new(f, set, paths.clone()));
        match format {
            OutputFormat::Table | OutputFormat::Jsonl => {}
            OutputFormat::Csv => {
                let within = if within {
                    ",within,within_share_inside"
                } else {
                    ""
                };
                write!(
                    out,
                    "path,rank,lat_deg,lon_deg,probability,gallery_index,path_bytes_hex,\
                     refined_lat_deg,refined_lon_deg,refined_similarity,group_size{within}{CSV_LINE_END}"
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
        match self.format {
            OutputFormat::Table => write_table(&mut self.out, &self.paths, record)?,
            OutputFormat::Csv => write_csv(&mut self.out, &self.paths, record)?,
            OutputFormat::Json => {
                let mut item = String::from(if self.photos == 0 { "\n" } else { ",\n" });
                export::push_indented(&mut item, &PhotoJson::new(record, &self.paths), 4);
                self.out.write_all(item.as_bytes())?;
            }
            OutputFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, &PhotoJson::new(record, &self.paths))?;
                writeln!(self.out)?;
            }
            OutputFormat::Gpx | OutputFormat::Geojson => {
                if let Some(w) = &mut self.export {
                    w.record(&mut self.out, record)?;
                }
            }
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
            OutputFormat::Table | OutputFormat::Csv | OutputFormat::Jsonl => {}
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

fn write_csv(
    out: &mut impl Write,
    paths: &PhotoPaths,
    record: &ExportRecord,
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
            "{p},{},{:.6},{:.6},{:.8},{},{hex},{refined},{group_size}{within}{CSV_LINE_END}",
            c.rank, c.position.lat_deg, c.position.lon_deg, c.probability, c.gallery_index
        )?;
    }
    Ok(())
}

/// `--export`, `--xmp-sidecars`, `--write-exif` (or, with `--dry-run`, what they would write).
/// Progress goes to stderr; returns one line per failure.
/// What `locate` and `geotag` write besides standard output: export files and write-backs.
struct WriteOptions<'a> {
    export: &'a [PathBuf],
    path_style: PathStyle,
    dry_run: bool,
    xmp_sidecars: bool,
    sidecar_style: SidecarNaming,
    write_exif: bool,
}

impl<'a> WriteOptions<'a> {
    fn of_locate(args: &'a LocateArgs) -> Self {
        Self {
            export: &args.export,
            path_style: args.path_style,
            dry_run: args.dry_run,
            xmp_sidecars: args.xmp_sidecars,
            sidecar_style: args.sidecar_style,
            write_exif: args.write_exif,
        }
    }
}

fn write_exports(
    dirs: &DataDirs,
    args: &WriteOptions<'_>,
    formats: &[ExportFormat],
    records: &[ExportRecord],
    set: PointSet,
) -> Vec<String> {
    let mut failures = Vec::new();
    let dry = if args.dry_run { "dry run: would " } else { "" };
    for (path, format) in args.export.iter().zip(formats) {
        if args.dry_run {
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
    if args.xmp_sidecars {
        write_backs.push(WriteBack::XmpSidecars(match args.sidecar_style {
            SidecarNaming::PhotoJpgXmp => SidecarStyle::AppendXmp,
            SidecarNaming::PhotoXmp => SidecarStyle::ReplaceExtension,
        }));
    }
    if args.write_exif {
        write_backs.push(WriteBack::ExifGps);
    }
    let backups = BackupStore::in_data_dir(&dirs.data_dir);
    for write_back in write_backs {
        if args.dry_run {
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
            Ok(Some(Command::Locate(args))) => assert!(args.iptc_location && args.xmp_sidecars),
            other => panic!("{other:?}"),
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
            )
            .unwrap();
            printer.photo(&record("first.jpg")).unwrap();
            let after_one = text();
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
                OutputFormat::Table => {}
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
}
