//! XMP sidecars, as darktable, digiKam and Lightroom read them.
//!
//! The sidecar carries `exif:GPSLatitude`/`exif:GPSLongitude` in XMP's `DDD,MM.mmmmmmmmk` form
//! (XMP Specification Part 2, "GPSCoordinate"), `exif:GPSMapDatum`, and the estimate's
//! provenance in our namespace ([`GEOLOUPE_NS`]): that it is an estimate, not a GPS fix, the
//! rank and probability, the model and gallery hashes, and when it was made.
//!
//! An existing sidecar is merged, not replaced: it is parsed and written back event by event,
//! only our properties (those four `exif:` GPS properties and everything in our namespace) are
//! removed and written again; every other tool's tags, comments and layout survive. A sidecar
//! that isn't well-formed XMP is left alone with an error.

use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};

use super::{
    ExportError, ExportRecord, GEOLOUPE_NS, GEOLOUPE_PREFIX, PlannedWrite, WriteAction, parent_dir,
    write_atomic_with,
};

/// The RDF namespace.
pub const RDF_NS: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
/// The XMP EXIF namespace (`exif:`).
pub const EXIF_NS: &str = "http://ns.adobe.com/exif/1.0/";
/// The `exif:` properties we own (replaced on every write).
const OUR_EXIF_PROPERTIES: &[&str] =
    &["GPSLatitude", "GPSLongitude", "GPSMapDatum", "GPSVersionID"];

/// How sidecars are named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SidecarStyle {
    /// `photo.jpg.xmp` (darktable, digiKam's default).
    #[default]
    AppendXmp,
    /// `photo.xmp` (Lightroom, Capture One).
    ReplaceExtension,
}

/// The sidecar path of `photo` in `style`.
pub fn sidecar_path(photo: &Path, style: SidecarStyle) -> PathBuf {
    match style {
        SidecarStyle::AppendXmp => {
            let mut name = photo.as_os_str().to_owned();
            name.push(".xmp");
            PathBuf::from(name)
        }
        SidecarStyle::ReplaceExtension => photo.with_extension("xmp"),
    }
}

/// An XMP GPSCoordinate: `DDD,MM.mmmmmmmmk` with `k` the hemisphere letter. Eight decimals of
/// minutes keep about 2e-9 degrees.
pub fn xmp_gps_coordinate(value_deg: f64, positive: char, negative: char) -> String {
    let hemisphere = if value_deg < 0.0 { negative } else { positive };
    let total_minutes = (value_deg.abs() * 60.0 * 1e8).round() / 1e8;
    let degrees = (total_minutes / 60.0).floor();
    let minutes = total_minutes - degrees * 60.0;
    format!("{degrees:.0},{minutes:011.8}{hemisphere}")
}

/// Parses an XMP GPSCoordinate (`DDD,MM.mmk` or `DDD,MM,SSk`) back to signed degrees.
pub fn parse_xmp_gps_coordinate(text: &str) -> Option<f64> {
    let text = text.trim();
    let hemisphere = text.chars().last()?;
    let sign = match hemisphere.to_ascii_uppercase() {
        'N' | 'E' => 1.0,
        'S' | 'W' => -1.0,
        _ => return None,
    };
    let body = &text[..text.len() - hemisphere.len_utf8()];
    let parts: Vec<f64> = body
        .split(',')
        .map(|p| p.trim().parse::<f64>().ok())
        .collect::<Option<_>>()?;
    let degrees = match parts.as_slice() {
        [d, m] => d + m / 60.0,
        [d, m, s] => d + m / 60.0 + s / 3600.0,
        _ => return None,
    };
    Some(sign * degrees)
}

