//! The headless command line: `geoloupe locate`, `geoloupe model ...`, `geoloupe bench`.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rayon::prelude::*;

use crate::model::engine::{LoadEvent, ModelPaths, prepare_photo};
use crate::model::files::{self, DataDirs};
use crate::model::{DeviceChoice, GeoClip, Prediction, download};

/// File extensions `locate` picks up when walking a folder.
pub const PHOTO_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "tif", "tiff", "gif", "bmp"];

#[derive(Debug, Parser)]
#[command(
    name = "geoloupe",
    version,
    about = "Where was this photo taken? GeoCLIP, on your own machine."
)]
pub struct Cli {
    /// Where models and caches live (default: the platform's data folder, or $GEOLOUPE_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
    Gpx,
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
        Command::Locate(args) => locate(&dirs, &args),
        Command::Model(cmd) => model(&dirs, cmd).map(|()| true),
        Command::Bench(args) => bench(&dirs, &args).map(|()| true),
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
    let mut results: Vec<(PathBuf, Prediction)> = Vec::new();
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
                    match args.format {
                        OutputFormat::Table => write_table(&mut out, path, &prediction)?,
                        OutputFormat::Csv => write_csv(&mut out, path, &prediction)?,
                        OutputFormat::Json | OutputFormat::Gpx => {
                            results.push((path.clone(), prediction))
                        }
                    }
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
    match args.format {
        OutputFormat::Json => write_json(&mut out, &results, engine.provenance())?,
        OutputFormat::Gpx => write_gpx(&mut out, &results)?,
        OutputFormat::Table | OutputFormat::Csv => {}
    }
    out.flush()?;
    if !failures.is_empty() {
        eprintln!("{} input(s) failed; the others are above", failures.len());
    }
    Ok(failures.is_empty())
}

fn write_table(out: &mut impl Write, path: &Path, prediction: &Prediction) -> std::io::Result<()> {
    writeln!(out, "{}", path.display())?;
    writeln!(
        out,
        "  {:>4}  {:>10}  {:>11}  {:>11}",
        "rank", "lat_deg", "lon_deg", "probability"
    )?;
    for c in &prediction.candidates {
        writeln!(
            out,
            "  {:>4}  {:>10.5}  {:>11.5}  {:>11.6}",
            c.rank, c.position.lat_deg, c.position.lon_deg, c.probability
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
    results: &[(PathBuf, Prediction)],
    provenance: &crate::model::engine::Provenance,
) -> anyhow::Result<()> {
    let photos: Vec<_> = results
        .iter()
        .map(|(path, p)| serde_json::json!({ "path": path, "candidates": p.candidates }))
        .collect();
    serde_json::to_writer_pretty(
        &mut *out,
        &serde_json::json!({ "provenance": provenance, "photos": photos }),
    )?;
    writeln!(out)?;
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn write_gpx(out: &mut impl Write, results: &[(PathBuf, Prediction)]) -> std::io::Result<()> {
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<gpx version="1.1" creator="geoloupe" xmlns="http://www.topografix.com/GPX/1/1">"#
    )?;
    for (path, p) in results {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for c in &p.candidates {
            writeln!(
                out,
                r#"  <wpt lat="{:.6}" lon="{:.6}">"#,
                c.position.lat_deg, c.position.lon_deg
            )?;
            let label = if c.rank == 1 {
                name.clone()
            } else {
                format!("{name} #{}", c.rank)
            };
            writeln!(out, "    <name>{}</name>", xml_escape(&label))?;
            writeln!(
                out,
                "    <desc>GeoCLIP estimate, rank {}, probability {:.6}</desc>",
                c.rank, c.probability
            )?;
            writeln!(out, "  </wpt>")?;
        }
    }
    writeln!(out, "</gpx>")
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
    for (repo, target, kind) in [
        (&repos[0], dirs.release_dir(), "release"),
        (&repos[1], dirs.backbone_dir(), "backbone"),
    ] {
        let mut progress = BarProgress { bar: None };
        let fetched = download::fetch(&options, repo, &mut progress)
            .with_context(|| format!("downloading {}", repo.repo_id))?;
        let files: Vec<(String, PathBuf)> = fetched
            .iter()
            .map(|f| (f.name.clone(), f.path.clone()))
            .collect();
        let staged_check = |dir: &Path| -> anyhow::Result<()> {
            match kind {
                "release" => files::Release::open(dir).map(|_| ()),
                _ => files::Backbone::open(dir).map(|_| ()),
            }
            .with_context(|| format!("the downloaded {} is not usable", repo.repo_id))
        };
        let report = files::install_files(
            &files,
            &target,
            if kind == "release" {
                "release"
            } else {
                "backbone"
            },
            &format!("hf://{}@{}", repo.repo_id, repo.revision),
        )?;
        if let Err(e) = staged_check(&report.dir) {
            let _ = std::fs::remove_dir_all(&report.dir);
            return Err(e);
        }
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
