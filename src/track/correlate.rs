//! Placing one photo on a [`TrackSet`] by time, a line-by-line port of exiftool 12.57's
//! `Image::ExifTool::Geotag::SetGeoValues` (for position and altitude):
//!
//! - the photo's UTC time plus the clock offset (`-geosync`: `track = photo + offset`);
//! - before the first fix: the first fix's position when at most `max_ext` before it, else
//!   refused (`Time is too far before track`); after the last fix likewise;
//! - between two fixes `t0 <= t < t1` (binary search; a time equal to a fix lands on it):
//!   linear interpolation in latitude and longitude (longitude across ±180° the short way),
//!   altitude too, when `t1 - t0 <= max_int` — or `max_ext` when `t1` is the first fix of a
//!   track file (the gap between two merged tracks);
//! - across a larger gap, exiftool does fall back: the *nearer* of the two fixes (the later one
//!   on a tie) is taken as it is when within `max_ext` of the photo, else refused
//!   (`Time is too far from nearest GPS fix`);
//! - altitude: interpolated when both fixes have one; when one lacks it, the nearest fix with an
//!   altitude within `max_int` outwards from it is used instead (`ScanOutwards`); a fix taken as
//!   it is keeps its own altitude, else the nearest one within `max_ext` (`FindFix`).

use crate::geo::LatLon;

use super::{Fix, TrackSet};

/// exiftool's `GeoMaxIntSecs` and `GeoMaxExtSecs` (both 1800 s by default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// The largest gap between two fixes that is interpolated across.
    pub max_int_secs: f64,
    /// How far from a fix a photo may be when that fix is taken as it is (before or after the
    /// track, or across a larger gap).
    pub max_ext_secs: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_int_secs: 1800.0,
            max_ext_secs: 1800.0,
        }
    }
}

impl Limits {
    /// The furthest a fix that matters can be from a photo's (offset) time: the bracketing
    /// fixes lie within this of it, and the altitude scans within this of them.
    pub fn reach_secs(&self) -> f64 {
        self.max_int_secs.max(self.max_ext_secs)
    }
}

/// Where a photo goes on a track.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    Matched {
        position: LatLon,
        altitude_m: Option<f64>,
        /// The fixes' times used: the bracketing pair, or the one fix twice.
        fix_times: (f64, f64),
        /// Index into [`TrackSet::fixes`] of the fix nearer in time (the later one on a tie).
        nearest_fix: usize,
    },
    Refused(Refusal),
}

/// Why a photo was not placed.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// More than `max_ext` before the first fix (`secs`: how long before).
    BeforeTrack { secs: f64 },
    /// More than `max_ext` after the last fix.
    AfterTrack { secs: f64 },
    /// In a gap longer than `max_int`, more than `max_ext` from both ends.
    InGap { gap_secs: f64 },
    /// The photo has no capture time.
    NoCaptureTime,
    /// The photo's time has no offset from UTC and no `--tz` was given.
    NoTimeZone,
    /// No fixes at all (no neighbouring photo with GPS and a time).
    NoFixes,
}

impl Refusal {
    /// A short key for summaries: `before track`, `after track`, `in gap`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::BeforeTrack { .. } => "before track",
            Self::AfterTrack { .. } => "after track",
            Self::InGap { .. } => "in a gap",
            Self::NoCaptureTime => "no capture time",
            Self::NoTimeZone => "no time zone",
            Self::NoFixes => "no fixes",
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Self::BeforeTrack { secs } => format!("{secs:.0} s before the track starts"),
            Self::AfterTrack { secs } => format!("{secs:.0} s after the track ends"),
            Self::InGap { gap_secs } => format!("in a {gap_secs:.0} s gap between fixes"),
            Self::NoCaptureTime => "no capture time (EXIF DateTimeOriginal)".to_owned(),
            Self::NoTimeZone => "no OffsetTimeOriginal: give the photos' zone with --tz".to_owned(),
            Self::NoFixes => "no fixes to place it by".to_owned(),
        }
    }
}

