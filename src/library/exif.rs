//! EXIF metadata the app uses: the GPS position, when the photo was taken, its orientation.
//!
//! Read with kamadak-exif from JPEG, TIFF, PNG (eXIf), WebP and HEIF containers; only the
//! header is read, not the pixels. GPS is returned latitude first ([`LatLon`]), south and west
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
    /// The EXIF orientation (1..=8), when present.
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
    let file = std::fs::File::open(path).map_err(LibraryError::io("open", path))?;
    let mut reader = BufReader::new(file);
    match ::exif::Reader::new().read_from_container(&mut reader) {
        Ok(exif) => Ok(info_from(&exif)),
        Err(::exif::Error::NotFound(_)) => Ok(ExifInfo::default()),
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

/// Reads the EXIF from bytes already in memory (`path` only names the photo in errors).
pub fn read_exif_bytes(bytes: &[u8], path: &Path) -> Result<ExifInfo, LibraryError> {
    let mut cursor = std::io::Cursor::new(bytes);
    match ::exif::Reader::new().read_from_container(&mut cursor) {
        Ok(exif) => Ok(info_from(&exif)),
        Err(::exif::Error::NotFound(_)) => Ok(ExifInfo::default()),
        Err(other) => Err(LibraryError::Exif {
            reason: other.to_string(),
            path: path.to_owned(),
        }),
    }
}

fn info_from(exif: &::exif::Exif) -> ExifInfo {
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
        orientation: exif
            .get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            .filter(|o| (1..=8).contains(o)),
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

    #[test]
    fn photo_without_exif_is_empty_not_an_error() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png");
        let info = read_exif(&path).unwrap();
        assert!(info.gps.is_none());
    }
}
