//! Finding photos: files and folders as the user gave them (dialog, drag and drop, command
//! line), folders searched recursively.
//!
//! Rules:
//! - in folders, a file is a candidate when its extension (any case) is one of
//!   [`PHOTO_EXTENSIONS`]; hidden entries (name starting with `.`) are skipped, and symbolic
//!   links to folders are not followed (no loops);
//! - a file given explicitly is always listed, whatever its extension;
//! - each candidate is opened and its first bytes sniffed: empty, unreadable or not-an-image
//!   files are listed with an `error` (never dropped, never a panic); EXIF is read when
//!   [`ScanOptions::read_exif`] is set;
//! - the result is sorted by path and has no duplicates.
//!
//! [`scan_paths`] runs on the caller's thread; [`Scanner`] runs it on a named thread with a
//! bounded event channel, for the UI.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryIter, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{LibraryError, PhotoEntry};
use crate::domain::{PhotoFormat, RepaintFn};

/// Extensions looked for in folders (compared lowercase); also the file dialog's filter.
/// HEIC/HEIF (`hif`: Canon's and Fujifilm's) and AVIF are listed in every build: without the
/// `heif` feature they show with an error that says how to get a build that reads them.
pub const PHOTO_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "tif", "tiff", "gif", "bmp", "heic", "heif",
    "hif", "avif",
];

/// How many entries a [`ScanEvent::Found`] batch carries at most.
pub const FOUND_BATCH: usize = 256;

/// Whether a path has one of [`PHOTO_EXTENSIONS`].
pub fn has_photo_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanOptions {
    /// Read EXIF (GPS, date) of each photo: a few KiB read per file.
    pub read_exif: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self { read_exif: true }
    }
}

/// Where a scan is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanProgress {
    /// Directory entries looked at.
    pub files_seen: usize,
    /// Photos (incl. ones with errors) listed so far.
    pub photos_found: usize,
    /// The folder being read.
    pub current_dir: PathBuf,
}

/// Walks `roots` (files or folders) and lists the photos. `cancel` is checked between files;
/// when set the scan returns [`LibraryError::Cancelled`]. `on_progress` is called every 64
/// files and `on_found` with each entry as it is found (before sorting). A root that does not
/// exist is listed as an entry with an error.
pub fn scan_paths(
    roots: &[PathBuf],
    options: ScanOptions,
    cancel: &AtomicBool,
    on_progress: &mut dyn FnMut(&ScanProgress),
    on_found: &mut dyn FnMut(&PhotoEntry),
) -> Result<Vec<PhotoEntry>, LibraryError> {
    let mut walker = Walker {
        options,
        cancel,
        on_progress,
        on_found,
        progress: ScanProgress::default(),
        entries: Vec::new(),
    };
    for root in roots {
        walker.root(root)?;
    }
    let mut entries = walker.entries;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|a, b| a.path == b.path);
    log::info!(
        "scan: {} photos in {} folders and files ({} with errors)",
        entries.len(),
        roots.len(),
        entries.iter().filter(|e| e.error.is_some()).count()
    );
    Ok(entries)
}

struct Walker<'a> {
    options: ScanOptions,
    cancel: &'a AtomicBool,
    on_progress: &'a mut dyn FnMut(&ScanProgress),
    on_found: &'a mut dyn FnMut(&PhotoEntry),
    progress: ScanProgress,
    entries: Vec<PhotoEntry>,
}

