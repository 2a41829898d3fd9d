//! Streaming track readers: GPX 1.0/1.1 (`trkpt`, `rtept`, `wpt` with `<time>` and `<ele>`),
//! KML (`<gx:Track>` with `<when>`/`<gx:coord>`, Placemarks with `<TimeStamp><when>` and
//! `<Point><coordinates>`, KML's order being lon,lat[,alt]) and NMEA 0183 (RMC for date, time and
//! position; GGA for altitude, merged with the RMC of the same time as exiftool merges them).
//!
//! Files are read as streams (quick-xml events, NMEA line by line), never whole. Which fixes are
//! kept is [`TimeWindows`]' choice: with the photos' times known, only
//! - the fixes within `2 × max(max_int, max_ext)` of some photo's time (over the whole range of
//!   clock offsets that may be tried),
//! - for each stretch between those windows, the last fix before it and the first after it,
//! - the earliest and the latest fix, and each file's first fix (exiftool's `first` flag).
//!
//! That loses nothing [`super::correlate`] can see: a photo at time `t` uses the two fixes that
//! bracket `t` (kept: each is inside the window, or is the last fix before / first after it),
//! the track's first and last fix (kept), and, for altitude, fixes at most `max_int` (or
//! `max_ext`) from a bracketing fix that is itself within `max` of `t` when it is used at all —
//! all within `2 × max` of `t`. So memory grows with the fixes near the photos, not with the
//! file: 48 bytes a kept fix, plus two per window.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use quick_xml::events::Event;

use crate::geo::LatLon;

use super::time::{days_from_civil, parse_iso_time};
use super::{Fix, Limits, TrackError, TrackSet};

/// Which fix times matter: a sorted list of disjoint intervals (UTC seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct TimeWindows {
    intervals: Vec<(f64, f64)>,
}

impl TimeWindows {
    /// Every fix matters (for showing a whole track on a map).
    pub fn all() -> Self {
        Self {
            intervals: vec![(f64::NEG_INFINITY, f64::INFINITY)],
        }
    }

