//! XMP sidecars, as darktable, digiKam and Lightroom read them.
//!
//! The sidecar carries `exif:GPSLatitude`/`exif:GPSLongitude` in XMP's `DDD,MM.mmmmmmmmk` form
//! (XMP Specification Part 2, "GPSCoordinate"), `exif:GPSMapDatum`, and the location's
//! provenance in our namespace ([`GEOLOUPE_NS`]): where it came from (`geoloupe:Origin`:
//! `estimate`, `trip`, `track`, `neighbour` or `hand`; `OriginDetail` in words; its details
//! `Track`, `ClockOffset`, `ClockOffsetSeconds`, `AltitudeMetres`, `NeighbourPhoto`,
//! `NeighbourSeconds`, `TripMaxSpeedKmh`, `SinglePhotoLatitude`/`Longitude`), whether it is an
//! estimate from the photo's pixels (`IsEstimate`: `False` for a track's or a neighbouring
//! photo's GPS and for a position placed by hand), the rank and probability, the model and
//! gallery hashes, and when it was made. A position from a track also gets the track's
//! altitude (`exif:GPSAltitude`, `exif:GPSAltitudeRef`), replacing the sidecar's, as
//! `exiftool -geotag` does; other writes keep the sidecar's altitude unless it is one we wrote
//! with a track (recorded as `geoloupe:AltitudeMetres`), which goes with its position.
//!
//! With [`ExportRecord::iptc_location`] (the app sets it for accepted locations, the command
//! line with `--iptc-location`) the sidecar also carries the nearest place's names as digiKam
//! and Lightroom fill them: `photoshop:City`, `photoshop:State`, `photoshop:Country` and
//! `Iptc4xmpCore:CountryCode`. We record what we wrote (`geoloupe:IptcCity`, ...), so a later
//! write replaces only our own values: when the sidecar holds any of these four that differs
//! from our record (the user's, or another tool's), the four are left as they are and none is
//! written (a City of one place next to a Country of another would be worse than either).
//!
//! An existing sidecar is merged, not replaced: it is parsed and written back event by event,
//! only our properties (those four `exif:` GPS properties, everything in our namespace, and the
//! IPTC location when it is ours) are removed and written again; every other tool's tags,
//! comments and layout survive. A sidecar that isn't well-formed XMP is left alone with an
//! error.

use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};

use crate::domain::{Origin, PointKind};

use super::{
    ExportError, ExportRecord, GEOLOUPE_NS, GEOLOUPE_PREFIX, PlannedWrite, WriteAction,
    origin_altitude_m, origin_fields, parent_dir, write_atomic_with,
};

/// The RDF namespace.
pub const RDF_NS: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
/// The XMP EXIF namespace (`exif:`).
pub const EXIF_NS: &str = "http://ns.adobe.com/exif/1.0/";
/// The `exif:` properties we own (replaced on every write).
const OUR_EXIF_PROPERTIES: &[&str] =
    &["GPSLatitude", "GPSLongitude", "GPSMapDatum", "GPSVersionID"];
/// The `exif:` altitude properties, replaced by a position from a track only.
const ALTITUDE_PROPERTIES: &[&str] = &["GPSAltitude", "GPSAltitudeRef"];
/// Photoshop's namespace (`photoshop:City`, `photoshop:State`, `photoshop:Country`).
pub const PHOTOSHOP_NS: &str = "http://ns.adobe.com/photoshop/1.0/";
/// IPTC Core's namespace (`Iptc4xmpCore:CountryCode`).
pub const IPTC_CORE_NS: &str = "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/";
/// The IPTC location properties: namespace, local name, and the property in our namespace
/// that records the value we wrote.
const IPTC_LOCATION: [(&str, &str, &str); 4] = [
    (PHOTOSHOP_NS, "City", "IptcCity"),
    (PHOTOSHOP_NS, "State", "IptcState"),
    (PHOTOSHOP_NS, "Country", "IptcCountry"),
    (IPTC_CORE_NS, "CountryCode", "IptcCountryCode"),
];

/// The prefix we declare for a namespace that isn't in scope yet.
fn preferred_prefix(ns: &str) -> &'static str {
    match ns {
        EXIF_NS => "exif",
        PHOTOSHOP_NS => "photoshop",
        IPTC_CORE_NS => "Iptc4xmpCore",
        _ => GEOLOUPE_PREFIX,
    }
}

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

