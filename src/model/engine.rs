//! The GeoCLIP engine: photo -> CLIP -> image MLP -> cosine against the gallery -> softmax ->
//! ranked GPS candidates, exactly as `GeoCLIP.forward` + `predict` score.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};

use super::clip::{ClipVision, l2_normalize_rows};
use super::clip_text::{ClipText, ClipTextConfig};
use super::files::{Backbone, DataDirs, Release};
use super::gallery::{self, Gallery};
use super::heads::{GEO_EMBED_DIM, ImageMlp, LocationEncoder};
use super::preprocess::{PreprocessConfig, Preprocessed};
use super::text::{ClipTokenizer, TextEncoder};
use super::weights::{MatmulMode, WeightFile};
use super::{DeviceChoice, ModelError, Precision, sha256_file};
use crate::domain::Provenance;
pub use crate::domain::{Candidate, MODEL_NAME, Prediction};

/// Which files the engine loaded (local paths: for messages on this machine, never written into
/// a shared file; [`GeoClip::provenance`] is the record that is).
#[derive(Clone, Debug)]
pub struct LoadedFiles {
    pub weights_sha256: String,
    pub gallery_sha256: String,
    pub gallery_path: PathBuf,
    pub backbone_dir: PathBuf,
}

/// Where to load from.
#[derive(Clone, Debug)]
pub struct ModelPaths {
    pub release_dir: PathBuf,
    pub backbone_dir: PathBuf,
    /// A custom gallery CSV instead of the release's.
    pub gallery_csv: Option<PathBuf>,
    pub gallery_cache_dir: PathBuf,
}

impl ModelPaths {
    pub fn installed(dirs: &DataDirs) -> Self {
        Self {
            release_dir: dirs.release_dir(),
            backbone_dir: dirs.backbone_dir(),
            gallery_csv: None,
            gallery_cache_dir: dirs.gallery_cache_dir(),
        }
    }
}

/// Load-time events, for progress bars.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadEvent {
    LoadingWeights,
    GalleryFromCache { points: usize },
    EncodingGallery { done: usize, total: usize },
}

/// Which towers [`GeoClip::load_towers`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Towers {
    /// The image tower (read at load) and the text tower (read on the first text query).
    All,
    /// The text tower only (`geoloupe query`): no image tower, so photos cannot be located.
    TextOnly,
}

pub struct GeoClip {
    device: Device,
    /// `None` when loaded for text only ([`Towers::TextOnly`]).
    vision: Option<ClipVision>,
    vision_config: super::clip::ClipVisionConfig,
    /// How the towers' matrix products run.
    mode: MatmulMode,
    preprocess: PreprocessConfig,
    mlp: ImageMlp,
    /// The location encoder (38 MB), read on first use: ranking against the cached gallery
    /// never needs it, refining and heat maps do.
    location: OnceLock<LocationEncoder>,
    /// Where it is read from: the heads file, as hashed at load.
    heads_path: PathBuf,
    logit_scale: f32,
    gallery: Gallery,
    /// (N, 512), rows L2-normalised.
    gallery_features: Tensor,
    files: LoadedFiles,
    /// Why fast mode was asked for and is not running, when it is not.
    precision_note: Option<String>,
    /// The text tower and tokenizer, read on first use (text queries only).
    text: OnceLock<TextEncoder>,
    /// Where the text tower is read from, if this engine has a backbone folder.
    text_source: Option<TextSource>,
}

/// The backbone files a text tower is read from, as they were when the engine loaded.
#[derive(Clone, Debug)]
struct TextSource {
    config: Result<ClipTextConfig, String>,
    weights_path: PathBuf,
    tokenizer_path: PathBuf,
    /// The weights file's size and modification time at load: the text tower must come from the
    /// same file as the vision tower.
    stamp: Option<(u64, std::time::SystemTime)>,
}

fn file_stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

