//! Refining a gallery candidate on GeoCLIP's continuous location encoder: a coarse-to-fine
//! local grid search around a start point, down to about 100 m.
//!
//! The gallery's nearest-neighbour spacing is 2.2 km at the median and 10.6 km at the 90th
//! percentile, so the best gallery point can sit several kilometres from where the encoder's
//! similarity actually peaks. [`RefineGrid::GEOCLIP`] therefore starts with a half-width of
//! 12.8 km (more than the 90th-percentile spacing, so the first level spans the gallery point's
//! neighbours in nine out of ten places) on a 9 x 9 grid (3.2 km steps, finer than the median
//! spacing plus margin); each next level is a 9 x 9 grid centred on the previous level's best
//! point with a half-width of the previous step, so it reaches every point between that best
//! point's neighbours. Steps go 3.2 km, 800 m, 200 m, 50 m: four levels, 324 points per
//! candidate, 1,620 for k = 5 (about 0.2 s at the full-size encoder's ~9-10K points/s).
//!
//! The last level's 81 scores then get a least-squares quadratic surface (in the grid's own
//! row and column units), and the surface's peak is scored as one more point and taken if it
//! is at least as good as the best grid point (within [`FIT_TOLERANCE`]). At 50 m the encoder
//! is nearly flat (its finest Fourier periods are over 100 km on the ground), so two
//! neighbouring grid points can score within float noise of each other and which one wins
//! would depend on the last bit of a `sin`; the fitted peak does not: every one of the 81
//! scores pulls on it, so noise of 1e-6 in a similarity moves it by metres, not by a step.
//! That makes the answer a point between the grid points, reproducible across
//! implementations, and 326 points scored per candidate.
//!
//! The grid is defined in degrees, deterministically, so that a Python copy
//! (`tests/fixtures/make_refine_fixtures.py`) gives exactly the same points: latitude steps are
//! `step_km / KM_PER_DEG_LAT`, longitude steps the same divided by `cos(centre latitude)`
//! (capped at 360 degrees across near the poles), latitudes clamped to [-90, 90] and longitudes
//! wrapped into [-180, 180). The first maximum in row order (south to north, then west to east)
//! wins a tie.

use super::LatLon;

/// Kilometres per degree of latitude (and of longitude at the equator) on a sphere of
/// [`super::EARTH_RADIUS_KM`]: `2 pi R / 360`.
pub const KM_PER_DEG_LAT: f64 = 111.195_079_734_632_1;

/// The shape of the search: how wide it starts, how many points a side, where it stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefineGrid {
    /// Points on each side of a level's grid (odd, so the centre is on it).
    pub points_per_side: usize,
    /// The first level's half-width (centre to edge), in kilometres.
    pub half_width_km: f64,
    /// Stop after the level whose step is at most this, in kilometres.
    pub final_step_km: f64,
}

impl RefineGrid {
    /// The search for GeoCLIP's gallery (see the module docs for why these numbers).
    pub const GEOCLIP: Self = Self {
        points_per_side: 9,
        half_width_km: 12.8,
        final_step_km: 0.1,
    };

    /// The step between neighbouring points of each level, in kilometres.
    pub fn steps_km(&self) -> Vec<f64> {
        let n = self.points_per_side.max(3);
        let intervals = (n - 1) as f64;
        let mut half = self.half_width_km;
        let mut steps = Vec::new();
        loop {
            let step = 2.0 * half / intervals;
            steps.push(step);
            if step <= self.final_step_km || steps.len() >= 32 {
                return steps;
            }
            half = step;
        }
    }

    /// Points scored per refinement.
    pub fn points_per_refinement(&self) -> usize {
        let n = self.points_per_side.max(3);
        self.steps_km().len() * n * n
    }

