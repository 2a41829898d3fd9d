//! The shared vocabulary of geoloupe: what the model answers ([`Candidate`], [`Prediction`],
//! [`PhotoResult`] with its [`HeatPoint`]s), which model answered ([`Provenance`], the one
//! evidence record every store, export and sidecar uses), what the user decided ([`Decision`]),
//! and what a photo file is ([`PhotoFormat`]). Pure data and pure functions: no egui, no candle,
//! no I/O, so every layer above (`model`, `library`, `export`, `runtime`, `app`, `ui`, `cli`)
//! can share them without pointing at each other.

use std::sync::Arc;
use std::time::SystemTime;

use crate::geo::refine::{RefineGrid, refine};
use crate::geo::{EmptyRegion, LatLon, Region, renormalise, softmax, top_k};

/// Called by a worker thread after each event it sends, so the UI wakes up and drains the
/// channel (in the app: `move || ctx.request_repaint()`).
pub type RepaintFn = Box<dyn Fn() + Send + Sync>;

/// A repaint callback that does nothing (tests, headless use).
pub fn no_repaint() -> RepaintFn {
    Box::new(|| {})
}

/// Seconds since the Unix epoch, now.
pub fn now_unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The model named in provenance records (the backbone is recorded separately).
pub const MODEL_NAME: &str = "GeoCLIP";

/// One ranked GPS candidate.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Candidate {
    /// 1 is the model's best guess.
    pub rank: usize,
    pub gallery_index: usize,
    pub position: LatLon,
    pub probability: f32,
    /// The location encoder's best point near the gallery point (`locate --refine`, the app's
    /// refinement setting): `None` when not refined. The gallery point stays `position`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refined: Option<RefinedPoint>,
}

/// A candidate refined on GeoCLIP's continuous location encoder ([`crate::geo::refine`]): a
/// point found by a local grid search around the gallery point, down to about 100 m.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RefinedPoint {
    pub position: LatLon,
    /// The model's logit there, on the gallery's scale (`exp(logit_scale) * similarity`).
    pub logit: f32,
    /// The cosine similarity between the photo's feature and the location's feature
    /// (`logit / exp(logit_scale)`).
    pub similarity: f32,
}

/// Whether a location is one of GeoCLIP's gallery points or a refined point between them:
/// exports say which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    Gallery,
    Refined,
}

impl PointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gallery => "gallery",
            Self::Refined => "refined",
        }
    }
}

impl Candidate {
    /// Where this candidate puts the photo: the refined point when there is one, else the
    /// gallery point; with which of the two it is.
    pub fn best_position(&self) -> (LatLon, PointKind) {
        match &self.refined {
            Some(r) => (r.position, PointKind::Refined),
            None => (self.position, PointKind::Gallery),
        }
    }
}

/// Refines each candidate on the location encoder ([`crate::geo::refine::refine`] with
/// [`RefineGrid::GEOCLIP`]), setting [`Candidate::refined`]. `score` gives the logits at any
/// points (the gallery's scale); `similarity_scale` turns a logit into the refined point's
/// similarity: `exp(logit_scale)` for one photo, `n * exp(logit_scale)` for a group of `n`
/// (whose logits are summed: the similarity is then the members' mean cosine). Returns the
/// points scored.
pub fn refine_candidates<E>(
    candidates: &mut [Candidate],
    similarity_scale: f32,
    mut score: impl FnMut(&[LatLon]) -> Result<Vec<f32>, E>,
) -> Result<usize, E> {
    let mut scored = 0;
    for c in candidates.iter_mut() {
        let found = refine(c.position, &RefineGrid::GEOCLIP, &mut score)?;
        scored += found.points_scored;
        c.refined = Some(RefinedPoint {
            position: found.position,
            logit: found.logit,
            similarity: found.logit / similarity_scale,
        });
    }
    Ok(scored)
}

/// The location encoder's logits for one image feature at any points (the gallery's scale).
pub type LocationLogitsFn<'a> = dyn Fn(&[f32], &[LatLon]) -> Result<Vec<f32>, String> + 'a;

/// A region to restrict an answer to, with which gallery points lie inside it (computed once
/// per region: [`Region::mask`]).
pub type Within<'a> = (&'a Region, &'a [bool]);

