//! Exports read back by the tools people use: GPX through gpsbabel, GeoJSON through gpsbabel,
//! XMP sidecars and EXIF GPS through exiftool. Also: merging keeps other tools' sidecar tags,
//! EXIF writes keep the pixels byte-identical, a write that fails half-way leaves the original,
//! a read-only folder is refused with nothing changed, and a dry run writes nothing.
//!
//! Needs `exiftool` and `gpsbabel` on PATH (Debian: `apt-get install libimage-exiftool-perl
//! gpsbabel`; `.ci/run` installs them). Without them these tests fail and say so. On Windows
//! (`scripts/windows.sh test`, under Wine) the tests that read back with them are ignored, with
//! the reason; `-- --include-ignored` runs them where exiftool.exe and gpsbabel.exe are on PATH.

// Helpers outside #[test] functions (and tests/common) unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use geoloupe::domain::Provenance;
use geoloupe::export::exif_write::{
    BackupStore, ESTIMATE_METHOD, MissingFile, RestoreOutcome, RestoreReport, plan_exif_writes,
    record_error_radius_m, write_exif_gps, write_exif_gps_all, write_exif_gps_with,
};
use geoloupe::export::xmp::{SidecarStyle, plan_sidecars, sidecar_path, write_sidecar};
use geoloupe::export::{
    ExportError, ExportRecord, LocationSource, PointSet, SkipReason, WriteAction, csv::render_csv,
    geojson::render_geojson, gpx::render_gpx,
};
use geoloupe::geo::{ClaimSource, LatLon};
use geoloupe::model::{Candidate, Prediction};
use serde_json::Value;

const INSTALL_HINT: &str = "install them: `apt-get install -y libimage-exiftool-perl gpsbabel` \
                            (Debian/Ubuntu; .ci/run does this)";

