//! EXIF metadata the app uses: the GPS position, when the photo was taken, its orientation.
//!
//! Read with kamadak-exif from JPEG, TIFF, PNG (eXIf), WebP and HEIF containers; only the
//! header is read, not the pixels. GPS is returned latitude first ([`LatLon`]), south and west
//! negative, and only when it is a valid position (a 0/0 rational or an out-of-range value is
//! treated as no GPS).

use std::io::BufReader;
use std::path::Path;

use ::exif::{In, Tag, Value};

use super::LibraryError;
use crate::geo::LatLon;

/// What the app reads from a photo's EXIF.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExifInfo {
    /// GPSLatitude/GPSLongitude with their N/S, E/W references.
    pub gps: Option<LatLon>,
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
    ExifInfo {
        gps: gps_position(exif),
        taken_at: taken_at(exif),
        orientation: exif
            .get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            .filter(|o| (1..=8).contains(o)),
    }
}

/// Degrees from the usual three rationals (degrees, minutes, seconds); one or two also work.
fn dms_degrees(value: &Value) -> Option<f64> {
    let parts: Vec<f64> = match value {
        Value::Rational(v) => v
            .iter()
            .map(|r| (r.denom != 0).then(|| r.to_f64()))
            .collect::<Option<_>>()?,
        Value::SRational(v) => v
            .iter()
            .map(|r| (r.denom != 0).then(|| r.to_f64()))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| !p.is_finite()) {
        return None;
    }
    let scales = [1.0, 60.0, 3600.0];
    Some(parts.iter().zip(scales).map(|(p, s)| p / s).sum())
}

fn ascii_first_byte(exif: &::exif::Exif, tag: Tag) -> Option<u8> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(v) => v.first()?.first().copied(),
        _ => None,
    }
}

fn gps_position(exif: &::exif::Exif) -> Option<LatLon> {
    let lat = dms_degrees(&exif.get_field(Tag::GPSLatitude, In::PRIMARY)?.value)?;
    let lon = dms_degrees(&exif.get_field(Tag::GPSLongitude, In::PRIMARY)?.value)?;
    let lat_sign = match ascii_first_byte(exif, Tag::GPSLatitudeRef) {
        Some(b'S' | b's') => -1.0,
        _ => 1.0,
    };
    let lon_sign = match ascii_first_byte(exif, Tag::GPSLongitudeRef) {
        Some(b'W' | b'w') => -1.0,
        _ => 1.0,
    };
    let position = LatLon::new(lat_sign * lat.abs(), lon_sign * lon.abs());
    position.is_valid().then_some(position)
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
        let deg = dms_degrees(&v).unwrap();
        assert!((deg - 22.51).abs() < 1e-12, "{deg}");
    }

    #[test]
    fn zero_denominator_is_no_position() {
        let v = Value::Rational(vec![::exif::Rational { num: 1, denom: 0 }]);
        assert_eq!(dms_degrees(&v), None);
    }

    #[test]
    fn photo_without_exif_is_empty_not_an_error() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png");
        let info = read_exif(&path).unwrap();
        assert!(info.gps.is_none());
    }
}