/// Places a photo taken at `photo_utc_secs` on `set`, its time corrected by `offset_secs`
/// (added, as exiftool's `-geosync`).
pub fn correlate(
    set: &TrackSet,
    photo_utc_secs: f64,
    offset_secs: f64,
    limits: Limits,
) -> Placement {
    let fixes = &set.fixes;
    let (Some(first), Some(last)) = (fixes.first(), fixes.last()) else {
        return Placement::Refused(Refusal::NoFixes);
    };
    let time = photo_utc_secs + offset_secs;
    let taken = |i: usize, dir: Option<i8>| {
        let fix = &fixes[i];
        let altitude_m = fix.altitude_m.or_else(|| {
            set.has_altitude
                .then(|| find_altitude(fixes, i, dir, limits.max_ext_secs))
                .flatten()
        });
        Placement::Matched {
            position: fix.position,
            altitude_m,
            fix_times: (fix.time_secs, fix.time_secs),
            nearest_fix: i,
        }
    };
    if time < first.time_secs {
        if time < first.time_secs - limits.max_ext_secs {
            return Placement::Refused(Refusal::BeforeTrack {
                secs: first.time_secs - time,
            });
        }
        return taken(0, Some(1));
    }
    if time > last.time_secs {
        if time > last.time_secs + limits.max_ext_secs {
            return Placement::Refused(Refusal::AfterTrack {
                secs: time - last.time_secs,
            });
        }
        return taken(fixes.len() - 1, Some(-1));
    }
    let (mut i0, mut i1) = (0, fixes.len() - 1);
    while i1 > i0 + 1 {
        let pt = (i0 + i1) / 2;
        if time < fixes[pt].time_secs {
            i1 = pt;
        } else {
            i0 = pt;
        }
    }
    let (p0, p1) = (&fixes[i0], &fixes[i1]);
    let (t0, t1) = (p0.time_secs, p1.time_secs);
    let max_secs = if p1.first_of_file && limits.max_int_secs != 0.0 {
        limits.max_ext_secs
    } else {
        limits.max_int_secs
    };
    if t1 - t0 > max_secs {
        let (tn, i_ext) = if time - t0 < t1 - time {
            (t0, i0)
        } else {
            (t1, i1)
        };
        if (time - tn).abs() > limits.max_ext_secs {
            return Placement::Refused(Refusal::InGap { gap_secs: t1 - t0 });
        }
        return taken(i_ext, None);
    }
    let f0 = if t1 == t0 {
        0.0
    } else {
        (time - t0) / (t1 - t0)
    };
    let position = LatLon::new(
        lerp(p0.position.lat_deg, p1.position.lat_deg, f0),
        lerp_lon(p0.position.lon_deg, p1.position.lon_deg, f0),
    );
    let altitude_m = if set.has_altitude {
        interpolated_altitude(fixes, i0, i1, time, max_secs)
    } else {
        None
    };
    Placement::Matched {
        position,
        altitude_m,
        fix_times: (t0, t1),
        nearest_fix: if time - t0 < t1 - time { i0 } else { i1 },
    }
}

/// exiftool's `$v1 * $f + $v0 * (1 - $f)`.
fn lerp(v0: f64, v1: f64, f: f64) -> f64 {
    v1 * f + v0 * (1.0 - f)
}

/// Longitude interpolated the short way round: 360 added to the smaller one when they are
/// more than 180° apart, the result brought back below 180.
fn lerp_lon(mut v0: f64, mut v1: f64, f: f64) -> f64 {
    if (v1 - v0).abs() > 180.0 {
        if v0 < v1 {
            v0 += 360.0;
        } else {
            v1 += 360.0;
        }
        let v = lerp(v0, v1, f);
        if v >= 180.0 { v - 360.0 } else { v }
    } else {
        lerp(v0, v1, f)
    }
}

/// The altitude between fixes `i0` and `i1`: both fixes' when they have one, else the nearest
/// fixes with one scanning outwards (within `max_secs` of the starting fix), the factor
/// recomputed for them.
fn interpolated_altitude(
    fixes: &[Fix],
    i0: usize,
    i1: usize,
    time: f64,
    max_secs: f64,
) -> Option<f64> {
    let (p0, p1) = (&fixes[i0], &fixes[i1]);
    if let (Some(v0), Some(v1)) = (p0.altitude_m, p1.altitude_m) {
        let (t0, t1) = (p0.time_secs, p1.time_secs);
        let f = if t1 == t0 {
            0.0
        } else {
            (time - t0) / (t1 - t0)
        };
        return Some(lerp(v0, v1, f));
    }
    let (t0b, v0) = match p0.altitude_m {
        Some(v) => (p0.time_secs, v),
        None => scan_outwards(fixes, i0, -1, max_secs)?,
    };
    let (t1b, v1) = match p1.altitude_m {
        Some(v) => (p1.time_secs, v),
        None => scan_outwards(fixes, i1, 1, max_secs)?,
    };
    let f = if t1b == t0b {
        0.0
    } else {
        (time - t0b) / (t1b - t0b)
    };
    Some(lerp(v0, v1, f))
}

