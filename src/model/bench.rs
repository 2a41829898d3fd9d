//! Speed benchmark on a full-size ViT-L/14 with random weights (the real CLIP weights can't be
//! had everywhere) plus GeoCLIP's heads: seconds per photo at several batch sizes, gallery
//! precompute and cache-load times, and peak memory. `geoloupe bench` and `cargo bench` run it.

use std::time::Instant;

use candle_core::Device;

use super::ModelError;
use super::Precision;
use super::clip::{ClipVision, ClipVisionConfig};
use super::clip_text::{ClipText, ClipTextConfig};
use super::files::{DataDirs, Release};
use super::gallery::{self, Gallery};
use super::preprocess::Preprocessed;
use super::text::ClipTokenizer;
use super::weights::{MatmulMode, RandomWeights, WeightFile};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub batch_sizes: Vec<usize>,
    /// Timed forward passes per batch size (after one warm-up).
    pub repeats: usize,
    /// Gallery points to encode when no gallery is installed.
    pub gallery_points: usize,
    /// The precisions to time: exact and fast mode by default, side by side.
    pub precisions: Vec<Precision>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            batch_sizes: vec![1, 8],
            repeats: 2,
            gallery_points: 100_000,
            precisions: vec![Precision::Exact, Precision::Bf16],
        }
    }
}

/// One precision's figures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModeReport {
    /// What was asked for: `exact`, `bf16`.
    pub precision: Precision,
    /// What ran: "exact (f32)", "bf16 (AVX-512 BF16)", or exact with the reason fast mode
    /// could not run.
    pub kernel: String,
    pub tower_build_secs: f64,
    /// (batch size, seconds per photo), image tower + MLP + scoring against the gallery.
    pub secs_per_photo: Vec<(usize, f64)>,
    /// Cosine similarity of this mode's GeoCLIP image features to exact mode's, on the same
    /// weights and photo (1 for exact).
    pub feature_cosine_vs_exact: f64,
    /// Whether the gallery's top 5 for the test photo are exact mode's.
    pub top5_as_exact: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    pub device: String,
    pub threads: usize,
    /// The CPU features the kernels can use, as detected at run time.
    pub cpu_features: String,
    pub modes: Vec<ModeReport>,
    pub gallery_points: usize,
    pub gallery_heads: &'static str,
    pub gallery_precompute_secs: f64,
    pub gallery_load_secs: f64,
    /// Refining the top 5 candidates of one photo on the location encoder
    /// ([`crate::domain::refine_candidates`]): seconds, and points scored.
    pub refine_secs_per_photo: f64,
    pub refine_points_per_photo: usize,
    /// One text query end to end on the full-size text tower (random weights), in the last
    /// mode timed: tokens (when a tokenizer is installed) -> text tower -> image MLP -> gallery
    /// -> top 5, once loaded. Best of the repeats.
    pub text: TextReport,
    pub peak_rss_mib: Option<f64>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct TextReport {
    /// Building the text tower (random weights) on first use.
    pub build_secs: f64,
    /// The text tower's weights in f32, MiB: what it adds to memory in exact mode (it is only
    /// read for text queries; scripts/bench-memory.sh measures it in a process).
    pub weights_mib: f64,
    /// (mode, seconds) per mode timed: exact, and fast mode where it runs.
    pub query_secs: Vec<(String, f64)>,
    /// Whether the query was tokenized (the installed backbone's tokenizer.json) or given as
    /// fixed ids (no tokenizer installed; tokenizing takes microseconds).
    pub tokenized: bool,
    pub tokens: usize,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "device: {} ({} threads)", self.device, self.threads)?;
        writeln!(f, "CPU features: {}", self.cpu_features)?;
        for mode in &self.modes {
            writeln!(f, "{}: {}", mode.precision.as_str(), mode.kernel)?;
            writeln!(
                f,
                "  ViT-L/14 build (random weights): {:.2} s",
                mode.tower_build_secs
            )?;
            for (batch, secs) in &mode.secs_per_photo {
                let versus_exact = self.modes.first().and_then(|exact| {
                    let (_, exact_secs) = exact.secs_per_photo.iter().find(|(b, _)| b == batch)?;
                    (mode.precision != Precision::Exact).then(|| secs / exact_secs)
                });
                match versus_exact {
                    Some(ratio) => writeln!(
                        f,
                        "  seconds per photo, batch {batch}: {secs:.3} ({ratio:.2} of exact)"
                    )?,
                    None => writeln!(f, "  seconds per photo, batch {batch}: {secs:.3}")?,
                }
            }
            if mode.precision != Precision::Exact {
                writeln!(
                    f,
                    "  image features vs exact: cosine {:.6}, top 5 {}",
                    mode.feature_cosine_vs_exact,
                    if mode.top5_as_exact {
                        "unchanged"
                    } else {
                        "CHANGED"
                    }
                )?;
            }
        }
        writeln!(
            f,
            "gallery precompute ({} points, {} heads): {:.2} s",
            self.gallery_points, self.gallery_heads, self.gallery_precompute_secs
        )?;
        writeln!(
            f,
            "gallery load from cache: {:.3} s",
            self.gallery_load_secs
        )?;
        writeln!(
            f,
            "refining 5 candidates: {:.3} s per photo ({} points, {:.0} points/s)",
            self.refine_secs_per_photo,
            self.refine_points_per_photo,
            self.refine_points_per_photo as f64 / self.refine_secs_per_photo.max(1e-9)
        )?;
        let text = &self.text;
        writeln!(
            f,
            "text query ({} tokens{}), once loaded: {}; text tower built in {:.2} s, {:.0} MiB of \
             f32 weights",
            text.tokens,
            if text.tokenized {
                ", tokenized"
            } else {
                ", no tokenizer installed: fixed ids"
            },
            text.query_secs
                .iter()
                .map(|(mode, secs)| format!("{secs:.3} s {mode}"))
                .collect::<Vec<_>>()
                .join(", "),
            text.build_secs,
            text.weights_mib,
        )?;
        match self.peak_rss_mib {
            Some(m) => writeln!(f, "peak memory (VmHWM): {m:.0} MiB"),
            None => writeln!(f, "peak memory: unavailable on this platform"),
        }
    }
}

