//! "Fit": the centre and zoom that frame a set of points (the selected photo's candidates, its
//! EXIF position, its claim) in the map's viewport. Pure, so it is tested without a map.
//!
//! Longitudes are on a circle: the box is the smallest arc holding every point, so 179° E and
//! 179° W frame 2° across the antimeridian, not the whole world.

use crate::geo::LatLon;
use crate::geo::heatmap::{mercator_unit, mercator_unit_to_lat_lon};

/// walkers' tile size: at zoom `z` the world is `256 * 2^z` points wide.
const TILE_PX: f64 = 256.0;

/// A centre and a zoom for walkers' `MapMemory`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapView {
    pub centre: LatLon,
    pub zoom: f64,
}

/// The smallest longitude arc holding every longitude: `(west_deg, width_deg)`, `west_deg` in
/// `[-180, 180)`, the arc running east from it (it may pass 180°). `None` for no longitudes.
pub fn lon_arc(lons_deg: &[f64]) -> Option<(f64, f64)> {
    let mut lons: Vec<f64> = lons_deg
        .iter()
        .filter(|l| l.is_finite())
        .map(|l| (l + 180.0).rem_euclid(360.0) - 180.0)
        .collect();
    if lons.is_empty() {
        return None;
    }
    lons.sort_by(f64::total_cmp);
    // The widest gap between neighbours (the last one wraps to the first) is what the arc
    // leaves out; the arc starts just east of it.
    let n = lons.len();
    let (mut widest_gap, mut west) = (-1.0, lons[0]);
    for i in 0..n {
        let (a, b) = (lons[i], lons[(i + 1) % n]);
        let gap = if i + 1 == n { b + 360.0 - a } else { b - a };
        if gap > widest_gap {
            widest_gap = gap;
            west = b;
        }
    }
    Some((west, (360.0 - widest_gap).max(0.0)))
}

