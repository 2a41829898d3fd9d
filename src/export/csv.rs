//! CSV: one row per point (the same points as the GPX and GeoJSON), RFC 4180 quoting and line
//! ends (CRLF, [`CSV_LINE_END`], on every system: what Excel and RFC 4180 expect; a line break
//! inside a quoted field is kept as it is), a header row, latitude before longitude (named `lat_deg`, `lon_deg`). The photo's path is in
//! `photo`, and its exact bytes in `photo_bytes_hex` when it isn't plain text (see
//! [`super::paths`]; empty otherwise). `is_estimate` is `true` only for an estimate from the
//! photo's pixels; `origin` and the columns after it say where the location came from
//! (appended at the end, so the older columns keep their places).

use super::{
    ExportFormat, ExportPoint, ExportRecord, OriginField, PhotoPaths, PointSet, origin_fields,
    points,
};

/// The header row's columns.
pub const CSV_COLUMNS: &[&str] = &[
    "name",
    "photo",
    "photo_bytes_hex",
    "role",
    "lat_deg",
    "lon_deg",
    "rank",
    "probability",
    "gallery_index",
    "place",
    "region",
    "country_code",
    "country",
    "place_distance_km",
    "taken_at",
    "claimed_lat_deg",
    "claimed_lon_deg",
    "claim_source",
    "claim_top1_distance_km",
    "claim_probability_within_25_km",
    "claim_probability_within_200_km",
    "is_estimate",
    "model",
    "backbone",
    "weights_sha256",
    "gallery_sha256",
    "estimated_at",
    // The region the answer was restricted to (`country:UA`, `box:...`) and the share of the
    // model's belief inside; empty without one.
    "within",
    "within_share_inside",
    "review",
    "point_kind",
    "refined_similarity",
    "group_size",
    // Where the location came from (issue 12; appended, so older readers keep their columns):
    // `estimate`, `trip`, `track`, `neighbour` or `hand`, one line for people, then the
    // details of its kind (see `OriginField`), empty where they don't apply.
    "origin",
    "origin_detail",
    "track",
    "clock_offset",
    "clock_offset_secs",
    "altitude_m",
    "neighbour_photo",
    "neighbour_seconds",
    "trip_max_speed_kmh",
    "single_photo_lat_deg",
    "single_photo_lon_deg",
];

/// The end of every CSV row geoloupe writes (exports and `locate --format csv`), on every system.
pub const CSV_LINE_END: &str = "\r\n";

/// Quotes a field when it holds a comma, quote or line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn row(point: &ExportPoint<'_>, paths: &PhotoPaths) -> Vec<String> {
    let r = point.record;
    let photo = paths.text(&r.path);
    let c = point.candidate;
    let place = point.place;
    let claim = r.claim.as_ref();
    let origin = point.origin();
    let details = origin_fields(origin);
    let detail = |field: OriginField| {
        details
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut fields = vec![
        point.name.clone(),
        photo.text,
        photo.bytes_hex.unwrap_or_default(),
        point.role.to_owned(),
        format!("{:.8}", point.position.lat_deg),
        format!("{:.8}", point.position.lon_deg),
        c.map(|c| c.rank.to_string()).unwrap_or_default(),
        c.map(|c| format!("{:.8}", c.probability))
            .unwrap_or_default(),
        c.map(|c| c.gallery_index.to_string()).unwrap_or_default(),
        place.map(|p| p.name.clone()).unwrap_or_default(),
        place.map(|p| p.region.clone()).unwrap_or_default(),
        place.map(|p| p.country_code.clone()).unwrap_or_default(),
        place.map(|p| p.country.clone()).unwrap_or_default(),
        place
            .map(|p| format!("{:.3}", p.distance_km))
            .unwrap_or_default(),
        r.taken_at
            .as_ref()
            .map(|t| t.local_with_offset())
            .unwrap_or_default(),
        claim
            .map(|k| format!("{:.8}", k.claimed.lat_deg))
            .unwrap_or_default(),
        claim
            .map(|k| format!("{:.8}", k.claimed.lon_deg))
            .unwrap_or_default(),
        claim
            .map(|k| k.source.as_str().to_owned())
            .unwrap_or_default(),
        claim
            .map(|k| format!("{:.3}", k.top1_distance_km))
            .unwrap_or_default(),
        claim
            .map(|k| format!("{:.6}", k.probability_within_25_km))
            .unwrap_or_default(),
        claim
            .map(|k| format!("{:.6}", k.probability_within_200_km))
            .unwrap_or_default(),
        point.is_estimate().to_string(),
        r.provenance.model.clone(),
        r.provenance.backbone.clone(),
        r.provenance.weights_sha256.clone(),
        r.provenance.gallery_sha256.clone(),
        r.estimated_at.clone(),
        r.within
            .as_ref()
            .map(|w| w.spec.clone())
            .unwrap_or_default(),
        r.within
            .as_ref()
            .map(|w| format!("{:.6}", w.share_inside))
            .unwrap_or_default(),
        r.location_source.review_label().to_owned(),
        point.kind_str().to_owned(),
        point
            .refined_similarity()
            .map(|s| format!("{s:.6}"))
            .unwrap_or_default(),
        if r.group.is_empty() {
            String::new()
        } else {
            r.group.len().to_string()
        },
        origin.as_str().to_owned(),
        origin.describe(),
    ];
    fields.extend(OriginField::ALL.into_iter().map(detail));
    fields
}

