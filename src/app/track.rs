//! A GPS track loaded into the app (issue 12): the fixes, the camera clock's offset and the
//! time zone for photos without one, the live preview of where each selected photo lands, and
//! the decisions "Apply to selection" makes. Pure: no egui; the placing itself is
//! [`crate::track::correlate`] (exiftool's `-geotag` semantics).

use std::path::{Path, PathBuf};

use crate::domain::{Decision, Origin};
use crate::geo::LatLon;
use crate::track::{
    CaptureTime, Limits, Placement, Refusal, TimeZone, TrackSet, correlate, nearest_fix_time,
    offset_for_placement, parse_zone,
};

/// The file extensions opened as tracks (GPX, KML, NMEA 0183 logs), not as photos.
pub const TRACK_EXTENSIONS: &[&str] = &["gpx", "kml", "nmea", "nma"];

/// Whether `path` is opened as a track (by its extension, any case).
pub fn is_track_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TRACK_EXTENSIONS.iter().any(|t| e.eq_ignore_ascii_case(t)))
}

/// The most points drawn for a track: longer tracks are thinned evenly (every fix still
/// places photos).
pub const MAX_DRAWN_POINTS: usize = 20_000;

/// A loaded track and how photos are placed on it.
#[derive(Clone, Debug)]
pub struct LoadedTrack {
    pub paths: Vec<PathBuf>,
    pub set: TrackSet,
    /// Seconds added to each photo's time to give the track's time (exiftool's `-geosync`).
    pub offset_secs: f64,
    /// The time zone for photos whose EXIF has no OffsetTimeOriginal, as typed (`+02:00`,
    /// `UTC`); empty: none given, such photos are refused.
    pub zone_text: String,
    pub limits: Limits,
}

/// A photo as the preview needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoTime {
    /// The photo's index in the collection.
    pub index: usize,
    pub name: String,
    /// EXIF DateTimeOriginal (+ offset) as the library reads it.
    pub taken_at: Option<String>,
    /// SubSecTimeOriginal's digits.
    pub taken_subsec: Option<String>,
    /// The photo's own EXIF GPS fix.
    pub own_gps: Option<LatLon>,
}

/// Where one photo lands at the current offset.
#[derive(Clone, Debug, PartialEq)]
pub enum Landing {
    /// On the track.
    Lands {
        position: LatLon,
        altitude_m: Option<f64>,
    },
    /// Not placed, with the reason.
    Refused(Refusal),
    /// The photo has its own GPS fix: shown, never overwritten by "Apply".
    OwnGps { own: LatLon, track: Option<LatLon> },
}

/// One photo of the preview.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewItem {
    pub index: usize,
    pub name: String,
    pub landing: Landing,
}

impl LoadedTrack {
    pub fn new(paths: Vec<PathBuf>, set: TrackSet) -> Self {
        Self {
            paths,
            set,
            offset_secs: 0.0,
            zone_text: String::new(),
            limits: Limits::default(),
        }
    }

    /// The tracks' file names, as `Origin::Track` records them.
    pub fn name(&self) -> String {
        self.set.sources.join(", ")
    }

    /// The zone typed for photos without one; `None` when empty or unreadable.
    pub fn zone(&self) -> Option<TimeZone> {
        parse_zone(&self.zone_text)
    }

    /// Whether the zone text is there but unreadable (the panel says so).
    pub fn zone_is_invalid(&self) -> bool {
        !self.zone_text.trim().is_empty() && self.zone().is_none()
    }

    /// The photo's capture time in UTC seconds, or why there is none.
    pub fn utc_secs(&self, photo: &PhotoTime) -> Result<f64, Refusal> {
        let capture = photo
            .taken_at
            .as_deref()
            .and_then(|t| CaptureTime::from_exif_text(t, photo.taken_subsec.as_deref()))
            .ok_or(Refusal::NoCaptureTime)?;
        capture.utc_secs(self.zone()).ok_or(Refusal::NoTimeZone)
    }

    fn place(&self, photo: &PhotoTime) -> Result<(LatLon, Option<f64>), Refusal> {
        let utc = self.utc_secs(photo)?;
        match correlate(&self.set, utc, self.offset_secs, self.limits) {
            Placement::Matched {
                position,
                altitude_m,
                ..
            } => Ok((position, altitude_m)),
            Placement::Refused(refusal) => Err(refusal),
        }
    }

