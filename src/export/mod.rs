//! Exports and write-back: the answers leave geoloupe as files other tools read.
//!
//! - [`gpx`]: GPX 1.1 waypoints (GPS and mapping tools), provenance under `<extensions>`;
//! - [`csv`]: one row per point, for spreadsheets and scripts;
//! - [`geojson`]: an RFC 7946 `FeatureCollection` (longitude first);
//! - [`xmp`]: XMP sidecars (`photo.jpg.xmp` or `photo.xmp`), merged into an existing sidecar;
//! - [`parquet`]: results of large runs (`locate --output`, `merge`), one row per photo;
//! - [`exif_write`]: EXIF GPS written into JPEGs, pixels untouched, with a backup and an atomic
//!   replace.
//!
//! Everything takes a slice of [`ExportRecord`]s: one photo each, with the location to export
//! (accepted by the user, or the model's top-1 candidate), its candidates with place names, an
//! optional [`ClaimCheck`], the provenance of the estimate and the photo's EXIF time. The text
//! formats are pure; one pipeline serves the app and the command line: [`ExportFormat`] (by the
//! file's extension), [`ExportWriter`] (record by record, so output can be streamed) and
//! [`write_export`] (the whole file, atomically). Photo paths are written as [`PathStyle`] says
//! (relative to the exported file by default) and losslessly ([`paths`]). The writers that
//! touch photos or sidecars only do so when called ([`WriteBack`]), and each can list what it
//! would write first (the dry run).

pub mod csv;
pub mod exif_write;
pub mod geojson;
pub mod gpx;
pub mod parquet;
pub mod paths;
pub mod xmp;

pub use paths::{PathStyle, PathText, PhotoPaths};

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::domain::{
    Candidate, Origin, PointKind, Prediction, Provenance, RefinedPoint, RegionConstraint,
    format_offset,
};
use crate::geo::{ClaimCheck, ClaimSource, LatLon, Place, check_claim, nearest_place};

/// Our XML namespace (GPX extensions and XMP sidecars).
pub const GEOLOUPE_NS: &str = "https://github.com/geoloupe/geoloupe/ns/estimate/1.0/";
/// The prefix we use for [`GEOLOUPE_NS`].
pub const GEOLOUPE_PREFIX: &str = "geoloupe";
/// The model named in provenance records (the backbone is recorded separately).
pub use crate::domain::MODEL_NAME;

/// Errors of the export domain. Paths come last in messages.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("could not {action}: {path}: {source}")]
    Io {
        action: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the folder is read-only, nothing was written: {path}")]
    ReadOnlyFolder { path: PathBuf },
    #[error("the file is read-only, nothing was written: {path}")]
    ReadOnlyFile { path: PathBuf },
    #[error("not a JPEG ({reason}); EXIF GPS is only written into JPEG files: {path}")]
    NotJpeg { reason: String, path: PathBuf },
    #[error("the photo's EXIF block can't be updated safely ({reason}): {path}")]
    BadExif { reason: String, path: PathBuf },
    #[error(
        "the existing sidecar is not XMP that can be merged ({reason}); it was left as it is: {path}"
    )]
    BadSidecar { reason: String, path: PathBuf },
    #[error("choose a file name ending in .gpx, .csv or .geojson: {path}")]
    UnknownFormat { path: PathBuf },
    #[error("invalid location {0:?}")]
    InvalidLocation(LatLon),
    #[error("could not write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl ExportError {
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
}

/// Whether an export's location was accepted by the user or is the model's best guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocationSource {
    /// The user accepted (or placed) this location.
    Accepted,
    /// Nobody decided: the model's top-1 candidate.
    TopCandidate,
}

impl LocationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::TopCandidate => "top-candidate",
        }
    }

    /// Whether a person reviewed the location: `accepted`, or `estimate (unreviewed)` for the
    /// model's top-1 nobody accepted (the `review` field of every export and sidecar).
    pub fn review_label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::TopCandidate => "estimate (unreviewed)",
        }
    }
}

/// One ranked candidate as exported.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportCandidate {
    /// 1 is the model's best guess.
    pub rank: usize,
    pub position: LatLon,
    pub probability: f32,
    pub gallery_index: usize,
    pub place: Option<Place>,
    /// The refined point beside the gallery point `position` (`locate --refine`, the app's
    /// refinement), when refined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refined: Option<ExportRefined>,
}

/// A refined candidate's point as exported: where, its similarity, its nearest place.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportRefined {
    pub position: LatLon,
    pub logit: f32,
    pub similarity: f32,
    pub place: Option<Place>,
}

impl ExportRefined {
    fn new(r: &RefinedPoint) -> Self {
        Self {
            position: r.position,
            logit: r.logit,
            similarity: r.similarity,
            place: nearest_place(r.position),
        }
    }
}

/// When a photo was taken, from EXIF DateTimeOriginal (+ OffsetTimeOriginal).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TakenAt {
    /// The camera's local time, `YYYY-MM-DDTHH:MM:SS`.
    pub local: String,
    /// The offset from UTC in minutes, when the camera recorded one.
    pub utc_offset_minutes: Option<i32>,
}

impl TakenAt {
    /// From the library's EXIF text, `YYYY-MM-DDTHH:MM:SS` with an optional `+HH:MM` offset.
    pub fn from_exif_text(text: &str) -> Option<Self> {
        const LOCAL_LEN: usize = "YYYY-MM-DDTHH:MM:SS".len();
        let local = text.get(..LOCAL_LEN)?.to_owned();
        let offset = text.get(LOCAL_LEN..)?;
        Some(Self {
            local,
            utc_offset_minutes: (!offset.is_empty())
                .then(|| parse_offset(offset.as_bytes()))
                .flatten(),
        })
    }

    /// RFC 3339 in UTC (`2021-06-01T10:34:56Z`), as GPX requires; `None` when the camera
    /// recorded no offset from UTC (OffsetTimeOriginal), so the local time can't be converted
    /// honestly: GPX then leaves `<time>` out and keeps the local time under `<extensions>`.
    pub fn utc_rfc3339(&self) -> Option<String> {
        let offset = self.utc_offset_minutes?;
        shift_local(&self.local, -offset).map(|utc| format!("{utc}Z"))
    }

    /// `local` with the offset appended (`2021-06-01T12:34:56+02:00`) when known.
    pub fn local_with_offset(&self) -> String {
        match self.utc_offset_minutes {
            Some(m) => {
                let sign = if m < 0 { '-' } else { '+' };
                format!(
                    "{}{sign}{:02}:{:02}",
                    self.local,
                    m.abs() / 60,
                    m.abs() % 60
                )
            }
            None => self.local.clone(),
        }
    }
}

