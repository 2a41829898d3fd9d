//! Thumbnails, made off the UI thread and cached on disk.
//!
//! A thumbnail fits in `size_px` x `size_px` (longest edge `size_px`, aspect kept, never
//! upscaled), with the EXIF orientation applied, as RGBA8 for `egui::ColorImage`.
//!
//! - JPEGs decode through libjpeg-turbo with DCT scaling (1/8 .. 8/8, the smallest that still
//!   covers `size_px`), about 8x less work than a full decode for a camera photo; anything else
//!   (and any JPEG the fast path refuses, e.g. CMYK) goes through
//!   [`crate::model::preprocess::load_photo`], with its allocation limits.
//! - The disk cache lives in `<cache>/thumbnails/` (see [`default_cache_dir`]), one JPEG
//!   (quality 85) per thumbnail named by [`cache_key`]: sha256 of the absolute path, the file
//!   size, its modification time in nanoseconds and `size_px`. An edited file (new size or
//!   mtime) gets a new key, so a stale thumbnail is never shown; old entries are left for
//!   [`prune_cache`]. Writes go to a temporary name and are renamed into place.
//!
//! [`ThumbnailWorker`] is a named thread ("thumbnails") with a bounded request channel and a
//! bounded event channel; it calls the repaint callback after each event.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryIter, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use image::{DynamicImage, RgbImage, RgbaImage};

use super::{LibraryError, unix_nanos};
use crate::domain::RepaintFn;
use crate::model::files::DataDirs;
use crate::model::preprocess::EofFlaggingReader;

/// The default thumbnail edge, in pixels.
pub const DEFAULT_SIZE_PX: u32 = 256;
/// Requests the worker queues at most; [`ThumbnailWorker::request`] says `false` beyond.
pub const REQUEST_QUEUE: usize = 512;
/// Finished thumbnails waiting for the UI at most (each up to `size_px² x 4` bytes).
pub const EVENT_QUEUE: usize = 64;
const CACHE_VERSION: &str = "geoloupe-thumb-v1";
const CACHE_JPEG_QUALITY: u8 = 85;

/// A finished thumbnail.
#[derive(Clone, Debug, PartialEq)]
pub struct ThumbnailReady {
    pub path: PathBuf,
    /// RGBA8, row-major, `w * h * 4` bytes.
    pub rgba: Vec<u8>,
    pub w: u32,
    pub h: u32,
    /// Whether it came from the disk cache (no decode of the photo).
    pub from_cache: bool,
}

/// What the thumbnail worker reports.
#[derive(Debug)]
pub enum ThumbnailEvent {
    Ready(ThumbnailReady),
    /// The photo could not be decoded (shown as the entry's error badge).
    Failed {
        path: PathBuf,
        error: String,
    },
}

/// `<cache>/thumbnails`, where `<cache>` is the platform cache folder from `directories`
/// (`~/.cache/geoloupe` on Linux), or `$GEOLOUPE_DATA_DIR/cache`.
pub fn default_cache_dir() -> Result<PathBuf, LibraryError> {
    let dirs = DataDirs::resolve(None).map_err(|_| LibraryError::NoCacheDir)?;
    Ok(dirs.cache_dir.join("thumbnails"))
}

/// The cache file name for a photo: hex sha256 of (version, absolute path, size, mtime in ns,
/// `size_px`), 32 hex digits, `.jpg`.
pub fn cache_key(path: &Path, size_px: u32) -> Result<String, LibraryError> {
    let meta = std::fs::metadata(path).map_err(LibraryError::io("read the metadata of", path))?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mtime_ns = meta.modified().map(unix_nanos).unwrap_or(0);
    let text = format!(
        "{CACHE_VERSION}\0{}\0{}\0{mtime_ns}\0{size_px}",
        absolute.to_string_lossy(),
        meta.len()
    );
    let hash = crate::model::sha256_bytes(text.as_bytes());
    Ok(format!("{}.jpg", &hash[..32]))
}

