//! HEIC/HEIF (and AVIF) photos through libheif, with the `heif` feature (on by default; the
//! Windows and macOS cross builds leave it off).
//!
//! What Pillow + pillow-heif do, and so do we:
//! - libheif decodes the primary image **with the container's transforms applied** (`clap`
//!   crop, `irot` rotation, `imir` mirroring), to 8-bit RGB (10-bit HEVC reduced by libheif,
//!   as pillow-heif's `convert_hdr_to_8bit`); alpha is dropped as `convert("RGB")` drops it;
//! - the EXIF Orientation is **not** applied a second time: an iPhone writes both `irot` and
//!   Orientation 6 for the same rotation, and pillow-heif resets the EXIF tag to 1 on opening,
//!   so `ImageOps.exif_transpose` leaves the image alone;
//! - EXIF comes from the file's `Exif` metadata item: 4 bytes (big-endian) giving the offset of
//!   the TIFF header after them (usually 6, past `Exif\0\0`), then the TIFF structure that
//!   kamadak-exif reads as it reads a JPEG's.
//!
//! Without the feature every decode is [`PhotoError::NoHeifSupport`], which names the file and
//! says how to get a build that reads it.

use std::path::Path;

use image::RgbImage;

use super::preprocess::PhotoError;

/// The TIFF structure inside a HEIF `Exif` item's payload: skips the 4-byte offset field and
/// the `offset` bytes it announces (`Exif\0\0`). A wrong offset (some writers put 0 before
/// `Exif\0\0`) is forgiven when a TIFF header sits right after the `Exif\0\0` marker.
pub fn tiff_from_exif_item(item: &[u8]) -> Result<&[u8], String> {
    let is_tiff = |b: &[u8]| b.starts_with(b"II*\0") || b.starts_with(b"MM\0*");
    let (offset_field, rest) = item
        .split_first_chunk::<4>()
        .ok_or_else(|| format!("Exif item of {} bytes has no TIFF offset", item.len()))?;
    let offset = u32::from_be_bytes(*offset_field) as usize;
    if let Some(tiff) = rest.get(offset..).filter(|t| is_tiff(t)) {
        return Ok(tiff);
    }
    if let Some(tiff) = rest.strip_prefix(b"Exif\0\0").filter(|t| is_tiff(t)) {
        return Ok(tiff);
    }
    Err(format!(
        "Exif item's TIFF header offset {offset} does not lead to a TIFF header ({} bytes)",
        rest.len()
    ))
}

#[cfg(feature = "heif")]
mod libheif {
    use std::path::Path;
    use std::sync::OnceLock;

    use image::RgbImage;
    use libheif_rs::{ColorSpace, HeifContext, ImageHandle, LibHeif, RgbChroma};

    use crate::model::preprocess::{PhotoError, check_declared_size};