/// GeoCLIP's answer for one photo, or for a group of photos of one place, from their image
/// features: the members' gallery logits summed ([`crate::geo::group::sum_logits`], which says
/// why that is the right combination), then ranked as one photo's are
/// ([`Prediction::from_logits`]). With `within`, the probabilities are renormalised inside the
/// region and the candidates come from inside ([`Prediction::within`]; the constraint with the
/// share of belief inside is returned). With `refine` (the similarity scale and the location
/// encoder's logits for one feature at any points), each candidate is then refined on the
/// members' summed logits ([`refine_candidates`]), never leaving the region. The one path for
/// the CLI and the app's worker, so both give the same answer.
pub fn predict_features(
    features: &[&[f32]],
    top_k_count: usize,
    gallery_logits: impl Fn(&[f32]) -> Result<Vec<f32>, String>,
    position_of: impl Fn(usize) -> Option<LatLon>,
    refine: Option<(f32, &LocationLogitsFn<'_>)>,
    within: Option<Within<'_>>,
) -> Result<(Prediction, Option<RegionConstraint>), String> {
    let rows = features
        .iter()
        .map(|f| gallery_logits(f))
        .collect::<Result<Vec<_>, _>>()?;
    let summed = crate::geo::group::sum_logits(&rows)
        .ok_or_else(|| "no photo to locate, or their logits differ in length".to_owned())?;
    let mut prediction = Prediction::from_logits(&summed, top_k_count, &position_of);
    let mut constraint = None;
    if let Some((region, inside)) = within {
        let (restricted, c) = prediction
            .within(region, inside, top_k_count, &position_of)
            .map_err(|e| e.to_string())?;
        prediction = restricted;
        constraint = Some(c);
    }
    if let Some((logit_scale_exp, location_logits)) = refine {
        let scale = logit_scale_exp * features.len() as f32;
        refine_candidates(&mut prediction.candidates, scale, |points| {
            let rows = features
                .iter()
                .map(|f| location_logits(f, points))
                .collect::<Result<Vec<_>, _>>()?;
            let mut summed = crate::geo::group::sum_logits(&rows)
                .ok_or_else(|| "the location logits differ in length".to_owned())?;
            // A refined point stays inside the region: outside scores as impossible.
            if let Some((region, _)) = within {
                for (logit, point) in summed.iter_mut().zip(points) {
                    if !region.contains(*point) {
                        *logit = f32::NEG_INFINITY;
                    }
                }
            }
            Ok::<_, String>(summed)
        })?;
    }
    Ok((prediction, constraint))
}

/// The model's answer for one photo.
#[derive(Clone, Debug)]
pub struct Prediction {
    pub candidates: Vec<Candidate>,
    /// The probability of every gallery point (sums to 1): the heatmap's input.
    pub probabilities: Arc<[f32]>,
}

impl Prediction {
    /// GeoCLIP's ranking of one photo's logits over the gallery: softmax, then the `top_k_count`
    /// most probable points as ranked candidates (`position_of` maps a gallery index to its
    /// coordinates; an index it doesn't know is left out).
    pub fn from_logits(
        logits: &[f32],
        top_k_count: usize,
        position_of: impl Fn(usize) -> Option<LatLon>,
    ) -> Self {
        let probabilities: Arc<[f32]> = softmax(logits).into();
        let candidates = ranked_candidates(&probabilities, top_k_count, None, position_of);
        Self {
            candidates,
            probabilities,
        }
    }
}

/// The `top_k_count` most probable points of `probabilities` as ranked candidates (rank 1
/// first), leaving out points `position_of` does not know and, with `inside`, points outside.
fn ranked_candidates(
    probabilities: &[f32],
    top_k_count: usize,
    inside: Option<&[bool]>,
    position_of: impl Fn(usize) -> Option<LatLon>,
) -> Vec<Candidate> {
    top_k(probabilities, top_k_count)
        .into_iter()
        .filter(|c| inside.is_none_or(|m| m.get(c.gallery_index).copied().unwrap_or(false)))
        .enumerate()
        .filter_map(|(i, c)| {
            Some(Candidate {
                rank: i + 1,
                gallery_index: c.gallery_index,
                position: position_of(c.gallery_index)?,
                probability: c.probability,
                refined: None,
            })
        })
        .collect()
}

impl Prediction {
    /// This prediction restricted to a region: probabilities renormalised over the gallery
    /// points where `inside` is true (see [`crate::geo::renormalise`]), candidates re-ranked
    /// from those points only, and the constraint with the share of belief that was inside.
    pub fn within(
        &self,
        region: &Region,
        inside: &[bool],
        top_k_count: usize,
        position_of: impl Fn(usize) -> Option<LatLon>,
    ) -> Result<(Prediction, RegionConstraint), EmptyRegion> {
        let label = region.label();
        let r = renormalise(&self.probabilities, inside, &label)?;
        let candidates = ranked_candidates(
            &r.probabilities,
            top_k_count.min(r.points_inside),
            Some(inside),
            position_of,
        );
        let constraint = RegionConstraint {
            spec: region.spec(),
            label,
            share_inside: r.share_inside,
            gallery_points_inside: r.points_inside,
        };
        Ok((
            Prediction {
                candidates,
                probabilities: r.probabilities.into(),
            },
            constraint,
        ))
    }
}

/// A photo's answer restricted to a region (`locate --within`, the app's region control):
/// what every output records beside the provenance.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegionConstraint {
    /// `country:UA`, `box:44,22,52.5,40.3` (LAT_MIN,LON_MIN,LAT_MAX,LON_MAX) or
    /// `polygon:lat lon;lat lon;...`.
    pub spec: String,
    /// `Ukraine (UA)`, `the box 44,22,52.5,40.3`.
    pub label: String,
    /// The sum of the unconstrained probabilities inside (0..1): a low share is itself evidence.
    pub share_inside: f64,
    pub gallery_points_inside: usize,
}

