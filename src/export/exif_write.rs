//! EXIF GPS written into JPEG files, only when the user asks for it.
//!
//! - **Pixels untouched**: only the EXIF `APP1` segment changes (or a new one is inserted after
//!   `SOI`/`APP0`); every other byte of the file, the entropy-coded image data included, is
//!   copied as it is.
//! - **Other metadata kept**: the TIFF structure inside `APP1` is never re-encoded. The old
//!   bytes stay where they are (so MakerNotes and every offset into them stay valid); a new
//!   GPS IFD and a copy of IFD0 pointing at it are appended, and the header points at the copy.
//!   Other GPS tags of an existing GPS IFD (altitude, time stamp) are carried over.
//! - **A backup first**: the original file is copied into a [`BackupStore`] (the first time a
//!   file is changed; later writes keep that first original) until the user clears backups.
//! - **Atomic**: the new file is written to a temporary file in the same folder, flushed to
//!   disk and renamed over the original, so a crash or a full disk never leaves half a file.
//! - **Read-only** files and folders are refused before anything is written.
//!
//! We do this by hand rather than with `little_exif`, which decodes and re-encodes the whole
//! EXIF block (so tags it doesn't know and MakerNote offsets are at risk).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::{ExportError, ExportRecord, PlannedWrite, parent_dir, write_atomic_with};
use crate::geo::LatLon;

const EXIF_HEADER: &[u8; 6] = b"Exif\0\0";
const TAG_GPS_IFD: u16 = 0x8825;
const TYPE_BYTE: u16 = 1;
const TYPE_ASCII: u16 = 2;
const TYPE_LONG: u16 = 4;
const TYPE_RATIONAL: u16 = 5;
/// GPS tags we write (version, lat ref, lat, lon ref, lon, map datum).
const OUR_GPS_TAGS: &[u16] = &[0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0012];

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

fn write_ifd(out: &mut Vec<u8>, e: Endian, entries: &[RawEntry], next: u32) {
    e.put_u16(out, u16::try_from(entries.len()).unwrap_or(u16::MAX));
    for (_, raw) in entries {
        out.extend_from_slice(raw);
    }
    e.put_u32(out, next);
}

/// A TIFF block with GPS set to `position` (see the module docs for how). `tiff` is `None` for
/// a photo without EXIF: a minimal block (IFD0 + GPS IFD) is made.
fn tiff_with_gps(tiff: Option<&[u8]>, position: LatLon) -> Result<Vec<u8>, String> {
    let (mut out, e, ifd0_entries, ifd0_next, old_gps) = match tiff {
        None => {
            let mut out = b"II*\0".to_vec();
            Endian::Little.put_u32(&mut out, 0); // patched below
            (out, Endian::Little, Vec::new(), 0, Vec::new())
        }
        Some(tiff) => {
            let e = match tiff.get(..4) {
                Some(b"II*\0") => Endian::Little,
                Some(b"MM\0*") => Endian::Big,
                _ => return Err("not a TIFF header".into()),
            };
            let ifd0 = e.u32(tiff, 4).ok_or("truncated TIFF header")? as usize;
            let (entries, next) = read_ifd(tiff, e, ifd0).ok_or("IFD0 runs past the EXIF block")?;
            let old_gps = match entries.iter().find(|(t, _)| *t == TAG_GPS_IFD) {
                Some((_, raw)) => {
                    let at = e.u32(raw, 8).ok_or("bad GPS pointer")? as usize;
                    read_ifd(tiff, e, at)
                        .map(|(g, _)| g)
                        .ok_or("the GPS IFD runs past the EXIF block")?
                }
                None => Vec::new(),
            };
            (tiff.to_vec(), e, entries, next, old_gps)
        }
    };
    if out.len() % 2 == 1 {
        out.push(0);
    }
    // The GPS IFD: other tools' GPS tags kept, ours replaced.
    let mut gps: Vec<RawEntry> = old_gps
        .into_iter()
        .filter(|(t, _)| !OUR_GPS_TAGS.contains(t))
        .collect();
    let gps_ifd_at = out.len();
    let gps_count = gps.len() + OUR_GPS_TAGS.len();
    let data_at = gps_ifd_at + 2 + 12 * gps_count + 4;
    let lat_at = data_at;
    let lon_at = lat_at + 24;
    let datum_at = lon_at + 24;
    let lat_ref = if position.lat_deg < 0.0 { b'S' } else { b'N' };
    let lon_ref = if position.lon_deg < 0.0 { b'W' } else { b'E' };
    gps.push(entry(e, 0x0000, TYPE_BYTE, 4, [2, 3, 0, 0]));
    gps.push(entry(e, 0x0001, TYPE_ASCII, 2, [lat_ref, 0, 0, 0]));
    gps.push(entry(e, 0x0002, TYPE_RATIONAL, 3, offset_value(e, lat_at)?));
    gps.push(entry(e, 0x0003, TYPE_ASCII, 2, [lon_ref, 0, 0, 0]));
    gps.push(entry(e, 0x0004, TYPE_RATIONAL, 3, offset_value(e, lon_at)?));
    gps.push(entry(e, 0x0012, TYPE_ASCII, 7, offset_value(e, datum_at)?));
    gps.sort_by_key(|(t, _)| *t);
    write_ifd(&mut out, e, &gps, 0);
    for value in [position.lat_deg, position.lon_deg] {
        for (num, den) in dms_rationals(value) {
            e.put_u32(&mut out, num);
            e.put_u32(&mut out, den);
        }
    }
    out.extend_from_slice(b"WGS-84\0\0");
    // A copy of IFD0 that points at the new GPS IFD; the header points at the copy.
    let mut ifd0: Vec<RawEntry> = ifd0_entries
        .into_iter()
        .filter(|(t, _)| *t != TAG_GPS_IFD)
        .collect();
    ifd0.push(entry(
        e,
        TAG_GPS_IFD,
        TYPE_LONG,
        1,
        offset_value(e, gps_ifd_at)?,
    ));
    ifd0.sort_by_key(|(t, _)| *t);
    let ifd0_at = out.len();
    write_ifd(&mut out, e, &ifd0, ifd0_next);
    let header = offset_value(e, ifd0_at)?;
    out[4..8].copy_from_slice(&header);
    Ok(out)
}