    /// libheif's global state (its decoder plugins), initialised once and kept for the process.
    fn lib() -> &'static LibHeif {
        static LIB: OnceLock<LibHeif> = OnceLock::new();
        LIB.get_or_init(LibHeif::new)
    }

    /// The version of the libheif this process links, e.g. `1.15.1`.
    pub fn version() -> String {
        let [major, minor, patch] = lib().version();
        format!("{major}.{minor}.{patch}")
    }

    pub fn decode(bytes: &[u8], path: &Path) -> Result<RgbImage, PhotoError> {
        let fail = |reason: String| PhotoError::Decode {
            path: path.to_owned(),
            reason,
        };
        let lib = lib();
        let context = HeifContext::read_from_bytes(bytes).map_err(|e| fail(e.to_string()))?;
        let handle = context
            .primary_image_handle()
            .map_err(|e| fail(e.to_string()))?;
        check_size(&handle, path)?;
        let alpha = handle.has_alpha_channel();
        let chroma = if alpha {
            RgbChroma::Rgba
        } else {
            RgbChroma::Rgb
        };
        // Transforms (clap, irot, imir) applied, as pillow-heif decodes.
        let image = lib
            .decode(&handle, ColorSpace::Rgb(chroma), None)
            .map_err(|e| fail(e.to_string()))?;
        let plane = image
            .planes()
            .interleaved
            .ok_or_else(|| fail("libheif returned no interleaved RGB plane".into()))?;
        let channels = if alpha { 4 } else { 3 };
        let (width, height) = (plane.width as usize, plane.height as usize);
        if plane.storage_bits_per_pixel as usize != 8 * channels
            || plane.stride < width * channels
            || plane.data.len() < plane.stride * height.saturating_sub(1) + width * channels
        {
            return Err(fail(format!(
                "libheif returned an unexpected plane: {}x{} px, {} bits per pixel, stride {}",
                plane.width, plane.height, plane.storage_bits_per_pixel, plane.stride
            )));
        }
        let mut rgb = Vec::with_capacity(width * height * 3);
        for row in plane.data.chunks(plane.stride).take(height) {
            let row = &row[..width * channels];
            if alpha {
                // Pillow's convert("RGB") drops alpha without compositing.
                rgb.extend(row.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]));
            } else {
                rgb.extend_from_slice(row);
            }
        }
        RgbImage::from_raw(plane.width, plane.height, rgb)
            .ok_or_else(|| fail("libheif returned fewer pixels than declared".into()))
    }

    /// Refuses by the size the container declares (after its transforms), before decoding.
    fn check_size(handle: &ImageHandle, path: &Path) -> Result<(), PhotoError> {
        let channels: u64 = if handle.has_alpha_channel() { 4 } else { 3 };
        // libheif holds the decoded planes and the RGB output at once; 16-bit samples above 8.
        let sample_bytes: u64 = if handle.luma_bits_per_pixel() > 8 {
            2
        } else {
            1
        };
        check_declared_size(
            u64::from(handle.width()),
            u64::from(handle.height()),
            2 * channels * sample_bytes,
        )
        .map_err(|e| PhotoError::TooLarge {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The payload of the primary image's first `Exif` metadata item (offset field included),
    /// or `None` when it has none, read by libheif's own file reader (it parses the boxes and
    /// reads that item). Not libheif-rs 0.20's `StreamReader`: its read callback makes a slice
    /// from libheif's pointer even when it is null (fixed in libheif-rs 1.0.2) and fails on a
    /// short `Read::read`.
    pub fn exif_item_from_file(name: &str) -> Result<Option<Vec<u8>>, String> {
        lib();
        let context = HeifContext::read_from_file(name).map_err(|e| e.to_string())?;
        exif_item(&context)
    }

    /// [`exif_item_from_file`] for a file already in memory.
    pub fn exif_item_from_bytes(bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        lib();
        let context = HeifContext::read_from_bytes(bytes).map_err(|e| e.to_string())?;
        exif_item(&context)
    }

    fn exif_item(context: &HeifContext<'_>) -> Result<Option<Vec<u8>>, String> {
        let handle = context.primary_image_handle().map_err(|e| e.to_string())?;
        let mut ids = [0; 1];
        if handle.metadata_block_ids(&mut ids, b"Exif") == 0 {
            return Ok(None);
        }
        handle.metadata(ids[0]).map(Some).map_err(|e| e.to_string())
    }
}

/// Decodes a HEIF/AVIF photo's primary image as 8-bit RGB, with the container's rotation and
/// mirroring applied and the EXIF orientation ignored (see the module's notes).
#[cfg(feature = "heif")]
pub fn decode(bytes: &[u8], path: &Path) -> Result<RgbImage, PhotoError> {
    libheif::decode(bytes, path)
}

/// Without the `heif` feature: the error that says so.
#[cfg(not(feature = "heif"))]
pub fn decode(_bytes: &[u8], path: &Path) -> Result<RgbImage, PhotoError> {
    Err(PhotoError::NoHeifSupport {
        path: path.to_owned(),
    })
}

/// The TIFF bytes of a HEIF file's EXIF (the `Exif` item, its offset field skipped), `None`
/// when it has no `Exif` item. With the `heif` feature only; without it, kamadak-exif's own
/// HEIF parser is used by [`crate::library::exif`].
#[cfg(feature = "heif")]
pub fn exif_tiff(path: &Path) -> Result<Option<Vec<u8>>, String> {
    // libheif opens the file by a narrow (UTF-8) name; on Windows that is not the file system's
    // encoding, and a non-UTF-8 path has none: those are read into memory first.
    let item = match path.to_str().filter(|_| cfg!(unix)) {
        Some(name) if !name.contains('\0') => libheif::exif_item_from_file(name)?,
        _ => libheif::exif_item_from_bytes(&std::fs::read(path).map_err(|e| e.to_string())?)?,
    };
    item.map(|item| tiff_from_exif_item(&item).map(<[u8]>::to_vec))
        .transpose()
}

/// [`exif_tiff`] of a HEIF file already in memory.
#[cfg(feature = "heif")]
pub fn exif_tiff_from_bytes(bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
    libheif::exif_item_from_bytes(bytes)?
        .map(|item| tiff_from_exif_item(&item).map(<[u8]>::to_vec))
        .transpose()
}

/// The linked libheif's version, or `None` in a build without the `heif` feature.
pub fn libheif_version() -> Option<String> {
    #[cfg(feature = "heif")]
    {
        Some(libheif::version())
    }
    #[cfg(not(feature = "heif"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/images")
            .join(name)
    }

    #[test]
    fn exif_item_offset_is_skipped() {
        let tiff = b"MM\0*\0\0\0\x08rest";
        let mut item = vec![0, 0, 0, 6];
        item.extend_from_slice(b"Exif\0\0");
        item.extend_from_slice(tiff);
        assert_eq!(tiff_from_exif_item(&item).unwrap(), tiff);
        // Offset 0: the TIFF header right after the field.
        let mut direct = vec![0, 0, 0, 0];
        direct.extend_from_slice(b"II*\0\x08\0\0\0");
        assert_eq!(tiff_from_exif_item(&direct).unwrap(), b"II*\0\x08\0\0\0");
        // A writer that says 0 but puts `Exif\0\0` first.
        let mut wrong = vec![0, 0, 0, 0];
        wrong.extend_from_slice(b"Exif\0\0");
        wrong.extend_from_slice(tiff);
        assert_eq!(tiff_from_exif_item(&wrong).unwrap(), tiff);
        // Garbage and an offset past the end are errors, not panics.
        assert!(tiff_from_exif_item(&[0, 0]).is_err());
        assert!(tiff_from_exif_item(&[0, 0, 0, 200, b'M', b'M']).is_err());
        assert!(tiff_from_exif_item(&[0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }

    /// heic_gps.heic is stored 320 x 240 with `irot` (90° clockwise for display) and EXIF
    /// Orientation 6, as an iPhone writes a portrait photo: libheif rotates it once, to
    /// 240 x 320, and the EXIF orientation is not applied on top (that would give 320 x 240
    /// again, upside down).
    #[cfg(feature = "heif")]
    #[test]
    fn heic_decodes_rotated_once() {
        let bytes = std::fs::read(fixture("heic_gps.heic")).unwrap();
        let rgb = decode(&bytes, Path::new("heic_gps.heic")).unwrap();
        assert_eq!(rgb.dimensions(), (240, 320));
        let via_photo =
            crate::model::preprocess::decode_photo(&bytes, Path::new("heic_gps.heic")).unwrap();
        assert_eq!(via_photo, rgb);
        let mirrored = std::fs::read(fixture("heic_mirror.heic")).unwrap();
        let rgb = decode(&mirrored, Path::new("heic_mirror.heic")).unwrap();
        assert_eq!(rgb.dimensions(), (131, 203));
        assert!(libheif_version().is_some_and(|v| v.starts_with('1')));
    }

    /// avif_small.avif (Pillow's AVIF encoder): pixel (x, y) = (2x, 2y, x + y), decoded by
    /// libheif's AV1 decoder (Debian's libheif has dav1d and aom built in) within a few levels
    /// of the ramp (quality 90; libavif and libheif convert YUV to RGB up to 3 levels apart).
    #[cfg(feature = "heif")]
    #[test]
    fn avif_decodes_through_libheif() {
        let bytes = std::fs::read(fixture("avif_small.avif")).unwrap();
        assert_eq!(
            crate::domain::PhotoFormat::sniff(&bytes[..32]),
            Some(crate::domain::PhotoFormat::Avif)
        );
        let rgb = crate::model::preprocess::decode_photo(&bytes, Path::new("a.avif")).unwrap();
        assert_eq!(rgb.dimensions(), (120, 90));
        // No Exif item: none, not an error (libheif-rs 0.20's StreamReader aborted here).
        assert_eq!(exif_tiff(&fixture("avif_small.avif")).unwrap(), None);
        for (x, y) in [(10, 10), (60, 45), (100, 80)] {
            let expected = [2 * x, 2 * y, x + y];
            let got = rgb.get_pixel(x, y).0;
            for c in 0..3 {
                let diff = (i64::from(got[c]) - i64::from(expected[c])).abs();
                assert!(diff <= 8, "({x}, {y}): {got:?} vs {expected:?}");
            }
        }
    }

    #[cfg(feature = "heif")]
    #[test]
    fn heic_exif_item_is_read_through_libheif() {
        let tiff = exif_tiff(&fixture("heic_gps.heic")).unwrap().unwrap();
        let exif = ::exif::Reader::new().read_raw(tiff).unwrap();
        let orientation = exif
            .get_field(::exif::Tag::Orientation, ::exif::In::PRIMARY)
            .and_then(|f| f.value.get_uint(0));
        assert_eq!(orientation, Some(6), "the stored tag keeps the iPhone's 6");
        // A JPEG is no HEIF: an error, not a panic.
        assert!(exif_tiff(&fixture("kauai.jpg")).is_err());
    }

    #[cfg(feature = "heif")]
    #[test]
    fn broken_heic_is_a_decode_error_naming_the_file() {
        let bytes = std::fs::read(fixture("heic_gps.heic")).unwrap();
        for len in [40, bytes.len() / 2] {
            let err = decode(&bytes[..len], Path::new("cut.heic")).unwrap_err();
            assert!(matches!(err, PhotoError::Decode { .. }), "{err:?}");
            assert!(err.to_string().ends_with("cut.heic"), "{err}");
        }
    }

    #[cfg(not(feature = "heif"))]
    #[test]
    fn without_the_feature_heic_is_refused_with_how_to_get_it() {
        let bytes = std::fs::read(fixture("heic_gps.heic")).unwrap();
        let err =
            crate::model::preprocess::decode_photo(&bytes, Path::new("IMG_0001.HEIC")).unwrap_err();
        assert!(matches!(err, PhotoError::NoHeifSupport { .. }), "{err:?}");
        let message = err.to_string();
        for part in [
            "no HEIC/HEIF support",
            "`heif` feature",
            "libheif",
            "IMG_0001.HEIC",
        ] {
            assert!(message.contains(part), "{message}");
        }
        assert_eq!(libheif_version(), None);
    }
}