impl RegionConstraint {
    /// `12.3% of the model's belief lies inside Ukraine (UA)` (`less than 0.01%` for a tiny
    /// share: exports keep the exact one).
    pub fn sentence(&self) -> String {
        format!(
            "{} of the model's belief lies inside {}",
            percent(self.share_inside),
            self.label
        )
    }
}

/// A share as a percentage with the precision a small share needs (`0.02%`, `12.3%`).
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p >= 10.0 {
        format!("{p:.1}%")
    } else if p >= 0.01 {
        format!("{p:.2}%")
    } else {
        // Exports keep the exact share; a sentence needs no exponent.
        "less than 0.01%".to_owned()
    }
}

/// Heat points kept per photo, at most.
pub const HEAT_MAX_POINTS: usize = 2000;
/// Heat points stop once they hold this much probability.
pub const HEAT_MASS: f32 = 0.99;

/// One gallery point of the heatmap.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeatPoint {
    pub position: LatLon,
    pub probability: f32,
}

/// Which model produced a result: the evidence record stored with it, exported with it (GPX,
/// CSV, GeoJSON, XMP) and printed by the CLI. It names files by content hash and the backbone by
/// its folder name, never by a path: a file shared with others carries no private path. When
/// the estimate was made is the result's own time (`PhotoResult::computed_at_unix_secs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// Human-readable model name ("GeoCLIP", "fake (tests)").
    pub model: String,
    pub weights_sha256: String,
    pub gallery_sha256: String,
    /// The backbone's folder name (`clip-vit-large-patch14`), never its path: see
    /// [`Provenance::backbone_name`].
    pub backbone: String,
    /// sha256 of the backbone weights, from its install manifest, when known.
    pub backbone_sha256: Option<String>,
    /// "cpu", "cuda", "metal".
    pub device: String,
}

impl Provenance {
    /// The provenance of a location no model made (a GPS track, neighbouring photos, the
    /// user's hand): only the model name says which (`gps-track`, `neighbouring-photos`,
    /// `by-hand`); the hashes, backbone and device stay empty, and the details are in the
    /// location's [`Origin`].
    pub fn measured(origin: &Origin) -> Self {
        let model = match origin {
            Origin::Track { .. } => "gps-track",
            Origin::Neighbour { .. } => "neighbouring-photos",
            Origin::Hand => "by-hand",
            // Estimates come with their model's own provenance; this is only a fallback.
            Origin::Estimate | Origin::Trip { .. } => "unknown",
        };
        Self {
            model: model.to_owned(),
            ..Self::default()
        }
    }

    /// The name a backbone folder is recorded under: its last component. Older databases stored
    /// the whole path; reading one through this keeps the private part out of every export.
    pub fn backbone_name(backbone: &str) -> String {
        backbone
            .rsplit(['/', '\\'])
            .find(|part| !part.is_empty())
            .unwrap_or(backbone)
            .to_owned()
    }

    /// Whether the backbone is a stand-in (a CLIP that is not ViT-L/14, such as the tiny test
    /// one): GeoCLIP's heads on it do not give GeoCLIP's results.
    pub fn backbone_is_stand_in(&self) -> bool {
        self.backbone.contains(STAND_IN_BACKBONE)
    }

