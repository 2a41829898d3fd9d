//! Trips: estimates that agree in time (issue 12, item 3).
//!
//! A run of photos ordered by capture time, each with its top-K GeoCLIP candidates (a position
//! and a log-probability), is a hidden Markov chain: the hidden state of photo `t` is which of
//! its candidates is right, the emission is the photo's own GeoCLIP belief, and the travel model
//! says which consecutive pairs of candidates are possible. [`solve`] runs forward-backward
//! (scaled, in `f64`) for each photo's posterior over its candidates, and Viterbi for the path
//! the map draws.
//!
//! ## The travel model ([`TravelModel`])
//! Between photos `dt` seconds apart, two candidates are *reachable* from each other when they
//! lie at most `max_speed_kmh * dt / 3600 + slack_km` apart. The pair potential is 1 for a
//! reachable pair and `teleport` for any other (a pairwise Markov random field on the chain:
//! rows are not normalised, since candidates are a truncated top-K anyway and a photo with
//! few reachable candidates must not be favoured for that).
//!
//! - **Slack, 50 km by default** ([`DEFAULT_SLACK_KM`]): GeoCLIP's answer is a gallery point
//!   (100K points over the land, about 40 km apart on average), and an answer within 25 km is
//!   what the GeoCLIP paper counts as right at city level. Two photos taken at the same spot may
//!   each be answered up to 25 km away, in opposite directions: 2 x 25 km. Less would break
//!   true pairs; more only weakens the constraint for slow travel.
//! - **Teleport, 1e-3 by default** ([`DEFAULT_TELEPORT`]): a pair that breaks the bound is a
//!   thousand times less likely than one that keeps it, never impossible. It stands for a
//!   wrong clock, a faster vehicle than the user said, or a photo whose true place is not among
//!   its top-K at all (GeoCLIP's top-200 often misses it). Not zero, so one wrong estimate
//!   never zeroes a whole trip: a photo none of whose candidates its neighbours can reach
//!   keeps its own belief (the teleport weight is the same for all its candidates, so it
//!   cancels). Small enough that a photo whose single-photo answer lies on another continent
//!   but which has *any* candidate near the path is pulled back unless its far candidates are
//!   a million times (`1 / teleport^2`: it would have to jump away and back) more probable.
//!
//! ## Why Viterbi for the path
//! [`Trip::path`] is the most probable joint assignment (Viterbi), not each photo's posterior
//! argmax: with a bimodal posterior, per-photo argmaxes can pick points that contradict each
//! other and the path then jumps; Viterbi's path keeps the travel bound wherever a path that
//! keeps it is likely at all. Each point's own posterior probability is in
//! [`Trip::marginals`].
//!
//! ## Scale
//! 5,000 photos x 200 candidates is 200M pair checks. Positions are unit 3-vectors in `f32` and
//! the check is a squared chord length against a precomputed threshold (no trigonometry in
//! the inner loop; differences keep it exact to about a metre, where `1 - dot` would lose
//! precision below a few km). Each consecutive pair's reachability is computed once, in
//! parallel with rayon, into bit rows (`ceil(K/64)` words per candidate: 32 MB for 5,000 x
//! 200) that forward, backward and Viterbi then read.

use rayon::prelude::*;

use super::{EARTH_RADIUS_KM, LatLon};

/// Default slack on the travel bound (see the module docs): two city-level errors.
pub const DEFAULT_SLACK_KM: f64 = 50.0;
/// Default weight of a pair that breaks the travel bound (see the module docs).
pub const DEFAULT_TELEPORT: f64 = 1e-3;

/// How fast the photographer can have moved between two photos.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TravelModel {
    /// Top speed, km/h.
    pub max_speed_kmh: f64,
    /// Added to `max_speed_kmh * dt`: the gallery's spacing and GeoCLIP's own error.
    pub slack_km: f64,
    /// The potential of a pair that breaks the bound (0 < teleport <= 1).
    pub teleport: f64,
}

impl TravelModel {
    /// `max_speed_kmh` with the default slack and teleport weight.
    pub fn new(max_speed_kmh: f64) -> Self {
        Self {
            max_speed_kmh,
            slack_km: DEFAULT_SLACK_KM,
            teleport: DEFAULT_TELEPORT,
        }
    }

    /// How far apart two photos `dt_secs` apart may be, km.
    pub fn bound_km(&self, dt_secs: f64) -> f64 {
        self.max_speed_kmh.max(0.0) * dt_secs.abs() / 3600.0 + self.slack_km.max(0.0)
    }
}