/// Our properties for `record`: (namespace, local name, value).
pub fn sidecar_properties(record: &ExportRecord) -> Vec<(&'static str, &'static str, String)> {
    let mut props = vec![
        (
            EXIF_NS,
            "GPSLatitude",
            xmp_gps_coordinate(record.location.lat_deg, 'N', 'S'),
        ),
        (
            EXIF_NS,
            "GPSLongitude",
            xmp_gps_coordinate(record.location.lon_deg, 'E', 'W'),
        ),
        (EXIF_NS, "GPSMapDatum", "WGS-84".to_owned()),
        (GEOLOUPE_NS, "IsEstimate", "True".to_owned()),
        (
            GEOLOUPE_NS,
            "Source",
            record.location_source.as_str().to_owned(),
        ),
        (
            GEOLOUPE_NS,
            "Review",
            record.location_source.review_label().to_owned(),
        ),
    ];
    if let Some(c) = record.chosen_candidate() {
        props.push((GEOLOUPE_NS, "Rank", c.rank.to_string()));
        props.push((GEOLOUPE_NS, "Probability", format!("{:.8}", c.probability)));
        props.push((GEOLOUPE_NS, "GalleryIndex", c.gallery_index.to_string()));
    }
    let prov = &record.provenance;
    props.push((GEOLOUPE_NS, "Model", prov.model.clone()));
    props.push((GEOLOUPE_NS, "Backbone", prov.backbone.clone()));
    props.push((GEOLOUPE_NS, "WeightsSha256", prov.weights_sha256.clone()));
    props.push((GEOLOUPE_NS, "GallerySha256", prov.gallery_sha256.clone()));
    props.push((GEOLOUPE_NS, "EstimatedAt", record.estimated_at.clone()));
    if let Some(place) = &record.place {
        props.push((GEOLOUPE_NS, "Place", place.label()));
        props.push((GEOLOUPE_NS, "CountryCode", place.country_code.clone()));
    }
    if let Some(claim) = &record.claim {
        props.push((
            GEOLOUPE_NS,
            "ClaimedLatitude",
            format!("{:.8}", claim.claimed.lat_deg),
        ));
        props.push((
            GEOLOUPE_NS,
            "ClaimedLongitude",
            format!("{:.8}", claim.claimed.lon_deg),
        ));
        props.push((GEOLOUPE_NS, "ClaimSource", claim.source.as_str().to_owned()));
        props.push((
            GEOLOUPE_NS,
            "ClaimTop1DistanceKm",
            format!("{:.3}", claim.top1_distance_km),
        ));
        props.push((
            GEOLOUPE_NS,
            "ClaimProbabilityWithin25Km",
            format!("{:.6}", claim.probability_within_25_km),
        ));
        props.push((
            GEOLOUPE_NS,
            "ClaimProbabilityWithin200Km",
            format!("{:.6}", claim.probability_within_200_km),
        ));
    }
    props
}

/// A new, empty XMP packet.
fn empty_packet() -> String {
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"geoloupe {}\">\n \
         <rdf:RDF xmlns:rdf=\"{RDF_NS}\">\n  \
         <rdf:Description rdf:about=\"\"/>\n \
         </rdf:RDF>\n\
         </x:xmpmeta>\n\
         <?xpacket end=\"w\"?>\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Namespace scopes while streaming.
struct Scopes(Vec<Vec<(String, String)>>);

impl Scopes {
    fn resolve(&self, prefix: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }

    fn prefix_for(&self, uri: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|(p, u)| u == uri && self.resolve(p) == Some(uri))
            .map(|(p, _)| p.as_str())
    }
}

fn split_qname(name: &str) -> (&str, &str) {
    name.split_once(':').unwrap_or(("", name))
}

fn declarations(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| err.to_string())?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, e.decoder())
            .map_err(|err| err.to_string())?;
        if key == "xmlns" {
            out.push((String::new(), value.into_owned()));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            out.push((prefix.to_owned(), value.into_owned()));
        }
    }
    Ok(out)
}

fn is_ours(scopes: &Scopes, qname: &str, is_attribute: bool) -> bool {
    let (prefix, local) = split_qname(qname);
    if is_attribute && prefix.is_empty() {
        return false;
    }
    match scopes.resolve(prefix) {
        Some(EXIF_NS) => OUR_EXIF_PROPERTIES.contains(&local),
        Some(GEOLOUPE_NS) => true,
        _ => false,
    }
}

/// The prefix to use for `uri` on an element: an in-scope one, else `preferred` declared
/// there (or a variant if `preferred` is bound to something else).
fn choose_prefix(
    scopes: &Scopes,
    uri: &str,
    preferred: &str,
    declare: &mut Vec<(String, String)>,
) -> String {
    if let Some(p) = scopes.prefix_for(uri).filter(|p| !p.is_empty()) {
        return p.to_owned();
    }
    let mut candidate = preferred.to_owned();
    let mut n = 1;
    while scopes.resolve(&candidate).is_some() {
        candidate = format!("{preferred}{n}");
        n += 1;
    }
    declare.push((candidate.clone(), uri.to_owned()));
    candidate
}

