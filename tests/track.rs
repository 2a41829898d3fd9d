//! `geoloupe geotag` against exiftool 12.57's `-geotag` (the reference): the same positions
//! (within 1 m) and the same refusals on ~40 photos with every kind of capture time, with and
//! without a clock offset; bad tracks as one error line with nothing written; a ~500 MB track in
//! bounded memory; XMP sidecars that exiftool reads back.
//!
//! The fixtures are generated here (photos with `exiftool`, the GPX written by
//! [`write_parity_gpx`]); nothing is committed but this code.
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// 2024-05-18T08:00:00Z.
const E0: f64 = 1_716_019_200.0;
/// The first segment: a fix every 30 s for 2 h.
const SEG1_FIXES: u32 = 241;
/// Then a 6000 s gap (longer than 1800 s), then a fix every 45 s for 1.5 h.
const SEG2_START: f64 = 7200.0 + 6000.0;
const SEG2_FIXES: u32 = 121;

fn require_exiftool() {
    let ok = Command::new("exiftool")
        .arg("-ver")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "exiftool is the reference and was not found on PATH: `apt-get install -y libimage-exiftool-perl`"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    out
}

fn geoloupe(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_geoloupe"));
    cmd.arg("--data-dir").arg(data_dir);
    cmd
}

/// `YYYY:MM:DD HH:MM:SS` of UTC seconds (whole), as EXIF writes dates.
fn exif_date(secs: f64) -> String {
    let whole = secs.floor() as i64;
    let (days, rem) = (whole.div_euclid(86_400), whole.rem_euclid(86_400));
    let (y, m, d) = geoloupe::track::time::civil_from_days(days);
    format!(
        "{y:04}:{m:02}:{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn iso(secs: f64) -> String {
    exif_date(secs).replacen(':', "-", 2).replace(' ', "T") + "Z"
}

/// The track: two segments with a 6000 s gap, the second with every fifth `<ele>` missing.
fn write_parity_gpx(path: &Path) {
    let mut gpx = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <gpx version=\"1.1\" creator=\"geoloupe tests\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n<trk><trkseg>\n",
    );
    for i in 0..SEG1_FIXES {
        let x = f64::from(i);
        gpx.push_str(&format!(
            "<trkpt lat=\"{:.7}\" lon=\"{:.7}\"><ele>{:.2}</ele><time>{}</time></trkpt>\n",
            46.0 + x * 3e-4 + (x * 0.3).sin() * 1e-4,
            7.0 + x * 5e-4,
            500.0 + 20.0 * (x * 0.1).sin(),
            iso(E0 + x * 30.0)
        ));
    }
    gpx.push_str("</trkseg><trkseg>\n");
    for i in 0..SEG2_FIXES {
        let x = f64::from(i);
        let ele = if i % 5 == 2 {
            String::new()
        } else {
            format!("<ele>{:.2}</ele>", 800.0 - x)
        };
        gpx.push_str(&format!(
            "<trkpt lat=\"{:.7}\" lon=\"{:.7}\">{ele}<time>{}</time></trkpt>\n",
            46.2 - x * 2e-4,
            7.3 + x * 4e-4,
            iso(E0 + SEG2_START + x * 45.0)
        ));
    }
    gpx.push_str("</trkseg></trk>\n</gpx>\n");
    std::fs::write(path, gpx).unwrap();
}

/// The first segment as KML (one `gx:Track`, `lon lat alt` coordinates).
fn write_kml_seg1(path: &Path) {
    let mut whens = String::new();
    let mut coords = String::new();
    for i in 0..SEG1_FIXES {
        let x = f64::from(i);
        whens.push_str(&format!("<when>{}</when>\n", iso(E0 + x * 30.0)));
        coords.push_str(&format!(
            "<gx:coord>{:.7} {:.7} {:.2}</gx:coord>\n",
            7.0 + x * 5e-4,
            46.0 + x * 3e-4 + (x * 0.3).sin() * 1e-4,
            500.0 + 20.0 * (x * 0.1).sin()
        ));
    }
    let kml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <kml xmlns=\"http://www.opengis.net/kml/2.2\" xmlns:gx=\"http://www.google.com/kml/ext/2.2\">\n\
         <Document><Placemark><gx:Track>\n{whens}{coords}</gx:Track></Placemark></Document></kml>\n"
    );
    std::fs::write(path, kml).unwrap();
}