/// The view that shows every point with `margin_px` to spare on each side of a viewport of
/// `viewport_px` (width, height) points; one point (or points on top of each other) is shown at
/// `max_zoom`. `None` when there is no valid point.
pub fn fit_view(
    points: &[LatLon],
    viewport_px: [f32; 2],
    margin_px: f32,
    max_zoom: f64,
) -> Option<MapView> {
    let points: Vec<LatLon> = points.iter().copied().filter(LatLon::is_valid).collect();
    let lons: Vec<f64> = points.iter().map(|p| p.lon_deg).collect();
    let (west_deg, width_deg) = lon_arc(&lons)?;
    let ys: Vec<f64> = points.iter().map(|p| mercator_unit(*p).1).collect();
    let (y_min, y_max) = ys
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &y| (lo.min(y), hi.max(y)));

    let width_unit = width_deg / 360.0;
    let height_unit = y_max - y_min;
    let usable = |px: f32| (f64::from(px) - 2.0 * f64::from(margin_px)).max(16.0);
    let zoom_for = |span_unit: f64, px: f32| {
        if span_unit <= 1e-12 {
            max_zoom
        } else {
            (usable(px) / (span_unit * TILE_PX)).log2()
        }
    };
    let zoom = zoom_for(width_unit, viewport_px[0])
        .min(zoom_for(height_unit, viewport_px[1]))
        .clamp(0.0, max_zoom);

    let centre_lon_deg = (west_deg + width_deg / 2.0 + 180.0).rem_euclid(360.0) - 180.0;
    let centre_lat_deg = mercator_unit_to_lat_lon(0.5, (y_min + y_max) / 2.0).lat_deg;
    Some(MapView {
        centre: LatLon::new(centre_lat_deg, centre_lon_deg),
        zoom,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    const VIEW: [f32; 2] = [800.0, 600.0];

    /// Where `p` lands on screen (relative to the viewport's centre) in `view`.
    fn screen_offset(view: MapView, p: LatLon) -> (f64, f64) {
        let world = TILE_PX * 2f64.powf(view.zoom);
        let (cx, cy) = mercator_unit(view.centre);
        let (x, y) = mercator_unit(p);
        let mut dx = x - cx;
        dx -= dx.round(); // the nearest copy of the world
        (dx * world, (y - cy) * world)
    }

    fn assert_framed(view: MapView, points: &[LatLon], margin: f64) {
        for &p in points {
            let (dx, dy) = screen_offset(view, p);
            assert!(
                dx.abs() <= f64::from(VIEW[0]) / 2.0 - margin + 1e-6
                    && dy.abs() <= f64::from(VIEW[1]) / 2.0 - margin + 1e-6,
                "{p} is off screen at {dx:.1}, {dy:.1} in {view:?}"
            );
        }
    }

    #[test]
    fn arcs_take_the_short_way_round() {
        let (west, width) = lon_arc(&[10.0, 20.0, 15.0]).expect("points");
        assert_abs_diff_eq!(west, 10.0);
        assert_abs_diff_eq!(width, 10.0);
        // Across the antimeridian: 179° E to 179° W is 2°, starting at 179° E.
        let (west, width) = lon_arc(&[179.0, -179.0]).expect("points");
        assert_abs_diff_eq!(west, 179.0);
        assert_abs_diff_eq!(width, 2.0, epsilon = 1e-9);
        assert_eq!(lon_arc(&[]), None);
        let (_, width) = lon_arc(&[42.0]).expect("one point");
        assert_abs_diff_eq!(width, 0.0);
    }

    #[test]
    fn fit_frames_every_point_and_zooms_in_as_far_as_it_can() {
        let points = [
            LatLon::new(48.85, 2.35),  // Paris
            LatLon::new(52.52, 13.40), // Berlin
            LatLon::new(41.90, 12.50), // Rome
        ];
        let view = fit_view(&points, VIEW, 40.0, 16.0).expect("a view");
        assert_framed(view, &points, 40.0);
        // One zoom level more and something falls off.
        let closer = MapView {
            zoom: view.zoom + 1.0,
            ..view
        };
        assert!(points.iter().any(|&p| {
            let (dx, dy) = screen_offset(closer, p);
            dx.abs() > f64::from(VIEW[0]) / 2.0 - 40.0 || dy.abs() > f64::from(VIEW[1]) / 2.0 - 40.0
        }));
        assert!(view.zoom > 3.0 && view.zoom < 6.0, "{view:?}");
    }

    #[test]
    fn points_across_the_antimeridian_frame_a_small_box() {
        let points = [LatLon::new(-17.0, 179.0), LatLon::new(-18.0, -179.0)];
        let view = fit_view(&points, VIEW, 40.0, 16.0).expect("a view");
        assert_framed(view, &points, 40.0);
        assert!(view.zoom > 6.0, "a 2° box, not the world: {view:?}");
        assert!(
            view.centre.lon_deg.abs() > 179.0,
            "centred on the antimeridian: {view:?}"
        );
    }

    #[test]
    fn one_point_is_shown_at_the_closest_zoom_and_nothing_gives_no_view() {
        let lihue = LatLon::new(21.98, -159.37);
        let view = fit_view(&[lihue, lihue], VIEW, 40.0, 12.0).expect("a view");
        assert_abs_diff_eq!(view.zoom, 12.0);
        assert_abs_diff_eq!(view.centre.lat_deg, lihue.lat_deg, epsilon = 1e-9);
        assert_abs_diff_eq!(view.centre.lon_deg, lihue.lon_deg, epsilon = 1e-9);
        assert_eq!(fit_view(&[], VIEW, 40.0, 12.0), None);
        assert_eq!(
            fit_view(&[LatLon::new(f64::NAN, 0.0)], VIEW, 40.0, 12.0),
            None
        );
    }

    #[test]
    fn the_whole_world_fits_at_a_low_zoom() {
        // 220° of longitude (from 20° E east to 120° W).
        let points = [
            LatLon::new(60.0, -120.0),
            LatLon::new(-40.0, 150.0),
            LatLon::new(0.0, 20.0),
        ];
        let view = fit_view(&points, VIEW, 40.0, 16.0).expect("a view");
        assert_framed(view, &points, 40.0);
        assert!(view.zoom < 2.5, "{view:?}");
        assert!((view.centre.lon_deg - 130.0).abs() < 1e-6, "{view:?}");
    }
}