/// exiftool's `ScanOutwards` for altitude: from fix `i` (not included) in direction `dir`,
/// the first fix with an altitude no further than `max_secs` from fix `i`.
fn scan_outwards(fixes: &[Fix], i: usize, dir: i8, max_secs: f64) -> Option<(f64, f64)> {
    let t0 = fixes[i].time_secs;
    let mut j = i;
    loop {
        j = if dir < 0 { j.checked_sub(1)? } else { j + 1 };
        let fix = fixes.get(j)?;
        if (fix.time_secs - t0).abs() > max_secs {
            return None;
        }
        if let Some(v) = fix.altitude_m {
            return Some((fix.time_secs, v));
        }
    }
}

/// exiftool's `FindFix` for altitude: in `dir`, or with no direction backwards first, then
/// forwards (exiftool compares with an undefined time there, which always prefers the earlier
/// fix).
fn find_altitude(fixes: &[Fix], i: usize, dir: Option<i8>, max_secs: f64) -> Option<f64> {
    match dir {
        Some(d) => scan_outwards(fixes, i, d, max_secs).map(|(_, v)| v),
        None => scan_outwards(fixes, i, -1, max_secs)
            .or_else(|| scan_outwards(fixes, i, 1, max_secs))
            .map(|(_, v)| v),
    }
}

/// The clock offset that puts a photo taken at `photo_utc_secs` at the track point of time
/// `track_time_secs` (HoudahGeo's "this photo was taken here"): `track - photo`, the value
/// `--offset` and exiftool's `-geosync` take.
pub fn offset_for_placement(photo_utc_secs: f64, track_time_secs: f64) -> f64 {
    track_time_secs - photo_utc_secs
}

