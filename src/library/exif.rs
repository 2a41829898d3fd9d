//! EXIF metadata the app uses: the GPS position, when the photo was taken, its orientation.
//!
//! Read with kamadak-exif from JPEG, TIFF, PNG (eXIf), WebP and HEIF containers (HEIF's `Exif`
//! item through libheif with the `heif` feature); only the header is read, not the pixels. GPS is returned latitude first ([`LatLon`]), south and west
//! negative, and sorted into one of three kinds (at most one is set):
//!
//! - [`ExifInfo::gps`]: a valid position that is not geoloupe's own estimate (a camera's or
//!   another tool's fix);
//! - [`ExifInfo::gps_estimate`]: a position geoloupe wrote as an estimate, recognised by its
//!   `GPSProcessingMethod` starting with [`ESTIMATE_METHOD_PREFIX`] (see
//!   [`crate::export::exif_write`] for how estimates are marked);
//! - [`ExifInfo::gps_invalid`]: GPS tags that are present but make no valid position (a 0/0
//!   rational, latitude 999, a latitude reference that is neither N nor S, a latitude without a
//!   longitude, `GPSStatus` V for "measurement void"), with the reason. Such GPS is not "no
//!   GPS": writers leave it alone unless told otherwise.
//!
//! A missing latitude/longitude reference is read as north/east, as most readers do; a GPS IFD
//! without latitude and longitude (only a version, or only references) is no GPS.

use std::io::BufReader;
use std::path::Path;

use ::exif::{In, Tag, Value};

use super::LibraryError;
use crate::geo::LatLon;

/// The start of the `GPSProcessingMethod` text geoloupe writes with an estimate (after EXIF's
/// 8-byte character code); any method text starting with it marks geoloupe's own estimate.
pub const ESTIMATE_METHOD_PREFIX: &str = "geoloupe estimate";

/// A position geoloupe wrote into the EXIF as an estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct GpsEstimate {
    /// GPSLatitude/GPSLongitude with their references.
    pub position: LatLon,
    /// The whole `GPSProcessingMethod` text, e.g. `geoloupe estimate (GeoCLIP)`.
    pub method: String,
    /// `GPSHPositioningError`: the estimate's uncertainty radius in metres, when recorded.
    pub error_m: Option<f64>,
}

/// What the app reads from a photo's EXIF.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExifInfo {
    /// A valid GPS fix (GPSLatitude/GPSLongitude with their N/S, E/W references) that geoloupe
    /// did not write as an estimate: a measured position, or one another tool put there.
    pub gps: Option<LatLon>,
    /// A valid position geoloupe wrote as an estimate (never also in `gps`).
    pub gps_estimate: Option<GpsEstimate>,
    /// Why the photo's GPS tags, present, make no valid position (then `gps` and
    /// `gps_estimate` are `None`), e.g. `latitude 999° is beyond ±90°`.
    pub gps_invalid: Option<String>,
    /// DateTimeOriginal as `YYYY-MM-DDTHH:MM:SS` (local time of the camera), with the
    /// OffsetTimeOriginal appended (`+02:00`) when present. Sorts as text.
    pub taken_at: Option<String>,
    /// SubSecTimeOriginal's digits (`"25"`: 0.25 s after `taken_at`), when DateTimeOriginal
    /// has them; `track::CaptureTime` adds them as exiftool's `SubSecDateTimeOriginal` does.
    pub taken_subsec: Option<String>,
    /// The EXIF orientation (1..=8), when present and applied to the pixels: `None` for HEIF,
    /// whose decoder applies the container's rotation and mirroring instead (an iPhone writes
    /// Orientation 6 *and* `irot`; applying both would turn the photo twice).
    pub orientation: Option<u32>,
}

