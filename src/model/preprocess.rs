//! Photo decoding and CLIP preprocessing, equal to Hugging Face's `CLIPImageProcessor` as
//! configured for `openai/clip-vit-large-patch14`.
//!
//! The steps, in the processor's order:
//! 1. decode (JPEG, PNG, WebP, TIFF, GIF, BMP; HEIC/HEIF and AVIF through libheif with the
//!    `heif` feature, see [`super::heif`]) with limits checked on the dimensions the header
//!    declares before any pixel is decoded ([`check_declared_size`]: Pillow's decompression-bomb
//!    threshold and a byte budget), so a decompression bomb is an error and not an out-of-memory
//!    kill; JPEGs with libjpeg-turbo's decoder and Pillow's settings, so the pixels are
//!    Pillow's bit for bit;
//! 2. **apply the EXIF orientation** — what a person sees is what the model sees. The Python
//!    `geoclip` package does not do this (it feeds the stored pixel grid), so a rotated phone
//!    photo can score differently there. HEIF is the exception, as in pillow-heif: libheif
//!    applies the container's rotation and mirroring, and the EXIF tag (an iPhone writes the
//!    same rotation there too) is not applied again;
//! 3. convert to 8-bit RGB as Pillow's `convert("RGB")` does: alpha dropped (not composited),
//!    grey replicated, 16-bit samples reduced to their high byte;
//! 4. resize so the shortest edge is `size` (224) with Pillow's bicubic convolution
//!    (Catmull-Rom, a = -0.5, antialiased when downscaling, rounded to u8 after each pass),
//!    the long edge being `int(size * long / short)` as in `get_resize_output_image_size`;
//! 5. centre crop to `crop_size` (top = (h - crop) // 2);
//! 6. rescale by 1/255 and normalise with CLIP's mean and std, giving CHW f32.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use image::{DynamicImage, ImageDecoder as _, RgbImage};

/// The largest decoded image we accept, in bytes of pixel data (16-bit samples and alpha count).
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// The most pixels an image may declare: Pillow's decompression-bomb threshold, twice
/// `Image.MAX_IMAGE_PIXELS` (89,478,485), above which `Image.open` raises
/// `DecompressionBombError`. A 30000 x 30000 image (900 megapixels) is refused whatever its
/// colour type; a 170-megapixel panorama fits.
pub const MAX_IMAGE_PIXELS: u64 = 178_956_970;

/// Images more elongated than this are refused: resizing the short side to 224 would make the
/// long side enormous.
pub const MAX_ASPECT_RATIO: f64 = 64.0;

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("empty file (0 bytes): {path}")]
    Empty { path: PathBuf },
    #[error("not a supported image ({}): {path}", crate::domain::SUPPORTED_FORMATS)]
    UnknownFormat { path: PathBuf },
    /// A HEIC/HEIF or AVIF photo in a build without the `heif` feature.
    #[error("{}: {path}", crate::domain::NO_HEIF_SUPPORT)]
    NoHeifSupport { path: PathBuf },
    #[error("image too large to decode safely ({reason}): {path}")]
    TooLarge { path: PathBuf, reason: String },
    #[error("could not decode image ({reason}): {path}")]
    Decode { path: PathBuf, reason: String },
    #[error("image is {width_px}x{height_px}, too elongated to crop a square from: {path}")]
    ExtremeAspect {
        path: PathBuf,
        width_px: u32,
        height_px: u32,
    },
}

/// Why an image is refused by the size its header declares (see [`check_declared_size`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeLimitError {
    #[error("{width_px}x{height_px} = {pixels} pixels; limit {MAX_IMAGE_PIXELS} pixels")]
    Pixels {
        width_px: u64,
        height_px: u64,
        pixels: u64,
    },
    #[error(
        "{width_px}x{height_px} pixels, {decoded_bytes} bytes decoded; limit {MAX_DECODED_BYTES} bytes"
    )]
    Bytes {
        width_px: u64,
        height_px: u64,
        decoded_bytes: u64,
    },
}

/// Refuses an image by the dimensions its header declares, before a single pixel is decoded or
/// allocated: more than [`MAX_IMAGE_PIXELS`] pixels, or more than [`MAX_DECODED_BYTES`] bytes
/// at `bytes_per_px` (what the decoder's buffer holds per pixel). Every decoder of photos
/// calls this: [`decode_photo`] for every format, and the thumbnails' JPEG fast path.
pub fn check_declared_size(
    width_px: u64,
    height_px: u64,
    bytes_per_px: u64,
) -> Result<(), SizeLimitError> {
    let pixels = width_px.saturating_mul(height_px);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(SizeLimitError::Pixels {
            width_px,
            height_px,
            pixels,
        });
    }
    let decoded_bytes = pixels.saturating_mul(bytes_per_px);
    if decoded_bytes > MAX_DECODED_BYTES {
        return Err(SizeLimitError::Bytes {
            width_px,
            height_px,
            decoded_bytes,
        });
    }
    Ok(())
}

