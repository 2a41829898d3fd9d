//! GeoJSON (RFC 7946): a `FeatureCollection` of `Point`s. Positions are
//! `[longitude, latitude]` (RFC 7946 section 3.1.1), WGS 84, no `crs` member.

use serde_json::{Value, json};

use super::{ExportPoint, ExportRecord, PointSet, points};

fn feature(point: &ExportPoint<'_>) -> Value {
    let r = point.record;
    // The evidence record, with when the estimate was made (as GPX and CSV carry it).
    let mut provenance = json!(r.provenance);
    provenance["estimated_at"] = json!(r.estimated_at);
    let mut properties = json!({
        "name": point.name,
        "photo": r.path.display().to_string(),
        "role": point.role,
        "is_estimate": true,
        "lat_deg": point.position.lat_deg,
        "lon_deg": point.position.lon_deg,
        "taken_at": r.taken_at.as_ref().map(|t| t.local_with_offset()),
        "description": point.description(),
        "provenance": provenance,
    });
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
    json!({
        "type": "Feature",
        // RFC 7946: longitude first.
        "geometry": {
            "type": "Point",
            "coordinates": [point.position.lon_deg, point.position.lat_deg],
        },
        "properties": properties,
    })
}

/// The GeoJSON `FeatureCollection` for `records`.
pub fn geojson_value(records: &[ExportRecord], set: PointSet) -> Value {
    json!({
        "type": "FeatureCollection",
        "features": points(records, set).iter().map(feature).collect::<Vec<_>>(),
    })
}

/// [`geojson_value`] as pretty-printed text with a final newline.
pub fn render_geojson(records: &[ExportRecord], set: PointSet) -> String {
    let mut text = serde_json::to_string_pretty(&geojson_value(records, set)).unwrap_or_default();
    text.push('\n');
    text
}