/// Fails (never skips) when a tool is missing.
fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg(if tool == "exiftool" { "-ver" } else { "-V" })
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{tool}` is needed to read the exports back and was not found on PATH; {INSTALL_HINT}"
    );
}

fn run(tool: &str, args: &[&str]) -> String {
    require(tool);
    let out = Command::new(tool).args(args).output().expect("run tool");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `exiftool -n -json FILE` -> the one object.
fn exiftool_json(path: &Path) -> serde_json::Map<String, Value> {
    let text = run("exiftool", &["-n", "-json", "-G1", path.to_str().unwrap()]);
    let mut v: Vec<Value> = serde_json::from_str(&text).unwrap();
    match v.remove(0) {
        Value::Object(m) => m,
        other => panic!("{other}"),
    }
}

fn get_f64(map: &serde_json::Map<String, Value>, key: &str) -> f64 {
    map.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{key} missing in {map:#?}"))
}

fn image(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

fn copy_into(dir: &Path, fixture: &str, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(image(fixture), &to).unwrap();
    to
}

/// A tiny gallery (`[lat, lon]`) and a prediction over it.
fn gallery() -> Vec<[f32; 2]> {
    vec![
        [21.97, -159.37],
        [21.90, -159.50],
        [20.80, -156.33],
        [48.85, 2.35],
        [-33.86, 151.21],
    ]
}

fn prediction(order: &[usize]) -> Prediction {
    let g = gallery();
    let mut probabilities = vec![0.02f32; g.len()];
    let top = [0.6f32, 0.2, 0.14];
    for (i, &idx) in order.iter().enumerate() {
        probabilities[idx] = top[i];
    }
    let candidates = order
        .iter()
        .enumerate()
        .map(|(i, &idx)| Candidate {
            rank: i + 1,
            gallery_index: idx,
            position: LatLon::new(f64::from(g[idx][0]), f64::from(g[idx][1])),
            probability: probabilities[idx],
            refined: None,
        })
        .collect();
    Prediction {
        candidates,
        probabilities: Arc::from(probabilities),
    }
}

fn provenance() -> Provenance {
    Provenance {
        model: "GeoCLIP (CLIP ViT-L/14)".into(),
        weights_sha256: "a".repeat(64),
        gallery_sha256: "b".repeat(64),
        backbone: "clip-vit-large-patch14".into(),
        backbone_sha256: None,
        device: "cpu".into(),
    }
}

const ESTIMATED_AT: &str = "2026-11-23T19:00:00Z";

fn record(
    path: &Path,
    order: &[usize],
    accepted: Option<LatLon>,
    claim: Option<LatLon>,
) -> ExportRecord {
    ExportRecord::from_prediction(
        path,
        &prediction(order),
        &gallery(),
        provenance(),
        ESTIMATED_AT.into(),
        accepted,
        claim.map(|c| (c, ClaimSource::User)),
    )
    .unwrap()
}

/// Sets EXIF/XMP tags with exiftool (as a camera or another tool would have).
fn exiftool_set(path: &Path, args: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-overwrite_original", path.to_str().unwrap()]);
    run("exiftool", &all);
}

/// Three photos: one with a camera time (and an awkward name), one accepted, one plain.
fn sample(dir: &Path) -> Vec<ExportRecord> {
    let timed = copy_into(dir, "landscape.jpg", "café & <bar>, \"1\".jpg");
    exiftool_set(
        &timed,
        &[
            "-DateTimeOriginal=2021:06:01 12:34:56",
            "-OffsetTimeOriginal=+02:00",
        ],
    );
    let accepted = copy_into(dir, "kauai.jpg", "kauai.jpg");
    let plain = copy_into(dir, "rotated.jpg", "rotated.jpg");
    vec![
        record(&timed, &[3, 4, 0], None, Some(LatLon::new(48.8566, 2.3522))),
        record(
            &accepted,
            &[1, 0, 2],
            Some(LatLon::new(22.054_321_9, -159.498_765_4)),
            None,
        ),
        record(&plain, &[4, 3, 2], None, None),
    ]
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

#[cfg_attr(
    windows,
    ignore = "reads back with gpsbabel: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn gpx_reads_back_with_gpsbabel() {
    let dir = tempfile::tempdir().unwrap();
    let records = sample(dir.path());
    assert_eq!(
        records[0]
            .taken_at
            .as_ref()
            .unwrap()
            .utc_rfc3339()
            .as_deref(),
        Some("2021-06-01T10:34:56Z")
    );
    assert_eq!(records[1].location_source, LocationSource::Accepted);
    let gpx = dir.path().join("out.gpx");
    std::fs::write(&gpx, render_gpx(&records, PointSet::Chosen)).unwrap();

    // Names and times through unicsv; full-precision coordinates through GeoJSON.
    let csv = run(
        "gpsbabel",
        &[
            "-i",
            "gpx",
            "-f",
            gpx.to_str().unwrap(),
            "-o",
            "unicsv",
            "-F",
            "-",
        ],
    );
    let rows = common::parse_csv(&csv);
    let (header, rows) = (&rows[0], &rows[1..]);
    assert_eq!(rows.len(), 3, "{csv}");
    let (name, date, time) = (
        column(header, "Name"),
        column(header, "Date"),
        column(header, "Time"),
    );
    assert_eq!(rows[0][name], "café & <bar>, \"1\".jpg");
    assert_eq!(rows[0][date], "2021/06/01");
    assert_eq!(rows[0][time], "10:34:56");
    assert_eq!(rows[1][name], "kauai.jpg");
    assert_eq!(rows[2][name], "rotated.jpg");
    assert_eq!(rows[2][time], "", "no EXIF time, no <time>");

    let geojson = dir.path().join("via-gpsbabel.geojson");
    run(
        "gpsbabel",
        &[
            "-i",
            "gpx",
            "-f",
            gpx.to_str().unwrap(),
            "-o",
            "geojson",
            "-F",
            geojson.to_str().unwrap(),
        ],
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&geojson).unwrap()).unwrap();
    let features = v["features"].as_array().unwrap();
    for (f, r) in features.iter().zip(&records) {
        let c = f["geometry"]["coordinates"].as_array().unwrap();
        assert!((c[0].as_f64().unwrap() - r.location.lon_deg).abs() < 1e-6);
        assert!((c[1].as_f64().unwrap() - r.location.lat_deg).abs() < 1e-6);
    }
    // The accepted location, not the top candidate.
    assert!(
        (features[1]["geometry"]["coordinates"][1].as_f64().unwrap() - 22.054_321_9).abs() < 1e-6
    );
    let desc = features[0]["properties"]["description"].as_str().unwrap();
    assert!(
        desc.contains("rank 1") && desc.contains("probability 0.6") && desc.contains("France"),
        "{desc}"
    );

    // Provenance in <extensions>, in our namespace, survives an XML parser.
    let text = std::fs::read_to_string(&gpx).unwrap();
    assert!(text.contains(r#"<gpx version="1.1""#));
    assert!(text.contains(&format!("<geoloupe:weightsSha256>{}<", "a".repeat(64))));
    assert!(text.contains("<geoloupe:estimate>true</geoloupe:estimate>"));
    assert!(text.contains("<geoloupe:claimProbabilityWithin25Km>0.6"));

    // All candidates: the chosen point plus the others.
    let all = render_gpx(&records, PointSet::AllCandidates);
    // 3 per top-candidate photo (its top-1 isn't repeated), 1 + 3 for the accepted one.
    assert_eq!(all.matches("<wpt ").count(), 10);
    assert!(all.contains("<name>kauai.jpg #1</name>"));
}

#[cfg_attr(
    windows,
    ignore = "reads back with gpsbabel: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn csv_and_geojson_carry_the_same_points_lon_first() {
    let dir = tempfile::tempdir().unwrap();
    let records = sample(dir.path());
    let rows = common::parse_csv(&render_csv(&records, PointSet::AllCandidates));
    let (header, rows) = (&rows[0], &rows[1..]);
    let path = dir.path().join("out.geojson");
    std::fs::write(&path, render_geojson(&records, PointSet::AllCandidates)).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["type"], "FeatureCollection");
    let features = v["features"].as_array().unwrap();
    assert_eq!(features.len(), rows.len());
    assert_eq!(rows.len(), 10);
    let (lat, lon, name, country, p25) = (
        column(header, "lat_deg"),
        column(header, "lon_deg"),
        column(header, "name"),
        column(header, "country"),
        column(header, "claim_probability_within_25_km"),
    );
    for (row, f) in rows.iter().zip(features) {
        let c = f["geometry"]["coordinates"].as_array().unwrap();
        let (row_lat, row_lon): (f64, f64) = (row[lat].parse().unwrap(), row[lon].parse().unwrap());
        assert!(
            (c[0].as_f64().unwrap() - row_lon).abs() < 1e-6,
            "GeoJSON is [lon, lat]"
        );
        assert!((c[1].as_f64().unwrap() - row_lat).abs() < 1e-6);
        assert_eq!(f["properties"]["name"], row[name].as_str());
    }
    assert_eq!(rows[0][country], "France");
    assert_eq!(rows[3][name], "kauai.jpg");
    assert!(rows[3][country].contains("United States"));
    // Claim at Paris; 0.6 of the probability is on the Paris gallery point (~1 km away).
    assert_eq!(rows[0][p25], "0.600000");
    assert_eq!(
        features[0]["properties"]["claim"]["claimed"]["lat_deg"],
        48.8566
    );

    // gpsbabel reads our GeoJSON with the same coordinates (so the order is right).
    let csv = run(
        "gpsbabel",
        &[
            "-i",
            "geojson",
            "-f",
            path.to_str().unwrap(),
            "-o",
            "unicsv",
            "-F",
            "-",
        ],
    );
    let back = common::parse_csv(&csv);
    let (bl, bo) = (column(&back[0], "Latitude"), column(&back[0], "Longitude"));
    for (b, row) in back[1..].iter().zip(rows) {
        let (x, y): (f64, f64) = (b[bl].parse().unwrap(), row[lat].parse().unwrap());
        assert!((x - y).abs() < 1e-6, "{b:?} vs {row:?}");
        let (x, y): (f64, f64) = (b[bo].parse().unwrap(), row[lon].parse().unwrap());
        assert!((x - y).abs() < 1e-6);
    }
}

#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn xmp_sidecars_read_back_with_exiftool() {
    let dir = tempfile::tempdir().unwrap();
    let records = sample(dir.path());
    for style in [SidecarStyle::AppendXmp, SidecarStyle::ReplaceExtension] {
        for r in &records {
            let written = write_sidecar(r, style).unwrap();
            assert_eq!(written.path, sidecar_path(&r.path, style));
            let tags = exiftool_json(&written.path);
            assert!(
                (get_f64(&tags, "XMP-exif:GPSLatitude") - r.location.lat_deg).abs() < 1e-6,
                "{tags:#?}"
            );
            assert!((get_f64(&tags, "XMP-exif:GPSLongitude") - r.location.lon_deg).abs() < 1e-6);
            // The accepted location of kauai.jpg is no candidate: placed by hand, not an
            // estimate (issue 12); the others are GeoCLIP's top-1.
            assert_eq!(
                tags["XMP-geoloupe:IsEstimate"],
                Value::from(r.origin.is_from_pixels()),
                "{tags:#?}"
            );
            assert_eq!(
                tags["XMP-geoloupe:Origin"],
                Value::from(r.origin.as_str()),
                "{tags:#?}"
            );
            assert_eq!(
                tags["XMP-geoloupe:WeightsSha256"],
                Value::from("a".repeat(64))
            );
            assert_eq!(
                tags["XMP-geoloupe:Source"],
                Value::from(r.location_source.as_str())
            );
        }
    }
    assert!(dir.path().join("kauai.jpg.xmp").is_file());
    assert!(dir.path().join("kauai.xmp").is_file());
    let tags = exiftool_json(&dir.path().join("kauai.jpg.xmp"));
    assert_eq!(tags["XMP-geoloupe:IsEstimate"], Value::from(false));
    assert_eq!(tags["XMP-geoloupe:Origin"], Value::from("hand"));
    // The accepted location is not a candidate: no rank/probability is claimed for it.
    assert!(!tags.contains_key("XMP-geoloupe:Rank"));
    let tags = exiftool_json(&dir.path().join("rotated.jpg.xmp"));
    assert_eq!(tags["XMP-geoloupe:Rank"], Value::from(1));
    assert!((get_f64(&tags, "XMP-geoloupe:Probability") - 0.6).abs() < 1e-6);
}

/// Issue 11's provenance in sidecars: a refined location says so with its similarity, a
/// group's answer its size, a region its spec and the share of belief inside; exiftool reads
/// them back.
#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn xmp_sidecars_record_refined_points_groups_and_regions() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = sample(dir.path()).remove(2);
    let top = r.candidates[0].position;
    let refined_at = LatLon::new(top.lat_deg + 0.01, top.lon_deg - 0.02);
    r.candidates[0].refined = Some(geoloupe::export::ExportRefined {
        position: refined_at,
        logit: 41.5,
        similarity: 0.415,
        place: None,
    });
    r.location = refined_at;
    r.location_kind = Some(geoloupe::domain::PointKind::Refined);
    r.group = vec![r.path.clone(), dir.path().join("other.jpg")];
    r.within = Some(geoloupe::domain::RegionConstraint {
        spec: "country:UA".into(),
        label: "Ukraine (UA)".into(),
        share_inside: 0.125,
        gallery_points_inside: 1234,
    });
    let written = write_sidecar(&r, SidecarStyle::AppendXmp).unwrap();
    let tags = exiftool_json(&written.path);
    assert!(
        (get_f64(&tags, "XMP-exif:GPSLatitude") - refined_at.lat_deg).abs() < 1e-6,
        "{tags:#?}"
    );
    assert_eq!(
        tags["XMP-geoloupe:PointKind"],
        Value::from("refined"),
        "{tags:#?}"
    );
    assert!((get_f64(&tags, "XMP-geoloupe:RefinedSimilarity") - 0.415).abs() < 1e-6);
    assert_eq!(tags["XMP-geoloupe:GroupSize"], Value::from(2));
    assert_eq!(tags["XMP-geoloupe:Within"], Value::from("country:UA"));
    assert!((get_f64(&tags, "XMP-geoloupe:WithinShareInside") - 0.125).abs() < 1e-6);
}

/// A sidecar as darktable writes it (attributes and nested elements), with an old GPS fix.
const DARKTABLE_SIDECAR: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:darktable="http://darktable.sf.net/"
    exif:GPSLatitude="1,00.0000N"
    exif:GPSAltitude="1234/10"
    xmp:Rating="4"
    darktable:xmp_version="5"
    darktable:history_end="2">
   <dc:subject>
    <rdf:Bag>
     <rdf:li>holiday &amp; family</rdf:li>
     <rdf:li>beach</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <exif:GPSLongitude>2,00.0000E</exif:GPSLongitude>
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:operation="exposure" darktable:enabled="1"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"#;

#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn merging_keeps_other_tools_tags() {
    let dir = tempfile::tempdir().unwrap();
    let photo = copy_into(dir.path(), "kauai.jpg", "IMG_0001.jpg");
    let r = record(&photo, &[2, 0, 1], None, None);
    let sidecar = sidecar_path(&photo, SidecarStyle::AppendXmp);
    std::fs::write(&sidecar, DARKTABLE_SIDECAR).unwrap();
    let before = exiftool_json(&sidecar);
    assert_eq!(
        plan_sidecars(std::slice::from_ref(&r), SidecarStyle::AppendXmp)[0].action,
        WriteAction::MergeSidecar
    );
    for _ in 0..2 {
        write_sidecar(&r, SidecarStyle::AppendXmp).unwrap();
    }
    let after = exiftool_json(&sidecar);
    for key in [
        "XMP-xmp:Rating",
        "XMP-dc:Subject",
        "XMP-darktable:Xmp_version",
        "XMP-darktable:History_end",
        "XMP-darktable:HistoryOperation",
        "XMP-darktable:HistoryEnabled",
        "XMP-exif:GPSAltitude",
    ] {
        assert!(before.contains_key(key), "{key} not in {before:#?}");
        assert_eq!(before[key], after[key], "{key} changed: {after:#?}");
    }
    assert_eq!(
        after["XMP-dc:Subject"],
        serde_json::json!(["holiday & family", "beach"])
    );
    assert!((get_f64(&after, "XMP-exif:GPSLatitude") - 20.80).abs() < 1e-6);
    assert!((get_f64(&after, "XMP-exif:GPSLongitude") + 156.33).abs() < 1e-5);
    let text = std::fs::read_to_string(&sidecar).unwrap();
    assert_eq!(text.matches("GPSLatitude").count(), 1, "{text}");
    assert_eq!(text.matches("GPSLongitude").count(), 1, "{text}");
    assert_eq!(text.matches("WeightsSha256").count(), 1, "{text}");

    // A sidecar that isn't XML is left alone, with an error.
    std::fs::write(&sidecar, "not <xml").unwrap();
    let err = write_sidecar(&r, SidecarStyle::AppendXmp).unwrap_err();
    assert!(matches!(err, ExportError::BadSidecar { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&sidecar).unwrap(), "not <xml");
}

/// From the first SOS marker of the file itself (walking the segments, so a thumbnail's SOS
/// inside APP1 isn't taken for it) to the end: the entropy-coded image data.
fn scan_data(jpeg: &[u8]) -> &[u8] {
    let mut at = 2;
    while jpeg[at + 1] != 0xDA {
        assert_eq!(jpeg[at], 0xFF, "marker expected at {at}");
        at += 2 + usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
    }
    &jpeg[at..]
}

fn pixels(path: &Path) -> Vec<u8> {
    image::open(path).unwrap().into_rgb8().into_raw()
}

/// exiftool's view without the file-system tags and the GPS we changed.
fn metadata_without_gps(path: &Path) -> serde_json::Map<String, Value> {
    exiftool_json(path)
        .into_iter()
        .filter(|(k, _)| {
            !k.starts_with("System:")
                && !k.starts_with("File:")
                && !k.starts_with("GPS:")
                && !k.starts_with("Composite:GPS")
                && k != "SourceFile"
                && k != "ExifTool:Warning"
        })
        .collect()
}

#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn exif_gps_keeps_pixels_and_other_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let rich = copy_into(dir.path(), "landscape.jpg", "rich.jpg");
    exiftool_set(
        &rich,
        &[
            "-DateTimeOriginal=2021:06:01 12:34:56",
            "-Make=TestCam",
            "-Model=T 1",
            "-Artist=A. Photographer",
            "-XMP-xmp:Rating=5",
            "-XMP-dc:Subject=keep me",
            "-Comment=a JPEG comment",
            "-GPSAltitude=12.5",
            "-GPSAltitudeRef=0",
            "-GPSLatitude=1",
            "-GPSLatitudeRef=N",
            // An IFD1 thumbnail (a camera's), which must stay reachable.
            &format!("-ThumbnailImage<={}", image("rotated.jpg").display()),
        ],
    );
    let cases = [
        (rich, LatLon::new(-33.856_784_1, 151.215_297_3)),
        (
            copy_into(dir.path(), "kauai.jpg", "no-exif.jpg"),
            LatLon::new(22.054_321, -159.498_765),
        ),
        (
            copy_into(dir.path(), "rotated.jpg", "rotated.jpg"),
            LatLon::new(64.1466, -21.9426),
        ),
    ];
    for (photo, position) in &cases {
        let original = std::fs::read(photo).unwrap();
        let before_pixels = pixels(photo);
        let before_meta = metadata_without_gps(photo);
        let backup = write_exif_gps(photo, *position, Some(5000.0), &backups).unwrap();
        assert_eq!(
            std::fs::read(&backup).unwrap(),
            original,
            "backup = original"
        );

        let after = std::fs::read(photo).unwrap();
        assert!(
            scan_data(&after) == scan_data(&original),
            "image data bytes differ"
        );
        assert!(pixels(photo) == before_pixels, "decoded pixels differ");
        let tags = exiftool_json(photo);
        assert!(!tags.contains_key("ExifTool:Warning"), "{tags:#?}");
        assert!((get_f64(&tags, "Composite:GPSLatitude") - position.lat_deg).abs() < 1e-6);
        assert!((get_f64(&tags, "Composite:GPSLongitude") - position.lon_deg).abs() < 1e-6);
        let mut after_meta = metadata_without_gps(photo);
        if !before_meta.keys().any(|k| k.starts_with("IFD0:")) {
            // A new EXIF block gets the tags IFD0 requires (see the -validate test).
            for tag in [
                "XResolution",
                "YResolution",
                "ResolutionUnit",
                "YCbCrPositioning",
            ] {
                after_meta.remove(&format!("IFD0:{tag}"));
            }
        }
        assert_eq!(after_meta, before_meta, "other metadata");
    }
    let rich_tags = exiftool_json(&cases[0].0);
    assert_eq!(
        rich_tags["GPS:GPSAltitude"],
        Value::from(12.5),
        "other GPS tags kept"
    );
    assert_eq!(rich_tags["IFD0:Make"], Value::from("TestCam"));
    assert_eq!(rich_tags["XMP-xmp:Rating"], Value::from(5));
    assert_eq!(
        rich_tags["IFD1:ThumbnailLength"],
        Value::from(std::fs::metadata(image("rotated.jpg")).unwrap().len()),
        "{rich_tags:#?}"
    );

    // A second write keeps the first original as the backup.
    let first_original = std::fs::read(backups.list().unwrap()[0].backup.clone()).unwrap();
    write_exif_gps(&cases[0].0, LatLon::new(1.0, 2.0), None, &backups).unwrap();
    assert_eq!(backups.list().unwrap().len(), 3);
    assert_eq!(
        std::fs::read(&backups.list().unwrap()[0].backup).unwrap(),
        first_original
    );
    assert_eq!(backups.clear().unwrap(), 3);
    assert!(backups.list().unwrap().is_empty());
}

#[test]
fn a_write_that_fails_half_way_leaves_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let photo = copy_into(dir.path(), "rotated.jpg", "photo.jpg");
    let original = std::fs::read(&photo).unwrap();
    let err = write_exif_gps_with(
        &photo,
        LatLon::new(10.0, 20.0),
        None,
        &backups,
        |w, bytes| {
            w.write_all(&bytes[..bytes.len() / 2])?;
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left (simulated)",
            ))
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
    assert_eq!(std::fs::read(&photo).unwrap(), original);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    assert!(
        backups.list().unwrap().is_empty(),
        "no backup of an unchanged file"
    );
}

#[cfg(unix)]
#[test]
fn a_read_only_folder_is_refused_with_nothing_changed() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let folder = dir.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    let photo = copy_into(&folder, "kauai.jpg", "photo.jpg");
    let r = record(&photo, &[0, 1, 2], None, None);
    let original = std::fs::read(&photo).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();

    let exif_err = write_exif_gps(&photo, r.location, None, &backups).unwrap_err();
    let sidecar_err = write_sidecar(&r, SidecarStyle::AppendXmp).unwrap_err();
    let listing: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();

    for err in [&exif_err, &sidecar_err] {
        assert!(matches!(err, ExportError::ReadOnlyFolder { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("read-only") && msg.contains("photos"), "{msg}");
    }
    assert_eq!(listing.len(), 1, "{listing:?}");
    assert_eq!(std::fs::read(&photo).unwrap(), original);
    assert!(backups.list().unwrap().is_empty());
    assert!(!backups.dir().exists());

    // A read-only file in a writable folder is refused too.
    std::fs::set_permissions(&photo, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = write_exif_gps(&photo, r.location, None, &backups).unwrap_err();
    assert!(matches!(err, ExportError::ReadOnlyFile { .. }), "{err}");
    assert_eq!(std::fs::read(&photo).unwrap(), original);
}

#[test]
fn a_dry_run_lists_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let photo = copy_into(dir.path(), "kauai.jpg", "photo.jpg");
    let png = copy_into(dir.path(), "small.png", "small.png");
    let records = vec![
        record(&photo, &[0, 1, 2], None, None),
        record(&png, &[0, 1, 2], None, None),
    ];
    let listing = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.clone(), std::fs::read(&p).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    let sidecars = plan_sidecars(&records, SidecarStyle::ReplaceExtension);
    assert_eq!(sidecars[0].path, dir.path().join("photo.xmp"));
    assert_eq!(sidecars[0].action, WriteAction::CreateSidecar);
    let exif = plan_exif_writes(&records);
    assert_eq!(exif[0].action, WriteAction::UpdateExifGps);
    assert_eq!(exif[1].action, WriteAction::Skip(SkipReason::NotJpeg));
    assert_eq!(listing(dir.path()), before);
}

mod common;

/// `geoloupe locate` with the tiny test backbone and the real GeoCLIP heads: a dry run writes
/// nothing; then the exports, sidecars and EXIF GPS are written and read back; `backups clear`.
#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn locate_exports_from_the_command_line() {
    require("exiftool");
    let dirs = common::data_dirs();
    let dir = tempfile::tempdir().unwrap();
    let photo = copy_into(dir.path(), "kauai.jpg", "kauai.jpg");
    let png = copy_into(dir.path(), "small.png", "small.png");
    let out = |d: &str| dir.path().join(d).to_str().unwrap().to_owned();
    let geoloupe = |extra: &[&str]| {
        // The subcommand first, then the global --data-dir.
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_geoloupe"));
        cmd.args(extra).arg("--data-dir").arg(&dirs.data_dir);
        cmd.output().expect("run geoloupe")
    };
    let mut args = vec![
        "locate".to_owned(),
        "--backbone".into(),
        common::tiny_clip().to_str().unwrap().into(),
        "--top-k".into(),
        "3".into(),
        "--claimed=-33.8,151.2".into(),
        "--export".into(),
        out("out.gpx"),
        "--export".into(),
        out("out.csv"),
        "--export".into(),
        out("out.geojson"),
        "--xmp-sidecars".into(),
        "--write-exif".into(),
        photo.to_str().unwrap().into(),
        png.to_str().unwrap().into(),
    ];
    let original = std::fs::read(&photo).unwrap();
    // Backups live in the shared test data folder: start from none.
    assert!(geoloupe(&["backups", "clear"]).status.success());
    let mut dry = args.clone();
    dry.push("--dry-run".into());
    let dry: Vec<&str> = dry.iter().map(String::as_str).collect();
    let result = geoloupe(&dry);
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("dry run: would write Gpx"), "{stderr}");
    assert!(stderr.contains("kauai.jpg.xmp"), "{stderr}");
    assert!(stderr.contains("update EXIF GPS"), "{stderr}");
    let table = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(table.contains("claimed (user)"), "{table}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "dry run wrote nothing"
    );
    assert_eq!(std::fs::read(&photo).unwrap(), original);

    args.push("--best-only".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = geoloupe(&args);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let geojson: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out.geojson")).unwrap()).unwrap();
    let features = geojson["features"].as_array().unwrap();
    assert_eq!(features.len(), 2, "--best-only: one point per photo");
    let c = &features[0]["geometry"]["coordinates"];
    let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
    assert!(features[0]["properties"]["claim"]["probability_within_200_km"].is_number());

    let tags = exiftool_json(&photo);
    assert!((get_f64(&tags, "Composite:GPSLatitude") - lat).abs() < 1e-6);
    assert!((get_f64(&tags, "Composite:GPSLongitude") - lon).abs() < 1e-6);
    let sidecar = exiftool_json(&dir.path().join("kauai.jpg.xmp"));
    assert!((get_f64(&sidecar, "XMP-exif:GPSLatitude") - lat).abs() < 1e-6);
    assert!(dir.path().join("small.png.xmp").is_file());
    assert!(dir.path().join("out.gpx").is_file() && dir.path().join("out.csv").is_file());

    let list = geoloupe(&["backups", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("kauai.jpg"));
    let restore = geoloupe(&["backups", "restore"]);
    assert!(restore.status.success());
    assert_eq!(std::fs::read(&photo).unwrap(), original, "restored");
    let clear = geoloupe(&["backups", "clear"]);
    assert!(clear.status.success());
}

/// One export pipeline for the app and the command line: the format by extension, photo paths
/// relative to the export file by default (no private folder names leak), file names only, or
/// full paths on request.
#[test]
fn exports_write_photo_paths_relative_to_the_file_by_default() {
    use geoloupe::export::{ExportFormat, PathStyle, write_export};

    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let kauai = copy_into(&photos, "kauai.jpg", "kauai.jpg");
    let records = vec![record(&kauai, &[1, 0, 2], None, None)];
    let private = dir.path().to_str().unwrap();
    let full = kauai.to_str().unwrap();
    // The system's separator; JSON escapes a backslash (Windows).
    let has =
        |text: &str, path: &str| text.contains(path) || text.contains(&path.replace('\\', "\\\\"));
    let sep = std::path::MAIN_SEPARATOR_STR;
    let relative = format!("..{sep}photos{sep}kauai.jpg");
    for (name, format) in [
        ("a.gpx", ExportFormat::Gpx),
        ("a.CSV", ExportFormat::Csv),
        ("a.geojson", ExportFormat::GeoJson),
    ] {
        let file = out.join(name);
        assert_eq!(ExportFormat::from_path(&file), Some(format));
        let written = |style: PathStyle| {
            write_export(&file, &records, PointSet::Chosen, style).unwrap();
            std::fs::read_to_string(&file).unwrap()
        };
        let text = written(PathStyle::default());
        assert!(
            has(&text, &format!("..{sep}photos{sep}kauai.jpg")),
            "{text}"
        );
        assert!(!text.contains(private), "{text}");
        let text = written(PathStyle::Name);
        assert!(
            !has(&text, &format!("photos{sep}kauai.jpg")) && !text.contains(private),
            "{text}"
        );
        let text = written(PathStyle::Full);
        assert!(has(&text, full), "{text}");
    }
    let err = write_export(
        &out.join("a.txt"),
        &records,
        PointSet::Chosen,
        PathStyle::Name,
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::UnknownFormat { .. }), "{err}");

    // The app's export writes through the same function.
    let input = geoloupe::app::export::ExportInput {
        path: kauai.clone(),
        candidates: prediction(&[1, 0, 2]).candidates,
        provenance: provenance(),
        estimated_at: ESTIMATED_AT.into(),
        accepted: None,
        claim: None,
        unchecked_claim: None,
        other_claims: Vec::new(),
        unchecked_other_claims: Vec::new(),
        within: None,
        origin: None,
    };
    let app_file = out.join("app.csv");
    geoloupe::app::export::export_to(&app_file, vec![input]).unwrap();
    let text = std::fs::read_to_string(&app_file).unwrap();
    assert!(has(&text, &relative) && !text.contains(private), "{text}");
}

// ---- Issue 8: estimates marked as such, safe restores, symlinks, IFD0, invalid GPS ----

/// The warnings of `exiftool -validate -warning -a FILE`, except the one geoloupe accepts:
/// its `GPSProcessingMethod` text is none of the four method names EXIF 2.32 lists (see
/// `exif_write`'s module docs).
fn exiftool_validate(path: &Path) -> Vec<String> {
    let out = run(
        "exiftool",
        &["-validate", "-warning", "-a", path.to_str().unwrap()],
    );
    out.lines()
        .filter(|l| l.starts_with("Warning"))
        .filter(|l| !l.ends_with("Invalid value for GPS tag 0x001b GPSProcessingMethod"))
        .map(str::to_owned)
        .collect()
}

#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn an_estimate_in_exif_is_marked_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let photo = copy_into(dir.path(), "gps.jpg", "photo.jpg");
    let warnings = exiftool_validate(&photo);
    // gps.jpg has a fix of its own: a top candidate never replaces it, an accepted location does.
    let r = record(&photo, &[0, 1, 2], None, None);
    assert_eq!(
        plan_exif_writes(std::slice::from_ref(&r))[0].action,
        WriteAction::Skip(SkipReason::OwnGps)
    );
    let accepted = record(&photo, &[0, 1, 2], Some(LatLon::new(21.97, -159.37)), None);
    let radius = record_error_radius_m(&accepted).unwrap();
    let written = write_exif_gps_all(std::slice::from_ref(&accepted), &backups);
    assert_eq!(
        written[0].as_ref().unwrap().action,
        WriteAction::UpdatedExifGps
    );

    let out = run(
        "exiftool",
        &[
            "-n",
            "-s",
            "-GPSProcessingMethod",
            "-GPSHPositioningError",
            photo.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains(&format!(
            "GPSProcessingMethod             : {ESTIMATE_METHOD}"
        )),
        "{out}"
    );
    let error_line = out
        .lines()
        .find(|l| l.starts_with("GPSHPositioningError"))
        .unwrap_or_else(|| panic!("{out}"));
    let error_m: f64 = error_line
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(error_m, radius.round(), "{out}");
    assert!(
        error_m > 1000.0,
        "the candidates spread over Hawaii: {error_m}"
    );
    assert_eq!(exiftool_validate(&photo), warnings, "no new warning");

    // Read back: an estimate, not a fix.
    let info = geoloupe::library::exif::read_exif(&photo).unwrap();
    assert_eq!(info.gps, None, "{info:?}");
    assert_eq!(info.gps_invalid, None);
    let estimate = info.gps_estimate.unwrap();
    assert_eq!(estimate.method, ESTIMATE_METHOD);
    assert_eq!(estimate.error_m, Some(error_m));
    assert!(estimate.position.distance_km(&LatLon::new(21.97, -159.37)) < 0.001);
    assert!(!geoloupe::export::has_exif_gps(&photo));

    // So a later batch write replaces it (it is not "its own GPS"), as do sidecars.
    let again = record(&photo, &[2, 1, 0], None, None);
    assert_eq!(
        plan_exif_writes(std::slice::from_ref(&again))[0].action,
        WriteAction::UpdateExifGps
    );
    assert_eq!(
        plan_sidecars(std::slice::from_ref(&again), SidecarStyle::AppendXmp)[0].action,
        WriteAction::CreateSidecar
    );
    write_exif_gps_all(std::slice::from_ref(&again), &backups)[0]
        .as_ref()
        .unwrap();
    let info = geoloupe::library::exif::read_exif(&photo).unwrap();
    let estimate = info.gps_estimate.unwrap();
    assert!(estimate.position.distance_km(&LatLon::new(20.80, -156.33)) < 0.001);
}

/// What a restore did with the backup of the photo named like `photo`.
fn outcome_of<'a>(reports: &'a [RestoreReport], photo: &Path) -> &'a RestoreOutcome {
    &reports
        .iter()
        .find(|r| r.entry.original.file_name() == photo.file_name())
        .unwrap_or_else(|| panic!("no report for {}: {reports:?}", photo.display()))
        .outcome
}

#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn restore_leaves_a_photo_edited_since_alone() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let edited = copy_into(dir.path(), "kauai.jpg", "edited.jpg");
    let untouched = copy_into(dir.path(), "rotated.jpg", "untouched.jpg");
    let gone = copy_into(dir.path(), "landscape.jpg", "gone.jpg");
    let untouched_original = std::fs::read(&untouched).unwrap();
    write_exif_gps(&edited, LatLon::new(1.0, 2.0), None, &backups).unwrap();
    write_exif_gps(&untouched, LatLon::new(3.0, 4.0), None, &backups).unwrap();
    // Written twice: the first original is the one restored.
    write_exif_gps(&untouched, LatLon::new(5.0, 6.0), None, &backups).unwrap();
    write_exif_gps(&gone, LatLon::new(7.0, 8.0), None, &backups).unwrap();
    std::fs::remove_file(&gone).unwrap();
    // Another tool edits the photo after geoloupe wrote it.
    exiftool_set(&edited, &["-Artist=Someone Else"]);
    let edit = std::fs::read(&edited).unwrap();

    let reports = backups.restore_all().unwrap();
    assert_eq!(reports.len(), 3);
    assert!(
        matches!(
            outcome_of(&reports, &edited),
            RestoreOutcome::SkippedEditedSince
        ),
        "{reports:?}"
    );
    assert!(
        matches!(outcome_of(&reports, &untouched), RestoreOutcome::Restored),
        "{reports:?}"
    );
    assert!(
        matches!(
            outcome_of(&reports, &gone),
            RestoreOutcome::SkippedMissing(MissingFile::Photo)
        ),
        "{reports:?}"
    );
    assert!(std::fs::read(&edited).unwrap() == edit, "the edit survives");
    assert!(std::fs::read(&untouched).unwrap() == untouched_original);
    let left = backups.list().unwrap();
    assert_eq!(left.len(), 2, "skipped photos keep their backups: {left:?}");
    assert!(left.iter().all(|b| b.backup.is_file()));

    // Writing over the edit backs the edited photo up instead: a restore keeps the edit.
    write_exif_gps(&edited, LatLon::new(9.0, 9.0), None, &backups).unwrap();
    assert_eq!(backups.list().unwrap().len(), 2);
    let reports = backups.restore_all().unwrap();
    assert!(outcome_of(&reports, &edited).is_restored(), "{reports:?}");
    assert!(std::fs::read(&edited).unwrap() == edit);
    let backup_files = std::fs::read_dir(backups.dir()).unwrap().count();
    assert_eq!(
        backup_files, 3,
        "the gone photo's copy, index.json and index.lock"
    );
}

#[test]
fn restore_never_trusts_an_entry_without_a_digest() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let photo = copy_into(dir.path(), "kauai.jpg", "photo.jpg");
    write_exif_gps(&photo, LatLon::new(1.0, 2.0), None, &backups).unwrap();
    let written = std::fs::read(&photo).unwrap();
    // An index as an older geoloupe wrote it: no `written` digest.
    let index = backups.dir().join("index.json");
    let mut entries: Vec<Value> = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    entries[0].as_object_mut().unwrap().remove("written");
    std::fs::write(&index, serde_json::to_vec(&entries).unwrap()).unwrap();

    let reports = backups.restore_all().unwrap();
    assert!(
        matches!(reports[0].outcome, RestoreOutcome::SkippedUnverified),
        "{reports:?}"
    );
    assert!(reports[0].outcome.to_string().contains("by hand"));
    assert!(std::fs::read(&photo).unwrap() == written);
    assert_eq!(backups.list().unwrap().len(), 1);
}

#[test]
fn concurrent_backups_lose_no_entry() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let photos: Vec<PathBuf> = (0..24)
        .map(|i| copy_into(dir.path(), "rotated.jpg", &format!("p{i}.jpg")))
        .collect();
    std::thread::scope(|s| {
        for chunk in photos.chunks(3) {
            let backups = backups.clone();
            std::thread::Builder::new()
                .name("writer".into())
                .spawn_scoped(s, move || {
                    for p in chunk {
                        write_exif_gps(p, LatLon::new(5.0, 6.0), None, &backups).unwrap();
                    }
                })
                .unwrap();
        }
    });
    let entries = backups.list().unwrap();
    assert_eq!(entries.len(), photos.len());
    assert!(entries.iter().all(|e| e.written.is_some()));
    let reports = backups.restore_all().unwrap();
    assert!(
        reports.iter().all(|r| r.outcome.is_restored()),
        "{reports:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_photo_is_written_through_and_kept_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let target = copy_into(&dir.path().join("real"), "kauai.jpg", "photo.jpg");
    let original = std::fs::read(&target).unwrap();
    let link = dir.path().join("link.jpg");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let r = record(&link, &[4, 3, 2], None, None);
    write_exif_gps_all(std::slice::from_ref(&r), &backups)[0]
        .as_ref()
        .unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    let tags = exiftool_json(&target);
    assert!(
        (get_f64(&tags, "Composite:GPSLatitude") - r.location.lat_deg).abs() < 1e-6,
        "{tags:#?}"
    );
    let entries = backups.list().unwrap();
    assert_eq!(
        entries[0].original,
        geoloupe::platform::canonicalize(&target).unwrap()
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "no stray file"
    );

    let reports = backups.restore_all().unwrap();
    assert!(reports[0].outcome.is_restored(), "{reports:?}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read(&target).unwrap() == original,
        "the target is restored"
    );
}

#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn a_new_exif_block_validates_like_exiftools_own() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let ours = copy_into(dir.path(), "kauai.jpg", "ours.jpg");
    let theirs = copy_into(dir.path(), "kauai.jpg", "theirs.jpg");
    write_exif_gps(&ours, LatLon::new(22.05, -159.5), Some(25_000.0), &backups).unwrap();
    exiftool_set(
        &theirs,
        &[
            "-GPSLatitude=22.05",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=159.5",
            "-GPSLongitudeRef=W",
        ],
    );
    assert_eq!(exiftool_validate(&theirs), Vec::<String>::new());
    assert_eq!(exiftool_validate(&ours), Vec::<String>::new());
    let tags = exiftool_json(&ours);
    assert_eq!(tags["IFD0:XResolution"], Value::from(72));
    assert_eq!(tags["IFD0:YResolution"], Value::from(72));
    assert_eq!(tags["IFD0:ResolutionUnit"], Value::from(2));
    assert_eq!(tags["IFD0:YCbCrPositioning"], Value::from(1));
    assert_eq!(tags["GPS:GPSHPositioningError"], Value::from(25_000));
}

#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn invalid_gps_is_never_overwritten_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let backups = BackupStore::new(dir.path().join("backups"));
    let lat_999 = copy_into(dir.path(), "landscape.jpg", "lat999.jpg");
    exiftool_set(
        &lat_999,
        &[
            "-n",
            "-GPSLatitude=999",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=10",
            "-GPSLongitudeRef=E",
        ],
    );
    let bad_ref = copy_into(dir.path(), "landscape.jpg", "badref.jpg");
    exiftool_set(
        &bad_ref,
        &[
            "-n",
            "-GPSLatitude=10",
            "-GPSLatitudeRef=X",
            "-GPSLongitude=10",
            "-GPSLongitudeRef=E",
        ],
    );
    let void = copy_into(dir.path(), "landscape.jpg", "void.jpg");
    exiftool_set(
        &void,
        &[
            "-n",
            "-GPSLatitude=0",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=0",
            "-GPSLongitudeRef=E",
            "-GPSStatus=V",
        ],
    );
    for (photo, why) in [
        (&lat_999, "latitude 999° is beyond ±90°"),
        (&bad_ref, "GPSLatitudeRef is \"X\", not N or S"),
        (
            &void,
            "GPSStatus is V (measurement void: the receiver had no fix)",
        ),
    ] {
        let info = geoloupe::library::exif::read_exif(photo).unwrap();
        assert_eq!(info.gps_invalid.as_deref(), Some(why), "{info:?}");
        assert_eq!((info.gps, info.gps_estimate), (None, None));
        let before = std::fs::read(photo).unwrap();
        // Not even an accepted location replaces it by default.
        let mut r = record(photo, &[0, 1, 2], Some(LatLon::new(1.0, 1.0)), None);
        let plan = &plan_exif_writes(std::slice::from_ref(&r))[0];
        let skip = WriteAction::Skip(SkipReason::InvalidGps { reason: why.into() });
        assert_eq!(plan.action, skip, "{plan}");
        assert!(
            plan.to_string()
                .contains(&format!("the photo has invalid GPS ({why})")),
            "{plan}"
        );
        let sidecar = &plan_sidecars(std::slice::from_ref(&r), SidecarStyle::AppendXmp)[0];
        assert_eq!(sidecar.action, skip, "{sidecar}");
        let written = write_exif_gps_all(std::slice::from_ref(&r), &backups);
        assert_eq!(written[0].as_ref().unwrap().action, skip);
        assert!(std::fs::read(photo).unwrap() == before);

        // The explicit override.
        r.overwrite_invalid_gps = true;
        assert_eq!(
            plan_exif_writes(std::slice::from_ref(&r))[0].action,
            WriteAction::UpdateExifGps
        );
        let written = write_exif_gps_all(std::slice::from_ref(&r), &backups);
        assert_eq!(
            written[0].as_ref().unwrap().action,
            WriteAction::UpdatedExifGps
        );
        let info = geoloupe::library::exif::read_exif(photo).unwrap();
        assert_eq!(info.gps_invalid, None);
        // (1, 1) is no candidate: placed by hand, so written as the photo's own position, not
        // as an estimate (issue 12).
        assert_eq!(r.origin, geoloupe::domain::Origin::Hand);
        assert!(
            info.gps_estimate.is_none() && info.gps.is_some(),
            "{info:?}"
        );
    }
    assert!(!sidecar_path(&lat_999, SidecarStyle::AppendXmp).exists());
}

/// GPX times are UTC (issue 9): the camera's local time shifted by its OffsetTimeOriginal,
/// across midnight too, written with `Z`; a photo without an offset gets no `<time>` (its local
/// time stays under `<extensions>`). gpsbabel reads the times as UTC: its GPX output carries
/// the same instants, and unicsv shows them in UTC.
#[cfg_attr(
    windows,
    ignore = "reads back with exiftool and gpsbabel: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn gpx_times_are_utc_and_gpsbabel_reads_them_so() {
    let dir = tempfile::tempdir().unwrap();
    let west = copy_into(dir.path(), "landscape.jpg", "west.jpg");
    exiftool_set(
        &west,
        &[
            "-DateTimeOriginal=2021:12:31 21:15:00",
            "-OffsetTimeOriginal=-05:00",
        ],
    );
    let naive = copy_into(dir.path(), "kauai.jpg", "naive.jpg");
    exiftool_set(&naive, &["-DateTimeOriginal=2021:06:01 12:00:00"]);
    let records = vec![
        record(&west, &[3, 4], None, None),
        record(&naive, &[0, 1], None, None),
    ];
    let gpx = dir.path().join("times.gpx");
    std::fs::write(&gpx, render_gpx(&records, PointSet::Chosen)).unwrap();
    let text = std::fs::read_to_string(&gpx).unwrap();
    assert!(text.contains("<time>2022-01-01T02:15:00Z</time>"), "{text}");
    assert_eq!(
        text.matches("<time>").count(),
        2,
        "the metadata's and the west photo's, none for the photo without an offset: {text}"
    );
    assert!(
        text.contains("<geoloupe:takenAtLocal>2021-12-31T21:15:00-05:00</geoloupe:takenAtLocal>")
            && text.contains("<geoloupe:takenAtLocal>2021-06-01T12:00:00</geoloupe:takenAtLocal>"),
        "{text}"
    );
    for line in text.lines().filter(|l| l.contains("<time>")) {
        assert!(line.trim_end().ends_with("Z</time>"), "{line}");
    }

    let csv = run(
        "gpsbabel",
        &[
            "-i",
            "gpx",
            "-f",
            gpx.to_str().unwrap(),
            "-o",
            "unicsv",
            "-F",
            "-",
        ],
    );
    let rows = common::parse_csv(&csv);
    let (header, rows) = (&rows[0], &rows[1..]);
    assert_eq!(rows.len(), 2, "{csv}");
    let (name, date, time) = (
        column(header, "Name"),
        column(header, "Date"),
        column(header, "Time"),
    );
    assert_eq!(rows[0][name], "west.jpg");
    assert_eq!(
        (rows[0][date].as_str(), rows[0][time].as_str()),
        ("2022/01/01", "02:15:00")
    );
    assert_eq!(rows[1][name], "naive.jpg");
    assert_eq!(rows[1][time], "", "no offset, no time: {csv}");

    // gpsbabel's own GPX: the same instant, in UTC.
    let again = run(
        "gpsbabel",
        &[
            "-i",
            "gpx",
            "-f",
            gpx.to_str().unwrap(),
            "-o",
            "gpx",
            "-F",
            "-",
        ],
    );
    assert!(
        again.contains("<time>2022-01-01T02:15:00Z</time>"),
        "{again}"
    );
}

/// `exiftool -XMP-photoshop:City ... -XMP-iptcCore:CountryCode` as `(City, State, Country,
/// CountryCode)`; `None` for a tag the file lacks.
type IptcLocation = [Option<String>; 4];

fn exiftool_iptc_location(sidecar: &Path) -> IptcLocation {
    let text = run(
        "exiftool",
        &[
            "-json",
            "-XMP-photoshop:City",
            "-XMP-photoshop:State",
            "-XMP-photoshop:Country",
            "-XMP-iptcCore:CountryCode",
            sidecar.to_str().unwrap(),
        ],
    );
    let v: Vec<Value> = serde_json::from_str(&text).unwrap();
    let get = |key: &str| v[0].get(key).and_then(Value::as_str).map(str::to_owned);
    [
        get("City"),
        get("State"),
        get("Country"),
        get("CountryCode"),
    ]
}

/// Issue 9: the IPTC location of an accepted location, as exiftool (digiKam's and Lightroom's
/// fields) reads it; written again, ours are replaced; a City the sidecar already had from
/// another tool is kept, and then none of ours is written.
#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn iptc_location_in_sidecars_reads_back_with_exiftool() {
    let dir = tempfile::tempdir().unwrap();
    let photo = copy_into(dir.path(), "kauai.jpg", "kauai.jpg");
    let sidecar = sidecar_path(&photo, SidecarStyle::AppendXmp);
    let mut kauai = record(&photo, &[0, 1, 2], Some(LatLon::new(21.97, -159.37)), None);
    kauai.iptc_location = true;
    write_sidecar(&kauai, SidecarStyle::AppendXmp).unwrap();
    let place = kauai.place.clone().unwrap();
    assert_eq!(
        exiftool_iptc_location(&sidecar),
        [
            Some(place.name.clone()),
            Some("Hawaii".to_owned()),
            Some("United States".to_owned()),
            Some("US".to_owned())
        ]
    );

    // Accepted elsewhere: our values are replaced.
    let mut paris = record(&photo, &[3, 4, 0], Some(LatLon::new(48.8566, 2.3522)), None);
    paris.iptc_location = true;
    write_sidecar(&paris, SidecarStyle::AppendXmp).unwrap();
    let [city, _, country, code] = exiftool_iptc_location(&sidecar);
    assert_eq!(
        (city.as_deref(), country.as_deref(), code.as_deref()),
        (Some("Paris"), Some("France"), Some("FR"))
    );

    // Another tool's City (exiftool creates the sidecar): kept, and no Country of ours.
    let other = copy_into(dir.path(), "landscape.jpg", "other.jpg");
    let other_sidecar = sidecar_path(&other, SidecarStyle::AppendXmp);
    run(
        "exiftool",
        &[
            "-XMP-photoshop:City=Springfield",
            other_sidecar.to_str().unwrap(),
        ],
    );
    let mut accepted = record(&other, &[3, 4, 0], Some(LatLon::new(48.8566, 2.3522)), None);
    accepted.iptc_location = true;
    let plan = plan_sidecars(std::slice::from_ref(&accepted), SidecarStyle::AppendXmp);
    assert!(
        plan[0].detail.contains("IPTC location kept"),
        "{}",
        plan[0].detail
    );
    write_sidecar(&accepted, SidecarStyle::AppendXmp).unwrap();
    assert_eq!(
        exiftool_iptc_location(&other_sidecar),
        [Some("Springfield".to_owned()), None, None, None]
    );
    let gps = exiftool_json(&other_sidecar);
    assert!((get_f64(&gps, "XMP-exif:GPSLatitude") - 48.8566).abs() < 1e-6);
}