/// The `preprocessor_config.json` fields we honour.
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessConfig {
    pub shortest_edge_px: u32,
    pub crop_height_px: u32,
    pub crop_width_px: u32,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
    pub rescale_factor: f32,
    pub do_resize: bool,
    pub do_center_crop: bool,
    pub do_normalize: bool,
}

/// CLIP's normalisation, as `preprocessor_config.json` writes it (f32, like the processor's
/// arithmetic after `rescale`).
pub const OPENAI_CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's standard deviations; the literals keep the published digits (f32 rounds the last one).
#[allow(clippy::excessive_precision)]
pub const OPENAI_CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

impl PreprocessConfig {
    /// `openai/clip-vit-large-patch14`'s processor.
    pub fn clip_vit_large_patch14() -> Self {
        Self {
            shortest_edge_px: 224,
            crop_height_px: 224,
            crop_width_px: 224,
            image_mean: OPENAI_CLIP_MEAN,
            image_std: OPENAI_CLIP_STD,
            rescale_factor: 1.0 / 255.0,
            do_resize: true,
            do_center_crop: true,
            do_normalize: true,
        }
    }

    /// Reads a Hugging Face `preprocessor_config.json` (both the old `size: 224` and the newer
    /// `size: {"shortest_edge": 224}` forms). Only bicubic resampling (`resample: 3`) is supported.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut cfg = Self::clip_vit_large_patch14();
        let as_u32 = |v: &serde_json::Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
        if let Some(size) = value.get("size") {
            cfg.shortest_edge_px = as_u32(size)
                .or_else(|| size.get("shortest_edge").and_then(as_u32))
                .ok_or("`size` must be an integer or {\"shortest_edge\": n}")?;
        }
        if let Some(crop) = value.get("crop_size") {
            if let Some(n) = as_u32(crop) {
                (cfg.crop_height_px, cfg.crop_width_px) = (n, n);
            } else {
                cfg.crop_height_px = crop
                    .get("height")
                    .and_then(as_u32)
                    .ok_or("`crop_size.height` missing")?;
                cfg.crop_width_px = crop
                    .get("width")
                    .and_then(as_u32)
                    .ok_or("`crop_size.width` missing")?;
            }
        }
        let triple = |key: &str| -> Result<Option<[f32; 3]>, String> {
            match value.get(key) {
                None => Ok(None),
                Some(v) => {
                    let list: Vec<f32> =
                        serde_json::from_value(v.clone()).map_err(|e| format!("`{key}`: {e}"))?;
                    <[f32; 3]>::try_from(list)
                        .map(Some)
                        .map_err(|_| format!("`{key}` must have 3 values"))
                }
            }
        };
        if let Some(mean) = triple("image_mean")? {
            cfg.image_mean = mean;
        }
        if let Some(std) = triple("image_std")? {
            cfg.image_std = std;
        }
        if let Some(f) = value.get("rescale_factor").and_then(|v| v.as_f64()) {
            cfg.rescale_factor = f as f32;
        }
        for (key, field) in [
            ("do_resize", &mut cfg.do_resize),
            ("do_center_crop", &mut cfg.do_center_crop),
            ("do_normalize", &mut cfg.do_normalize),
        ] {
            if let Some(b) = value.get(key).and_then(|v| v.as_bool()) {
                *field = b;
            }
        }
        if let Some(resample) = value.get("resample").and_then(|v| v.as_u64())
            && resample != 3
        {
            return Err(format!(
                "resample = {resample} is not supported (only 3, bicubic)"
            ));
        }
        if cfg.image_std.contains(&0.0) {
            return Err("`image_std` must not contain 0".into());
        }
        Ok(cfg)
    }
}

/// A photo ready for the vision tower.
#[derive(Clone, Debug)]
pub struct Preprocessed {
    /// The resized and cropped image, HWC u8, before rescaling and normalisation.
    pub pixels_u8: RgbImage,
    /// CHW f32, normalised: what the model reads.
    pub chw: Vec<f32>,
}