/// Peak resident set size, from `/proc/self/status` (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn run(
    options: &BenchOptions,
    dirs: &DataDirs,
    device: &Device,
    log: &mut dyn FnMut(&str),
) -> Result<BenchReport, ModelError> {
    let cfg = ClipVisionConfig::vit_large_patch14();
    let random = RandomWeights::new(device);
    // Heads: the installed release when there is one (same cost either way).
    let release = Release::open(&dirs.release_dir()).ok();
    let heads_file = match &release {
        Some(r) => Some(WeightFile::open(&r.weights_path, device)?),
        None => None,
    };
    let heads: &dyn super::weights::TensorSource = match &heads_file {
        Some(f) => f,
        None => &random,
    };
    let gallery_heads = if heads_file.is_some() {
        "installed"
    } else {
        "random"
    };
    let location = Release::location_encoder(heads)?;
    let gallery = match &release {
        Some(r) => Gallery::read_csv(&r.gallery_path)?,
        None => synthetic_gallery(options.gallery_points),
    };

    log(&format!("encoding {} gallery points...", gallery.len()));
    let t = Instant::now();
    let features = gallery::encode_gallery(&location, &gallery, &mut |_, _| true)?;
    let gallery_precompute_secs = t.elapsed().as_secs_f64();
    log(&format!(
        "gallery precompute: {gallery_precompute_secs:.2} s"
    ));

    let scratch = std::env::temp_dir().join(format!("geoloupe-bench-{}", std::process::id()));
    let cache = scratch.join("gallery.safetensors");
    gallery::store_cached(&cache, &features)?;
    let t = Instant::now();
    let loaded = gallery::load_cached(&cache, gallery.len(), device);
    let gallery_load_secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&scratch);
    let features = loaded.unwrap_or(features);

    let size = cfg.image_size;
    let photo = Preprocessed {
        pixels_u8: image::RgbImage::new(size as u32, size as u32),
        chw: (0..3 * size * size)
            .map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0)
            .collect(),
    };
    // Exact mode first: the others are compared with it.
    let mut precisions = vec![Precision::Exact];
    precisions.extend(
        options
            .precisions
            .iter()
            .filter(|p| **p != Precision::Exact),
    );
    let mut modes: Vec<ModeReport> = Vec::new();
    let mut exact_answer: Option<(Vec<f32>, Vec<usize>)> = None;
    let mut last_engine = None;
    for precision in precisions {
        let (mode, note) = MatmulMode::resolve(precision, device);
        if precision != Precision::Exact && mode.precision() == Precision::Exact {
            log(note.as_deref().unwrap_or("fast mode is not available here"));
            continue;
        }
        let t = Instant::now();
        let vision = ClipVision::with_mode(&random, &cfg, mode)?;
        let tower_build_secs = t.elapsed().as_secs_f64();
        log(&format!(
            "built ViT-L/14 ({}) with random weights in {tower_build_secs:.1} s",
            mode.describe()
        ));
        let engine = super::GeoClip::from_parts(
            device,
            vision,
            super::preprocess::PreprocessConfig::clip_vit_large_patch14(),
            Release::mlp(heads)?,
            Release::location_encoder(heads)?,
            4.6,
            gallery.clone(),
            features.clone(),
        );
        let mut secs_per_photo = Vec::new();
        for &batch in &options.batch_sizes {
            let photos: Vec<&Preprocessed> = std::iter::repeat_n(&photo, batch).collect();
            engine.predict(&photos, 5)?; // warm-up
            let t = Instant::now();
            for _ in 0..options.repeats.max(1) {
                engine.predict(&photos, 5)?;
            }
            let per_photo = t.elapsed().as_secs_f64() / (options.repeats.max(1) * batch) as f64;
            log(&format!(
                "{}, batch {batch}: {per_photo:.3} s per photo",
                precision.as_str()
            ));
            secs_per_photo.push((batch, per_photo));
        }
        let feature = engine
            .normalized_image_features(&[&photo])?
            .pop()
            .unwrap_or_default();
        let top5: Vec<usize> = engine
            .gallery_logits(&[&feature])?
            .pop()
            .map(|logits| top_indices(&logits, 5))
            .unwrap_or_default();
        let (exact_feature, exact_top5) =
            exact_answer.get_or_insert((feature.clone(), top5.clone()));
        modes.push(ModeReport {
            precision,
            kernel: mode.describe(),
            tower_build_secs,
            secs_per_photo,
            feature_cosine_vs_exact: cosine(&feature, exact_feature),
            top5_as_exact: &top5 == exact_top5,
        });
        last_engine = Some(engine);
    }
    let engine = last_engine.ok_or_else(|| ModelError::Candle {
        context: "benchmarking".into(),
        source: candle_core::Error::Msg("no precision to time".into()),
    })?;
    // Refinement: the 5 best gallery candidates of one photo, each searched down to ~100 m.
    let feature = engine
        .normalized_image_features(&[&photo])?
        .pop()
        .ok_or_else(|| ModelError::Candle {
            context: "benchmarking refinement".into(),
            source: candle_core::Error::Msg("no image feature".into()),
        })?;
    let mut prediction = engine.predict(&[&photo], 5)?.remove(0);
    let t = Instant::now();
    let refine_points_per_photo = crate::domain::refine_candidates(
        &mut prediction.candidates,
        engine.logit_scale_exp(),
        |points: &[crate::geo::LatLon]| {
            let coords: Vec<[f32; 2]> = points
                .iter()
                .map(|p| [p.lat_deg as f32, p.lon_deg as f32])
                .collect();
            engine.location_logits(&feature, &coords)
        },
    )?;
    let refine_secs_per_photo = t.elapsed().as_secs_f64();
    log(&format!(
        "refining 5 candidates: {refine_secs_per_photo:.3} s ({refine_points_per_photo} points)"
    ));
    let text = bench_text(&engine, &random, dirs, device, options.repeats.max(1), log)?;
    Ok(BenchReport {
        device: format!("{device:?}"),
        threads: rayon::current_num_threads(),
        cpu_features: cpu_features(),
        modes,
        gallery_points: engine.gallery().len(),
        gallery_heads,
        gallery_precompute_secs,
        gallery_load_secs,
        refine_secs_per_photo,
        refine_points_per_photo,
        text,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// A text query on the full-size ViT-L/14 text tower with random weights, in `engine`'s mode.
fn bench_text(
    engine: &super::GeoClip,
    random: &RandomWeights,
    dirs: &DataDirs,
    device: &Device,
    repeats: usize,
    log: &mut dyn FnMut(&str),
) -> Result<TextReport, ModelError> {
    const QUERY: &str = "a snowy harbour with red roofs";
    let cfg = ClipTextConfig::vit_large_patch14();
    let weights_mib = cfg
        .expected_tensors()
        .iter()
        .map(|(_, shape)| shape.iter().product::<usize>() as f64 * 4.0)
        .sum::<f64>()
        / (1024.0 * 1024.0);
    let tokenizer = ClipTokenizer::from_file(
        &dirs.backbone_dir().join(super::text::TOKENIZER_FILE),
        cfg.max_position_embeddings,
    )
    .ok();
    // The query's ids in CLIP's vocabulary (tests/fixtures/text/expected.json), when no
    // tokenizer is installed.
    let fixed: [u32; 8] = [49406, 320, 14191, 10011, 593, 736, 34635, 49407];
    let mut modes = vec![MatmulMode::F32];
    if engine.mode() != MatmulMode::F32 {
        modes.push(engine.mode());
    }
    let (mut build_secs, mut tokens, mut query_secs) = (0.0, 0, Vec::new());
    for mode in modes {
        let t = Instant::now();
        let tower = ClipText::with_mode(random, &cfg, mode, device)?;
        if mode == MatmulMode::F32 {
            build_secs = t.elapsed().as_secs_f64();
        }
        let query = || -> Result<usize, ModelError> {
            let ids = match &tokenizer {
                Some(t) => t.encode(QUERY)?,
                None => fixed.to_vec(),
            };
            let features = engine.mlp_features(&tower.forward(&ids)?)?;
            let norm = features.iter().map(|v| v * v).sum::<f32>().sqrt();
            let feature: Vec<f32> = features.iter().map(|v| v / norm).collect();
            let logits = engine.gallery_logits(&[&feature])?;
            let _ = top_indices(&logits[0], 5);
            Ok(ids.len())
        };
        tokens = query()?; // warm-up
        let mut best = f64::INFINITY;
        for _ in 0..repeats.max(3) {
            let t = Instant::now();
            query()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        log(&format!(
            "text query, {}: {best:.3} s ({tokens} tokens)",
            mode.describe()
        ));
        query_secs.push((mode.describe(), best));
    }
    Ok(TextReport {
        build_secs,
        weights_mib,
        query_secs,
        tokenized: tokenizer.is_some(),
        tokens,
    })
}

/// The indices of the `k` largest values, largest first.
fn top_indices(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order.truncate(k);
    order
}

/// Cosine similarity, in f64.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)
}

/// The CPU features that matter to the kernels, as detected at run time.
pub fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let mut found: Vec<&str> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("AVX2");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("AVX-512F");
        }
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            found.push("AVX-512 BF16");
        }
        // AMX-BF16: CPUID leaf 7, EDX bit 22 (Rust's detection macro for it is unstable).
        let amx = std::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 22) != 0;
        if amx {
            found.push("AMX-BF16 (present, not used: see model::bf16)");
        }
        if found.is_empty() {
            "none of AVX2, AVX-512, AVX-512 BF16, AMX".into()
        } else {
            found.join(", ")
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_owned()
    }
}

