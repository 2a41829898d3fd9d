//! Runs on clusters (issue 15): manifests given as a CSV or Parquet column, `locate --output`'s
//! part files ([`crate::export::parquet`]), `geoloupe merge` and `geoloupe library import`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::domain::{Candidate, HeatPoint, PhotoResult, Provenance, RefinedPoint};
use crate::export::parquet::{self, PartWriter, PhotoRow, RunInfo, Status};
use crate::export::{self, ExportRecord};
use crate::library::PhotoEntry;
use crate::library::shard::Shard;
use crate::model::files::DataDirs;

/// The photos a `--manifest` lists: a CSV's or Parquet file's `column` (by extension), else
/// one path a line. Relative paths are joined to `dir`.
pub(super) fn manifest_paths(
    file: &Path,
    column: &str,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let extension = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let listed: Vec<String> = match extension.as_deref() {
        Some("parquet") => parquet::read_text_column(file, column)?,
        Some("csv") => {
            let mut reader = ::csv::Reader::from_path(file)
                .with_context(|| format!("could not read the manifest {}", file.display()))?;
            let headers = reader.headers()?.clone();
            let Some(at) = headers.iter().position(|h| h == column) else {
                bail!(
                    "the manifest has no column {column:?} (its columns: {}); choose one with \
                     --manifest-column: {}",
                    headers.iter().collect::<Vec<_>>().join(", "),
                    file.display()
                );
            };
            let mut paths = Vec::new();
            for row in reader.records() {
                let row = row.with_context(|| format!("in the manifest {}", file.display()))?;
                paths.extend(row.get(at).map(str::to_owned));
            }
            paths
        }
        _ => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("could not read the manifest {}", file.display()))?;
            return Ok(crate::library::shard::manifest_paths(&text, dir));
        }
    };
    Ok(listed
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| dir.join(p))
        .collect())
}

/// `locate --output`'s part, opened for this run (resumed when it has rows).
pub(super) fn open_part(
    path: &Path,
    args: &super::LocateArgs,
    provenance: &Provenance,
    shard: Option<Shard>,
    gallery_len: usize,
) -> anyhow::Result<PartWriter> {
    let info = RunInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        provenance: provenance.clone(),
        run: serde_json::json!({
            "top_k": args.top_k,
            "gallery_len": gallery_len,
            "shard": shard.map(|s| format!("{}/{}", s.index, s.count)),
            "refine": args.refine,
            "within": args.within,
            "together": args.together,
            "trip": args.trip,
            "claimed": args.claimed.map(|c| [c.lat_deg, c.lon_deg]),
        }),
    };
    let (part, resumed) = PartWriter::open(path, info, args.row_group)?;
    if resumed != parquet::Resumed::default() {
        eprintln!(
            "resuming {}: {} photo(s) located and {} failed by an earlier run (the failed are \
             tried again)",
            path.display(),
            resumed.located,
            resumed.failed
        );
    }
    Ok(part)
}

/// A located photo's row: the record and what the scan found.
pub(super) fn photo_row(
    entry: &PhotoEntry,
    record: &ExportRecord,
    sha256: Option<String>,
) -> PhotoRow {
    PhotoRow {
        file_size: Some(entry.size_bytes),
        sha256,
        exif_gps: entry.exif.gps,
        taken_at: entry.exif.taken_at.clone(),
        ..PhotoRow::located(record.clone())
    }
}

/// sha256 of a photo's bytes (`None` if it can't be read again).
pub(super) fn file_sha256(path: &Path) -> Option<String> {
    crate::model::sha256_file(path).ok()
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The part files (`results/*.parquet`).
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,
    /// The merged file.
    #[arg(long, value_name = "FILE.parquet")]
    pub output: PathBuf,
}

