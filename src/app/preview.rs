//! The large view of a photo: full-size decodes on the `preview` thread (the model's decoding,
//! with its pixel limits and EXIF orientation), downscaled to a texture of bounded size, the
//! last few kept; a second decode at full resolution (up to the GPU's texture limit) when the
//! user zooms past what the first one holds. And the pure zoom/pan maths of a pane ([`ZoomPan`]).
//!
//! Per frame the UI only looks a path up among at most [`Previews::CAPACITY`] entries, so the
//! frame time does not depend on the number of photos.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use egui::{Pos2, Rect, Vec2};

use crate::domain::RepaintFn;
use crate::runtime::task::Task;

/// The longest side of a first preview, in pixels.
pub const PREVIEW_MAX_SIDE_PX: u32 = 2048;

/// How much of a photo a decode keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detail {
    /// The longest side at most [`PREVIEW_MAX_SIDE_PX`].
    Preview,
    /// Every pixel (up to the GPU's largest texture).
    Full,
}

/// What is known of a photo from its file, for the pane's summary line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhotoFacts {
    /// `Make Model` from EXIF, when present.
    pub camera: Option<String>,
    /// DateTimeOriginal as the library reads it.
    pub taken_at: Option<String>,
    /// The EXIF orientation (1..=8), already applied to the pixels.
    pub orientation: Option<u32>,
    /// A HEIF/AVIF photo: libheif turned and mirrored it as its container says, and its EXIF
    /// orientation was not applied (`orientation` is `None`).
    pub heif: bool,
    /// The photo's size after orientation, in pixels.
    pub size_px: [u32; 2],
}

impl PhotoFacts {
    /// "Canon EOS 5D · 2021-05-03T10:00:00 · 4000 × 3000 px · rotated 90° clockwise
    /// (EXIF orientation 6, applied)".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        parts.push(
            self.camera
                .clone()
                .unwrap_or_else(|| "camera unknown".into()),
        );
        parts.push(
            self.taken_at
                .clone()
                .unwrap_or_else(|| "time unknown".into()),
        );
        parts.push(format!("{} × {} px", self.size_px[0], self.size_px[1]));
        parts.push(match self.orientation {
            None if self.heif => {
                "as the HEIF container turns it (EXIF orientation not used)".into()
            }
            None | Some(1) => "upright (no EXIF rotation)".into(),
            Some(o) => format!("{} (EXIF orientation {o}, applied)", orientation_words(o)),
        });
        parts.join(" · ")
    }
}

/// What an EXIF orientation value does to the stored pixels.
pub fn orientation_words(orientation: u32) -> &'static str {
    match orientation {
        2 => "mirrored",
        3 => "rotated 180°",
        4 => "flipped vertically",
        5 => "mirrored and rotated 90° anticlockwise",
        6 => "rotated 90° clockwise",
        7 => "mirrored and rotated 90° clockwise",
        8 => "rotated 90° anticlockwise",
        _ => "upright",
    }
}

/// One decoded photo as a texture.
#[derive(Clone)]
pub struct Preview {
    pub path: PathBuf,
    pub detail: Detail,
    pub texture: egui::TextureHandle,
    pub facts: PhotoFacts,
}

impl Preview {
    /// The texture's size in pixels.
    pub fn texture_px(&self) -> Vec2 {
        self.texture.size_vec2()
    }

    /// The photo's size in pixels (after orientation).
    pub fn image_px(&self) -> Vec2 {
        Vec2::new(self.facts.size_px[0] as f32, self.facts.size_px[1] as f32)
    }
}

/// What the pane can show for a photo now.
#[derive(Clone)]
pub enum PreviewState {
    /// Being decoded (or waiting for the decode in progress).
    Loading,
    Ready(Preview),
    Failed(String),
}

type Decoded = Result<Preview, String>;