/// The IPTC location values for `record` (City, State, Country, CountryCode; `None` where the
/// place has no such name), or `None` when the record doesn't ask for them or has no place.
pub fn iptc_location_values(record: &ExportRecord) -> Option<[Option<String>; 4]> {
    let place = record.place.as_ref().filter(|_| record.iptc_location)?;
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    // `country` is the code itself when the name is unknown: no Country then.
    let country = (place.country != place.country_code)
        .then(|| non_empty(&place.country))
        .flatten();
    Some([
        non_empty(&place.name),
        non_empty(&place.region),
        country,
        non_empty(&place.country_code.to_ascii_uppercase()),
    ])
}

/// The IPTC location properties, with our record of them, for `values`.
fn iptc_properties(values: &[Option<String>; 4]) -> Vec<(&'static str, &'static str, String)> {
    let mut props = Vec::new();
    for ((ns, local, marker), value) in IPTC_LOCATION.iter().zip(values) {
        if let Some(value) = value {
            props.push((*ns, *local, value.clone()));
            props.push((GEOLOUPE_NS, *marker, value.clone()));
        }
    }
    props
}

/// Our properties for `record`: (namespace, local name, value). Without the IPTC location:
/// [`merge_sidecar`] adds it when the sidecar's own allows.
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
        (
            GEOLOUPE_NS,
            "IsEstimate",
            if record.origin.is_from_pixels() {
                "True"
            } else {
                "False"
            }
            .to_owned(),
        ),
        (GEOLOUPE_NS, "Origin", record.origin.as_str().to_owned()),
        (GEOLOUPE_NS, "OriginDetail", record.origin.describe()),
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
    for (field, value) in origin_fields(&record.origin) {
        props.push((GEOLOUPE_NS, field.xmp_name(), value));
    }
    if let Some(altitude) = origin_altitude_m(&record.origin) {
        // The track's altitude as EXIF has it: a rational in metres, and 0 above / 1 below
        // sea level.
        let (ref_value, rational) = altitude_xmp(altitude);
        props.insert(3, (EXIF_NS, "GPSAltitudeRef", ref_value));
        props.insert(3, (EXIF_NS, "GPSAltitude", rational));
    }
    if let Some(c) = record.chosen_candidate() {
        props.push((GEOLOUPE_NS, "Rank", c.rank.to_string()));
        props.push((GEOLOUPE_NS, "Probability", format!("{:.8}", c.probability)));
        props.push((GEOLOUPE_NS, "GalleryIndex", c.gallery_index.to_string()));
    }
    if let Some(kind) = record.location_kind {
        // Whether the written GPS is one of GeoCLIP's gallery points or a refined point.
        props.push((GEOLOUPE_NS, "PointKind", kind.as_str().to_owned()));
        if kind == PointKind::Refined
            && let Some(r) = record.chosen_candidate().and_then(|c| c.refined.as_ref())
        {
            props.push((
                GEOLOUPE_NS,
                "RefinedSimilarity",
                format!("{:.6}", r.similarity),
            ));
        }
    }
    if !record.group.is_empty() {
        // The location is a group's answer (photos located together).
        props.push((GEOLOUPE_NS, "GroupSize", record.group.len().to_string()));
    }
    let prov = &record.provenance;
    props.push((GEOLOUPE_NS, "Model", prov.model.clone()));
    props.push((GEOLOUPE_NS, "Backbone", prov.backbone.clone()));
    props.push((GEOLOUPE_NS, "WeightsSha256", prov.weights_sha256.clone()));
    props.push((GEOLOUPE_NS, "GallerySha256", prov.gallery_sha256.clone()));
    props.push((GEOLOUPE_NS, "EstimatedAt", record.estimated_at.clone()));
    if let Some(within) = &record.within {
        props.push((GEOLOUPE_NS, "Within", within.spec.clone()));
        props.push((
            GEOLOUPE_NS,
            "WithinShareInside",
            format!("{:.6}", within.share_inside),
        ));
    }
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