/// Evenly spread points (a Fibonacci lattice) for a gallery-sized workload.
fn synthetic_gallery(points: usize) -> Gallery {
    let golden = (1.0 + 5f64.sqrt()) / 2.0;
    let coords = (0..points.max(1))
        .map(|i| {
            let z = 1.0 - 2.0 * (i as f64 + 0.5) / points.max(1) as f64;
            let lon = ((i as f64 / golden).fract() * 360.0) - 180.0;
            [z.asin().to_degrees() as f32, lon as f32]
        })
        .collect();
    Gallery {
        coords_lat_lon_deg: coords,
        sha256: "synthetic".into(),
        path: "synthetic".into(),
    }
}

/// The continuous heatmap's cost for one view: the location encoder over the grid of every
/// tile of a `view_px` view at `zoom` (level 0 first, then the finer levels, grouped into calls
/// as the inference thread groups them), scored against one image feature. Every tile is
/// refined: the worst case (the inference thread stops refining tiles far under the photo's
/// best gallery point, `heat_grid::SKIP_BELOW`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct HeatBenchReport {
    pub device: String,
    pub threads: usize,
    /// "installed" (the release's weights) or "random" (random weights of the real shape).
    pub heads: &'static str,
    pub view_px: [u32; 2],
    pub zoom: f64,
    pub tiles: usize,
    /// Points scored at each level (the samples it adds).
    pub points_per_level: Vec<usize>,
    /// From the start to the end of each level: level 0 is the first layer on the map, the
    /// last level the full resolution.
    pub secs_to_level: Vec<f64>,
    pub points_per_sec: f64,
}

