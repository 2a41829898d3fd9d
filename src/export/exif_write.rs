//! EXIF GPS written into JPEG files, only when the user asks for it.
//!
//! - **Pixels untouched**: only the EXIF `APP1` segment changes (or a new one is inserted after
//!   `SOI`/`APP0`); every other byte of the file, the entropy-coded image data included, is
//!   copied as it is.
//! - **Other metadata kept**: the TIFF structure inside `APP1` is never re-encoded. The old
//!   bytes stay where they are (so MakerNotes and every offset into them stay valid); a new
//!   GPS IFD and a copy of IFD0 pointing at it are appended, and the header points at the copy.
//!   Other GPS tags of an existing GPS IFD (altitude, time stamp) are carried over. A photo
//!   without EXIF gets a minimal block whose IFD0 has the tags EXIF requires there
//!   (XResolution and YResolution 72/1, ResolutionUnit 2 = inches, YCbCrPositioning 1 =
//!   centred), as exiftool writes them.
//! - **Marked as an estimate**: the position comes with `GPSProcessingMethod` (tag 0x001B,
//!   `UNDEFINED`, EXIF's 8-byte character code `ASCII\0\0\0` then [`ESTIMATE_METHOD`]) and,
//!   when the caller knows the uncertainty, `GPSHPositioningError` (tag 0x001F, `RATIONAL`,
//!   metres; EXIF 2.31). These are the standard's own ways to say how a position was found and
//!   how far off it may be: other tools show them, and geoloupe reads its own write back as an
//!   estimate ([`crate::library::exif::ExifInfo::gps_estimate`]), never as a measured fix, so a
//!   claim check doesn't compare the estimate with itself and a later write may replace it.
//!   Only an estimate from the photo's pixels is marked so ([`crate::domain::Origin`]:
//!   GeoCLIP's answer alone, or a trip posterior, whose method text names the trip's top speed
//!   and the single-photo answer). A position from a GPS track, from a neighbouring photo's
//!   fix or placed by hand is written as a position of the photo's own: its method text says
//!   where it came from (`geoloupe track (day1.gpx, clock +1:00:00)`, see [`gps_method`];
//!   UTF-16 with EXIF's `UNICODE` code when a name isn't ASCII), no uncertainty, and a track's
//!   altitude as `GPSAltitude`/`GPSAltitudeRef` (replacing an earlier one; a track without
//!   altitude drops it).
//!   `GPSDOP` is not used: it is a dimensionless dilution of precision describing the
//!   satellites' geometry, not a distance. EXIF 2.32 lists `GPS`, `CELLID`, `WLAN` and
//!   `MANUAL` as the method names and `exiftool -validate` warns about any other; none of them
//!   says "estimate" or names geoloupe (which is how geoloupe recognises its own write), so we
//!   accept that one warning. The fix-quality tags of an earlier fix (`GPSStatus`,
//!   `GPSMeasureMode`, `GPSDOP`, `GPSDifferential`) are dropped: they would describe a position
//!   that is no longer there. [`error_radius_m`] derives a radius from the candidates.
//! - **Symbolic links written through**: a photo reached through a symbolic link is changed at
//!   its target (which is backed up and restored); the link stays a link.
//! - **A backup first**: the original file is copied into a [`BackupStore`] (the first time a
//!   file is changed; later writes keep that first original while the photo is still as
//!   geoloupe left it) until the user clears backups.
//!   Each entry records the sha256 and size of the bytes geoloupe wrote, so a restore only
//!   replaces files still exactly as geoloupe left them (see [`BackupStore::restore_all`]).
//! - **Atomic**: the new file is written to a temporary file in the same folder, flushed to
//!   disk and renamed over the original, so a crash or a full disk never leaves half a file.
//!   The backup index is replaced the same way, under an exclusive lock on a lock file in the
//!   backup folder, so two geoloupe processes never lose each other's entries.
//! - **Read-only** files and folders are refused before anything is written.
//!
//! We do this by hand rather than with `little_exif`, which decodes and re-encodes the whole
//! EXIF block (so tags it doesn't know and MakerNote offsets are at risk).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::{
    ExportCandidate, ExportError, ExportRecord, PlannedWrite, SkipReason, WriteAction,
    origin_altitude_m, origin_source, parent_dir, write_atomic_with,
};
use crate::domain::{Origin, format_offset};
use crate::geo::LatLon;

/// The `GPSProcessingMethod` text of geoloupe's estimates (starts with
/// [`crate::library::exif::ESTIMATE_METHOD_PREFIX`], which is how they are recognised).
pub const ESTIMATE_METHOD: &str = "geoloupe estimate (GeoCLIP)";
/// What a write puts into the GPS IFD besides the position: how it was found
/// (`GPSProcessingMethod`), how far off it may be (`GPSHPositioningError`) and its altitude.
#[derive(Clone, Debug, PartialEq)]
pub struct GpsMarking {
    /// The `GPSProcessingMethod` text ([`gps_method`]).
    pub method: String,
    /// `GPSHPositioningError` in metres, when known (an estimate's spread: see
    /// [`error_radius_m`]).
    pub error_radius_m: Option<f64>,
    /// What happens to `GPSAltitude` and `GPSAltitudeRef`.
    pub altitude: AltitudeWrite,
}

/// What a write does with the GPS altitude.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AltitudeWrite {
    /// An existing altitude is carried over (a position from pixels says nothing about it).
    Keep,
    /// Written, metres above (negative: below) sea level, replacing an existing one.
    Set(f64),
    /// An existing altitude is dropped (a track without altitude: the old one belonged to
    /// another position, and `exiftool -geotag` drops it too).
    Remove,
}

impl GpsMarking {
    /// geoloupe's single-photo estimate ([`ESTIMATE_METHOD`]), keeping an existing altitude.
    pub fn estimate(error_radius_m: Option<f64>) -> Self {
        Self {
            method: ESTIMATE_METHOD.to_owned(),
            error_radius_m,
            altitude: AltitudeWrite::Keep,
        }
    }

    /// The marking of `record`'s location, from its [`Origin`]: an estimate from pixels is
    /// marked as one with its uncertainty ([`record_error_radius_m`]); a track's or a
    /// neighbouring photo's position, or one placed by hand, is written as a measured
    /// position (no estimate marking, no uncertainty), a track's with its altitude.
    pub fn for_record(record: &ExportRecord) -> Self {
        Self {
            method: gps_method(&record.origin),
            error_radius_m: record_error_radius_m(record),
            altitude: match &record.origin {
                Origin::Track { .. } => match origin_altitude_m(&record.origin) {
                    Some(altitude) => AltitudeWrite::Set(altitude),
                    None => AltitudeWrite::Remove,
                },
                _ => AltitudeWrite::Keep,
            },
        }
    }
}