/// The second segment as NMEA 0183: an RMC (date, time, position) and a GGA (altitude, empty
/// for every fifth fix) per fix.
fn write_nmea_seg2(path: &Path) {
    let ddmm = |deg: f64, width: usize| {
        let whole = deg.trunc();
        format!("{:0width$}{:09.6}", whole as u32, (deg - whole) * 60.0)
    };
    let mut nmea = String::new();
    for i in 0..SEG2_FIXES {
        let x = f64::from(i);
        let t = E0 + SEG2_START + x * 45.0;
        let date = exif_date(t);
        let (hms, dmy) = (
            date[11..].replace(':', ""),
            format!("{}{}{}", &date[8..10], &date[5..7], &date[2..4]),
        );
        let (lat, lon) = (ddmm(46.2 - x * 2e-4, 2), ddmm(7.3 + x * 4e-4, 3));
        let alt = if i % 5 == 2 {
            String::new()
        } else {
            format!("{:.2}", 800.0 - x)
        };
        nmea.push_str(&format!(
            "$GPRMC,{hms}.00,A,{lat},N,{lon},E,0.5,90.0,{dmy},,*00\r\n\
             $GPGGA,{hms}.00,{lat},N,{lon},E,1,08,0.9,{alt},M,47.0,M,,*00\r\n"
        ));
    }
    std::fs::write(path, nmea).unwrap();
}

/// A small JPEG with no EXIF.
fn write_base_jpeg(path: &Path) {
    let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 90]));
    img.save(path).unwrap();
}

/// The photos' UTC times (seconds after E0): before, inside, in the gap, after the track, on
/// fixes and between them, at the limits.
fn photo_offsets() -> Vec<f64> {
    let end = SEG2_START + f64::from(SEG2_FIXES - 1) * 45.0;
    vec![
        -2500.0,
        -1800.0,
        -1000.0,
        -1.0,
        0.0,
        15.5,
        37.25,
        100.0,
        1234.5,
        2222.0,
        3600.0,
        4444.75,
        5000.0,
        6000.0,
        7199.0,
        7200.0,
        7200.0 + 600.0,
        7200.0 + 1799.0,
        7200.0 + 2500.0,
        7200.0 + 3000.0,
        SEG2_START - 2000.0,
        SEG2_START - 1800.0,
        SEG2_START - 1000.0,
        SEG2_START,
        SEG2_START + 30.7,
        SEG2_START + 90.0,
        SEG2_START + 95.0,
        SEG2_START + 1000.0,
        SEG2_START + 2000.0,
        SEG2_START + 3333.3,
        SEG2_START + 4800.0,
        end - 10.0,
        end,
        end + 500.0,
        end + 1799.0,
        end + 1800.0,
        end + 1801.0,
        end + 2500.0,
        end + 5000.0,
        3.0 * 86_400.0,
    ]
}

/// How a photo's time is written: its own offset or not (then `--tz +03:00`), sub-seconds or not.
#[derive(Clone, Copy)]
struct TimeCase {
    zone_minutes: i32,
    has_offset: bool,
    has_subsec: bool,
}

fn time_case(i: usize) -> TimeCase {
    match i % 4 {
        0 => TimeCase {
            zone_minutes: 120,
            has_offset: true,
            has_subsec: false,
        },
        1 => TimeCase {
            zone_minutes: -330,
            has_offset: true,
            has_subsec: true,
        },
        2 => TimeCase {
            zone_minutes: 180,
            has_offset: false,
            has_subsec: false,
        },
        _ => TimeCase {
            zone_minutes: 180,
            has_offset: false,
            has_subsec: true,
        },
    }
}