/// One photo's export: everything every format needs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportRecord {
    pub path: PathBuf,
    /// The location to export.
    pub location: LatLon,
    pub location_source: LocationSource,
    /// The nearest place to `location`.
    pub place: Option<Place>,
    /// Whether `location` is a gallery point or a refined one (`None`: a location the user
    /// placed, neither).
    #[serde(default)]
    pub location_kind: Option<PointKind>,
    /// Ranked candidates, best first.
    pub candidates: Vec<ExportCandidate>,
    /// The claimed location compared with the model's answer: the typed claim when there is
    /// one, else the photo's EXIF GPS (every format carries this one).
    pub claim: Option<ClaimCheck>,
    /// The photo's other claims checked too: its EXIF GPS when a typed claim is `claim`
    /// (GeoJSON carries them; GPX, CSV and XMP have room for one claim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_claims: Vec<ClaimCheck>,
    /// Which model made the estimate (hashes and the backbone's name: no paths).
    pub provenance: Provenance,
    /// When the estimate was made, UTC, RFC 3339 (`2026-11-23T19:40:00Z`).
    pub estimated_at: String,
    pub taken_at: Option<TakenAt>,
    /// Whether EXIF/XMP write-backs may replace the photo's EXIF GPS when it is present but
    /// invalid (`ExifInfo::gps_invalid`); off by default: the user must ask for it.
    #[serde(default)]
    pub overwrite_invalid_gps: bool,
    /// Whether XMP sidecars also get the place's names as IPTC location (`photoshop:City`,
    /// `photoshop:State`, `photoshop:Country`, `Iptc4xmpCore:CountryCode`; see [`xmp`]). The
    /// app sets it for accepted locations (a setting, on by default), the command line with
    /// `--iptc-location`; off here.
    #[serde(default)]
    pub iptc_location: bool,
    /// The photos this one was located together with (itself included), when its candidates
    /// are a group's (`locate --together`, the app's "Locate together"); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<PathBuf>,
    /// The region the answer was restricted to (`locate --within`, the app's region control),
    /// with the share of the model's belief inside; candidates then come from inside only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<RegionConstraint>,
    /// Where `location` came from (issue 12): [`ExportRecord::new`] sets
    /// [`Origin::Estimate`] for a candidate (accepted or not) and [`Origin::Hand`] for an
    /// accepted location that is no candidate; a track, a neighbour or a trip sets its own.
    #[serde(default = "default_origin")]
    pub origin: Origin,
}

fn default_origin() -> Origin {
    Origin::Estimate
}

impl ExportRecord {
    /// The file name, as waypoint names use it.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// The candidate at the exported location: rank 1 for [`LocationSource::TopCandidate`], the
    /// candidate within 1 m of an accepted location or of a trip's point ([`Origin::Trip`]; its
    /// gallery or its refined point), or `None`.
    pub fn chosen_candidate(&self) -> Option<&ExportCandidate> {
        // A trip's point is any of the photo's candidates (or none of those shown).
        if let Origin::Trip { .. } = self.origin {
            return self.candidates.iter().find(|c| {
                c.position.distance_km(&self.location) < 0.001
                    || c.refined
                        .as_ref()
                        .is_some_and(|r| r.position.distance_km(&self.location) < 0.001)
            });
        }
        match self.location_source {
            LocationSource::TopCandidate => self.candidates.first(),
            LocationSource::Accepted => self.candidates.iter().find(|c| {
                c.position.distance_km(&self.location) < 0.001
                    || c.refined
                        .as_ref()
                        .is_some_and(|r| r.position.distance_km(&self.location) < 0.001)
            }),
        }
    }

    /// Which point an accepted location is: a candidate's gallery point, its refined point,
    /// or neither (`None`, placed by the user).
    fn kind_of_accepted(candidates: &[Candidate], at: LatLon) -> Option<PointKind> {
        candidates.iter().find_map(|c| {
            if c.position.distance_km(&at) < 0.001 {
                Some(PointKind::Gallery)
            } else if c
                .refined
                .is_some_and(|r| r.position.distance_km(&at) < 0.001)
            {
                Some(PointKind::Refined)
            } else {
                None
            }
        })
    }

    /// Builds a record from ranked candidates: looks up place names (offline) and reads the
    /// EXIF time from the photo when it has one. `accepted` is the user's decision; without one
    /// the top-1 candidate is exported (its refined point when it was refined: see
    /// [`ExportRecord::location_kind`]). `claim` comes from [`crate::geo::check_claim`] or
    /// [`crate::geo::check_claim_points`]. `None` when there is neither a candidate nor an
    /// accepted location.
    pub fn new(
        path: &Path,
        candidates: &[Candidate],
        provenance: Provenance,
        estimated_at: String,
        accepted: Option<LatLon>,
        claim: Option<ClaimCheck>,
    ) -> Option<Self> {
        let (location, location_source, location_kind) = match (accepted, candidates.first()) {
            (Some(a), _) => (
                a,
                LocationSource::Accepted,
                Self::kind_of_accepted(candidates, a),
            ),
            (None, Some(top1)) => {
                let (at, kind) = top1.best_position();
                (at, LocationSource::TopCandidate, Some(kind))
            }
            (None, None) => return None,
        };
        let candidates = candidates
            .iter()
            .map(|c| ExportCandidate {
                rank: c.rank,
                position: c.position,
                probability: c.probability,
                gallery_index: c.gallery_index,
                place: nearest_place(c.position),
                refined: c.refined.as_ref().map(ExportRefined::new),
            })
            .collect();
        Some(Self {
            path: path.to_owned(),
            location,
            location_source,
            place: nearest_place(location),
            location_kind,
            candidates,
            claim,
            other_claims: Vec::new(),
            provenance,
            estimated_at,
            taken_at: read_taken_at(path),
            overwrite_invalid_gps: false,
            iptc_location: false,
            group: Vec::new(),
            within: None,
            origin: if location_source == LocationSource::Accepted && location_kind.is_none() {
                Origin::Hand
            } else {
                Origin::Estimate
            },
        })
    }

    /// [`ExportRecord::new`] from the engine's [`Prediction`], with the claim (if any) checked
    /// over the full probability vector. `gallery_coords_lat_lon_deg` is
    /// `Gallery::coords_lat_lon_deg`.
    pub fn from_prediction(
        path: &Path,
        prediction: &Prediction,
        gallery_coords_lat_lon_deg: &[[f32; 2]],
        provenance: Provenance,
        estimated_at: String,
        accepted: Option<LatLon>,
        claim: Option<(LatLon, ClaimSource)>,
    ) -> Option<Self> {
        let top1 = prediction.candidates.first().map(|c| c.position);
        let claim = match (claim, top1) {
            (Some((claimed, source)), Some(top1)) => check_claim(
                claimed,
                source,
                top1,
                &prediction.probabilities,
                gallery_coords_lat_lon_deg,
            )
            .ok(),
            _ => None,
        };
        Self::new(
            path,
            &prediction.candidates,
            provenance,
            estimated_at,
            accepted,
            claim,
        )
    }
}