/// Reads and decodes a photo, applying its EXIF orientation, as 8-bit RGB.
pub fn load_photo(path: &Path) -> Result<RgbImage, PhotoError> {
    let bytes = std::fs::read(path).map_err(|source| PhotoError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_photo(&bytes, path)
}

/// Decodes photo bytes (`path` only names the photo in errors).
pub fn decode_photo(bytes: &[u8], path: &Path) -> Result<RgbImage, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty {
            path: path.to_owned(),
        });
    }
    if image::guess_format(bytes).ok() == Some(image::ImageFormat::Jpeg) {
        return decode_jpeg(bytes, path);
    }
    if crate::domain::PhotoFormat::sniff(bytes).is_some_and(|f| f.is_heif_container()) {
        return super::heif::decode(bytes, path);
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| PhotoError::Io {
            path: path.to_owned(),
            source,
        })?;
    if reader.format().is_none() {
        return Err(PhotoError::UnknownFormat {
            path: path.to_owned(),
        });
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let classify = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => PhotoError::TooLarge {
            path: path.to_owned(),
            reason: l.to_string(),
        },
        image::ImageError::Unsupported(u) => PhotoError::Decode {
            path: path.to_owned(),
            reason: u.to_string(),
        },
        other => PhotoError::Decode {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    };
    let mut decoder = reader.into_decoder().map_err(classify)?;
    // Refuse by the declared size before any pixel is decoded: a decoder's own allocation
    // limit only fires when it allocates, and a short bomb fails on its data first.
    let (width_px, height_px) = decoder.dimensions();
    check_declared_size(
        u64::from(width_px),
        u64::from(height_px),
        u64::from(decoder.color_type().bytes_per_pixel()),
    )
    .map_err(|e| PhotoError::TooLarge {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(classify)?;
    img.apply_orientation(orientation);
    Ok(to_rgb8_like_pillow(img))
}

/// Decodes a JPEG as Pillow does, bit for bit: Pillow uses libjpeg-turbo with its defaults
/// (ISLOW integer IDCT, fancy chroma upsampling, libjpeg's fixed-point YCbCr -> RGB), and so do
/// we, through the libjpeg-turbo decoder that `mozjpeg-sys` vendors (mozjpeg changed the
/// encoder, not the decoder). Other decoders (zune-jpeg) differ by a few levels.
///
/// Errors, as in Pillow: a file that ends before the last scanline is "truncated" (libjpeg
/// would only warn and pad with grey; Pillow raises unless `LOAD_TRUNCATED_IMAGES`); a corrupt
/// marker after the last scanline fails too, a missing EOI alone does not. libjpeg reports fatal
/// errors by
/// unwinding (the `mozjpeg` crate's error manager), which `catch_unwind` turns into a
/// `PhotoError`; this needs `panic = "unwind"`, the default.
fn decode_jpeg(bytes: &[u8], path: &Path) -> Result<RgbImage, PhotoError> {
    let ran_out = AtomicBool::new(false);
    let decoded = std::panic::catch_unwind(|| decode_jpeg_pixels(bytes, &ran_out))
        .unwrap_or_else(|payload| Err(JpegFailure::Decode(unwind_reason(payload.as_ref()))));
    let rgb = match decoded {
        Ok(rgb) => rgb,
        Err(JpegFailure::TooLarge(reason)) => {
            return Err(PhotoError::TooLarge {
                path: path.to_owned(),
                reason,
            });
        }
        Err(JpegFailure::Decode(reason)) => {
            // Running out of data explains whatever libjpeg said next (it fakes an EOI marker).
            let reason = if ran_out.load(Ordering::Relaxed) {
                "image file is truncated".to_owned()
            } else {
                reason
            };
            return Err(PhotoError::Decode {
                path: path.to_owned(),
                reason,
            });
        }
    };
    let mut img = DynamicImage::ImageRgb8(rgb);
    img.apply_orientation(jpeg_exif_orientation(bytes));
    Ok(to_rgb8_like_pillow(img))
}

/// The message libjpeg's error manager unwound with (a `String`), or any panic's message.
fn unwind_reason(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "libjpeg failed".to_owned())
}

enum JpegFailure {
    TooLarge(String),
    Decode(String),
}

impl From<std::io::Error> for JpegFailure {
    fn from(e: std::io::Error) -> Self {
        Self::Decode(e.to_string())
    }
}

/// The pixels of a JPEG as Pillow's `convert("RGB")` gives them, EXIF orientation not applied.
/// Sets `ran_out` if libjpeg asked for bytes past the end before the last scanline.
fn decode_jpeg_pixels(bytes: &[u8], ran_out: &AtomicBool) -> Result<RgbImage, JpegFailure> {
    use mozjpeg::ColorSpace;
    let reader = EofFlaggingReader {
        rest: bytes,
        ran_out,
    };
    let mut dec = mozjpeg::Decompress::new_reader(reader)?;
    let (width_px, height_px) = dec.size();
    let color_space = dec.color_space();
    // The decoded buffer: CMYK is 4 bytes a pixel before conversion, everything else ends as RGB.
    let bytes_per_px: u64 = match color_space {
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => 4,
        _ => 3,
    };
    check_declared_size(width_px as u64, height_px as u64, bytes_per_px)
        .map_err(|e| JpegFailure::TooLarge(e.to_string()))?;
    let (width, height) = (
        u32::try_from(width_px).map_err(|_| JpegFailure::Decode("width overflows".into()))?,
        u32::try_from(height_px).map_err(|_| JpegFailure::Decode("height overflows".into()))?,
    );
    // libjpeg's defaults, which Pillow keeps; set explicitly so they cannot drift.
    dec.dct_method(mozjpeg::DctMethod::IntegerSlow);
    dec.do_fancy_upsampling(true);
    let out_space = match color_space {
        ColorSpace::JCS_GRAYSCALE => ColorSpace::JCS_GRAYSCALE,
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => ColorSpace::JCS_RGB,
        // libjpeg turns YCCK into CMYK; Pillow then reads it as Adobe's inverted CMYK.
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => ColorSpace::JCS_CMYK,
        other => {
            return Err(JpegFailure::Decode(format!(
                "unsupported JPEG colour space {other:?} with {} components",
                dec.components().len()
            )));
        }
    };
    let mut started = dec.to_colorspace(out_space)?;
    let samples: Vec<u8> = started.read_scanlines()?;
    if ran_out.load(Ordering::Relaxed) {
        return Err(JpegFailure::Decode("image file is truncated".into()));
    }
    // Like Pillow, read on to the EOI marker: a fatal error there (a corrupt marker) fails the
    // image; a missing EOI does not (libjpeg fakes one, where Pillow ignores the suspension).
    started.finish()?;
    let rgb = match out_space {
        ColorSpace::JCS_GRAYSCALE => samples.iter().flat_map(|&v| [v; 3]).collect(),
        ColorSpace::JCS_CMYK => samples
            .chunks_exact(4)
            .flat_map(adobe_cmyk_to_rgb)
            .collect(),
        _ => samples,
    };
    RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| JpegFailure::Decode("libjpeg returned fewer pixels than declared".into()))
}