/// The preview cache and its decoder. See the module docs.
#[derive(Default)]
pub struct Previews {
    /// Newest last.
    cache: VecDeque<Preview>,
    failed: VecDeque<(PathBuf, String)>,
    loading: Option<(PathBuf, Detail, Task<Decoded>)>,
    /// The newest request made while another decode runs (older ones are dropped: the user
    /// moved on).
    next: Vec<(PathBuf, Detail)>,
    /// How many decodes were started (for tests).
    pub decodes_started: u64,
}

impl Previews {
    /// How many decoded photos are kept.
    pub const CAPACITY: usize = 6;

    /// The best preview of `path` there is, asking for it (at `detail`) when missing. Cheap:
    /// called every frame for the photos on screen.
    pub fn want(
        &mut self,
        ctx: &egui::Context,
        path: &Path,
        detail: Detail,
        repaint: impl FnOnce() -> RepaintFn,
    ) -> PreviewState {
        let best = self
            .cache
            .iter()
            .filter(|p| p.path == path)
            .max_by_key(|p| p.detail)
            .cloned();
        if let Some((_, error)) = self.failed.iter().find(|(p, _)| p == path) {
            return best
                .map(PreviewState::Ready)
                .unwrap_or_else(|| PreviewState::Failed(error.clone()));
        }
        let enough = best.as_ref().is_some_and(|p| p.detail >= detail);
        if !enough {
            self.request(ctx, path, detail, repaint);
        }
        match best {
            Some(p) => PreviewState::Ready(p),
            None => PreviewState::Loading,
        }
    }

    fn request(
        &mut self,
        ctx: &egui::Context,
        path: &Path,
        detail: Detail,
        repaint: impl FnOnce() -> RepaintFn,
    ) {
        if self
            .loading
            .as_ref()
            .is_some_and(|(p, d, _)| p == path && *d >= detail)
        {
            return;
        }
        if self.loading.is_some() {
            // At most two photos are on screen (compare): keep the newest two requests.
            self.next.retain(|(p, _)| p != path);
            self.next.push((path.to_owned(), detail));
            if self.next.len() > 2 {
                self.next.remove(0);
            }
            return;
        }
        let max_side = match detail {
            Detail::Preview => PREVIEW_MAX_SIDE_PX as usize,
            Detail::Full => ctx.input(|i| i.max_texture_side),
        };
        let (thread_ctx, thread_path) = (ctx.clone(), path.to_owned());
        match Task::spawn("preview", "Decoding a preview", repaint(), move || {
            decode(&thread_ctx, &thread_path, detail, max_side)
        }) {
            Ok(task) => {
                self.decodes_started += 1;
                self.loading = Some((path.to_owned(), detail, task));
            }
            Err(e) => self
                .failed
                .push_back((path.to_owned(), format!("starting the preview thread: {e}"))),
        }
    }

    /// Takes a finished decode (each frame; never waits) and starts the next one asked for.
    pub fn drain(&mut self, ctx: &egui::Context, repaint: impl Fn() -> RepaintFn) {
        let finished = self.loading.as_ref().and_then(|(_, _, task)| task.poll());
        let Some(answer) = finished else {
            return;
        };
        let Some((path, _, _)) = self.loading.take() else {
            return;
        };
        match answer {
            Ok(Ok(preview)) => {
                // One full-resolution texture at a time (they can be hundreds of MB).
                let full = preview.detail == Detail::Full;
                self.cache.retain(|p| {
                    let replaced = p.path == preview.path && p.detail <= preview.detail;
                    let other_full = full && p.detail == Detail::Full;
                    !replaced && !other_full
                });
                self.cache.push_back(preview);
                while self.cache.len() > Self::CAPACITY {
                    self.cache.pop_front();
                }
            }
            Ok(Err(error)) => self.remember_failure(path, error),
            Err(failed) => self.remember_failure(path, failed.to_string()),
        }
        if !self.next.is_empty() {
            let (path, detail) = self.next.remove(0);
            self.request(ctx, &path, detail, &repaint);
        }
    }

    fn remember_failure(&mut self, path: PathBuf, error: String) {
        self.failed.retain(|(p, _)| p != &path);
        self.failed.push_back((path, error));
        while self.failed.len() > 64 {
            self.failed.pop_front();
        }
    }