impl ExifInfo {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Reads the EXIF of a photo file. A photo without EXIF gives an empty [`ExifInfo`], not an
/// error; an unreadable file or a corrupt EXIF block is an error.
pub fn read_exif(path: &Path) -> Result<ExifInfo, LibraryError> {
    Ok(read_exif_block(path)?
        .map(|block| info_from(&block.exif, block.heif))
        .unwrap_or_default())
}

/// Reads the EXIF from bytes already in memory (`path` only names the photo in errors).
pub fn read_exif_bytes(bytes: &[u8], path: &Path) -> Result<ExifInfo, LibraryError> {
    let heif = is_heif(bytes);
    #[cfg(feature = "heif")]
    if heif {
        let tiff = crate::model::heif::exif_tiff_from_bytes(bytes).map_err(exif_error(path))?;
        return parse_tiff(tiff, path)
            .map(|exif| exif.map(|exif| info_from(&exif, true)).unwrap_or_default());
    }
    let mut cursor = std::io::Cursor::new(bytes);
    match ::exif::Reader::new().read_from_container(&mut cursor) {
        Ok(exif) => Ok(info_from(&exif, heif)),
        Err(::exif::Error::NotFound(_)) => Ok(ExifInfo::default()),
        Err(other) => Err(LibraryError::Exif {
            reason: other.to_string(),
            path: path.to_owned(),
        }),
    }
}

/// A photo's EXIF as kamadak-exif parsed it.
pub struct ExifBlock {
    pub exif: ::exif::Exif,
    /// From a HEIF/AVIF container (its `Exif` item): the Orientation tag is not what the
    /// decoder applies (the container's `irot`/`imir` are), so [`ExifInfo::orientation`] is
    /// `None` for it.
    pub heif: bool,
}

/// Reads a photo file's EXIF block, `None` when it has none: HEIF/AVIF through libheif's
/// `Exif` item (with the `heif` feature; without it kamadak-exif's own HEIF reader), every
/// other format through kamadak-exif's container readers. Only the header is read.
pub fn read_exif_block(path: &Path) -> Result<Option<ExifBlock>, LibraryError> {
    let file = std::fs::File::open(path).map_err(LibraryError::io("open", path))?;
    let mut reader = BufReader::new(file);
    let heif =
        is_heif(std::io::BufRead::fill_buf(&mut reader).map_err(LibraryError::io("read", path))?);
    #[cfg(feature = "heif")]
    if heif {
        drop(reader);
        let tiff = crate::model::heif::exif_tiff(path).map_err(exif_error(path))?;
        return Ok(parse_tiff(tiff, path)?.map(|exif| ExifBlock { exif, heif }));
    }
    match ::exif::Reader::new().read_from_container(&mut reader) {
        Ok(exif) => Ok(Some(ExifBlock { exif, heif })),
        Err(::exif::Error::NotFound(_)) => Ok(None),
        Err(::exif::Error::Io(source)) => Err(LibraryError::Io {
            action: "read EXIF from".into(),
            path: path.to_owned(),
            source,
        }),
        Err(other) => Err(LibraryError::Exif {
            reason: other.to_string(),
            path: path.to_owned(),
        }),
    }
}

/// Whether `head` (a file's first bytes) is a HEIF or AVIF container.
fn is_heif(head: &[u8]) -> bool {
    crate::domain::PhotoFormat::sniff(&head[..head.len().min(64)])
        .is_some_and(|f| f.is_heif_container())
}

#[cfg(feature = "heif")]
fn exif_error(path: &Path) -> impl FnOnce(String) -> LibraryError + '_ {
    move |reason| LibraryError::Exif {
        reason,
        path: path.to_owned(),
    }
}

/// The TIFF structure of a HEIF `Exif` item, parsed.
#[cfg(feature = "heif")]
fn parse_tiff(tiff: Option<Vec<u8>>, path: &Path) -> Result<Option<::exif::Exif>, LibraryError> {
    let Some(tiff) = tiff else {
        return Ok(None);
    };
    ::exif::Reader::new()
        .read_raw(tiff)
        .map(Some)
        .map_err(|e| exif_error(path)(e.to_string()))
}

/// `heif`: from a HEIF container, whose EXIF orientation is not applied (see [`ExifBlock`]).
fn info_from(exif: &::exif::Exif, heif: bool) -> ExifInfo {
    let (gps, gps_estimate, gps_invalid) = match gps_position(exif) {
        Ok(None) => (None, None, None),
        Ok(Some(position)) => match estimate_method(exif) {
            Some(method) => {
                let estimate = GpsEstimate {
                    position,
                    method,
                    error_m: positioning_error_m(exif),
                };
                (None, Some(estimate), None)
            }
            None => (Some(position), None, None),
        },
        Err(reason) => (None, None, Some(reason)),
    };
    ExifInfo {
        gps,
        gps_estimate,
        gps_invalid,
        taken_at: taken_at(exif),
        taken_subsec: subsec_time_original(exif),
        orientation: exif
            .get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            .filter(|o| (1..=8).contains(o) && !heif),
    }
}