/// One pixel of libjpeg's CMYK output as Pillow converts it: the JPEG is read as `CMYK;I`
/// (Adobe's inverted polarity, 255 - v) and `convert("RGB")` is Convert.c's `cmyk2rgb`,
/// `out = nk - MULDIV255(c, nk)` with `nk = 255 - k` and
/// `MULDIV255(a, b) = ((a*b + 128) + ((a*b + 128) >> 8)) >> 8`.
fn adobe_cmyk_to_rgb(px: &[u8]) -> [u8; 3] {
    let muldiv255 = |a: u32, b: u32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    // Inverted on reading, so Pillow's nk = 255 - (255 - k) = k and c = 255 - stored c.
    let nk = u32::from(px[3]);
    let channel = |stored: u8| nk.saturating_sub(muldiv255(255 - u32::from(stored), nk)) as u8;
    [channel(px[0]), channel(px[1]), channel(px[2])]
}

/// The EXIF orientation of a JPEG (from its first `Exif` APP1, as Pillow's `getexif`), or none.
fn jpeg_exif_orientation(bytes: &[u8]) -> image::metadata::Orientation {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()
        .and_then(|exif| {
            exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
                .value
                .get_uint(0)
        })
        .and_then(|v| u8::try_from(v).ok())
        .and_then(image::metadata::Orientation::from_exif)
        .unwrap_or(image::metadata::Orientation::NoTransforms)
}

/// The JPEG bytes for libjpeg's source manager, noting when libjpeg asks for more than there is
/// (a truncated file: libjpeg itself would only warn and pad with grey).
pub(crate) struct EofFlaggingReader<'a> {
    pub(crate) rest: &'a [u8],
    pub(crate) ran_out: &'a AtomicBool,
}

impl std::io::Read for EofFlaggingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::BufRead::fill_buf(self)?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl std::io::BufRead for EofFlaggingReader<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.rest.is_empty() {
            self.ran_out.store(true, Ordering::Relaxed);
        }
        Ok(self.rest)
    }

    fn consume(&mut self, amt: usize) {
        self.rest = &self.rest[amt.min(self.rest.len())..];
    }
}

