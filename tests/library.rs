//! The photo library and the inference worker, end to end on real files: scanning folders with
//! good and broken photos, EXIF GPS, the SQLite store (round trip, moved and edited files,
//! undo/redo), the inference worker with the fake embedder (run, cancel, no model) and with
//! the real GeoCLIP heads + tiny backbone, and the thumbnail worker's disk cache.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::fixtures;
use geoloupe::domain::{Decision, PhotoResult};
use geoloupe::geo::LatLon;
use geoloupe::library::scan::{ScanEvent, ScanOptions, Scanner, scan_paths};
use geoloupe::library::store::{FileStatus, Store};
use geoloupe::library::thumbnails::{ThumbnailEvent, ThumbnailWorker};
use geoloupe::library::{LibraryError, exif, no_repaint};
use geoloupe::runtime::inference::{
    Embedder as _, FakeEmbedder, InferenceWorker, WorkerEvent, ready_factory,
};

/// Generous bound for waiting on a worker thread (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

fn image(name: &str) -> PathBuf {
    fixtures().join("images").join(name)
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// a/landscape.jpg, a/b/small.PNG, gps.jpg, bad/{empty,not_an_image,truncated}.jpg, notes.txt,
/// .hidden/kauai.jpg, a/loop -> the root.
fn sample_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy(&image("landscape.jpg"), &root.join("a/landscape.jpg"));
    copy(&image("small.png"), &root.join("a/b/small.PNG"));
    copy(&image("gps.jpg"), &root.join("gps.jpg"));
    for bad in ["empty.jpg", "not_an_image.jpg", "truncated.jpg"] {
        copy(&image(&format!("bad/{bad}")), &root.join("bad").join(bad));
    }
    std::fs::write(root.join("notes.txt"), "not a photo").unwrap();
    copy(&image("kauai.jpg"), &root.join(".hidden/kauai.jpg"));
    // A link back to the root: must not be followed (no endless walk, no duplicates).
    #[cfg(unix)]
    std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
    dir
}

/// Each entry's path below `root`, folders joined by `/` on every system (Windows too).
fn names(entries: &[geoloupe::library::PhotoEntry], root: &Path) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            let below = e.path.strip_prefix(root).unwrap();
            let parts: Vec<_> = below.iter().map(|part| part.to_string_lossy()).collect();
            parts.join("/")
        })
        .collect()
}

#[test]
fn scan_finds_photos_recursively_and_lists_bad_files_with_errors() {
    let dir = sample_folder();
    let never = AtomicBool::new(false);
    let mut found = 0;
    let entries = scan_paths(
        &[dir.path().to_owned()],
        ScanOptions::default(),
        &never,
        &mut |_| {},
        &mut |_| found += 1,
    )
    .unwrap();
    assert_eq!(
        names(&entries, dir.path()),
        [
            "a/b/small.PNG",
            "a/landscape.jpg",
            "bad/empty.jpg",
            "bad/not_an_image.jpg",
            "bad/truncated.jpg",
            "gps.jpg",
        ]
    );
    assert_eq!(found, entries.len());
    let by_name = |n: &str| entries.iter().find(|e| e.path.ends_with(n)).unwrap();
    assert!(
        by_name("bad/empty.jpg")
            .error
            .as_deref()
            .unwrap()
            .contains("empty")
    );
    assert!(
        by_name("bad/not_an_image.jpg")
            .error
            .as_deref()
            .unwrap()
            .contains("not a supported image")
    );
    // Truncation is found when decoding (thumbnail worker, model), not by the scan.
    assert!(by_name("bad/truncated.jpg").is_ok());
    assert_eq!(
        by_name("a/landscape.jpg").format,
        Some(geoloupe::library::PhotoFormat::Jpeg)
    );
    assert_eq!(
        by_name("a/b/small.PNG").format,
        Some(geoloupe::library::PhotoFormat::Png)
    );
    assert!(by_name("gps.jpg").gps().is_some());
    assert!(by_name("a/landscape.jpg").gps().is_none());
}