/// Makes the photos in `dir` (one exiftool run for all): `p00.jpg` ... with DateTimeOriginal
/// and, by [`time_case`], OffsetTimeOriginal and SubSecTimeOriginal.
fn make_photos(dir: &Path) -> Vec<(PathBuf, TimeCase)> {
    std::fs::create_dir_all(dir).unwrap();
    let base = dir.join("base-tmp.jpg");
    write_base_jpeg(&base);
    let mut args = String::new();
    let mut photos = Vec::new();
    for (i, offset) in photo_offsets().into_iter().enumerate() {
        let case = time_case(i);
        let utc = E0 + offset;
        let local = utc + f64::from(case.zone_minutes) * 60.0;
        let path = dir.join(format!("p{i:02}.jpg"));
        std::fs::copy(&base, &path).unwrap();
        args.push_str("-overwrite_original\n");
        args.push_str(&format!("-DateTimeOriginal={}\n", exif_date(local)));
        if case.has_offset {
            let m = case.zone_minutes;
            let sign = if m < 0 { '-' } else { '+' };
            args.push_str(&format!(
                "-OffsetTimeOriginal={sign}{:02}:{:02}\n",
                m.abs() / 60,
                m.abs() % 60
            ));
        }
        if case.has_subsec {
            let ms = ((local - local.floor()) * 1000.0).round() as u32;
            args.push_str(&format!("-SubSecTimeOriginal={ms:03}\n"));
        }
        args.push_str(&format!("{}\n-execute\n", path.display()));
        photos.push((path, case));
    }
    std::fs::remove_file(&base).unwrap();
    let argfile = dir.join("exiftool.args.tmp");
    std::fs::write(&argfile, args).unwrap();
    run_ok(Command::new("exiftool").arg("-q").arg("-@").arg(&argfile));
    std::fs::remove_file(&argfile).unwrap();
    photos
}

/// exiftool's answer: file name -> (lat, lon, signed altitude) for the photos it geotagged.
fn exiftool_geotag(
    photos: &[(PathBuf, TimeCase)],
    dir: &Path,
    tracks: &[PathBuf],
    options: &[String],
) -> std::collections::BTreeMap<String, (f64, f64, Option<f64>)> {
    std::fs::create_dir_all(dir).unwrap();
    let copies: Vec<(PathBuf, TimeCase)> = photos
        .iter()
        .map(|(p, case)| {
            let copy = dir.join(p.file_name().unwrap());
            std::fs::copy(p, &copy).unwrap();
            (copy, *case)
        })
        .collect();
    // Photos with their own offset: exiftool's SubSecDateTimeOriginal joins DateTimeOriginal,
    // SubSecTimeOriginal and OffsetTimeOriginal. Without one (that composite then exists only
    // with sub-seconds): the parts joined by hand with the zone appended, as `--tz +03:00`
    // gives it to geoloupe.
    for (has_offset, has_subsec, geotime) in [
        (true, false, "-Geotime<SubSecDateTimeOriginal"),
        (true, true, "-Geotime<SubSecDateTimeOriginal"),
        (false, false, "-Geotime<${DateTimeOriginal}+03:00"),
        (
            false,
            true,
            "-Geotime<${DateTimeOriginal}.${SubSecTimeOriginal}+03:00",
        ),
    ] {
        let files: Vec<&PathBuf> = copies
            .iter()
            .filter(|(_, c)| c.has_offset == has_offset && c.has_subsec == has_subsec)
            .map(|(p, _)| p)
            .collect();
        let mut cmd = Command::new("exiftool");
        cmd.args(["-q", "-q", "-m", "-overwrite_original"]);
        for track in tracks {
            cmd.arg("-geotag").arg(track);
        }
        cmd.args(options).arg(geotime).args(&files);
        // exiftool exits 1 when some photos could not be geotagged: that is expected here.
        let out = cmd.output().unwrap();
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{}",
            text(&out.stderr)
        );
    }
    let out = run_ok(
        Command::new("exiftool")
            .args([
                "-n",
                "-j",
                "-GPSLatitude",
                "-GPSLongitude",
                "-GPSAltitude",
                "-GPSAltitudeRef",
            ])
            .args(copies.iter().map(|(p, _)| p)),
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .filter_map(|row| {
            let name = Path::new(row["SourceFile"].as_str()?)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            let lat = row.get("GPSLatitude")?.as_f64()?;
            let lon = row.get("GPSLongitude")?.as_f64()?;
            let alt = row.get("GPSAltitude").and_then(Value::as_f64).map(|a| {
                if row.get("GPSAltitudeRef").and_then(Value::as_f64) == Some(1.0) {
                    -a
                } else {
                    a
                }
            });
            Some((name, (lat, lon, alt)))
        })
        .collect()
}

