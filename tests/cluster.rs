//! Runs on clusters (issue 15), as a Kubernetes Indexed Job or a Slurm array runs them: shards
//! as separate processes at once, `--output` part files, a worker killed and restarted,
//! `merge`, `library import`; with the tiny backbone and the real GeoCLIP heads.
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use geoloupe::export::parquet::{PhotoRow, ResultsFile, Status, read_file};

/// `count` distinct photos (JPEG, 640 x 480, smooth colour fields seeded by their number) in
/// two subfolders, plus two files that are not photos.
fn make_archive(dir: &Path, count: usize) {
    for i in 0..count {
        let sub = dir.join(if i % 2 == 0 { "even" } else { "odd" });
        std::fs::create_dir_all(&sub).unwrap();
        let seed = i as u32;
        let image = image::RgbImage::from_fn(640, 480, |x, y| {
            let r = (x * (seed % 7 + 1) / 5 + seed * 37) % 256;
            let g = (y * (seed % 5 + 1) / 4 + seed * 91) % 256;
            let b = ((x + y) * (seed % 3 + 1) / 6 + seed * 13) % 256;
            image::Rgb([r as u8, g as u8, b as u8])
        });
        image.save(sub.join(format!("photo-{i:04}.jpg"))).unwrap();
    }
    std::fs::write(dir.join("even").join("broken.jpg"), b"not a jpeg").unwrap();
    std::fs::write(dir.join("odd").join("empty.jpg"), b"").unwrap();
}

fn geoloupe() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_geoloupe"));
    command
        .arg("--data-dir")
        .arg(&data_dirs().data_dir)
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID");
    command
}

/// `geoloupe locate --output output` (quiet on standard output), photos to be added.
fn locate_to(output: &Path, extra: &[&str]) -> Command {
    let mut command = geoloupe();
    command
        .args(["locate", "--backbone"])
        .arg(tiny_clip())
        .args(["--format", "jsonl", "--output"])
        .arg(output)
        .args(extra)
        .stdout(std::process::Stdio::null());
    command
}

/// `geoloupe locate` of `archive` into `output`.
fn locate(archive: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut command = locate_to(output, extra);
    command.arg(archive);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `geoloupe merge PARTS --output OUTPUT`, with its standard error.
fn merge(parts: &[PathBuf], output: &Path) -> (Output, String) {
    let out = geoloupe()
        .arg("merge")
        .args(parts)
        .arg("--output")
        .arg(output)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    (out, stderr)
}

type Answers = BTreeMap<String, (Status, Vec<(f64, f64, f32, usize)>)>;

/// Each photo's status and candidates (position, probability, gallery index) by path.
fn answers(file: &ResultsFile) -> Answers {
    let mut map = BTreeMap::new();
    for row in &file.rows {
        let candidates = row
            .record
            .iter()
            .flat_map(|r| &r.candidates)
            .map(|c| {
                (
                    c.position.lat_deg,
                    c.position.lon_deg,
                    c.probability,
                    c.gallery_index,
                )
            })
            .collect();
        let old = map.insert(row.path.clone(), (row.status, candidates));
        assert!(old.is_none(), "{} is in the file twice", row.path);
    }
    map
}

/// Asserts that two runs gave the same photos the same candidates: the same gallery points in
/// the same order, probabilities within 1e-6 (batches of other photos may round differently).
/// Names the first photo that differs.
fn assert_same_answers(got: &Answers, want: &Answers, what: &str) {
    let got_paths: Vec<&String> = got.keys().collect();
    let want_paths: Vec<&String> = want.keys().collect();
    if got_paths != want_paths {
        let extra: Vec<_> = got
            .keys()
            .filter(|p| !want.contains_key(*p))
            .take(5)
            .collect();
        let missing: Vec<_> = want
            .keys()
            .filter(|p| !got.contains_key(*p))
            .take(5)
            .collect();
        panic!(
            "{what}: {} photos, want {}; extra {extra:?}, missing {missing:?}",
            got.len(),
            want.len()
        );
    }
    for (path, (status, candidates)) in got {
        let (want_status, want_candidates) = &want[path];
        assert_eq!(status, want_status, "{what}: {path}");
        let points =
            |c: &[(f64, f64, f32, usize)]| c.iter().map(|x| (x.0, x.1, x.3)).collect::<Vec<_>>();
        assert_eq!(
            points(candidates),
            points(want_candidates),
            "{what}: {path}"
        );
        for (a, b) in candidates.iter().zip(want_candidates) {
            assert!(
                (a.2 - b.2).abs() <= 1e-6,
                "{what}: {path}: probability {} vs {}",
                a.2,
                b.2
            );
        }
    }
}

/// The archive (202 files) and the single unsharded run's file, made once for all tests.
fn single_run() -> &'static (PathBuf, ResultsFile) {
    static RUN: std::sync::OnceLock<(PathBuf, ResultsFile)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let dir = target_tmpdir().join("cluster-archive");
        let _ = std::fs::remove_dir_all(&dir);
        let archive = dir.join("archive");
        make_archive(&archive, 200);
        let single = dir.join("single.parquet");
        let out = locate(&archive, &single, &[]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        (archive, read_file(&single).unwrap())
    })
}