/// Pillow's `convert("RGB")`: alpha dropped, grey replicated, 16-bit samples keep their high byte.
fn to_rgb8_like_pillow(img: DynamicImage) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let from_u16 = |samples: &[u16], channels: usize| -> RgbImage {
        let mut out = Vec::with_capacity(w as usize * h as usize * 3);
        for px in samples.chunks_exact(channels) {
            let hi = |v: u16| (v >> 8) as u8;
            if channels >= 3 {
                out.extend_from_slice(&[hi(px[0]), hi(px[1]), hi(px[2])]);
            } else {
                out.extend_from_slice(&[hi(px[0]); 3]);
            }
        }
        RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
    };
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageRgb16(ref i) => from_u16(i.as_raw(), 3),
        DynamicImage::ImageRgba16(ref i) => from_u16(i.as_raw(), 4),
        DynamicImage::ImageLuma16(ref i) => from_u16(i.as_raw(), 1),
        DynamicImage::ImageLumaA16(ref i) => from_u16(i.as_raw(), 2),
        other => other.to_rgb8(),
    }
}

/// Resize, crop, rescale and normalise, as `CLIPImageProcessor` does.
pub fn preprocess(
    rgb: &RgbImage,
    cfg: &PreprocessConfig,
    path: &Path,
) -> Result<Preprocessed, PhotoError> {
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err(PhotoError::Decode {
            path: path.to_owned(),
            reason: "image has no pixels".into(),
        });
    }
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    if f64::from(long) / f64::from(short) > MAX_ASPECT_RATIO {
        return Err(PhotoError::ExtremeAspect {
            path: path.to_owned(),
            width_px: w,
            height_px: h,
        });
    }
    let resized = if cfg.do_resize {
        let new_short = cfg.shortest_edge_px;
        // Python: int(size * long / short), a truncation of the float quotient.
        let new_long = (f64::from(new_short) * f64::from(long) / f64::from(short)) as u32;
        let (nw, nh) = if w <= h {
            (new_short, new_long)
        } else {
            (new_long, new_short)
        };
        resize_bicubic(rgb, nw, nh)
    } else {
        rgb.clone()
    };
    let cropped = if cfg.do_center_crop {
        center_crop(&resized, cfg.crop_width_px, cfg.crop_height_px)
    } else {
        resized
    };
    let chw = normalize_chw(&cropped, cfg);
    Ok(Preprocessed {
        pixels_u8: cropped,
        chw,
    })
}

/// Pillow's `Image.resize(size, BICUBIC)` (libImaging/Resample.c), bit for bit: separable
/// convolution with the a = -0.5 cubic, support widened by the scale when downscaling
/// (antialiasing), coefficients in 22-bit fixed point, horizontal pass first (only over the rows
/// the vertical pass needs), each pass rounded and clamped to u8.
fn resize_bicubic(rgb: &RgbImage, width_px: u32, height_px: u32) -> RgbImage {
    let (in_w, in_h) = (rgb.width() as usize, rgb.height() as usize);
    let (out_w, out_h) = (width_px as usize, height_px as usize);
    if (in_w, in_h) == (out_w, out_h) {
        return rgb.clone();
    }
    let src = rgb.as_raw();
    let horizontal = PillowCoeffs::new(in_w, out_w);
    let vertical = PillowCoeffs::new(in_h, out_h);
    let (mut pixels, mut rows, mut row_offset) =
        (std::borrow::Cow::Borrowed(src.as_slice()), in_h, 0);
    let mut width = in_w;
    if in_w != out_w {
        // Only the source rows that the vertical pass reads.
        let first = if in_h != out_h {
            vertical.bounds.first().map_or(0, |b| b.0)
        } else {
            0
        };
        let last = if in_h != out_h {
            vertical.bounds.last().map_or(in_h, |b| b.0 + b.1)
        } else {
            in_h
        };
        let mut tmp = vec![0u8; out_w * (last - first) * 3];
        for (y, out_row) in tmp.chunks_exact_mut(out_w * 3).enumerate() {
            let in_row = &src[(first + y) * in_w * 3..(first + y + 1) * in_w * 3];
            for (x, out_px) in out_row.chunks_exact_mut(3).enumerate() {
                let (xmin, n) = horizontal.bounds[x];
                let k = &horizontal.kernel[x * horizontal.ksize..x * horizontal.ksize + n];
                for c in 0..3 {
                    let mut acc: i32 = 1 << (PRECISION_BITS - 1);
                    for (i, &w) in k.iter().enumerate() {
                        acc += i32::from(in_row[(xmin + i) * 3 + c]) * w;
                    }
                    out_px[c] = clip8(acc);
                }
            }
        }
        pixels = std::borrow::Cow::Owned(tmp);
        rows = last - first;
        row_offset = first;
        width = out_w;
    }
    if in_h == out_h {
        return RgbImage::from_raw(width_px, height_px, pixels.into_owned())
            .unwrap_or_else(|| RgbImage::new(width_px, height_px));
    }
    let mut out = vec![0u8; out_w * out_h * 3];
    debug_assert_eq!(width, out_w);
    for (y, out_row) in out.chunks_exact_mut(out_w * 3).enumerate() {
        let (ymin, n) = vertical.bounds[y];
        let k = &vertical.kernel[y * vertical.ksize..y * vertical.ksize + n];
        for (i, out_sample) in out_row.iter_mut().enumerate() {
            let mut acc: i32 = 1 << (PRECISION_BITS - 1);
            for (j, &w) in k.iter().enumerate() {
                let row = ymin + j - row_offset;
                debug_assert!(row < rows);
                acc += i32::from(pixels[row * width * 3 + i]) * w;
            }
            *out_sample = clip8(acc);
        }
    }
    RgbImage::from_raw(width_px, height_px, out)
        .unwrap_or_else(|| RgbImage::new(width_px, height_px))
}