/// Rewrites one `rdf:Description` start tag: our attributes dropped; with `props`, the
/// namespaces declared and our properties added as attributes.
fn rewrite_description(
    e: &BytesStart<'_>,
    scopes: &Scopes,
    props: Option<&[(&'static str, &'static str, String)]>,
) -> Result<BytesStart<'static>, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut out = BytesStart::new(name);
    for attr in e.attributes() {
        let attr = attr.map_err(|err| err.to_string())?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        if is_ours(scopes, &key, true) {
            continue;
        }
        out.push_attribute(attr);
    }
    if let Some(props) = props {
        let mut declare = Vec::new();
        let exif = choose_prefix(scopes, EXIF_NS, "exif", &mut declare);
        let ours = choose_prefix(scopes, GEOLOUPE_NS, GEOLOUPE_PREFIX, &mut declare);
        for (prefix, uri) in &declare {
            out.push_attribute((format!("xmlns:{prefix}").as_str(), uri.as_str()));
        }
        for (ns, local, value) in props {
            let prefix = if *ns == EXIF_NS { &exif } else { &ours };
            out.push_attribute((format!("{prefix}:{local}").as_str(), value.as_str()));
        }
    }
    Ok(out)
}

/// Merges our properties for `record` into `existing` (a sidecar's text), or into a new packet.
/// Returns the new text, or why the existing text can't be merged.
pub fn merge_sidecar(existing: Option<&str>, record: &ExportRecord) -> Result<String, String> {
    let fresh;
    let text = match existing {
        Some(t) if !t.trim().is_empty() => t,
        _ => {
            fresh = empty_packet();
            &fresh
        }
    };
    let props = sidecar_properties(record);
    let mut reader = quick_xml::Reader::from_str(text);
    let mut writer = quick_xml::Writer::new(Vec::new());
    let mut scopes = Scopes(Vec::new());
    let mut skip_depth = 0usize;
    let mut inserted = false;
    let mut saw_rdf = false;
    let write = |w: &mut quick_xml::Writer<Vec<u8>>, ev: Event<'_>| {
        w.write_event(ev).map_err(|err| err.to_string())
    };
    loop {
        let event = reader.read_event().map_err(|err| err.to_string())?;
        if skip_depth > 0 {
            match event {
                Event::Start(_) => {
                    skip_depth += 1;
                    scopes.0.push(Vec::new());
                }
                Event::End(_) => {
                    skip_depth -= 1;
                    scopes.0.pop();
                }
                Event::Eof => return Err("unexpected end of file".into()),
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                scopes.0.push(declarations(e)?);
                let qname = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let (prefix, local) = split_qname(&qname);
                let ns = scopes.resolve(prefix).unwrap_or("").to_owned();
                if ns == RDF_NS && local == "RDF" {
                    saw_rdf = true;
                }
                if is_ours(&scopes, &qname, false) {
                    if is_empty {
                        scopes.0.pop();
                    } else {
                        skip_depth = 1;
                    }
                    continue;
                }
                let start = if ns == RDF_NS && local == "Description" {
                    let add = (!inserted).then_some(props.as_slice());
                    inserted = true;
                    rewrite_description(e, &scopes, add)?
                } else {
                    e.clone()
                };
                if is_empty {
                    write(&mut writer, Event::Empty(start))?;
                    scopes.0.pop();
                } else {
                    write(&mut writer, Event::Start(start))?;
                }
            }
            Event::End(e) => {
                let qname = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let (prefix, local) = split_qname(&qname);
                if !inserted && scopes.resolve(prefix) == Some(RDF_NS) && local == "RDF" {
                    let rdf = prefix.to_owned();
                    let description = BytesStart::new(format!("{rdf}:Description"))
                        .with_attributes([(format!("{rdf}:about").as_str(), "")]);
                    let rewritten = rewrite_description(&description, &scopes, Some(&props))?;
                    write(&mut writer, Event::Empty(rewritten))?;
                    inserted = true;
                }
                scopes.0.pop();
                write(&mut writer, Event::End(e))?;
            }
            Event::Eof => break,
            other => write(&mut writer, other)?,
        }
    }
    if !saw_rdf || !inserted {
        return Err("no rdf:RDF element".into());
    }
    String::from_utf8(writer.into_inner()).map_err(|err| err.to_string())
}