/// Makes (or reads from the cache) the thumbnail of one photo, on the caller's thread.
/// `cache_dir` is created when missing; a cache that can't be written only costs speed.
pub fn thumbnail(
    path: &Path,
    size_px: u32,
    cache_dir: &Path,
) -> Result<ThumbnailReady, LibraryError> {
    let size_px = size_px.max(1);
    let key = cache_key(path, size_px)?;
    let cached = cache_dir.join(&key);
    if let Some(rgba) = read_cached(&cached) {
        return Ok(ThumbnailReady {
            path: path.to_owned(),
            w: rgba.width(),
            h: rgba.height(),
            rgba: rgba.into_raw(),
            from_cache: true,
        });
    }
    let bytes = std::fs::read(path).map_err(LibraryError::io("read", path))?;
    let rgb = decode_for_thumbnail(&bytes, path, size_px)?;
    let small = downsize(&rgb, size_px);
    // Caching is best effort.
    let _ = write_cached(cache_dir, &key, &small);
    let rgba = DynamicImage::ImageRgb8(small).into_rgba8();
    Ok(ThumbnailReady {
        path: path.to_owned(),
        w: rgba.width(),
        h: rgba.height(),
        rgba: rgba.into_raw(),
        from_cache: false,
    })
}

/// Removes cached thumbnails not used (read or written) for `older_than`. Returns how many.
pub fn prune_cache(cache_dir: &Path, older_than: Duration) -> Result<usize, LibraryError> {
    let read = match std::fs::read_dir(cache_dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(LibraryError::Io {
                action: "read the thumbnail cache".into(),
                path: cache_dir.to_owned(),
                source: e,
            });
        }
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in read.filter_map(Result::ok) {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > older_than);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

fn read_cached(path: &Path) -> Option<RgbaImage> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).ok()?;
    Some(img.into_rgba8())
}

fn write_cached(cache_dir: &Path, key: &str, rgb: &RgbImage) -> Result<(), LibraryError> {
    std::fs::create_dir_all(cache_dir).map_err(LibraryError::io("create", cache_dir))?;
    let mut bytes = Vec::new();
    let encoder =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, CACHE_JPEG_QUALITY);
    rgb.write_with_encoder(encoder)
        .map_err(|e| LibraryError::Decode {
            reason: format!("encoding the cached thumbnail: {e}"),
            path: cache_dir.join(key),
        })?;
    // Unique per thread so two workers never share a temporary file.
    let tmp = cache_dir.join(format!(
        "{key}.tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, &bytes).map_err(LibraryError::io("write", &tmp))?;
    std::fs::rename(&tmp, cache_dir.join(key)).map_err(LibraryError::io("rename", &tmp))
}

/// Fits `rgb` into `size_px` x `size_px`, keeping the aspect, never upscaling.
fn downsize(rgb: &RgbImage, size_px: u32) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let long = w.max(h).max(1);
    if long <= size_px {
        return rgb.clone();
    }
    let scale = f64::from(size_px) / f64::from(long);
    let nw = ((f64::from(w) * scale).round() as u32).clamp(1, size_px);
    let nh = ((f64::from(h) * scale).round() as u32).clamp(1, size_px);
    image::imageops::thumbnail(rgb, nw, nh)
}

/// Decodes with the EXIF orientation applied, cheaply when the photo is a JPEG.
fn decode_for_thumbnail(bytes: &[u8], path: &Path, size_px: u32) -> Result<RgbImage, LibraryError> {
    let fast = if image::guess_format(bytes).ok() == Some(image::ImageFormat::Jpeg) {
        decode_jpeg_scaled(bytes, size_px)
    } else {
        None
    };
    if let Some(rgb) = fast {
        let orientation = super::exif::read_exif_bytes(bytes, path)
            .ok()
            .and_then(|info| info.orientation)
            .and_then(|o| image::metadata::Orientation::from_exif(o as u8))
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut img = DynamicImage::ImageRgb8(rgb);
        img.apply_orientation(orientation);
        return Ok(img.into_rgb8());
    }
    crate::model::preprocess::decode_photo(bytes, path).map_err(|e| LibraryError::Decode {
        reason: decode_reason(&e),
        path: path.to_owned(),
    })
}

/// The reason part of a [`PhotoError`](crate::model::preprocess::PhotoError), without the
/// path (ours is appended by [`LibraryError`]).
fn decode_reason(e: &crate::model::preprocess::PhotoError) -> String {
    use crate::model::preprocess::PhotoError as E;
    match e {
        E::Io { source, .. } => source.to_string(),
        E::Empty { .. } => "empty file (0 bytes)".into(),
        E::UnknownFormat { .. } => "not a supported image".into(),
        E::NoHeifSupport { .. } => crate::domain::NO_HEIF_SUPPORT.into(),
        E::TooLarge { reason, .. } => format!("too large: {reason}"),
        E::Decode { reason, .. } => reason.clone(),
        E::ExtremeAspect {
            width_px,
            height_px,
            ..
        } => format!("{width_px}x{height_px}"),
    }
}