    /// One level's grid around `centre` with neighbours `step_km` apart: `points_per_side`
    /// rows from south to north, each from west to east.
    pub fn level_points(&self, centre: LatLon, step_km: f64) -> Vec<LatLon> {
        let n = self.points_per_side.max(3);
        let half_count = (n / 2) as i64;
        let lat_step = step_km / KM_PER_DEG_LAT;
        let cos_lat = centre.lat_deg.to_radians().cos();
        // Across the pole the longitude step is capped so a row spans at most 360 degrees.
        let lon_step = (lat_step / cos_lat.max(1e-12)).min(360.0 / (n - 1) as f64);
        let mut points = Vec::with_capacity(n * n);
        for i in -half_count..=half_count {
            let lat = (centre.lat_deg + i as f64 * lat_step).clamp(-90.0, 90.0);
            for j in -half_count..=half_count {
                let lon = wrap_lon(centre.lon_deg + j as f64 * lon_step);
                points.push(LatLon::new(lat, lon));
            }
        }
        points
    }
}

/// How much lower than the best grid point the fitted peak may score and still be taken, in
/// logits: ten times the float noise between two implementations of the encoder (~1e-4), far
/// under what a badly fitted surface loses (its peak then scores worse by whole steps of the
/// grid's curvature).
pub const FIT_TOLERANCE: f32 = 1e-3;

/// The peak of the least-squares quadratic surface through one level's scores, in grid units
/// from the level's centre: `(column, row)`, i.e. (east, north) in steps. `None` when the
/// surface has no peak (not curved down in every direction), the peak lies outside the grid,
/// or a score is not finite (outside a region).
///
/// The grid is a full `n x n` square of offsets `-h..=h` on each axis, so the regressors
/// `1, x, y, x^2 - m, xy, y^2 - m` (with `m` the mean of `x^2`) are mutually orthogonal and
/// each coefficient is one dot product over the sums of squares: no linear solve.
pub fn fitted_peak(points_per_side: usize, logits: &[f32]) -> Option<(f64, f64)> {
    let n = points_per_side;
    if n < 3 || logits.len() != n * n || logits.iter().any(|l| !l.is_finite()) {
        return None;
    }
    let h = (n / 2) as f64;
    let offsets: Vec<f64> = (0..n).map(|k| k as f64 - h).collect();
    let mean_sq = offsets.iter().map(|x| x * x).sum::<f64>() / n as f64;
    let (mut sx, mut sy, mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (row, &y) in offsets.iter().enumerate() {
        for (col, &x) in offsets.iter().enumerate() {
            let l = f64::from(logits[row * n + col]);
            sx += x * l;
            sy += y * l;
            sxy += x * y * l;
            sxx += (x * x - mean_sq) * l;
            syy += (y * y - mean_sq) * l;
        }
    }
    let sum_sq: f64 = offsets.iter().map(|x| x * x).sum();
    let sum_centred_sq4: f64 = offsets.iter().map(|x| (x * x - mean_sq).powi(2)).sum();
    let nf = n as f64;
    // Each regressor's squared norm over the whole grid.
    let b_x = sx / (sum_sq * nf);
    let b_y = sy / (sum_sq * nf);
    let b_xy = sxy / (sum_sq * sum_sq);
    let a_xx = sxx / (sum_centred_sq4 * nf);
    let a_yy = syy / (sum_centred_sq4 * nf);
    // Gradient zero: [2 a_xx, b_xy; b_xy, 2 a_yy] [x; y] = -[b_x; b_y].
    let det = 4.0 * a_xx * a_yy - b_xy * b_xy;
    // Curvature under rounding error of the sums (a flat surface) is no peak either.
    let largest = logits
        .iter()
        .map(|l| f64::from(l.abs()))
        .fold(0.0, f64::max);
    let flat = 1e-9 * (1.0 + largest);
    if a_xx >= -flat || a_yy >= -flat || det <= flat * flat {
        return None;
    }
    let x = (-b_x * 2.0 * a_yy + b_xy * b_y) / det;
    let y = (-b_y * 2.0 * a_xx + b_xy * b_x) / det;
    (x.abs() <= h && y.abs() <= h).then_some((x, y))
}

/// A longitude wrapped into [-180, 180).
pub fn wrap_lon(lon_deg: f64) -> f64 {
    let wrapped = (lon_deg + 180.0).rem_euclid(360.0) - 180.0;
    if wrapped >= 180.0 { -180.0 } else { wrapped }
}

/// The best point a refinement found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Refined {
    pub position: LatLon,
    /// The model's logit there (on the gallery's scale).
    pub logit: f32,
    /// Points scored to find it.
    pub points_scored: usize,
}