impl Walker<'_> {
    fn root(&mut self, root: &Path) -> Result<(), LibraryError> {
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => self.dir(root),
            Ok(_) => self.file(root),
            Err(e) => {
                self.push(error_entry(root, format!("could not open: {e}")));
                Ok(())
            }
        }
    }

    fn dir(&mut self, dir: &Path) -> Result<(), LibraryError> {
        self.progress.current_dir = dir.to_owned();
        let read = match std::fs::read_dir(dir) {
            Ok(read) => read,
            Err(e) => {
                // An unreadable sub-folder is listed as one entry, the rest goes on.
                self.push(error_entry(dir, format!("could not read folder: {e}")));
                return Ok(());
            }
        };
        let mut children: Vec<(PathBuf, std::fs::FileType)> = read
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| Some((e.path(), e.file_type().ok()?)))
            .collect();
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, kind) in children {
            self.check_cancel()?;
            self.progress.files_seen += 1;
            if self.progress.files_seen.is_multiple_of(64) {
                (self.on_progress)(&self.progress);
            }
            if kind.is_dir() {
                self.dir(&path)?;
                self.progress.current_dir = dir.to_owned();
            } else if has_photo_extension(&path) && !kind.is_dir() {
                // Files and symlinks to files; a symlink to a folder has a photo extension
                // only by accident and fails as "not an image" below.
                if kind.is_symlink() && path.is_dir() {
                    continue;
                }
                self.file(&path)?;
            }
        }
        Ok(())
    }

    fn file(&mut self, path: &Path) -> Result<(), LibraryError> {
        self.check_cancel()?;
        let entry = probe_file(path, self.options);
        self.push(entry);
        Ok(())
    }

    fn push(&mut self, entry: PhotoEntry) {
        (self.on_found)(&entry);
        self.entries.push(entry);
        self.progress.photos_found += 1;
    }

    fn check_cancel(&self) -> Result<(), LibraryError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(LibraryError::Cancelled)
        } else {
            Ok(())
        }
    }
}

fn error_entry(path: &Path, error: String) -> PhotoEntry {
    PhotoEntry {
        path: path.to_owned(),
        size_bytes: 0,
        modified: None,
        format: None,
        exif: Default::default(),
        error: Some(error),
    }
}