/// `locate --xmp-sidecars --iptc-location` writes the IPTC location of the top-1 estimate;
/// without the flag, none.
#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn locate_writes_the_iptc_location_when_asked() {
    let dirs = common::data_dirs();
    let dir = tempfile::tempdir().unwrap();
    let photo = copy_into(dir.path(), "kauai.jpg", "kauai.jpg");
    let sidecar = sidecar_path(&photo, SidecarStyle::AppendXmp);
    let locate = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_geoloupe"))
            .arg("--data-dir")
            .arg(&dirs.data_dir)
            .args(["locate", "--backbone"])
            .arg(common::tiny_clip())
            .args(["--xmp-sidecars"])
            .args(extra)
            .arg(&photo)
            .output()
            .expect("run geoloupe");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    locate(&[]);
    assert_eq!(exiftool_iptc_location(&sidecar), [None, None, None, None]);
    locate(&["--iptc-location"]);
    let [city, _, country, code] = exiftool_iptc_location(&sidecar);
    assert!(city.is_some_and(|c| !c.is_empty()));
    assert!(country.is_some_and(|c| !c.is_empty()));
    assert!(
        code.as_deref()
            .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())),
        "{code:?}"
    );
}

// ---- Issue 12: every location says where it came from ----

/// The origin kinds, in the order [`photos_of_every_origin`] makes them.
const KINDS: [&str; 5] = ["estimate", "trip", "track", "neighbour", "hand"];
/// Which of them are estimates from the photo's pixels.
const FROM_PIXELS: [bool; 5] = [true, true, false, false, false];
/// The track's name (not ASCII: EXIF gets it as UTF-16) and altitude.
const TRACK: &str = "Été 2024.gpx";
const TRACK_ALTITUDE_M: f64 = 12.5;

