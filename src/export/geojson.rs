//! GeoJSON (RFC 7946): a `FeatureCollection` of `Point`s. Positions are
//! `[longitude, latitude]` (RFC 7946 section 3.1.1), WGS 84, no `crs` member. The photo's path
//! is the `photo` property, with `photo_bytes_hex` beside it when the path isn't plain text
//! (see [`super::paths`]). `is_estimate` is `true` only for an estimate from the photo's
//! pixels; `origin` says where the location came from (its kind and details), and a track's
//! altitude is the position's third element.

use serde_json::{Value, json};

use crate::domain::{Origin, format_offset};

use super::{ExportFormat, ExportPoint, ExportRecord, PhotoPaths, PointSet, points};

fn feature(point: &ExportPoint<'_>, paths: &PhotoPaths) -> Value {
    let r = point.record;
    // The evidence record, with when the estimate was made (as GPX and CSV carry it).
    let mut provenance = json!(r.provenance);
    provenance["estimated_at"] = json!(r.estimated_at);
    let photo = paths.text(&r.path);
    let mut properties = json!({
        "name": point.name,
        "photo": photo.text,
        "role": point.role,
        "is_estimate": point.is_estimate(),
        "review": r.location_source.review_label(),
        "lat_deg": point.position.lat_deg,
        "lon_deg": point.position.lon_deg,
        "taken_at": r.taken_at.as_ref().map(|t| t.local_with_offset()),
        "description": point.description(),
        "provenance": provenance,
    });
    properties["origin"] = origin_value(point.origin());
    if let Some(hex) = photo.bytes_hex {
        properties["photo_bytes_hex"] = json!(hex);
    }
    if point.kind.is_some() {
        properties["point_kind"] = json!(point.kind_str());
    }
    if let Some(similarity) = point.refined_similarity() {
        properties["refined_similarity"] = json!(similarity);
    }
    if !r.group.is_empty() {
        // Located together with the group's other photos: the candidates are the group's.
        properties["group_size"] = json!(r.group.len());
    }
    if let Some(c) = point.candidate {
        properties["rank"] = json!(c.rank);
        properties["probability"] = json!(c.probability);
        properties["gallery_index"] = json!(c.gallery_index);
    }
    if let Some(p) = point.place {
        properties["place"] = json!(p.name);
        properties["region"] = json!(p.region);
        properties["country_code"] = json!(p.country_code);
        properties["country"] = json!(p.country);
        properties["place_distance_km"] = json!(p.distance_km);
    }
    if let Some(claim) = &r.claim {
        properties["claim"] = json!(claim);
    }
    if let Some(within) = &r.within {
        properties["within"] = json!(within);
    }
    if !r.other_claims.is_empty() {
        properties["other_claims"] = json!(r.other_claims);
    }
    // RFC 7946: longitude first; a track's altitude is the optional third element (metres).
    let mut coordinates = vec![point.position.lon_deg, point.position.lat_deg];
    coordinates.extend(point.altitude_m());
    json!({
        "type": "Feature",
        "geometry": {
            "type": "Point",
            "coordinates": coordinates,
        },
        "properties": properties,
    })
}

/// The `origin` property: the tagged form the store keeps (`{"kind": "track", "track": ...,
/// "offset_secs": ..., "altitude_m": ...}`), with `description` (one line for people) and, for
/// a track, `clock_offset` as `+H:MM:SS`.
fn origin_value(origin: &Origin) -> Value {
    let mut value = json!(origin);
    value["description"] = json!(origin.describe());
    if let Origin::Track { offset_secs, .. } = origin {
        value["clock_offset"] = json!(format_offset(*offset_secs));
    }
    value
}

/// The GeoJSON `FeatureCollection` for `records`, with the photos' paths as the records hold
/// them.
pub fn geojson_value(records: &[ExportRecord], set: PointSet) -> Value {
    let paths = PhotoPaths::as_recorded();
    json!({
        "type": "FeatureCollection",
        "features": points(records, set)
            .iter()
            .map(|p| feature(p, &paths))
            .collect::<Vec<_>>(),
    })
}

/// [`geojson_value`] as pretty-printed text with a final newline (files are written by
/// [`super::write_export`], which writes the paths as the user chose).
pub fn render_geojson(records: &[ExportRecord], set: PointSet) -> String {
    ExportFormat::GeoJson.render(records, set, &PhotoPaths::as_recorded())
}

/// Everything before the first feature; the text is what `serde_json`'s pretty printer writes
/// for the whole collection, written feature by feature.
pub(super) const HEADER: &str = "{\n  \"type\": \"FeatureCollection\",\n  \"features\": [";

/// One photo's features; `features_before` counts the features written so far.
pub(super) fn push_record(
    out: &mut String,
    record: &ExportRecord,
    set: PointSet,
    paths: &PhotoPaths,
    features_before: &mut usize,
) {
    for point in points(std::slice::from_ref(record), set) {
        if *features_before > 0 {
            out.push(',');
        }
        out.push('\n');
        super::push_indented(out, &feature(&point, paths), 4);
        *features_before += 1;
    }
}

/// Everything after the last feature.
pub(super) fn footer(features: usize) -> &'static str {
    if features == 0 {
        "]\n}\n"
    } else {
        "\n  ]\n}\n"
    }
}