    /// How many previews are kept now.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Whether a decode is running.
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    /// Forgets every preview (the collection was closed).
    pub fn clear(&mut self) {
        self.cache.clear();
        self.failed.clear();
        self.next.clear();
    }
}

/// Decodes `path` as the model does (limits, orientation), downscales it so its longest side
/// is at most `max_side_px`, and uploads it as a texture (egui's texture manager takes uploads
/// from any thread).
fn decode(ctx: &egui::Context, path: &Path, detail: Detail, max_side_px: usize) -> Decoded {
    let image = crate::model::preprocess::load_photo(path).map_err(|e| e.to_string())?;
    let (width_px, height_px) = image.dimensions();
    let block = crate::library::exif::read_exif_block(path).ok().flatten();
    let exif = crate::library::exif::read_exif(path).unwrap_or_default();
    let facts = PhotoFacts {
        camera: block.as_ref().and_then(camera),
        taken_at: exif.taken_at,
        orientation: exif.orientation,
        heif: is_heif_file(path),
        size_px: [width_px, height_px],
    };
    let [w, h] = fit_within([width_px, height_px], max_side_px.max(1) as u32);
    let image = if [w, h] == [width_px, height_px] {
        image
    } else {
        image::imageops::thumbnail(&image, w, h)
    };
    let colour = egui::ColorImage::from_rgb([w as usize, h as usize], image.as_raw());
    let texture = ctx.load_texture(
        format!("preview {}", path.display()),
        colour,
        egui::TextureOptions::LINEAR,
    );
    Ok(Preview {
        path: path.to_owned(),
        detail,
        texture,
        facts,
    })
}

/// `size_px` scaled down (never up) so that its longest side is at most `max_side_px`, keeping
/// the aspect ratio; at least 1 px each way.
pub fn fit_within(size_px: [u32; 2], max_side_px: u32) -> [u32; 2] {
    let [w, h] = size_px;
    let longest = w.max(h);
    if longest <= max_side_px {
        return size_px;
    }
    let scale = f64::from(max_side_px) / f64::from(longest);
    [
        ((f64::from(w) * scale).round() as u32).clamp(1, max_side_px),
        ((f64::from(h) * scale).round() as u32).clamp(1, max_side_px),
    ]
}

/// Whether the file's first bytes are a HEIF/AVIF container's.
fn is_heif_file(path: &Path) -> bool {
    let mut head = [0u8; 32];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .ok()
        .and_then(|n| crate::domain::PhotoFormat::sniff(&head[..n]))
        .is_some_and(crate::domain::PhotoFormat::is_heif_container)
}

/// EXIF `Make` and `Model`, as "Make Model" (the make left out when the model repeats it).
fn camera(block: &crate::library::exif::ExifBlock) -> Option<String> {
    let exif = &block.exif;
    let text = |tag| {
        exif.get_field(tag, ::exif::In::PRIMARY)
            .map(|f| {
                f.display_value()
                    .to_string()
                    .trim_matches('"')
                    .trim()
                    .to_owned()
            })
            .filter(|s| !s.is_empty())
    };
    match (text(::exif::Tag::Make), text(::exif::Tag::Model)) {
        (Some(make), Some(model)) if model.starts_with(&make) => Some(model),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (make, model) => make.or(model),
    }
}

/// How a pane shows an image: fitted, or at a scale with an image point at the pane's centre.
/// Scales are screen points per image pixel (of the full-size photo); "100 %" is one image
/// pixel per physical screen pixel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZoomPan {
    /// `None`: the whole image fits the pane.
    pub scale: Option<f32>,
    /// The image point (full-size pixels) at the pane's centre, when zoomed.
    pub centre_px: Vec2,
}

impl Default for ZoomPan {
    fn default() -> Self {
        Self::FIT
    }
}

impl ZoomPan {
    pub const FIT: Self = Self {
        scale: None,
        centre_px: Vec2::ZERO,
    };
    /// The largest zoom: 16 screen points per image pixel.
    pub const MAX_SCALE: f32 = 16.0;