/// Degrees from the usual three rationals (degrees, minutes, seconds); one or two also work.
/// `tag` names the tag in the error.
fn dms_degrees(value: &Value, tag: &str) -> Result<f64, String> {
    let parts: Vec<Option<f64>> = match value {
        Value::Rational(v) => v
            .iter()
            .map(|r| (r.denom != 0).then(|| r.to_f64()))
            .collect(),
        Value::SRational(v) => v
            .iter()
            .map(|r| (r.denom != 0).then(|| r.to_f64()))
            .collect(),
        _ => return Err(format!("{tag} is not a rational")),
    };
    if parts.is_empty() || parts.len() > 3 {
        return Err(format!("{tag} has {} values, not 1 to 3", parts.len()));
    }
    let parts: Vec<f64> = parts
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{tag} has a zero denominator"))?;
    let scales = [1.0, 60.0, 3600.0];
    let degrees: f64 = parts.iter().zip(scales).map(|(p, s)| p.abs() / s).sum();
    if degrees.is_finite() {
        Ok(degrees)
    } else {
        Err(format!("{tag} is not a finite number"))
    }
}

fn ascii_first_byte(exif: &::exif::Exif, tag: Tag) -> Option<u8> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(v) => v.first()?.first().copied(),
        _ => None,
    }
}

/// The sign a reference tag gives: `+1` for `positive` (or no reference), `-1` for
/// `negative`; anything else is an error. Lower case is accepted.
fn reference_sign(
    exif: &::exif::Exif,
    tag: Tag,
    name: &str,
    positive: u8,
    negative: u8,
) -> Result<f64, String> {
    let Some(field) = exif.get_field(tag, In::PRIMARY) else {
        return Ok(1.0);
    };
    let Value::Ascii(v) = &field.value else {
        return Err(format!("{name} is not text"));
    };
    let text = v.first().map(Vec::as_slice).unwrap_or_default();
    let text = text.strip_suffix(&[0]).unwrap_or(text);
    match text {
        [] => Ok(1.0),
        [c] if c.to_ascii_uppercase() == positive => Ok(1.0),
        [c] if c.to_ascii_uppercase() == negative => Ok(-1.0),
        other => Err(format!(
            "{name} is {:?}, not {} or {}",
            String::from_utf8_lossy(other),
            char::from(positive),
            char::from(negative)
        )),
    }
}

/// The GPS position: `Ok(None)` when the photo has neither GPSLatitude nor GPSLongitude, an
/// error (the reason) when they are present but make no valid position.
fn gps_position(exif: &::exif::Exif) -> Result<Option<LatLon>, String> {
    let field = |tag| exif.get_field(tag, In::PRIMARY);
    let (lat, lon) = match (field(Tag::GPSLatitude), field(Tag::GPSLongitude)) {
        (None, None) => return Ok(None),
        (Some(lat), Some(lon)) => (lat, lon),
        (None, Some(_)) => return Err("GPSLongitude without GPSLatitude".into()),
        (Some(_), None) => return Err("GPSLatitude without GPSLongitude".into()),
    };
    let lat = dms_degrees(&lat.value, "GPSLatitude")?;
    let lon = dms_degrees(&lon.value, "GPSLongitude")?;
    let lat_sign = reference_sign(exif, Tag::GPSLatitudeRef, "GPSLatitudeRef", b'N', b'S')?;
    let lon_sign = reference_sign(exif, Tag::GPSLongitudeRef, "GPSLongitudeRef", b'E', b'W')?;
    if let Some(b'V' | b'v') = ascii_first_byte(exif, Tag::GPSStatus) {
        return Err("GPSStatus is V (measurement void: the receiver had no fix)".into());
    }
    if lat > 90.0 {
        return Err(format!("latitude {lat}° is beyond ±90°"));
    }
    if lon > 180.0 {
        return Err(format!("longitude {lon}° is beyond ±180°"));
    }
    Ok(Some(LatLon::new(lat_sign * lat, lon_sign * lon)))
}

/// `GPSProcessingMethod` when it marks geoloupe's estimate (see [`ESTIMATE_METHOD_PREFIX`]).
/// The tag is `UNDEFINED` with an 8-byte character code (`ASCII\0\0\0`, or eight NULs); some
/// writers store plain ASCII instead, which is read too.
fn estimate_method(exif: &::exif::Exif) -> Option<String> {
    let bytes: &[u8] = match &exif.get_field(Tag::GPSProcessingMethod, In::PRIMARY)?.value {
        Value::Undefined(bytes, _) => match bytes.split_at_checked(8) {
            Some((b"ASCII\0\0\0" | &[0, 0, 0, 0, 0, 0, 0, 0], text)) => text,
            _ => bytes,
        },
        Value::Ascii(v) => v.first()?,
        _ => return None,
    };
    let text = std::str::from_utf8(bytes)
        .ok()?
        .trim_end_matches('\0')
        .trim();
    text.starts_with(ESTIMATE_METHOD_PREFIX)
        .then(|| text.to_owned())
}