#[test]
fn four_shards_at_once_merge_to_the_single_run() {
    let (archive, single) = single_run();
    let expected = answers(single);
    assert_eq!(expected.len(), 202);
    assert_eq!(
        expected
            .values()
            .filter(|(s, _)| *s == Status::Failed)
            .count(),
        2
    );
    let dir = tempfile::tempdir_in(target_tmpdir()).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|i| {
            locate(
                archive,
                &dir.path().join(format!("part-{i}.parquet")),
                &["--shards", "4"],
            )
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut sizes = Vec::new();
    for worker in workers {
        let out = worker.wait_with_output().unwrap();
        // Each shard holds about a quarter, and at most one of the two broken files.
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            text(&out.stderr)
        );
        sizes.push(text(&out.stderr));
    }
    let parts: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("part-{i}.parquet")))
        .collect();
    for part in &parts {
        let rows = read_file(part).unwrap().rows.len();
        assert!(
            (25..=75).contains(&rows),
            "{}: {rows} rows; {sizes:?}",
            part.display()
        );
    }
    let merged = dir.path().join("all.parquet");
    let (out, stderr) = merge(&parts, &merged);
    // The two broken files are reported; nothing is missing or duplicated.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("failed: ").count(), 2, "{stderr}");
    assert!(
        !stderr.contains("missing") && !stderr.contains("duplicate:"),
        "{stderr}"
    );
    assert!(stderr.contains("202 photo(s) from 4 part(s)"), "{stderr}");
    let merged = read_file(&merged).unwrap();
    assert_same_answers(&answers(&merged), &expected, "merged shards");
    assert_eq!(merged.info.provenance, single.info.provenance);

    // Three parts of four: the missing shard is named.
    let (out, stderr) = merge(&parts[..3], &dir.path().join("three.parquet"));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing: shard(s) 3 of 4"), "{stderr}");
    // A part given twice: every photo in it is a duplicate, kept once.
    let twice = [&parts[..], &parts[..1]].concat();
    let (_, stderr) = merge(&twice, &dir.path().join("twice.parquet"));
    assert!(stderr.contains("shard 0/4 is in two parts"), "{stderr}");
    assert!(stderr.contains("duplicate: "), "{stderr}");
    let twice = read_file(&dir.path().join("twice.parquet")).unwrap();
    assert_same_answers(&answers(&twice), &expected, "a part given twice");
}

#[test]
fn a_worker_killed_mid_run_restarts_with_no_photo_lost_or_twice() {
    let (archive, single) = single_run();
    let dir = tempfile::tempdir_in(target_tmpdir()).unwrap();
    let part = dir.path().join("part.parquet");
    let journal = dir.path().join("part.parquet.journal");
    let args = ["--row-group", "5", "--batch-size", "1"];
    let mut worker = locate(archive, &part, &args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed (SIGKILL) once it has committed a few groups.
    let committed = || {
        std::fs::read_dir(&journal)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("group-"))
                })
                .count()
            })
            .unwrap_or(0)
    };
    while committed() < 4 {
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert!(
        !part.exists(),
        "a killed run leaves no part file, only its journal"
    );
    let groups = committed();
    assert!((4..40).contains(&groups), "{groups} groups");

    let out: Output = locate(archive, &part, &args).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let skipped: usize = stderr
        .lines()
        .find_map(|l| l.strip_suffix(" are skipped"))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no photos skipped: {stderr}"));
    assert_eq!(
        skipped,
        5 * groups,
        "every committed photo is skipped; {stderr}"
    );
    assert!(
        !journal.exists(),
        "the journal is gone once the part is written"
    );
    let resumed = read_file(&part).unwrap();
    assert_same_answers(&answers(&resumed), &answers(single), "killed and resumed");
    // Every located row carries the photo's size and sha256.
    let row: &PhotoRow = resumed
        .rows
        .iter()
        .find(|r| r.status == Status::Ok)
        .unwrap();
    let bytes = std::fs::read(&row.path).unwrap();
    assert_eq!(row.file_size, Some(bytes.len() as u64));
    assert_eq!(
        row.sha256.as_deref(),
        Some(geoloupe::model::sha256_bytes(&bytes).as_str())
    );

    // Run again: nothing is located twice.
    let out = locate(archive, &part, &args).output().unwrap();
    assert!(
        text(&out.stderr).contains("200 photo(s) already located"),
        "{}",
        text(&out.stderr)
    );
    assert_same_answers(
        &answers(&read_file(&part).unwrap()),
        &answers(single),
        "run again",
    );
}

