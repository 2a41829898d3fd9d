//! The photo browser's back end at 10,000 photos: time to list (scan with and without EXIF),
//! to match against the library database (first time: content keys; again: stat cache),
//! memory, and thumbnail throughput (cold: decode + resize + cache write; warm: from the disk
//! cache).
//!
//!     cargo bench --bench library            # 10,000 photos
//!     cargo bench --bench library -- 2000    # another count
//!
//! Photos are generated: 640x480 JPEGs (quality 85, about 20-40 KB), 100 folders, every tenth
//! with EXIF-free PNG instead. Numbers are printed; nothing is asserted.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use geoloupe::library::scan::{ScanOptions, scan_paths};
use geoloupe::library::store::Store;
use geoloupe::library::thumbnails::{ThumbnailEvent, ThumbnailWorker};
use rayon::prelude::*;

const THUMB_SAMPLE: usize = 1000;

fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

fn make_photo(path: &Path, i: usize) -> std::io::Result<()> {
    let (w, h) = (640u32, 480u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let t = (i * 37) as u32;
        image::Rgb([
            ((x + t) % 256) as u8,
            ((y * 2 + t) % 256) as u8,
            (((x ^ y) + t * 3) % 256) as u8,
        ])
    });
    let result = if i % 10 == 9 {
        img.save_with_format(path.with_extension("png"), image::ImageFormat::Png)
    } else {
        let file = std::fs::File::create(path)?;
        let encoder =
            image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 85);
        img.write_with_encoder(encoder)
    };
    result.map_err(std::io::Error::other)
}

fn generate(root: &Path, count: usize) -> std::io::Result<()> {
    (0..count).into_par_iter().try_for_each(|i| {
        let dir = root.join(format!("folder-{:03}", i % 100));
        std::fs::create_dir_all(&dir)?;
        make_photo(&dir.join(format!("photo-{i:05}.jpg")), i)
    })
}

fn thumbnails(paths: &[PathBuf], cache: &Path) -> (Duration, usize, usize) {
    let worker = match ThumbnailWorker::start(cache.to_owned(), 256, Box::new(|| {})) {
        Ok(worker) => worker,
        Err(e) => {
            eprintln!("thumbnail worker: {e}");
            return (Duration::ZERO, 0, 0);
        }
    };
    let started = Instant::now();
    let (mut next, mut ready, mut failed) = (0, 0, 0);
    while ready + failed < paths.len() {
        // Keep the queue topped up as a scrolling grid would.
        while next < paths.len() && worker.request(paths[next].clone()) {
            next += 1;
        }
        for event in worker.events() {
            match event {
                ThumbnailEvent::Ready(_) => ready += 1,
                ThumbnailEvent::Failed { .. } => failed += 1,
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (started.elapsed(), ready, failed)
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("no temporary folder: {e}");
            return;
        }
    };
    let photos = dir.path().join("photos");
    println!(
        "geoloupe library benchmark: {count} generated photos in {}",
        photos.display()
    );
    let t = Instant::now();
    if let Err(e) = generate(&photos, count) {
        eprintln!("generating photos failed: {e}");
        return;
    }
    println!("  generated in {:.1} s", t.elapsed().as_secs_f64());
    let rss_before = status_kib("VmRSS:");

    let never = AtomicBool::new(false);
    let t = Instant::now();
    let listed = scan_paths(
        std::slice::from_ref(&photos),
        ScanOptions { read_exif: false },
        &never,
        &mut |_| {},
        &mut |_| {},
    );
    let list_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let entries = match scan_paths(
        std::slice::from_ref(&photos),
        ScanOptions::default(),
        &never,
        &mut |_| {},
        &mut |_| {},
    ) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("scan failed: {e}");
            return;
        }
    };
    let scan_secs = t.elapsed().as_secs_f64();
    let rss_after = status_kib("VmRSS:");
    println!(
        "  list (stat + sniff, no EXIF): {:.3} s for {} photos ({:.0} photos/s)",
        list_secs,
        listed.as_ref().map(Vec::len).unwrap_or(0),
        count as f64 / list_secs
    );
    println!(
        "  scan with EXIF:               {:.3} s ({:.0} photos/s), {} with errors",
        scan_secs,
        count as f64 / scan_secs,
        entries.iter().filter(|e| e.error.is_some()).count()
    );
    println!(
        "  memory: RSS {} before scan, {} after (entries held), peak (VmHWM) {}",
        mib(rss_before),
        mib(rss_after),
        mib(status_kib("VmHWM:"))
    );

    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    match Store::open(&dir.path().join("library.sqlite3")) {
        Ok(mut store) => {
            let t = Instant::now();
            let first = store.identify_many(&paths).map(|r| r.len()).unwrap_or(0);
            let first_secs = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let again = store.identify_many(&paths).map(|r| r.len()).unwrap_or(0);
            let again_secs = t.elapsed().as_secs_f64();
            println!(
                "  library db, first open (content keys): {first_secs:.3} s for {first}; reopen (stat cache): {again_secs:.3} s for {again}"
            );
        }
        Err(e) => eprintln!("store: {e}"),
    }

    let sample: Vec<PathBuf> = paths.iter().take(THUMB_SAMPLE).cloned().collect();
    let cache = dir.path().join("thumbnails");
    let (cold, ready, failed) = thumbnails(&sample, &cache);
    println!(
        "  thumbnails 256 px, cold (decode + resize + cache): {ready} in {:.2} s = {:.0}/s ({failed} failed), one thread",
        cold.as_secs_f64(),
        ready as f64 / cold.as_secs_f64()
    );
    let (warm, ready, _) = thumbnails(&sample, &cache);
    println!(
        "  thumbnails 256 px, warm (disk cache):              {ready} in {:.2} s = {:.0}/s",
        warm.as_secs_f64(),
        ready as f64 / warm.as_secs_f64()
    );
    println!(
        "  peak RSS (VmHWM) at the end: {}",
        mib(status_kib("VmHWM:"))
    );
}
