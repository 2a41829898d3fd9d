//! The probability heatmap as slippy-map tiles: pure binning and rasterising, no egui.
//!
//! GeoCLIP gives a probability for every point of its GPS gallery (100K points). The map draws
//! them as a second tile layer: for each Web-Mercator tile `(x, y, zoom)` the points inside it
//! (plus a margin) are splatted with a small Gaussian kernel, the sum goes through
//! [`colour_ramp`], and the result is a semi-transparent RGBA image. A tile costs one pass over
//! the (pre-projected, pre-filtered) points, so panning and zooming stay fast and only new tiles
//! are computed.

use super::LatLon;

/// Web-Mercator's latitude limit, in degrees.
pub const MERCATOR_MAX_LAT_DEG: f64 = 85.051_128_779_806_59;

/// Points weaker than this fraction of the strongest are dropped (invisible anyway).
pub const DEFAULT_MIN_FRACTION: f32 = 1e-3;

/// A position on the Web-Mercator square, both coordinates in `[0, 1]`: `x` grows east from
/// lon −180°, `y` grows south from lat +85.05°.
pub fn mercator_unit(position: LatLon) -> (f64, f64) {
    let lat_rad = position
        .lat_deg
        .clamp(-MERCATOR_MAX_LAT_DEG, MERCATOR_MAX_LAT_DEG)
        .to_radians();
    let x = (position.lon_deg + 180.0) / 360.0;
    let y = (1.0 - (lat_rad.tan() + 1.0 / lat_rad.cos()).ln() / std::f64::consts::PI) / 2.0;
    (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0))
}

/// The inverse of [`mercator_unit`].
pub fn mercator_unit_to_lat_lon(x: f64, y: f64) -> LatLon {
    let lon_deg = x * 360.0 - 180.0;
    let lat_deg = (std::f64::consts::PI * (1.0 - 2.0 * y))
        .sinh()
        .atan()
        .to_degrees();
    LatLon::new(lat_deg, lon_deg)
}

/// The gallery points that matter for one prediction, projected once, weights scaled so the
/// strongest is 1.
#[derive(Clone, Debug, Default)]
pub struct HeatPoints {
    x_unit: Vec<f32>,
    y_unit: Vec<f32>,
    weight: Vec<f32>,
}

impl HeatPoints {
    /// Keeps the points whose probability is at least `min_fraction` of the largest.
    /// `positions` and `probabilities` are parallel (the gallery and the model's vector); extra
    /// entries of the longer one are ignored, non-finite probabilities are skipped.
    pub fn new(positions: &[LatLon], probabilities: &[f32], min_fraction: f32) -> Self {
        let max = probabilities
            .iter()
            .copied()
            .filter(|p| p.is_finite())
            .fold(0.0_f32, f32::max);
        let mut points = Self::default();
        if max <= 0.0 {
            return points;
        }
        for (position, &p) in positions.iter().zip(probabilities) {
            if !p.is_finite() || p < max * min_fraction || !position.is_valid() {
                continue;
            }
            let (x, y) = mercator_unit(*position);
            points.x_unit.push(x as f32);
            points.y_unit.push(y as f32);
            points.weight.push(p / max);
        }
        points
    }

    pub fn len(&self) -> usize {
        self.weight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weight.is_empty()
    }
}

/// The heat (kernel sum, not yet clamped) of each pixel of tile `(x, y, zoom)`, row-major,
/// `size * size` values. `radius_px` is the kernel's radius in tile pixels (σ = radius / 2).
pub fn tile_intensity(
    points: &HeatPoints,
    tile_x: u32,
    tile_y: u32,
    zoom: u8,
    size: usize,
    radius_px: f32,
) -> Vec<f32> {
    let mut heat = vec![0.0_f32; size * size];
    if size == 0 || points.is_empty() {
        return heat;
    }
    let world_px = size as f64 * f64::from(1u32 << zoom.min(30));
    let origin_x = f64::from(tile_x) * size as f64;
    let origin_y = f64::from(tile_y) * size as f64;
    let radius = radius_px.max(0.5);
    let inv_two_sigma_sq = 1.0 / (2.0 * (radius / 2.0).powi(2));
    let reach = radius.ceil() as i64;
    let size_i = size as i64;
    for ((&xu, &yu), &w) in points.x_unit.iter().zip(&points.y_unit).zip(&points.weight) {
        let px = (f64::from(xu) * world_px - origin_x) as f32;
        let py = (f64::from(yu) * world_px - origin_y) as f32;
        if px < -radius || py < -radius || px > size as f32 + radius || py > size as f32 + radius {
            continue;
        }
        let (cx, cy) = (px.floor() as i64, py.floor() as i64);
        for row in (cy - reach).max(0)..=(cy + reach).min(size_i - 1) {
            let dy = row as f32 + 0.5 - py;
            for col in (cx - reach).max(0)..=(cx + reach).min(size_i - 1) {
                let dx = col as f32 + 0.5 - px;
                let d_sq = dx * dx + dy * dy;
                if d_sq <= radius * radius {
                    heat[(row * size_i + col) as usize] += w * (-d_sq * inv_two_sigma_sq).exp();
                }
            }
        }
    }
    heat
}

/// Heat (any non-negative number) to a display value in `[0, 1]`: square root, so that the
/// long tail of small probabilities stays visible next to the peak.
pub fn heat_to_unit(heat: f32) -> f32 {
    if heat.is_finite() && heat > 0.0 {
        heat.sqrt().min(1.0)
    } else {
        0.0
    }
}