/// geoloupe's answer, from `geotag --format json`: file name -> placed (lat, lon, alt) or
/// `None` when refused.
fn geoloupe_geotag(
    photos_dir: &Path,
    tracks: &[PathBuf],
    options: &[String],
    data_dir: &Path,
) -> std::collections::BTreeMap<String, Option<(f64, f64, Option<f64>)>> {
    let mut cmd = geoloupe(data_dir);
    cmd.args([
        "geotag", "--format", "json", "--paths", "name", "--tz", "+03:00",
    ]);
    for track in tracks {
        cmd.arg("--track").arg(track);
    }
    let out = run_ok(cmd.args(options).arg(photos_dir));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let name = row["path"].as_str().unwrap().to_owned();
            let placed = (row["status"] == "placed").then(|| {
                (
                    row["location"]["lat_deg"].as_f64().unwrap(),
                    row["location"]["lon_deg"].as_f64().unwrap(),
                    row["altitude_m"].as_f64(),
                )
            });
            (name, placed)
        })
        .collect()
}

#[test]
fn geotag_matches_exiftool_positions_and_refusals() {
    require_exiftool();
    let tmp = tempfile::tempdir().unwrap();
    let track = tmp.path().join("trip.gpx");
    write_parity_gpx(&track);
    let photos_dir = tmp.path().join("photos");
    let photos = make_photos(&photos_dir);
    assert_eq!(photos.len(), 40);
    for (round, offset) in [None, Some("+1:00:00"), Some("-0:00:37")]
        .into_iter()
        .enumerate()
    {
        let options: Vec<String> = offset.iter().map(|o| format!("-geosync={o}")).collect();
        let reference = exiftool_geotag(
            &photos,
            &tmp.path().join(format!("exiftool-{round}")),
            std::slice::from_ref(&track),
            &options,
        );
        let options: Vec<String> = offset.iter().map(|o| format!("--offset={o}")).collect();
        let ours = geoloupe_geotag(
            &photos_dir,
            std::slice::from_ref(&track),
            &options,
            tmp.path(),
        );
        assert_eq!(ours.len(), photos.len());
        let placed = compare(&ours, &reference, &format!("offset {offset:?}"));
        // Both refusals and placements are exercised in every round.
        assert!((20..=36).contains(&placed), "{offset:?}: {placed} placed");
    }
}