/// Pillow's fixed-point precision for 8-bit images: 32 - 8 - 2.
const PRECISION_BITS: u32 = 22;

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's bicubic filter (a = -0.5), support 2.
fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// `precompute_coeffs` + `normalize_coeffs_8bpc` from Pillow's Resample.c.
struct PillowCoeffs {
    ksize: usize,
    /// Per output pixel: (first input index, number of taps).
    bounds: Vec<(usize, usize)>,
    /// `ksize` fixed-point weights per output pixel.
    kernel: Vec<i32>,
}

impl PillowCoeffs {
    fn new(in_size: usize, out_size: usize) -> Self {
        const SUPPORT: f64 = 2.0;
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = SUPPORT * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut kernel = vec![0i32; out_size * ksize];
        let mut k = vec![0f64; ksize];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's (int) truncates toward zero.
            let xmin = ((center - support + 0.5).trunc() as i64).max(0) as usize;
            let xmax = (((center + support + 0.5).trunc() as i64).min(in_size as i64) as usize)
                .saturating_sub(xmin);
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(xmax) {
                let w = bicubic_filter((x as f64 + xmin as f64 - center + 0.5) * ss);
                *kx = w;
                ww += w;
            }
            for (x, &kx) in k.iter().enumerate().take(xmax) {
                let w = if ww != 0.0 { kx / ww } else { kx };
                let rounding = if w < 0.0 { -0.5 } else { 0.5 };
                kernel[xx * ksize + x] =
                    (w * f64::from(1u32 << PRECISION_BITS) + rounding).trunc() as i32;
            }
            bounds.push((xmin, xmax));
        }
        Self {
            ksize,
            bounds,
            kernel,
        }
    }
}

