//! GPX 1.1 (<https://www.topografix.com/GPX/1/1/>): one waypoint per point, `name` = the
//! photo's file name, `time` = when it was taken, in UTC with `Z` as GPX requires, `desc` =
//! rank, probability and place, and the estimate's provenance and the photo's path
//! (`geoloupe:photo`, plus `geoloupe:photoBytesHex` when the path isn't plain text: see
//! [`super::paths`]) under `<extensions>` in our namespace.
//!
//! The camera's local time (EXIF DateTimeOriginal) becomes UTC with its OffsetTimeOriginal.
//! Without an offset it can't be converted honestly (guessing would shift it by hours), so the
//! waypoint has no `<time>`; the local time is kept as `geoloupe:takenAtLocal` (with the
//! offset when known, as in the CSV and GeoJSON `taken_at`).
//!
//! Where each location came from: `<src>` (`geoloupe estimate`, `geoloupe trip`,
//! `geoloupe track`, `geoloupe neighbour`, `geoloupe hand`), `geoloupe:estimate` (`true` only
//! for an estimate from the photo's pixels), `geoloupe:origin` with its details
//! (`geoloupe:track`, `geoloupe:clockOffset`, ...), and `<ele>` from a track's altitude.
//!
//! Written by hand (the `gpx` crate can't write `<extensions>`); every text is XML-escaped and
//! the element order follows the GPX 1.1 schema (`time` before `name`, `extensions` last).

use std::fmt::Write as _;

use super::{
    ExportFormat, ExportPoint, ExportRecord, GEOLOUPE_NS, GEOLOUPE_PREFIX, PhotoPaths, PointSet,
    TakenAt, origin_fields, origin_source, points, xml_escape,
};
use crate::geo::PLACES_ATTRIBUTION;

/// The GPX document for `records`, with the photos' paths as the records hold them (files are
/// written by [`super::write_export`], which writes them as the user chose).
pub fn render_gpx(records: &[ExportRecord], set: PointSet) -> String {
    ExportFormat::Gpx.render(records, set, &PhotoPaths::as_recorded())
}

/// Everything before the first waypoint.
pub(super) fn header() -> String {
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<gpx version=\"1.1\" creator=\"geoloupe {}\" xmlns=\"http://www.topografix.com/GPX/1/1\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:{GEOLOUPE_PREFIX}=\"{GEOLOUPE_NS}\" \
         xsi:schemaLocation=\"http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd\">",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        out,
        "  <metadata>\n    <desc>{}</desc>\n    <time>{}</time>\n  </metadata>",
        xml_escape(&format!(
            "Photo locations from geoloupe: estimates by {} unless a waypoint's src says \
             otherwise (geoloupe track or neighbour: GPS positions; geoloupe hand: placed by \
             hand). {PLACES_ATTRIBUTION}",
            super::MODEL_NAME
        )),
        super::utc_now_rfc3339()
    );
    out
}

/// One photo's waypoints.
pub(super) fn push_record(
    out: &mut String,
    record: &ExportRecord,
    set: PointSet,
    paths: &PhotoPaths,
) {
    for point in points(std::slice::from_ref(record), set) {
        write_waypoint(out, &point, paths);
    }
}

/// Everything after the last waypoint.
pub(super) const FOOTER: &str = "</gpx>\n";

fn write_waypoint(out: &mut String, point: &ExportPoint<'_>, paths: &PhotoPaths) {
    let record = point.record;
    let _ = writeln!(
        out,
        "  <wpt lat=\"{:.8}\" lon=\"{:.8}\">",
        point.position.lat_deg, point.position.lon_deg
    );
    // GPX 1.1's order: ele, time, ..., name, cmt, desc, src, ..., type, extensions.
    if let Some(altitude) = point.altitude_m() {
        let _ = writeln!(out, "    <ele>{altitude}</ele>");
    }
    if let Some(utc) = record.taken_at.as_ref().and_then(TakenAt::utc_rfc3339) {
        let _ = writeln!(out, "    <time>{}</time>", xml_escape(&utc));
    }
    let _ = writeln!(out, "    <name>{}</name>", xml_escape(&point.name));
    let _ = writeln!(out, "    <desc>{}</desc>", xml_escape(&point.description()));
    let origin = point.origin();
    let _ = writeln!(out, "    <src>{}</src>", origin_source(origin));
    let _ = writeln!(out, "    <type>{}</type>", point.role);
    out.push_str("    <extensions>\n");
    let p = GEOLOUPE_PREFIX;
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "      <{p}:{name}>{}</{p}:{name}>", xml_escape(value));
    };
    field(
        "estimate",
        if point.is_estimate() { "true" } else { "false" },
    );
    field("origin", origin.as_str());
    field("originDetail", &origin.describe());
    for (name, value) in origin_fields(origin) {
        field(name.gpx_name(), &value);
    }
    field("role", point.role);
    field("review", record.location_source.review_label());
    let photo = paths.text(&record.path);
    field("photo", &photo.text);
    if let Some(hex) = &photo.bytes_hex {
        field("photoBytesHex", hex);
    }
    if let Some(c) = point.candidate {
        field("rank", &c.rank.to_string());
        field("probability", &format!("{:.8}", c.probability));
        field("galleryIndex", &c.gallery_index.to_string());
    }
    if point.kind.is_some() {
        field("pointKind", point.kind_str());
    }
    if let Some(similarity) = point.refined_similarity() {
        field("refinedSimilarity", &format!("{similarity:.6}"));
    }
    if !record.group.is_empty() {
        field("groupSize", &record.group.len().to_string());
    }
    if let Some(place) = point.place {
        field("place", &place.name);
        field("region", &place.region);
        field("countryCode", &place.country_code);
        field("country", &place.country);
        field("placeDistanceKm", &format!("{:.3}", place.distance_km));
    }
    if let Some(claim) = &record.claim {
        field("claimedLat", &format!("{:.8}", claim.claimed.lat_deg));
        field("claimedLon", &format!("{:.8}", claim.claimed.lon_deg));
        field("claimSource", claim.source.as_str());
        field(
            "claimTop1DistanceKm",
            &format!("{:.3}", claim.top1_distance_km),
        );
        field(
            "claimProbabilityWithin25Km",
            &format!("{:.6}", claim.probability_within_25_km),
        );
        field(
            "claimProbabilityWithin200Km",
            &format!("{:.6}", claim.probability_within_200_km),
        );
    }
    let prov = &record.provenance;
    field("model", &prov.model);
    field("backbone", &prov.backbone);
    field("weightsSha256", &prov.weights_sha256);
    field("gallerySha256", &prov.gallery_sha256);
    field("estimatedAt", &record.estimated_at);
    if let Some(within) = &record.within {
        field("within", &within.spec);
        field("withinShareInside", &format!("{:.6}", within.share_inside));
    }
    if let Some(t) = &record.taken_at {
        field("takenAtLocal", &t.local_with_offset());
    }
    out.push_str("    </extensions>\n  </wpt>\n");
}