/// The CSV document for `records` (header + one row per point, [`CSV_LINE_END`] line ends), with the
/// photos' paths as the records hold them (files are written by [`super::write_export`], which
/// writes them as the user chose).
pub fn render_csv(records: &[ExportRecord], set: PointSet) -> String {
    ExportFormat::Csv.render(records, set, &PhotoPaths::as_recorded())
}

/// The header row.
pub(super) fn header() -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str(CSV_LINE_END);
    out
}

/// One photo's rows.
pub(super) fn push_record(
    out: &mut String,
    record: &ExportRecord,
    set: PointSet,
    paths: &PhotoPaths,
) {
    for point in points(std::slice::from_ref(record), set) {
        let fields: Vec<String> = row(&point, paths).iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str(CSV_LINE_END);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every format says whether a person reviewed the location (issue 9: an unreviewed top-1
    /// written anywhere is labelled as an estimate).
    #[test]
    fn every_format_says_accepted_or_estimate_unreviewed() {
        use crate::domain::Candidate;
        use crate::geo::LatLon;
        let candidates = [Candidate {
            rank: 1,
            gallery_index: 7,
            position: LatLon::new(21.97, -159.37),
            probability: 0.4,
            refined: None,
        }];
        let record = |accepted| {
            ExportRecord::new(
                std::path::Path::new("/nowhere/a.jpg"),
                &candidates,
                Default::default(),
                "2026-11-30T00:00:00Z".into(),
                accepted,
                None,
            )
            .unwrap()
        };
        let records = [record(None), record(Some(LatLon::new(10.0, 20.0)))];
        let csv = render_csv(&records, PointSet::Chosen);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].contains(
            ",within,within_share_inside,review,point_kind,refined_similarity,group_size,origin,"
        ));
        // The top-1 is a gallery point; the accepted location was placed by the user; no
        // region.
        assert!(
            lines[1].contains(",,,estimate (unreviewed),gallery,,,estimate,"),
            "{csv}"
        );
        assert!(lines[2].contains(",,,accepted,,,,hand,"), "{csv}");
        let gpx = super::super::gpx::render_gpx(&records, PointSet::Chosen);
        assert!(gpx.contains(":review>estimate (unreviewed)</"), "{gpx}");
        assert!(gpx.contains(":review>accepted</"), "{gpx}");
        let geojson =
            ExportFormat::GeoJson.render(&records, PointSet::Chosen, &PhotoPaths::as_recorded());
        assert!(
            geojson.contains("\"review\": \"estimate (unreviewed)\""),
            "{geojson}"
        );
        let xmp = super::super::xmp::sidecar_properties(&records[0]);
        assert!(
            xmp.iter()
                .any(|(_, name, value)| *name == "Review" && value == "estimate (unreviewed)")
        );
    }

    /// Every row ends in CRLF (RFC 4180, Excel), on every system; a line break inside a field
    /// stays inside its quotes and ends no row.
    #[test]
    fn rows_end_in_crlf_and_a_field_keeps_its_line_break() {
        use crate::domain::Candidate;
        use crate::geo::LatLon;
        let candidates = [Candidate {
            rank: 1,
            gallery_index: 7,
            position: LatLon::new(21.97, -159.37),
            probability: 0.4,
            refined: None,
        }];
        let record = ExportRecord::new(
            std::path::Path::new("/nowhere/a.jpg"),
            &candidates,
            Default::default(),
            "first line\nsecond line".into(),
            None,
            None,
        )
        .unwrap();
        let csv = render_csv(&[record.clone(), record], PointSet::Chosen);
        assert!(csv.ends_with(CSV_LINE_END), "{csv:?}");
        let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
        assert_eq!(rows.len(), 3, "{csv:?}");
        for row in &rows[1..] {
            assert!(row.contains(",\"first line\nsecond line\","), "{row:?}");
        }
        // The only bare line feeds are the two inside the quoted fields.
        assert_eq!(csv.matches('\n').count(), 3 + 2, "{csv:?}");
        assert_eq!(csv_field("a\r\nb"), "\"a\r\nb\"");
    }

    #[test]
    fn quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    /// A refined top-1 is exported at its refined point and says so in every format; with all
    /// candidates, its gallery point is written too, marked `gallery`.
    #[test]
    fn refined_points_are_marked_in_every_format() {
        use crate::domain::{Candidate, PointKind, RefinedPoint};
        use crate::geo::LatLon;
        let gallery = LatLon::new(21.97, -159.37);
        let refined = LatLon::new(21.99, -159.35);
        let candidates = [Candidate {
            rank: 1,
            gallery_index: 7,
            position: gallery,
            probability: 0.4,
            refined: Some(RefinedPoint {
                position: refined,
                logit: 30.0,
                similarity: 0.25,
            }),
        }];
        let record = ExportRecord::new(
            std::path::Path::new("/nowhere/a.jpg"),
            &candidates,
            Default::default(),
            "2026-11-30T00:00:00Z".into(),
            None,
            None,
        )
        .unwrap();
        assert_eq!(record.location, refined);
        assert_eq!(record.location_kind, Some(PointKind::Refined));
        let records = [record];
        let csv = render_csv(&records, PointSet::AllCandidates);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[1].contains(",21.99000000,-159.35000000,"), "{csv}");
        assert!(lines[1].contains(",refined,0.250000,,estimate,"), "{csv}");
        assert!(lines[2].starts_with("a.jpg #1,"), "{csv}");
        assert!(lines[2].contains(",21.97000000,-159.37000000,"), "{csv}");
        assert!(lines[2].contains(",gallery,,,estimate,"), "{csv}");
        let gpx = super::super::gpx::render_gpx(&records, PointSet::Chosen);
        assert!(gpx.contains(":pointKind>refined</"), "{gpx}");
        assert!(gpx.contains(":refinedSimilarity>0.250000</"), "{gpx}");
        assert!(gpx.contains("refined point (similarity 0.250000)"), "{gpx}");
        let geojson = ExportFormat::GeoJson.render(
            &records,
            PointSet::AllCandidates,
            &PhotoPaths::as_recorded(),
        );
        assert!(geojson.contains("\"point_kind\": \"refined\""), "{geojson}");
        assert!(geojson.contains("\"point_kind\": \"gallery\""), "{geojson}");
        let xmp = super::super::xmp::sidecar_properties(&records[0]);
        assert!(
            xmp.iter()
                .any(|(_, name, value)| *name == "PointKind" && value == "refined"),
            "{xmp:?}"
        );
        assert!(
            xmp.iter()
                .any(|(_, name, value)| *name == "RefinedSimilarity" && value == "0.250000")
        );
        // Accepting the refined point keeps it marked refined.
        let accepted = ExportRecord::new(
            std::path::Path::new("/nowhere/a.jpg"),
            &candidates,
            Default::default(),
            "2026-11-30T00:00:00Z".into(),
            Some(refined),
            None,
        )
        .unwrap();
        assert_eq!(accepted.location_kind, Some(PointKind::Refined));
        assert_eq!(accepted.chosen_candidate().map(|c| c.rank), Some(1));
    }
}