/// The `GPSProcessingMethod` text for a location from `origin`. An estimate from pixels starts
/// with [`crate::library::exif::ESTIMATE_METHOD_PREFIX`] (so geoloupe reads it back as its
/// estimate): [`ESTIMATE_METHOD`], or `geoloupe estimate (GeoCLIP trip posterior, up to 120
/// km/h; single photo 48.85660000, 2.35220000)`. Any other says what it is and is read back as
/// a position of the photo's own: `geoloupe track (day1.gpx, clock +1:00:00)`, `geoloupe
/// neighbour (IMG_0042.jpg, 37 s away)`, `geoloupe hand (placed by hand)`.
pub fn gps_method(origin: &Origin) -> String {
    match origin {
        Origin::Estimate => ESTIMATE_METHOD.to_owned(),
        Origin::Trip {
            max_speed_kmh,
            single_photo,
        } => format!(
            "{} (GeoCLIP trip posterior, up to {max_speed_kmh:.0} km/h; single photo {:.8}, {:.8})",
            crate::library::exif::ESTIMATE_METHOD_PREFIX,
            single_photo.lat_deg,
            single_photo.lon_deg
        ),
        Origin::Track {
            track, offset_secs, ..
        } => format!(
            "{} ({track}, clock {})",
            origin_source(origin),
            format_offset(*offset_secs)
        ),
        Origin::Neighbour { photo, seconds } => format!(
            "{} ({photo}, {:.0} s away)",
            origin_source(origin),
            seconds.abs()
        ),
        Origin::Hand => format!("{} (placed by hand)", origin_source(origin)),
    }
}

/// `GPSProcessingMethod`'s bytes: EXIF's 8-byte character code, then the text: `ASCII` when
/// it is, else `UNICODE` as UTF-16 in the block's byte order (a track or photo name with
/// accents), as exiftool writes and reads it.
fn method_bytes(text: &str, e: Endian) -> Vec<u8> {
    if text.is_ascii() {
        let mut out = ASCII_CODE.to_vec();
        out.extend_from_slice(text.as_bytes());
        out
    } else {
        let mut out = UNICODE_CODE.to_vec();
        for unit in text.encode_utf16() {
            e.put_u16(&mut out, unit);
        }
        out
    }
}

/// The smallest uncertainty radius [`error_radius_m`] gives: GeoCLIP's answers are points of
/// its gallery, never finer than about a kilometre.
pub const MIN_ERROR_RADIUS_M: f64 = 1000.0;

const EXIF_HEADER: &[u8; 6] = b"Exif\0\0";
/// EXIF's character code for ASCII text in an `UNDEFINED` value.
const ASCII_CODE: &[u8; 8] = b"ASCII\0\0\0";
/// EXIF's character code for UTF-16 (UCS-2) text, in the TIFF's byte order.
const UNICODE_CODE: &[u8; 8] = b"UNICODE\0";
const TAG_GPS_IFD: u16 = 0x8825;
const TAG_X_RESOLUTION: u16 = 0x011A;
const TAG_Y_RESOLUTION: u16 = 0x011B;
const TAG_RESOLUTION_UNIT: u16 = 0x0128;
const TAG_YCBCR_POSITIONING: u16 = 0x0213;
const TAG_GPS_VERSION: u16 = 0x0000;
const TAG_GPS_LATITUDE_REF: u16 = 0x0001;
const TAG_GPS_LATITUDE: u16 = 0x0002;
const TAG_GPS_LONGITUDE_REF: u16 = 0x0003;
const TAG_GPS_LONGITUDE: u16 = 0x0004;
const TAG_GPS_ALTITUDE_REF: u16 = 0x0005;
const TAG_GPS_ALTITUDE: u16 = 0x0006;
const TAG_GPS_MAP_DATUM: u16 = 0x0012;
const TAG_GPS_PROCESSING_METHOD: u16 = 0x001B;
const TAG_GPS_H_POSITIONING_ERROR: u16 = 0x001F;
const TYPE_BYTE: u16 = 1;
const TYPE_ASCII: u16 = 2;
const TYPE_SHORT: u16 = 3;
const TYPE_LONG: u16 = 4;
const TYPE_RATIONAL: u16 = 5;
const TYPE_UNDEFINED: u16 = 7;
/// GPS tags an existing GPS IFD loses: the ones we write (version, lat ref, lat, lon ref, lon,
/// map datum, processing method, horizontal positioning error) and the quality of an earlier
/// fix (status, measure mode, DOP, differential correction).
const REPLACED_GPS_TAGS: &[u16] = &[
    TAG_GPS_VERSION,
    TAG_GPS_LATITUDE_REF,
    TAG_GPS_LATITUDE,
    TAG_GPS_LONGITUDE_REF,
    TAG_GPS_LONGITUDE,
    0x0009, // GPSStatus
    0x000A, // GPSMeasureMode
    0x000B, // GPSDOP
    TAG_GPS_MAP_DATUM,
    TAG_GPS_PROCESSING_METHOD,
    0x001E, // GPSDifferential
    TAG_GPS_H_POSITIONING_ERROR,
];

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(match self {
            Self::Little => u16::from_le_bytes(s),
            Self::Big => u16::from_be_bytes(s),
        })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(match self {
            Self::Little => u32::from_le_bytes(s),
            Self::Big => u32::from_be_bytes(s),
        })
    }
    fn put_u16(self, out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&match self {
            Self::Little => v.to_le_bytes(),
            Self::Big => v.to_be_bytes(),
        });
    }
    fn put_u32(self, out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&match self {
            Self::Little => v.to_le_bytes(),
            Self::Big => v.to_be_bytes(),
        });
    }
    /// A SHORT in an entry's 4-byte value field (left-justified).
    fn short_value(self, v: u16) -> [u8; 4] {
        let [a, b] = match self {
            Self::Little => v.to_le_bytes(),
            Self::Big => v.to_be_bytes(),
        };
        [a, b, 0, 0]
    }
    fn rationals(self, values: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * values.len());
        for &(num, den) in values {
            self.put_u32(&mut out, num);
            self.put_u32(&mut out, den);
        }
        out
    }
}

/// A JPEG marker segment before the scan: `[start, end)` includes the `FF xx` marker.
#[derive(Clone, Copy, Debug)]
struct Segment {
    marker: u8,
    start: usize,
    end: usize,
}

/// The segments from after `SOI` up to (not including) the first `SOS`.
fn header_segments(bytes: &[u8]) -> Result<Vec<Segment>, String> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err("no JPEG start-of-image marker".into());
    }
    let mut segments = Vec::new();
    let mut at = 2;
    loop {
        if bytes.get(at) != Some(&0xFF) {
            return Err(format!("expected a marker at byte {at}"));
        }
        let mut m = at + 1;
        while bytes.get(m) == Some(&0xFF) {
            m += 1;
        }
        let marker = *bytes.get(m).ok_or("truncated before the image data")?;
        if marker == 0xDA || marker == 0xD9 {
            return Ok(segments);
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            return Err(format!(
                "unexpected marker FF{marker:02X} before the image data"
            ));
        }
        let len = usize::from(Endian::Big.u16(bytes, m + 1).ok_or("truncated segment")?);
        let end = m + 1 + len;
        if len < 2 || end > bytes.len() {
            return Err(format!(
                "segment FF{marker:02X} runs past the end of the file"
            ));
        }
        segments.push(Segment {
            marker,
            start: at,
            end,
        });
        at = end;
    }
}

