//! Photo decoding and CLIP preprocessing, equal to Hugging Face's `CLIPImageProcessor` as
//! configured for `openai/clip-vit-large-patch14`.
//!
//! The steps, in the processor's order:
//! 1. decode (JPEG, PNG, WebP, TIFF, GIF, BMP) with allocation limits, so a decompression bomb
//!    is an error and not an out-of-memory kill;
//! 2. **apply the EXIF orientation** — what a person sees is what the model sees. The Python
//!    `geoclip` package does not do this (it feeds the stored pixel grid), so a rotated phone
//!    photo can score differently there;
//! 3. convert to 8-bit RGB as Pillow's `convert("RGB")` does: alpha dropped (not composited),
//!    grey replicated, 16-bit samples reduced to their high byte;
//! 4. resize so the shortest edge is `size` (224) with Pillow's bicubic convolution
//!    (Catmull-Rom, a = -0.5, antialiased when downscaling, rounded to u8 after each pass),
//!    the long edge being `int(size * long / short)` as in `get_resize_output_image_size`;
//! 5. centre crop to `crop_size` (top = (h - crop) // 2);
//! 6. rescale by 1/255 and normalise with CLIP's mean and std, giving CHW f32.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use fast_image_resize as fr;
use image::{DynamicImage, ImageDecoder as _, RgbImage};

/// The largest decoded image we accept, in bytes of pixel data. A 30000 x 30000 RGB image
/// (2.7 GB) is refused; a 300-megapixel panorama fits.
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

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
    #[error("not a supported image (JPEG, PNG, WebP, TIFF, GIF, BMP): {path}")]
    UnknownFormat { path: PathBuf },
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

impl PreprocessConfig {
    /// `openai/clip-vit-large-patch14`'s processor.
    pub fn clip_vit_large_patch14() -> Self {
        Self {
            shortest_edge_px: 224,
            crop_height_px: 224,
            crop_width_px: 224,
            image_mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            image_std: [0.268_629_54, 0.261_302_58, 0.275_777_11],
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
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(classify)?;
    img.apply_orientation(orientation);
    Ok(to_rgb8_like_pillow(img))
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

/// Pillow-compatible bicubic resize (fast_image_resize's convolution mirrors Pillow's).
fn resize_bicubic(rgb: &RgbImage, width_px: u32, height_px: u32) -> RgbImage {
    if rgb.dimensions() == (width_px, height_px) {
        return rgb.clone();
    }
    let resized = (|| -> Option<RgbImage> {
        let src =
            fr::images::ImageRef::new(rgb.width(), rgb.height(), rgb.as_raw(), fr::PixelType::U8x3)
                .ok()?;
        let mut dst = fr::images::Image::new(width_px, height_px, fr::PixelType::U8x3);
        let options = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom));
        fr::Resizer::new().resize(&src, &mut dst, &options).ok()?;
        RgbImage::from_raw(width_px, height_px, dst.into_vec())
    })();
    // Only unreachable size mismatches fail above; fall back to the image crate's cubic filter.
    resized.unwrap_or_else(|| {
        image::imageops::resize(
            rgb,
            width_px,
            height_px,
            image::imageops::FilterType::CatmullRom,
        )
    })
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
            (1.0 - 0.481_454_66) / 0.268_629_54,
            epsilon = 1e-5
        );
        approx::assert_relative_eq!(
            p.chw[plane],
            (0.0 - 0.457_827_5) / 0.261_302_58,
            epsilon = 1e-5
        );
        approx::assert_relative_eq!(
            p.chw[2 * plane + 100],
            (128.0 / 255.0 - 0.408_210_73) / 0.275_777_11,
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
}