/// One JPEG without GPS per origin kind, with its record: the top-1 estimate, a trip
/// posterior, a track's position (with altitude, clock 1:00:37.5 slow), a neighbouring
/// photo's, and one placed by hand.
fn photos_of_every_origin(dir: &Path) -> Vec<ExportRecord> {
    use geoloupe::domain::Origin;
    let photo = |kind: &str| copy_into(dir, "kauai.jpg", &format!("{kind}.jpg"));
    let estimate = record(&photo("estimate"), &[0, 1, 2], None, None);
    let mut trip = record(&photo("trip"), &[0, 1, 2], None, None);
    trip.location = LatLon::new(21.5, -158.0);
    trip.origin = Origin::Trip {
        max_speed_kmh: 120.0,
        single_photo: LatLon::new(21.97, -159.37),
    };
    let at = |kind: &str, position: LatLon, origin: Origin| {
        let mut r = record(&photo(kind), &[0, 1, 2], Some(position), None);
        r.origin = origin;
        r
    };
    let track = at(
        "track",
        LatLon::new(22.05, -159.5),
        Origin::Track {
            track: TRACK.into(),
            offset_secs: -3637.5,
            altitude_m: Some(TRACK_ALTITUDE_M),
        },
    );
    let neighbour = at(
        "neighbour",
        LatLon::new(22.06, -159.51),
        Origin::Neighbour {
            photo: "IMG_0042.jpg".into(),
            seconds: -37.2,
        },
    );
    let hand = record(
        &photo("hand"),
        &[0, 1, 2],
        Some(LatLon::new(22.07, -159.52)),
        None,
    );
    assert_eq!(hand.origin, Origin::Hand);
    vec![estimate, trip, track, neighbour, hand]
}