/// Splits degrees into EXIF's three rationals (degrees, minutes, seconds in 1e-6 s).
fn dms_rationals(value_deg: f64) -> [(u32, u32); 3] {
    let total_micro_arcsec = (value_deg.abs() * 3600.0 * 1e6).round() as u64;
    let degrees = total_micro_arcsec / 3_600_000_000;
    let rest = total_micro_arcsec % 3_600_000_000;
    let minutes = rest / 60_000_000;
    let micro_seconds = rest % 60_000_000;
    [
        (u32::try_from(degrees).unwrap_or(0), 1),
        (u32::try_from(minutes).unwrap_or(0), 1),
        (u32::try_from(micro_seconds).unwrap_or(0), 1_000_000),
    ]
}

/// One 12-byte IFD entry, as raw bytes in the TIFF's byte order.
type RawEntry = (u16, [u8; 12]);

fn read_ifd(tiff: &[u8], e: Endian, offset: usize) -> Option<(Vec<RawEntry>, u32)> {
    let count = usize::from(e.u16(tiff, offset)?);
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let at = offset + 2 + 12 * i;
        let raw: [u8; 12] = tiff.get(at..at + 12)?.try_into().ok()?;
        entries.push((e.u16(tiff, at)?, raw));
    }
    let next = e.u32(tiff, offset + 2 + 12 * count)?;
    Some((entries, next))
}

fn entry(e: Endian, tag: u16, kind: u16, count: u32, value: [u8; 4]) -> RawEntry {
    let mut raw = Vec::with_capacity(12);
    e.put_u16(&mut raw, tag);
    e.put_u16(&mut raw, kind);
    e.put_u32(&mut raw, count);
    raw.extend_from_slice(&value);
    let mut out = [0u8; 12];
    out.copy_from_slice(&raw);
    (tag, out)
}

fn offset_value(e: Endian, offset: usize) -> Result<[u8; 4], String> {
    let v = u32::try_from(offset).map_err(|_| "EXIF block too large".to_string())?;
    Ok(match e {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    })
}

/// One entry of an IFD being written.
enum NewEntry {
    /// An existing entry, copied as it is (its offsets point into the old bytes, still there).
    Kept([u8; 12]),
    /// A value that fits in the entry's 4 bytes.
    Inline {
        kind: u16,
        count: u32,
        value: [u8; 4],
    },
    /// A longer value, placed in the data area right after the IFD.
    Data {
        kind: u16,
        count: u32,
        bytes: Vec<u8>,
    },
}

/// Appends an IFD with `entries` (sorted by tag) and its data area to `out`, at an even
/// offset; returns the IFD's offset.
fn append_ifd(
    out: &mut Vec<u8>,
    e: Endian,
    mut entries: Vec<(u16, NewEntry)>,
    next: u32,
) -> Result<usize, String> {
    if out.len() % 2 == 1 {
        out.push(0);
    }
    entries.sort_by_key(|(tag, _)| *tag);
    let ifd_at = out.len();
    let count = u16::try_from(entries.len()).map_err(|_| "too many IFD entries".to_string())?;
    let mut data = Vec::new();
    let data_at = ifd_at + 2 + 12 * entries.len() + 4;
    let mut raw_entries = Vec::with_capacity(entries.len());
    for (tag, new) in entries {
        let (_, raw) = match new {
            NewEntry::Kept(raw) => (tag, raw),
            NewEntry::Inline { kind, count, value } => entry(e, tag, kind, count, value),
            NewEntry::Data { kind, count, bytes } => {
                let at = offset_value(e, data_at + data.len())?;
                data.extend_from_slice(&bytes);
                if data.len() % 2 == 1 {
                    data.push(0);
                }
                entry(e, tag, kind, count, at)
            }
        };
        raw_entries.push(raw);
    }
    e.put_u16(out, count);
    for raw in raw_entries {
        out.extend_from_slice(&raw);
    }
    e.put_u32(out, next);
    out.extend_from_slice(&data);
    Ok(ifd_at)
}

/// `GPSHPositioningError` as a RATIONAL in whole metres.
fn error_rational(error_radius_m: f64) -> Result<(u32, u32), String> {
    if !error_radius_m.is_finite() || error_radius_m < 0.0 {
        return Err(format!("invalid error radius {error_radius_m} m"));
    }
    Ok((error_radius_m.round().min(f64::from(u32::MAX)) as u32, 1))
}