    /// The scale at which `image_px` fits `pane` (whole image visible, aspect kept).
    pub fn fit_scale(image_px: Vec2, pane: Vec2) -> f32 {
        if image_px.x <= 0.0 || image_px.y <= 0.0 {
            return 1.0;
        }
        (pane.x / image_px.x)
            .min(pane.y / image_px.y)
            .max(f32::MIN_POSITIVE)
    }

    /// The scale in use.
    pub fn scale(&self, image_px: Vec2, pane: Vec2) -> f32 {
        self.scale
            .unwrap_or_else(|| Self::fit_scale(image_px, pane))
    }

    /// The image point at the pane's centre.
    fn centre(&self, image_px: Vec2) -> Vec2 {
        match self.scale {
            None => image_px / 2.0,
            Some(_) => self.centre_px,
        }
    }

    /// Where the whole image lies on screen (the pane clips it).
    pub fn image_rect(&self, image_px: Vec2, pane: Rect) -> Rect {
        let scale = self.scale(image_px, pane.size());
        let min = pane.center() - self.centre(image_px) * scale;
        Rect::from_min_size(min, image_px * scale)
    }

    /// The zoom as a percentage of 100 % (one image pixel per physical pixel).
    pub fn percent(&self, image_px: Vec2, pane: Vec2, pixels_per_point: f32) -> f32 {
        self.scale(image_px, pane) * pixels_per_point * 100.0
    }

    /// Zooms by `factor` keeping the image point under `pointer` where it is. Zooming out to
    /// the fitted scale or below goes back to fitting.
    pub fn zoom_about(&mut self, factor: f32, pointer: Pos2, image_px: Vec2, pane: Rect) {
        let fit = Self::fit_scale(image_px, pane.size());
        let before = self.scale(image_px, pane.size());
        let after = (before * factor).min(Self::MAX_SCALE.max(fit));
        if after <= fit * 1.0001 {
            *self = Self::FIT;
            return;
        }
        let offset = pointer - pane.center();
        let under_pointer = self.centre(image_px) + offset / before;
        self.scale = Some(after);
        self.centre_px = under_pointer - offset / after;
        self.clamp(image_px, pane.size());
    }

    /// Sets a scale (e.g. 100 %) about the pane's centre.
    pub fn set_scale(&mut self, scale: f32, image_px: Vec2, pane: Rect) {
        let factor = scale / self.scale(image_px, pane.size());
        let centre = pane.center();
        if scale <= Self::fit_scale(image_px, pane.size()) {
            // Below the fit: the image is smaller than the pane, centred.
            self.centre_px = image_px / 2.0;
            self.scale = Some(scale);
            return;
        }
        self.zoom_about(factor, centre, image_px, pane);
    }

    /// Moves the image by `delta` screen points (a drag).
    pub fn pan_by(&mut self, delta: Vec2, image_px: Vec2, pane: Vec2) {
        let Some(scale) = self.scale else {
            return;
        };
        self.centre_px -= delta / scale;
        self.clamp(image_px, pane);
    }

    /// Keeps the view on the image: no panning past an edge, and an axis that fits the pane
    /// stays centred.
    fn clamp(&mut self, image_px: Vec2, pane: Vec2) {
        let Some(scale) = self.scale else {
            return;
        };
        let half_view = pane / (2.0 * scale);
        for axis in 0..2 {
            let (size, half) = (image_px[axis], half_view[axis]);
            self.centre_px[axis] = if size <= 2.0 * half {
                size / 2.0
            } else {
                self.centre_px[axis].clamp(half, size - half)
            };
        }
    }

