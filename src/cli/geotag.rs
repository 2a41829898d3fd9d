//! `geoloupe geotag`: photos placed on GPS tracks by capture time (exiftool's `-geotag`
//! semantics, [`crate::track`]), or by neighbouring photos with their own GPS, then written
//! through the same exports and write-backs as `locate`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use super::{WriteOptions, export_formats, find_photos, write_exports};
use crate::domain::{Origin, Provenance, format_offset};
use crate::export::{self, ExportRecord, PathStyle, PhotoPaths, PointSet};
use crate::library::PhotoEntry;
use crate::model::files::DataDirs;
use crate::track::neighbours::{Neighbour, neighbour_set, place_by_neighbours};
use crate::track::{
    CaptureTime, Limits, Placement, Refusal, TimeWindows, TimeZone, correlate, load_tracks,
};

fn parse_offset_arg(text: &str) -> Result<f64, String> {
    crate::track::parse_offset(text).ok_or_else(|| {
        format!("not a clock offset: {text:?} (examples: +1:00:00, -0:00:37, +37, -1:30)")
    })
}

fn parse_zone_arg(text: &str) -> Result<TimeZone, String> {
    crate::track::parse_zone(text).ok_or_else(|| {
        format!(
            "not a time zone: {text:?} (UTC, Z, +02:00, -0530; IANA names such as \
             Europe/Kyiv are not supported: give the offset)"
        )
    })
}

fn parse_secs(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| format!("not a number of seconds: {text:?}"))
}

#[derive(Debug, clap::Args)]
pub struct GeotagArgs {
    /// Photos or folders (searched recursively, as `locate` does).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A GPS track: GPX 1.0/1.1, KML (gx:Track, Placemarks) or NMEA 0183 (RMC, GGA).
    /// Repeatable: the tracks' fixes are merged by time, as exiftool merges them.
    #[arg(
        long = "track",
        value_name = "FILE",
        required_unless_present = "neighbours"
    )]
    pub tracks: Vec<PathBuf>,
    /// The camera clock's error, added to each photo's time to give the track's time, as
    /// exiftool's -geosync reads it: `+1:00:00`, `-0:00:37`, `+37` (seconds), `-1:30`.
    #[arg(long, value_name = "±H:MM:SS", value_parser = parse_offset_arg, allow_hyphen_values = true, default_value = "0")]
    pub offset: f64,
    /// The time zone of photos whose EXIF has no OffsetTimeOriginal: `UTC`, `Z`, `+02:00`,
    /// `-0530` (IANA names such as `Europe/Kyiv` are not read). Without it such photos are
    /// refused (their time is ambiguous).
    #[arg(long, value_name = "ZONE", value_parser = parse_zone_arg, allow_hyphen_values = true)]
    pub tz: Option<TimeZone>,
    /// The longest gap between two fixes that is interpolated across, in seconds
    /// (exiftool's GeoMaxIntSecs).
    #[arg(long, value_name = "S", value_parser = parse_secs, default_value = "1800")]
    pub max_gap: f64,
    /// How far from the nearest fix a photo may be when no interpolation is possible (before
    /// or after the track, or in a longer gap), in seconds (exiftool's GeoMaxExtSecs).
    #[arg(long, value_name = "S", value_parser = parse_secs, default_value = "1800")]
    pub max_ext: f64,
    /// Also place photos by the photos of the same set that have their own EXIF GPS and a
    /// capture time (same interpolation and limits, no clock offset); used for the photos the
    /// tracks do not place, or for all when no --track is given.
    #[arg(long)]
    pub neighbours: bool,
    /// What to print.
    #[arg(long, value_enum, default_value_t = GeotagFormat::Table)]
    pub format: GeotagFormat,
    /// How photo paths are written (relative, name or full), as in `locate`.
    #[arg(long = "paths", value_enum, default_value_t = PathStyle::Relative, value_name = "STYLE")]
    pub path_style: PathStyle,
    /// Also write the placed photos to FILE: GPX (.gpx), CSV (.csv) or GeoJSON (.geojson,
    /// .json), by extension. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub export: Vec<PathBuf>,
    #[command(flatten)]
    pub write: super::WriteArgs,
}

/// `geotag`'s standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GeotagFormat {
    /// One line per photo: position, altitude and where it came from, or why it was refused.
    Table,
    /// One JSON document: `photos`, each with `path` and `status`: `placed` (with `location`,
    /// `altitude_m`, `origin`, `fix_times`), `refused` or `skipped` (with `reason`).
    Json,
    /// `path,status,lat_deg,lon_deg,altitude_m,origin,detail,path_bytes_hex`.
    Csv,
}

/// What happened to one photo.
enum Outcome {
    Placed {
        record: Box<ExportRecord>,
        altitude_m: Option<f64>,
        fix_times: (f64, f64),
    },
    Refused(Refusal),
    /// It has EXIF GPS of its own.
    HasGps,
}