/// libjpeg-turbo with DCT scaling; `None` when anything is unusual (then the careful path
/// decodes and reports the error).
fn decode_jpeg_scaled(bytes: &[u8], size_px: u32) -> Option<RgbImage> {
    let ran_out = AtomicBool::new(false);
    let decoded = std::panic::catch_unwind(|| -> Option<RgbImage> {
        let reader = EofFlaggingReader {
            rest: bytes,
            ran_out: &ran_out,
        };
        let mut dec = mozjpeg::Decompress::new_reader(reader).ok()?;
        match dec.color_space() {
            mozjpeg::ColorSpace::JCS_YCbCr
            | mozjpeg::ColorSpace::JCS_RGB
            | mozjpeg::ColorSpace::JCS_GRAYSCALE => {}
            _ => return None,
        }
        let (w, h) = dec.size();
        // Same limits as the careful decoder, which then reports the refusal.
        if crate::model::preprocess::check_declared_size(w as u64, h as u64, 3).is_err() {
            return None;
        }
        let long = w.max(h).max(1) as u64;
        // Smallest numerator n (of n/8) with long * n / 8 >= size_px.
        let n = (u64::from(size_px) * 8).div_ceil(long).clamp(1, 8) as u8;
        dec.scale(n);
        dec.do_fancy_upsampling(false);
        dec.dct_method(mozjpeg::DctMethod::IntegerFast);
        let mut started = dec.rgb().ok()?;
        let (ow, oh) = (started.width(), started.height());
        let pixels: Vec<u8> = started.read_scanlines().ok()?;
        started.finish().ok()?;
        RgbImage::from_raw(u32::try_from(ow).ok()?, u32::try_from(oh).ok()?, pixels)
    });
    // libjpeg pads a truncated file with grey and only warns: leave those to the careful
    // decoder, which reports them as errors.
    decoded
        .ok()
        .flatten()
        .filter(|_| !ran_out.load(Ordering::Relaxed))
}

enum Request {
    Make { path: PathBuf, generation: u64 },
}