/// One of a photo's candidates: where, and the log of its probability (any common offset per
/// photo; only differences matter).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripCandidate {
    pub position: LatLon,
    pub log_prob: f32,
}

/// A photo of the trip: when it was taken (seconds on any one clock for the whole trip) and its
/// candidates.
#[derive(Clone, Debug, PartialEq)]
pub struct TripPhoto {
    pub time_secs: f64,
    pub candidates: Vec<TripCandidate>,
}

impl TripPhoto {
    /// From probabilities (GeoCLIP's softmax of the top-K).
    pub fn from_probabilities(
        time_secs: f64,
        candidates: impl IntoIterator<Item = (LatLon, f32)>,
    ) -> Self {
        Self {
            time_secs,
            candidates: candidates
                .into_iter()
                .map(|(position, p)| TripCandidate {
                    position,
                    log_prob: p.ln(),
                })
                .collect(),
        }
    }

    /// A photo whose place is known (its own EXIF GPS): one certain candidate that anchors the
    /// trip around it.
    pub fn anchored(time_secs: f64, position: LatLon) -> Self {
        Self {
            time_secs,
            candidates: vec![TripCandidate {
                position,
                log_prob: 0.0,
            }],
        }
    }
}

/// Why a trip can't be solved.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TripError {
    #[error("photo {index} has no candidates")]
    NoCandidates { index: usize },
    #[error("photo {index} has {count} candidates; at most 65536 are supported")]
    TooManyCandidates { index: usize, count: usize },
    #[error("photo {index} has no valid capture time")]
    BadTime { index: usize },
    #[error(
        "the travel model needs a finite top speed >= 0, slack >= 0 and 0 < teleport <= 1 \
         (got {max_speed_kmh} km/h, {slack_km} km, {teleport})"
    )]
    BadModel {
        max_speed_kmh: f64,
        slack_km: f64,
        teleport: f64,
    },
}

/// A solved trip; every `Vec` is in the caller's photo order.
#[derive(Clone, Debug, PartialEq)]
pub struct Trip {
    /// Each photo's posterior over its candidates (sums to 1), in its candidates' order.
    pub marginals: Vec<Vec<f32>>,
    /// The index of each photo's candidate on the most probable path (Viterbi).
    pub path: Vec<usize>,
    /// Photo indices in capture-time order (ties keep the caller's order): the order to draw
    /// the path in.
    pub order: Vec<usize>,
    /// How many consecutive pairs of the path break the travel bound (teleports it took).
    pub breaks: usize,
}

impl Trip {
    /// The posterior probability of photo `i`'s point on the path.
    pub fn path_posterior(&self, i: usize) -> f32 {
        self.marginals[i][self.path[i]]
    }

    /// The index of photo `i`'s most probable candidate by its own posterior.
    pub fn posterior_argmax(&self, i: usize) -> usize {
        argmax(&self.marginals[i])
    }
}

fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// A point as a unit vector, `f32`.
fn unit_vector(p: LatLon) -> [f32; 3] {
    let (lat, lon) = (p.lat_deg.to_radians(), p.lon_deg.to_radians());
    [
        (lat.cos() * lon.cos()) as f32,
        (lat.cos() * lon.sin()) as f32,
        lat.sin() as f32,
    ]
}

/// The squared chord length between unit vectors of points `distance_km` apart on the sphere;
/// `None` when every pair is within it (half the circumference or more).
fn chord_sq_threshold(distance_km: f64) -> Option<f32> {
    let angle = distance_km / EARTH_RADIUS_KM;
    if angle >= std::f64::consts::PI {
        return None;
    }
    let chord = 2.0 * (angle / 2.0).sin();
    Some((chord * chord) as f32)
}

/// Candidates of one photo, structure of arrays.
struct Points {
    x: Vec<f32>,
    y: Vec<f32>,
    z: Vec<f32>,
}

impl Points {
    fn new(candidates: &[TripCandidate]) -> Self {
        let mut p = Self {
            x: Vec::with_capacity(candidates.len()),
            y: Vec::with_capacity(candidates.len()),
            z: Vec::with_capacity(candidates.len()),
        };
        for c in candidates {
            let [x, y, z] = unit_vector(c.position);
            p.x.push(x);
            p.y.push(y);
            p.z.push(z);
        }
        p
    }

    fn len(&self) -> usize {
        self.x.len()
    }
}

/// Reachability between consecutive photos (in time order): for pair `s` (photos `s` and
/// `s + 1`) and candidate `j` of photo `s + 1`, a bit row over the candidates `i` of photo `s`
/// that are within the bound.
struct Reach {
    /// Words per bit row of pair `s` (`ceil(K_s / 64)`).
    words: Vec<usize>,
    /// Where pair `s`'s rows start in `bits`.
    offsets: Vec<usize>,
    bits: Vec<u64>,
}