/// A TIFF block with GPS set to `position`, marked as geoloupe's estimate with
/// `error_radius_m` (see the module docs for how). `tiff` is `None` for a photo without EXIF:
/// a minimal block (IFD0 with its required tags + GPS IFD) is made.
fn tiff_with_gps(
    tiff: Option<&[u8]>,
    position: LatLon,
    marking: &GpsMarking,
) -> Result<Vec<u8>, String> {
    let error_radius_m = marking.error_radius_m;
    let e;
    let (mut out, mut ifd0, ifd0_next, old_gps) = match tiff {
        None => {
            e = Endian::Little;
            let mut out = b"II*\0".to_vec();
            e.put_u32(&mut out, 0); // patched below
            let resolution = || NewEntry::Data {
                kind: TYPE_RATIONAL,
                count: 1,
                bytes: e.rationals(&[(72, 1)]),
            };
            let short = |v| NewEntry::Inline {
                kind: TYPE_SHORT,
                count: 1,
                value: e.short_value(v),
            };
            let ifd0 = vec![
                (TAG_X_RESOLUTION, resolution()),
                (TAG_Y_RESOLUTION, resolution()),
                (TAG_RESOLUTION_UNIT, short(2)),
                (TAG_YCBCR_POSITIONING, short(1)),
            ];
            (out, ifd0, 0, Vec::new())
        }
        Some(tiff) => {
            e = match tiff.get(..4) {
                Some(b"II*\0") => Endian::Little,
                Some(b"MM\0*") => Endian::Big,
                _ => return Err("not a TIFF header".into()),
            };
            let ifd0_at = e.u32(tiff, 4).ok_or("truncated TIFF header")? as usize;
            let (entries, next) =
                read_ifd(tiff, e, ifd0_at).ok_or("IFD0 runs past the EXIF block")?;
            let old_gps = match entries.iter().find(|(t, _)| *t == TAG_GPS_IFD) {
                Some((_, raw)) => {
                    let at = e.u32(raw, 8).ok_or("bad GPS pointer")? as usize;
                    read_ifd(tiff, e, at)
                        .map(|(g, _)| g)
                        .ok_or("the GPS IFD runs past the EXIF block")?
                }
                None => Vec::new(),
            };
            let ifd0 = entries
                .into_iter()
                .filter(|(t, _)| *t != TAG_GPS_IFD)
                .map(|(t, raw)| (t, NewEntry::Kept(raw)))
                .collect();
            (tiff.to_vec(), ifd0, next, old_gps)
        }
    };
    // The GPS IFD: other tools' GPS tags kept, ours (and an old fix's quality) replaced.
    let replaces_altitude = marking.altitude != AltitudeWrite::Keep;
    let mut gps: Vec<(u16, NewEntry)> = old_gps
        .into_iter()
        .filter(|(t, _)| !REPLACED_GPS_TAGS.contains(t))
        .filter(|(t, _)| {
            !(replaces_altitude && matches!(*t, TAG_GPS_ALTITUDE_REF | TAG_GPS_ALTITUDE))
        })
        .map(|(t, raw)| (t, NewEntry::Kept(raw)))
        .collect();
    let reference = |letter: u8| NewEntry::Inline {
        kind: TYPE_ASCII,
        count: 2,
        value: [letter, 0, 0, 0],
    };
    let dms = |value: f64| NewEntry::Data {
        kind: TYPE_RATIONAL,
        count: 3,
        bytes: e.rationals(&dms_rationals(value)),
    };
    let lat_ref = if position.lat_deg < 0.0 { b'S' } else { b'N' };
    let lon_ref = if position.lon_deg < 0.0 { b'W' } else { b'E' };
    let method = method_bytes(&marking.method, e);
    let method_count = u32::try_from(method.len()).map_err(|_| "method text too long")?;
    gps.extend([
        (
            TAG_GPS_VERSION,
            NewEntry::Inline {
                kind: TYPE_BYTE,
                count: 4,
                value: [2, 3, 0, 0],
            },
        ),
        (TAG_GPS_LATITUDE_REF, reference(lat_ref)),
        (TAG_GPS_LATITUDE, dms(position.lat_deg)),
        (TAG_GPS_LONGITUDE_REF, reference(lon_ref)),
        (TAG_GPS_LONGITUDE, dms(position.lon_deg)),
        (
            TAG_GPS_MAP_DATUM,
            NewEntry::Data {
                kind: TYPE_ASCII,
                count: 7,
                bytes: b"WGS-84\0".to_vec(),
            },
        ),
        (
            TAG_GPS_PROCESSING_METHOD,
            NewEntry::Data {
                kind: TYPE_UNDEFINED,
                count: method_count,
                bytes: method,
            },
        ),
    ]);
    if let AltitudeWrite::Set(altitude_m) = marking.altitude {
        if !altitude_m.is_finite() || altitude_m.abs() > f64::from(u32::MAX) / 1000.0 {
            return Err(format!("invalid altitude {altitude_m} m"));
        }
        // Millimetre steps; 0 above sea level, 1 below.
        let millimetres = (altitude_m.abs() * 1000.0).round() as u32;
        let below = u8::from(altitude_m < 0.0 && millimetres > 0);
        gps.push((
            TAG_GPS_ALTITUDE_REF,
            NewEntry::Inline {
                kind: TYPE_BYTE,
                count: 1,
                value: [below, 0, 0, 0],
            },
        ));
        gps.push((
            TAG_GPS_ALTITUDE,
            NewEntry::Data {
                kind: TYPE_RATIONAL,
                count: 1,
                bytes: e.rationals(&[(millimetres, 1000)]),
            },
        ));
    }
    if let Some(radius) = error_radius_m {
        gps.push((
            TAG_GPS_H_POSITIONING_ERROR,
            NewEntry::Data {
                kind: TYPE_RATIONAL,
                count: 1,
                bytes: e.rationals(&[error_rational(radius)?]),
            },
        ));
    }
    let gps_ifd_at = append_ifd(&mut out, e, gps, 0)?;
    // A copy of IFD0 that points at the new GPS IFD; the header points at the copy.
    ifd0.push((
        TAG_GPS_IFD,
        NewEntry::Inline {
            kind: TYPE_LONG,
            count: 1,
            value: offset_value(e, gps_ifd_at)?,
        },
    ));
    let ifd0_at = append_ifd(&mut out, e, ifd0, ifd0_next)?;
    let header = offset_value(e, ifd0_at)?;
    out[4..8].copy_from_slice(&header);
    Ok(out)
}

/// The JPEG `bytes` with EXIF GPS set to `position`, marked as geoloupe's estimate with an
/// uncertainty of `error_radius_m` metres when given: only the EXIF `APP1` segment changes.
/// Pure; the error says why the file can't be changed safely.
pub fn set_gps_in_jpeg(
    bytes: &[u8],
    position: LatLon,
    error_radius_m: Option<f64>,
) -> Result<Vec<u8>, String> {
    set_marked_gps_in_jpeg(bytes, position, &GpsMarking::estimate(error_radius_m))
}

/// [`set_gps_in_jpeg`] with the position marked as `marking` says (an estimate, a track's
/// position with its altitude, ...).
pub fn set_marked_gps_in_jpeg(
    bytes: &[u8],
    position: LatLon,
    marking: &GpsMarking,
) -> Result<Vec<u8>, String> {
    if !position.is_valid() {
        return Err(format!("invalid location {position:?}"));
    }
    let segments = header_segments(bytes)?;
    let exif = segments.iter().find(|s| {
        s.marker == 0xE1 && bytes.get(s.start + 4..s.start + 10) == Some(EXIF_HEADER.as_slice())
    });
    let (tiff, replace) = match exif {
        Some(s) => (Some(&bytes[s.start + 10..s.end]), (s.start, s.end)),
        None => {
            // After APP0 (JFIF/JFXX must come first), else right after SOI.
            let at = segments
                .iter()
                .take_while(|s| s.marker == 0xE0)
                .last()
                .map_or(2, |s| s.end);
            (None, (at, at))
        }
    };
    let new_tiff = tiff_with_gps(tiff, position, marking)?;
    let length = 2 + EXIF_HEADER.len() + new_tiff.len();
    let length = u16::try_from(length)
        .map_err(|_| "the EXIF block would exceed the 64 KB a JPEG segment can hold".to_string())?;
    let mut out = Vec::with_capacity(bytes.len() + new_tiff.len() + 16);
    out.extend_from_slice(&bytes[..replace.0]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(EXIF_HEADER);
    out.extend_from_slice(&new_tiff);
    out.extend_from_slice(&bytes[replace.1..]);
    Ok(out)
}

/// The uncertainty radius, in metres, of an estimate at `center` given the model's ranked
/// `candidates`: the probability-weighted root-mean-square great-circle distance from `center`
/// to the candidates (their probabilities renormalised to sum to 1), at least
/// [`MIN_ERROR_RADIUS_M`]. It is how far the model's own answers spread around the chosen
/// point, in the spirit of a 1-sigma horizontal error.
///
/// Only the top-k candidates are seen, so this is a lower bound of the spread of the full
/// distribution. `None` with fewer than two candidates or no positive probability: one point
/// says nothing about the spread.
pub fn error_radius_m(center: LatLon, candidates: &[ExportCandidate]) -> Option<f64> {
    let weighted: Vec<(f64, f64)> = candidates
        .iter()
        .map(|c| {
            (
                f64::from(c.probability),
                c.position.distance_km(&center) * 1000.0,
            )
        })
        .filter(|(p, d)| p.is_finite() && *p > 0.0 && d.is_finite())
        .collect();
    let total: f64 = weighted.iter().map(|(p, _)| p).sum();
    if weighted.len() < 2 || total <= 0.0 {
        return None;
    }
    let mean_square: f64 = weighted.iter().map(|(p, d)| p * d * d).sum::<f64>() / total;
    Some(mean_square.sqrt().max(MIN_ERROR_RADIUS_M))
}

/// The uncertainty written with `record`'s location: [`error_radius_m`] around it when it is
/// an estimate from pixels at one of the candidates (the top-1, or an accepted candidate) or
/// a trip's point (the photo's own belief's spread around it);
/// `None` for a location the user placed by hand, whose accuracy the model can't tell, and for
/// a track's or a neighbouring photo's position, which the candidates say nothing about.
pub fn record_error_radius_m(record: &ExportRecord) -> Option<f64> {
    if !record.origin.is_from_pixels() {
        return None;
    }
    // An estimate at one of its candidates; a trip's point may be one of the 200 the trip
    // weighed but not of the top-k kept, and its spread is still the photo's own belief's.
    if !matches!(record.origin, crate::domain::Origin::Trip { .. }) {
        record.chosen_candidate()?;
    }
    error_radius_m(record.location, &record.candidates)
}

/// Whether `path` starts like a JPEG.
pub fn is_jpeg(path: &Path) -> bool {
    let mut magic = [0u8; 3];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == [0xFF, 0xD8, 0xFF]
}

/// What a file held: its sha256 and size.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigest {
    /// Lower-case hex.
    pub sha256: String,
    pub size_bytes: u64,
}