/// The thumbnail thread. Ask with [`request`](Self::request), drain [`events`](Self::events)
/// each frame; [`cancel_all`](Self::cancel_all) drops everything queued (e.g. after the grid
/// scrolled far away). Dropping it cancels, stops and joins the thread.
pub struct ThumbnailWorker {
    requests: SyncSender<Request>,
    events: Receiver<ThumbnailEvent>,
    generation: Arc<AtomicU64>,
    size_px: u32,
    cache_dir: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl ThumbnailWorker {
    /// Starts the "thumbnails" thread. `cache_dir` is usually [`default_cache_dir`].
    pub fn start(
        cache_dir: PathBuf,
        size_px: u32,
        repaint: RepaintFn,
    ) -> Result<Self, LibraryError> {
        let (requests, request_rx) = sync_channel(REQUEST_QUEUE);
        let (event_tx, events) = sync_channel(EVENT_QUEUE);
        let generation = Arc::new(AtomicU64::new(0));
        let thread_generation = Arc::clone(&generation);
        let thread_dir = cache_dir.clone();
        let size_px = size_px.max(1);
        let thread = std::thread::Builder::new()
            .name("thumbnails".into())
            .spawn(move || {
                crate::threads::lower_current_thread_priority();
                for request in request_rx {
                    let Request::Make { path, generation } = request;
                    if generation != thread_generation.load(Ordering::Relaxed) {
                        continue;
                    }
                    let event = match thumbnail(&path, size_px, &thread_dir) {
                        Ok(ready) => ThumbnailEvent::Ready(ready),
                        Err(e) => ThumbnailEvent::Failed {
                            path,
                            error: e.to_string(),
                        },
                    };
                    if event_tx.send(event).is_err() {
                        break;
                    }
                    repaint();
                }
            })
            .map_err(LibraryError::io(
                "start the thumbnail thread",
                PathBuf::new(),
            ))?;
        Ok(Self {
            requests,
            events,
            generation,
            size_px,
            cache_dir,
            thread: Some(thread),
        })
    }

    /// Queues a thumbnail. `false` when the queue is full (ask again next frame) or the
    /// thread is gone. Each request gets one [`ThumbnailEvent`], unless cancelled.
    pub fn request(&self, path: PathBuf) -> bool {
        let generation = self.generation.load(Ordering::Relaxed);
        match self.requests.try_send(Request::Make { path, generation }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Drops every queued request (the one being made still finishes).
    pub fn cancel_all(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Finished thumbnails and failures so far, without blocking.
    pub fn events(&self) -> TryIter<'_, ThumbnailEvent> {
        self.events.try_iter()
    }

    pub fn size_px(&self) -> u32 {
        self.size_px
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }
}

impl Drop for ThumbnailWorker {
    fn drop(&mut self) {
        // Queued requests are skipped; detaching the events makes the thread's next send fail
        // and end it, so joining never polls.
        self.cancel_all();
        let (_, detached) = sync_channel(0);
        drop(std::mem::replace(&mut self.events, detached));
        // Closing the request channel ends the thread's loop once the stale requests are
        // skipped, however full the queue was.
        let (closed, _) = sync_channel(0);
        drop(std::mem::replace(&mut self.requests, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsize_keeps_aspect_and_never_upscales() {
        let img = RgbImage::new(400, 100);
        let small = downsize(&img, 200);
        assert_eq!(small.dimensions(), (200, 50));
        let tiny = RgbImage::new(30, 20);
        assert_eq!(downsize(&tiny, 200).dimensions(), (30, 20));
    }

    /// An iPhone-style HEIC (irot + EXIF Orientation 6, stored 320 x 240) thumbnails upright,
    /// turned once (portrait); without the `heif` feature the reason says how to get it.
    #[test]
    fn heic_thumbnail_is_portrait_or_explains_why_not() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/heic_gps.heic");
        let cache = tempfile::tempdir().unwrap();
        let result = thumbnail(&path, 64, cache.path());
        if crate::domain::HEIF_SUPPORTED {
            let ready = result.unwrap();
            assert_eq!((ready.w, ready.h), (48, 64));
        } else {
            let message = result.err().unwrap().to_string();
            assert!(message.contains("no HEIC/HEIF support"), "{message}");
            assert!(message.ends_with("heic_gps.heic"), "{message}");
        }
    }

    #[test]
    fn jpeg_fast_path_scales_and_orients() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
        let bytes = std::fs::read(dir.join("kauai.jpg")).unwrap();
        let rgb = decode_jpeg_scaled(&bytes, 64).unwrap();
        let full = crate::model::preprocess::decode_photo(&bytes, &dir.join("kauai.jpg")).unwrap();
        let (w, h) = full.dimensions();
        assert!(rgb.width().max(rgb.height()) >= 64);
        assert!(rgb.width() < w || w <= 64);
        // Same aspect (to within DCT-scaling rounding).
        let a = f64::from(w) / f64::from(h);
        let b = f64::from(rgb.width()) / f64::from(rgb.height());
        assert!((a - b).abs() < 0.05, "{a} vs {b}");
    }

    #[test]
    fn truncated_jpeg_is_not_padded_by_the_fast_path() {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/bad/truncated.jpg"),
        )
        .unwrap();
        assert!(decode_jpeg_scaled(&bytes, 64).is_none());
    }

    #[test]
    fn cache_key_changes_with_size() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png");
        assert_ne!(
            cache_key(&path, 128).unwrap(),
            cache_key(&path, 256).unwrap()
        );
        assert_eq!(
            cache_key(&path, 128).unwrap(),
            cache_key(&path, 128).unwrap()
        );
    }

    #[test]
    fn a_jpeg_over_the_pixel_limit_is_refused_by_the_fast_path_too() {
        // kauai.jpg (YCbCr: the fast path) declaring 15000 x 15000: 675 MB decoded, under the
        // byte budget, over the pixel limit shared with the model's decoder.
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/kauai.jpg"),
        )
        .unwrap();
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 9].copy_from_slice(&[0x3A, 0x98, 0x3A, 0x98]);
        assert!(decode_jpeg_scaled(&bytes, 64).is_none());
        let path = dir.path().join("huge.jpg");
        std::fs::write(&path, &bytes).unwrap();
        let err = thumbnail(&path, 64, &dir.path().join("cache"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("too large") && err.contains("limit 178956970 pixels"),
            "{err}"
        );
    }
}