    /// The line to show wherever such results are shown, for a stand-in backbone.
    pub fn stand_in_warning(&self) -> Option<String> {
        self.backbone_is_stand_in()
            .then(|| format!("Backbone: {}: results are not GeoCLIP's", self.backbone))
    }
}

/// Written into [`Provenance::backbone`] after the folder name when the backbone is not CLIP
/// ViT-L/14 (the one GeoCLIP was trained on), so every record and export says so.
pub const STAND_IN_BACKBONE: &str = "NOT CLIP ViT-L/14";

/// The model's answer for one photo, as the app keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoResult {
    /// Ranked, best first (`rank` 1).
    pub candidates: Vec<Candidate>,
    /// The most probable gallery points, most probable first (see the module docs).
    pub heat: Vec<HeatPoint>,
    /// The probability `heat` holds (<= 1): the rest is spread too thin to see.
    pub heat_mass: f32,
    /// Points in the gallery the probabilities were over.
    pub gallery_len: usize,
    /// The k asked for.
    pub top_k: usize,
    pub provenance: Provenance,
    pub computed_at_unix_secs: i64,
    /// The photo's L2-normalised image feature, when this session computed it: what the
    /// continuous map, refinement, regions and groups score again without the photo. Not kept
    /// in the library (`None` for a result read back from it).
    pub image_feature: Option<Arc<[f32]>>,
    /// The photos this result was located together with ("Locate together", `locate
    /// --together`), this one included: the candidates are the group's. `None` for a photo
    /// located alone, and for results read back from the library (groups are not stored).
    pub group: Option<Arc<[std::path::PathBuf]>>,
}

impl PhotoResult {
    /// Builds a result from a [`Prediction`]: the heat points are the top of its probability
    /// vector (see [`heat_points`]).
    pub fn from_prediction(
        prediction: &Prediction,
        top_k: usize,
        provenance: Provenance,
        position_of: &dyn Fn(usize) -> Option<LatLon>,
    ) -> Self {
        let (heat, heat_mass) = heat_points(
            &prediction.probabilities,
            position_of,
            HEAT_MAX_POINTS,
            HEAT_MASS,
        );
        Self {
            candidates: prediction.candidates.clone(),
            heat,
            heat_mass,
            gallery_len: prediction.probabilities.len(),
            top_k,
            provenance,
            computed_at_unix_secs: now_unix_secs(),
            image_feature: None,
            group: None,
        }
    }

    pub fn best(&self) -> Option<&Candidate> {
        self.candidates.first()
    }
}

/// The most probable points of `probabilities`, most probable first, until they hold `mass`
/// or there are `max_points`; with the probability they hold.
pub fn heat_points(
    probabilities: &[f32],
    position_of: &dyn Fn(usize) -> Option<LatLon>,
    max_points: usize,
    mass: f32,
) -> (Vec<HeatPoint>, f32) {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    let keep = max_points.min(order.len());
    if keep == 0 {
        return (Vec::new(), 0.0);
    }
    let by_probability_desc = |a: &usize, b: &usize| {
        probabilities[*b]
            .total_cmp(&probabilities[*a])
            .then(a.cmp(b))
    };
    if keep < order.len() {
        order.select_nth_unstable_by(keep - 1, by_probability_desc);
        order.truncate(keep);
    }
    order.sort_unstable_by(by_probability_desc);
    let mut heat = Vec::with_capacity(keep);
    let mut held = 0.0f32;
    for index in order {
        if held >= mass {
            break;
        }
        let Some(position) = position_of(index) else {
            continue;
        };
        held += probabilities[index];
        heat.push(HeatPoint {
            position,
            probability: probabilities[index],
        });
    }
    (heat, held.min(1.0))
}

/// Where the user put a photo.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The model's candidate `rank` (1 = best) accepted.
    Accepted { rank: usize, position: LatLon },
    /// Placed by hand on the map.
    Manual { position: LatLon },
    /// A position from another source the user applied: a GPS track, a neighbouring photo or
    /// the trip posterior (issue 12), with where it came from.
    Placed { position: LatLon, origin: Origin },
}

impl Decision {
    pub fn position(&self) -> LatLon {
        match self {
            Self::Accepted { position, .. }
            | Self::Manual { position }
            | Self::Placed { position, .. } => *position,
        }
    }