/// Two track files merged (KML then NMEA), with exiftool's API options for the limits:
/// `--max-gap 600 --max-ext 7000` against `-api GeoMaxIntSecs=600 -api GeoMaxExtSecs=7000`. The
/// 6000 s between the files ends at the NMEA file's first fix, so exiftool interpolates across
/// it (up to max-ext there), while a 600 s limit holds inside a file.
#[test]
fn geotag_matches_exiftool_on_merged_kml_and_nmea_tracks_with_limits() {
    require_exiftool();
    let tmp = tempfile::tempdir().unwrap();
    let tracks = [tmp.path().join("seg1.kml"), tmp.path().join("seg2.nmea")];
    write_kml_seg1(&tracks[0]);
    write_nmea_seg2(&tracks[1]);
    let photos_dir = tmp.path().join("photos");
    let photos = make_photos(&photos_dir);
    for (round, (ours_limits, exiftool_limits)) in [
        (
            ["--max-gap=600", "--max-ext=7000"],
            ["GeoMaxIntSecs=600", "GeoMaxExtSecs=7000"],
        ),
        (
            ["--max-gap=1800", "--max-ext=900"],
            ["GeoMaxIntSecs=1800", "GeoMaxExtSecs=900"],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let options: Vec<String> = exiftool_limits
            .iter()
            .flat_map(|o| ["-api".to_owned(), (*o).to_owned()])
            .chain(["-geosync=-0:00:37".to_owned()])
            .collect();
        let reference = exiftool_geotag(
            &photos,
            &tmp.path().join(format!("exiftool-{round}")),
            &tracks,
            &options,
        );
        let options: Vec<String> = ours_limits
            .iter()
            .map(|o| (*o).to_owned())
            .chain(["--offset=-0:00:37".to_owned()])
            .collect();
        let ours = geoloupe_geotag(&photos_dir, &tracks, &options, tmp.path());
        let placed = compare(&ours, &reference, &format!("{ours_limits:?}"));
        assert!(
            (10..=39).contains(&placed),
            "{ours_limits:?}: {placed} placed"
        );
    }
}

type Placed = (f64, f64, Option<f64>);

/// Requires the same photos refused and the placed ones within 1 m (altitude within 5 cm);
/// returns how many were placed.
fn compare(
    ours: &std::collections::BTreeMap<String, Option<Placed>>,
    reference: &std::collections::BTreeMap<String, Placed>,
    label: &str,
) -> usize {
    let mut placed = 0;
    for (name, answer) in ours {
        match (answer, reference.get(name)) {
            (Some((lat, lon, alt)), Some((rlat, rlon, ralt))) => {
                placed += 1;
                let d_m = geoloupe::geo::LatLon::new(*lat, *lon)
                    .distance_km(&geoloupe::geo::LatLon::new(*rlat, *rlon))
                    * 1000.0;
                assert!(d_m < 1.0, "{label} {name}: {d_m} m from exiftool's");
                match (alt, ralt) {
                    (Some(a), Some(r)) => {
                        assert!((a - r).abs() < 0.05, "{label} {name}: altitude {a} vs {r}")
                    }
                    (a, r) => assert_eq!(
                        a.is_some(),
                        r.is_some(),
                        "{label} {name}: altitude {a:?} vs {r:?}"
                    ),
                }
            }
            (None, None) => {}
            (ours, theirs) => panic!(
                "{label} {name}: geoloupe {ours:?}, exiftool {theirs:?} (one refused, the other not)"
            ),
        }
    }
    eprintln!(
        "{label}: {placed} of {} placed as exiftool places them",
        ours.len()
    );
    placed
}

fn gpx_point(out: &mut impl std::io::Write, t: f64, i: u64) {
    writeln!(
        out,
        "<trkpt lat=\"{:.7}\" lon=\"{:.7}\"><ele>{}</ele><time>{}</time></trkpt>",
        40.0 + (i % 100_000) as f64 * 1e-6,
        -3.0 - (i % 70_000) as f64 * 1e-6,
        600 + i % 50,
        iso(t)
    )
    .unwrap();
}

#[test]
fn bad_tracks_are_one_line_errors_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let photo = photos.join("a.jpg");
    write_base_jpeg(&photo);
    require_exiftool();
    run_ok(Command::new("exiftool").args([
        "-q",
        "-overwrite_original",
        "-DateTimeOriginal=2024:05:18 10:00:00",
        "-OffsetTimeOriginal=+00:00",
        photo.to_str().unwrap(),
    ]));
    let cases = [
        ("empty.gpx", String::new(), "has no GPS fixes"),
        (
            "notime.gpx",
            "<?xml version=\"1.0\"?><gpx version=\"1.1\"><trk><trkseg><trkpt lat=\"1\" lon=\"2\"><ele>3</ele></trkpt></trkseg></trk></gpx>".to_owned(),
            "has 1 points but none with a time",
        ),
        (
            "broken.gpx",
            "<?xml version=\"1.0\"?>\n<gpx version=\"1.1\">\n<trk><trkseg><trkpt lat=\"1\" lon=\"2\"><time>2024-05-18T10:00:00Z</time></trkseg></gpx>".to_owned(),
            "is malformed at byte",
        ),
    ];
    for (name, content, expected) in cases {
        let track = tmp.path().join(name);
        std::fs::write(&track, content).unwrap();
        let out = geoloupe(tmp.path())
            .args(["geotag", "--xmp-sidecars", "--export"])
            .arg(tmp.path().join("out.gpx"))
            .arg("--track")
            .arg(&track)
            .arg(&photos)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: {stderr}");
        assert!(
            lines[0].contains(expected) && lines[0].contains(name),
            "{name}: {stderr}"
        );
        assert!(!photos.join("a.jpg.xmp").exists() && !tmp.path().join("out.gpx").exists());
    }
}