/// `transformers.image_transforms.center_crop`: top = (h - crop_h) // 2, left likewise;
/// an image smaller than the crop is padded with zeros around the centre.
fn center_crop(rgb: &RgbImage, crop_w: u32, crop_h: u32) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let top = (i64::from(h) - i64::from(crop_h)).div_euclid(2);
    let left = (i64::from(w) - i64::from(crop_w)).div_euclid(2);
    RgbImage::from_fn(crop_w, crop_h, |x, y| {
        let (sx, sy) = (i64::from(x) + left, i64::from(y) + top);
        if sx >= 0 && sy >= 0 && sx < i64::from(w) && sy < i64::from(h) {
            *rgb.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

fn normalize_chw(rgb: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let (w, h) = rgb.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            let v = f32::from(px[c]) * cfg.rescale_factor;
            out[c * plane + i] = if cfg.do_normalize {
                (v - cfg.image_mean[c]) / cfg.image_std[c]
            } else {
                v
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("test.png")
    }

    #[test]
    fn output_is_224_square_for_any_aspect() {
        let cfg = PreprocessConfig::clip_vit_large_patch14();
        for (w, h) in [(640, 480), (300, 450), (100, 80), (224, 224), (1000, 224)] {
            let img = RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
            });
            let p = preprocess(&img, &cfg, path()).unwrap();
            assert_eq!(p.pixels_u8.dimensions(), (224, 224));
            assert_eq!(p.chw.len(), 3 * 224 * 224);
        }
    }

    #[test]
    fn constant_image_normalises_to_known_values() {
        let cfg = PreprocessConfig::clip_vit_large_patch14();
        let img = RgbImage::from_pixel(500, 300, image::Rgb([255, 0, 128]));
        let p = preprocess(&img, &cfg, path()).unwrap();
        let plane = 224 * 224;
        approx::assert_relative_eq!(
            p.chw[0],
            (1.0 - OPENAI_CLIP_MEAN[0]) / OPENAI_CLIP_STD[0],
            epsilon = 1e-5
        );
        approx::assert_relative_eq!(
            p.chw[plane],
            (0.0 - OPENAI_CLIP_MEAN[1]) / OPENAI_CLIP_STD[1],
            epsilon = 1e-5
        );
        approx::assert_relative_eq!(
            p.chw[2 * plane + 100],
            (128.0 / 255.0 - OPENAI_CLIP_MEAN[2]) / OPENAI_CLIP_STD[2],
            epsilon = 1e-5
        );
    }

    #[test]
    fn crop_takes_the_centre() {
        let cfg = PreprocessConfig {
            do_resize: false,
            ..PreprocessConfig::clip_vit_large_patch14()
        };
        // 230 wide: left = 3, so the first column of the crop is source column 3.
        let img = RgbImage::from_fn(230, 224, |x, _| image::Rgb([x as u8, 0, 0]));
        let p = preprocess(&img, &cfg, path()).unwrap();
        assert_eq!(p.pixels_u8.get_pixel(0, 0)[0], 3);
    }

    #[test]
    fn rejects_extreme_aspect() {
        let cfg = PreprocessConfig::clip_vit_large_patch14();
        let img = RgbImage::new(6500, 100);
        assert!(matches!(
            preprocess(&img, &cfg, path()),
            Err(PhotoError::ExtremeAspect { .. })
        ));
    }

    #[test]
    fn config_json_forms() {
        let old = r#"{"size": 224, "crop_size": 224, "resample": 3}"#;
        assert_eq!(
            PreprocessConfig::from_json(old).unwrap(),
            PreprocessConfig::clip_vit_large_patch14()
        );
        let new = r#"{"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}}"#;
        let cfg = PreprocessConfig::from_json(new).unwrap();
        assert_eq!(
            (cfg.shortest_edge_px, cfg.crop_height_px, cfg.crop_width_px),
            (336, 336, 336)
        );
        assert!(PreprocessConfig::from_json(r#"{"resample": 2}"#).is_err());
    }

    #[test]
    fn empty_and_garbage_bytes_are_errors() {
        assert!(matches!(
            decode_photo(b"", path()),
            Err(PhotoError::Empty { .. })
        ));
        assert!(matches!(
            decode_photo(b"hello, world", path()),
            Err(PhotoError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn sixteen_bit_keeps_high_byte_and_alpha_is_dropped() {
        let img16 = image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(
            2,
            2,
            image::Rgb([0xABCD, 0x0102, 0xFFFF]),
        );
        let rgb = to_rgb8_like_pillow(DynamicImage::ImageRgb16(img16));
        assert_eq!(rgb.get_pixel(0, 0).0, [0xAB, 0x01, 0xFF]);
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([10, 20, 30, 0]));
        assert_eq!(
            to_rgb8_like_pillow(DynamicImage::ImageRgba8(rgba))
                .get_pixel(1, 1)
                .0,
            [10, 20, 30]
        );
    }

    fn fixture(name: &str) -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
        std::fs::read(dir.join(name)).unwrap()
    }

    /// tests/fixtures/images/cmyk.jpg (48x32, Adobe CMYK, 1.9 KB) and Pillow 13 / libjpeg-turbo
    /// 3's reading of it:
    ///
    /// ```python
    /// y, x = np.mgrid[0:32, 0:48]
    /// a = np.stack([x*5, y*8, (x+y)*3, ((x*7 + y*11) % 64)*4], -1).clip(0, 255).astype(np.uint8)
    /// Image.fromarray(a, "CMYK").save("cmyk.jpg", quality=90)
    /// rgb = np.asarray(Image.open("cmyk.jpg").convert("RGB"))
    /// rgb[13, 20], rgb[0, 47], rgb[31, 0], rgb[31, 47], int(rgb.astype(np.uint64).sum())
    /// ```
    #[test]
    fn cmyk_jpeg_converts_like_pillow() {
        let rgb = decode_photo(&fixture("cmyk.jpg"), Path::new("cmyk.jpg")).unwrap();
        assert_eq!(rgb.dimensions(), (48, 32));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(20, 13).0, [92, 90, 94]);
        assert_eq!(rgb.get_pixel(47, 0).0, [17, 215, 96]);
        assert_eq!(rgb.get_pixel(0, 31).0, [172, 5, 109]);
        assert_eq!(rgb.get_pixel(47, 31).0, [11, 4, 12]);
        let sum: u64 = rgb.as_raw().iter().map(|&v| u64::from(v)).sum();
        assert_eq!(sum, 316_734);
    }

    #[test]
    fn adobe_cmyk_matches_pillows_cmyk2rgb() {
        // Stored (inverted) samples; Pillow: c = 255 - 200 = 55, nk = 255 - (255 - 100) = 100,
        // 100 - MULDIV255(55, 100) = 100 - 22 = 78.
        assert_eq!(adobe_cmyk_to_rgb(&[200, 255, 0, 100]), [78, 100, 0]);
        assert_eq!(adobe_cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(adobe_cmyk_to_rgb(&[17, 0, 255, 0]), [0, 0, 0]);
    }

    #[test]
    fn truncated_jpeg_is_an_error_like_pillow() {
        // Pillow: OSError("image file is truncated"); libjpeg alone would pad with grey.
        let err = decode_photo(&fixture("bad/truncated.jpg"), Path::new("t.jpg")).unwrap_err();
        assert!(
            matches!(&err, PhotoError::Decode { reason, .. } if reason.contains("truncated")),
            "{err:?}"
        );
        let whole = fixture("cmyk.jpg");
        for len in [4, 100, whole.len() / 2, whole.len() - 10] {
            assert!(matches!(
                decode_photo(&whole[..len], Path::new("t.jpg")),
                Err(PhotoError::Decode { .. })
            ));
        }
    }

    #[test]
    fn libjpeg_fatal_errors_are_photo_errors() {
        // SOF0 with a 12-bit sample precision: libjpeg's error_exit unwinds during the header.
        let mut bytes = fixture("cmyk.jpg");
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 4] = 12;
        let err = decode_photo(&bytes, Path::new("bad.jpg")).unwrap_err();
        assert!(
            matches!(&err, PhotoError::Decode { reason, .. } if !reason.contains("truncated")),
            "{err:?}"
        );
        let err = decode_photo(&fixture("bad/not_an_image.jpg"), Path::new("x.jpg")).unwrap_err();
        assert!(matches!(err, PhotoError::UnknownFormat { .. }), "{err:?}");
    }

    #[test]
    fn huge_jpeg_header_is_refused_before_decoding() {
        let mut bytes = fixture("cmyk.jpg");
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]); // 30000 x 30000
        let err = decode_photo(&bytes, Path::new("huge.jpg")).unwrap_err();
        assert!(matches!(err, PhotoError::TooLarge { .. }), "{err:?}");
    }

    /// A PNG that declares `width_px` x `height_px` 8-bit grey pixels, with an IDAT of a few
    /// bytes (far too short for them): a decompression bomb's header, made in microseconds.
    fn png_declaring(width_px: u32, height_px: u32) -> Vec<u8> {
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = 0xFFFF_FFFFu32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc32(&body).to_be_bytes());
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width_px.to_be_bytes());
        ihdr.extend_from_slice(&height_px.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey
        chunk(&mut png, b"IHDR", &ihdr);
        // zlib: one empty stored block.
        chunk(
            &mut png,
            b"IDAT",
            &[
                0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
            ],
        );
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn grey_png_bomb_is_refused_by_its_declared_pixels() {
        // 30000 x 30000 grey is 900 MB decoded, under MAX_DECODED_BYTES; Pillow refuses it as a
        // decompression bomb (over 2 x Image.MAX_IMAGE_PIXELS), and so do we, before decoding.
        let bytes = png_declaring(30_000, 30_000);
        assert!(bytes.len() < 100);
        let err = decode_photo(&bytes, Path::new("bomb.png")).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, PhotoError::TooLarge { .. }), "{err:?}");
        assert!(
            message.contains("30000x30000") && message.contains("limit 178956970 pixels"),
            "{message}"
        );
    }

    #[test]
    fn jpeg_over_the_pixel_limit_is_refused_before_decoding() {
        // CMYK 15000 x 15000: 900 MB decoded (under the byte budget), 225 megapixels.
        let mut bytes = fixture("cmyk.jpg");
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 9].copy_from_slice(&[0x3A, 0x98, 0x3A, 0x98]);
        let err = decode_photo(&bytes, Path::new("huge.jpg")).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, PhotoError::TooLarge { .. }), "{err:?}");
        assert!(
            message.contains("15000x15000") && message.contains("limit 178956970 pixels"),
            "{message}"
        );
    }

    #[test]
    fn the_pixel_limit_is_pillows_bomb_threshold() {
        assert_eq!(MAX_IMAGE_PIXELS, 2 * 89_478_485);
        assert!(check_declared_size(13_377, 13_377, 3).is_ok());
        assert!(matches!(
            check_declared_size(13_378, 13_378, 1),
            Err(SizeLimitError::Pixels { .. })
        ));
        // Under the pixel limit, over the byte budget (16-bit RGBA).
        assert!(matches!(
            check_declared_size(13_000, 13_000, 8),
            Err(SizeLimitError::Bytes { .. })
        ));
        assert!(check_declared_size(u64::MAX, u64::MAX, 8).is_err());
    }
}