/// Stats, sniffs and (optionally) reads the EXIF of one file. Never fails: problems end up in
/// the entry's `error`.
pub fn probe_file(path: &Path, options: ScanOptions) -> PhotoEntry {
    let mut entry = error_entry(path, String::new());
    entry.error = None;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            entry.error = Some(format!("could not open: {e}"));
            return entry;
        }
    };
    entry.size_bytes = meta.len();
    entry.modified = meta.modified().ok();
    if meta.len() == 0 {
        entry.error = Some("empty file (0 bytes)".into());
        return entry;
    }
    let mut head = [0u8; 32];
    let read = std::fs::File::open(path).and_then(|mut f| {
        let mut n = 0;
        while n < head.len() {
            let k = f.read(&mut head[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        Ok(n)
    });
    let n = match read {
        Ok(n) => n,
        Err(e) => {
            entry.error = Some(format!("could not read: {e}"));
            return entry;
        }
    };
    entry.format = PhotoFormat::sniff(&head[..n]);
    match entry.format {
        None => {
            entry.error = Some(format!(
                "not a supported image ({})",
                crate::domain::SUPPORTED_FORMATS
            ));
            return entry;
        }
        // Listed with the reason, its EXIF still read (a position shows on the map).
        Some(format) if format.is_heif_container() && !crate::domain::HEIF_SUPPORTED => {
            entry.error = Some(crate::domain::NO_HEIF_SUPPORT.to_owned());
        }
        Some(_) => {}
    }
    if options.read_exif {
        // A broken EXIF block is not worth an error badge: the photo itself may be fine.
        entry.exif = super::exif::read_exif(path).unwrap_or_default();
    }
    entry
}

/// Events from a [`Scanner`].
#[derive(Debug)]
pub enum ScanEvent {
    Progress(ScanProgress),
    /// Entries in the order found (at most [`FOUND_BATCH`] at a time), not yet sorted.
    Found(Vec<PhotoEntry>),
    /// The scan ended; `entries` is the whole sorted, deduplicated list.
    Finished {
        entries: Vec<PhotoEntry>,
        elapsed: Duration,
    },
    Cancelled,
    Failed(String),
}

/// A scan on a named thread ("scan"). Drain [`Scanner::events`] each frame; dropping the
/// scanner cancels it and joins the thread.
pub struct Scanner {
    events: Receiver<ScanEvent>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Scanner {
    pub fn start(
        roots: Vec<PathBuf>,
        options: ScanOptions,
        repaint: RepaintFn,
    ) -> Result<Self, LibraryError> {
        let (tx, rx) = sync_channel(64);
        let cancel = Arc::new(AtomicBool::new(false));
        let thread_cancel = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name("scan".into())
            .spawn(move || scan_thread(&roots, options, &thread_cancel, &tx, &repaint))
            .map_err(LibraryError::io("start the scan thread", PathBuf::new()))?;
        Ok(Self {
            events: rx,
            cancel,
            thread: Some(thread),
        })
    }

    /// The events so far, without blocking.
    pub fn events(&self) -> TryIter<'_, ScanEvent> {
        self.events.try_iter()
    }

    /// Asks the scan to stop; a [`ScanEvent::Cancelled`] follows.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether the thread has ended (after `Finished`, `Cancelled` or `Failed`).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        self.cancel();
        // Detach the events: a thread blocked on the full channel fails its send and ends,
        // so joining never polls.
        let (_, detached) = sync_channel(0);
        drop(std::mem::replace(&mut self.events, detached));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn scan_thread(
    roots: &[PathBuf],
    options: ScanOptions,
    cancel: &AtomicBool,
    tx: &SyncSender<ScanEvent>,
    repaint: &RepaintFn,
) {
    let started = Instant::now();
    let send = |event: ScanEvent| {
        let ok = tx.send(event).is_ok();
        repaint();
        ok
    };
    let mut batch = Vec::new();
    let mut gone = false;
    let result = scan_paths(
        roots,
        options,
        cancel,
        &mut |p| {
            if !gone && !send(ScanEvent::Progress(p.clone())) {
                gone = true;
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &mut |entry| {
            batch.push(entry.clone());
            if batch.len() >= FOUND_BATCH && !send(ScanEvent::Found(std::mem::take(&mut batch))) {
                cancel.store(true, Ordering::Relaxed);
            }
        },
    );
    match result {
        Ok(entries) => {
            if !batch.is_empty() {
                send(ScanEvent::Found(batch));
            }
            send(ScanEvent::Finished {
                entries,
                elapsed: started.elapsed(),
            });
        }
        Err(LibraryError::Cancelled) => {
            send(ScanEvent::Cancelled);
        }
        Err(e) => {
            send(ScanEvent::Failed(e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_any_case() {
        assert!(has_photo_extension(Path::new("a/B.JPG")));
        assert!(has_photo_extension(Path::new("x.TiF")));
        assert!(!has_photo_extension(Path::new("notes.txt")));
        assert!(!has_photo_extension(Path::new("jpg")));
        for name in ["IMG_0001.HEIC", "a.heif", "DSCF0001.HIF", "b.avif"] {
            assert!(has_photo_extension(Path::new(name)), "{name}");
        }
    }

    /// A folder scan lists HEIC/HEIF photos by any of their extensions, sniffed as HEIF, with
    /// their EXIF GPS; a build without the `heif` feature lists them with the reason.
    #[test]
    fn heic_photos_are_listed_with_their_gps() {
        let tmp = tempfile::tempdir().unwrap();
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/heic_gps.heic");
        for name in ["IMG_0001.HEIC", "b.heif", "c.hif", "d.txt"] {
            std::fs::copy(&fixture, tmp.path().join(name)).unwrap();
        }
        let entries = scan_paths(
            &[tmp.path().to_owned()],
            ScanOptions::default(),
            &AtomicBool::new(false),
            &mut |_| {},
            &mut |_| {},
        )
        .unwrap();
        let names: Vec<String> = entries.iter().map(PhotoEntry::file_name).collect();
        assert_eq!(names, ["IMG_0001.HEIC", "b.heif", "c.hif"]);
        for entry in &entries {
            assert_eq!(entry.format, Some(PhotoFormat::Heif));
            let gps = entry.exif.gps.expect("GPS from the HEIC");
            assert!((gps.lat_deg - 48.8566).abs() < 1e-4, "{gps:?}");
            if crate::domain::HEIF_SUPPORTED {
                assert_eq!(entry.error, None);
            } else {
                let error = entry.error.as_deref().unwrap_or_default();
                assert!(error.contains("no HEIC/HEIF support"), "{error}");
            }
        }
    }

    #[test]
    fn sniffing() {
        assert_eq!(
            PhotoFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(PhotoFormat::Jpeg)
        );
        assert_eq!(
            PhotoFormat::sniff(b"\x89PNG\r\n\x1a\n"),
            Some(PhotoFormat::Png)
        );
        assert_eq!(PhotoFormat::sniff(b"hello world"), None);
    }

    #[test]
    fn cancelled_before_start() {
        let cancel = AtomicBool::new(true);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
        let r = scan_paths(
            &[dir],
            ScanOptions::default(),
            &cancel,
            &mut |_| {},
            &mut |_| {},
        );
        assert!(matches!(r, Err(LibraryError::Cancelled)));
    }
}