fn planned(record: &ExportRecord, style: SidecarStyle) -> PlannedWrite {
    let path = sidecar_path(&record.path, style);
    if let Some(reason) = super::gps_skip(record) {
        return PlannedWrite::skip(path, reason);
    }
    let action = if path.exists() {
        WriteAction::MergeSidecar
    } else {
        WriteAction::CreateSidecar
    };
    PlannedWrite {
        detail: format!(
            "XMP GPS {:.6}, {:.6} ({}), estimate provenance",
            record.location.lat_deg,
            record.location.lon_deg,
            record.location_source.review_label()
        ),
        path,
        action,
    }
}

/// What [`write_sidecars`] would write (the dry run); touches nothing. Photos with a GPS fix of
/// their own and no accepted location are skipped, and so are photos whose EXIF GPS is invalid
/// unless the record says to overwrite it ([`ExportRecord::overwrite_invalid_gps`]).
pub fn plan_sidecars(records: &[ExportRecord], style: SidecarStyle) -> Vec<PlannedWrite> {
    records.iter().map(|r| planned(r, style)).collect()
}

/// Writes (or merges into) the sidecar of one photo, atomically (always: the caller decided).
pub fn write_sidecar(
    record: &ExportRecord,
    style: SidecarStyle,
) -> Result<PlannedWrite, ExportError> {
    let path = &sidecar_path(&record.path, style);
    let plan = PlannedWrite {
        action: if path.exists() {
            WriteAction::MergedSidecar
        } else {
            WriteAction::CreatedSidecar
        },
        ..planned(record, style)
    };
    let (existing, permissions) = match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| ExportError::BadSidecar {
                reason: "not UTF-8".into(),
                path: path.clone(),
            })?;
            let permissions = std::fs::metadata(path).ok().map(|m| m.permissions());
            (Some(text), permissions)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(e) => return Err(ExportError::io("read the sidecar", path)(e)),
    };
    if permissions.as_ref().is_some_and(|p| p.readonly()) {
        return Err(ExportError::ReadOnlyFile { path: path.clone() });
    }
    super::check_writable_folder(parent_dir(path))?;
    let merged =
        merge_sidecar(existing.as_deref(), record).map_err(|reason| ExportError::BadSidecar {
            reason,
            path: path.clone(),
        })?;
    write_atomic_with(path, permissions, |w| w.write_all(merged.as_bytes()))?;
    Ok(plan)
}

/// Writes every record's sidecar as [`plan_sidecars`] lists them (skips included); one result
/// per record (a failure doesn't stop the others).
pub fn write_sidecars(
    records: &[ExportRecord],
    style: SidecarStyle,
) -> Vec<Result<PlannedWrite, ExportError>> {
    records
        .iter()
        .map(|r| {
            let plan = planned(r, style);
            if plan.action.is_skip() {
                Ok(plan)
            } else {
                write_sidecar(r, style)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_coordinate_form() {
        assert_eq!(xmp_gps_coordinate(21.5, 'N', 'S'), "21,30.00000000N");
        assert_eq!(xmp_gps_coordinate(-159.25, 'E', 'W'), "159,15.00000000W");
        assert_eq!(xmp_gps_coordinate(0.0, 'N', 'S'), "0,00.00000000N");
        // Rounding up to a full degree carries.
        assert_eq!(
            xmp_gps_coordinate(10.999_999_999_99, 'N', 'S'),
            "11,00.00000000N"
        );
        for v in [48.856_613_9, -33.867_851_2, 179.999_999_9, -0.000_001] {
            let text = xmp_gps_coordinate(v, 'E', 'W');
            let back = parse_xmp_gps_coordinate(&text).unwrap();
            assert!((back - v).abs() < 1e-8, "{v} -> {text} -> {back}");
        }
        assert_eq!(
            parse_xmp_gps_coordinate("10,30,30S"),
            Some(-(10.0 + 30.5 / 60.0))
        );
    }

    #[test]
    fn sidecar_names() {
        let p = Path::new("/photos/IMG_1.JPG");
        assert_eq!(
            sidecar_path(p, SidecarStyle::AppendXmp),
            Path::new("/photos/IMG_1.JPG.xmp")
        );
        assert_eq!(
            sidecar_path(p, SidecarStyle::ReplaceExtension),
            Path::new("/photos/IMG_1.xmp")
        );
    }
}