#[test]
fn explicit_files_are_listed_whatever_they_are_and_missing_ones_get_an_error() {
    let dir = sample_folder();
    let never = AtomicBool::new(false);
    let notes = dir.path().join("notes.txt");
    let missing = dir.path().join("missing.jpg");
    let photo = dir.path().join("gps.jpg");
    let entries = scan_paths(
        &[notes.clone(), missing.clone(), photo.clone(), photo.clone()],
        ScanOptions::default(),
        &never,
        &mut |_| {},
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(entries.len(), 3, "the duplicate is listed once");
    let by_path = |p: &Path| entries.iter().find(|e| e.path == p).unwrap();
    assert!(by_path(&notes).error.is_some());
    assert!(
        by_path(&missing)
            .error
            .as_deref()
            .unwrap()
            .contains("could not open")
    );
    assert!(by_path(&photo).is_ok());
}

#[test]
fn scan_stops_when_cancelled() {
    let dir = sample_folder();
    let cancel = AtomicBool::new(false);
    let result = scan_paths(
        &[dir.path().to_owned()],
        ScanOptions::default(),
        &cancel,
        &mut |_| {},
        &mut |_| cancel.store(true, Ordering::Relaxed),
    );
    assert!(matches!(result, Err(LibraryError::Cancelled)));
}

#[test]
fn scanner_thread_reports_batches_and_the_sorted_list() {
    let dir = sample_folder();
    let repaints = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&repaints);
    let scanner = Scanner::start(
        vec![dir.path().to_owned()],
        ScanOptions::default(),
        Box::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut batched = 0;
    let finished = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the scan never finished"
        );
        let mut done = None;
        for event in scanner.events() {
            match event {
                ScanEvent::Found(batch) => batched += batch.len(),
                ScanEvent::Finished { entries, .. } => done = Some(entries),
                ScanEvent::Cancelled | ScanEvent::Failed(_) => panic!("{event:?}"),
                ScanEvent::Progress(_) => {}
            }
        }
        if let Some(entries) = done {
            break entries;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(finished.len(), 6);
    assert_eq!(batched, 6);
    assert!(repaints.load(Ordering::Relaxed) >= 2);
}

#[test]
fn exif_gps_and_date_from_the_fixture() {
    // tests/fixtures/make_gps_jpeg.py: 22°5'47.04"N 159°31'33.96"W, 2023:07:14 16:20:05 -10:00.
    let info = exif::read_exif(&image("gps.jpg")).unwrap();
    let gps = info.gps.unwrap();
    approx::assert_abs_diff_eq!(gps.lat_deg, 22.0964, epsilon = 1e-9);
    approx::assert_abs_diff_eq!(gps.lon_deg, -159.5261, epsilon = 1e-9);
    assert_eq!(info.taken_at.as_deref(), Some("2023-07-14T16:20:05-10:00"));
    assert_eq!(info.orientation, Some(1));
    // No EXIF at all is an empty answer, not an error.
    assert!(exif::read_exif(&image("small.png")).unwrap().gps.is_none());
}

/// exiftool, when installed, reads the same position from the fixture.
#[test]
fn exiftool_agrees_on_the_fixture_position() {
    let Ok(out) = std::process::Command::new("exiftool")
        .args(["-n", "-s3", "-GPSLatitude", "-GPSLongitude"])
        .arg(image("gps.jpg"))
        .output()
    else {
        eprintln!("exiftool not installed: skipped");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let values: Vec<f64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(values.len(), 2, "{text}");
    approx::assert_abs_diff_eq!(values[0], 22.0964, epsilon = 1e-6);
    approx::assert_abs_diff_eq!(values[1], -159.5261, epsilon = 1e-6);
}

fn fake_result(path: &Path) -> PhotoResult {
    let mut fake = FakeEmbedder::new();
    let prediction = fake.locate(path, 5).unwrap();
    PhotoResult::from_prediction(&prediction, 5, fake.provenance(), &|i| {
        fake.gallery_position(i)
    })
}

#[test]
fn store_round_trips_results_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/library.sqlite3");
    let photo = dir.path().join("photos/kauai.jpg");
    copy(&image("kauai.jpg"), &photo);
    let result = fake_result(&photo);
    assert!(!result.heat.is_empty());
    {
        let mut store = Store::open(&db).unwrap();
        let record = store.identify(&photo).unwrap();
        assert_eq!(record.status, FileStatus::New);
        assert!(record.result.is_none());
        store.save_result(&photo, &result).unwrap();
    }
    let mut store = Store::open(&db).unwrap();
    let record = store.identify(&photo).unwrap();
    assert_eq!(record.status, FileStatus::Unchanged);
    let summary = record.result.unwrap();
    assert_eq!(summary.candidates, result.candidates);
    assert!(!summary.stale);
    let stored = store.result(&photo).unwrap().unwrap();
    assert!(!stored.stale);
    // The fake's gallery is on a 5° grid: exact in f32.
    assert_eq!(stored.result, result);
    assert_eq!(store.photo_count().unwrap(), 1);
}

/// Sets a file's mtime explicitly, so tests don't depend on the file system's clock granularity.
fn set_mtime(path: &Path, unix_secs: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(unix_secs))
        .unwrap();
}