/// `exiftool -j -n -G1 -a FILE` -> the one object.
fn exiftool_all(path: &Path) -> serde_json::Map<String, Value> {
    let text = run(
        "exiftool",
        &["-j", "-n", "-G1", "-a", path.to_str().unwrap()],
    );
    let mut v: Vec<Value> = serde_json::from_str(&text).unwrap();
    match v.remove(0) {
        Value::Object(m) => m,
        other => panic!("{other}"),
    }
}

/// Each origin kind, in every export format, read back by other tools: the CSV by the csv
/// crate, the GeoJSON by serde_json (and gpsbabel), the GPX by gpsbabel. Only estimates from
/// pixels say they are estimates; a track's position carries its altitude.
#[cfg_attr(
    windows,
    ignore = "reads back with gpsbabel: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn exports_say_where_each_location_came_from() {
    use geoloupe::export::{PathStyle, write_export};
    let dir = tempfile::tempdir().unwrap();
    let records = photos_of_every_origin(dir.path());
    let out = |name: &str| {
        let path = dir.path().join(name);
        write_export(&path, &records, PointSet::Chosen, PathStyle::Relative).unwrap();
        path
    };

    // CSV through the csv crate.
    let mut reader = csv::Reader::from_path(out("out.csv")).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let col = |name: &str| column(&header, name);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(&row[col("origin")], KINDS[i]);
        assert_eq!(row[col("is_estimate")], FROM_PIXELS[i].to_string());
        assert_eq!(&row[col("photo")], &format!("{}.jpg", KINDS[i]));
    }
    assert_eq!(&rows[2][col("track")], TRACK);
    assert_eq!(&rows[2][col("clock_offset")], "-1:00:37.5");
    assert_eq!(&rows[2][col("altitude_m")], "12.5");
    assert_eq!(&rows[3][col("neighbour_photo")], "IMG_0042.jpg");
    assert_eq!(&rows[3][col("neighbour_seconds")], "-37.2");
    assert_eq!(&rows[1][col("trip_max_speed_kmh")], "120");
    assert_eq!(&rows[1][col("single_photo_lat_deg")], "21.97000000");
    assert_eq!(&rows[4][col("origin_detail")], "placed by hand");
    // The older columns kept their places: the first new one comes after group_size.
    assert_eq!(col("origin"), col("group_size") + 1);

    // GeoJSON through serde_json.
    let geojson = out("out.geojson");
    let v: Value = serde_json::from_slice(&std::fs::read(&geojson).unwrap()).unwrap();
    let features = v["features"].as_array().unwrap();
    for (i, f) in features.iter().enumerate() {
        assert_eq!(f["properties"]["origin"]["kind"], KINDS[i]);
        assert_eq!(f["properties"]["is_estimate"], FROM_PIXELS[i]);
    }
    assert_eq!(
        features[2]["geometry"]["coordinates"],
        serde_json::json!([-159.5, 22.05, TRACK_ALTITUDE_M])
    );
    assert_eq!(features[2]["properties"]["origin"]["track"], TRACK);
    assert_eq!(
        features[2]["properties"]["origin"]["clock_offset"],
        "-1:00:37.5"
    );
    assert_eq!(features[3]["properties"]["origin"]["photo"], "IMG_0042.jpg");
    assert_eq!(features[1]["properties"]["origin"]["max_speed_kmh"], 120.0);
    // gpsbabel reads the GeoJSON too, the three-element position included (gpsbabel 1.8.0
    // doesn't take a GeoJSON altitude: it reads 0.0 for any; GPX's <ele> below it does).
    let back = run(
        "gpsbabel",
        &[
            "-i",
            "geojson",
            "-f",
            geojson.to_str().unwrap(),
            "-o",
            "unicsv",
            "-F",
            "-",
        ],
    );
    let back = common::parse_csv(&back);
    assert_eq!(back.len(), 6, "{back:?}");
    let (lat, lon) = (column(&back[0], "Latitude"), column(&back[0], "Longitude"));
    for (row, r) in back[1..].iter().zip(&records) {
        let (row_lat, row_lon): (f64, f64) = (row[lat].parse().unwrap(), row[lon].parse().unwrap());
        assert!((row_lat - r.location.lat_deg).abs() < 1e-5, "{row:?}");
        assert!((row_lon - r.location.lon_deg).abs() < 1e-5, "{row:?}");
    }

    // GPX through gpsbabel: it still reads the file (the brief's check), the waypoints in
    // order, the track's altitude from <ele>.
    let gpx = out("out.gpx");
    let plain = run(
        "gpsbabel",
        &[
            "-i",
            "gpx",
            "-f",
            gpx.to_str().unwrap(),
            "-o",
            "csv",
            "-F",
            "-",
        ],
    );
    let lines: Vec<&str> = plain.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 5, "{plain}");
    for (line, r) in lines.iter().zip(&records) {
        let lat_lon = format!("{:.5}, {:.5}", r.location.lat_deg, r.location.lon_deg);
        assert!(line.starts_with(&lat_lon), "{lat_lon}: {plain}");
    }
    let uni = common::parse_csv(&run(
        "gpsbabel",
        &[
            "-i",
            "gpx",
            "-f",
            gpx.to_str().unwrap(),
            "-o",
            "unicsv",
            "-F",
            "-",
        ],
    ));
    let altitude: f64 = uni[3][column(&uni[0], "Altitude")].parse().unwrap();
    assert!((altitude - TRACK_ALTITUDE_M).abs() < 1e-9, "{uni:?}");
    let text = std::fs::read_to_string(&gpx).unwrap();
    for kind in KINDS {
        assert_eq!(
            text.matches(&format!("<src>geoloupe {kind}</src>")).count(),
            1,
            "{text}"
        );
    }
    assert_eq!(text.matches("<geoloupe:estimate>true<").count(), 2);
    assert_eq!(text.matches("<geoloupe:estimate>false<").count(), 3);
    assert!(text.contains(&format!("<geoloupe:track>{TRACK}</geoloupe:track>")));
    assert!(text.contains("<geoloupe:clockOffset>-1:00:37.5</geoloupe:clockOffset>"));
}