impl FileDigest {
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            size_bytes: bytes.len() as u64,
        }
    }

    /// Whether `bytes` are exactly the bytes this digest was made of.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.size_bytes == bytes.len() as u64 && *self == Self::of(bytes)
    }
}

/// One backed-up original.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupEntry {
    /// The photo as it was before geoloupe first changed it: the file's own path (symbolic
    /// links resolved), absolute.
    pub original: PathBuf,
    /// The copy.
    pub backup: PathBuf,
    /// UTC, RFC 3339.
    pub created_at: String,
    /// The size of the copy.
    pub size_bytes: u64,
    /// What geoloupe last wrote into `original`. `None` in entries made by geoloupe before
    /// this was recorded: such photos are never restored automatically (see
    /// [`RestoreOutcome::SkippedUnverified`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<FileDigest>,
}

/// Which file a restore found missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingFile {
    /// The photo is gone (moved or deleted): nothing to put back; the backup is kept.
    Photo,
    /// The backup copy is gone: nothing to put back with.
    Backup,
}

/// What [`BackupStore::restore_all`] did with one backup.
#[derive(Debug)]
pub enum RestoreOutcome {
    /// The original is back (or the photo already held exactly its bytes); the backup is
    /// deleted and forgotten.
    Restored,
    /// The photo changed after geoloupe wrote it: restoring would lose that change. The
    /// backup is kept.
    SkippedEditedSince,
    /// The entry was made by an older geoloupe that did not record what it wrote, so a later
    /// change can't be ruled out. The backup is kept; copy it back by hand if wanted.
    SkippedUnverified,
    /// The photo or the backup is missing. The entry is kept.
    SkippedMissing(MissingFile),
    /// Reading or writing failed; nothing changed for this photo.
    Failed(ExportError),
}

impl RestoreOutcome {
    pub fn is_restored(&self) -> bool {
        matches!(self, Self::Restored)
    }

    pub fn is_skipped(&self) -> bool {
        matches!(
            self,
            Self::SkippedEditedSince | Self::SkippedUnverified | Self::SkippedMissing(_)
        )
    }
}

impl std::fmt::Display for RestoreOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Restored => write!(f, "restored"),
            Self::SkippedEditedSince => write!(
                f,
                "skipped (the photo changed since geoloupe wrote it; restoring would lose that \
                 change, so the original stays in the backups)"
            ),
            Self::SkippedUnverified => write!(
                f,
                "skipped (an older geoloupe made this backup without recording what it wrote, \
                 so a later change can't be ruled out; copy the backup back by hand if you \
                 want it)"
            ),
            Self::SkippedMissing(MissingFile::Photo) => {
                write!(f, "skipped (the photo is missing; the backup is kept)")
            }
            Self::SkippedMissing(MissingFile::Backup) => {
                write!(f, "skipped (the backup copy is missing)")
            }
            Self::Failed(e) => write!(f, "failed ({e})"),
        }
    }
}

/// One backup and what a restore did with it.
#[derive(Debug)]
pub struct RestoreReport {
    pub entry: BackupEntry,
    pub outcome: RestoreOutcome,
}

/// Originals of photos geoloupe changed, kept until the user clears them. One folder with the
/// copies, an `index.json` naming where each came from, and `index.lock`: every change of the
/// index (and each photo write with its backup) happens under an exclusive lock on it, so
/// threads and processes sharing the folder never lose each other's entries.
#[derive(Clone, Debug)]
pub struct BackupStore {
    dir: PathBuf,
}

/// Proof that the backup folder's lock is held; dropping it (closing the file) unlocks.
struct IndexLock {
    _file: std::fs::File,
}

/// How to undo [`BackupStore::record_write`] when the photo could not be written.
struct RecordedWrite {
    entry: BackupEntry,
    previous: Option<BackupEntry>,
}

