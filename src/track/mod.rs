//! GPS tracks (issue 12): reading GPX, NMEA and KML logs as streams, and placing photos on
//! them by capture time with exactly exiftool's `-geotag` semantics (Image::ExifTool::Geotag,
//! `SetGeoValues`, exiftool 12.57).
//!
//! Pure logic and file readers only: no egui, no candle; uses `geo` and `domain`.
//!
//! - [`time`]: UTC seconds from ISO 8601, EXIF capture times (+ offset, sub-seconds, `--tz`),
//!   clock offsets as `-geosync` reads them.
//! - [`read`]: the streaming readers ([`load_tracks`]), keeping only the fixes near the photos'
//!   times ([`TimeWindows`]) so a 500 MB log runs in bounded memory.
//! - [`correlate`]: one photo time -> [`Placement`] (matched or refused with the reason), the
//!   offset that puts a photo at a chosen track point.
//! - [`neighbours`]: photos of the same set with their own GPS as the fixes.

pub mod correlate;
pub mod neighbours;
pub mod read;
pub mod time;

use std::path::PathBuf;

use crate::geo::LatLon;

pub use correlate::{
    Limits, Placement, Refusal, correlate, nearest_fix_time, offset_for_placement,
};
pub use read::{TimeWindows, load_tracks};
pub use time::{CaptureTime, TimeZone, parse_offset, parse_zone};

/// One GPS fix: a time (UTC seconds since 1970), a position, an altitude when the log has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    pub time_secs: f64,
    pub position: LatLon,
    pub altitude_m: Option<f64>,
    /// The first fix (in file order) of its track file: exiftool allows `max_ext` instead of
    /// `max_int` across the gap that ends at it (the gap between two merged tracks).
    pub first_of_file: bool,
    /// Index into [`TrackSet::sources`]: which file (or photo) the fix came from.
    pub source: u32,
}

/// Fixes of one or more tracks merged by time, as exiftool merges every `-geotag` file into one
/// table keyed by time: sorted, one fix per time (of fixes with equal times the one read last
/// wins), segments and tracks not kept apart (a gap between two segments is a gap like any).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrackSet {
    pub fixes: Vec<Fix>,
    /// The track files' names (no folder), or the neighbouring photos' names.
    pub sources: Vec<String>,
    /// Whether any fix has a non-zero altitude (exiftool's `Has{alt}`: without one, no fix's
    /// altitude is used).
    pub has_altitude: bool,
}

impl TrackSet {
    pub fn source_name(&self, fix: &Fix) -> &str {
        self.sources
            .get(fix.source as usize)
            .map_or("", String::as_str)
    }
}

/// Why a track could not be read: one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("cannot read track {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("track {} has no GPS fixes", path.display())]
    Empty { path: PathBuf },
    #[error("track {} has {points} points but none with a time", path.display())]
    NoTimestamps { path: PathBuf, points: u64 },
    #[error("track {} is malformed at byte {position}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        position: u64,
        message: String,
    },
    #[error(
        "track {} is not GPX, KML or NMEA 0183 (RMC/GGA sentences)",
        path.display()
    )]
    UnknownFormat { path: PathBuf },
}