/// `geoloupe merge`: every part's rows in one file, sorted by path. Refuses parts of different
/// models or galleries; reports missing shards, unfinished parts, photos in more than one part
/// (the located row is kept, else the first) and failed photos. `Ok(true)` when none.
pub fn merge(args: &MergeArgs) -> anyhow::Result<bool> {
    let mut parts = Vec::new();
    for path in &args.parts {
        if args.output.exists() && same_file(path, &args.output) {
            bail!("the output is one of the parts: {}", path.display());
        }
        let file = parquet::read_file(path)?;
        parts.push((path.clone(), file));
    }
    // One model and gallery.
    let mut models: BTreeMap<String, Vec<&Path>> = BTreeMap::new();
    for (path, file) in &parts {
        models.entry(file.info.model_key()).or_default().push(path);
    }
    if models.len() > 1 {
        let listing: Vec<String> = models
            .iter()
            .map(|(model, paths)| {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                format!("  {model}: {}", names.join(", "))
            })
            .collect();
        bail!(
            "the parts were made with different models or galleries; merge only parts of one \
             run:\n{}",
            listing.join("\n")
        );
    }
    let mut problems = 0usize;
    // Shards: every index of N present once.
    let mut shards: BTreeMap<u32, Vec<(u32, &Path)>> = BTreeMap::new();
    for (path, file) in &parts {
        if let Some(shard) = file.info.shard().and_then(|s| Shard::parse(s).ok()) {
            shards
                .entry(shard.count)
                .or_default()
                .push((shard.index, path));
        }
    }
    if shards.len() > 1 {
        eprintln!(
            "warning: the parts come from runs with different shard counts ({}): shards of \
             different counts overlap",
            shards
                .keys()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        problems += 1;
    }
    for (count, present) in &shards {
        let mut seen: HashMap<u32, &Path> = HashMap::new();
        for (index, path) in present {
            if let Some(other) = seen.insert(*index, path) {
                eprintln!(
                    "warning: shard {index}/{count} is in two parts: {} and {}",
                    other.display(),
                    path.display()
                );
                problems += 1;
            }
        }
        let missing: Vec<String> = (0..*count)
            .filter(|i| !seen.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "missing: shard(s) {} of {count} (counted from 0) have no part here",
                missing.join(", ")
            );
            problems += 1;
        }
    }
    for journal in unfinished_journals(&args.parts) {
        eprintln!(
            "unfinished: {} (a run of that part stopped; run it again to finish it)",
            journal.display()
        );
        problems += 1;
    }
    // Rows, each photo once.
    let mut rows: BTreeMap<String, (PhotoRow, &Path)> = BTreeMap::new();
    let mut duplicates = 0usize;
    for (path, file) in &parts {
        for row in &file.rows {
            match rows.get_mut(&row.path) {
                None => {
                    rows.insert(row.path.clone(), (row.clone(), path));
                }
                Some((kept, kept_in)) => {
                    duplicates += 1;
                    eprintln!(
                        "duplicate: {} is in {} and {}",
                        row.path,
                        kept_in.display(),
                        path.display()
                    );
                    if kept.status == Status::Failed && row.status == Status::Ok {
                        *kept = row.clone();
                        *kept_in = path;
                    }
                }
            }
        }
    }
    problems += duplicates;
    let failed: Vec<&PhotoRow> = rows
        .values()
        .map(|(r, _)| r)
        .filter(|r| r.status == Status::Failed)
        .collect();
    for row in &failed {
        eprintln!(
            "failed: {}: {}",
            row.error.as_deref().unwrap_or("(no reason recorded)"),
            row.path
        );
    }
    let failed = failed.len();
    problems += failed;
    let (_, first) = &parts[0];
    let info = RunInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        provenance: first.info.provenance.clone(),
        run: serde_json::json!({
            "gallery_len": first.info.run["gallery_len"],
            "merged_from": args.parts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "runs": parts.iter().map(|(_, f)| f.info.run.clone()).collect::<Vec<_>>(),
        }),
    };
    let merged: Vec<PhotoRow> = rows.into_values().map(|(r, _)| r).collect();
    parquet::write_file(&args.output, &info, &merged, 4096)?;
    eprintln!(
        "{} photo(s) from {} part(s) in {}: {} located, {} failed, {} duplicate row(s) dropped",
        merged.len(),
        parts.len(),
        args.output.display(),
        merged.len() - failed,
        failed,
        duplicates
    );
    Ok(problems == 0)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The journals (`*.parquet.journal/`) in the parts' folders: runs that have not finished.