#[test]
fn merge_refuses_parts_of_another_gallery_naming_them() {
    let (_, single) = single_run();
    let dir = tempfile::tempdir_in(target_tmpdir()).unwrap();
    let ours = dir.path().join("ours.parquet");
    let theirs = dir.path().join("theirs.parquet");
    geoloupe::export::parquet::write_file(&ours, &single.info, &single.rows[..3], 8).unwrap();
    let mut other = single.info.clone();
    other.provenance.gallery_sha256 = "f".repeat(64);
    geoloupe::export::parquet::write_file(&theirs, &other, &single.rows[3..6], 8).unwrap();
    let merged = dir.path().join("all.parquet");
    let (out, stderr) = merge(&[ours.clone(), theirs.clone()], &merged);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("different models or galleries"), "{stderr}");
    assert!(
        stderr.contains("ours.parquet") && stderr.contains("theirs.parquet"),
        "{stderr}"
    );
    assert!(stderr.contains("gallery sha256 ffffffffffff"), "{stderr}");
    assert!(!merged.exists());

    // locate --output refuses to add to a part of another gallery.
    let (archive, _) = single_run();
    let out = locate(archive, &theirs, &[]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("another model or gallery"), "{stderr}");
}

#[test]
fn manifests_as_a_csv_or_parquet_column_list_the_photos() {
    let (archive, single) = single_run();
    let dir = tempfile::tempdir_in(archive.parent().unwrap()).unwrap();
    // Relative to the manifest's folder, as an object-store listing would be.
    let listed: Vec<String> = (0..10)
        .map(|i| {
            let sub = if i % 2 == 0 { "even" } else { "odd" };
            format!("../archive/{sub}/photo-{i:04}.jpg")
        })
        .collect();
    let csv = dir.path().join("list.csv");
    std::fs::write(
        &csv,
        format!(
            "id,file\n{}",
            listed
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{i},{p}\n"))
                .collect::<String>()
        ),
    )
    .unwrap();
    let out = geoloupe()
        .args(["locate", "--backbone"])
        .arg(tiny_clip())
        .arg("--manifest")
        .arg(&csv)
        .args(["--format", "jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no column \"path\"") && stderr.contains("id, file"),
        "{stderr}"
    );

    let from_csv = dir.path().join("from-csv.parquet");
    let manifest = [
        "--manifest",
        csv.to_str().unwrap(),
        "--manifest-column",
        "file",
    ];
    let out = locate_to(&from_csv, &manifest).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = read_file(&from_csv).unwrap();
    assert_eq!(got.rows.len(), 10);

    // The same list as a Parquet column: the part file itself lists its paths.
    let from_parquet = dir.path().join("from-parquet.parquet");
    let manifest = ["--manifest", from_csv.to_str().unwrap()];
    let out = locate_to(&from_parquet, &manifest).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = read_file(&from_parquet).unwrap();
    let expected = answers(single);
    for file in [&got, &again] {
        for (path, answer) in answers(file) {
            let name = Path::new(&path).file_name().unwrap().to_owned();
            let (_, want) = expected
                .iter()
                .find(|(p, _)| Path::new(p).file_name() == Some(&name))
                .unwrap();
            assert_same_answers(
                &BTreeMap::from([(String::new(), answer)]),
                &BTreeMap::from([(String::new(), want.clone())]),
                &path,
            );
        }
    }
}

#[test]
fn library_import_puts_the_results_in_the_apps_library() {
    let (archive, single) = single_run();
    let dir = tempfile::tempdir_in(target_tmpdir()).unwrap();
    let results = dir.path().join("all.parquet");
    geoloupe::export::parquet::write_file(&results, &single.info, &single.rows, 64).unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_geoloupe"))
        .arg("--data-dir")
        .arg(&data)
        .args(["library", "import"])
        .arg(&results)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("200 result(s) imported"), "{stderr}");
    assert!(
        stderr.contains("2 photo(s) the run could not locate"),
        "{stderr}"
    );
    let store =
        geoloupe::library::store::Store::open(&data.join(geoloupe::library::store::DATABASE_FILE))
            .unwrap();
    let row = single.rows.iter().find(|r| r.status == Status::Ok).unwrap();
    let record = row.record.as_ref().unwrap();
    let stored = store
        .result(&std::env::current_dir().unwrap().join(&record.path))
        .unwrap()
        .expect("the photo's result is in the library");
    let stored: Vec<_> = stored
        .result
        .candidates
        .iter()
        .map(|c| (c.position, c.probability))
        .collect();
    let want: Vec<_> = record
        .candidates
        .iter()
        .map(|c| (c.position, c.probability))
        .collect();
    assert_eq!(stored, want);
    let _ = archive;
}