/// The time of the fix nearest `position` (great-circle distance; the earlier one on a tie),
/// for [`offset_for_placement`] when the user points at the map rather than at a fix.
pub fn nearest_fix_time(set: &TrackSet, position: LatLon) -> Option<f64> {
    set.fixes
        .iter()
        .map(|fix| (fix.position.distance_km(&position), fix.time_secs))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, time)| time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    fn fix(time_secs: f64, lat: f64, lon: f64, alt: Option<f64>) -> Fix {
        Fix {
            time_secs,
            position: LatLon::new(lat, lon),
            altitude_m: alt,
            first_of_file: false,
            source: 0,
        }
    }

    fn set(fixes: Vec<Fix>) -> TrackSet {
        TrackSet {
            has_altitude: fixes.iter().any(|f| f.altitude_m.is_some_and(|a| a != 0.0)),
            fixes,
            sources: vec!["a.gpx".into()],
        }
    }

    fn matched(p: Placement) -> (LatLon, Option<f64>) {
        match p {
            Placement::Matched {
                position,
                altitude_m,
                ..
            } => (position, altitude_m),
            Placement::Refused(r) => panic!("refused: {r:?}"),
        }
    }

    #[test]
    fn interpolates_position_and_altitude() {
        let s = set(vec![
            fix(1000.0, 10.0, 20.0, Some(100.0)),
            fix(1100.0, 11.0, 22.0, Some(200.0)),
        ]);
        let (p, alt) = matched(correlate(&s, 1025.0, 0.0, Limits::default()));
        assert_abs_diff_eq!(p.lat_deg, 10.25, epsilon = 1e-12);
        assert_abs_diff_eq!(p.lon_deg, 20.5, epsilon = 1e-12);
        assert_abs_diff_eq!(alt.unwrap(), 125.0, epsilon = 1e-9);
        // The offset is added to the photo's time: 1000 + 75 = 1075.
        let (p, _) = matched(correlate(&s, 1000.0, 75.0, Limits::default()));
        assert_abs_diff_eq!(p.lat_deg, 10.75, epsilon = 1e-12);
    }

    #[test]
    fn before_and_after_take_the_end_fix_within_max_ext() {
        let s = set(vec![
            fix(1000.0, 10.0, 20.0, None),
            fix(1100.0, 11.0, 22.0, None),
        ]);
        let limits = Limits::default();
        let (p, _) = matched(correlate(&s, 1000.0 - 1800.0, 0.0, limits));
        assert_eq!(p, LatLon::new(10.0, 20.0));
        assert_eq!(
            correlate(&s, 1000.0 - 1800.5, 0.0, limits),
            Placement::Refused(Refusal::BeforeTrack { secs: 1800.5 })
        );
        let (p, _) = matched(correlate(&s, 1100.0 + 1800.0, 0.0, limits));
        assert_eq!(p, LatLon::new(11.0, 22.0));
        assert!(matches!(
            correlate(&s, 1100.0 + 1801.0, 0.0, limits),
            Placement::Refused(Refusal::AfterTrack { .. })
        ));
    }

    #[test]
    fn a_gap_longer_than_max_int_falls_back_to_the_nearer_fix_within_max_ext() {
        let s = set(vec![
            fix(0.0, 10.0, 20.0, None),
            fix(10_000.0, 11.0, 22.0, None),
        ]);
        let limits = Limits {
            max_int_secs: 1800.0,
            max_ext_secs: 1000.0,
        };
        let (p, _) = matched(correlate(&s, 900.0, 0.0, limits));
        assert_eq!(p, LatLon::new(10.0, 20.0));
        let (p, _) = matched(correlate(&s, 9_500.0, 0.0, limits));
        assert_eq!(p, LatLon::new(11.0, 22.0));
        assert_eq!(
            correlate(&s, 5_000.0, 0.0, limits),
            Placement::Refused(Refusal::InGap { gap_secs: 10_000.0 })
        );
        // A gap ending at the first fix of another file is bridged up to max_ext instead.
        let mut merged = set(vec![
            fix(0.0, 10.0, 20.0, None),
            fix(1500.0, 11.0, 22.0, None),
        ]);
        merged.fixes[1].first_of_file = true;
        let tight = Limits {
            max_int_secs: 1000.0,
            max_ext_secs: 2000.0,
        };
        let (p, _) = matched(correlate(&merged, 750.0, 0.0, tight));
        assert_abs_diff_eq!(p.lat_deg, 10.5, epsilon = 1e-12);
    }

    #[test]
    fn exact_fix_times_and_a_single_fix() {
        let s = set(vec![fix(0.0, 1.0, 2.0, None), fix(60.0, 3.0, 4.0, None)]);
        let (p, _) = matched(correlate(&s, 60.0, 0.0, Limits::default()));
        assert_eq!(p, LatLon::new(3.0, 4.0));
        let one = set(vec![fix(5.0, 1.0, 2.0, None)]);
        let (p, _) = matched(correlate(&one, 5.0, 0.0, Limits::default()));
        assert_eq!(p, LatLon::new(1.0, 2.0));
        assert_eq!(
            correlate(&TrackSet::default(), 5.0, 0.0, Limits::default()),
            Placement::Refused(Refusal::NoFixes)
        );
    }

    #[test]
    fn longitude_interpolates_across_the_antimeridian() {
        let s = set(vec![
            fix(0.0, 0.0, 179.0, None),
            fix(100.0, 0.0, -179.0, None),
        ]);
        let (p, _) = matched(correlate(&s, 25.0, 0.0, Limits::default()));
        assert_abs_diff_eq!(p.lon_deg, 179.5, epsilon = 1e-9);
        let (p, _) = matched(correlate(&s, 75.0, 0.0, Limits::default()));
        assert_abs_diff_eq!(p.lon_deg, -179.5, epsilon = 1e-9);
    }

    #[test]
    fn missing_altitude_scans_outwards() {
        let s = set(vec![
            fix(0.0, 0.0, 0.0, Some(100.0)),
            fix(10.0, 0.0, 0.0, None),
            fix(20.0, 0.0, 0.0, Some(300.0)),
        ]);
        // Between fixes 1 and 2: fix 1 has none, so fix 0 (t=0) stands in: f = 15/20.
        let (_, alt) = matched(correlate(&s, 15.0, 0.0, Limits::default()));
        assert_abs_diff_eq!(alt.unwrap(), 250.0, epsilon = 1e-9);
        // No non-zero altitude anywhere: none at all (exiftool's Has{alt}).
        let flat = set(vec![
            fix(0.0, 0.0, 0.0, Some(0.0)),
            fix(10.0, 0.0, 0.0, Some(0.0)),
        ]);
        assert_eq!(
            matched(correlate(&flat, 5.0, 0.0, Limits::default())).1,
            None
        );
    }

    #[test]
    fn offset_from_a_placed_photo() {
        let s = set(vec![
            fix(1000.0, 10.0, 20.0, None),
            fix(1100.0, 11.0, 22.0, None),
        ]);
        let track_time = nearest_fix_time(&s, LatLon::new(10.9, 21.9)).unwrap();
        assert_eq!(track_time, 1100.0);
        let offset = offset_for_placement(1063.0, track_time);
        assert_eq!(offset, 37.0);
        let (p, _) = matched(correlate(&s, 1063.0, offset, Limits::default()));
        assert_eq!(p, LatLon::new(11.0, 22.0));
    }
}