impl GeoClip {
    /// Loads everything, using (or filling) the gallery feature cache. `on_event` returning
    /// `false` cancels a gallery precompute.
    ///
    /// `precision` is what the user asked for; [`GeoClip::mode`] is what runs, and
    /// [`GeoClip::precision_note`] says why they differ when fast mode cannot run here.
    ///
    /// Every file is checked first (configs and safetensors headers: names, shapes, sizes), so
    /// a broken install fails before anything is read. Then the vision tower's tensors (only
    /// those: the CLIP file's text tower is never read) are read on a thread of their own while
    /// this one reads the heads, the gallery and its cached features (or encodes them).
    pub fn load(
        paths: &ModelPaths,
        device: &Device,
        precision: Precision,
        on_event: &mut dyn FnMut(LoadEvent) -> bool,
    ) -> Result<Self, ModelError> {
        Self::load_towers(paths, device, precision, Towers::All, on_event)
    }

    /// [`Self::load`] with a choice of towers: [`Towers::TextOnly`] never reads the image tower
    /// (text queries need only the text tower, the heads and the gallery).
    pub fn load_towers(
        paths: &ModelPaths,
        device: &Device,
        precision: Precision,
        towers: Towers,
        on_event: &mut dyn FnMut(LoadEvent) -> bool,
    ) -> Result<Self, ModelError> {
        let started = Instant::now();
        let _allocations = super::memory::LoadAllocations::begin();
        on_event(LoadEvent::LoadingWeights);
        log::info!(
            "loading GeoCLIP from {} with the backbone {} on {device:?}",
            paths.release_dir.display(),
            paths.backbone_dir.display()
        );
        let release = Release::open(&paths.release_dir)?;
        let backbone = Backbone::open(&paths.backbone_dir)?;
        let (mode, precision_note) = MatmulMode::resolve(precision, device);
        if let Some(note) = &precision_note {
            log::warn!("{note}");
        }
        log::info!("image tower: {}", mode.describe());
        if backbone.vision.projection_dim != super::heads::CLIP_EMBED_DIM {
            return Err(ModelError::Invalid {
                what: "CLIP backbone".into(),
                reason: format!(
                    "projection_dim is {}, GeoCLIP's image MLP needs {}",
                    backbone.vision.projection_dim,
                    super::heads::CLIP_EMBED_DIM
                ),
                path: backbone.dir.join(super::files::CONFIG_FILE),
            });
        }
        let vision_weights = WeightFile::open(&backbone.weights_path, device)?;
        let build_vision = || {
            let t = Instant::now();
            match towers {
                Towers::All => ClipVision::with_mode(&vision_weights, &backbone.vision, mode)
                    .map(|v| (Some(v), t.elapsed())),
                Towers::TextOnly => Ok((None, t.elapsed())),
            }
        };
        let (vision, rest) = std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name("load-vision".into())
                .spawn_scoped(scope, build_vision);
            match thread {
                Ok(thread) => {
                    let rest = load_heads_and_gallery(paths, &release, device, on_event);
                    let vision = thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (vision, rest)
                }
                // No thread to be had: one after the other.
                Err(e) => {
                    log::warn!("loading the vision tower on this thread: {e}");
                    let vision = build_vision();
                    (
                        vision,
                        load_heads_and_gallery(paths, &release, device, on_event),
                    )
                }
            }
        });
        let (vision, vision_time) = vision?;
        let rest = rest?;
        log::info!(
            "model loaded ({towers:?}) in {:.2} s: vision tower {:.2} s ({} of the backbone file's {} bytes \
             read), in parallel with heads {:.2} s, gallery CSV {:.2} s, weights hash {:.2} s, \
             gallery features {:.2} s",
            started.elapsed().as_secs_f64(),
            vision_time.as_secs_f64(),
            vision_weights.bytes_read(),
            vision_weights.bytes_under(""),
            rest.timings.heads.as_secs_f64(),
            rest.timings.gallery_csv.as_secs_f64(),
            rest.timings.weights_hash.as_secs_f64(),
            rest.timings.gallery_features.as_secs_f64(),
        );
        Ok(Self {
            device: device.clone(),
            vision,
            vision_config: backbone.vision.clone(),
            mode,
            preprocess: backbone.preprocess.clone(),
            mlp: rest.mlp,
            logit_scale: rest.logit_scale,
            location: OnceLock::new(),
            heads_path: release.weights_path.clone(),
            files: LoadedFiles {
                weights_sha256: rest.weights_sha256,
                gallery_sha256: rest.gallery.sha256.clone(),
                gallery_path: rest.gallery_path,
                backbone_dir: backbone.dir.clone(),
            },
            gallery: rest.gallery,
            gallery_features: rest.gallery_features,
            precision_note,
            text: OnceLock::new(),
            text_source: Some(TextSource {
                config: backbone.text.clone(),
                stamp: file_stamp(&backbone.weights_path),
                weights_path: backbone.weights_path.clone(),
                tokenizer_path: backbone.tokenizer_path.clone(),
            }),
        })
    }

    /// Assembles an engine from parts (benchmarks and tests).
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        device: &Device,
        vision: ClipVision,
        preprocess: PreprocessConfig,
        mlp: ImageMlp,
        location: LocationEncoder,
        logit_scale: f32,
        gallery: Gallery,
        gallery_features: Tensor,
    ) -> Self {
        let files = LoadedFiles {
            weights_sha256: String::new(),
            gallery_sha256: gallery.sha256.clone(),
            gallery_path: gallery.path.clone(),
            backbone_dir: PathBuf::new(),
        };
        Self {
            device: device.clone(),
            vision_config: vision.config().clone(),
            mode: vision.mode(),
            vision: Some(vision),
            preprocess,
            mlp,
            location: OnceLock::from(location),
            heads_path: PathBuf::new(),
            logit_scale,
            gallery,
            gallery_features,
            files,
            precision_note: None,
            text: OnceLock::new(),
            text_source: None,
        }
    }

    /// Gives an engine built [`Self::from_parts`] its text encoder (benchmarks and tests).
    pub fn with_text_encoder(self, text: TextEncoder) -> Self {
        let _ = self.text.set(text);
        self
    }

    pub fn preprocess_config(&self) -> &PreprocessConfig {
        &self.preprocess
    }

    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    pub fn files(&self) -> &LoadedFiles {
        &self.files
    }

    /// The evidence record of this engine's estimates on `device`: hashes and the backbone's
    /// folder name (its weights' sha256 from the install manifest when there is one), no paths.
    pub fn provenance(&self, device: DeviceChoice) -> Provenance {
        let files = &self.files;
        let backbone_sha256 = super::files::Manifest::read(&files.backbone_dir).and_then(|m| {
            m.files
                .into_iter()
                .find(|f| f.name == super::files::WEIGHTS_FILE)
                .map(|f| f.sha256)
        });
        Provenance {
            model: MODEL_NAME.to_owned(),
            weights_sha256: files.weights_sha256.clone(),
            gallery_sha256: files.gallery_sha256.clone(),
            backbone: backbone_label(
                &Provenance::backbone_name(&files.backbone_dir.to_string_lossy()),
                &self.vision_config,
            ),
            backbone_sha256,
            device: device_label(device, self.mode),
        }
    }

    /// How the image tower's matrix products run.
    pub fn mode(&self) -> MatmulMode {
        self.mode
    }

    /// Why fast mode was asked for and is not running (to show to the user), if so.
    pub fn precision_note(&self) -> Option<&str> {
        self.precision_note.as_deref()
    }

    /// The location encoder, read from the heads file on first use. The file must still be the
    /// one loaded (same sha256), as the gallery's cached features and the provenance say.
    pub fn location_encoder(&self) -> Result<&LocationEncoder, ModelError> {
        if let Some(encoder) = self.location.get() {
            return Ok(encoder);
        }
        let sha256 = sha256_file(&self.heads_path)?;
        if sha256 != self.files.weights_sha256 {
            return Err(ModelError::Checksum {
                path: self.heads_path.clone(),
                expected: self.files.weights_sha256.clone(),
                actual: sha256,
            });
        }
        let heads = WeightFile::open(&self.heads_path, &self.device)?;
        let encoder = Release::location_encoder(&heads)?;
        log::info!(
            "location encoder read on first use from {}",
            self.heads_path.display()
        );
        // Another thread may have set it meanwhile: either is the same encoder.
        let _ = self.location.set(encoder);
        self.location.get().ok_or_else(|| ModelError::Invalid {
            what: "location encoder".into(),
            reason: "not kept after reading".into(),
            path: self.heads_path.clone(),
        })
    }

    /// The text tower and its tokenizer, read from the backbone on first use: every text
    /// tensor checked by name and shape, the weights file still the one the vision tower came
    /// from, in the engine's precision.
    pub fn text_encoder(&self) -> Result<&TextEncoder, ModelError> {
        if let Some(text) = self.text.get() {
            return Ok(text);
        }
        let Some(source) = &self.text_source else {
            return Err(ModelError::Text(
                "this engine was built without a backbone folder, so it has no text tower".into(),
            ));
        };
        let config_path = self.files.backbone_dir.join(super::files::CONFIG_FILE);
        let config = source
            .config
            .clone()
            .map_err(|reason| ModelError::Invalid {
                what: "CLIP text config".into(),
                reason,
                path: config_path.clone(),
            })?;
        if config.projection_dim != super::heads::CLIP_EMBED_DIM {
            return Err(ModelError::Invalid {
                what: "CLIP text config".into(),
                reason: format!(
                    "projection_dim is {}, GeoCLIP's image MLP needs {}",
                    config.projection_dim,
                    super::heads::CLIP_EMBED_DIM
                ),
                path: config_path,
            });
        }
        if file_stamp(&source.weights_path) != source.stamp {
            return Err(ModelError::Invalid {
                what: "CLIP backbone".into(),
                reason: "the file changed since the model was loaded; reload the model".into(),
                path: source.weights_path.clone(),
            });
        }
        let started = Instant::now();
        let tokenizer =
            ClipTokenizer::from_file(&source.tokenizer_path, config.max_position_embeddings)?;
        let weights = WeightFile::open(&source.weights_path, &self.device)?;
        let tower = ClipText::with_mode(&weights, &config, self.mode, &self.device)?;
        log::info!(
            "text tower ({}) read on first use in {:.2} s from {} ({} bytes)",
            config.describe(),
            started.elapsed().as_secs_f64(),
            source.weights_path.display(),
            weights.bytes_read()
        );
        let _ = self.text.set(TextEncoder::new(
            tokenizer,
            tower,
            source.tokenizer_path.clone(),
        ));
        self.text
            .get()
            .ok_or_else(|| ModelError::Text("text tower not kept".into()))
    }

    /// GeoCLIP's image MLP on CLIP features `(768)`: GeoCLIP features `(512)`, not normalised.
    /// A CLIP text feature goes through it as an image feature does.
    pub fn mlp_features(&self, clip_features: &[f32]) -> Result<Vec<f32>, ModelError> {
        Tensor::from_vec(
            clip_features.to_vec(),
            (1, clip_features.len()),
            &Device::Cpu,
        )
        .and_then(|t| t.to_device(&self.device))
        .and_then(|t| self.mlp.forward(&t))
        .and_then(|f| f.flatten_all()?.to_device(&Device::Cpu)?.to_vec1())
        .map_err(ModelError::candle(
            "running the image MLP on a text feature",
        ))
    }

    /// A text's GeoCLIP feature, L2-normalised, to score like a photo's
    /// ([`Self::gallery_logits`], [`Self::location_logits`]). With `ensemble`, the mean of the
    /// [`super::text::TEMPLATES`] filled with the text (each normalised, the mean normalised).
    pub fn text_feature(&self, text: &str, ensemble: bool) -> Result<Vec<f32>, ModelError> {
        let encoder = self.text_encoder()?;
        let rows = TextEncoder::prompts(text, ensemble)
            .iter()
            .map(|prompt| self.mlp_features(&encoder.clip_features(prompt)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::text::ensemble_mean(&rows))
    }

    fn pixel_batch(&self, photos: &[&Preprocessed]) -> Result<Tensor, ModelError> {
        let size = self.vision_config.image_size;
        let data: Vec<f32> = photos.iter().flat_map(|p| p.chw.iter().copied()).collect();
        Tensor::from_vec(data, (photos.len(), 3, size, size), &Device::Cpu)
            .and_then(|t| t.to_device(&self.device))
            .map_err(ModelError::candle("building the pixel batch"))
    }

    /// CLIP image embeddings (B, 768), before GeoCLIP's MLP.
    pub fn clip_embeds(&self, photos: &[&Preprocessed]) -> Result<Tensor, ModelError> {
        let Some(vision) = &self.vision else {
            return Err(ModelError::Invalid {
                what: "engine".into(),
                reason: "loaded for text queries only, without the image tower".into(),
                path: self.files.backbone_dir.clone(),
            });
        };
        vision
            .forward(&self.pixel_batch(photos)?)
            .map_err(ModelError::candle("running the CLIP vision tower"))
    }

    /// GeoCLIP image features (B, 512), not normalised.
    pub fn image_features(&self, photos: &[&Preprocessed]) -> Result<Tensor, ModelError> {
        self.mlp
            .forward(&self.clip_embeds(photos)?)
            .map_err(ModelError::candle("running the image MLP"))
    }

    /// GeoCLIP image features, L2-normalised: one 512-long row per photo. This is what every
    /// score below takes; a photo's row is all that is needed to score it anywhere again.
    pub fn normalized_image_features(
        &self,
        photos: &[&Preprocessed],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if photos.is_empty() {
            return Ok(Vec::new());
        }
        l2_normalize_rows(&self.image_features(photos)?)
            .and_then(|f| f.to_device(&Device::Cpu)?.to_vec2())
            .map_err(ModelError::candle("normalising image features"))
    }

    /// `exp(logit_scale)`: the factor between a cosine similarity and a logit.
    pub fn logit_scale_exp(&self) -> f32 {
        self.logit_scale.exp()
    }

    /// GeoCLIP's logits over the gallery, `exp(logit_scale) * cos(image, gallery point)`, for
    /// each L2-normalised feature row (from [`Self::normalized_image_features`]).
    pub fn gallery_logits(&self, features: &[&[f32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        if features.is_empty() {
            return Ok(Vec::new());
        }
        let data: Vec<f32> = features.iter().flat_map(|f| f.iter().copied()).collect();
        Tensor::from_vec(data, (features.len(), GEO_EMBED_DIM), &Device::Cpu)
            .and_then(|t| t.to_device(&self.device))
            .and_then(|f| f.matmul(&self.gallery_features.t()?))
            .and_then(|cos| cos * f64::from(self.logit_scale.exp()))
            .and_then(|l| l.to_device(&Device::Cpu)?.to_vec2())
            .map_err(ModelError::candle("scoring against the gallery"))
    }

    /// The same logits as [`Self::gallery_logits`] at any points, not only the gallery's: the
    /// location encoder evaluated at `points_lat_lon_deg`, L2-normalised as the gallery is,
    /// against one L2-normalised image feature. A gallery point scores the same here as in the
    /// gallery up to float rounding (the sums run in another order), so both are one scale. Encodes in chunks of
    /// [`gallery::ENCODE_CHUNK`] points.
    pub fn location_logits(
        &self,
        feature: &[f32],
        points_lat_lon_deg: &[[f32; 2]],
    ) -> Result<Vec<f32>, ModelError> {
        let image = Tensor::from_vec(feature.to_vec(), (GEO_EMBED_DIM, 1), &Device::Cpu)
            .and_then(|t| t.to_device(&self.device))
            .map_err(ModelError::candle("reading the image feature"))?;
        let scale = f64::from(self.logit_scale.exp());
        let location = self.location_encoder()?;
        let mut out = Vec::with_capacity(points_lat_lon_deg.len());
        for chunk in points_lat_lon_deg.chunks(gallery::ENCODE_CHUNK) {
            let logits: Vec<f32> = location
                .forward(chunk)
                .and_then(|f| l2_normalize_rows(&f))
                .and_then(|f| f.matmul(&image))
                .and_then(|cos| cos * scale)
                .and_then(|l| l.flatten_all()?.to_device(&Device::Cpu)?.to_vec1())
                .map_err(ModelError::candle("scoring locations"))?;
            out.extend(logits);
        }
        Ok(out)
    }

    /// Ranks the gallery for each photo.
    pub fn predict(
        &self,
        photos: &[&Preprocessed],
        top_k_count: usize,
    ) -> Result<Vec<Prediction>, ModelError> {
        if photos.is_empty() {
            return Ok(Vec::new());
        }
        let features = self.image_features(photos)?;
        self.rank(&features, top_k_count)
    }

    /// GeoCLIP's scoring: `exp(logit_scale) * cos(image, gallery)`, softmax over the gallery.
    pub fn rank(
        &self,
        image_features: &Tensor,
        top_k_count: usize,
    ) -> Result<Vec<Prediction>, ModelError> {
        let logits: Vec<Vec<f32>> = l2_normalize_rows(image_features)
            .and_then(|f| f.matmul(&self.gallery_features.t()?))
            .and_then(|cos| cos * f64::from(self.logit_scale.exp()))
            .and_then(|l| l.to_device(&Device::Cpu)?.to_vec2())
            .map_err(ModelError::candle("scoring against the gallery"))?;
        Ok(logits
            .iter()
            .map(|row| Prediction::from_logits(row, top_k_count, |i| self.gallery.lat_lon(i)))
            .collect())
    }
}

/// What [`GeoClip::load`] reads besides the vision tower.
struct HeadsAndGallery {
    mlp: ImageMlp,
    logit_scale: f32,
    weights_sha256: String,
    gallery: Gallery,
    gallery_path: PathBuf,
    gallery_features: Tensor,
    timings: LoadTimings,
}

/// Where [`GeoClip::load`]'s time went besides the vision tower, for the log.
#[derive(Default)]
struct LoadTimings {
    heads: Duration,
    gallery_csv: Duration,
    weights_hash: Duration,
    gallery_features: Duration,
}

/// The heads, the gallery and its features: from the cache, or encoded and cached.
fn load_heads_and_gallery(
    paths: &ModelPaths,
    release: &Release,
    device: &Device,
    on_event: &mut dyn FnMut(LoadEvent) -> bool,
) -> Result<HeadsAndGallery, ModelError> {
    let mut timings = LoadTimings::default();
    let mut t = Instant::now();
    let lap = |t: &mut Instant| {
        let elapsed = t.elapsed();
        *t = Instant::now();
        elapsed
    };
    let heads = WeightFile::open(&release.weights_path, device)?;
    let mlp = Release::mlp(&heads)?;
    let logit_scale = Release::logit_scale(&heads)?;
    timings.heads = lap(&mut t);
    let gallery_path = paths
        .gallery_csv
        .clone()
        .unwrap_or(release.gallery_path.clone());
    let gallery = Gallery::read_csv(&gallery_path)?;
    timings.gallery_csv = lap(&mut t);
    let weights_sha256 = sha256_file(&release.weights_path)?;
    timings.weights_hash = lap(&mut t);
    let cache = gallery::cache_path(&paths.gallery_cache_dir, &weights_sha256, &gallery.sha256);
    let gallery_features = match gallery::load_cached(&cache, gallery.len(), device) {
        Some(features) => {
            log::info!(
                "gallery features ({} points) read from the cache {}",
                gallery.len(),
                cache.display()
            );
            on_event(LoadEvent::GalleryFromCache {
                points: gallery.len(),
            });
            features
        }
        None => {
            log::info!(
                "gallery features not cached: encoding {} points, then caching them in {}",
                gallery.len(),
                cache.display()
            );
            // Read for the encode only; dropped after it (see `GeoClip::location`).
            let location = Release::location_encoder(&heads)?;
            let features = gallery::encode_gallery(&location, &gallery, &mut |done, total| {
                on_event(LoadEvent::EncodingGallery { done, total })
            })?;
            gallery::store_cached(&cache, &features)?;
            log::info!("gallery features cached: {}", cache.display());
            features
        }
    };
    timings.gallery_features = lap(&mut t);
    Ok(HeadsAndGallery {
        mlp,
        logit_scale,
        weights_sha256,
        gallery,
        gallery_path,
        gallery_features,
        timings,
    })
}

/// Decodes and preprocesses one photo with `cfg` (a convenience for callers).
pub fn prepare_photo(
    path: &Path,
    cfg: &PreprocessConfig,
) -> Result<Preprocessed, super::preprocess::PhotoError> {
    let rgb = super::preprocess::load_photo(path)?;
    super::preprocess::preprocess(&rgb, cfg, path)
}

/// How provenance names a backbone: its folder name, and for one that is not ViT-L/14 the
/// [`crate::domain::STAND_IN_BACKBONE`] mark with its shape, so a stand-in can't pass for
/// GeoCLIP's backbone in any record or export.
/// The provenance's device: `cpu`, `cuda`, `metal`, with `+bf16` for fast mode, so every
/// stored and exported estimate says which precision made it.
pub fn device_label(device: DeviceChoice, mode: MatmulMode) -> String {
    let device = format!("{device:?}").to_lowercase();
    match mode.precision() {
        Precision::Exact => device,
        Precision::Bf16 => format!("{device}+bf16"),
    }
}

pub fn backbone_label(folder_name: &str, config: &super::clip::ClipVisionConfig) -> String {
    if *config == super::clip::ClipVisionConfig::vit_large_patch14() {
        folder_name.to_owned()
    } else {
        format!(
            "{folder_name} ({}: {} layers, width {}, patch {})",
            crate::domain::STAND_IN_BACKBONE,
            config.num_hidden_layers,
            config.hidden_size,
            config.patch_size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::clip::ClipVisionConfig;

    #[test]
    fn a_backbone_that_is_not_vit_l14_is_marked_in_provenance() {
        let large = ClipVisionConfig::vit_large_patch14();
        assert_eq!(
            backbone_label("clip-vit-large-patch14", &large),
            "clip-vit-large-patch14"
        );
        let tiny = ClipVisionConfig {
            num_hidden_layers: 2,
            hidden_size: 64,
            ..large
        };
        let label = backbone_label("clip-vit-large-patch14", &tiny);
        assert_eq!(
            label,
            "clip-vit-large-patch14 (NOT CLIP ViT-L/14: 2 layers, width 64, patch 14)"
        );
        let provenance = Provenance {
            backbone: label,
            ..Provenance::default()
        };
        assert!(provenance.backbone_is_stand_in());
        let warning = provenance.stand_in_warning().unwrap_or_default();
        assert!(warning.contains("results are not GeoCLIP's"), "{warning}");
        let genuine = Provenance {
            backbone: "clip-vit-large-patch14".into(),
            ..Provenance::default()
        };
        assert_eq!(genuine.stand_in_warning(), None);
    }
}