/// The JPEG `bytes` with EXIF GPS set to `position`: only the EXIF `APP1` segment changes.
/// Pure; the error says why the file can't be changed safely.
pub fn set_gps_in_jpeg(bytes: &[u8], position: LatLon) -> Result<Vec<u8>, String> {
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
    let new_tiff = tiff_with_gps(tiff, position)?;
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

/// Whether `path` starts like a JPEG.
pub fn is_jpeg(path: &Path) -> bool {
    let mut magic = [0u8; 3];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == [0xFF, 0xD8, 0xFF]
}

/// One backed-up original.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupEntry {
    /// The photo as it was before geoloupe first changed it.
    pub original: PathBuf,
    /// The copy.
    pub backup: PathBuf,
    /// UTC, RFC 3339.
    pub created_at: String,
    pub size_bytes: u64,
}

/// Originals of photos geoloupe changed, kept until the user clears them. One folder with the
/// copies and an `index.json` naming where each came from.
#[derive(Clone, Debug)]
pub struct BackupStore {
    dir: PathBuf,
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

    /// Every backup, oldest first (an empty list when there are none).
    pub fn list(&self) -> Result<Vec<BackupEntry>, ExportError> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(ExportError::io("read the backup index", path)(e)),
        }
    }

    fn save(&self, entries: &[BackupEntry]) -> Result<(), ExportError> {
        super::write_atomic(&self.index_path(), &serde_json::to_vec_pretty(entries)?)
    }

    /// Keeps a copy of `original` (whose content is `bytes`) unless one is kept already.
    /// Returns the entry and whether it was made now.
    pub fn backup(
        &self,
        original: &Path,
        bytes: &[u8],
    ) -> Result<(BackupEntry, bool), ExportError> {
        let original = std::path::absolute(original)
            .map_err(ExportError::io("resolve the path of", original))?;
        let mut entries = self.list()?;
        if let Some(existing) = entries
            .iter()
            .find(|b| b.original == original && b.backup.is_file())
        {
            return Ok((existing.clone(), false));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(ExportError::io("create the backup folder", &self.dir))?;
        let key = hex::encode(&sha2::Sha256::digest(original.as_os_str().as_encoded_bytes())[..8]);
        let name = original
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let backup = self.dir.join(format!("{key}-{name}"));
        super::write_atomic(&backup, bytes)?;
        let made = BackupEntry {
            original,
            backup,
            created_at: super::utc_now_rfc3339(),
            size_bytes: bytes.len() as u64,
        };
        entries.retain(|b| b.original != made.original);
        entries.push(made.clone());
        self.save(&entries)?;
        Ok((made, true))
    }

    fn forget(&self, entry: &BackupEntry) -> Result<(), ExportError> {
        let mut entries = self.list()?;
        entries.retain(|b| b != entry);
        let _ = std::fs::remove_file(&entry.backup);
        self.save(&entries)
    }

    /// Puts every backed-up original back (atomically) and forgets its backup; returns how
    /// many were restored.
    pub fn restore_all(&self) -> Result<usize, ExportError> {
        let entries = self.list()?;
        for entry in &entries {
            let bytes = std::fs::read(&entry.backup)
                .map_err(ExportError::io("read the backup", &entry.backup))?;
            super::write_atomic(&entry.original, &bytes)?;
            self.forget(entry)?;
        }
        Ok(entries.len())
    }

    /// Deletes every backup; returns how many there were.
    pub fn clear(&self) -> Result<usize, ExportError> {
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

fn planned(record: &ExportRecord) -> PlannedWrite {
    if let Some(skip) = super::skip_measured(record, &record.path) {
        return skip;
    }
    let (action, detail) = if is_jpeg(&record.path) {
        (
            "update EXIF GPS",
            format!(
                "GPS {:.6}, {:.6} ({}); original backed up",
                record.location.lat_deg,
                record.location.lon_deg,
                record.location_source.as_str()
            ),
        )
    } else {
        (
            "skip",
            "not a JPEG: EXIF GPS is only written into JPEGs".into(),
        )
    };
    PlannedWrite {
        path: record.path.clone(),
        action: action.to_owned(),
        detail,
    }
}

/// What [`write_exif_gps_all`] would do to each photo (the dry run); touches nothing. Non-JPEGs
/// and photos with EXIF GPS but no accepted location are skipped.
pub fn plan_exif_writes(records: &[ExportRecord]) -> Vec<PlannedWrite> {
    records.iter().map(planned).collect()
}

/// Writes `position` as EXIF GPS into the JPEG at `photo`: backup, then an atomic replace.
pub fn write_exif_gps(
    photo: &Path,
    position: LatLon,
    backups: &BackupStore,
) -> Result<PathBuf, ExportError> {
    write_exif_gps_with(photo, position, backups, |w, bytes| w.write_all(bytes))
}

/// [`write_exif_gps`] with the final write done by `write` (which gets the temporary file and
/// the new bytes): tests inject a writer that fails half-way. Returns the backup's path.
pub fn write_exif_gps_with(
    photo: &Path,
    position: LatLon,
    backups: &BackupStore,
    write: impl FnOnce(&mut dyn Write, &[u8]) -> std::io::Result<()>,
) -> Result<PathBuf, ExportError> {
    let meta = std::fs::metadata(photo).map_err(ExportError::io("open", photo))?;
    if meta.permissions().readonly() {
        return Err(ExportError::ReadOnlyFile {
            path: photo.to_owned(),
        });
    }
    super::check_writable_folder(parent_dir(photo))?;
    let bytes = std::fs::read(photo).map_err(ExportError::io("read", photo))?;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(ExportError::NotJpeg {
            reason: "no JPEG signature".into(),
            path: photo.to_owned(),
        });
    }
    let updated = set_gps_in_jpeg(&bytes, position).map_err(|reason| ExportError::BadExif {
        reason,
        path: photo.to_owned(),
    })?;
    let (entry, made_now) = backups.backup(photo, &bytes)?;
    match write_atomic_with(photo, Some(meta.permissions()), |w| write(w, &updated)) {
        Ok(()) => Ok(entry.backup),
        Err(e) => {
            if made_now {
                let _ = backups.forget(&entry);
            }
            Err(e)
        }
    }
}

/// Writes every record's location into its JPEG as [`plan_exif_writes`] lists them (skips
/// included); one result per record (a failure doesn't stop the others).
pub fn write_exif_gps_all(
    records: &[ExportRecord],
    backups: &BackupStore,
) -> Vec<Result<PlannedWrite, ExportError>> {
    records
        .iter()
        .map(|r| {
            let plan = planned(r);
            if plan.action == "skip" {
                return Ok(plan);
            }
            write_exif_gps(&r.path, r.location, backups).map(|_| PlannedWrite {
                action: "updated EXIF GPS".into(),
                ..plan
            })
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
        let out = set_gps_in_jpeg(&jpeg, position).unwrap();
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
        let again = set_gps_in_jpeg(&out, LatLon::new(1.0, 2.0)).unwrap();
        let segments = header_segments(&again).unwrap();
        assert_eq!(segments.iter().filter(|s| s.marker == 0xE1).count(), 1);
        assert!(set_gps_in_jpeg(b"not a jpeg", position).is_err());
    }
}