    /// Where each photo lands at the current offset and zone, in the order given.
    pub fn preview(&self, photos: &[PhotoTime]) -> Vec<PreviewItem> {
        photos
            .iter()
            .map(|photo| {
                let placed = self.place(photo);
                let landing = match (photo.own_gps, placed) {
                    (Some(own), placed) => Landing::OwnGps {
                        own,
                        track: placed.ok().map(|(p, _)| p),
                    },
                    (None, Ok((position, altitude_m))) => Landing::Lands {
                        position,
                        altitude_m,
                    },
                    (None, Err(refusal)) => Landing::Refused(refusal),
                };
                PreviewItem {
                    index: photo.index,
                    name: photo.name.clone(),
                    landing,
                }
            })
            .collect()
    }

    /// The offset that puts `photo` at the track point nearest `clicked` ("Set offset from this
    /// photo": the user points where it was taken).
    pub fn offset_for_click(&self, photo: &PhotoTime, clicked: LatLon) -> Result<f64, Refusal> {
        let utc = self.utc_secs(photo)?;
        let track_time = nearest_fix_time(&self.set, clicked).ok_or(Refusal::NoFixes)?;
        Ok(offset_for_placement(utc, track_time))
    }

    /// The origin a decision from this track at the current offset records.
    pub fn origin(&self, altitude_m: Option<f64>) -> Origin {
        Origin::Track {
            track: self.name(),
            offset_secs: self.offset_secs,
            altitude_m,
        }
    }

    /// The decisions "Apply to selection" makes: one per photo that lands on the track; never
    /// for a refused photo or one with its own GPS.
    pub fn decisions(&self, preview: &[PreviewItem]) -> Vec<(usize, Decision)> {
        preview
            .iter()
            .filter_map(|item| match &item.landing {
                Landing::Lands {
                    position,
                    altitude_m,
                } => Some((
                    item.index,
                    Decision::Placed {
                        position: *position,
                        origin: self.origin(*altitude_m),
                    },
                )),
                Landing::Refused(_) | Landing::OwnGps { .. } => None,
            })
            .collect()
    }

    /// The track's points to draw, in time order, thinned evenly to at most
    /// [`MAX_DRAWN_POINTS`] (the last fix always kept).
    pub fn polyline(&self) -> Vec<LatLon> {
        let fixes = &self.set.fixes;
        let step = fixes.len().div_ceil(MAX_DRAWN_POINTS).max(1);
        let mut points: Vec<LatLon> = fixes.iter().step_by(step).map(|f| f.position).collect();
        if let Some(last) = fixes.last()
            && !(fixes.len() - 1).is_multiple_of(step)
        {
            points.push(last.position);
        }
        points
    }
}

/// How many photos of a preview land, are refused, or keep their own GPS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreviewCounts {
    pub lands: usize,
    pub refused: usize,
    pub own_gps: usize,
}