#[test]
fn store_notices_moved_edited_touched_and_copied_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("lib.sqlite3")).unwrap();
    let original = dir.path().join("in/kauai.jpg");
    copy(&image("kauai.jpg"), &original);
    store.identify(&original).unwrap();
    let result = fake_result(&original);
    store.save_result(&original, &result).unwrap();
    let accepted = Decision::Accepted {
        rank: 1,
        position: result.candidates[0].position,
    };
    store.decide(&original, Some(accepted.clone())).unwrap();

    // Moved: same content at a new path, old path gone. Results and decision follow.
    let moved = dir.path().join("elsewhere/renamed.jpg");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&original, &moved).unwrap();
    let record = store.identify(&moved).unwrap();
    assert_eq!(
        record.status,
        FileStatus::Moved {
            from: original.clone()
        }
    );
    assert_eq!(record.result.unwrap().candidates, result.candidates);
    assert_eq!(record.decision, Some(accepted.clone()));
    assert_eq!(store.photo_count().unwrap(), 1);

    // Touched: new mtime, same bytes.
    set_mtime(&moved, 1_600_000_000);
    assert_eq!(
        store.identify(&moved).unwrap().status,
        FileStatus::Unchanged
    );

    // Edited: the tail changed (as when an editor rewrites the file).
    let mut bytes = std::fs::read(&moved).unwrap();
    bytes.extend_from_slice(b"edited");
    std::fs::write(&moved, &bytes).unwrap();
    set_mtime(&moved, 1_700_000_000);
    let record = store.identify(&moved).unwrap();
    assert_eq!(record.status, FileStatus::Edited);
    assert!(
        record.result.unwrap().stale,
        "results of the old content are stale"
    );
    assert!(store.result(&moved).unwrap().unwrap().stale);
    assert_eq!(
        record.decision,
        Some(accepted.clone()),
        "decisions stay with the photo"
    );

    // A new result for the edited content is fresh again.
    store.save_result(&moved, &fake_result(&moved)).unwrap();
    assert!(!store.identify(&moved).unwrap().result.unwrap().stale);

    // Copied while the original exists: a new photo, no results.
    let copied = dir.path().join("copy.jpg");
    std::fs::copy(&moved, &copied).unwrap();
    let record = store.identify(&copied).unwrap();
    assert_eq!(record.status, FileStatus::New);
    assert!(record.result.is_none());

    // identify_many reports an unreadable file in place and goes on.
    let records = store
        .identify_many(&[moved.clone(), dir.path().join("gone.jpg"), copied.clone()])
        .unwrap();
    assert!(records[0].is_ok() && records[1].is_err() && records[2].is_ok());
}