/// One point to write: a photo's exported location, or (with all candidates) one candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportPoint<'a> {
    pub record: &'a ExportRecord,
    /// `photo.jpg` for the exported location, `photo.jpg #3` for the 3rd candidate.
    pub name: String,
    pub position: LatLon,
    /// `accepted`, `top-candidate` or `candidate`.
    pub role: &'static str,
    pub candidate: Option<&'a ExportCandidate>,
    pub place: Option<&'a Place>,
    /// Whether `position` is a gallery point or a refined one (`None`: placed by the user).
    pub kind: Option<PointKind>,
}

impl ExportPoint<'_> {
    /// `"GeoCLIP estimate (top candidate), rank 1, probability 0.123456, near Lihue, Hawaii, United States"`;
    /// a location from elsewhere than GeoCLIP's single-photo answer says where
    /// (`"location from track day1.gpx, clock +1:00:00 (not reviewed), near ..."`).
    pub fn description(&self) -> String {
        let origin = self.origin();
        let mut text = match (self.role, origin) {
            ("accepted", Origin::Estimate | Origin::Hand) => {
                "location accepted by the user".to_owned()
            }
            ("accepted", other) => {
                format!("location accepted by the user, from {}", other.describe())
            }
            ("top-candidate", Origin::Estimate) => {
                "GeoCLIP estimate (top candidate, not reviewed)".to_owned()
            }
            ("top-candidate", Origin::Trip { .. }) => {
                format!("GeoCLIP {} (not reviewed)", origin.describe())
            }
            ("top-candidate", other) => {
                format!("location from {} (not reviewed)", other.describe())
            }
            _ => "GeoCLIP candidate".to_owned(),
        };
        if let Some(c) = self.candidate {
            text.push_str(&format!(
                ", rank {}, probability {:.6}",
                c.rank, c.probability
            ));
        }
        if let Some(similarity) = self.refined_similarity() {
            text.push_str(&format!(
                ", refined point (similarity {similarity:.6}), not a gallery point"
            ));
        }
        if let Some(p) = self.place {
            text.push_str(&format!(", {}", p.describe()));
        }
        text
    }
}

impl ExportPoint<'_> {
    /// Where this point came from: the record's [`Origin`] for its exported location; a
    /// candidate written beside it (all candidates) is GeoCLIP's single-photo answer.
    pub fn origin(&self) -> &Origin {
        static ESTIMATE: Origin = Origin::Estimate;
        if self.role == "candidate" {
            &ESTIMATE
        } else {
            &self.record.origin
        }
    }

    /// Whether the point is an estimate from the photo's pixels ([`Origin::is_from_pixels`]):
    /// a track's or a neighbouring photo's GPS, or a position placed by hand, is not.
    pub fn is_estimate(&self) -> bool {
        self.origin().is_from_pixels()
    }

    /// The point's altitude in metres, when it came from a track that has one.
    pub fn altitude_m(&self) -> Option<f64> {
        origin_altitude_m(self.origin())
    }

    /// `gallery`, `refined`, or empty for a location the user placed.
    pub fn kind_str(&self) -> &'static str {
        self.kind.map(PointKind::as_str).unwrap_or("")
    }

    /// The refined point's similarity, for a refined point.
    pub fn refined_similarity(&self) -> Option<f32> {
        if self.kind != Some(PointKind::Refined) {
            return None;
        }
        self.candidate
            .and_then(|c| c.refined.as_ref())
            .map(|r| r.similarity)
    }
}

/// `geoloupe estimate`, `geoloupe track`, ...: what a GPX waypoint's `<src>` says.
pub fn origin_source(origin: &Origin) -> String {
    format!("geoloupe {}", origin.as_str())
}

/// A track's altitude in metres at the location (finite only), for [`Origin::Track`].
pub fn origin_altitude_m(origin: &Origin) -> Option<f64> {
    match origin {
        Origin::Track { altitude_m, .. } => altitude_m.filter(|a| a.is_finite()),
        _ => None,
    }
}

/// One detail of an [`Origin`], as every format writes it (each in its own style: see the
/// names below); which ones a location has depends on its kind ([`origin_fields`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginField {
    /// The track file's name.
    Track,
    /// The camera clock's correction as `+H:MM:SS` ([`format_offset`]).
    ClockOffset,
    /// The same in seconds (added to the photo's time).
    ClockOffsetSecs,
    /// The track's altitude at the location, metres.
    AltitudeM,
    /// The neighbouring photo's file name.
    NeighbourPhoto,
    /// How far apart in time the two photos were taken, seconds (signed as the source gives it).
    NeighbourSeconds,
    /// The trip's top speed, km/h.
    TripMaxSpeedKmh,
    /// The single-photo answer kept beside a trip posterior.
    SinglePhotoLatDeg,
    SinglePhotoLonDeg,
}

impl OriginField {
    /// Every field, in the order the CSV's columns (and the other formats) have them.
    pub const ALL: [Self; 9] = [
        Self::Track,
        Self::ClockOffset,
        Self::ClockOffsetSecs,
        Self::AltitudeM,
        Self::NeighbourPhoto,
        Self::NeighbourSeconds,
        Self::TripMaxSpeedKmh,
        Self::SinglePhotoLatDeg,
        Self::SinglePhotoLonDeg,
    ];

    /// The CSV column and GeoJSON property (`snake_case`, units in the name).
    pub fn csv_name(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::ClockOffset => "clock_offset",
            Self::ClockOffsetSecs => "clock_offset_secs",
            Self::AltitudeM => "altitude_m",
            Self::NeighbourPhoto => "neighbour_photo",
            Self::NeighbourSeconds => "neighbour_seconds",
            Self::TripMaxSpeedKmh => "trip_max_speed_kmh",
            Self::SinglePhotoLatDeg => "single_photo_lat_deg",
            Self::SinglePhotoLonDeg => "single_photo_lon_deg",
        }
    }

    /// The GPX extension element in our namespace (`lowerCamelCase`, as `claimedLat`).
    pub fn gpx_name(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::ClockOffset => "clockOffset",
            Self::ClockOffsetSecs => "clockOffsetSecs",
            Self::AltitudeM => "altitudeM",
            Self::NeighbourPhoto => "neighbourPhoto",
            Self::NeighbourSeconds => "neighbourSeconds",
            Self::TripMaxSpeedKmh => "tripMaxSpeedKmh",
            Self::SinglePhotoLatDeg => "singlePhotoLat",
            Self::SinglePhotoLonDeg => "singlePhotoLon",
        }
    }

    /// The XMP property in our namespace (`UpperCamelCase`, as `ClaimedLatitude`).
    pub fn xmp_name(self) -> &'static str {
        match self {
            Self::Track => "Track",
            Self::ClockOffset => "ClockOffset",
            Self::ClockOffsetSecs => "ClockOffsetSeconds",
            Self::AltitudeM => "AltitudeMetres",
            Self::NeighbourPhoto => "NeighbourPhoto",
            Self::NeighbourSeconds => "NeighbourSeconds",
            Self::TripMaxSpeedKmh => "TripMaxSpeedKmh",
            Self::SinglePhotoLatDeg => "SinglePhotoLatitude",
            Self::SinglePhotoLonDeg => "SinglePhotoLongitude",
        }
    }
}