pub fn counts(preview: &[PreviewItem]) -> PreviewCounts {
    let mut counts = PreviewCounts::default();
    for item in preview {
        match item.landing {
            Landing::Lands { .. } => counts.lands += 1,
            Landing::Refused(_) => counts.refused += 1,
            Landing::OwnGps { .. } => counts.own_gps += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::Fix;

    /// A walk north along lon 10°, one fix a minute from 2024-05-01 10:00:00 UTC, 0.001° a
    /// minute, with an altitude.
    fn walk() -> LoadedTrack {
        let start = crate::track::time::utc_secs(2024, 5, 1, 10, 0, 0);
        let fixes = (0..=60)
            .map(|i| Fix {
                time_secs: start + 60.0 * f64::from(i),
                position: LatLon::new(45.0 + 0.001 * f64::from(i), 10.0),
                altitude_m: Some(100.0 + f64::from(i)),
                first_of_file: i == 0,
                source: 0,
            })
            .collect();
        LoadedTrack::new(
            vec![PathBuf::from("/tmp/walk.gpx")],
            TrackSet {
                fixes,
                sources: vec!["walk.gpx".into()],
                has_altitude: true,
            },
        )
    }

    fn photo(index: usize, taken_at: Option<&str>) -> PhotoTime {
        PhotoTime {
            index,
            name: format!("p{index}.jpg"),
            taken_at: taken_at.map(str::to_owned),
            taken_subsec: None,
            own_gps: None,
        }
    }

    #[test]
    fn track_files_are_told_by_extension() {
        assert!(is_track_file(Path::new("a/Walk.GPX")));
        assert!(is_track_file(Path::new("log.nmea")));
        assert!(is_track_file(Path::new("x.kml")));
        assert!(!is_track_file(Path::new("x.jpg")));
        assert!(!is_track_file(Path::new("gpx")));
    }

    #[test]
    fn the_offset_moves_the_preview_and_the_zone_places_photos_without_one() {
        let mut track = walk();
        // 12:10 at +02:00 is 10:10 UTC: ten minutes along.
        let photos = [
            photo(3, Some("2024-05-01T12:10:00+02:00")),
            photo(4, Some("2024-05-01T10:20:00")),
            photo(5, None),
            photo(6, Some("2024-05-01T18:00:00+02:00")),
        ];
        let preview = track.preview(&photos);
        let Landing::Lands {
            position,
            altitude_m,
        } = preview[0].landing
        else {
            panic!("{preview:?}");
        };
        assert!((position.lat_deg - 45.010).abs() < 1e-9);
        assert_eq!(altitude_m, Some(110.0));
        assert_eq!(preview[1].landing, Landing::Refused(Refusal::NoTimeZone));
        assert_eq!(preview[2].landing, Landing::Refused(Refusal::NoCaptureTime));
        assert!(matches!(
            preview[3].landing,
            Landing::Refused(Refusal::AfterTrack { .. })
        ));
        assert_eq!(
            counts(&preview),
            PreviewCounts {
                lands: 1,
                refused: 3,
                own_gps: 0
            }
        );

        // Five minutes more on the clock: five fixes further north.
        track.offset_secs = 300.0;
        track.zone_text = "UTC".into();
        let preview = track.preview(&photos);
        let Landing::Lands { position, .. } = preview[0].landing else {
            panic!("{preview:?}");
        };
        assert!((position.lat_deg - 45.015).abs() < 1e-9);
        let Landing::Lands { position, .. } = preview[1].landing else {
            panic!("{preview:?}");
        };
        assert!((position.lat_deg - 45.025).abs() < 1e-9);
    }

    #[test]
    fn apply_skips_refused_photos_and_photos_with_their_own_gps() {
        let mut track = walk();
        track.offset_secs = -60.0;
        let mut with_gps = photo(1, Some("2024-05-01T10:30:00Z"));
        with_gps.own_gps = Some(LatLon::new(1.0, 2.0));
        let photos = [
            photo(0, Some("2024-05-01T10:30:00Z")),
            with_gps,
            photo(2, Some("2023-01-01T00:00:00Z")),
        ];
        let preview = track.preview(&photos);
        assert!(matches!(
            preview[1].landing,
            Landing::OwnGps { track: Some(_), .. }
        ));
        let decisions = track.decisions(&preview);
        assert_eq!(decisions.len(), 1);
        let (index, Decision::Placed { position, origin }) = &decisions[0] else {
            panic!("{decisions:?}");
        };
        assert_eq!(*index, 0);
        assert!((position.lat_deg - 45.029).abs() < 1e-9);
        assert_eq!(
            *origin,
            Origin::Track {
                track: "walk.gpx".into(),
                offset_secs: -60.0,
                altitude_m: Some(129.0),
            }
        );
    }

    #[test]
    fn a_click_on_the_track_gives_the_offset_that_puts_the_photo_there() {
        let mut track = walk();
        let p = photo(0, Some("2024-05-01T09:00:00Z"));
        // Clicked next to the fix of 10:20 (the 20th): the clock was 1 h 20 min slow.
        let offset = track
            .offset_for_click(&p, LatLon::new(45.0201, 10.0001))
            .unwrap();
        assert_eq!(offset, 4800.0);
        track.offset_secs = offset;
        let Landing::Lands { position, .. } = track.preview(&[p]).remove(0).landing else {
            panic!();
        };
        assert!((position.lat_deg - 45.020).abs() < 1e-9);
        assert_eq!(
            track.offset_for_click(&photo(1, None), LatLon::new(45.0, 10.0)),
            Err(Refusal::NoCaptureTime)
        );
    }

    #[test]
    fn long_tracks_are_thinned_for_drawing_keeping_both_ends() {
        let mut track = walk();
        assert_eq!(track.polyline().len(), 61);
        let start = track.set.fixes[0];
        track.set.fixes = (0..45_001)
            .map(|i| Fix {
                time_secs: start.time_secs + f64::from(i),
                position: LatLon::new(f64::from(i) * 1e-5, 0.0),
                ..start
            })
            .collect();
        let line = track.polyline();
        assert!(line.len() <= MAX_DRAWN_POINTS + 1, "{}", line.len());
        assert_eq!(line[0], track.set.fixes[0].position);
        assert_eq!(*line.last().unwrap(), track.set.fixes[45_000].position);
    }
}