    /// Where the decided position came from: an accepted candidate is the model's
    /// [`Origin::Estimate`], a manual one [`Origin::Hand`], a placed one its own origin.
    pub fn origin(&self) -> Origin {
        match self {
            Self::Accepted { .. } => Origin::Estimate,
            Self::Manual { .. } => Origin::Hand,
            Self::Placed { origin, .. } => origin.clone(),
        }
    }
}

/// Where a photo's location came from (issue 12): every location the store, the exports, the
/// XMP provenance and the app's badges carry says which of these it is. Only [`Origin::Estimate`]
/// and [`Origin::Trip`] are estimates from pixels; a track or a neighbouring photo's GPS is
/// measured, and a position placed by hand is the user's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// GeoCLIP's answer for this photo alone (its top candidate, or one a person accepted).
    Estimate,
    /// The trip posterior: this photo's GeoCLIP probabilities combined with its neighbours' in
    /// capture time under a travel model (`locate --trip`). `single_photo` is the answer the
    /// photo alone gives, kept beside it.
    Trip {
        max_speed_kmh: f64,
        single_photo: LatLon,
    },
    /// Interpolated on a GPS track at the photo's capture time plus `offset_secs` (the camera
    /// clock's correction, seconds added to the photo's time). `track` is the track file's
    /// name (no folder), `altitude_m` the track's altitude there when it has one.
    Track {
        track: String,
        offset_secs: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        altitude_m: Option<f64>,
    },
    /// Interpolated by capture time from photos of the same set with their own GPS fix:
    /// `photo` is the nearer one's file name, `seconds` how far apart in time they were taken.
    Neighbour { photo: String, seconds: f64 },
    /// Placed by hand.
    Hand,
}

impl Origin {
    /// The short name exports and sidecars write (`estimate`, `trip`, `track`, `neighbour`,
    /// `hand`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Estimate => "estimate",
            Self::Trip { .. } => "trip",
            Self::Track { .. } => "track",
            Self::Neighbour { .. } => "neighbour",
            Self::Hand => "hand",
        }
    }

    /// Whether the location is an estimate from the photo's pixels (GeoCLIP, alone or as a
    /// trip), as opposed to a measured GPS fix or the user's hand.
    pub fn is_from_pixels(&self) -> bool {
        matches!(self, Self::Estimate | Self::Trip { .. })
    }

    /// One line for people: `track holiday.gpx, clock +1:00:00`, `neighbour IMG_0042.jpg,
    /// 37 s away`, `trip posterior (up to 120 km/h)`, `single-photo estimate`, `placed by hand`.
    pub fn describe(&self) -> String {
        match self {
            Self::Estimate => "single-photo estimate".to_owned(),
            Self::Trip { max_speed_kmh, .. } => {
                format!("trip posterior (up to {max_speed_kmh:.0} km/h)")
            }
            Self::Track {
                track, offset_secs, ..
            } => format!("track {track}, clock {}", format_offset(*offset_secs)),
            Self::Neighbour { photo, seconds } => {
                format!("neighbour {photo}, {:.0} s away", seconds.abs())
            }
            Self::Hand => "placed by hand".to_owned(),
        }
    }
}

/// A clock offset as `+H:MM:SS` (whole seconds; fractions as `+H:MM:SS.s`), the form
/// `geotag --offset` reads and exiftool's `-geosync` writes.
pub fn format_offset(offset_secs: f64) -> String {
    let sign = if offset_secs < 0.0 { '-' } else { '+' };
    let total = offset_secs.abs();
    let whole = total.trunc() as u64;
    let (h, m, s) = (whole / 3600, (whole / 60) % 60, whole % 60);
    let frac = total - whole as f64;
    if frac >= 0.05 {
        format!(
            "{sign}{h}:{m:02}:{s:02}.{}",
            (frac * 10.0).round().min(9.0) as u8
        )
    } else {
        format!("{sign}{h}:{m:02}:{s:02}")
    }
}

/// What a file's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PhotoFormat {
    Jpeg,
    Png,
    WebP,
    Tiff,
    Gif,
    Bmp,
    /// HEIC/HEIF (HEVC in an ISO-BMFF container, iPhones' default): decoded through libheif
    /// when geoloupe is built with the `heif` feature.
    Heif,
    /// AVIF (AV1 in the same container): through libheif too, when its AV1 decoder is there.
    Avif,
}

/// The formats this build decodes, for "not a supported image" messages.
#[cfg(feature = "heif")]
pub const SUPPORTED_FORMATS: &str = "JPEG, PNG, WebP, TIFF, GIF, BMP, HEIC/HEIF, AVIF";
/// The formats this build decodes, for "not a supported image" messages.
#[cfg(not(feature = "heif"))]
pub const SUPPORTED_FORMATS: &str = "JPEG, PNG, WebP, TIFF, GIF, BMP";