/// Searches `grid` around `start`, coarse to fine: each level's grid is centred on the best
/// point so far (the start first; the start itself is scored too, so the answer is never
/// worse than it), and the last level's fitted peak is taken where it scores as well as the
/// best grid point (see the module docs). `score` returns one logit per point, in order.
pub fn refine<E>(
    start: LatLon,
    grid: &RefineGrid,
    mut score: impl FnMut(&[LatLon]) -> Result<Vec<f32>, E>,
) -> Result<Refined, E> {
    let start_logit = score(&[start])?
        .first()
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    let mut best = Refined {
        position: start,
        logit: start_logit,
        points_scored: 1,
    };
    let steps = grid.steps_km();
    for (level, &step) in steps.iter().enumerate() {
        let centre = best.position;
        let points = grid.level_points(centre, step);
        let logits = score(&points)?;
        best.points_scored += points.len();
        let grid_best = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // The first maximum wins; the centre only moves for a strictly better point.
        let mut level_best: Option<(usize, f32)> = None;
        for (i, &l) in logits.iter().enumerate().take(points.len()) {
            if l.is_finite() && level_best.is_none_or(|(_, b)| l > b) {
                level_best = Some((i, l));
            }
        }
        if let Some((i, l)) = level_best
            && l > best.logit
        {
            best.position = points[i];
            best.logit = l;
        }
        if level + 1 == steps.len()
            && let Some(peak) = fitted_point(grid, centre, step, &points, &logits)
        {
            let peak_logit = score(&[peak])?
                .first()
                .copied()
                .unwrap_or(f32::NEG_INFINITY);
            best.points_scored += 1;
            if peak_logit >= grid_best - FIT_TOLERANCE && peak_logit >= start_logit {
                best.position = peak;
                best.logit = peak_logit;
            }
        }
    }
    Ok(best)
}