impl Reach {
    fn row(&self, pair: usize, j: usize) -> &[u64] {
        let w = self.words[pair];
        let start = self.offsets[pair] + j * w;
        &self.bits[start..start + w]
    }
}

fn reachability(points: &[Points], times: &[f64], model: &TravelModel) -> Reach {
    let pairs = points.len().saturating_sub(1);
    let mut words = Vec::with_capacity(pairs);
    let mut offsets = Vec::with_capacity(pairs);
    let mut total = 0;
    for s in 0..pairs {
        let w = points[s].len().div_ceil(64);
        words.push(w);
        offsets.push(total);
        total += w * points[s + 1].len();
    }
    let mut bits = vec![0u64; total];
    // Split `bits` into each pair's block, then fill the blocks in parallel.
    let mut blocks: Vec<(usize, &mut [u64])> = Vec::with_capacity(pairs);
    let mut rest = bits.as_mut_slice();
    for s in 0..pairs {
        let (block, tail) = rest.split_at_mut(words[s] * points[s + 1].len());
        blocks.push((s, block));
        rest = tail;
    }
    blocks.into_par_iter().for_each(|(s, block)| {
        let (from, to) = (&points[s], &points[s + 1]);
        let w = words[s];
        match chord_sq_threshold(model.bound_km(times[s + 1] - times[s])) {
            None => {
                for j in 0..to.len() {
                    let row = &mut block[j * w..(j + 1) * w];
                    set_first(row, from.len());
                }
            }
            Some(limit) => {
                for j in 0..to.len() {
                    let (xj, yj, zj) = (to.x[j], to.y[j], to.z[j]);
                    let row = &mut block[j * w..(j + 1) * w];
                    for (word_index, word) in row.iter_mut().enumerate() {
                        let start = word_index * 64;
                        let end = (start + 64).min(from.len());
                        let mut bits = 0u64;
                        for (bit, i) in (start..end).enumerate() {
                            let dx = from.x[i] - xj;
                            let dy = from.y[i] - yj;
                            let dz = from.z[i] - zj;
                            let near = dx * dx + dy * dy + dz * dz <= limit;
                            bits |= u64::from(near) << bit;
                        }
                        *word = bits;
                    }
                }
            }
        }
    });
    Reach {
        words,
        offsets,
        bits,
    }
}

/// Sets the first `n` bits of `row`.
fn set_first(row: &mut [u64], n: usize) {
    for (k, word) in row.iter_mut().enumerate() {
        let start = k * 64;
        *word = if n >= start + 64 {
            u64::MAX
        } else if n > start {
            (1u64 << (n - start)) - 1
        } else {
            0
        };
    }
}

/// Calls `f(i)` for each set bit `i` of `row`.
#[inline]
fn for_each_bit(row: &[u64], mut f: impl FnMut(usize)) {
    for (k, &word) in row.iter().enumerate() {
        let mut w = word;
        while w != 0 {
            let bit = w.trailing_zeros() as usize;
            f(k * 64 + bit);
            w &= w - 1;
        }
    }
}

/// A photo's own belief as linear weights, the largest 1 (a photo whose log-probabilities are
/// all -inf or NaN believes all its candidates equally).
fn emission(candidates: &[TripCandidate]) -> Vec<f64> {
    let max = candidates
        .iter()
        .map(|c| c.log_prob)
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return vec![1.0; candidates.len()];
    }
    candidates
        .iter()
        .map(|c| {
            let d = f64::from(c.log_prob - max);
            if d.is_nan() { 0.0 } else { d.exp() }
        })
        .collect()
}

fn normalise(values: &mut [f64]) {
    let sum: f64 = values.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        for v in values.iter_mut() {
            *v /= sum;
        }
    } else {
        let uniform = 1.0 / values.len().max(1) as f64;
        values.iter_mut().for_each(|v| *v = uniform);
    }
}