fn unfinished_journals(parts: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<&Path> = parts.iter().map(|p| export::parent_dir(p)).collect();
    dirs.sort();
    dirs.dedup();
    let mut journals: Vec<PathBuf> = dirs
        .into_iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.to_string_lossy().ends_with(".parquet.journal"))
        .collect();
    journals.sort();
    journals
}

#[derive(Debug, clap::Subcommand)]
pub enum LibraryCommand {
    /// Load a results file (`locate --output`, `merge`) into the app's library, so the photos
    /// open with their candidates on the map for review. Each photo must be readable here.
    Import {
        #[arg(value_name = "FILE.parquet")]
        file: PathBuf,
        /// The folder relative paths in the file start from (the folder the workers ran in,
        /// as mounted here) [default: the current folder].
        #[arg(long, value_name = "DIR")]
        base: Option<PathBuf>,
        /// Check each photo's sha256 against the file's (otherwise its size).
        #[arg(long)]
        verify: bool,
    },
}

/// `geoloupe library ...`.
pub fn library(dirs: &DataDirs, command: &LibraryCommand) -> anyhow::Result<bool> {
    let LibraryCommand::Import { file, base, verify } = command;
    let results = parquet::read_file(file)?;
    let base = match base {
        Some(b) => b.clone(),
        None => std::env::current_dir().context("the current folder")?,
    };
    let db = crate::library::store::default_path(dirs);
    let mut store = crate::library::store::Store::open(&db)?;
    let (mut imported, mut skipped) = (0usize, 0usize);
    let mut failed = 0usize;
    for row in &results.rows {
        let Some(record) = &row.record else {
            failed += 1;
            continue;
        };
        let path = base.join(&record.path);
        let changed = match std::fs::metadata(&path) {
            Err(e) => Some(format!("not readable here ({e})")),
            Ok(meta) if row.file_size.is_some_and(|s| s != meta.len()) => {
                Some("its size changed since it was located".to_owned())
            }
            Ok(_) if *verify && row.sha256.is_some() && file_sha256(&path) != row.sha256 => {
                Some("its content changed since it was located".to_owned())
            }
            Ok(_) => None,
        };
        if let Some(reason) = changed {
            eprintln!("skipped: {reason}: {}", path.display());
            skipped += 1;
            continue;
        }
        store.save_result(&path, &photo_result(record, &results.info))?;
        imported += 1;
    }
    eprintln!(
        "{imported} result(s) imported into {}, {skipped} skipped, {failed} photo(s) the run \
         could not locate",
        db.display()
    );
    Ok(skipped == 0)
}

/// A row's answer as the library keeps it: its candidates, which are also its heat (a part
/// file carries the top k, not the whole probability vector). A merged file's gallery size
/// is not recorded (0, as for results the app makes without one).
fn photo_result(record: &ExportRecord, info: &RunInfo) -> PhotoResult {
    let candidates: Vec<Candidate> = record
        .candidates
        .iter()
        .map(|c| Candidate {
            rank: c.rank,
            gallery_index: c.gallery_index,
            position: c.position,
            probability: c.probability,
            refined: c.refined.as_ref().map(|r| RefinedPoint {
                position: r.position,
                logit: r.logit,
                similarity: r.similarity,
            }),
        })
        .collect();
    let heat: Vec<HeatPoint> = candidates
        .iter()
        .map(|c| HeatPoint {
            position: c.position,
            probability: c.probability,
        })
        .collect();
    PhotoResult {
        heat_mass: heat.iter().map(|h| h.probability).sum(),
        heat,
        gallery_len: info.run["gallery_len"].as_u64().unwrap_or(0) as usize,
        top_k: candidates.len(),
        provenance: record.provenance.clone(),
        computed_at_unix_secs: export::unix_secs_of_utc_rfc3339(&record.estimated_at)
            .unwrap_or_else(crate::domain::now_unix_secs),
        image_feature: None,
        group: None,
        candidates,
    }
}