/// The details `origin` has, as text, in [`OriginField::ALL`]'s order: the track, its clock
/// offset (both forms) and altitude (when the track has one); the neighbouring photo and the
/// seconds between them; the trip's top speed and the single-photo answer. Numbers are
/// written in full (`3600`, `-37.2`), coordinates with 8 decimals as everywhere else.
pub fn origin_fields(origin: &Origin) -> Vec<(OriginField, String)> {
    let coordinate = |deg: f64| format!("{deg:.8}");
    match origin {
        Origin::Estimate | Origin::Hand => Vec::new(),
        Origin::Track {
            track, offset_secs, ..
        } => {
            let mut fields = vec![
                (OriginField::Track, track.clone()),
                (OriginField::ClockOffset, format_offset(*offset_secs)),
                (OriginField::ClockOffsetSecs, offset_secs.to_string()),
            ];
            if let Some(altitude) = origin_altitude_m(origin) {
                fields.push((OriginField::AltitudeM, altitude.to_string()));
            }
            fields
        }
        Origin::Neighbour { photo, seconds } => vec![
            (OriginField::NeighbourPhoto, photo.clone()),
            (OriginField::NeighbourSeconds, seconds.to_string()),
        ],
        Origin::Trip {
            max_speed_kmh,
            single_photo,
        } => vec![
            (OriginField::TripMaxSpeedKmh, max_speed_kmh.to_string()),
            (
                OriginField::SinglePhotoLatDeg,
                coordinate(single_photo.lat_deg),
            ),
            (
                OriginField::SinglePhotoLonDeg,
                coordinate(single_photo.lon_deg),
            ),
        ],
    }
}

/// Which points each photo gives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PointSet {
    /// One point per photo: its accepted location or top-1 candidate.
    #[default]
    Chosen,
    /// The chosen point, then every other top-k candidate as its own point.
    AllCandidates,
}

/// The points of `records`, in order.
pub fn points(records: &[ExportRecord], set: PointSet) -> Vec<ExportPoint<'_>> {
    let mut out = Vec::new();
    for record in records {
        let name = record.file_name();
        let chosen = record.chosen_candidate();
        out.push(ExportPoint {
            record,
            name: name.clone(),
            position: record.location,
            role: record.location_source.as_str(),
            candidate: chosen,
            place: record.place.as_ref(),
            kind: record.location_kind,
        });
        if set == PointSet::AllCandidates {
            for c in &record.candidates {
                let is_chosen = chosen.is_some_and(|ch| std::ptr::eq(ch, c))
                    && record.location_source == LocationSource::TopCandidate;
                // The chosen point is written above; a refined candidate also gives its
                // gallery point (and the gallery point of a refined top-1 is written here).
                if !(is_chosen && record.location_kind == Some(PointKind::Gallery)) {
                    out.push(ExportPoint {
                        record,
                        name: format!("{name} #{}", c.rank),
                        position: c.position,
                        role: "candidate",
                        candidate: Some(c),
                        place: c.place.as_ref(),
                        kind: Some(PointKind::Gallery),
                    });
                }
                if let Some(r) = &c.refined
                    && !(is_chosen && record.location_kind == Some(PointKind::Refined))
                {
                    out.push(ExportPoint {
                        record,
                        name: format!("{name} #{} refined", c.rank),
                        position: r.position,
                        role: "candidate",
                        candidate: Some(c),
                        place: r.place.as_ref(),
                        kind: Some(PointKind::Refined),
                    });
                }
            }
        }
    }
    out
}

/// The export file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// GPX 1.1 waypoints ([`gpx`]).
    Gpx,
    /// One row per point ([`csv`]).
    Csv,
    /// An RFC 7946 `FeatureCollection` ([`geojson`]).
    GeoJson,
}

impl ExportFormat {
    /// From `path`'s extension (any case): `.gpx`, `.csv`, `.geojson` or `.json`; `None` for
    /// anything else.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
        match ext.as_str() {
            "gpx" => Some(Self::Gpx),
            "csv" => Some(Self::Csv),
            "geojson" | "json" => Some(Self::GeoJson),
            _ => None,
        }
    }

    /// The whole document for `records`.
    pub fn render(self, records: &[ExportRecord], set: PointSet, paths: &PhotoPaths) -> String {
        let mut writer = ExportWriter::new(self, set, paths.clone());
        let mut out = writer.header();
        for record in records {
            writer.push_record(&mut out, record);
        }
        out.push_str(writer.footer());
        out
    }
}

/// Writes an export document piece by piece: [`ExportWriter::begin`], one
/// [`ExportWriter::record`] per photo as its result comes, [`ExportWriter::end`]. What is
/// written between the calls is complete for the photos so far (only the closing part is
/// missing), so a run cut short keeps them.
#[derive(Clone, Debug)]
pub struct ExportWriter {
    format: ExportFormat,
    set: PointSet,
    paths: PhotoPaths,
    /// Points written so far (GeoJSON separates features with commas).
    points: usize,
}

impl ExportWriter {
    pub fn new(format: ExportFormat, set: PointSet, paths: PhotoPaths) -> Self {
        Self {
            format,
            set,
            paths,
            points: 0,
        }
    }

    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// The document's opening part (the GPX header, the CSV header row, ...).
    pub fn begin(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(self.header().as_bytes())
    }

    /// One photo's points.
    pub fn record(&mut self, out: &mut dyn Write, record: &ExportRecord) -> std::io::Result<()> {
        let mut text = String::new();
        self.push_record(&mut text, record);
        out.write_all(text.as_bytes())
    }

    /// The document's closing part.
    pub fn end(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(self.footer().as_bytes())
    }

    fn header(&self) -> String {
        match self.format {
            ExportFormat::Gpx => gpx::header(),
            ExportFormat::Csv => csv::header(),
            ExportFormat::GeoJson => geojson::HEADER.to_owned(),
        }
    }

    fn push_record(&mut self, out: &mut String, record: &ExportRecord) {
        match self.format {
            ExportFormat::Gpx => gpx::push_record(out, record, self.set, &self.paths),
            ExportFormat::Csv => csv::push_record(out, record, self.set, &self.paths),
            ExportFormat::GeoJson => {
                geojson::push_record(out, record, self.set, &self.paths, &mut self.points);
            }
        }
    }