/// The fitted peak of one level as a position, or `None` where the level's grid is not the
/// regular square the fit assumes (clamped at a pole, or its longitude step capped).
fn fitted_point(
    grid: &RefineGrid,
    centre: LatLon,
    step_km: f64,
    points: &[LatLon],
    logits: &[f32],
) -> Option<LatLon> {
    let n = grid.points_per_side.max(3);
    let half = (n / 2) as f64;
    let lat_step = step_km / KM_PER_DEG_LAT;
    let lon_step = lat_step / centre.lat_deg.to_radians().cos().max(1e-12);
    let regular = lon_step <= 360.0 / (n - 1) as f64
        && (centre.lat_deg - half * lat_step) > -90.0
        && (centre.lat_deg + half * lat_step) < 90.0;
    if !regular || points.len() != n * n {
        return None;
    }
    let (east, north) = fitted_peak(n, logits)?;
    Some(LatLon::new(
        centre.lat_deg + north * lat_step,
        wrap_lon(centre.lon_deg + east * lon_step),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth bump peaking at `peak`, minus squared distance in (10 km)^2.
    fn bump(peak: LatLon) -> impl FnMut(&[LatLon]) -> Result<Vec<f32>, String> {
        move |points: &[LatLon]| {
            Ok(points
                .iter()
                .map(|p| -((p.distance_km(&peak) / 10.0).powi(2)) as f32)
                .collect())
        }
    }

    #[test]
    fn steps_go_down_to_100_m() {
        let steps = RefineGrid::GEOCLIP.steps_km();
        assert_eq!(steps.len(), 4);
        approx::assert_abs_diff_eq!(steps[0], 3.2, epsilon = 1e-12);
        approx::assert_abs_diff_eq!(steps[3], 0.05, epsilon = 1e-12);
        assert_eq!(RefineGrid::GEOCLIP.points_per_refinement(), 324);
    }

    #[test]
    fn finds_the_peak_of_a_smooth_function() {
        let peak = LatLon::new(46.2044, 6.1432);
        // Start 7 km away, as a gallery point might be.
        let start = LatLon::new(46.25, 6.2);
        let found = refine(start, &RefineGrid::GEOCLIP, bump(peak)).unwrap();
        assert!(
            found.position.distance_km(&peak) < 0.05,
            "{} is {} km from {}",
            found.position,
            found.position.distance_km(&peak),
            peak
        );
        assert!(found.logit > -1e-3);
        assert_eq!(found.points_scored, 326);
    }

    #[test]
    fn never_worse_than_the_start() {
        // A function that is best exactly at the start: the start is kept.
        let start = LatLon::new(10.0, 20.0);
        let found = refine(start, &RefineGrid::GEOCLIP, bump(start)).unwrap();
        assert_eq!(found.position, start);
        assert_eq!(found.logit, 0.0);
    }

    #[test]
    fn is_deterministic() {
        let peak = LatLon::new(-33.8688, 151.2093);
        let start = LatLon::new(-33.9, 151.25);
        let a = refine(start, &RefineGrid::GEOCLIP, bump(peak)).unwrap();
        let b = refine(start, &RefineGrid::GEOCLIP, bump(peak)).unwrap();
        assert_eq!(a, b);
        // The grid's points themselves are bit-for-bit the same (what the Python copy relies on).
        let g = RefineGrid::GEOCLIP.level_points(start, 3.2);
        assert_eq!(g, RefineGrid::GEOCLIP.level_points(start, 3.2));
        assert_eq!(g.len(), 81);
        assert_eq!(g[40], start);
        // Rows run south to north, each west to east.
        assert!(g[0].lat_deg < g[80].lat_deg && g[0].lon_deg < g[8].lon_deg);
    }

    #[test]
    fn longitude_steps_widen_with_latitude() {
        let equator = RefineGrid::GEOCLIP.level_points(LatLon::new(0.0, 0.0), 3.2);
        let north = RefineGrid::GEOCLIP.level_points(LatLon::new(60.0, 0.0), 3.2);
        let d_eq = equator[41].lon_deg - equator[40].lon_deg;
        let d_60 = north[41].lon_deg - north[40].lon_deg;
        approx::assert_abs_diff_eq!(d_60, 2.0 * d_eq, epsilon = 1e-9);
        // ...so neighbours are the same distance apart on the ground.
        approx::assert_abs_diff_eq!(
            north[40].distance_km(&north[41]),
            equator[40].distance_km(&equator[41]),
            epsilon = 1e-3
        );
    }

    #[test]
    fn wraps_across_the_antimeridian() {
        let peak = LatLon::new(-17.0, -179.98);
        let start = LatLon::new(-17.02, 179.97);
        let grid = RefineGrid::GEOCLIP.level_points(start, 3.2);
        assert!(grid.iter().all(|p| (-180.0..180.0).contains(&p.lon_deg)));
        assert!(grid.iter().any(|p| p.lon_deg < 0.0) && grid.iter().any(|p| p.lon_deg > 0.0));
        let found = refine(start, &RefineGrid::GEOCLIP, bump(peak)).unwrap();
        assert!(
            found.position.distance_km(&peak) < 0.05,
            "{}",
            found.position
        );
        assert_eq!(wrap_lon(180.0), -180.0);
        assert_eq!(wrap_lon(-180.0), -180.0);
        approx::assert_abs_diff_eq!(wrap_lon(190.0), -170.0, epsilon = 1e-12);
        approx::assert_abs_diff_eq!(wrap_lon(-190.0), 170.0, epsilon = 1e-12);
    }

    #[test]
    fn clamps_at_the_poles() {
        let start = LatLon::new(89.99, 10.0);
        let grid = RefineGrid::GEOCLIP.level_points(start, 3.2);
        assert!(grid.iter().all(|p| p.is_valid() && p.lat_deg <= 90.0));
        assert!(grid.iter().any(|p| p.lat_deg == 90.0));
        let pole = RefineGrid::GEOCLIP.level_points(LatLon::new(90.0, 0.0), 3.2);
        assert!(pole.iter().all(|p| p.is_valid()));
        let peak = LatLon::new(89.95, 100.0);
        let found = refine(start, &RefineGrid::GEOCLIP, bump(peak)).unwrap();
        assert!(found.position.is_valid());
        assert!(
            found.position.distance_km(&peak) < 1.0,
            "{}",
            found.position
        );
    }

    #[test]
    fn fitted_peak_recovers_a_quadratic_between_grid_points() {
        // l = -(x - 1.3)^2 - 2 (y + 0.4)^2 + 0.5 (x - 1.3)(y + 0.4), curved down everywhere.
        let f = |x: f64, y: f64| {
            let (u, v) = (x - 1.3, y + 0.4);
            (-(u * u) - 2.0 * v * v + 0.5 * u * v) as f32
        };
        let logits: Vec<f32> = (-4..=4)
            .flat_map(|row| (-4..=4).map(move |col| f(f64::from(col), f64::from(row))))
            .collect();
        let (x, y) = fitted_peak(9, &logits).unwrap();
        approx::assert_abs_diff_eq!(x, 1.3, epsilon = 1e-5);
        approx::assert_abs_diff_eq!(y, -0.4, epsilon = 1e-5);
        // A saddle, a plane, a peak off the grid and a masked score have no peak to take.
        let saddle: Vec<f32> = (-4..=4)
            .flat_map(|r: i32| (-4..=4).map(move |c: i32| (c * c - r * r) as f32))
            .collect();
        assert_eq!(fitted_peak(9, &saddle), None);
        assert_eq!(fitted_peak(9, &[1.0; 81]), None);
        let far: Vec<f32> = (-4..=4)
            .flat_map(|r: i32| (-4..=4).map(move |c: i32| -((c - 9) * (c - 9) + r * r) as f32))
            .collect();
        assert_eq!(fitted_peak(9, &far), None);
        let mut masked = logits.clone();
        masked[3] = f32::NEG_INFINITY;
        assert_eq!(fitted_peak(9, &masked), None);
    }

    #[test]
    fn the_fitted_peak_is_stable_under_float_noise() {
        // A near-flat peak between grid points, as the encoder is at 50 m: noise of 1e-4 in the
        // scores (the difference between two implementations) moves the argmax between
        // neighbours but the fitted peak by a small fraction of a step.
        let f = |x: f64, y: f64| (-2e-4 * ((x - 0.5).powi(2) + (y - 0.5).powi(2))) as f32;
        let clean: Vec<f32> = (-4..=4)
            .flat_map(|r| (-4..=4).map(move |c| f(f64::from(c), f64::from(r))))
            .collect();
        let noisy: Vec<f32> = clean
            .iter()
            .enumerate()
            .map(|(i, l)| l + if i % 3 == 0 { 1e-4 } else { -1e-4 } * ((i % 7) as f32 / 7.0))
            .collect();
        let (x0, y0) = fitted_peak(9, &clean).unwrap();
        let (x1, y1) = fitted_peak(9, &noisy).unwrap();
        assert!((x0 - 0.5).abs() < 1e-3 && (y0 - 0.5).abs() < 1e-3);
        assert!(
            (x1 - x0).abs() < 0.3 && (y1 - y0).abs() < 0.3,
            "{x1} {y1} vs {x0} {y0}"
        );
    }

    #[test]
    fn errors_pass_through() {
        let err = refine(
            LatLon::new(0.0, 0.0),
            &RefineGrid::GEOCLIP,
            |_: &[LatLon]| -> Result<Vec<f32>, String> { Err("no model".into()) },
        );
        assert_eq!(err, Err("no model".to_owned()));
    }
}