#[test]
fn our_own_exif_write_keeps_results_current_but_an_edit_does_not() {
    use geoloupe::export::exif_write::{BackupStore, write_exif_gps};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("lib.sqlite3")).unwrap();
    let photo = dir.path().join("kauai.jpg");
    copy(&image("kauai.jpg"), &photo);
    store.identify(&photo).unwrap();
    store.save_result(&photo, &fake_result(&photo)).unwrap();

    // geoloupe writes EXIF GPS into the file (size, mtime and the first 64 KiB change) and
    // tells the store: the result stays current.
    let backups = BackupStore::new(dir.path().join("backups"));
    write_exif_gps(&photo, LatLon::new(22.2, -159.5), None, &backups).unwrap();
    store.adopt_own_write(&photo).unwrap();
    let record = store.identify(&photo).unwrap();
    assert_eq!(record.status, FileStatus::Unchanged);
    assert!(!record.result.unwrap().stale);
    // The estimate written is recorded as one (issue 8, item 6).
    let written = store.exif_estimates(&photo).unwrap();
    assert_eq!(written.len(), 1);
    assert!(written[0].position.distance_km(&LatLon::new(22.2, -159.5)) < 0.01);
    assert!(written[0].method.starts_with("geoloupe estimate"));

    // Without telling the store, the same kind of write is an edit.
    write_exif_gps(&photo, LatLon::new(10.0, 10.0), None, &backups).unwrap();
    let record = store.identify(&photo).unwrap();
    assert_eq!(record.status, FileStatus::Edited);
    assert!(record.result.unwrap().stale);

    // And adopting a write does not revive a result that was already stale.
    store.adopt_own_write(&photo).unwrap();
    assert!(store.identify(&photo).unwrap().result.unwrap().stale);
}

#[test]
fn decisions_undo_and_redo_across_photos_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite3");
    let a = dir.path().join("a.jpg");
    let b = dir.path().join("b.png");
    copy(&image("kauai.jpg"), &a);
    copy(&image("small.png"), &b);
    let accept_a = Decision::Accepted {
        rank: 2,
        position: LatLon::new(22.0, -159.5),
    };
    let place_b = Decision::Manual {
        position: LatLon::new(48.8566, 2.3522),
    };
    {
        let mut store = Store::open(&db).unwrap();
        assert!(!store.can_undo().unwrap());
        let change = store.decide(&a, Some(accept_a.clone())).unwrap();
        assert_eq!(
            (change.before, change.after),
            (None, Some(accept_a.clone()))
        );
        store.decide(&b, Some(place_b.clone())).unwrap();
        let change = store.undo().unwrap().pop().unwrap();
        assert_eq!(change.path, b);
        assert_eq!((change.before, change.after), (Some(place_b.clone()), None));
        assert_eq!(store.decision(&b).unwrap(), None);
        assert_eq!(store.decision(&a).unwrap(), Some(accept_a.clone()));
        assert!(store.can_redo().unwrap());
    }
    // The redo stack survives a restart.
    let mut store = Store::open(&db).unwrap();
    let change = store.redo().unwrap().pop().unwrap();
    assert_eq!(change.after, Some(place_b.clone()));
    assert_eq!(store.decision(&b).unwrap(), Some(place_b.clone()));
    assert!(store.redo().unwrap().is_empty());

    // Clearing is a decision too, and undoable.
    store.decide(&a, None).unwrap();
    assert_eq!(store.decision(&a).unwrap(), None);
    let change = store.undo().unwrap().pop().unwrap();
    assert_eq!(change.after, Some(accept_a.clone()));

    // A new decision after an undo discards what could have been redone.
    store.undo().unwrap().pop().unwrap(); // b's placement
    assert!(store.can_redo().unwrap());
    let moved_a = Decision::Manual {
        position: LatLon::new(21.9, -159.6),
    };
    store.decide(&a, Some(moved_a.clone())).unwrap();
    assert!(!store.can_redo().unwrap());
    assert_eq!(store.decision(&b).unwrap(), None);

    let history = store.history(&a).unwrap();
    let decisions: Vec<_> = history.iter().map(|h| h.decision.clone()).collect();
    assert_eq!(decisions, [Some(accept_a.clone()), Some(moved_a.clone())]);
    assert!(history.iter().all(|h| !h.undone));
}