    /// Whether the pane shows more screen pixels per image pixel than the texture holds (time
    /// for the full-resolution decode).
    pub fn needs_full_detail(
        &self,
        image_px: Vec2,
        texture_px: Vec2,
        pane: Vec2,
        pixels_per_point: f32,
    ) -> bool {
        if image_px.x <= 0.0 || texture_px.x >= image_px.x {
            return false;
        }
        let physical_per_image_px = self.scale(image_px, pane) * pixels_per_point;
        physical_per_image_px > texture_px.x / image_px.x * 1.01
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: Vec2 = Vec2::new(4000.0, 3000.0);

    fn pane() -> Rect {
        Rect::from_min_size(Pos2::new(100.0, 50.0), Vec2::new(400.0, 400.0))
    }

    #[test]
    fn fitting_shows_the_whole_image_centred() {
        let view = ZoomPan::FIT;
        let rect = view.image_rect(IMAGE, pane());
        assert!((rect.width() - 400.0).abs() < 1e-3);
        assert!((rect.height() - 300.0).abs() < 1e-3);
        assert!((rect.center() - pane().center()).length() < 1e-3);
        assert!((view.percent(IMAGE, pane().size(), 2.0) - 20.0).abs() < 1e-3);
    }

    #[test]
    fn zooming_keeps_the_point_under_the_pointer() {
        let mut view = ZoomPan::FIT;
        let pointer = Pos2::new(150.0, 120.0);
        let before = view.image_rect(IMAGE, pane());
        let under = (pointer - before.min) / before.width() * IMAGE.x;
        view.zoom_about(4.0, pointer, IMAGE, pane());
        let after = view.image_rect(IMAGE, pane());
        let under_after = (pointer - after.min) / after.width() * IMAGE.x;
        assert!(
            (under - under_after).length() < 0.5,
            "{under:?} {under_after:?}"
        );
        assert!((after.width() - 1600.0).abs() < 1e-2);
    }

    #[test]
    fn zooming_out_past_the_fit_fits_again_and_zoom_is_bounded() {
        let mut view = ZoomPan::FIT;
        view.zoom_about(3.0, pane().center(), IMAGE, pane());
        assert!(view.scale.is_some());
        view.zoom_about(0.1, pane().center(), IMAGE, pane());
        assert_eq!(view, ZoomPan::FIT);
        for _ in 0..40 {
            view.zoom_about(2.0, pane().center(), IMAGE, pane());
        }
        assert_eq!(view.scale, Some(ZoomPan::MAX_SCALE));
    }

    #[test]
    fn one_hundred_percent_is_one_image_pixel_per_physical_pixel() {
        let mut view = ZoomPan::FIT;
        let ppp = 2.0;
        view.set_scale(1.0 / ppp, IMAGE, pane());
        assert!((view.percent(IMAGE, pane().size(), ppp) - 100.0).abs() < 1e-3);
        assert_eq!(view.centre_px, IMAGE / 2.0, "about the centre");
        // A 2048 px preview texture is too coarse at 100 %, enough when fitted.
        let texture = Vec2::new(2048.0, 1536.0);
        assert!(view.needs_full_detail(IMAGE, texture, pane().size(), ppp));
        assert!(!ZoomPan::FIT.needs_full_detail(IMAGE, texture, pane().size(), ppp));
        assert!(!view.needs_full_detail(IMAGE, IMAGE, pane().size(), ppp));
    }

    #[test]
    fn panning_stops_at_the_edges() {
        let mut view = ZoomPan::FIT;
        view.set_scale(1.0, IMAGE, pane());
        view.pan_by(Vec2::new(1e6, 1e6), IMAGE, pane().size());
        // Dragged right/down as far as possible: the image's top-left corner is at the pane's.
        let rect = view.image_rect(IMAGE, pane());
        assert!((rect.min - pane().min).length() < 1e-3, "{rect:?}");
        view.pan_by(Vec2::new(-1e6, -1e6), IMAGE, pane().size());
        let rect = view.image_rect(IMAGE, pane());
        assert!((rect.max - pane().max).length() < 1e-3, "{rect:?}");
        // Fitted, a drag does nothing.
        let mut fitted = ZoomPan::FIT;
        fitted.pan_by(Vec2::new(50.0, 0.0), IMAGE, pane().size());
        assert_eq!(fitted, ZoomPan::FIT);
    }

    #[test]
    fn previews_are_bounded_and_keep_the_aspect() {
        assert_eq!(fit_within([4000, 3000], 2048), [2048, 1536]);
        assert_eq!(fit_within([3000, 4000], 2048), [1536, 2048]);
        assert_eq!(fit_within([640, 480], 2048), [640, 480]);
        assert_eq!(fit_within([100_000, 10], 2048), [2048, 1]);
    }

    /// Decodes until nothing is loading (the decode runs on the `preview` thread).
    fn settle(previews: &mut Previews, ctx: &egui::Context) {
        let repaint = || -> RepaintFn { Box::new(|| {}) };
        for _ in 0..2000 {
            previews.drain(ctx, repaint);
            if !previews.is_loading() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("the decode never ended");
    }

    #[test]
    fn previews_decode_off_the_ui_thread_bounded_and_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = egui::Context::default();
        let repaint = || -> RepaintFn { Box::new(|| {}) };
        let paths: Vec<PathBuf> = (0..8)
            .map(|i| {
                let path = tmp.path().join(format!("{i}.png"));
                let (w, h) = if i == 0 { (3000, 1000) } else { (40, 30) };
                image::RgbImage::from_pixel(w, h, image::Rgb([i as u8 * 20, 90, 200]))
                    .save(&path)
                    .unwrap();
                path
            })
            .collect();
        let mut previews = Previews::default();
        assert!(matches!(
            previews.want(&ctx, &paths[0], Detail::Preview, repaint),
            PreviewState::Loading
        ));
        settle(&mut previews, &ctx);
        let PreviewState::Ready(big) = previews.want(&ctx, &paths[0], Detail::Preview, repaint)
        else {
            panic!("decoded");
        };
        assert_eq!(big.texture_px(), Vec2::new(2048.0, 683.0), "bounded");
        assert_eq!(big.facts.size_px, [3000, 1000], "the photo's own size");
        assert_eq!(previews.decodes_started, 1, "asked again: from the cache");
        for path in &paths[1..] {
            let _ = previews.want(&ctx, path, Detail::Preview, repaint);
            settle(&mut previews, &ctx);
        }
        assert_eq!(previews.cached(), Previews::CAPACITY);
        assert_eq!(previews.decodes_started, 8);
        // The oldest went first.
        assert!(matches!(
            previews.want(&ctx, &paths[0], Detail::Preview, repaint),
            PreviewState::Loading
        ));
        settle(&mut previews, &ctx);
        // A file that can't be decoded says why, once.
        let broken = tmp.path().join("broken.jpg");
        std::fs::write(&broken, b"").unwrap();
        let _ = previews.want(&ctx, &broken, Detail::Preview, repaint);
        settle(&mut previews, &ctx);
        assert!(matches!(
            previews.want(&ctx, &broken, Detail::Preview, repaint),
            PreviewState::Failed(_)
        ));
        assert_eq!(previews.decodes_started, 10);
    }

    #[test]
    fn the_summary_says_what_the_orientation_did() {
        let facts = PhotoFacts {
            camera: Some("Canon EOS 5D".into()),
            taken_at: Some("2021-05-03T10:00:00".into()),
            orientation: Some(6),
            heif: false,
            size_px: [3000, 4000],
        };
        let text = facts.summary();
        assert!(text.contains("Canon EOS 5D"), "{text}");
        assert!(
            text.contains("rotated 90° clockwise (EXIF orientation 6, applied)"),
            "{text}"
        );
        assert!(text.contains("3000 × 4000 px"), "{text}");
        assert!(PhotoFacts::default().summary().contains("camera unknown"));
        let heic = PhotoFacts {
            heif: true,
            ..PhotoFacts::default()
        };
        assert!(
            heic.summary().contains("as the HEIF container turns it"),
            "{}",
            heic.summary()
        );
        let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
        assert!(is_heif_file(&images.join("heic_gps.heic")));
        assert!(!is_heif_file(&images.join("rotated.jpg")));
    }
}