impl std::fmt::Display for HeatBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "device: {} ({} threads)", self.device, self.threads)?;
        writeln!(
            f,
            "continuous heatmap, {} heads: a {}x{} view at zoom {} = {} tiles",
            self.heads, self.view_px[0], self.view_px[1], self.zoom, self.tiles
        )?;
        for (level, (points, secs)) in self
            .points_per_level
            .iter()
            .zip(&self.secs_to_level)
            .enumerate()
        {
            let side = crate::geo::heat_grid::cells(level as u8);
            writeln!(
                f,
                "level {level} ({side}x{side} cells a tile): {points} points, done after {secs:.3} s"
            )?;
        }
        writeln!(f, "grid throughput: {:.0} points/s", self.points_per_sec)
    }
}

/// Times [`HeatBenchReport`]'s workload with the installed heads, else random weights of the
/// real (full) shape. The feature is a fixed unit vector: the cost does not depend on it.
pub fn run_heat_grid(
    dirs: &DataDirs,
    device: &Device,
    view_px: [u32; 2],
    zoom: f64,
    log: &mut dyn FnMut(&str),
) -> Result<HeatBenchReport, ModelError> {
    use crate::geo::heat_grid;
    use candle_core::Tensor;

    let random = RandomWeights::new(device);
    let release = Release::open(&dirs.release_dir()).ok();
    let heads_file = match &release {
        Some(r) => Some(WeightFile::open(&r.weights_path, device)?),
        None => None,
    };
    let heads: &dyn super::weights::TensorSource = match &heads_file {
        Some(f) => f,
        None => &random,
    };
    let heads_kind = if heads_file.is_some() {
        "installed"
    } else {
        "random"
    };
    let location = Release::location_encoder(heads)?;
    let dim = super::heads::GEO_EMBED_DIM;
    let feature: Vec<f32> = (0..dim).map(|i| (i * 37 % 11) as f32 - 5.0).collect();
    let norm = feature.iter().map(|v| v * v).sum::<f32>().sqrt();
    let feature: Vec<f32> = feature.iter().map(|v| v / norm).collect();
    let image = Tensor::from_vec(feature, (dim, 1), device)
        .map_err(ModelError::candle("reading the image feature"))?;
    // What `GeoClip::location_logits` does: encode, L2-normalise, cosine, logit scale.
    let score = |points: &[[f32; 2]]| -> Result<Vec<f32>, ModelError> {
        location
            .forward(points)
            .and_then(|f| super::clip::l2_normalize_rows(&f))
            .and_then(|f| f.matmul(&image))
            .and_then(|cos| cos * 4.6f64.exp())
            .and_then(|l| l.flatten_all()?.to_device(&Device::Cpu)?.to_vec1())
            .map_err(ModelError::candle("scoring locations"))
    };
    // A view of Paris.
    let tiles = heat_grid::visible_tiles(
        crate::geo::LatLon::new(48.8566, 2.3522),
        zoom,
        [view_px[0] as f32, view_px[1] as f32],
    );
    score(&[[48.85, 2.35]; 64])?; // warm-up
    log(&format!(
        "sampling {} tiles, {} levels...",
        tiles.len(),
        heat_grid::LEVELS
    ));
    let started = Instant::now();
    let mut points_per_level = Vec::new();
    let mut secs_to_level = Vec::new();
    for level in 0..heat_grid::LEVELS {
        let mut points = 0;
        for chunk in tiles.chunks(heat_grid::tiles_per_call(level)) {
            let coords: Vec<[f32; 2]> = chunk
                .iter()
                .flat_map(|&t| heat_grid::new_sample_positions(t, level))
                .map(|p| [p.lat_deg as f32, p.lon_deg as f32])
                .collect();
            points += score(&coords)?.len();
        }
        points_per_level.push(points);
        secs_to_level.push(started.elapsed().as_secs_f64());
        log(&format!(
            "level {level}: {points} points, {:.3} s",
            started.elapsed().as_secs_f64()
        ));
    }
    let total_secs = started.elapsed().as_secs_f64();
    Ok(HeatBenchReport {
        device: format!("{device:?}"),
        threads: rayon::current_num_threads(),
        heads: heads_kind,
        view_px,
        zoom,
        tiles: tiles.len(),
        points_per_sec: points_per_level.iter().sum::<usize>() as f64 / total_secs.max(1e-9),
        points_per_level,
        secs_to_level,
    })
}