    fn footer(&self) -> &'static str {
        match self.format {
            ExportFormat::Gpx => gpx::FOOTER,
            ExportFormat::Csv => "",
            ExportFormat::GeoJson => geojson::footer(self.points),
        }
    }
}

/// What a write-back does (dry run) or did to one file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteAction {
    CreateSidecar,
    MergeSidecar,
    UpdateExifGps,
    CreatedSidecar,
    MergedSidecar,
    UpdatedExifGps,
    /// Left alone, and why.
    Skip(SkipReason),
}

impl WriteAction {
    pub fn is_skip(&self) -> bool {
        matches!(self, Self::Skip(_))
    }
}

impl std::fmt::Display for WriteAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CreateSidecar => "create XMP sidecar",
            Self::MergeSidecar => "merge XMP sidecar",
            Self::UpdateExifGps => "update EXIF GPS",
            Self::CreatedSidecar => "created XMP sidecar",
            Self::MergedSidecar => "merged XMP sidecar",
            Self::UpdatedExifGps => "updated EXIF GPS",
            Self::Skip(_) => "skip",
        })
    }
}

/// Why a batch write-back leaves a photo alone.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// The photo has EXIF GPS of its own (a measured fix, not geoloupe's estimate) and no
    /// accepted location: an estimate never replaces it.
    OwnGps,
    /// The photo's EXIF GPS is present but invalid (the reason, as
    /// [`crate::library::exif::ExifInfo::gps_invalid`] gives it): kept unless the record says
    /// to overwrite it ([`ExportRecord::overwrite_invalid_gps`]).
    InvalidGps { reason: String },
    /// EXIF GPS is only written into JPEGs.
    NotJpeg,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OwnGps => f.write_str(
                "the photo has EXIF GPS (a measured position); an estimate never replaces it",
            ),
            Self::InvalidGps { reason } => write!(
                f,
                "the photo has invalid GPS ({reason}); it is only overwritten when asked to"
            ),
            Self::NotJpeg => f.write_str("not a JPEG: EXIF GPS is only written into JPEGs"),
        }
    }
}

/// Writes `records` to `path` in the format its extension names ([`ExportFormat::from_path`]),
/// photo paths as `style` says (relative ones from `path`'s folder), atomically (a temporary
/// file renamed into place: see [`write_atomic_with`]). Returns the format written.
pub fn write_export(
    path: &Path,
    records: &[ExportRecord],
    set: PointSet,
    style: PathStyle,
) -> Result<ExportFormat, ExportError> {
    let format = ExportFormat::from_path(path).ok_or_else(|| ExportError::UnknownFormat {
        path: path.to_owned(),
    })?;
    let mut writer = ExportWriter::new(format, set, PhotoPaths::for_file(style, path));
    write_atomic_with(path, None, |out| {
        writer.begin(out)?;
        for record in records {
            writer.record(out, record)?;
        }
        writer.end(out)
    })?;
    log::info!(
        "wrote a {format:?} export of {} photos: {}",
        records.len(),
        path.display()
    );
    Ok(format)
}

/// Appends `value` pretty-printed (as `serde_json` does, two spaces a level) with every line
/// indented by `indent` spaces: an item of an array that is itself printed piece by piece.
pub(crate) fn push_indented(out: &mut String, value: &impl serde::Serialize, indent: usize) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.extend(std::iter::repeat_n(' ', indent));
        out.push_str(line);
    }
}

/// A file an action would write (the dry run) or wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PlannedWrite {
    pub path: PathBuf,
    /// What happens to it.
    pub action: WriteAction,
    /// A one-line summary of what is written (or why nothing is).
    pub detail: String,
}

impl PlannedWrite {
    /// `path` left alone for `reason`.
    pub fn skip(path: PathBuf, reason: SkipReason) -> Self {
        Self {
            path,
            detail: reason.to_string(),
            action: WriteAction::Skip(reason),
        }
    }

    /// Whether this photo is left alone.
    pub fn is_skip(&self) -> bool {
        self.action.is_skip()
    }
}

impl std::fmt::Display for PlannedWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.action,
            self.path.display(),
            self.detail
        )
    }
}

/// Whether the photo has an EXIF GPS position of its own (a measured fix, not geoloupe's
/// estimate). Batch write-backs skip such photos unless the user accepted a location for
/// them: an estimate never replaces a fix.
pub fn has_exif_gps(path: &Path) -> bool {
    crate::library::exif::read_exif(path).is_ok_and(|info| info.gps.is_some())
}

/// Why a batch write-back leaves `record`'s photo alone because of its EXIF GPS, or `None`:
/// invalid GPS (unless [`ExportRecord::overwrite_invalid_gps`]), or a fix of its own without
/// an accepted location. geoloupe's own earlier estimate is no reason.
pub(crate) fn gps_skip(record: &ExportRecord) -> Option<SkipReason> {
    let info = crate::library::exif::read_exif(&record.path).ok()?;
    match info.gps_invalid {
        Some(reason) if !record.overwrite_invalid_gps => Some(SkipReason::InvalidGps { reason }),
        _ => (record.location_source != LocationSource::Accepted && info.gps.is_some())
            .then_some(SkipReason::OwnGps),
    }
}

/// A batch write into the photos' own metadata, planned (the dry run) and carried out the same
/// way by the app and the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteBack {
    /// An XMP sidecar beside each photo, merged with what other tools wrote there.
    XmpSidecars(xmp::SidecarStyle),
    /// EXIF GPS written into each JPEG (pixels untouched, the original backed up first).
    ExifGps,
}

impl WriteBack {
    /// What would be written, and which photos skipped; touches nothing.
    pub fn plan(self, records: &[ExportRecord]) -> Vec<PlannedWrite> {
        match self {
            Self::XmpSidecars(style) => xmp::plan_sidecars(records, style),
            Self::ExifGps => exif_write::plan_exif_writes(records),
        }
    }

    /// Writes, photo by photo (one failure doesn't stop the others); EXIF originals are kept
    /// in `backups`.
    pub fn write(
        self,
        records: &[ExportRecord],
        backups: &exif_write::BackupStore,
    ) -> Vec<Result<PlannedWrite, ExportError>> {
        match self {
            Self::XmpSidecars(style) => xmp::write_sidecars(records, style),
            Self::ExifGps => exif_write::write_exif_gps_all(records, backups),
        }
    }
}

/// When the photo was taken, from its EXIF (DateTimeOriginal or DateTime, plus
/// OffsetTimeOriginal) as [`crate::library::exif::read_exif`] reads it; `None` when the photo has
/// none or it can't be read.
pub fn read_taken_at(path: &Path) -> Option<TakenAt> {
    let text = crate::library::exif::read_exif(path).ok()?.taken_at?;
    TakenAt::from_exif_text(&text)
}