/// The colour ramp, `t` in `[0, 1]` to unmultiplied RGBA: transparent at 0, then blue, cyan,
/// green, yellow, red. The legend draws the same stops.
pub fn colour_ramp(t: f32) -> [u8; 4] {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [40.0, 60.0, 255.0]),
        (0.25, [0.0, 200.0, 255.0]),
        (0.5, [40.0, 220.0, 40.0]),
        (0.75, [255.0, 230.0, 0.0]),
        (1.0, [230.0, 20.0, 20.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    if t <= 0.0 {
        return [0, 0, 0, 0];
    }
    let upper = STOPS
        .iter()
        .position(|(s, _)| *s >= t)
        .unwrap_or(STOPS.len() - 1)
        .max(1);
    let (t0, c0) = STOPS[upper - 1];
    let (t1, c1) = STOPS[upper];
    let f = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
    let mix = |i: usize| (c0[i] + (c1[i] - c0[i]) * f).round().clamp(0.0, 255.0) as u8;
    let alpha = ((t * 4.0).min(1.0) * 220.0).round() as u8;
    [mix(0), mix(1), mix(2), alpha]
}

/// Tile `(x, y, zoom)` as unmultiplied RGBA bytes (`size * size * 4`), or `None` when nothing in
/// it is visible (the caller draws nothing).
pub fn render_tile_rgba(
    points: &HeatPoints,
    tile_x: u32,
    tile_y: u32,
    zoom: u8,
    size: usize,
    radius_px: f32,
) -> Option<Vec<u8>> {
    let heat = tile_intensity(points, tile_x, tile_y, zoom, size, radius_px);
    if heat.iter().all(|&h| heat_to_unit(h) <= 0.0) {
        return None;
    }
    let mut rgba = Vec::with_capacity(size * size * 4);
    for h in heat {
        rgba.extend_from_slice(&colour_ramp(heat_to_unit(h)));
    }
    Some(rgba)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn mercator_round_trips_and_orders() {
        let p = LatLon::new(22.07, -159.5);
        let (x, y) = mercator_unit(p);
        let back = mercator_unit_to_lat_lon(x, y);
        assert_abs_diff_eq!(back.lat_deg, p.lat_deg, epsilon = 1e-9);
        assert_abs_diff_eq!(back.lon_deg, p.lon_deg, epsilon = 1e-9);
        assert_abs_diff_eq!(mercator_unit(LatLon::new(0.0, 0.0)).0, 0.5, epsilon = 1e-12);
        assert_abs_diff_eq!(mercator_unit(LatLon::new(0.0, 0.0)).1, 0.5, epsilon = 1e-12);
        // North is up (smaller y), east is right (larger x).
        assert!(mercator_unit(LatLon::new(50.0, 0.0)).1 < 0.5);
        assert!(mercator_unit(LatLon::new(0.0, 90.0)).0 > 0.5);
    }

    #[test]
    fn weak_points_are_dropped_and_weights_scaled() {
        let pts = [
            LatLon::new(0.0, 0.0),
            LatLon::new(10.0, 10.0),
            LatLon::new(20.0, 20.0),
        ];
        let heat = HeatPoints::new(&pts, &[0.5, 0.2, 1e-6], 1e-3);
        assert_eq!(heat.len(), 2);
        assert_abs_diff_eq!(heat.weight[0], 1.0);
        assert_abs_diff_eq!(heat.weight[1], 0.4);
        assert!(HeatPoints::new(&pts, &[0.0, 0.0, 0.0], 1e-3).is_empty());
    }

    #[test]
    fn a_point_heats_its_own_pixel_in_the_right_tile_only() {
        // Unit (0.75, 0.25) is the centre of tile (1, 0) at zoom 1: pixel (128, 128).
        let p = mercator_unit_to_lat_lon(0.75, 0.25);
        let heat = HeatPoints::new(&[p], &[1.0], 1e-3);
        let inside = tile_intensity(&heat, 1, 0, 1, 256, 8.0);
        let centre = inside[128 * 256 + 128];
        assert!(centre > 0.9, "{centre}");
        assert_eq!(inside[0], 0.0);
        let other = tile_intensity(&heat, 0, 1, 1, 256, 8.0);
        assert!(other.iter().all(|&h| h == 0.0));
        assert!(render_tile_rgba(&heat, 0, 1, 1, 256, 8.0).is_none());
        let rgba = render_tile_rgba(&heat, 1, 0, 1, 256, 8.0).expect("visible");
        assert_eq!(rgba.len(), 256 * 256 * 4);
        assert!(rgba[(128 * 256 + 128) * 4 + 3] > 200);
    }

    #[test]
    fn the_ramp_is_transparent_at_zero_and_red_at_one() {
        assert_eq!(colour_ramp(0.0)[3], 0);
        let hot = colour_ramp(1.0);
        assert!(hot[0] > 200 && hot[1] < 50 && hot[3] > 200);
        let mid = colour_ramp(0.5);
        assert!(mid[1] > 200);
        assert_eq!(colour_ramp(f32::NAN), [0, 0, 0, 0]);
        assert_abs_diff_eq!(heat_to_unit(4.0), 1.0);
        assert_abs_diff_eq!(heat_to_unit(0.25), 0.5);
    }
}