    /// The fixes that can matter for photos at these UTC times, with clock offsets anywhere in
    /// `offset_range_secs` (`(min, max)`; a fixed offset is `(o, o)`).
    pub fn around(
        photo_utc_secs: impl IntoIterator<Item = f64>,
        offset_range_secs: (f64, f64),
        limits: Limits,
    ) -> Self {
        let margin = 2.0 * limits.reach_secs();
        let (lo, hi) = (
            offset_range_secs.0.min(offset_range_secs.1),
            offset_range_secs.0.max(offset_range_secs.1),
        );
        let mut raw: Vec<(f64, f64)> = photo_utc_secs
            .into_iter()
            .filter(|t| t.is_finite())
            .map(|t| (t + lo - margin, t + hi + margin))
            .collect();
        raw.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut intervals: Vec<(f64, f64)> = Vec::with_capacity(raw.len());
        for (start, end) in raw {
            match intervals.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => intervals.push((start, end)),
            }
        }
        Self { intervals }
    }

    /// `Ok(())` when `t` lies in a window, else `Err(i)`: the first window starting after `t`.
    fn locate(&self, t: f64) -> Result<(), usize> {
        let i = self.intervals.partition_point(|&(start, _)| start <= t);
        match i.checked_sub(1).map(|j| self.intervals[j]) {
            Some((_, end)) if t <= end => Ok(()),
            _ => Err(i),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Raw {
    fix: Fix,
    seq: u64,
}

/// Keeps the fixes [`TimeWindows`] asks for, in the order they are read.
struct Collector<'w> {
    windows: &'w TimeWindows,
    kept: Vec<Raw>,
    before: Vec<Option<Raw>>,
    after: Vec<Option<Raw>>,
    earliest: Option<Raw>,
    latest: Option<Raw>,
    seq: u64,
    has_altitude: bool,
    /// Per file: its first fix's time and the last sequence number read from it.
    files: Vec<(Option<f64>, u64)>,
}

impl<'w> Collector<'w> {
    fn new(windows: &'w TimeWindows) -> Self {
        let n = windows.intervals.len();
        Self {
            windows,
            kept: Vec::new(),
            before: vec![None; n],
            after: vec![None; n],
            earliest: None,
            latest: None,
            seq: 0,
            has_altitude: false,
            files: Vec::new(),
        }
    }

    fn start_file(&mut self) {
        self.files.push((None, self.seq));
    }

    fn push(&mut self, fix: Fix) {
        self.seq += 1;
        let raw = Raw { fix, seq: self.seq };
        let t = fix.time_secs;
        if let Some(file) = self.files.last_mut() {
            if file.0.is_none() {
                file.0 = Some(t);
                self.kept.push(raw);
            }
            file.1 = self.seq;
        }
        if self.earliest.is_none_or(|e| t <= e.fix.time_secs) {
            self.earliest = Some(raw);
        }
        if self.latest.is_none_or(|e| t >= e.fix.time_secs) {
            self.latest = Some(raw);
        }
        match self.windows.locate(t) {
            Ok(()) => self.kept.push(raw),
            Err(i) => {
                if let Some(slot) = self.before.get_mut(i)
                    && slot.is_none_or(|s| t >= s.fix.time_secs)
                {
                    *slot = Some(raw);
                }
                if let Some(slot) = i.checked_sub(1).and_then(|j| self.after.get_mut(j))
                    && slot.is_none_or(|s| t <= s.fix.time_secs)
                {
                    *slot = Some(raw);
                }
            }
        }
    }

    fn finish(self, sources: Vec<String>) -> TrackSet {
        let mut all: Vec<Raw> = self
            .kept
            .into_iter()
            .chain(self.before.into_iter().flatten())
            .chain(self.after.into_iter().flatten())
            .chain(self.earliest)
            .chain(self.latest)
            .collect();
        all.sort_by(|a, b| {
            a.fix
                .time_secs
                .total_cmp(&b.fix.time_secs)
                .then(a.seq.cmp(&b.seq))
        });
        // One fix per time: the one read last (exiftool's table keyed by time).
        let mut winners: Vec<Raw> = Vec::with_capacity(all.len());
        for raw in all {
            match winners.last_mut() {
                Some(last) if last.fix.time_secs == raw.fix.time_secs => *last = raw,
                _ => winners.push(raw),
            }
        }
        // exiftool marks, after reading each file, the fix then at its first fix's time.
        for (first_time, end_seq) in &self.files {
            let Some(first_time) = first_time else {
                continue;
            };
            let i = winners.partition_point(|w| w.fix.time_secs < *first_time);
            if let Some(w) = winners.get_mut(i)
                && w.fix.time_secs == *first_time
                && w.seq <= *end_seq
            {
                w.fix.first_of_file = true;
            }
        }
        TrackSet {
            fixes: winners.into_iter().map(|w| w.fix).collect(),
            sources,
            has_altitude: self.has_altitude,
        }
    }
}

/// Reads the track files in order and merges their fixes by time, keeping those `windows`
/// asks for. Each file must have at least one fix with a time.
pub fn load_tracks(paths: &[PathBuf], windows: &TimeWindows) -> Result<TrackSet, TrackError> {
    let mut collector = Collector::new(windows);
    let mut sources = Vec::with_capacity(paths.len());
    for (index, path) in paths.iter().enumerate() {
        collector.start_file();
        let source = u32::try_from(index).unwrap_or(u32::MAX);
        let counts = read_file(path, source, &mut collector)?;
        if counts.with_time == 0 {
            return Err(if counts.without_time > 0 {
                TrackError::NoTimestamps {
                    path: path.clone(),
                    points: counts.without_time,
                }
            } else {
                TrackError::Empty { path: path.clone() }
            });
        }
        sources.push(path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ));
    }
    Ok(collector.finish(sources))
}

#[derive(Default)]
struct Counts {
    with_time: u64,
    without_time: u64,
}