impl TakenAt {
    /// The camera's local time as seconds since 1970-01-01T00:00:00 on the camera's clock (the
    /// offset from UTC is not applied): what orders photos of one camera in time.
    pub fn local_clock_secs(&self) -> Option<i64> {
        local_secs(&self.local)
    }

    /// Seconds since the Unix epoch (UTC), when the camera recorded its offset from UTC.
    pub fn utc_unix_secs(&self) -> Option<i64> {
        Some(self.local_clock_secs()? - i64::from(self.utc_offset_minutes?) * 60)
    }
}

/// `+HH:MM` / `-HH:MM` -> minutes.
fn parse_offset(text: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(text).ok()?.trim_end_matches('\0');
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s.get(1..)?.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

/// `YYYY-MM-DDTHH:MM:SS` as seconds since 1970-01-01T00:00:00 on the same clock (no offset
/// applied).
fn local_secs(local: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| local.get(r)?.parse::<u32>().ok();
    let year = local.get(0..4)?.parse::<i64>().ok()?;
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    Some(crate::track::time::utc_secs(year, month, day, hour, minute, second) as i64)
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC, no zone suffix) of a Unix time.
pub fn format_unix_secs(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::track::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS` shifted by `minutes`.
fn shift_local(local: &str, minutes: i32) -> Option<String> {
    Some(format_unix_secs(
        local_secs(local)? + i64::from(minutes) * 60,
    ))
}

/// Seconds since the Unix epoch of a UTC time as [`utc_now_rfc3339`] writes it
/// (`2026-12-01T10:00:00Z`).
pub fn unix_secs_of_utc_rfc3339(text: &str) -> Option<i64> {
    local_secs(text.strip_suffix('Z')?)
}

/// The current time, UTC, RFC 3339 with `Z`.
pub fn utc_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    format!("{}Z", format_unix_secs(secs))
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Checks, before anything is written, that `dir` can take a new file: it exists, is a folder,
/// and its permission bits allow writing (checked explicitly, so a read-only folder is
/// refused even for root, who could write there anyway).
pub fn check_writable_folder(dir: &Path) -> Result<(), ExportError> {
    let meta = std::fs::metadata(dir).map_err(ExportError::io("open the folder", dir))?;
    if !meta.is_dir() {
        return Err(ExportError::Io {
            action: "use as a folder".into(),
            path: dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"),
        });
    }
    if meta.permissions().readonly() {
        return Err(ExportError::ReadOnlyFolder {
            path: dir.to_owned(),
        });
    }
    Ok(())
}

/// The folder a file is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `path` atomically: `write` fills a temporary file in the same folder, which is
/// flushed to disk and renamed over `path`. If `write` (or anything else) fails, the temporary
/// file is removed and `path` is left as it was.
pub fn write_atomic_with(
    path: &Path,
    permissions: Option<std::fs::Permissions>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), ExportError> {
    write_atomic_file_with(path, permissions, |file| {
        let mut buffered = std::io::BufWriter::new(file);
        write(&mut buffered)?;
        buffered.flush()
    })
}

/// [`write_atomic_with`] handing `write` the temporary file itself (for writers that need
/// their sink to be `Send`, like Parquet's).
pub fn write_atomic_file(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), ExportError> {
    write_atomic_file_with(path, None, write)
}

fn write_atomic_file_with(
    path: &Path,
    permissions: Option<std::fs::Permissions>,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), ExportError> {
    let dir = parent_dir(path);
    check_writable_folder(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{file_name}.geoloupe-{}-{}.tmp",
        std::process::id(),
        unique_counter()
    ));
    let result = (|| -> Result<(), ExportError> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(ExportError::io("create a temporary file", &temp))?;
        write(&mut file).map_err(ExportError::io("write", &temp))?;
        if let Some(p) = permissions {
            file.set_permissions(p)
                .map_err(ExportError::io("set permissions on", &temp))?;
        }
        file.sync_all()
            .map_err(ExportError::io("flush to disk", &temp))?;
        drop(file);
        std::fs::rename(&temp, path).map_err(ExportError::io("replace", path))?;
        // Make the rename itself durable (best effort: not every platform can open a folder).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// [`write_atomic_with`] for bytes already in memory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    write_atomic_with(path, None, |w| w.write_all(bytes))
}

fn unique_counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Linux file name that is not UTF-8, exported next to real files in every format and
    /// path style: the hex field gives back the exact bytes, and a relative one, joined to the
    /// export's folder, opens the photo.
    #[cfg(unix)]
    #[test]
    fn non_utf8_names_round_trip_through_the_exports() {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (photos, out) = (dir.path().join("photos"), dir.path().join("out"));
        std::fs::create_dir_all(&photos).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let photo = photos.join(std::ffi::OsStr::from_bytes(b"caf\xe9 \xff.png"));
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png"),
            &photo,
        )
        .unwrap();
        let candidates = [Candidate {
            rank: 1,
            gallery_index: 7,
            position: LatLon::new(48.85, 2.35),
            probability: 0.5,
            refined: None,
        }];
        let record = ExportRecord::new(
            &photo,
            &candidates,
            Provenance::default(),
            "2026-11-30T00:00:00Z".into(),
            None,
            None,
        )
        .unwrap();
        let between = |text: &str, start: &str, end: char| -> String {
            let from = text
                .find(start)
                .unwrap_or_else(|| panic!("no {start} in {text}"))
                + start.len();
            text[from..].split(end).next().unwrap().to_owned()
        };
        for style in [PathStyle::Relative, PathStyle::Name, PathStyle::Full] {
            for file in ["a.csv", "a.geojson", "a.gpx"] {
                let target = out.join(file);
                write_export(
                    &target,
                    std::slice::from_ref(&record),
                    PointSet::Chosen,
                    style,
                )
                .unwrap();
                let text = std::fs::read_to_string(&target).unwrap();
                let hex = match file {
                    "a.csv" => {
                        let rows: Vec<Vec<&str>> = text
                            .split_terminator("\r\n")
                            .map(|r| r.split(',').collect())
                            .collect();
                        let col = rows[0]
                            .iter()
                            .position(|c| *c == "photo_bytes_hex")
                            .unwrap();
                        rows[1][col].to_owned()
                    }
                    "a.geojson" => {
                        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                        v["features"][0]["properties"]["photo_bytes_hex"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                    }
                    _ => between(&text, "photoBytesHex>", '<'),
                };
                assert!(text.contains("caf\u{FFFD} \u{FFFD}.png"), "{file}: {text}");
                let bytes = hex::decode(&hex).unwrap();
                let written = Path::new(std::ffi::OsStr::from_bytes(&bytes));
                let expected: &[u8] = match style {
                    PathStyle::Relative => b"../photos/caf\xe9 \xff.png",
                    PathStyle::Name => b"caf\xe9 \xff.png",
                    PathStyle::Full => photo.as_os_str().as_bytes(),
                };
                assert_eq!(bytes, expected, "{style:?} {file}");
                if style != PathStyle::Name {
                    assert!(out.join(written).is_file(), "{style:?} {file}: {hex}");
                }
            }
        }
    }

    /// One record per origin kind (issue 12), at `location`: a single-photo estimate (the
    /// top-1), a trip posterior, a track with an altitude, a neighbouring photo and a
    /// position placed by hand.
    pub(crate) fn records_of_every_origin() -> Vec<ExportRecord> {
        let candidates = [
            Candidate {
                rank: 1,
                gallery_index: 7,
                position: LatLon::new(21.97, -159.37),
                probability: 0.4,
                refined: None,
            },
            Candidate {
                rank: 2,
                gallery_index: 9,
                position: LatLon::new(20.8, -156.33),
                probability: 0.2,
                refined: None,
            },
        ];
        let record = |name: &str, accepted: Option<LatLon>, origin: Option<Origin>| {
            let mut r = ExportRecord::new(
                Path::new(&format!("/nowhere/{name}")),
                &candidates,
                Provenance::default(),
                "2026-11-30T00:00:00Z".into(),
                accepted,
                None,
            )
            .unwrap();
            if let Some(origin) = origin {
                r.origin = origin;
            }
            r
        };
        vec![
            record("estimate.jpg", None, None),
            record(
                "trip.jpg",
                Some(LatLon::new(21.5, -158.0)),
                Some(Origin::Trip {
                    max_speed_kmh: 120.0,
                    single_photo: LatLon::new(21.97, -159.37),
                }),
            ),
            record(
                "track.jpg",
                Some(LatLon::new(22.05, -159.5)),
                Some(Origin::Track {
                    track: "Été 2024.gpx".into(),
                    offset_secs: -3637.5,
                    altitude_m: Some(12.5),
                }),
            ),
            record(
                "neighbour.jpg",
                Some(LatLon::new(22.06, -159.51)),
                Some(Origin::Neighbour {
                    photo: "IMG_0042.jpg".into(),
                    seconds: -37.2,
                }),
            ),
            record("hand.jpg", Some(LatLon::new(22.07, -159.52)), None),
        ]
    }

    /// Every text format says where each location came from, in its own style, and marks
    /// only estimates from pixels as estimates; candidates written beside a location are
    /// GeoCLIP's whatever the location's origin.
    #[test]
    fn every_format_tells_where_each_location_came_from() {
        let records = records_of_every_origin();
        let kinds = ["estimate", "trip", "track", "neighbour", "hand"];
        let from_pixels = [true, true, false, false, false];
        assert_eq!(
            records
                .iter()
                .map(|r| r.origin.as_str())
                .collect::<Vec<_>>(),
            kinds
        );

        // CSV, through the csv crate: one row per photo, a value for every column.
        let text = csv::render_csv(&records, PointSet::Chosen);
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, csv::CSV_COLUMNS);
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let rows: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 5);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.len(), header.len());
            assert_eq!(&row[col("origin")], kinds[i]);
            assert_eq!(row[col("is_estimate")], from_pixels[i].to_string());
        }
        assert_eq!(&rows[0][col("origin_detail")], "single-photo estimate");
        assert_eq!(&rows[1][col("trip_max_speed_kmh")], "120");
        assert_eq!(&rows[1][col("single_photo_lat_deg")], "21.97000000");
        assert_eq!(&rows[1][col("single_photo_lon_deg")], "-159.37000000");
        assert_eq!(&rows[2][col("track")], "Été 2024.gpx");
        assert_eq!(&rows[2][col("clock_offset")], "-1:00:37.5");
        assert_eq!(&rows[2][col("clock_offset_secs")], "-3637.5");
        assert_eq!(&rows[2][col("altitude_m")], "12.5");
        assert_eq!(
            &rows[2][col("origin_detail")],
            "track Été 2024.gpx, clock -1:00:37.5"
        );
        assert_eq!(&rows[3][col("neighbour_photo")], "IMG_0042.jpg");
        assert_eq!(&rows[3][col("neighbour_seconds")], "-37.2");
        assert_eq!(&rows[4][col("origin_detail")], "placed by hand");
        // Details of another kind stay empty.
        assert_eq!(&rows[2][col("neighbour_photo")], "");
        assert_eq!(&rows[0][col("track")], "");
        // The review field keeps meaning whether a person reviewed it.
        assert_eq!(&rows[0][col("review")], "estimate (unreviewed)");
        assert_eq!(&rows[2][col("review")], "accepted");

        // All candidates: the track's photo still lists GeoCLIP's candidates, as estimates.
        let all = csv::render_csv(&records[2..3], PointSet::AllCandidates);
        let mut reader = ::csv::Reader::from_reader(all.as_bytes());
        let rows: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (&rows[0][col("origin")], &rows[0][col("is_estimate")]),
            ("track", "false")
        );
        for row in &rows[1..] {
            assert_eq!(
                (&row[col("origin")], &row[col("is_estimate")]),
                ("estimate", "true")
            );
            assert_eq!(&row[col("altitude_m")], "");
        }

        // GeoJSON through serde_json: the tagged origin with its description, the track's
        // altitude as the third coordinate.
        let v: serde_json::Value =
            serde_json::from_str(&geojson::render_geojson(&records, PointSet::Chosen)).unwrap();
        let features = v["features"].as_array().unwrap();
        for (i, f) in features.iter().enumerate() {
            let p = &f["properties"];
            assert_eq!(p["origin"]["kind"], kinds[i]);
            assert_eq!(p["is_estimate"], from_pixels[i]);
            let back: Origin = serde_json::from_value(p["origin"].clone()).unwrap();
            assert_eq!(back, records[i].origin, "the store's form reads back");
            let coordinates = f["geometry"]["coordinates"].as_array().unwrap();
            assert_eq!(coordinates.len(), if i == 2 { 3 } else { 2 }, "{f}");
        }
        assert_eq!(features[2]["geometry"]["coordinates"][2], 12.5);
        assert_eq!(
            features[2]["properties"]["origin"]["clock_offset"],
            "-1:00:37.5"
        );
        assert_eq!(features[2]["properties"]["origin"]["track"], "Été 2024.gpx");
        assert_eq!(features[3]["properties"]["origin"]["seconds"], -37.2);
        assert_eq!(
            features[1]["properties"]["origin"]["single_photo"]["lat_deg"],
            21.97
        );
        assert_eq!(
            features[4]["properties"]["origin"]["description"],
            "placed by hand"
        );
        assert!(
            features[2]["properties"]["description"]
                .as_str()
                .unwrap()
                .starts_with("location accepted by the user, from track Été 2024.gpx"),
            "{}",
            features[2]["properties"]["description"]
        );

        // GPX: <src> names the origin, <ele> the track's altitude, the details in our
        // namespace.
        let gpx = gpx::render_gpx(&records, PointSet::Chosen);
        let waypoints: Vec<&str> = gpx.split("<wpt ").skip(1).collect();
        assert_eq!(waypoints.len(), 5);
        for (i, w) in waypoints.iter().enumerate() {
            assert!(
                w.contains(&format!("<src>geoloupe {}</src>", kinds[i])),
                "{w}"
            );
            assert!(
                w.contains(&format!("<geoloupe:estimate>{}<", from_pixels[i])),
                "{w}"
            );
            assert!(
                w.contains(&format!("<geoloupe:origin>{}<", kinds[i])),
                "{w}"
            );
            assert_eq!(w.contains("<ele>"), i == 2, "{w}");
        }
        assert!(waypoints[2].contains("<ele>12.5</ele>"));
        assert!(waypoints[2].contains("<geoloupe:clockOffset>-1:00:37.5<"));
        assert!(waypoints[2].contains("<geoloupe:track>Été 2024.gpx<"));
        assert!(waypoints[3].contains("<geoloupe:neighbourSeconds>-37.2<"));
        assert!(waypoints[1].contains("<geoloupe:tripMaxSpeedKmh>120<"));
        assert!(waypoints[1].contains("<geoloupe:singlePhotoLon>-159.37000000<"));
        // GPX 1.1's order: ele before time and name.
        let ele = waypoints[2].find("<ele>").unwrap();
        assert!(ele < waypoints[2].find("<name>").unwrap());

        // XMP properties.
        for (i, r) in records.iter().enumerate() {
            let props = xmp::sidecar_properties(r);
            let get = |name: &str| {
                props
                    .iter()
                    .find(|(_, n, _)| *n == name)
                    .map(|(_, _, v)| v.clone())
            };
            assert_eq!(get("Origin").as_deref(), Some(kinds[i]));
            let expected = if from_pixels[i] { "True" } else { "False" };
            assert_eq!(get("IsEstimate").as_deref(), Some(expected));
            assert_eq!(get("GPSAltitude").is_some(), i == 2, "{props:?}");
        }
        let track = xmp::sidecar_properties(&records[2]);
        for (name, value) in [
            ("Track", "Été 2024.gpx"),
            ("ClockOffset", "-1:00:37.5"),
            ("ClockOffsetSeconds", "-3637.5"),
            ("AltitudeMetres", "12.5"),
            ("GPSAltitude", "12500/1000"),
            ("GPSAltitudeRef", "0"),
        ] {
            assert!(
                track.iter().any(|(_, n, v)| *n == name && v == value),
                "{name}: {track:?}"
            );
        }
    }

    #[test]
    fn origin_fields_follow_the_csv_columns() {
        for field in OriginField::ALL {
            assert!(
                csv::CSV_COLUMNS.contains(&field.csv_name()),
                "{}",
                field.csv_name()
            );
        }
        // Appended after every older column.
        let origin_at = csv::CSV_COLUMNS
            .iter()
            .position(|c| *c == "origin")
            .unwrap();
        let group_at = csv::CSV_COLUMNS
            .iter()
            .position(|c| *c == "group_size")
            .unwrap();
        assert_eq!(origin_at, group_at + 1);
        assert_eq!(
            origin_at + 2 + OriginField::ALL.len(),
            csv::CSV_COLUMNS.len()
        );
        let below = Origin::Track {
            track: "t.gpx".into(),
            offset_secs: 0.0,
            altitude_m: Some(f64::NAN),
        };
        assert_eq!(origin_altitude_m(&below), None, "a NaN altitude is none");
        assert_eq!(
            origin_fields(&below)
                .iter()
                .map(|(f, _)| *f)
                .collect::<Vec<_>>(),
            [
                OriginField::Track,
                OriginField::ClockOffset,
                OriginField::ClockOffsetSecs
            ]
        );
    }

    #[test]
    fn taken_at_from_the_librarys_exif_text() {
        let t = TakenAt::from_exif_text("2023-07-14T16:20:05-10:00").unwrap();
        assert_eq!(t.local, "2023-07-14T16:20:05");
        assert_eq!(t.utc_offset_minutes, Some(-600));
        let naive = TakenAt::from_exif_text("2023-07-14T16:20:05").unwrap();
        assert_eq!(naive.utc_offset_minutes, None);
        assert_eq!(TakenAt::from_exif_text("2023-07-14"), None);
    }

    #[test]
    fn dates_round_trip() {
        for days in [-719_468, -1, 0, 59, 11_016, 18_779, 2_932_896] {
            let (y, m, d) = crate::track::time::civil_from_days(days);
            assert_eq!(crate::track::time::days_from_civil(y, m, d), days);
        }
        assert_eq!(format_unix_secs(0), "1970-01-01T00:00:00");
        assert_eq!(format_unix_secs(951_782_400), "2000-02-29T00:00:00");
    }

    #[test]
    fn taken_at_to_utc() {
        let t = TakenAt {
            local: "2021-03-01T01:30:00".into(),
            utc_offset_minutes: Some(150),
        };
        assert_eq!(t.utc_rfc3339().as_deref(), Some("2021-02-28T23:00:00Z"));
        assert_eq!(t.local_with_offset(), "2021-03-01T01:30:00+02:30");
        let west = TakenAt {
            local: "2020-12-31T22:00:00".into(),
            utc_offset_minutes: Some(-300),
        };
        assert_eq!(west.utc_rfc3339().as_deref(), Some("2021-01-01T03:00:00Z"));
        let naive = TakenAt {
            local: "2020-12-31T22:00:00".into(),
            utc_offset_minutes: None,
        };
        assert_eq!(naive.utc_rfc3339(), None, "no offset: no UTC time");
        assert_eq!(naive.local_with_offset(), "2020-12-31T22:00:00");
        assert_eq!(parse_offset(b"-05:30"), Some(-330));
        assert_eq!(parse_offset(b"05:30"), None);
    }

    #[test]
    fn taken_at_as_seconds() {
        let t = TakenAt {
            local: "2021-03-01T01:30:00".into(),
            utc_offset_minutes: Some(150),
        };
        // 2021-03-01T01:30:00 on the camera's clock; 2021-02-28T23:00:00Z.
        assert_eq!(t.local_clock_secs(), Some(1_614_562_200));
        assert_eq!(t.utc_unix_secs(), Some(1_614_553_200));
        let naive = TakenAt {
            local: "1970-01-01T00:01:05".into(),
            utc_offset_minutes: None,
        };
        assert_eq!(naive.local_clock_secs(), Some(65));
        assert_eq!(naive.utc_unix_secs(), None);
        let broken = TakenAt {
            local: "2021:03:01 xx".into(),
            utc_offset_minutes: None,
        };
        assert_eq!(broken.local_clock_secs(), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(xml_escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }

    #[test]
    fn atomic_write_failure_leaves_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "original").unwrap();
        let err = write_atomic_with(&path, None, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "original");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