/// `exif:GPSAltitude` (a rational in millimetre steps, `12500/1000`) and
/// `exif:GPSAltitudeRef` (`0` above sea level, `1` below) for `altitude_m`.
fn altitude_xmp(altitude_m: f64) -> (String, String) {
    let millimetres = (altitude_m.abs() * 1000.0).round().min(f64::from(u32::MAX)) as u32;
    let below = altitude_m < 0.0 && millimetres > 0;
    (
        if below { "1" } else { "0" }.to_owned(),
        format!("{millimetres}/1000"),
    )
}

/// Whether a write of `record` into the sidecar `text` replaces its `exif:GPSAltitude` and
/// `exif:GPSAltitudeRef`: a position from a track replaces them (with the track's altitude, or
/// none), as `exiftool -geotag` does, and so does any write over an altitude we wrote
/// (recorded as `geoloupe:AltitudeMetres`: it belonged to our earlier position); otherwise the
/// sidecar's own altitude is kept.
fn replaces_altitude(record: &ExportRecord, text: &str) -> Result<bool, String> {
    if matches!(record.origin, Origin::Track { .. }) {
        return Ok(true);
    }
    has_our_property(text, super::OriginField::AltitudeM.xmp_name())
}

/// Whether the sidecar's text has `local` in our namespace, as an attribute or an element.
fn has_our_property(text: &str, local: &str) -> Result<bool, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut scopes = Scopes(Vec::new());
    let ours = |scopes: &Scopes, qname: &str| {
        let (prefix, name) = split_qname(qname);
        !prefix.is_empty() && name == local && scopes.resolve(prefix) == Some(GEOLOUPE_NS)
    };
    loop {
        let event = reader.read_event().map_err(|err| err.to_string())?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                scopes.0.push(declarations(e)?);
                let qname = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if ours(&scopes, &qname) {
                    return Ok(true);
                }
                for attr in e.attributes() {
                    let attr = attr.map_err(|err| err.to_string())?;
                    if ours(&scopes, &String::from_utf8_lossy(attr.key.as_ref())) {
                        return Ok(true);
                    }
                }
                if matches!(event, Event::Empty(_)) {
                    scopes.0.pop();
                }
            }
            Event::End(_) => {
                scopes.0.pop();
            }
            Event::Eof => return Ok(false),
            _ => {}
        }
    }
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

/// Which properties beyond our own namespace and [`OUR_EXIF_PROPERTIES`] a write replaces.
#[derive(Clone, Copy, Debug)]
struct Replaced {
    /// The IPTC location in this sidecar is ours (or absent), so it is replaced too.
    iptc: bool,
    /// The altitude is replaced ([`replaces_altitude`]).
    altitude: bool,
}

/// Whether `qname` (an element or attribute) is a property we replace.
fn is_ours(scopes: &Scopes, qname: &str, is_attribute: bool, replaced: Replaced) -> bool {
    let (prefix, local) = split_qname(qname);
    if is_attribute && prefix.is_empty() {
        return false;
    }
    let iptc_ours = replaced.iptc;
    match scopes.resolve(prefix) {
        Some(EXIF_NS) => {
            OUR_EXIF_PROPERTIES.contains(&local)
                || (replaced.altitude && ALTITUDE_PROPERTIES.contains(&local))
        }
        Some(GEOLOUPE_NS) => true,
        Some(ns) => {
            iptc_ours
                && IPTC_LOCATION
                    .iter()
                    .any(|(iptc_ns, name, _)| *iptc_ns == ns && *name == local)
        }
        None => false,
    }
}

/// Which IPTC location property (index into [`IPTC_LOCATION`]) `qname` is, or which of our
/// records of one: `(index, is_our_record)`.
fn iptc_property(scopes: &Scopes, qname: &str) -> Option<(usize, bool)> {
    let (prefix, local) = split_qname(qname);
    if prefix.is_empty() {
        return None;
    }
    let ns = scopes.resolve(prefix)?;
    IPTC_LOCATION
        .iter()
        .position(|(iptc_ns, name, _)| *iptc_ns == ns && *name == local)
        .map(|i| (i, false))
        .or_else(|| {
            (ns == GEOLOUPE_NS)
                .then(|| IPTC_LOCATION.iter().position(|(_, _, m)| *m == local))
                .flatten()
                .map(|i| (i, true))
        })
}

/// The IPTC location found in a sidecar: the values, and our records of what we wrote.
#[derive(Debug, Default, PartialEq, Eq)]
struct FoundIptc {
    values: [Option<String>; 4],
    ours: [Option<String>; 4],
}