/// Solves a trip: each photo's posterior over its candidates given its neighbours in time under
/// `model`, and the most probable path. Photos may come in any order (they are sorted by
/// `time_secs`; the result is in the caller's order). A photo with one candidate of
/// log-probability 0 ([`TripPhoto::anchored`]) is a certain observation.
pub fn solve(photos: &[TripPhoto], model: &TravelModel) -> Result<Trip, TripError> {
    let valid_model = model.max_speed_kmh.is_finite()
        && model.max_speed_kmh >= 0.0
        && model.slack_km.is_finite()
        && model.slack_km >= 0.0
        && model.teleport > 0.0
        && model.teleport <= 1.0;
    if !valid_model {
        return Err(TripError::BadModel {
            max_speed_kmh: model.max_speed_kmh,
            slack_km: model.slack_km,
            teleport: model.teleport,
        });
    }
    for (index, p) in photos.iter().enumerate() {
        if p.candidates.is_empty() {
            return Err(TripError::NoCandidates { index });
        }
        if p.candidates.len() > usize::from(u16::MAX) + 1 {
            return Err(TripError::TooManyCandidates {
                index,
                count: p.candidates.len(),
            });
        }
        if !p.time_secs.is_finite() {
            return Err(TripError::BadTime { index });
        }
    }
    let n = photos.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| photos[a].time_secs.total_cmp(&photos[b].time_secs));
    if n == 0 {
        return Ok(Trip {
            marginals: Vec::new(),
            path: Vec::new(),
            order,
            breaks: 0,
        });
    }
    // Everything below is in time order; `order[s]` is the caller's index of step `s`.
    let points: Vec<Points> = order
        .par_iter()
        .map(|&i| Points::new(&photos[i].candidates))
        .collect();
    let times: Vec<f64> = order.iter().map(|&i| photos[i].time_secs).collect();
    let phi: Vec<Vec<f64>> = order
        .par_iter()
        .map(|&i| emission(&photos[i].candidates))
        .collect();
    let reach = reachability(&points, &times, model);
    let eps = model.teleport;

    // Forward: alpha_s(j) = phi_s(j) * sum_i alpha_{s-1}(i) psi(i, j), normalised each step.
    // With psi = eps + (1 - eps) * reachable and alpha_{s-1} summing to 1, the sum is
    // eps + (1 - eps) * (alpha_{s-1} over the reachable i).
    let mut alpha: Vec<Vec<f64>> = Vec::with_capacity(n);
    let mut first = phi[0].clone();
    normalise(&mut first);
    alpha.push(first);
    for s in 1..n {
        let prev = &alpha[s - 1];
        let mut next: Vec<f64> = phi[s]
            .iter()
            .enumerate()
            .map(|(j, &phi_j)| {
                if phi_j == 0.0 {
                    return 0.0;
                }
                let mut reachable = 0.0;
                for_each_bit(reach.row(s - 1, j), |i| reachable += prev[i]);
                phi_j * (eps + (1.0 - eps) * reachable)
            })
            .collect();
        normalise(&mut next);
        alpha.push(next);
    }

    // Backward: beta_s(i) = sum_j psi(i, j) phi_{s+1}(j) beta_{s+1}(j), normalised each step.
    let mut beta: Vec<Vec<f64>> = vec![Vec::new(); n];
    beta[n - 1] = vec![1.0; points[n - 1].len()];
    for s in (0..n - 1).rev() {
        let w: Vec<f64> = phi[s + 1]
            .iter()
            .zip(&beta[s + 1])
            .map(|(p, b)| p * b)
            .collect();
        let total: f64 = w.iter().sum();
        let mut reachable = vec![0.0f64; points[s].len()];
        for (j, &wj) in w.iter().enumerate() {
            if wj != 0.0 {
                for_each_bit(reach.row(s, j), |i| reachable[i] += wj);
            }
        }
        let mut b: Vec<f64> = reachable
            .iter()
            .map(|r| eps * total + (1.0 - eps) * r)
            .collect();
        normalise(&mut b);
        beta[s] = b;
    }

    let mut marginals = vec![Vec::new(); n];
    for s in 0..n {
        let mut gamma: Vec<f64> = alpha[s].iter().zip(&beta[s]).map(|(a, b)| a * b).collect();
        normalise(&mut gamma);
        marginals[order[s]] = gamma.into_iter().map(|g| g as f32).collect();
    }
    drop(alpha);
    drop(beta);

    let (steps, breaks) = viterbi(&phi, &reach, eps);
    let mut path = vec![0; n];
    for (s, &j) in steps.iter().enumerate() {
        path[order[s]] = j;
    }
    Ok(Trip {
        marginals,
        path,
        order,
        breaks,
    })
}