/// Peak RSS in MB of `geoloupe geotag --dry-run` on a ~500 MB GPX (5.2 million fixes, one a
/// second) with photos in three places, through `/usr/bin/time -f %M`.
#[test]
fn a_500_mb_track_runs_in_bounded_memory() {
    require_exiftool();
    let tmp = tempfile::tempdir().unwrap();
    let track = tmp.path().join("huge.gpx");
    let started = std::time::Instant::now();
    {
        let mut out =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&track).unwrap());
        out.write_all(b"<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" creator=\"geoloupe tests\">\n<trk><trkseg>\n")
            .unwrap();
        let mut i = 0u64;
        while i < 5_200_000 {
            gpx_point(&mut out, E0 + i as f64, i);
            i += 1;
        }
        out.write_all(b"</trkseg></trk>\n</gpx>\n").unwrap();
        out.flush().unwrap();
    }
    let size_mb = std::fs::metadata(&track).unwrap().len() as f64 / 1e6;
    eprintln!(
        "generated {size_mb:.0} MB in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(size_mb > 450.0, "{size_mb} MB");
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for (i, t) in [100_000.0, 2_000_000.5, 5_199_000.0]
        .into_iter()
        .enumerate()
    {
        let photo = photos.join(format!("p{i}.jpg"));
        write_base_jpeg(&photo);
        run_ok(Command::new("exiftool").args([
            "-q",
            "-overwrite_original",
            &format!("-DateTimeOriginal={}", exif_date(E0 + t)),
            "-OffsetTimeOriginal=+00:00",
            photo.to_str().unwrap(),
        ]));
    }
    let started = std::time::Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak_rss_kb=%M"])
        .arg(env!("CARGO_BIN_EXE_geoloupe"))
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args([
            "geotag",
            "--dry-run",
            "--xmp-sidecars",
            "--format",
            "csv",
            "--track",
        ])
        .arg(&track)
        .arg(&photos)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rss_kb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!(
        "geotag over {size_mb:.0} MB: peak RSS {:.1} MB, {:.1} s",
        rss_kb / 1024.0,
        started.elapsed().as_secs_f64()
    );
    assert!(rss_kb / 1024.0 < 150.0, "peak RSS {} MB", rss_kb / 1024.0);
    assert!(stderr.contains("3 matched"), "{stderr}");
    assert!(
        !photos.join("p0.jpg.xmp").exists(),
        "a dry run wrote a sidecar"
    );
}