/// `GPSHPositioningError` in metres, when it is a finite, non-negative number.
fn positioning_error_m(exif: &::exif::Exif) -> Option<f64> {
    match &exif
        .get_field(Tag::GPSHPositioningError, In::PRIMARY)?
        .value
    {
        Value::Rational(v) => v
            .first()
            .filter(|r| r.denom != 0)
            .map(::exif::Rational::to_f64)
            .filter(|m| m.is_finite()),
        _ => None,
    }
}

fn taken_at(exif: &::exif::Exif) -> Option<String> {
    let field = exif
        .get_field(Tag::DateTimeOriginal, In::PRIMARY)
        .or_else(|| exif.get_field(Tag::DateTime, In::PRIMARY))?;
    let Value::Ascii(v) = &field.value else {
        return None;
    };
    let dt = ::exif::DateTime::from_ascii(v.first()?).ok()?;
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
    );
    if let Some(offset) = offset_time_original(exif) {
        text.push_str(&offset);
    }
    Some(text)
}

/// SubSecTimeOriginal's leading digits, when DateTimeOriginal is there to go with them.
fn subsec_time_original(exif: &::exif::Exif) -> Option<String> {
    exif.get_field(Tag::DateTimeOriginal, In::PRIMARY)?;
    let Value::Ascii(v) = &exif.get_field(Tag::SubSecTimeOriginal, In::PRIMARY)?.value else {
        return None;
    };
    let digits: String = v
        .first()?
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| b.is_ascii_digit())
        .map(|b| char::from(*b))
        .collect();
    (!digits.is_empty()).then_some(digits)
}

/// OffsetTimeOriginal when it is well formed (`+HH:MM` or `-HH:MM`).
fn offset_time_original(exif: &::exif::Exif) -> Option<String> {
    let Value::Ascii(v) = &exif.get_field(Tag::OffsetTimeOriginal, In::PRIMARY)?.value else {
        return None;
    };
    let offset = v.first()?;
    let well_formed = offset.len() == 6
        && matches!(offset[0], b'+' | b'-')
        && offset[3] == b':'
        && offset[1..3]
            .iter()
            .chain(&offset[4..6])
            .all(u8::is_ascii_digit);
    well_formed.then(|| String::from_utf8_lossy(offset).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dms_to_degrees() {
        let v = Value::Rational(vec![
            ::exif::Rational { num: 22, denom: 1 },
            ::exif::Rational { num: 30, denom: 1 },
            ::exif::Rational {
                num: 3600,
                denom: 100,
            },
        ]);
        let deg = dms_degrees(&v, "GPSLatitude").unwrap();
        assert!((deg - 22.51).abs() < 1e-12, "{deg}");
    }

    #[test]
    fn zero_denominator_is_invalid() {
        let v = Value::Rational(vec![::exif::Rational { num: 1, denom: 0 }]);
        assert_eq!(
            dms_degrees(&v, "GPSLatitude"),
            Err("GPSLatitude has a zero denominator".into())
        );
        let v = Value::Ascii(vec![b"12".to_vec()]);
        assert!(dms_degrees(&v, "GPSLongitude").is_err());
    }

    /// heic_gps.heic (tests/fixtures/make_heic_fixtures.py): GPS 48°51'23.76" N,
    /// 2°17'40.2" E, DateTimeOriginal 2024:05:18 09:41:07 +01:00, EXIF Orientation 6 with
    /// the same rotation in `irot`.
    #[test]
    fn heic_gps_and_time_are_read_and_its_orientation_is_not_reapplied() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/heic_gps.heic");
        let info = read_exif(&path).unwrap();
        let gps = info.gps.expect("GPS from the HEIC's Exif item");
        assert!((gps.lat_deg - 48.8566).abs() < 1e-4, "{gps:?}");
        assert!((gps.lon_deg - 2.2945).abs() < 1e-4, "{gps:?}");
        assert_eq!(info.taken_at.as_deref(), Some("2024-05-18T09:41:07+01:00"));
        assert_eq!(
            info.orientation, None,
            "libheif applies irot; EXIF 6 is not applied"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(read_exif_bytes(&bytes, &path).unwrap(), info);
        let block = read_exif_block(&path).unwrap().unwrap();
        assert!(block.heif);
        let make = block.exif.get_field(Tag::Make, In::PRIMARY).unwrap();
        assert_eq!(make.display_value().to_string(), "\"Apple\"");
        // A JPEG's orientation is still reported (and applied by the decoder).
        let rotated =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/rotated.jpg");
        assert_eq!(read_exif(&rotated).unwrap().orientation, Some(6));
    }

    #[test]
    fn photo_without_exif_is_empty_not_an_error() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png");
        let info = read_exif(&path).unwrap();
        assert!(info.gps.is_none());
    }
}