/// Each origin kind in XMP sidecars and EXIF, read back by exiftool (`-j -n -G1 -a`): the
/// origin and its details in our namespace, `IsEstimate` only for estimates from pixels; in
/// EXIF the estimate marking (method text and uncertainty) only for those, the others' method
/// text saying where they came from, and a track's altitude as GPSAltitude in both.
#[cfg_attr(
    windows,
    ignore = "reads back with exiftool: not in the Wine prefix (tested on Linux)"
)]
#[test]
fn sidecars_and_exif_say_where_each_location_came_from() {
    use geoloupe::export::WriteBack;
    let dir = tempfile::tempdir().unwrap();
    let records = photos_of_every_origin(dir.path());
    let warnings = exiftool_validate(&records[0].path);

    for (i, r) in records.iter().enumerate() {
        let written = write_sidecar(r, SidecarStyle::AppendXmp).unwrap();
        let tags = exiftool_all(&written.path);
        assert_eq!(
            tags["XMP-geoloupe:Origin"],
            Value::from(KINDS[i]),
            "{tags:#?}"
        );
        assert_eq!(
            tags["XMP-geoloupe:IsEstimate"],
            Value::from(FROM_PIXELS[i]),
            "{tags:#?}"
        );
        assert!((get_f64(&tags, "XMP-exif:GPSLatitude") - r.location.lat_deg).abs() < 1e-6);
        assert_eq!(
            tags.contains_key("XMP-exif:GPSAltitude"),
            i == 2,
            "{tags:#?}"
        );
    }
    let xmp = |kind: &str| exiftool_all(&dir.path().join(format!("{kind}.jpg.xmp")));
    let track = xmp("track");
    assert_eq!(track["XMP-geoloupe:Track"], Value::from(TRACK));
    assert_eq!(track["XMP-geoloupe:ClockOffset"], Value::from("-1:00:37.5"));
    assert_eq!(get_f64(&track, "XMP-geoloupe:ClockOffsetSeconds"), -3637.5);
    assert_eq!(get_f64(&track, "XMP-exif:GPSAltitude"), TRACK_ALTITUDE_M);
    assert_eq!(track["XMP-exif:GPSAltitudeRef"], Value::from(0));
    assert_eq!(
        track["XMP-geoloupe:Review"],
        Value::from("accepted"),
        "review still says whether a person reviewed it"
    );
    let neighbour = xmp("neighbour");
    assert_eq!(
        neighbour["XMP-geoloupe:NeighbourPhoto"],
        Value::from("IMG_0042.jpg")
    );
    assert_eq!(get_f64(&neighbour, "XMP-geoloupe:NeighbourSeconds"), -37.2);
    let trip = xmp("trip");
    assert_eq!(get_f64(&trip, "XMP-geoloupe:TripMaxSpeedKmh"), 120.0);
    assert_eq!(get_f64(&trip, "XMP-geoloupe:SinglePhotoLatitude"), 21.97);
    assert_eq!(get_f64(&trip, "XMP-geoloupe:SinglePhotoLongitude"), -159.37);
    assert_eq!(
        xmp("hand")["XMP-geoloupe:OriginDetail"],
        Value::from("placed by hand")
    );

    // EXIF.
    let backups = BackupStore::new(dir.path().join("backups"));
    for result in WriteBack::ExifGps.write(&records, &backups) {
        assert_eq!(result.unwrap().action, WriteAction::UpdatedExifGps);
    }
    let methods = [
        ESTIMATE_METHOD.to_owned(),
        "geoloupe estimate (GeoCLIP trip posterior, up to 120 km/h; single photo 21.97000000, \
         -159.37000000)"
            .to_owned(),
        format!("geoloupe track ({TRACK}, clock -1:00:37.5)"),
        "geoloupe neighbour (IMG_0042.jpg, 37 s away)".to_owned(),
        "geoloupe hand (placed by hand)".to_owned(),
    ];
    for (i, r) in records.iter().enumerate() {
        let tags = exiftool_all(&r.path);
        assert_eq!(
            tags["GPS:GPSProcessingMethod"],
            Value::from(methods[i].as_str()),
            "{tags:#?}"
        );
        assert!((get_f64(&tags, "Composite:GPSLatitude") - r.location.lat_deg).abs() < 1e-6);
        assert!((get_f64(&tags, "Composite:GPSLongitude") - r.location.lon_deg).abs() < 1e-6);
        // The uncertainty belongs to an estimate (the hand's has none either way).
        assert_eq!(
            tags.contains_key("GPS:GPSHPositioningError"),
            FROM_PIXELS[i],
            "{tags:#?}"
        );
        assert_eq!(tags.contains_key("GPS:GPSAltitude"), i == 2, "{tags:#?}");
        // geoloupe reads its estimates back as estimates, the others as the photo's own GPS.
        let info = geoloupe::library::exif::read_exif(&r.path).unwrap();
        assert_eq!(info.gps_estimate.is_some(), FROM_PIXELS[i], "{info:?}");
        assert_eq!(info.gps.is_some(), !FROM_PIXELS[i], "{info:?}");
        assert_eq!(exiftool_validate(&r.path), warnings, "no new warning");
    }
    let track = exiftool_all(&records[2].path);
    assert_eq!(get_f64(&track, "GPS:GPSAltitude"), TRACK_ALTITUDE_M);
    assert_eq!(track["GPS:GPSAltitudeRef"], Value::from(0));
    assert_eq!(get_f64(&track, "Composite:GPSAltitude"), TRACK_ALTITUDE_M);
}