fn read_file(path: &Path, source: u32, out: &mut Collector<'_>) -> Result<Counts, TrackError> {
    let unreadable = |source| TrackError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(unreadable)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().map_err(unreadable)?;
    let start = head
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(head)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    let is_nmea = head.windows(4).any(|w| w[0] == b'$') && {
        let text = String::from_utf8_lossy(head);
        text.lines().take(50).any(|l| nmea_kind(l).is_some())
    };
    match start {
        None => Err(TrackError::Empty {
            path: path.to_path_buf(),
        }),
        Some(b'<') => read_xml(path, reader, source, out),
        Some(_) if is_nmea => read_nmea(path, reader, source, out),
        Some(_) => Err(TrackError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// A point being read: GPX's attributes and children, or a KML Placemark.
#[derive(Default)]
struct Pending {
    lat_deg: Option<f64>,
    lon_deg: Option<f64>,
    altitude_m: Option<f64>,
    time_secs: Option<f64>,
}

/// Which element's text is being read.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    None,
    Ele,
    Time,
    When,
    Coordinates,
    Coord,
}

/// exiftool accepts an altitude that starts like a number and uses altitudes only when some
/// fix has one that is not the text `0` (Perl's truth).
fn note_altitude(text: &str, out: &mut Collector<'_>) -> Option<f64> {
    let value = text.trim().parse::<f64>().ok()?;
    if text.trim() != "0" {
        out.has_altitude = true;
    }
    Some(value)
}

fn read_xml<R: BufRead>(
    path: &Path,
    input: R,
    source: u32,
    out: &mut Collector<'_>,
) -> Result<Counts, TrackError> {
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(true);
    let malformed = |position: u64, message: String| TrackError::Malformed {
        path: path.to_path_buf(),
        position,
        message,
    };
    let mut counts = Counts::default();
    let mut buf = Vec::new();
    let mut depth: usize = 0;
    let mut point: Option<Pending> = None;
    let mut in_gx_track = false;
    let mut track_whens: std::collections::VecDeque<f64> = std::collections::VecDeque::new();
    let mut field = Field::None;
    let emit = |p: &Pending, counts: &mut Counts, out: &mut Collector<'_>| {
        if let (Some(lat), Some(lon)) = (p.lat_deg, p.lon_deg) {
            match p.time_secs {
                Some(time_secs) => {
                    counts.with_time += 1;
                    out.push(Fix {
                        time_secs,
                        position: LatLon::new(lat, lon),
                        altitude_m: p.altitude_m,
                        first_of_file: false,
                        source,
                    });
                }
                None => counts.without_time += 1,
            }
        }
    };
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.local_name();
                let name = name.as_ref().to_ascii_lowercase();
                match name.as_slice() {
                    b"trkpt" | b"rtept" | b"wpt" => {
                        let mut p = Pending::default();
                        for attr in e.attributes().flatten() {
                            let value = std::str::from_utf8(&attr.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<f64>().ok());
                            match attr.key.local_name().as_ref() {
                                b"lat" => p.lat_deg = value,
                                b"lon" => p.lon_deg = value,
                                _ => {}
                            }
                        }
                        if empty {
                            emit(&p, &mut counts, out);
                        } else {
                            point = Some(p);
                        }
                    }
                    b"placemark" if !empty => point = Some(Pending::default()),
                    b"track" if !empty => {
                        in_gx_track = true;
                        track_whens.clear();
                    }
                    b"ele" => field = Field::Ele,
                    b"time" => field = Field::Time,
                    b"when" => field = Field::When,
                    b"coordinates" => field = Field::Coordinates,
                    b"coord" => field = Field::Coord,
                    _ => {}
                }
                if empty {
                    field = Field::None;
                } else {
                    depth += 1;
                }
            }
            Event::End(ref e) => {
                depth = depth.saturating_sub(1);
                field = Field::None;
                let name = e.local_name();
                match name.as_ref().to_ascii_lowercase().as_slice() {
                    b"trkpt" | b"rtept" | b"wpt" | b"placemark" => {
                        if let Some(p) = point.take() {
                            emit(&p, &mut counts, out);
                        }
                    }
                    b"track" => {
                        in_gx_track = false;
                        track_whens.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(ref t) => {
                let text = t
                    .decode()
                    .map_err(|e| malformed(reader.buffer_position(), e.to_string()))?;
                let text = text.trim();
                match field {
                    Field::Ele => {
                        if let Some(p) = point.as_mut() {
                            p.altitude_m = note_altitude(text, out);
                        }
                    }
                    Field::Time => {
                        if let Some(p) = point.as_mut() {
                            p.time_secs = parse_iso_time(text);
                        }
                    }
                    Field::When if in_gx_track => {
                        if let Some(t) = parse_iso_time(text) {
                            track_whens.push_back(t);
                        }
                    }
                    Field::When => {
                        if let Some(p) = point.as_mut() {
                            p.time_secs = parse_iso_time(text);
                        }
                    }
                    Field::Coord if in_gx_track => {
                        // `lon lat [alt]`, space-separated.
                        let mut parts = text.split_whitespace().map(str::parse::<f64>);
                        let p = Pending {
                            lon_deg: parts.next().and_then(Result::ok),
                            lat_deg: parts.next().and_then(Result::ok),
                            altitude_m: parts
                                .next()
                                .and_then(Result::ok)
                                .inspect(|a| out.has_altitude |= *a != 0.0),
                            time_secs: track_whens.pop_front(),
                        };
                        emit(&p, &mut counts, out);
                    }
                    Field::Coordinates => {
                        if let Some(p) = point.as_mut() {
                            // The first `lon,lat[,alt]` tuple.
                            let tuple = text.split_whitespace().next().unwrap_or("");
                            let mut parts = tuple.split(',');
                            p.lon_deg = parts.next().and_then(|v| v.trim().parse().ok());
                            p.lat_deg = parts.next().and_then(|v| v.trim().parse().ok());
                            p.altitude_m = parts.next().and_then(|v| note_altitude(v, out));
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => {
                if depth != 0 {
                    return Err(malformed(
                        reader.buffer_position(),
                        format!("the file ends inside {depth} open element(s)"),
                    ));
                }
                return Ok(counts);
            }
            _ => {}
        }
        buf.clear();
    }
}

/// `RMC` or `GGA` when the line holds such an NMEA sentence (any talker: GP, GN, GL, ...).
fn nmea_kind(line: &str) -> Option<(&'static str, &str)> {
    let start = line.find('$')?;
    let sentence = &line[start..];
    let kind = sentence.get(3..6)?;
    let kind = match kind {
        "RMC" => "RMC",
        "GGA" => "GGA",
        _ => return None,
    };
    (sentence.as_bytes().get(6) == Some(&b',')).then_some((kind, sentence))
}

/// `ddmm.mmmm` + hemisphere -> signed degrees.
fn nmea_degrees(value: &str, hemisphere: &str) -> Option<f64> {
    let dot = value.find('.')?;
    if dot < 2 {
        return None;
    }
    let degrees: f64 = if dot == 2 {
        0.0
    } else {
        value[..dot - 2].parse().ok()?
    };
    let minutes: f64 = value[dot - 2..].parse().ok()?;
    let sign = match hemisphere {
        "N" | "E" => 1.0,
        "S" | "W" => -1.0,
        _ => return None,
    };
    Some(sign * (degrees + minutes / 60.0))
}

/// `hhmmss[.sss]` -> seconds of the day.
fn nmea_secs(value: &str) -> Option<f64> {
    let h: f64 = value.get(0..2)?.parse().ok()?;
    let m: f64 = value.get(2..4)?.parse().ok()?;
    let s: f64 = value.get(4..)?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

struct NmeaFix {
    secs: f64,
    date_secs: Option<f64>,
    position: LatLon,
    altitude_m: Option<f64>,
}

/// One RMC or GGA sentence as exiftool's patterns read it (RMC with status `A` or empty, GGA
/// with fix quality 1 to 6 or empty); `None` for anything else.
fn parse_nmea(line: &str) -> Option<(&'static str, NmeaFix)> {
    let (kind, sentence) = nmea_kind(line)?;
    let body = sentence.split('*').next()?;
    let f: Vec<&str> = body.split(',').collect();
    match kind {
        "RMC" => {
            if f.len() < 10 || !matches!(f[2], "A" | "") {
                return None;
            }
            let date = f[9];
            let (day, month, year): (u32, u32, i64) = (
                date.get(0..2)?.parse().ok()?,
                date.get(2..4)?.parse().ok()?,
                date.get(4..6)?.parse().ok()?,
            );
            if day > 31 || month > 12 || month == 0 {
                return None;
            }
            let year = year + if year >= 70 { 1900 } else { 2000 };
            Some((
                "RMC",
                NmeaFix {
                    secs: nmea_secs(f[1])?,
                    date_secs: Some((days_from_civil(year, month, day) * 86_400) as f64),
                    position: LatLon::new(nmea_degrees(f[3], f[4])?, nmea_degrees(f[5], f[6])?),
                    altitude_m: None,
                },
            ))
        }
        _ => {
            if f.len() < 10 || !matches!(f[6], "" | "1" | "2" | "3" | "4" | "5" | "6") {
                return None;
            }
            Some((
                "GGA",
                NmeaFix {
                    secs: nmea_secs(f[1])?,
                    date_secs: None,
                    position: LatLon::new(nmea_degrees(f[2], f[3])?, nmea_degrees(f[4], f[5])?),
                    altitude_m: f[9].parse().ok(),
                },
            ))
        }
    }
}

fn read_nmea<R: BufRead>(
    path: &Path,
    mut input: R,
    source: u32,
    out: &mut Collector<'_>,
) -> Result<Counts, TrackError> {
    let mut counts = Counts::default();
    let mut first_kind: Option<&'static str> = None;
    let mut current: Option<NmeaFix> = None;
    let mut last_date: Option<(f64, f64)> = None;
    let flush = |fix: Option<NmeaFix>, counts: &mut Counts, out: &mut Collector<'_>| {
        let Some(fix) = fix else { return };
        match fix.date_secs {
            Some(date) => {
                counts.with_time += 1;
                if fix.altitude_m.is_some_and(|a| a != 0.0) {
                    out.has_altitude = true;
                }
                out.push(Fix {
                    time_secs: date + fix.secs,
                    position: fix.position,
                    altitude_m: fix.altitude_m,
                    first_of_file: false,
                    source,
                });
            }
            // A time of day with no date near it: exiftool falls back to time-only matching
            // for such logs; geoloupe does not use them.
            None => counts.without_time += 1,
        }
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        // At most 4 KiB a line: NMEA sentences are 82 characters.
        let n = (&mut input)
            .take(4096)
            .read_until(b'\n', &mut line)
            .map_err(|source| TrackError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let Some((kind, mut fix)) = parse_nmea(text.trim_end()) else {
            continue;
        };
        let first = *first_kind.get_or_insert(kind);
        if fix.date_secs.is_none()
            && let Some((date, secs)) = last_date
            && (fix.secs - secs).abs() < 10.0
        {
            fix.date_secs = Some(date);
        }
        if let Some(date) = fix.date_secs {
            last_date = Some((date, fix.secs));
        }
        let starts_new = kind == first
            || current
                .as_ref()
                .is_none_or(|c| (fix.secs - c.secs).abs() >= 10.0);
        if starts_new {
            flush(current.take(), &mut counts, out);
            current = Some(fix);
        } else if let Some(c) = current.as_mut() {
            c.altitude_m = c.altitude_m.or(fix.altitude_m);
            c.date_secs = c.date_secs.or(fix.date_secs);
        }
    }
    flush(current.take(), &mut counts, out);
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const GPX: &str = r#"<?xml version="1.0"?>
<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">
 <wpt lat="1.0" lon="2.0"><time>2024-05-18T09:00:00Z</time></wpt>
 <trk><trkseg>
  <trkpt lat="10.5" lon="20.25"><ele>100</ele><time>2024-05-18T10:00:00Z</time></trkpt>
  <trkpt lat="11.5" lon="21.25"><ele>200</ele><time>2024-05-18T10:01:00Z</time></trkpt>
 </trkseg></trk>
 <rte><rtept lat="3" lon="4"><time>2024-05-18T12:00:00+02:00</time></rtept></rte>
</gpx>"#;

    #[test]
    fn gpx_points_of_all_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.gpx", GPX);
        let set = load_tracks(&[path], &TimeWindows::all()).unwrap();
        assert_eq!(set.sources, vec!["a.gpx".to_owned()]);
        // The rtept at 12:00+02:00 is 10:00Z: it replaces the trkpt read before it.
        let times: Vec<f64> = set.fixes.iter().map(|f| f.time_secs).collect();
        assert_eq!(times.len(), 3);
        assert_eq!(set.fixes[1].position, LatLon::new(3.0, 4.0));
        assert_eq!(set.fixes[2].altitude_m, Some(200.0));
        assert!(set.fixes[0].first_of_file && set.has_altitude);
    }

    #[test]
    fn kml_tracks_and_placemarks_are_lon_first() {
        let dir = tempfile::tempdir().unwrap();
        let kml = r#"<?xml version="1.0"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document>
 <Placemark><TimeStamp><when>2024-05-18T09:00:00Z</when></TimeStamp>
  <Point><coordinates>2.5,1.5,30</coordinates></Point></Placemark>
 <Placemark><gx:Track>
  <when>2024-05-18T10:00:00Z</when><when>2024-05-18T10:01:00Z</when>
  <gx:coord>20.25 10.5 100</gx:coord><gx:coord>21.25 11.5 200</gx:coord>
 </gx:Track></Placemark>
</Document></kml>"#;
        let path = write(dir.path(), "b.kml", kml);
        let set = load_tracks(&[path], &TimeWindows::all()).unwrap();
        assert_eq!(set.fixes.len(), 3);
        assert_eq!(set.fixes[0].position, LatLon::new(1.5, 2.5));
        assert_eq!(set.fixes[0].altitude_m, Some(30.0));
        assert_eq!(set.fixes[2].position, LatLon::new(11.5, 21.25));
        assert_eq!(set.fixes[2].time_secs - set.fixes[1].time_secs, 60.0);
    }

    #[test]
    fn nmea_rmc_with_gga_altitude() {
        let dir = tempfile::tempdir().unwrap();
        let nmea = "$GPRMC,092204.999,A,4250.5589,S,14718.5084,E,0.00,89.68,211200,,*25\n\
                    $GPGGA,092204.999,4250.5589,S,14718.5084,E,1,04,24.4,19.7,M,,,,0000*1F\n\
                    $GPRMC,092205.999,V,4250.5589,S,14718.5084,E,0.00,89.68,211200,,*25\n\
                    $GPRMC,092214.999,A,4251.5589,S,14718.5084,E,0.00,89.68,211200,,*25\n";
        let path = write(dir.path(), "c.nmea", nmea);
        let set = load_tracks(&[path], &TimeWindows::all()).unwrap();
        assert_eq!(set.fixes.len(), 2);
        let f = set.fixes[0];
        assert_abs_diff_eq!(
            f.position.lat_deg,
            -(42.0 + 50.5589 / 60.0),
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(f.position.lon_deg, 147.0 + 18.5084 / 60.0, epsilon = 1e-12);
        assert_eq!(f.altitude_m, Some(19.7));
        // 2000-12-21 09:22:04.999 UTC
        assert_abs_diff_eq!(f.time_secs, 977_390_524.999, epsilon = 1e-6);
        assert_eq!(set.fixes[1].altitude_m, None);
    }

    #[test]
    fn bad_tracks_are_one_line_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("empty.gpx", "", "has no GPS fixes"),
            (
                "nopoints.gpx",
                "<?xml version=\"1.0\"?><gpx version=\"1.1\"></gpx>",
                "has no GPS fixes",
            ),
            (
                "notime.gpx",
                "<gpx><trk><trkseg><trkpt lat=\"1\" lon=\"2\"/><trkpt lat=\"1\" lon=\"3\"></trkpt></trkseg></trk></gpx>",
                "has 2 points but none with a time",
            ),
            (
                "broken.gpx",
                "<gpx><trk><trkseg><trkpt lat=\"1\" lon=\"2\"><time>2024-05-18T10:00:00Z</time></trkseg></gpx>",
                "is malformed at byte",
            ),
            ("cut.gpx", "<gpx><trk><trkseg>", "is malformed at byte"),
            ("notes.txt", "hello", "is not GPX, KML or NMEA"),
        ];
        for (name, text, expected) in cases {
            let path = write(dir.path(), name, text);
            let err = load_tracks(&[path], &TimeWindows::all())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected) && err.contains(name),
                "{name}: {err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
        let missing = dir.path().join("missing.gpx");
        let err = load_tracks(&[missing], &TimeWindows::all())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read track") && err.contains("missing.gpx"),
            "{err}"
        );
    }

    #[test]
    fn windows_keep_what_correlation_needs_and_give_the_same_answers() {
        use crate::track::{Limits, correlate};
        let dir = tempfile::tempdir().unwrap();
        // A fix every 10 s for 3 days, with a 2-hour hole on day two.
        let mut gpx = String::from("<gpx>\n<trk><trkseg>\n");
        let start = 1_716_000_000.0;
        for i in 0..(3 * 8640) {
            let t = start + f64::from(i) * 10.0;
            if (t - start - 100_000.0).abs() < 3600.0 {
                continue;
            }
            let (days, rem) = ((t as i64).div_euclid(86_400), (t as i64).rem_euclid(86_400));
            let (y, m, d) = crate::track::time::civil_from_days(days);
            gpx.push_str(&format!(
                "<trkpt lat=\"{}\" lon=\"{}\"><ele>{}</ele><time>{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z</time></trkpt>\n",
                10.0 + f64::from(i) * 1e-4,
                20.0 - f64::from(i) * 1e-4,
                i % 300,
                rem / 3600,
                (rem / 60) % 60,
                rem % 60
            ));
        }
        gpx.push_str("</trkseg></trk></gpx>\n");
        let path = write(dir.path(), "long.gpx", &gpx);
        let photos = [
            start - 2000.0,
            start + 5.0,
            start + 100_000.0 - 1000.0,
            start + 100_000.0,
            start + 100_000.0 + 3000.0,
            start + 200_000.5,
            start + 3.0 * 86_400.0 + 1000.0,
        ];
        let limits = Limits::default();
        let full = load_tracks(std::slice::from_ref(&path), &TimeWindows::all()).unwrap();
        let offset = -37.0;
        let windows = TimeWindows::around(photos, (offset, offset), limits);
        let part = load_tracks(&[path], &windows).unwrap();
        assert!(
            part.fixes.len() < full.fixes.len() / 5,
            "{}",
            part.fixes.len()
        );
        for t in photos {
            let a = correlate(&full, t, offset, limits);
            let b = correlate(&part, t, offset, limits);
            match (a, b) {
                (
                    crate::track::Placement::Matched {
                        position: pa,
                        altitude_m: aa,
                        fix_times: fa,
                        ..
                    },
                    crate::track::Placement::Matched {
                        position: pb,
                        altitude_m: ab,
                        fix_times: fb,
                        ..
                    },
                ) => assert_eq!((pa, aa, fa), (pb, ab, fb)),
                (a, b) => assert_eq!(a, b),
            }
        }
    }
}