fn wait_for(
    worker: &InferenceWorker,
    mut stop: impl FnMut(&WorkerEvent) -> bool,
) -> Vec<WorkerEvent> {
    let mut seen = Vec::new();
    loop {
        let event = worker
            .recv_timeout(PATIENCE)
            .expect("the inference worker went quiet");
        let done = stop(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn load_fake(worker: &InferenceWorker, fake: FakeEmbedder) {
    worker.load_model(ready_factory(fake)).unwrap();
    let events = wait_for(worker, |e| {
        matches!(
            e,
            WorkerEvent::ModelReady { .. } | WorkerEvent::ModelFailed { .. }
        )
    });
    assert!(
        matches!(events.last(), Some(WorkerEvent::ModelReady { .. })),
        "{events:?}"
    );
}

#[test]
fn worker_ranks_each_photo_and_reports_failures() {
    let dir = sample_folder();
    let repaints = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&repaints);
    let worker = InferenceWorker::start(Box::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    }))
    .unwrap();

    // No model yet.
    let generation = worker.run(vec![dir.path().join("gps.jpg")], 3).unwrap();
    let events = wait_for(&worker, |e| matches!(e, WorkerEvent::NoModel { .. }));
    assert_eq!(events.last().unwrap().generation(), Some(generation));

    load_fake(&worker, FakeEmbedder::new());
    let jobs: Vec<PathBuf> = [
        "gps.jpg",
        "a/landscape.jpg",
        "bad/empty.jpg",
        "a/b/small.PNG",
    ]
    .iter()
    .map(|n| dir.path().join(n))
    .collect();
    let generation = worker.run(jobs.clone(), 3).unwrap();
    let events = wait_for(&worker, |e| matches!(e, WorkerEvent::Finished { .. }));
    let mut ranked = Vec::new();
    let mut failed = Vec::new();
    let mut progress = Vec::new();
    for event in &events {
        assert_eq!(event.generation(), Some(generation));
        match event {
            WorkerEvent::Ranked { path, result, .. } => {
                assert_eq!(result.candidates.len(), 3);
                assert_eq!(result.provenance.model, "fake (tests)");
                let name = path.file_name().unwrap().to_string_lossy();
                assert_eq!(result.candidates[0].position, FakeEmbedder::peak_for(&name));
                assert!(result.heat_mass > 0.9);
                ranked.push(path.clone());
            }
            WorkerEvent::Failed { path, error, .. } => {
                assert!(error.contains("empty"), "{error}");
                failed.push(path.clone());
            }
            WorkerEvent::Progress { done, total, .. } => {
                assert_eq!(*total, 4);
                progress.push(*done);
            }
            WorkerEvent::Finished { done, failed, .. } => {
                assert_eq!((*done, *failed), (4, 1));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ranked, [jobs[0].clone(), jobs[1].clone(), jobs[3].clone()]);
    assert_eq!(failed, [jobs[2].clone()]);
    assert_eq!(progress, [0, 1, 2, 3, 4]);
    assert!(repaints.load(Ordering::Relaxed) >= events.len());
}

#[test]
fn cancelling_takes_effect_within_one_photo() {
    let dir = sample_folder();
    let worker = InferenceWorker::start(no_repaint()).unwrap();
    load_fake(
        &worker,
        FakeEmbedder::with_delay(Duration::from_millis(300)),
    );
    let jobs: Vec<PathBuf> = (0..20).map(|_| dir.path().join("gps.jpg")).collect();
    let generation = worker.run(jobs.clone(), 1).unwrap();
    // A second run queued behind the first is cancelled too.
    let queued = worker.run(jobs, 1).unwrap();
    assert_eq!(queued, generation);
    let before = wait_for(&worker, |e| matches!(e, WorkerEvent::Ranked { .. }));
    let ranked_before = before
        .iter()
        .filter(|e| matches!(e, WorkerEvent::Ranked { .. }))
        .count();
    let new_generation = worker.cancel_all();
    assert_eq!(new_generation, generation + 1);
    assert_eq!(worker.generation(), new_generation);
    let after = wait_for(&worker, |e| matches!(e, WorkerEvent::Cancelled { .. }));
    let ranked_after = after
        .iter()
        .filter(|e| matches!(e, WorkerEvent::Ranked { .. }))
        .count();
    // The photo in progress may finish; nothing after it starts.
    assert!(
        ranked_after <= 1,
        "{ranked_after} photos ran after cancelling"
    );
    let Some(WorkerEvent::Cancelled { done, total, .. }) = after.last() else {
        unreachable!()
    };
    assert_eq!(*total, 20);
    assert_eq!(*done, ranked_before + ranked_after);
    // The queued run reports itself cancelled without running anything.
    let events = wait_for(&worker, |e| matches!(e, WorkerEvent::Cancelled { .. }));
    assert_eq!(events.len(), 1, "{events:?}");
    // A new run after cancelling works, with the new generation.
    let generation = worker.run(vec![dir.path().join("gps.jpg")], 1).unwrap();
    assert_eq!(generation, new_generation);
    let events = wait_for(&worker, |e| matches!(e, WorkerEvent::Finished { .. }));
    assert!(
        events
            .iter()
            .all(|e| e.generation() == Some(new_generation))
    );
    // Dropping mid-run cancels and joins (the test would hang otherwise).
    worker.run(vec![dir.path().join("gps.jpg"); 50], 1).unwrap();
    drop(worker);
}

/// The real engine behind the worker: GeoCLIP's heads and gallery from the wheel, the tiny
/// backbone; the worker's answer equals the engine's.
#[test]
fn worker_runs_the_real_geoclip_engine() {
    use geoloupe::model::engine::{GeoClip, ModelPaths};
    use geoloupe::runtime::inference::geoclip_factory;
    let dirs = common::data_dirs();
    let mut paths = ModelPaths::installed(dirs);
    paths.backbone_dir = common::tiny_clip();
    let worker = InferenceWorker::start(no_repaint()).unwrap();
    worker
        .load_model(geoclip_factory(
            paths.clone(),
            geoloupe::model::DeviceChoice::Cpu,
            geoloupe::model::Precision::Exact,
        ))
        .unwrap();
    let events = wait_for(&worker, |e| {
        matches!(
            e,
            WorkerEvent::ModelReady { .. } | WorkerEvent::ModelFailed { .. }
        )
    });
    let Some(WorkerEvent::ModelReady { provenance }) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(provenance.model, "GeoCLIP");
    assert_eq!(provenance.weights_sha256.len(), 64);
    assert!(
        provenance
            .backbone
            .starts_with("tiny_clip (NOT CLIP ViT-L/14"),
        "the backbone is recorded by its folder's name, never its path, and a stand-in says so: {}",
        provenance.backbone
    );
    let photo = image("kauai.jpg");
    worker.run(vec![photo.clone()], 5).unwrap();
    let events = wait_for(&worker, |e| matches!(e, WorkerEvent::Finished { .. }));
    let result = events
        .iter()
        .find_map(|e| match e {
            WorkerEvent::Ranked { result, .. } => Some(result.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{events:?}"));
    let engine = GeoClip::load(
        &paths,
        &candle_core::Device::Cpu,
        geoloupe::model::Precision::Exact,
        &mut |_| true,
    )
    .unwrap();
    let prepared =
        geoloupe::model::engine::prepare_photo(&photo, engine.preprocess_config()).unwrap();
    let expected = engine.predict(&[&prepared], 5).unwrap().remove(0);
    assert_eq!(result.candidates, expected.candidates);
    assert_eq!(result.gallery_len, engine.gallery().len());
    // Heat points: most probable first, the best candidate first of all.
    assert_eq!(
        result.heat[0].probability,
        expected.candidates[0].probability
    );
    assert!(
        result
            .heat
            .windows(2)
            .all(|w| w[0].probability >= w[1].probability)
    );
}

#[test]
fn thumbnails_are_made_off_thread_and_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("thumbs");
    let photos = [
        image("kauai.jpg"),
        image("rotated.jpg"),
        image("portrait.png"),
        image("bad/truncated.jpg"),
    ];
    let collect = |worker: &ThumbnailWorker| {
        for photo in &photos {
            assert!(worker.request(photo.clone()));
        }
        let mut ready = Vec::new();
        let mut failed = Vec::new();
        let deadline = std::time::Instant::now() + PATIENCE;
        while ready.len() + failed.len() < photos.len() {
            assert!(
                std::time::Instant::now() < deadline,
                "thumbnails never came"
            );
            for event in worker.events() {
                match event {
                    ThumbnailEvent::Ready(r) => ready.push(r),
                    ThumbnailEvent::Failed { path, error } => failed.push((path, error)),
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        ready.sort_by(|a, b| a.path.cmp(&b.path));
        (ready, failed)
    };
    let worker = ThumbnailWorker::start(cache.clone(), 64, no_repaint()).unwrap();
    let (first, failed) = collect(&worker);
    drop(worker);
    assert_eq!(first.len(), 3);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, photos[3]);
    assert!(failed[0].1.contains("truncated"), "{}", failed[0].1);
    for thumb in &first {
        assert!(!thumb.from_cache);
        assert_eq!(thumb.w.max(thumb.h), 64, "{}", thumb.path.display());
        assert_eq!(thumb.rgba.len(), (thumb.w * thumb.h * 4) as usize);
        // Same aspect as the oriented photo.
        let full = geoloupe::model::preprocess::load_photo(&thumb.path).unwrap();
        let (a, b) = (
            f64::from(full.width()) / f64::from(full.height()),
            f64::from(thumb.w) / f64::from(thumb.h),
        );
        assert!((a - b).abs() < 0.1, "{}: {a} vs {b}", thumb.path.display());
    }
    let cached = std::fs::read_dir(&cache)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "jpg")
        })
        .count();
    assert_eq!(cached, 3);

    // A new worker (a restart) reads them back from disk.
    let worker = ThumbnailWorker::start(cache.clone(), 64, no_repaint()).unwrap();
    let (second, _) = collect(&worker);
    assert!(second.iter().all(|t| t.from_cache));
    for (a, b) in first.iter().zip(&second) {
        assert_eq!((a.path.as_path(), a.w, a.h), (b.path.as_path(), b.w, b.h));
    }
}

#[test]
fn claims_are_kept_with_the_photo_across_reopening_and_moves() {
    use geoloupe::library::store::StoredClaim;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/library.sqlite3");
    let photo = dir.path().join("photos/kauai.jpg");
    copy(&image("kauai.jpg"), &photo);
    let lihue = StoredClaim {
        text: "Lihue, Hawaii".into(),
        position: LatLon::new(21.98121, -159.3721),
    };
    {
        let mut store = Store::open(&db).unwrap();
        assert_eq!(store.claim(&photo).unwrap(), None);
        store.set_claim(&photo, Some(&lihue)).unwrap();
    }
    let mut store = Store::open(&db).unwrap();
    assert_eq!(store.identify(&photo).unwrap().claim, Some(lihue.clone()));
    // Replaced, then moved with the photo.
    let dms = StoredClaim {
        text: "22°04'12\"N 159°30'W".into(),
        position: LatLon::new(22.07, -159.5),
    };
    store.set_claim(&photo, Some(&dms)).unwrap();
    let moved = dir.path().join("elsewhere/kauai-renamed.jpg");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&photo, &moved).unwrap();
    let record = store.identify(&moved).unwrap();
    assert!(matches!(record.status, FileStatus::Moved { .. }));
    assert_eq!(record.claim, Some(dms));
    // Removed.
    store.set_claim(&moved, None).unwrap();
    drop(store);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.claim(&moved).unwrap(), None);
}