/// `geoloupe bench --trip`: a synthetic trip ([`crate::geo::trip::synthetic::drive`], a drive at
/// 80 km/h, one photo a minute) solved at 130 km/h: time and memory.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TripBenchReport {
    pub threads: usize,
    pub photos: usize,
    pub candidates_per_photo: usize,
    /// Pairs of candidates checked against the travel bound.
    pub pair_checks: u64,
    /// Making the synthetic candidates (not part of the trip).
    pub generate_secs: f64,
    /// Each repeat's [`crate::geo::trip::solve`], seconds.
    pub solve_secs: Vec<f64>,
    /// Resident memory before solving (the input included) and the peak after.
    pub rss_before_mib: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    /// Median distance from the truth: each photo's top candidate, and the trip's path.
    pub single_photo_median_km: f64,
    pub trip_median_km: f64,
}

impl std::fmt::Display for TripBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "trip: {} photos x {} candidates ({} pair checks), {} threads",
            self.photos, self.candidates_per_photo, self.pair_checks, self.threads
        )?;
        writeln!(
            f,
            "synthetic candidates made in {:.3} s",
            self.generate_secs
        )?;
        for (i, secs) in self.solve_secs.iter().enumerate() {
            writeln!(
                f,
                "solve {}: {secs:.3} s (forward-backward + Viterbi)",
                i + 1
            )?;
        }
        match (self.rss_before_mib, self.peak_rss_mib) {
            (Some(before), Some(peak)) => writeln!(
                f,
                "memory: {before:.0} MiB resident before solving, peak (VmHWM) {peak:.0} MiB"
            )?,
            _ => writeln!(f, "memory: unavailable on this platform")?,
        }
        writeln!(
            f,
            "median error: single photo {:.0} km, trip {:.0} km",
            self.single_photo_median_km, self.trip_median_km
        )
    }
}

