//! The photo library: finding photos on disk, reading their EXIF, making thumbnails and
//! remembering what the model said and what the user decided.
//!
//! - [`scan`]: walking files and folders (recursively) for photos, cancellable, with progress,
//!   on the caller's thread ([`scan::scan_paths`]) or a named thread ([`scan::Scanner`]);
//! - [`exif`]: the EXIF GPS position ([`LatLon`]), DateTimeOriginal and orientation;
//! - [`thumbnails`]: a named worker thread that decodes, downsizes and caches thumbnails on disk;
//! - [`store`]: the SQLite database of results, decisions (with undo/redo) and provenance.
//!
//! Nothing here depends on egui: workers take a [`RepaintFn`] to wake the UI after each event.
//! A file that can't be read becomes a [`PhotoEntry`] with an `error`, never a panic.

pub mod exif;
pub mod scan;
pub mod shard;
pub mod store;
pub mod thumbnails;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use crate::domain::{Decision, PhotoFormat, RepaintFn, no_repaint};
pub use exif::ExifInfo;
pub use scan::{ScanEvent, ScanProgress, Scanner, scan_paths};
pub use store::{FileStatus, PhotoRecord, Store, StoredResult};
pub use thumbnails::{ThumbnailEvent, ThumbnailReady, ThumbnailWorker};

use crate::geo::LatLon;

/// Errors of the library domain. Paths come last in messages.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("could not {action}: {path}: {source}")]
    Io {
        action: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error while {context}: {source}")]
    Sqlite {
        context: String,
        source: rusqlite::Error,
    },
    #[error(
        "the library database is from a newer geoloupe (schema {found}, this build knows up to {known}): {path}"
    )]
    SchemaTooNew {
        found: i64,
        known: i64,
        path: PathBuf,
    },
    #[error("could not read EXIF ({reason}): {path}")]
    Exif { reason: String, path: PathBuf },
    #[error("could not decode image ({reason}): {path}")]
    Decode { reason: String, path: PathBuf },
    #[error("no cache folder could be found for this user (no home directory?)")]
    NoCacheDir,
    #[error("the {0} thread has stopped")]
    WorkerGone(&'static str),
    #[error("cancelled")]
    Cancelled,
}

impl LibraryError {
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let (action, path) = (action.into(), path.into());
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Self {
        let context = context.into();
        move |source| Self::Sqlite { context, source }
    }
}

/// One photo found by a scan: what the browser lists.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoEntry {
    pub path: PathBuf,
    pub size_bytes: u64,
    /// The file's modification time, when the file system has one.
    pub modified: Option<SystemTime>,
    /// The format its first bytes say (not its extension); `None` when unrecognised.
    pub format: Option<PhotoFormat>,
    /// EXIF GPS, DateTimeOriginal, orientation; empty when the photo has none.
    pub exif: ExifInfo,
    /// Why this file can't be used (unreadable, empty, not an image), shown in the browser.
    /// Decoding problems found later (a truncated JPEG) come from the thumbnail worker.
    pub error: Option<String>,
}

impl PhotoEntry {
    /// The file name for display (lossy UTF-8).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The folder the photo is in (for "filter by folder").
    pub fn folder(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// The EXIF GPS fix (a camera's or another tool's), when there is a valid one. geoloupe's
    /// own estimates ([`ExifInfo::gps_estimate`]) and invalid GPS ([`ExifInfo::gps_invalid`])
    /// are not fixes.
    pub fn gps(&self) -> Option<LatLon> {
        self.exif.gps
    }

    /// How the photo's EXIF GPS reads, for the browser, the inspector and the command line.
    pub fn gps_note(&self) -> Option<String> {
        if let Some(estimate) = &self.exif.gps_estimate {
            return Some(format!(
                "{} (an estimate geoloupe wrote{})",
                estimate.position,
                estimate
                    .error_m
                    .map(|m| format!(", ±{:.0} km", m / 1000.0))
                    .unwrap_or_default()
            ));
        }
        if let Some(reason) = &self.exif.gps_invalid {
            return Some(format!("invalid: {reason}"));
        }
        self.gps().map(|p| p.to_string())
    }

    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Nanoseconds since the Unix epoch of a file time (0 before 1970), saturating.
pub(crate) fn unix_nanos(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