/// The photo's capture time in UTC seconds, or why there is none.
fn photo_time(entry: &PhotoEntry, zone: Option<TimeZone>) -> Result<f64, Refusal> {
    let taken = entry
        .exif
        .taken_at
        .as_deref()
        .ok_or(Refusal::NoCaptureTime)?;
    let capture = CaptureTime::from_exif_text(taken, entry.exif.taken_subsec.as_deref())
        .ok_or(Refusal::NoCaptureTime)?;
    capture.utc_secs(zone).ok_or(Refusal::NoTimeZone)
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub fn geotag(dirs: &DataDirs, args: &GeotagArgs) -> anyhow::Result<bool> {
    let limits = Limits {
        max_int_secs: args.max_gap,
        max_ext_secs: args.max_ext,
    };
    let export_formats = export_formats(&args.export)?;
    let (photos, mut failures) = find_photos(&args.paths)?;
    for e in &failures {
        eprintln!("error: {e}");
    }
    let times: Vec<Result<f64, Refusal>> = photos.iter().map(|p| photo_time(p, args.tz)).collect();
    // A photo with valid EXIF GPS is never placed; one with invalid GPS only when asked.
    let placeable = |p: &PhotoEntry| {
        p.exif.gps.is_none() && (p.exif.gps_invalid.is_none() || args.write.overwrite_invalid_gps)
    };
    let track_set = if args.tracks.is_empty() {
        None
    } else {
        let wanted = photos
            .iter()
            .zip(&times)
            .filter(|(p, _)| placeable(p))
            .filter_map(|(_, t)| t.as_ref().ok().copied());
        let windows = TimeWindows::around(wanted, (args.offset, args.offset), limits);
        let set = load_tracks(&args.tracks, &windows)?;
        log::info!(
            "geotag: {} fixes kept from {} track(s)",
            set.fixes.len(),
            args.tracks.len()
        );
        Some(set)
    };
    let neighbours = args.neighbours.then(|| {
        let with_gps: Vec<Neighbour> = photos
            .iter()
            .zip(&times)
            .filter_map(|(p, t)| {
                Some(Neighbour {
                    name: file_name(&p.path),
                    utc_secs: *t.as_ref().ok()?,
                    position: p.exif.gps?,
                })
            })
            .collect();
        neighbour_set(&with_gps)
    });
    let estimated_at = export::utc_now_rfc3339();
    let make_record =
        |entry: &PhotoEntry, placement: Placement, origin: Origin| -> anyhow::Result<Outcome> {
            let Placement::Matched {
                position,
                altitude_m,
                fix_times,
                ..
            } = placement
            else {
                bail!("internal error: a refused placement has no record");
            };
            let mut record = ExportRecord::new(
                &entry.path,
                &[],
                Provenance::measured(&origin),
                estimated_at.clone(),
                Some(position),
                None,
            )
            .context("internal error: no record for a placed photo")?;
            record.origin = origin;
            record.overwrite_invalid_gps = args.write.overwrite_invalid_gps;
            record.iptc_location = args.write.iptc_location;
            Ok(Outcome::Placed {
                record: Box::new(record),
                altitude_m,
                fix_times,
            })
        };
    let mut outcomes: Vec<(&PhotoEntry, Outcome)> = Vec::with_capacity(photos.len());
    for (entry, time) in photos.iter().zip(&times) {
        if !placeable(entry) {
            outcomes.push((entry, Outcome::HasGps));
            continue;
        }
        let time = match time {
            Ok(t) => *t,
            Err(refusal) => {
                outcomes.push((entry, Outcome::Refused(refusal.clone())));
                continue;
            }
        };
        let mut refusal = None;
        if let Some(set) = &track_set {
            match correlate(set, time, args.offset, limits) {
                placement @ Placement::Matched { .. } => {
                    let (altitude_m, nearest) = match &placement {
                        Placement::Matched {
                            altitude_m,
                            nearest_fix,
                            ..
                        } => (*altitude_m, *nearest_fix),
                        Placement::Refused(_) => (None, 0),
                    };
                    let track = set
                        .fixes
                        .get(nearest)
                        .map(|f| set.source_name(f).to_owned())
                        .unwrap_or_default();
                    let origin = Origin::Track {
                        track,
                        offset_secs: args.offset,
                        altitude_m,
                    };
                    outcomes.push((entry, make_record(entry, placement, origin)?));
                    continue;
                }
                Placement::Refused(r) => refusal = Some(r),
            }
        }
        if let Some(set) = &neighbours {
            match place_by_neighbours(set, time, limits) {
                (placement @ Placement::Matched { .. }, Some(origin)) => {
                    outcomes.push((entry, make_record(entry, placement, origin)?));
                    continue;
                }
                (Placement::Refused(r), _) => {
                    refusal.get_or_insert(r);
                }
                (Placement::Matched { .. }, None) => {}
            }
        }
        outcomes.push((entry, Outcome::Refused(refusal.unwrap_or(Refusal::NoFixes))));
    }

    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let paths = PhotoPaths::from_dir(args.path_style, &cwd);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    print_outcomes(&mut out, args.format, &paths, &outcomes)?;
    out.flush()?;
    drop(out);

    let mut placed = (0usize, 0usize);
    let mut refused: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut has_gps = 0usize;
    for (_, outcome) in &outcomes {
        match outcome {
            Outcome::Placed { record, .. } => match record.origin {
                Origin::Neighbour { .. } => placed.1 += 1,
                _ => placed.0 += 1,
            },
            Outcome::Refused(r) => *refused.entry(r.as_str()).or_default() += 1,
            Outcome::HasGps => has_gps += 1,
        }
    }
    let refused_total: usize = refused.values().sum();
    let reasons: Vec<String> = refused.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut summary = format!(
        "geotag: {} matched ({} by track, {} by neighbours), {refused_total} refused",
        placed.0 + placed.1,
        placed.0,
        placed.1
    );
    if !reasons.is_empty() {
        summary.push_str(&format!(" ({})", reasons.join(", ")));
    }
    summary.push_str(&format!(", {has_gps} skipped (own EXIF GPS)"));
    if args.offset != 0.0 {
        summary.push_str(&format!(", clock offset {}", format_offset(args.offset)));
    }
    eprintln!("{summary}");

    // Refused photos have no record: nothing is ever written for them.
    let records: Vec<ExportRecord> = outcomes
        .into_iter()
        .filter_map(|(_, o)| match o {
            Outcome::Placed { record, .. } => Some(*record),
            _ => None,
        })
        .collect();
    let options = WriteOptions {
        export: &args.export,
        path_style: args.path_style,
        write: &args.write,
    };
    failures.extend(write_exports(
        dirs,
        &options,
        &export_formats,
        &records,
        PointSet::Chosen,
    ));
    if !failures.is_empty() {
        eprintln!("{} input(s) failed; the others are above", failures.len());
    }
    Ok(failures.is_empty())
}

#[derive(serde::Serialize)]
struct GeotagJson<'a> {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes_hex: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<crate::geo::LatLon>,
    #[serde(skip_serializing_if = "Option::is_none")]
    altitude_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a Origin>,
    /// The fixes' times used (UTC, RFC 3339-like text).
    #[serde(skip_serializing_if = "Option::is_none")]
    fix_times: Option<[String; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn print_outcomes(
    out: &mut impl std::io::Write,
    format: GeotagFormat,
    paths: &PhotoPaths,
    outcomes: &[(&PhotoEntry, Outcome)],
) -> anyhow::Result<()> {
    use crate::track::time::format_utc;
    let rows = outcomes.iter().map(|(entry, outcome)| {
        let path = paths.text(&entry.path);
        let mut row = GeotagJson {
            path: path.text,
            path_bytes_hex: path.bytes_hex,
            status: "placed",
            location: None,
            altitude_m: None,
            origin: None,
            fix_times: None,
            reason: None,
        };
        match outcome {
            Outcome::Placed {
                record,
                altitude_m,
                fix_times,
            } => {
                row.location = Some(record.location);
                row.altitude_m = *altitude_m;
                row.origin = Some(&record.origin);
                row.fix_times = Some([format_utc(fix_times.0), format_utc(fix_times.1)]);
            }
            Outcome::Refused(r) => {
                row.status = "refused";
                row.reason = Some(r.describe());
            }
            Outcome::HasGps => {
                row.status = "skipped";
                row.reason = Some("has EXIF GPS of its own".to_owned());
            }
        }
        row
    });
    match format {
        GeotagFormat::Json => {
            let rows: Vec<GeotagJson<'_>> = rows.collect();
            serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "photos": rows }))?;
            writeln!(out)?;
        }
        GeotagFormat::Csv => {
            write!(
                out,
                "path,status,lat_deg,lon_deg,altitude_m,origin,detail,path_bytes_hex{}",
                export::csv::CSV_LINE_END
            )?;
            for row in rows {
                let (lat, lon) = row
                    .location
                    .map(|p| (format!("{:.7}", p.lat_deg), format!("{:.7}", p.lon_deg)))
                    .unwrap_or_default();
                let alt = row
                    .altitude_m
                    .map(|a| format!("{a:.2}"))
                    .unwrap_or_default();
                let (origin, detail) = match row.origin {
                    Some(o) => (o.as_str().to_owned(), o.describe()),
                    None => (String::new(), row.reason.clone().unwrap_or_default()),
                };
                write!(
                    out,
                    "{},{},{lat},{lon},{alt},{origin},{},{}{}",
                    export::csv::csv_field(&row.path),
                    row.status,
                    export::csv::csv_field(&detail),
                    row.path_bytes_hex.unwrap_or_default(),
                    export::csv::CSV_LINE_END
                )?;
            }
        }
        GeotagFormat::Table => {
            for row in rows {
                match (row.location, row.origin) {
                    (Some(p), Some(origin)) => {
                        let alt = row
                            .altitude_m
                            .map(|a| format!("  {a:.1} m"))
                            .unwrap_or_default();
                        writeln!(
                            out,
                            "{}  {:.6}, {:.6}{alt}  ({})",
                            row.path,
                            p.lat_deg,
                            p.lon_deg,
                            origin.describe()
                        )?;
                    }
                    _ => writeln!(
                        out,
                        "{}  {}: {}",
                        row.path,
                        row.status,
                        row.reason.unwrap_or_default()
                    )?,
                }
            }
        }
    }
    Ok(())
}
