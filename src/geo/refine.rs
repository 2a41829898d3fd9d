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
/// worse than it). `score` returns one logit per point, in order.
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
    for step in grid.steps_km() {
        let points = grid.level_points(best.position, step);
        let logits = score(&points)?;
        best.points_scored += points.len();
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
    }
    Ok(best)
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
        assert_eq!(found.points_scored, 325);
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
    fn errors_pass_through() {
        let err = refine(
            LatLon::new(0.0, 0.0),
            &RefineGrid::GEOCLIP,
            |_: &[LatLon]| -> Result<Vec<f32>, String> { Err("no model".into()) },
        );
        assert_eq!(err, Err("no model".to_owned()));
    }
}