/// Resident set size now, from `/proc/self/status` (Linux).
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Times [`crate::geo::trip::solve`] on `photos` synthetic photos with `candidates` each.
pub fn run_trip(
    photos: usize,
    candidates: usize,
    repeats: usize,
) -> Result<TripBenchReport, crate::geo::trip::TripError> {
    use crate::geo::LatLon;
    use crate::geo::trip::{TravelModel, solve, synthetic};

    let started = Instant::now();
    // Westward from Vladivostok: 5,000 minutes at 80 km/h is 6,700 km, all on land.
    let drive = synthetic::drive(
        12,
        photos,
        candidates,
        LatLon::new(43.1, 131.9),
        290.0,
        80.0,
        60.0,
    );
    let generate_secs = started.elapsed().as_secs_f64();
    let rss_before_mib = rss_mib();
    let model = TravelModel::new(130.0);
    let mut solve_secs = Vec::new();
    let mut trip = None;
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let solved = solve(&drive.photos, &model)?;
        solve_secs.push(started.elapsed().as_secs_f64());
        trip = Some(solved);
    }
    let peak_rss_mib = peak_rss_mib();
    let median = |pick: &dyn Fn(usize) -> usize| {
        let mut km: Vec<f64> = (0..drive.photos.len())
            .map(|i| {
                drive.photos[i].candidates[pick(i)]
                    .position
                    .distance_km(&drive.truth[i])
            })
            .collect();
        km.sort_by(f64::total_cmp);
        km.get(km.len() / 2).copied().unwrap_or(0.0)
    };
    let (single_photo_median_km, trip_median_km) = match &trip {
        Some(t) => (median(&|_| 0), median(&|i| t.path[i])),
        None => (0.0, 0.0),
    };
    let pair_checks = drive
        .photos
        .windows(2)
        .map(|w| (w[0].candidates.len() * w[1].candidates.len()) as u64)
        .sum();
    Ok(TripBenchReport {
        threads: rayon::current_num_threads(),
        photos,
        candidates_per_photo: candidates,
        pair_checks,
        generate_secs,
        solve_secs,
        rss_before_mib,
        peak_rss_mib,
        single_photo_median_km,
        trip_median_km,
    })
}

#[cfg(test)]
mod tests {
    /// The trip bench's report on a small trip: the pairs it counts and the errors it measures
    /// (times are not asserted).
    #[test]
    fn trip_bench_reports_pairs_and_errors() {
        let report = super::run_trip(60, 40, 2).unwrap();
        assert_eq!(report.pair_checks, 59 * 40 * 40);
        assert_eq!(report.solve_secs.len(), 2);
        assert!(report.trip_median_km < report.single_photo_median_km);
        assert!(
            report
                .to_string()
                .contains("trip: 60 photos x 40 candidates")
        );
    }
}