/// The most probable path (in time order) and how many of its steps break the bound.
fn viterbi(phi: &[Vec<f64>], reach: &Reach, eps: f64) -> (Vec<usize>, usize) {
    let n = phi.len();
    let log_eps = eps.ln();
    let log = |v: f64| if v > 0.0 { v.ln() } else { f64::NEG_INFINITY };
    let mut delta: Vec<f64> = phi[0].iter().map(|&p| log(p)).collect();
    // back[s][j]: the candidate of step s - 1 on the best path into candidate j of step s.
    let mut back: Vec<Vec<u16>> = Vec::with_capacity(n);
    back.push(Vec::new());
    for (s, phi_s) in phi.iter().enumerate().skip(1) {
        let best_any = argmax_f64(&delta);
        let mut next = Vec::with_capacity(phi_s.len());
        let mut pointers = Vec::with_capacity(phi_s.len());
        for (j, &phi_j) in phi_s.iter().enumerate() {
            let (mut best_i, mut best) = (best_any, delta[best_any] + log_eps);
            for_each_bit(reach.row(s - 1, j), |i| {
                if delta[i] > best {
                    best = delta[i];
                    best_i = i;
                }
            });
            next.push(best + log(phi_j));
            pointers.push(best_i as u16);
        }
        // Keep the numbers near 0 (only differences matter).
        let top = next[argmax_f64(&next)];
        if top.is_finite() {
            next.iter_mut().for_each(|d| *d -= top);
        }
        delta = next;
        back.push(pointers);
    }
    let mut steps = vec![0usize; n];
    steps[n - 1] = argmax_f64(&delta);
    let mut breaks = 0;
    for s in (1..n).rev() {
        let j = steps[s];
        let i = usize::from(back[s][j]);
        steps[s - 1] = i;
        let row = reach.row(s - 1, j);
        if row[i / 64] & (1u64 << (i % 64)) == 0 {
            breaks += 1;
        }
    }
    (steps, breaks)
}