impl BackupStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `<data>/backups`, the place the CLI and the app use.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join("backups"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// Takes the exclusive lock (waiting for other holders), creating the folder if needed.
    fn lock(&self) -> Result<IndexLock, ExportError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(ExportError::io("create the backup folder", &self.dir))?;
        let path = self.dir.join("index.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ExportError::io("open the lock file", &path))?;
        file.lock()
            .map_err(ExportError::io("lock the backup index", &path))?;
        Ok(IndexLock { _file: file })
    }

    /// Every backup, oldest first (an empty list when there are none). Needs no lock: the
    /// index is only ever replaced whole, by a rename.
    pub fn list(&self) -> Result<Vec<BackupEntry>, ExportError> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(ExportError::io("read the backup index", path)(e)),
        }
    }

    fn save(&self, _lock: &IndexLock, entries: &[BackupEntry]) -> Result<(), ExportError> {
        super::write_atomic(&self.index_path(), &serde_json::to_vec_pretty(entries)?)
    }

    /// Before geoloupe replaces `original` (its own path, symbolic links resolved) whose bytes
    /// are `current` with `written`: keeps a copy of `current` unless a backup of an earlier
    /// original is kept already, and records a digest of `written`.
    ///
    /// An existing backup is kept when the photo is still exactly what geoloupe last wrote
    /// (a chain of our own writes: the first original stays the one to restore). When the
    /// photo changed since, `current` becomes the backup instead: restoring the older copy
    /// would throw that change away. An entry from an older geoloupe (no digest) keeps its
    /// backup and stays unverified: it is never restored automatically.
    fn record_write(
        &self,
        lock: &IndexLock,
        original: &Path,
        current: &[u8],
        written: &[u8],
    ) -> Result<RecordedWrite, ExportError> {
        let mut entries = self.list()?;
        let previous = entries
            .iter()
            .find(|b| b.original == original && b.backup.is_file())
            .cloned();
        let entry = match &previous {
            Some(p) if p.written.is_none() => p.clone(),
            Some(p) if p.written.as_ref().is_some_and(|d| d.matches(current)) => BackupEntry {
                written: Some(FileDigest::of(written)),
                ..p.clone()
            },
            _ => {
                // Named by the photo's path and the copy's content: a new copy never
                // overwrites the one it may replace before the photo is written.
                let path_key = hex::encode(
                    &sha2::Sha256::digest(original.as_os_str().as_encoded_bytes())[..8],
                );
                let content = FileDigest::of(current);
                let name = original
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let backup = self
                    .dir
                    .join(format!("{path_key}-{}-{name}", &content.sha256[..8]));
                super::write_atomic(&backup, current)?;
                BackupEntry {
                    original: original.to_owned(),
                    backup,
                    created_at: super::utc_now_rfc3339(),
                    size_bytes: content.size_bytes,
                    written: Some(FileDigest::of(written)),
                }
            }
        };
        // In place: the index stays in the order the photos were first backed up.
        match entries.iter().position(|b| b.original == original) {
            Some(i) => entries[i] = entry.clone(),
            None => entries.push(entry.clone()),
        }
        if let Err(e) = self.save(lock, &entries) {
            if previous.as_ref().is_none_or(|p| p.backup != entry.backup) {
                let _ = std::fs::remove_file(&entry.backup);
            }
            return Err(e);
        }
        Ok(RecordedWrite { entry, previous })
    }

    /// After the photo was written: a backup the new one replaced is deleted.
    fn commit(&self, recorded: &RecordedWrite) {
        if let Some(p) = &recorded.previous
            && p.backup != recorded.entry.backup
        {
            let _ = std::fs::remove_file(&p.backup);
        }
    }

    /// The photo could not be written: the index goes back to what it was.
    fn undo(&self, lock: &IndexLock, recorded: RecordedWrite) -> Result<(), ExportError> {
        let RecordedWrite { entry, previous } = recorded;
        let mut entries = self.list()?;
        if previous.as_ref().is_none_or(|p| p.backup != entry.backup) {
            let _ = std::fs::remove_file(&entry.backup);
        }
        match (
            entries.iter().position(|b| b.original == entry.original),
            previous,
        ) {
            (Some(i), Some(previous)) => entries[i] = previous,
            (Some(i), None) => {
                entries.remove(i);
            }
            (None, previous) => entries.extend(previous),
        }
        self.save(lock, &entries)
    }

    /// Puts back every backed-up original whose photo is still exactly as geoloupe left it
    /// (atomically, keeping the photo's permissions), and forgets those backups. Photos that
    /// changed since, entries that can't be verified (made by an older geoloupe) and missing
    /// files are skipped with their backups kept; see [`RestoreOutcome`]. One report per
    /// entry, in the index's order. The whole restore holds the lock and saves the index once.
    /// An error means the index itself could not be read or saved.
    pub fn restore_all(&self) -> Result<Vec<RestoreReport>, ExportError> {
        if self.list()?.is_empty() {
            return Ok(Vec::new());
        }
        let lock = self.lock()?;
        let entries = self.list()?;
        let reports: Vec<RestoreReport> = entries
            .into_iter()
            .map(|entry| RestoreReport {
                outcome: restore_one(&entry),
                entry,
            })
            .collect();
        let kept: Vec<BackupEntry> = reports
            .iter()
            .filter(|r| !r.outcome.is_restored())
            .map(|r| r.entry.clone())
            .collect();
        self.save(&lock, &kept)?;
        for r in reports.iter().filter(|r| r.outcome.is_restored()) {
            let _ = std::fs::remove_file(&r.entry.backup);
        }
        Ok(reports)
    }

    /// Deletes every backup; returns how many there were.
    pub fn clear(&self) -> Result<usize, ExportError> {
        if !self.dir.exists() {
            return Ok(0);
        }
        let _lock = self.lock()?;
        let entries = self.list()?;
        for entry in &entries {
            match std::fs::remove_file(&entry.backup) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ExportError::io("delete the backup", &entry.backup)(e)),
            }
        }
        match std::fs::remove_file(self.index_path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ExportError::io("delete", self.index_path())(e)),
        }
        Ok(entries.len())
    }
}

/// Restores one entry if its photo is still what geoloupe wrote (the lock is held).
fn restore_one(entry: &BackupEntry) -> RestoreOutcome {
    let read = |path: &Path, missing: MissingFile| match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(RestoreOutcome::SkippedMissing(missing))
        }
        Err(e) => Err(RestoreOutcome::Failed(ExportError::io("read", path)(e))),
    };
    let original = match read(&entry.backup, MissingFile::Backup) {
        Ok(bytes) => bytes,
        Err(outcome) => return outcome,
    };
    let current = match read(&entry.original, MissingFile::Photo) {
        Ok(bytes) => bytes,
        Err(outcome) => return outcome,
    };
    if current == original {
        // Already the original (say, a restore that stopped before saving the index).
        return RestoreOutcome::Restored;
    }
    match &entry.written {
        None => return RestoreOutcome::SkippedUnverified,
        Some(written) if !written.matches(&current) => return RestoreOutcome::SkippedEditedSince,
        Some(_) => {}
    }
    let permissions = std::fs::metadata(&entry.original)
        .ok()
        .map(|m| m.permissions());
    match write_atomic_with(&entry.original, permissions, |w| w.write_all(&original)) {
        Ok(()) => {
            log::info!("restored the original: {}", entry.original.display());
            RestoreOutcome::Restored
        }
        Err(e) => RestoreOutcome::Failed(e),
    }
}

fn planned(record: &ExportRecord) -> PlannedWrite {
    let skip =
        super::gps_skip(record).or_else(|| (!is_jpeg(&record.path)).then_some(SkipReason::NotJpeg));
    if let Some(reason) = skip {
        return PlannedWrite::skip(record.path.clone(), reason);
    }
    let marking = GpsMarking::for_record(record);
    let marked = if record.origin.is_from_pixels() {
        let error = marking
            .error_radius_m
            .map(|m| format!(", ±{:.0} km", m / 1000.0))
            .unwrap_or_default();
        format!("marked as an estimate{error}")
    } else {
        let altitude = match marking.altitude {
            AltitudeWrite::Set(m) => format!(", altitude {m:.1} m"),
            _ => String::new(),
        };
        format!("from {}{altitude}", record.origin.describe())
    };
    PlannedWrite {
        path: record.path.clone(),
        action: WriteAction::UpdateExifGps,
        detail: format!(
            "GPS {:.6}, {:.6} ({}), {marked}; original backed up",
            record.location.lat_deg,
            record.location.lon_deg,
            record.location_source.review_label()
        ),
    }
}