#[test]
fn geotag_writes_xmp_sidecars_that_exiftool_reads_back() {
    require_exiftool();
    let tmp = tempfile::tempdir().unwrap();
    let track = tmp.path().join("trip.gpx");
    write_parity_gpx(&track);
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let times = [
        ("in.jpg", 1234.5),
        ("gap.jpg", 7200.0 + 3000.0),
        ("seg2.jpg", SEG2_START + 30.7),
    ];
    for (name, t) in times {
        let photo = photos.join(name);
        write_base_jpeg(&photo);
        run_ok(Command::new("exiftool").args([
            "-q",
            "-overwrite_original",
            &format!("-DateTimeOriginal={}", exif_date(E0 + t)),
            "-OffsetTimeOriginal=+00:00",
            photo.to_str().unwrap(),
        ]));
    }
    let out = run_ok(
        geoloupe(tmp.path())
            .args([
                "geotag",
                "--xmp-sidecars",
                "--format",
                "json",
                "--paths",
                "name",
                "--track",
            ])
            .arg(&track)
            .arg(&photos),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("2 matched (2 by track, 0 by neighbours), 1 refused (1 in a gap)"),
        "{stderr}"
    );
    for row in doc["photos"].as_array().unwrap() {
        let name = row["path"].as_str().unwrap();
        let sidecar = photos.join(format!("{name}.xmp"));
        if row["status"] != "placed" {
            assert!(!sidecar.exists(), "a refused photo got a sidecar: {name}");
            continue;
        }
        assert_eq!(row["origin"]["kind"], "track");
        assert_eq!(row["origin"]["track"], "trip.gpx");
        let read = run_ok(Command::new("exiftool").args([
            "-n",
            "-j",
            "-XMP:GPSLatitude",
            "-XMP:GPSLongitude",
            sidecar.to_str().unwrap(),
        ]));
        let back: Vec<Value> = serde_json::from_slice(&read.stdout).unwrap();
        let (lat, lon) = (
            back[0]["GPSLatitude"].as_f64().unwrap(),
            back[0]["GPSLongitude"].as_f64().unwrap(),
        );
        let placed = geoloupe::geo::LatLon::new(
            row["location"]["lat_deg"].as_f64().unwrap(),
            row["location"]["lon_deg"].as_f64().unwrap(),
        );
        let d_m = placed.distance_km(&geoloupe::geo::LatLon::new(lat, lon)) * 1000.0;
        assert!(
            d_m < 1.0,
            "{name}: sidecar {d_m} m from the placed position"
        );
    }
}

#[test]
fn neighbours_place_photos_without_gps() {
    require_exiftool();
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let set = [
        ("a_gps.jpg", 0.0, Some((46.0, 7.0))),
        ("b.jpg", 60.0, None),
        ("c_gps.jpg", 100.0, Some((47.0, 8.0))),
        ("d.jpg", 10_000.0, None),
    ];
    for (name, t, gps) in set {
        let photo = photos.join(name);
        write_base_jpeg(&photo);
        let mut cmd = Command::new("exiftool");
        cmd.args([
            "-q",
            "-overwrite_original",
            &format!("-DateTimeOriginal={}", exif_date(E0 + t)),
            "-OffsetTimeOriginal=+00:00",
        ]);
        if let Some((lat, lon)) = gps {
            cmd.args([
                format!("-GPSLatitude={lat}"),
                "-GPSLatitudeRef=N".to_owned(),
                format!("-GPSLongitude={lon}"),
                "-GPSLongitudeRef=E".to_owned(),
            ]);
        }
        run_ok(cmd.arg(&photo));
    }
    let out = run_ok(
        geoloupe(tmp.path())
            .args([
                "geotag",
                "--neighbours",
                "--format",
                "json",
                "--paths",
                "name",
            ])
            .arg(&photos),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["photos"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["path"] == name).unwrap();
    assert_eq!(row("a_gps.jpg")["status"], "skipped");
    let b = row("b.jpg");
    assert_eq!(b["status"], "placed");
    assert!((b["location"]["lat_deg"].as_f64().unwrap() - 46.6).abs() < 1e-9);
    assert_eq!(b["origin"]["kind"], "neighbour");
    assert_eq!(b["origin"]["photo"], "c_gps.jpg");
    assert_eq!(b["origin"]["seconds"], -40.0);
    assert_eq!(row("d.jpg")["status"], "refused");
}