fn argmax_f64(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// A reproducible stand-in for GeoCLIP on a trip, for tests and the benchmark: a drive along a
/// great circle at `speed_kmh`, one photo every `interval_secs`, each photo's `k` candidates
/// like GeoCLIP's top-K: a cluster around the true point (top-1 for 30% of photos, missing for
/// 15%), confuser clusters elsewhere in the region and sometimes on another continent, and a
/// scattered tail ([`synthetic::photo_near`]).
pub mod synthetic {
    use super::{TripCandidate, TripPhoto};
    use crate::geo::LatLon;

    /// A small deterministic generator (SplitMix64), so tests need no `rand`.
    pub struct SplitMix(pub u64);

    impl SplitMix {
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        pub fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Standard normal (Box-Muller).
        pub fn normal(&mut self) -> f64 {
            let u = self.unit().max(1e-300);
            let v = self.unit();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// The point `distance_km` from `from` on `bearing_deg` (great circle).
    pub fn destination(from: LatLon, bearing_deg: f64, distance_km: f64) -> LatLon {
        let delta = distance_km / crate::geo::EARTH_RADIUS_KM;
        let (lat1, lon1) = (from.lat_deg.to_radians(), from.lon_deg.to_radians());
        let theta = bearing_deg.to_radians();
        let lat2 = (lat1.sin() * delta.cos() + lat1.cos() * delta.sin() * theta.cos()).asin();
        let lon2 = lon1
            + (theta.sin() * delta.sin() * lat1.cos()).atan2(delta.cos() - lat1.sin() * lat2.sin());
        let lon = (lon2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        LatLon::new(lat2.to_degrees(), lon)
    }

    /// A point about `sigma_km` (per axis, normal) from `at`.
    pub fn jitter(rng: &mut SplitMix, at: LatLon, sigma_km: f64) -> LatLon {
        let (north, east) = (rng.normal() * sigma_km, rng.normal() * sigma_km);
        let d = (north * north + east * east).sqrt();
        destination(at, east.atan2(north).to_degrees(), d)
    }

    /// A random point on land-ish latitudes anywhere on Earth.
    pub fn anywhere(rng: &mut SplitMix) -> LatLon {
        LatLon::new(-50.0 + 115.0 * rng.unit(), -180.0 + 360.0 * rng.unit())
    }

    /// A synthetic drive and its photos.
    pub struct Drive {
        /// The true point of each photo.
        pub truth: Vec<LatLon>,
        pub photos: Vec<TripPhoto>,
    }

    /// `n` photos `interval_secs` apart along a great circle from `start` on `bearing_deg` at
    /// `speed_kmh`, with `k` candidates each (see the module docs). Candidates come sorted by
    /// probability, most probable first, as GeoCLIP ranks them.
    pub fn drive(
        seed: u64,
        n: usize,
        k: usize,
        start: LatLon,
        bearing_deg: f64,
        speed_kmh: f64,
        interval_secs: f64,
    ) -> Drive {
        let mut rng = SplitMix(seed);
        let mut truth = Vec::with_capacity(n);
        let mut photos = Vec::with_capacity(n);
        for t in 0..n {
            let time_secs = t as f64 * interval_secs;
            let at = destination(start, bearing_deg, speed_kmh * time_secs / 3600.0);
            truth.push(at);
            photos.push(photo_near(&mut rng, at, time_secs, k));
        }
        Drive { truth, photos }
    }

    /// One photo's GeoCLIP-like candidates around its true point `at` (see the module docs).
    pub fn photo_near(rng: &mut SplitMix, at: LatLon, time_secs: f64, k: usize) -> TripPhoto {
        // Clusters: the truth's (missing from the top-K for 15% of photos, as GeoCLIP's top-K
        // often misses it), 3 confusers in the region (100..1500 km away) and, for 20% of
        // photos, one on another continent. The truth's peak is the highest for 30% of photos
        // (about GeoCLIP's top-1 accuracy at 25 km on photos like these), a confuser's otherwise.
        let mut clusters: Vec<(LatLon, f64, usize)> = Vec::new();
        let confusers = if rng.unit() < 0.2 { 4 } else { 3 };
        let per_confuser = (k / 2 / confusers).max(1);
        let truth_wins = rng.unit() < 0.3;
        let winner = if truth_wins {
            0
        } else {
            1 + (rng.next_u64() % confusers as u64) as usize
        };
        let peak = |c: usize, rng: &mut SplitMix| {
            if c == winner {
                1.0
            } else {
                0.2 + 0.7 * rng.unit()
            }
        };
        let truth_missing = !truth_wins && rng.unit() < 0.15 / 0.7;
        let truth_peak = peak(0, rng);
        if !truth_missing {
            clusters.push((at, truth_peak, (k / 20).clamp(1, 10)));
        }
        for c in 1..=confusers {
            let centre = if c == 4 {
                anywhere(rng)
            } else {
                destination(at, 360.0 * rng.unit(), 100.0 + 1400.0 * rng.unit())
            };
            let p = peak(c, rng);
            clusters.push((centre, p, per_confuser));
        }
        let mut candidates: Vec<(LatLon, f64)> = Vec::with_capacity(k);
        for (centre, peak, count) in clusters {
            for m in 0..count {
                if candidates.len() >= k {
                    break;
                }
                // The peak exactly at the centre, then points around it with decaying weight.
                let position = if m == 0 {
                    jitter(rng, centre, 3.0)
                } else {
                    jitter(rng, centre, 15.0)
                };
                candidates.push((position, peak * 0.93f64.powi(m as i32 + 1)));
            }
        }
        // The long tail: scattered within 2,000 km, small probabilities.
        while candidates.len() < k {
            candidates.push((
                destination(at, 360.0 * rng.unit(), 2000.0 * rng.unit()),
                0.01 * rng.unit(),
            ));
        }
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = candidates.iter().map(|c| c.1).sum();
        TripPhoto {
            time_secs,
            candidates: candidates
                .into_iter()
                .map(|(position, p)| TripCandidate {
                    position,
                    log_prob: (p / total).ln() as f32,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::synthetic::{SplitMix, destination, drive};
    use super::*;

    fn photo(time_secs: f64, candidates: &[(f64, f64, f32)]) -> TripPhoto {
        TripPhoto::from_probabilities(
            time_secs,
            candidates
                .iter()
                .map(|&(lat, lon, p)| (LatLon::new(lat, lon), p)),
        )
    }

    fn median(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    #[test]
    fn chord_threshold_matches_haversine() {
        let a = LatLon::new(48.8566, 2.3522);
        for km in [0.5, 10.0, 50.0, 400.0, 5000.0, 15000.0] {
            let limit = chord_sq_threshold(km).unwrap();
            for bearing in [0.0, 77.0, 200.0] {
                let inside = destination(a, bearing, km * 0.999);
                let outside = destination(a, bearing, km * 1.001 + 0.01);
                let chord_sq = |p: LatLon| {
                    let (u, v) = (unit_vector(a), unit_vector(p));
                    (0..3).map(|k| (u[k] - v[k]).powi(2)).sum::<f32>()
                };
                assert!(chord_sq(inside) <= limit, "{km} km, {bearing}°");
                assert!(chord_sq(outside) > limit, "{km} km, {bearing}°");
                approx::assert_relative_eq!(a.distance_km(&inside), km * 0.999, epsilon = 1e-6);
            }
        }
        // Half the circumference or more: everything is reachable.
        assert!(chord_sq_threshold(20_100.0).is_none());
    }

    #[test]
    fn bits_cover_exactly_the_candidates() {
        let mut row = [0u64; 4];
        set_first(&mut row, 130);
        assert_eq!(row, [u64::MAX, u64::MAX, 0b11, 0]);
        let mut seen = Vec::new();
        for_each_bit(&row, |i| seen.push(i));
        assert_eq!(seen, (0..130).collect::<Vec<_>>());
    }

    #[test]
    fn a_lone_photo_keeps_its_own_belief() {
        let trip = solve(
            &[photo(0.0, &[(10.0, 10.0, 0.6), (50.0, 50.0, 0.3)])],
            &TravelModel::new(100.0),
        )
        .unwrap();
        approx::assert_relative_eq!(trip.marginals[0][0], 0.6 / 0.9, epsilon = 1e-6);
        assert_eq!(trip.path, [0]);
        assert_eq!(trip.breaks, 0);
    }

    /// Two photos a minute apart: the first is sure it is in Paris, the second slightly prefers
    /// Sydney over Paris. By car, Sydney is unreachable: the posterior moves to Paris by the
    /// factor the teleport weight says.
    #[test]
    fn an_unreachable_candidate_loses_by_the_teleport_weight() {
        let photos = [
            photo(0.0, &[(48.85, 2.35, 1.0)]),
            photo(60.0, &[(-33.87, 151.21, 0.6), (48.86, 2.34, 0.4)]),
        ];
        let model = TravelModel::new(130.0);
        let trip = solve(&photos, &model).unwrap();
        // Posterior odds Sydney : Paris = 0.6 * eps : 0.4 * 1.
        let sydney = 0.6 * model.teleport / (0.6 * model.teleport + 0.4);
        approx::assert_relative_eq!(f64::from(trip.marginals[1][0]), sydney, epsilon = 1e-6);
        assert_eq!(trip.path, [0, 1]);
        assert_eq!(trip.breaks, 0);
        // A day later, Sydney is reachable by plane (not by car at 130 km/h: 3,120 km).
        let later = [
            photos[0].clone(),
            TripPhoto {
                time_secs: 86_400.0,
                ..photos[1].clone()
            },
        ];
        let by_plane = solve(&later, &TravelModel::new(900.0)).unwrap();
        approx::assert_relative_eq!(by_plane.marginals[1][0], 0.6, epsilon = 1e-6);
        assert_eq!(by_plane.path, [0, 0]);
    }

    /// One wrong photo never zeroes the trip: when none of a photo's candidates is reachable,
    /// it keeps its own belief and the path teleports.
    #[test]
    fn no_reachable_candidate_keeps_the_photos_own_belief() {
        let photos = [
            photo(0.0, &[(48.85, 2.35, 1.0)]),
            photo(60.0, &[(-33.87, 151.21, 0.7), (35.68, 139.69, 0.3)]),
            photo(120.0, &[(48.85, 2.36, 1.0)]),
        ];
        let trip = solve(&photos, &TravelModel::new(130.0)).unwrap();
        approx::assert_relative_eq!(trip.marginals[1][0], 0.7, epsilon = 1e-6);
        assert!(trip.marginals.iter().flatten().all(|m| m.is_finite()));
        assert_eq!(trip.path, [0, 0, 0]);
        assert_eq!(trip.breaks, 2);
    }

    #[test]
    fn photos_in_any_order_give_results_in_the_callers_order() {
        let ordered = [
            photo(0.0, &[(48.85, 2.35, 1.0)]),
            photo(60.0, &[(-33.87, 151.21, 0.6), (48.86, 2.34, 0.4)]),
            photo(120.0, &[(40.0, -74.0, 0.5), (48.87, 2.33, 0.5)]),
        ];
        let shuffled = [ordered[2].clone(), ordered[0].clone(), ordered[1].clone()];
        let model = TravelModel::new(130.0);
        let a = solve(&ordered, &model).unwrap();
        let b = solve(&shuffled, &model).unwrap();
        assert_eq!(b.order, [1, 2, 0]);
        assert_eq!(b.path, [a.path[2], a.path[0], a.path[1]]);
        assert_eq!(b.marginals[0], a.marginals[2]);
        assert_eq!(b.marginals[2], a.marginals[1]);
    }

    /// A photo with its own GPS anchors its neighbours: between two candidates the photo itself
    /// can't tell apart, the one near the anchor wins.
    #[test]
    fn an_anchor_decides_between_equal_candidates() {
        let photos = [
            TripPhoto::anchored(0.0, LatLon::new(45.0, 7.0)),
            photo(600.0, &[(40.0, -3.7, 0.5), (45.05, 7.05, 0.5)]),
        ];
        let trip = solve(&photos, &TravelModel::new(100.0)).unwrap();
        assert_eq!(trip.path[1], 1);
        assert!(trip.marginals[1][1] > 0.99);
        assert_eq!(trip.marginals[0], [1.0]);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let model = TravelModel::new(100.0);
        assert_eq!(
            solve(&[photo(0.0, &[])], &model),
            Err(TripError::NoCandidates { index: 0 })
        );
        assert_eq!(
            solve(&[photo(f64::NAN, &[(1.0, 1.0, 1.0)])], &model),
            Err(TripError::BadTime { index: 0 })
        );
        let zero_teleport = TravelModel {
            teleport: 0.0,
            ..model
        };
        assert!(matches!(
            solve(&[], &zero_teleport),
            Err(TripError::BadModel { .. })
        ));
        let empty = solve(&[], &model).unwrap();
        assert!(empty.path.is_empty() && empty.marginals.is_empty());
    }

    /// The acceptance test of issue 12: a drive across France at 80 km/h, one photo a minute,
    /// 200 noisy GeoCLIP-like candidates each. The single-photo answer (each photo's top
    /// candidate) is usually a confuser hundreds of km away; the trip's posterior finds the
    /// road. Measured with seed 12: single-photo median error 630 km, trip (Viterbi path)
    /// median 4 km, trip (posterior argmax) median 4 km.
    #[test]
    fn a_drive_is_found_better_than_photo_by_photo() {
        let d = drive(12, 300, 200, LatLon::new(43.3, -1.5), 60.0, 80.0, 60.0);
        let trip = solve(&d.photos, &TravelModel::new(130.0)).unwrap();
        let error = |pick: &dyn Fn(usize) -> usize| {
            median(
                (0..d.photos.len())
                    .map(|i| {
                        d.photos[i].candidates[pick(i)]
                            .position
                            .distance_km(&d.truth[i])
                    })
                    .collect(),
            )
        };
        let single = error(&|_| 0);
        let on_path = error(&|i| trip.path[i]);
        let by_posterior = error(&|i| trip.posterior_argmax(i));
        eprintln!(
            "median error: single {single:.0} km, trip path {on_path:.0} km, trip posterior {by_posterior:.0} km"
        );
        assert!(single > 300.0, "single-photo median {single:.0} km");
        assert!(on_path < 30.0, "trip path median {on_path:.0} km");
        assert!(
            by_posterior < 30.0,
            "trip posterior median {by_posterior:.0} km"
        );
        assert!(on_path < single / 10.0);
    }

    /// A photo whose single estimate is on another continent, a minute after its neighbour, is
    /// pulled back to the road: its true cluster holds only 1% of its belief, the other 99%
    /// lie around New York.
    #[test]
    fn an_estimate_on_another_continent_is_pulled_back() {
        let mut d = drive(7, 60, 200, LatLon::new(43.3, -1.5), 60.0, 80.0, 60.0);
        let odd = 30;
        let truth = d.truth[odd];
        let mut rng = SplitMix(99);
        let mut candidates: Vec<TripCandidate> = (0..190)
            .map(|_| TripCandidate {
                position: synthetic::jitter(&mut rng, LatLon::new(40.71, -74.0), 30.0),
                log_prob: (0.99f32 / 190.0).ln(),
            })
            .collect();
        candidates.extend((0..10).map(|_| TripCandidate {
            position: synthetic::jitter(&mut rng, truth, 10.0),
            log_prob: (0.01f32 / 10.0).ln(),
        }));
        d.photos[odd].candidates = candidates;
        let single_km = d.photos[odd].candidates[0].position.distance_km(&truth);
        let trip = solve(&d.photos, &TravelModel::new(130.0)).unwrap();
        let trip_km = d.photos[odd].candidates[trip.path[odd]]
            .position
            .distance_km(&truth);
        eprintln!("the odd photo: single {single_km:.0} km off, trip {trip_km:.0} km off");
        assert!(single_km > 5000.0);
        assert!(trip_km < 40.0, "{trip_km:.0} km");
        assert!(trip.path_posterior(odd) > 0.05);
        let near_truth: f32 = (190..200).map(|j| trip.marginals[odd][j]).sum();
        assert!(near_truth > 0.99, "posterior near the road {near_truth}");
        // Its neighbours are not dragged to New York.
        for i in [odd - 1, odd + 1] {
            let km = d.photos[i].candidates[trip.path[i]]
                .position
                .distance_km(&d.truth[i]);
            assert!(km < 40.0, "photo {i}: {km:.0} km");
        }
    }
}