/// What [`write_exif_gps_all`] would do to each photo (the dry run); touches nothing.
/// Skipped: non-JPEGs, photos with a GPS fix of their own and no accepted location, and
/// photos whose GPS is invalid unless the record says to overwrite it
/// ([`ExportRecord::overwrite_invalid_gps`]). A photo whose only GPS is geoloupe's earlier
/// estimate is rewritten.
pub fn plan_exif_writes(records: &[ExportRecord]) -> Vec<PlannedWrite> {
    records.iter().map(planned).collect()
}

/// Writes `position` as EXIF GPS into the JPEG at `photo`, marked as geoloupe's estimate with
/// an uncertainty of `error_radius_m` metres (`None`: not recorded; see [`error_radius_m`]):
/// backup, then an atomic replace. Through a symbolic link, the link's target is written (and
/// backed up) and the link kept. The caller decided: this checks no skip rule.
pub fn write_exif_gps(
    photo: &Path,
    position: LatLon,
    error_radius_m: Option<f64>,
    backups: &BackupStore,
) -> Result<PathBuf, ExportError> {
    write_exif_gps_with(photo, position, error_radius_m, backups, |w, bytes| {
        w.write_all(bytes)
    })
}

/// [`write_exif_gps`] with the position marked as `marking` says ([`GpsMarking::for_record`]).
pub fn write_marked_exif_gps(
    photo: &Path,
    position: LatLon,
    marking: &GpsMarking,
    backups: &BackupStore,
) -> Result<PathBuf, ExportError> {
    write_marked_with(photo, position, marking, backups, |w, bytes| {
        w.write_all(bytes)
    })
}

/// [`write_exif_gps`] with the final write done by `write` (which gets the temporary file and
/// the new bytes): tests inject a writer that fails half-way. Returns the backup's path.
pub fn write_exif_gps_with(
    photo: &Path,
    position: LatLon,
    error_radius_m: Option<f64>,
    backups: &BackupStore,
    write: impl FnOnce(&mut dyn Write, &[u8]) -> std::io::Result<()>,
) -> Result<PathBuf, ExportError> {
    write_marked_with(
        photo,
        position,
        &GpsMarking::estimate(error_radius_m),
        backups,
        write,
    )
}

fn write_marked_with(
    photo: &Path,
    position: LatLon,
    marking: &GpsMarking,
    backups: &BackupStore,
    write: impl FnOnce(&mut dyn Write, &[u8]) -> std::io::Result<()>,
) -> Result<PathBuf, ExportError> {
    // The file itself, not a link to it: the atomic rename must replace the target.
    let target = crate::platform::canonicalize(photo).map_err(ExportError::io("open", photo))?;
    let meta = std::fs::metadata(&target).map_err(ExportError::io("open", &target))?;
    if meta.permissions().readonly() {
        return Err(ExportError::ReadOnlyFile { path: target });
    }
    super::check_writable_folder(parent_dir(&target))?;
    let lock = backups.lock()?;
    let bytes = std::fs::read(&target).map_err(ExportError::io("read", &target))?;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(ExportError::NotJpeg {
            reason: "no JPEG signature".into(),
            path: target,
        });
    }
    let updated = set_marked_gps_in_jpeg(&bytes, position, marking).map_err(|reason| {
        ExportError::BadExif {
            reason,
            path: target.clone(),
        }
    })?;
    let recorded = backups.record_write(&lock, &target, &bytes, &updated)?;
    match write_atomic_with(&target, Some(meta.permissions()), |w| write(w, &updated)) {
        Ok(()) => {
            backups.commit(&recorded);
            log::info!(
                "wrote EXIF GPS {:.6}, {:.6} (original backed up in {}): {}",
                position.lat_deg,
                position.lon_deg,
                recorded.entry.backup.display(),
                target.display()
            );
            Ok(recorded.entry.backup)
        }
        Err(e) => {
            let _ = backups.undo(&lock, recorded);
            Err(e)
        }
    }
}