impl FoundIptc {
    /// Every IPTC location value present is the one we recorded writing (or there is none).
    fn is_ours(&self) -> bool {
        self.values
            .iter()
            .zip(&self.ours)
            .all(|(value, ours)| value.is_none() || value == ours)
    }

    fn set(&mut self, (index, is_record): (usize, bool), value: String) {
        let slot = if is_record {
            &mut self.ours[index]
        } else {
            &mut self.values[index]
        };
        *slot = Some(value.trim().to_owned());
    }
}

/// Reads the IPTC location (as attributes or elements of any `rdf:Description`) and our records
/// of it from a sidecar's text.
fn find_iptc(text: &str) -> Result<FoundIptc, String> {
    let mut found = FoundIptc::default();
    let mut reader = quick_xml::Reader::from_str(text);
    let mut scopes = Scopes(Vec::new());
    // The property whose element text is being read, its depth and the text so far.
    let mut reading: Option<((usize, bool), usize, String)> = None;
    loop {
        let event = reader.read_event().map_err(|err| err.to_string())?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                scopes.0.push(declarations(e)?);
                for attr in e.attributes() {
                    let attr = attr.map_err(|err| err.to_string())?;
                    let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
                    if let Some(which) = iptc_property(&scopes, &key) {
                        let value = attr
                            .decoded_and_normalized_value(
                                quick_xml::XmlVersion::Implicit1_0,
                                e.decoder(),
                            )
                            .map_err(|err| err.to_string())?;
                        found.set(which, value.into_owned());
                    }
                }
                let qname = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if matches!(event, Event::Empty(_)) {
                    if let Some(which) = iptc_property(&scopes, &qname) {
                        found.set(which, String::new());
                    }
                    scopes.0.pop();
                } else if reading.is_none()
                    && let Some(which) = iptc_property(&scopes, &qname)
                {
                    reading = Some((which, scopes.0.len(), String::new()));
                }
            }
            Event::Text(ref t) => {
                if let Some((_, _, text)) = &mut reading {
                    text.push_str(
                        &t.xml_content(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|err| err.to_string())?,
                    );
                }
            }
            Event::CData(ref t) => {
                if let Some((_, _, text)) = &mut reading {
                    text.push_str(&t.decode().map_err(|err| err.to_string())?);
                }
            }
            Event::GeneralRef(ref r) => {
                if let Some((_, _, text)) = &mut reading {
                    let name = r.decode().map_err(|err| err.to_string())?;
                    let resolved = match name.as_ref() {
                        "amp" => "&".to_owned(),
                        "lt" => "<".to_owned(),
                        "gt" => ">".to_owned(),
                        "quot" => "\"".to_owned(),
                        "apos" => "'".to_owned(),
                        _ => r
                            .resolve_char_ref()
                            .ok()
                            .flatten()
                            .map(String::from)
                            .unwrap_or_default(),
                    };
                    text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                if let Some((which, depth, text)) = reading.take() {
                    if depth == scopes.0.len() {
                        found.set(which, text);
                    } else {
                        reading = Some((which, depth, text));
                    }
                }
                scopes.0.pop();
            }
            Event::Eof => return Ok(found),
            _ => {}
        }
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

/// Rewrites one `rdf:Description` start tag: our attributes dropped (the IPTC location too
/// when `replaced` says so, and the altitude); with `props`, the namespaces declared and our properties added as
/// attributes.
fn rewrite_description(
    e: &BytesStart<'_>,
    scopes: &Scopes,
    props: Option<&[(&'static str, &'static str, String)]>,
    replaced: Replaced,
) -> Result<BytesStart<'static>, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut out = BytesStart::new(name);
    for attr in e.attributes() {
        let attr = attr.map_err(|err| err.to_string())?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        if is_ours(scopes, &key, true, replaced) {
            continue;
        }
        out.push_attribute(attr);
    }
    if let Some(props) = props {
        let mut declare = Vec::new();
        let mut prefixes: Vec<(&str, String)> = Vec::new();
        for (ns, _, _) in props {
            if !prefixes.iter().any(|(uri, _)| uri == ns) {
                let prefix = choose_prefix(scopes, ns, preferred_prefix(ns), &mut declare);
                prefixes.push((ns, prefix));
            }
        }
        for (prefix, uri) in &declare {
            out.push_attribute((format!("xmlns:{prefix}").as_str(), uri.as_str()));
        }
        for (ns, local, value) in props {
            let prefix = prefixes
                .iter()
                .find(|(uri, _)| uri == ns)
                .map_or(GEOLOUPE_PREFIX, |(_, p)| p.as_str());
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
    let mut props = sidecar_properties(record);
    let iptc_ours = find_iptc(text)?.is_ours();
    if iptc_ours && let Some(values) = iptc_location_values(record) {
        props.extend(iptc_properties(&values));
    }
    let replaced = Replaced {
        iptc: iptc_ours,
        altitude: replaces_altitude(record, text)?,
    };
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
                if is_ours(&scopes, &qname, false, replaced) {
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
                    rewrite_description(e, &scopes, add, replaced)?
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
                    let rewritten =
                        rewrite_description(&description, &scopes, Some(&props), replaced)?;
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
    let mut detail = format!(
        "XMP GPS {:.6}, {:.6} ({}), {}",
        record.location.lat_deg,
        record.location.lon_deg,
        record.location_source.review_label(),
        if record.origin.is_from_pixels() {
            "estimate provenance".to_owned()
        } else {
            format!("from {}", record.origin.describe())
        }
    );
    if let Some(values) = iptc_location_values(record) {
        let theirs = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| find_iptc(&text).ok())
            .is_some_and(|found| !found.is_ours());
        if theirs {
            detail.push_str(", IPTC location kept (the sidecar has its own)");
        } else {
            let names: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
            detail.push_str(&format!(", IPTC location {}", names.join(", ")));
        }
    }
    PlannedWrite {
        detail,
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
    log::info!("{}: {}", plan.action, path.display());
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
    use crate::domain::{Candidate, Provenance};
    use crate::geo::LatLon;

    fn record(position: LatLon, accepted: bool) -> ExportRecord {
        let candidate = Candidate {
            rank: 1,
            gallery_index: 0,
            position,
            probability: 0.5,
            refined: None,
        };
        let provenance = Provenance {
            model: "GeoCLIP".into(),
            weights_sha256: "a".repeat(64),
            gallery_sha256: "b".repeat(64),
            backbone: "clip".into(),
            backbone_sha256: None,
            device: "cpu".into(),
        };
        let mut record = ExportRecord::new(
            Path::new("/nonexistent/photo.jpg"),
            &[candidate],
            provenance,
            "2026-11-30T00:00:00Z".into(),
            accepted.then_some(position),
            None,
        )
        .unwrap();
        record.iptc_location = true;
        record
    }

    fn found(text: &str) -> FoundIptc {
        find_iptc(text).unwrap()
    }

    #[test]
    fn iptc_location_is_written_and_replaced_while_ours() {
        let paris = record(LatLon::new(48.8566, 2.3522), true);
        let text = merge_sidecar(None, &paris).unwrap();
        let f = found(&text);
        assert_eq!(f.values[0].as_deref(), Some("Paris"), "{text}");
        assert_eq!(f.values[2].as_deref(), Some("France"));
        assert_eq!(f.values[3].as_deref(), Some("FR"));
        assert!(f.values[1].is_some(), "a region: {text}");
        assert!(f.is_ours() && f.ours == f.values, "{text}");
        assert!(text.contains("photoshop:City=\"Paris\""), "{text}");
        assert!(text.contains("Iptc4xmpCore:CountryCode=\"FR\""), "{text}");

        // Another location: our values are replaced, not duplicated.
        let sydney = record(LatLon::new(-33.8688, 151.2093), true);
        let again = merge_sidecar(Some(&text), &sydney).unwrap();
        assert_eq!(found(&again).values[3].as_deref(), Some("AU"), "{again}");
        assert_eq!(again.matches("photoshop:City=").count(), 1, "{again}");
        assert!(!again.contains("Paris"), "{again}");

        // Asked for no IPTC: ours are removed with the rest of our properties.
        let mut plain = sydney.clone();
        plain.iptc_location = false;
        let without = merge_sidecar(Some(&again), &plain).unwrap();
        assert_eq!(found(&without), FoundIptc::default(), "{without}");
    }

    #[test]
    fn iptc_location_of_the_user_is_kept() {
        // digiKam writes elements; the user typed their own City, no Country.
        let existing = format!(
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"{RDF_NS}\">\
             <rdf:Description rdf:about=\"\" xmlns:photoshop=\"{PHOTOSHOP_NS}\">\
             <photoshop:City>Saint-Denis &amp; co</photoshop:City>\
             </rdf:Description></rdf:RDF></x:xmpmeta>"
        );
        assert_eq!(
            found(&existing).values[0].as_deref(),
            Some("Saint-Denis & co")
        );
        let paris = record(LatLon::new(48.8566, 2.3522), true);
        let merged = merge_sidecar(Some(&existing), &paris).unwrap();
        let f = found(&merged);
        assert_eq!(f.values[0].as_deref(), Some("Saint-Denis & co"), "{merged}");
        assert_eq!(f.values[2], None, "no Country of ours beside their City");
        assert_eq!(f.ours, <[Option<String>; 4]>::default(), "{merged}");
        assert!(merged.contains("GPSLatitude"), "the GPS is still written");
        // A City we wrote and the user then changed is theirs too.
        let ours = merge_sidecar(None, &paris).unwrap();
        let edited = ours.replace("photoshop:City=\"Paris\"", "photoshop:City=\"Lutetia\"");
        let f = found(&merge_sidecar(Some(&edited), &paris).unwrap());
        assert_eq!(f.values[0].as_deref(), Some("Lutetia"));
        assert_eq!(f.values[3].as_deref(), Some("FR"), "left as it was");
    }

    /// A sidecar as geoloupe wrote it before locations said where they came from (an
    /// estimate: `IsEstimate` True, no `Origin`), with another tool's rating and altitude.
    fn sidecar_before_origins() -> String {
        format!(
            "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
             <x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"geoloupe 0.1.0\">\n \
             <rdf:RDF xmlns:rdf=\"{RDF_NS}\">\n  \
             <rdf:Description rdf:about=\"\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" \
             xmp:Rating=\"3\" xmlns:exif=\"{EXIF_NS}\" xmlns:geoloupe=\"{GEOLOUPE_NS}\" \
             exif:GPSLatitude=\"21,58.20000000N\" exif:GPSLongitude=\"159,22.20000000W\" \
             exif:GPSMapDatum=\"WGS-84\" exif:GPSAltitude=\"50/1\" geoloupe:IsEstimate=\"True\" \
             geoloupe:Source=\"top-candidate\" geoloupe:Review=\"estimate (unreviewed)\" \
             geoloupe:Rank=\"1\" geoloupe:Probability=\"0.40000001\" \
             geoloupe:EstimatedAt=\"2026-11-01T00:00:00Z\"/>\n \
             </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>\n"
        )
    }

    /// The value of `qname="..."` in `text`, and how many times the attribute is there.
    fn attribute(text: &str, qname: &str) -> (Option<String>, usize) {
        let key = format!(" {qname}=\"");
        let value = text.find(&key).map(|at| {
            let rest = &text[at + key.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        });
        (value, text.matches(&key).count())
    }

    /// An old geoloupe's sidecar merges: our properties are replaced by the new origin's (once
    /// each), the other tool's rating stays; a track's position brings its altitude (replacing
    /// the other one), and a later estimate drops the altitude we wrote with the track.
    #[test]
    fn sidecars_of_an_older_geoloupe_merge_and_altitude_follows_the_origin() {
        let records = crate::export::tests::records_of_every_origin();
        let (estimate, track, neighbour) = (&records[0], &records[2], &records[3]);
        let old = sidecar_before_origins();
        assert_eq!(
            attribute(&old, "exif:GPSAltitude").0.as_deref(),
            Some("50/1")
        );

        // An estimate over it keeps the other tool's altitude.
        let merged = merge_sidecar(Some(&old), estimate).unwrap();
        assert_eq!(
            attribute(&merged, "exif:GPSAltitude"),
            (Some("50/1".into()), 1)
        );
        assert_eq!(
            attribute(&merged, "geoloupe:IsEstimate"),
            (Some("True".into()), 1)
        );
        assert_eq!(
            attribute(&merged, "geoloupe:Origin"),
            (Some("estimate".into()), 1)
        );

        let merged = merge_sidecar(Some(&old), track).unwrap();
        for (qname, value) in [
            ("geoloupe:IsEstimate", "False"),
            ("geoloupe:Origin", "track"),
            ("geoloupe:Track", "Été 2024.gpx"),
            ("geoloupe:ClockOffset", "-1:00:37.5"),
            ("geoloupe:AltitudeMetres", "12.5"),
            ("geoloupe:Source", "accepted"),
            ("geoloupe:Review", "accepted"),
            ("exif:GPSAltitude", "12500/1000"),
            ("exif:GPSAltitudeRef", "0"),
            ("exif:GPSLatitude", "22,03.00000000N"),
            ("xmp:Rating", "3"),
        ] {
            assert_eq!(
                attribute(&merged, qname),
                (Some(value.to_owned()), 1),
                "{qname}: {merged}"
            );
        }
        // The old estimate's rank is gone: the track's position is no candidate.
        assert_eq!(attribute(&merged, "geoloupe:Rank"), (None, 0), "{merged}");
        assert_eq!(attribute(&merged, "geoloupe:EstimatedAt").1, 1);

        // A neighbour's position over the track's: the altitude we wrote goes with it.
        let again = merge_sidecar(Some(&merged), neighbour).unwrap();
        assert_eq!(attribute(&again, "exif:GPSAltitude"), (None, 0), "{again}");
        assert_eq!(attribute(&again, "exif:GPSAltitudeRef"), (None, 0));
        assert_eq!(
            attribute(&again, "geoloupe:Origin"),
            (Some("neighbour".into()), 1)
        );
        assert_eq!(attribute(&again, "geoloupe:Track"), (None, 0));
        assert_eq!(
            attribute(&again, "geoloupe:NeighbourPhoto"),
            (Some("IMG_0042.jpg".into()), 1)
        );
        assert_eq!(attribute(&again, "xmp:Rating"), (Some("3".into()), 1));
        // The altitude as an element (digiKam's style) is found too.
        let elements = format!(
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"{RDF_NS}\">\
             <rdf:Description rdf:about=\"\" xmlns:g=\"{GEOLOUPE_NS}\" xmlns:exif=\"{EXIF_NS}\">\
             <g:AltitudeMetres>12.5</g:AltitudeMetres><exif:GPSAltitude>125/10</exif:GPSAltitude>\
             </rdf:Description></rdf:RDF></x:xmpmeta>"
        );
        let merged = merge_sidecar(Some(&elements), estimate).unwrap();
        assert!(!merged.contains("GPSAltitude"), "{merged}");
    }

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
        // Windows-shaped paths (a drive, a share, the verbatim prefix) keep their folder: only
        // the name's end changes, so the sidecar lands next to the photo on every system.
        for (photo, appended, replaced) in [
            (
                r"C:\Fotos\IMG_1.JPG",
                r"C:\Fotos\IMG_1.JPG.xmp",
                r"C:\Fotos\IMG_1.xmp",
            ),
            (
                r"\\nas\photos\a.b.jpg",
                r"\\nas\photos\a.b.jpg.xmp",
                r"\\nas\photos\a.b.xmp",
            ),
            (
                r"\\?\UNC\nas\photos\x.heic",
                r"\\?\UNC\nas\photos\x.heic.xmp",
                r"\\?\UNC\nas\photos\x.xmp",
            ),
        ] {
            let photo = Path::new(photo);
            assert_eq!(
                sidecar_path(photo, SidecarStyle::AppendXmp),
                Path::new(appended)
            );
            assert_eq!(
                sidecar_path(photo, SidecarStyle::ReplaceExtension),
                Path::new(replaced)
            );
        }
    }

    /// A Linux name that is not UTF-8 keeps its exact bytes in the sidecar's name.
    #[cfg(unix)]
    #[test]
    fn sidecar_names_keep_non_utf8_bytes() {
        use std::os::unix::ffi::OsStrExt as _;
        let photo = Path::new(std::ffi::OsStr::from_bytes(b"/p/caf\xe9.jpg"));
        assert_eq!(
            sidecar_path(photo, SidecarStyle::AppendXmp)
                .as_os_str()
                .as_bytes(),
            b"/p/caf\xe9.jpg.xmp"
        );
        assert_eq!(
            sidecar_path(photo, SidecarStyle::ReplaceExtension)
                .as_os_str()
                .as_bytes(),
            b"/p/caf\xe9.xmp"
        );
    }
}