/// Why a HEIC/HEIF photo can't be read by a build without the `heif` feature, and how to get one
/// that can (the path is appended by whoever names the photo).
pub const NO_HEIF_SUPPORT: &str = "this build of geoloupe has no HEIC/HEIF support (it was built \
     without the `heif` feature); use a build with the `heif` feature (the default on Linux, \
     with libheif installed: `apt install libheif-dev`, then `cargo build`), or convert the \
     photo to JPEG";

/// Whether this build decodes HEIC/HEIF and AVIF photos (the `heif` feature).
pub const HEIF_SUPPORTED: bool = cfg!(feature = "heif");

impl PhotoFormat {
    /// Sniffs the magic bytes (32 are enough for every format, HEIF's brands included).
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if let Some(format) = Self::sniff_isobmff(head) {
            return Some(format);
        }
        match image::guess_format(head).ok()? {
            image::ImageFormat::Jpeg => Some(Self::Jpeg),
            image::ImageFormat::Png => Some(Self::Png),
            image::ImageFormat::WebP => Some(Self::WebP),
            image::ImageFormat::Tiff => Some(Self::Tiff),
            image::ImageFormat::Gif => Some(Self::Gif),
            image::ImageFormat::Bmp => Some(Self::Bmp),
            _ => None,
        }
    }

    /// A HEIF still image by its leading `ftyp` box: the major brand, else the compatible
    /// brands that fit in `head` (a `mif1` file names its codec there). HEVC brands as
    /// libheif's `heif_check_filetype` lists them; image sequences (`msf1`, `hevc`) too, since
    /// libheif decodes their primary image.
    fn sniff_isobmff(head: &[u8]) -> Option<Self> {
        if head.len() < 12 || &head[4..8] != b"ftyp" {
            return None;
        }
        let box_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let brand = |b: &[u8]| match b {
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"hevm" | b"hevs" => {
                Some(Self::Heif)
            }
            b"avif" | b"avis" => Some(Self::Avif),
            _ => None,
        };
        if let Some(format) = brand(&head[8..12]) {
            return Some(format);
        }
        // Compatible brands follow the minor version (bytes 12..16), within the box.
        let end = box_len.clamp(16, head.len().max(16)).min(head.len());
        let compatible = head.get(16..end).unwrap_or_default();
        let from_compatible = compatible.chunks_exact(4).find_map(brand);
        let generic = matches!(&head[8..12], b"mif1" | b"msf1")
            || compatible
                .chunks_exact(4)
                .any(|b| b == b"mif1" || b == b"msf1");
        from_compatible.or(generic.then_some(Self::Heif))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::WebP => "WebP",
            Self::Tiff => "TIFF",
            Self::Gif => "GIF",
            Self::Bmp => "BMP",
            Self::Heif => "HEIF",
            Self::Avif => "AVIF",
        }
    }

    /// HEIF or AVIF: decoded through libheif, EXIF from the container's `Exif` item, the
    /// container's rotation and mirroring applied by the decoder (never the EXIF orientation).
    pub fn is_heif_container(self) -> bool {
        matches!(self, Self::Heif | Self::Avif)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_say_what_they_are() {
        use super::{LatLon, Origin, format_offset};
        let track = Origin::Track {
            track: "day1.gpx".into(),
            offset_secs: 3600.0,
            altitude_m: Some(12.5),
        };
        assert_eq!(track.describe(), "track day1.gpx, clock +1:00:00");
        assert!(!track.is_from_pixels());
        assert!(!Origin::Hand.is_from_pixels());
        let trip = Origin::Trip {
            max_speed_kmh: 120.0,
            single_photo: LatLon::new(1.0, 2.0),
        };
        assert!(trip.is_from_pixels() && Origin::Estimate.is_from_pixels());
        assert_eq!(
            Origin::Neighbour {
                photo: "IMG_1.jpg".into(),
                seconds: -37.2
            }
            .describe(),
            "neighbour IMG_1.jpg, 37 s away"
        );
        assert_eq!(format_offset(-37.0), "-0:00:37");
        assert_eq!(format_offset(5025.5), "+1:23:45.5");
        // Tagged JSON, as the store and the exports keep it.
        let json = serde_json::to_string(&track).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"track","track":"day1.gpx","offset_secs":3600.0,"altitude_m":12.5}"#
        );
        assert_eq!(serde_json::from_str::<Origin>(&json).unwrap(), track);
        assert_eq!(
            serde_json::from_str::<Origin>(r#"{"kind":"estimate"}"#).unwrap(),
            Origin::Estimate
        );
    }

    #[test]
    fn within_reranks_inside_and_keeps_the_share() {
        let logits = [3.0f32, 2.0, 1.0, 0.0];
        let coords = [[50.0f32, 30.0], [10.0, 10.0], [49.0, 31.0], [48.0, 29.0]];
        let prediction = Prediction::from_logits(&logits, 3, |i| {
            coords.get(i).map(|c| LatLon::new(c[0].into(), c[1].into()))
        });
        let region = crate::geo::parse_region("9,9,11,11").unwrap();
        let inside = region.mask(&coords);
        assert_eq!(inside, [false, true, false, false]);
        let (within, constraint) = prediction
            .within(&region, &inside, 3, |i| {
                coords.get(i).map(|c| LatLon::new(c[0].into(), c[1].into()))
            })
            .unwrap();
        assert_eq!(within.candidates.len(), 1);
        assert_eq!(within.candidates[0].gallery_index, 1);
        assert!((within.candidates[0].probability - 1.0).abs() < 1e-6);
        let sum: f32 = within.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!((constraint.share_inside - f64::from(prediction.probabilities[1])).abs() < 1e-6);
        assert_eq!(constraint.spec, "box:9,9,11,11");
        assert!(
            constraint
                .sentence()
                .ends_with("% of the model's belief lies inside the box 9,9,11,11")
        );
        let nowhere = crate::geo::parse_region("-60,-60,-59,-59").unwrap();
        let e = prediction
            .within(&nowhere, &nowhere.mask(&coords), 3, |_| None)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no gallery point lies inside the box")
        );
    }

    use super::*;

    #[test]
    fn heat_points_stop_at_mass_and_are_sorted() {
        let probabilities = [0.05, 0.6, 0.3, 0.05];
        let pos = |i: usize| Some(LatLon::new(i as f64, 0.0));
        let (heat, mass) = heat_points(&probabilities, &pos, 10, 0.85);
        assert_eq!(heat.len(), 2);
        assert_eq!(heat[0].position.lat_deg, 1.0);
        assert_eq!(heat[1].position.lat_deg, 2.0);
        assert!((mass - 0.9).abs() < 1e-6);
        let (heat, _) = heat_points(&probabilities, &pos, 3, 1.0);
        assert_eq!(heat.len(), 3);
    }

    #[test]
    fn heif_and_avif_are_sniffed_by_their_brands() {
        let ftyp = |major: &[u8; 4], compatible: &[&[u8; 4]]| {
            let mut head = Vec::new();
            head.extend_from_slice(&(16 + 4 * compatible.len() as u32).to_be_bytes());
            head.extend_from_slice(b"ftyp");
            head.extend_from_slice(major);
            head.extend_from_slice(&[0, 0, 0, 0]);
            for brand in compatible {
                head.extend_from_slice(*brand);
            }
            head.extend_from_slice(b"\0\0\0\x08meta"); // the next box
            head
        };
        // An iPhone's: major heic.
        let iphone = ftyp(
            b"heic",
            &[b"mif1", b"MiHE", b"MiPr", b"miaf", b"MiHB", b"heic"],
        );
        assert_eq!(PhotoFormat::sniff(&iphone[..32]), Some(PhotoFormat::Heif));
        // libheif's own: major mif1, the codec among the compatible brands.
        let generic = ftyp(b"mif1", &[b"mif1", b"heic"]);
        assert_eq!(PhotoFormat::sniff(&generic), Some(PhotoFormat::Heif));
        let avif = ftyp(b"avif", &[b"avif", b"mif1", b"miaf"]);
        assert_eq!(PhotoFormat::sniff(&avif), Some(PhotoFormat::Avif));
        assert_eq!(
            PhotoFormat::sniff(&ftyp(b"mif1", &[b"mif1", b"avif"])),
            Some(PhotoFormat::Avif)
        );
        // An MP4 video or a QuickTime movie is no photo; the brand inside a later box is not read.
        assert_eq!(
            PhotoFormat::sniff(&ftyp(b"isom", &[b"isom", b"mp41"])),
            None
        );
        assert_eq!(PhotoFormat::sniff(&ftyp(b"qt  ", &[b"qt  "])), None);
        let short = ftyp(b"isom", &[]);
        assert_eq!(PhotoFormat::sniff(&short), None);
        assert!(PhotoFormat::Heif.is_heif_container() && !PhotoFormat::Jpeg.is_heif_container());
        // The JPEG path is untouched.
        assert_eq!(
            PhotoFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(PhotoFormat::Jpeg)
        );
    }

    #[test]
    fn backbone_is_recorded_by_name_only() {
        assert_eq!(
            Provenance::backbone_name(
                "/home/ann/.local/share/geoloupe/models/clip-vit-large-patch14"
            ),
            "clip-vit-large-patch14"
        );
        assert_eq!(Provenance::backbone_name("C:\\Users\\ann\\clip\\"), "clip");
        assert_eq!(Provenance::backbone_name("none"), "none");
    }

    /// A toy model: a feature is a peak `[lat, lon]`, its logit minus the distance from the
    /// peak in units of 100 km (what `FakeEmbedder` does, finer).
    fn toy_location_logits(feature: &[f32], points: &[LatLon]) -> Result<Vec<f32>, String> {
        let peak = LatLon::new(f64::from(feature[0]), f64::from(feature[1]));
        Ok(points
            .iter()
            .map(|p| -(p.distance_km(&peak) / 100.0) as f32)
            .collect())
    }

    fn toy_gallery() -> Vec<LatLon> {
        (0..40)
            .flat_map(|i| {
                (0..40).map(move |j| LatLon::new(40.0 + 0.25 * i as f64, 0.25 * j as f64))
            })
            .collect()
    }

    #[test]
    fn a_group_of_identical_photos_ranks_as_one_with_doubled_logits() {
        let gallery = toy_gallery();
        let gallery_logits = |f: &[f32]| toy_location_logits(f, &gallery);
        let position_of = |i: usize| gallery.get(i).copied();
        let feature = [44.37_f32, 5.11];
        let group = predict_features(
            &[&feature, &feature],
            5,
            gallery_logits,
            position_of,
            None,
            None,
        )
        .unwrap()
        .0;
        let doubled: Vec<f32> = gallery_logits(&feature)
            .unwrap()
            .iter()
            .map(|l| 2.0 * l)
            .collect();
        let one_doubled = Prediction::from_logits(&doubled, 5, position_of);
        assert_eq!(group.candidates, one_doubled.candidates);
        assert_eq!(group.probabilities, one_doubled.probabilities);
        // The same ranking as one photo, more sharply.
        let one = predict_features(&[&feature], 5, gallery_logits, position_of, None, None)
            .unwrap()
            .0;
        let ranks = |p: &Prediction| {
            p.candidates
                .iter()
                .map(|c| c.gallery_index)
                .collect::<Vec<_>>()
        };
        assert_eq!(ranks(&group), ranks(&one));
        assert!(group.candidates[0].probability > one.candidates[0].probability);
    }

    #[test]
    fn refined_candidates_land_near_the_peak() {
        let gallery = toy_gallery();
        let gallery_logits = |f: &[f32]| toy_location_logits(f, &gallery);
        let position_of = |i: usize| gallery.get(i).copied();
        let feature = [44.37_f32, 5.11];
        let peak = LatLon::new(f64::from(feature[0]), f64::from(feature[1]));
        let prediction = predict_features(
            &[&feature],
            3,
            gallery_logits,
            position_of,
            Some((2.0, &toy_location_logits)),
            None,
        )
        .unwrap()
        .0;
        let top = &prediction.candidates[0];
        let refined = top.refined.unwrap();
        assert!(top.position.distance_km(&peak) > 5.0);
        assert!(
            refined.position.distance_km(&peak) < 0.1,
            "{}",
            refined.position
        );
        assert_eq!(top.best_position(), (refined.position, PointKind::Refined));
        approx::assert_abs_diff_eq!(refined.similarity, refined.logit / 2.0);
        assert!(prediction.candidates.iter().all(|c| c.refined.is_some()));
        // A group's similarity is the members' mean: the same as one member's here.
        let group = predict_features(
            &[&feature, &feature],
            3,
            gallery_logits,
            position_of,
            Some((2.0, &toy_location_logits)),
            None,
        )
        .unwrap()
        .0;
        let g = group.candidates[0].refined.unwrap();
        assert_eq!(g.position, refined.position);
        approx::assert_abs_diff_eq!(g.similarity, refined.similarity, epsilon = 1e-6);
    }
}