/// Writes every record's location into its JPEG as [`plan_exif_writes`] lists them (skips
/// included), marked as its origin says ([`GpsMarking::for_record`]); one result per record (a
/// failure doesn't stop the others).
pub fn write_exif_gps_all(
    records: &[ExportRecord],
    backups: &BackupStore,
) -> Vec<Result<PlannedWrite, ExportError>> {
    records
        .iter()
        .map(|r| {
            let plan = planned(r);
            if plan.action.is_skip() {
                return Ok(plan);
            }
            write_marked_exif_gps(&r.path, r.location, &GpsMarking::for_record(r), backups).map(
                |_| PlannedWrite {
                    action: WriteAction::UpdatedExifGps,
                    ..plan
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rationals_are_exact() {
        let [d, m, s] = dms_rationals(-21.981_111_111);
        assert_eq!(d, (21, 1));
        assert_eq!(m, (58, 1));
        let back = 21.0 + 58.0 / 60.0 + f64::from(s.0) / f64::from(s.1) / 3600.0;
        assert!((back - 21.981_111_111).abs() < 1e-9, "{back}");
        // Seconds that round up to 60 carry into the minutes.
        let [d, m, s] = dms_rationals(10.999_999_999_999);
        assert_eq!((d, m, s), ((11, 1), (0, 1), (0, 1_000_000)));
    }

    #[test]
    fn new_exif_block_reads_back() {
        let jpeg = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/kauai.jpg"),
        )
        .unwrap();
        let position = LatLon::new(-33.856_784, 151.215_297);
        let out = set_gps_in_jpeg(&jpeg, position, Some(12_345.4)).unwrap();
        let exif = ::exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(&out))
            .unwrap();
        let lat = exif
            .get_field(::exif::Tag::GPSLatitude, ::exif::In::PRIMARY)
            .unwrap();
        let ::exif::Value::Rational(r) = &lat.value else {
            panic!("{lat:?}")
        };
        let deg = r[0].to_f64() + r[1].to_f64() / 60.0 + r[2].to_f64() / 3600.0;
        assert!((deg - 33.856_784).abs() < 1e-9);
        // Twice: the second write replaces the first, still one EXIF segment.
        let again = set_gps_in_jpeg(&out, LatLon::new(1.0, 2.0), None).unwrap();
        let segments = header_segments(&again).unwrap();
        assert_eq!(segments.iter().filter(|s| s.marker == 0xE1).count(), 1);
        assert!(set_gps_in_jpeg(b"not a jpeg", position, None).is_err());
        assert!(set_gps_in_jpeg(&jpeg, position, Some(f64::NAN)).is_err());
    }

    #[test]
    fn an_estimate_reads_back_as_one() {
        let jpeg = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/gps.jpg"),
        )
        .unwrap();
        let path = Path::new("gps.jpg");
        assert!(ESTIMATE_METHOD.starts_with(crate::library::exif::ESTIMATE_METHOD_PREFIX));
        let fix = crate::library::exif::read_exif_bytes(&jpeg, path).unwrap();
        assert!(fix.gps.is_some() && fix.gps_estimate.is_none());
        let position = LatLon::new(-33.856_784, 151.215_297);
        let out = set_gps_in_jpeg(&jpeg, position, Some(12_345.4)).unwrap();
        let info = crate::library::exif::read_exif_bytes(&out, path).unwrap();
        assert_eq!(info.gps, None);
        assert_eq!(info.gps_invalid, None);
        let estimate = info.gps_estimate.unwrap();
        assert_eq!(estimate.method, ESTIMATE_METHOD);
        assert_eq!(estimate.error_m, Some(12_345.0));
        assert!(estimate.position.distance_km(&position) < 1e-6);
        // Without a radius, no GPSHPositioningError; the date and orientation are kept.
        let out = set_gps_in_jpeg(&out, position, None).unwrap();
        let info = crate::library::exif::read_exif_bytes(&out, path).unwrap();
        assert_eq!(info.gps_estimate.unwrap().error_m, None);
        assert_eq!(info.taken_at, fix.taken_at);
        assert_eq!(info.orientation, fix.orientation);
    }

    /// Only estimates from pixels are marked as estimates (and read back as geoloupe's
    /// estimate); a track's, a neighbour's or a hand-placed position reads back as the
    /// photo's own GPS, a track's with its altitude, replacing an older one.
    #[test]
    fn each_origin_is_marked_as_what_it_is() {
        let jpeg = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/gps.jpg"),
        )
        .unwrap();
        let path = Path::new("gps.jpg");
        let altitude = |bytes: &[u8]| {
            let exif = ::exif::Reader::new()
                .read_from_container(&mut std::io::Cursor::new(bytes))
                .unwrap();
            let value = |tag| {
                exif.get_field(tag, ::exif::In::PRIMARY)
                    .map(|f| f.value.clone())
            };
            let metres = match value(::exif::Tag::GPSAltitude) {
                Some(::exif::Value::Rational(r)) => Some(r[0].to_f64()),
                _ => None,
            };
            let below = match value(::exif::Tag::GPSAltitudeRef) {
                Some(::exif::Value::Byte(b)) => Some(b[0]),
                _ => None,
            };
            (metres, below)
        };
        // A photo with an altitude of its own (the fixture has none).
        let with_altitude = GpsMarking {
            altitude: AltitudeWrite::Set(100.0),
            ..GpsMarking::estimate(None)
        };
        let jpeg = set_marked_gps_in_jpeg(&jpeg, LatLon::new(1.0, 2.0), &with_altitude).unwrap();
        let (fixture_altitude, _) = altitude(&jpeg);
        assert_eq!(fixture_altitude, Some(100.0));
        let position = LatLon::new(22.05, -159.5);
        let expected_methods = [
            ESTIMATE_METHOD.to_owned(),
            "geoloupe estimate (GeoCLIP trip posterior, up to 120 km/h; single photo \
             21.97000000, -159.37000000)"
                .to_owned(),
            "geoloupe track (Été 2024.gpx, clock -1:00:37.5)".to_owned(),
            "geoloupe neighbour (IMG_0042.jpg, 37 s away)".to_owned(),
            "geoloupe hand (placed by hand)".to_owned(),
        ];
        for (record, expected) in super::super::tests::records_of_every_origin()
            .iter()
            .zip(&expected_methods)
        {
            let marking = GpsMarking::for_record(record);
            assert_eq!(&marking.method, expected);
            let out = set_marked_gps_in_jpeg(&jpeg, position, &marking).unwrap();
            let info = crate::library::exif::read_exif_bytes(&out, path).unwrap();
            if record.origin.is_from_pixels() {
                let estimate = info.gps_estimate.unwrap();
                assert_eq!(&estimate.method, expected);
                assert_eq!(info.gps, None);
            } else {
                assert_eq!(info.gps_estimate, None, "{expected}");
                assert!(info.gps.unwrap().distance_km(&position) < 1e-6);
                assert_eq!(marking.error_radius_m, None, "no uncertainty for a fix");
            }
            match record.origin {
                Origin::Track { .. } => assert_eq!(altitude(&out), (Some(12.5), Some(0))),
                _ => assert_eq!(altitude(&out).0, fixture_altitude, "kept"),
            }
        }
        // Below sea level; a track without altitude drops the old one.
        let mut marking = GpsMarking::estimate(None);
        marking.altitude = AltitudeWrite::Set(-430.25);
        let out = set_marked_gps_in_jpeg(&jpeg, position, &marking).unwrap();
        assert_eq!(altitude(&out), (Some(430.25), Some(1)));
        marking.altitude = AltitudeWrite::Remove;
        let out = set_marked_gps_in_jpeg(&out, position, &marking).unwrap();
        assert_eq!(altitude(&out), (None, None));
        marking.altitude = AltitudeWrite::Set(f64::INFINITY);
        assert!(set_marked_gps_in_jpeg(&jpeg, position, &marking).is_err());
    }

    #[test]
    fn a_method_that_is_not_ascii_is_utf16_in_the_blocks_byte_order() {
        let little = method_bytes("é", Endian::Little);
        assert_eq!(little, b"UNICODE\0\xE9\0");
        let big = method_bytes("é", Endian::Big);
        assert_eq!(big, b"UNICODE\0\0\xE9");
        assert_eq!(method_bytes("ab", Endian::Big), b"ASCII\0\0\0ab");
    }

    fn candidate(rank: usize, position: LatLon, probability: f32) -> ExportCandidate {
        ExportCandidate {
            rank,
            position,
            probability,
            gallery_index: rank,
            place: None,
            refined: None,
        }
    }

    #[test]
    fn error_radius_is_the_weighted_rms_distance() {
        let center = LatLon::new(0.0, 0.0);
        // 1° of longitude at the equator is about 111.19 km.
        let one_degree_m = center.distance_km(&LatLon::new(0.0, 1.0)) * 1000.0;
        let candidates = [
            candidate(1, center, 0.375),
            candidate(2, LatLon::new(0.0, 1.0), 0.125),
        ];
        // Weights 0.75 and 0.25 (renormalised): sqrt(0.25) * d = d / 2.
        let radius = error_radius_m(center, &candidates).unwrap();
        assert!((radius - one_degree_m / 2.0).abs() < 1e-6, "{radius}");
        // Close candidates: the floor.
        let close = [
            candidate(1, center, 0.5),
            candidate(2, LatLon::new(0.0, 0.001), 0.5),
        ];
        assert_eq!(error_radius_m(center, &close), Some(MIN_ERROR_RADIUS_M));
        // One candidate, or no probability: unknown.
        assert_eq!(error_radius_m(center, &candidates[..1]), None);
        let zero = [candidate(1, center, 0.0), candidate(2, center, 0.0)];
        assert_eq!(error_radius_m(center, &zero), None);
    }
}
