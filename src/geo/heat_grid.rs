//! The continuous heatmap's sample grid: pure tile geometry and rasterising, no egui, no candle.
//!
//! Zoomed in past [`CONTINUOUS_MIN_ZOOM`], the gallery's 100K points are too far apart for the
//! gallery layer ([`super::heatmap`]) to show anything but separate blobs, while GeoCLIP's
//! location encoder can score any point. The map then samples the encoder on a grid laid over
//! each visible Web-Mercator tile, coarse first ([`LEVELS`] levels: 8 x 8 cells, then 16 x 16,
//! then 32 x 32), and draws a tile by bilinear interpolation between its samples.
//!
//! - Samples sit on cell corners: level `L` has `cells(L) + 1` samples a side, and the samples on
//!   a tile's edge are the same points as its neighbour's, so tiles join without seams.
//! - Levels are nested: sample `(2i, 2j)` of level `L` is sample `(i, j)` of level `L - 1`, so a
//!   finer level only scores the samples it adds ([`new_sample_indices`], [`refine_values`]).
//! - A value is a *relative logit*: the point's logit minus the photo's best gallery logit, so
//!   `exp(value)` is the point's probability relative to the best gallery candidate if it were a
//!   gallery point. That is what the gallery layer's weights are (`p / p_max`), and both go
//!   through the same [`heat_to_unit`] and [`colour_ramp`], so a colour means the same in both.

use super::LatLon;
use super::heatmap::{DEFAULT_MIN_FRACTION, colour_ramp, heat_to_unit, mercator_unit_to_lat_lon};

/// From this map zoom up, the continuous layer replaces the gallery layer.
///
/// The gallery layer splats each gallery point with a Gaussian of σ = 7 screen pixels
/// (`HEAT_RADIUS_PX / 2`); two points further apart than about 2σ show as separate blobs. At the
/// equator a pixel is 1.22 km at zoom 7 and 0.61 km at zoom 8, so 2σ is 17 km at zoom 7 and
/// 8.6 km at zoom 8. The gallery's spacing between neighbours is 2.2 km (median) and 10.6 km
/// (90th percentile): at zoom 8 one place in ten already falls apart into dots, at zoom 7 the
/// gallery layer is still a fair picture. So the continuous layer takes over at 7, one level
/// before the gallery layer breaks up.
pub const CONTINUOUS_MIN_ZOOM: u8 = 7;

/// Refinement levels: level 0 has [`BASE_CELLS`] cells a side, each level doubles that.
pub const LEVELS: u8 = 3;

/// Cells a side at level 0.
pub const BASE_CELLS: usize = 8;

/// Points scored in one call to the location encoder at least (tiles are grouped up to this),
/// so each call is big enough for the matrix kernels; a request's generation is checked
/// between calls.
pub const CHUNK_POINTS: usize = 1024;

/// Samples a tile adds at `level` ([`new_sample_indices`]'s length).
pub fn added_per_tile(level: u8) -> usize {
    sample_count(level)
        - if level == 0 {
            0
        } else {
            sample_count(level - 1)
        }
}

/// How many tiles go into one call to the location encoder at `level`.
pub fn tiles_per_call(level: u8) -> usize {
    (CHUNK_POINTS / added_per_tile(level)).max(1)
}

/// A Web-Mercator ("slippy map") tile: `2^zoom` columns (`x`, from lon −180° east) and rows
/// (`y`, from lat +85.05° south). The same numbering as walkers' and OpenStreetMap's tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeatTile {
    pub zoom: u8,
    pub x: u32,
    pub y: u32,
}

impl HeatTile {
    pub const fn new(zoom: u8, x: u32, y: u32) -> Self {
        Self { zoom, x, y }
    }

    /// Whether `x` and `y` lie inside the world at this zoom.
    pub fn is_valid(&self) -> bool {
        self.zoom < 31 && self.x < (1u32 << self.zoom) && self.y < (1u32 << self.zoom)
    }
}

/// Cells a side of a tile at `level`.
pub fn cells(level: u8) -> usize {
    BASE_CELLS << level
}

/// Samples a side of a tile at `level` (the cells' corners).
pub fn samples_per_side(level: u8) -> usize {
    cells(level) + 1
}

/// Samples in a tile at `level` (row-major grids have this length).
pub fn sample_count(level: u8) -> usize {
    samples_per_side(level) * samples_per_side(level)
}

/// Where sample `(col, row)` of `tile` at `level` lies: the cell corner at `col / cells` of the
/// tile's width from its west edge and `row / cells` of its height from its north edge.
pub fn sample_position(tile: HeatTile, level: u8, col: usize, row: usize) -> LatLon {
    let n = cells(level) as f64;
    let tiles = f64::from(1u32 << tile.zoom.min(30));
    let x = (f64::from(tile.x) + col as f64 / n) / tiles;
    let y = (f64::from(tile.y) + row as f64 / n) / tiles;
    mercator_unit_to_lat_lon(x, y)
}

/// The samples `level` adds to `level - 1` (every sample at level 0), as row-major indices into
/// the level's grid, in increasing order.
pub fn new_sample_indices(level: u8) -> Vec<usize> {
    let side = samples_per_side(level);
    (0..side * side)
        .filter(|i| level == 0 || (i % side) % 2 == 1 || (i / side) % 2 == 1)
        .collect()
}

/// The positions of [`new_sample_indices`], in the same order.
pub fn new_sample_positions(tile: HeatTile, level: u8) -> Vec<LatLon> {
    let side = samples_per_side(level);
    new_sample_indices(level)
        .into_iter()
        .map(|i| sample_position(tile, level, i % side, i / side))
        .collect()
}

/// `level`'s full grid from `level - 1`'s grid (`coarser`) and the values of the samples the
/// level adds (`added`, in [`new_sample_indices`] order). At level 0 `added` is the grid.
/// `None` when a length does not fit.
pub fn refine_values(coarser: &[f32], level: u8, added: &[f32]) -> Option<Vec<f32>> {
    if level == 0 {
        return (added.len() == sample_count(0)).then(|| added.to_vec());
    }
    let side = samples_per_side(level);
    let coarse_side = samples_per_side(level - 1);
    if coarser.len() != coarse_side * coarse_side || added.len() != side * side - coarser.len() {
        return None;
    }
    let mut added = added.iter();
    let mut grid = Vec::with_capacity(side * side);
    for row in 0..side {
        for col in 0..side {
            let value = if row % 2 == 0 && col % 2 == 0 {
                coarser[(row / 2) * coarse_side + col / 2]
            } else {
                *added.next()?
            };
            grid.push(value);
        }
    }
    Some(grid)
}

/// The tiles at `tile_zoom` that a view of `size_px` screen points centred on `centre` at the
/// (fractional) map zoom `zoom` shows, nearest the centre first. Only the one world walkers
/// draws: columns outside `0..2^tile_zoom` are left out, as are rows off the map.
pub fn visible_tiles(centre: LatLon, zoom: f64, size_px: [f32; 2]) -> Vec<HeatTile> {
    let tile_zoom = zoom.round().clamp(0.0, 30.0) as u8;
    let n = f64::from(1u32 << tile_zoom);
    let world_px = 256.0 * 2f64.powf(zoom);
    let (cx, cy) = super::heatmap::mercator_unit(centre);
    let half_w = f64::from(size_px[0].max(0.0)) / 2.0 / world_px;
    let half_h = f64::from(size_px[1].max(0.0)) / 2.0 / world_px;
    let index = |unit: f64| (unit * n).floor();
    let (x0, x1) = (index(cx - half_w).max(0.0), index(cx + half_w).min(n - 1.0));
    let (y0, y1) = (index(cy - half_h).max(0.0), index(cy + half_h).min(n - 1.0));
    let mut tiles = Vec::new();
    let mut y = y0;
    while y <= y1 {
        let mut x = x0;
        while x <= x1 {
            tiles.push(HeatTile::new(tile_zoom, x as u32, y as u32));
            x += 1.0;
        }
        y += 1.0;
    }
    let distance = |t: &HeatTile| {
        let dx = (f64::from(t.x) + 0.5) / n - cx;
        let dy = (f64::from(t.y) + 0.5) / n - cy;
        dx * dx + dy * dy
    };
    tiles.sort_by(|a, b| distance(a).total_cmp(&distance(b)).then(a.cmp(b)));
    tiles
}

/// The relative logit at each pixel of a `size` x `size` tile, row-major, interpolated
/// bilinearly between the samples of `values` (a full grid at `level`) at the pixels' centres.
/// Interpolating the logit, not its exponential, keeps a peak between samples round instead of
/// drawing the grid's diamonds.
pub fn tile_relative_logits(values: &[f32], level: u8, size: usize) -> Option<Vec<f32>> {
    let side = samples_per_side(level);
    if values.len() != side * side || size == 0 {
        return None;
    }
    let cells_f = cells(level) as f32;
    let mut out = Vec::with_capacity(size * size);
    // Each pixel row/column's sample cell and fraction, computed once.
    let axis: Vec<(usize, f32)> = (0..size)
        .map(|p| {
            let s = (p as f32 + 0.5) / size as f32 * cells_f;
            let i = (s.floor() as usize).min(side - 2);
            (i, s - i as f32)
        })
        .collect();
    for &(row, fy) in &axis {
        let top = &values[row * side..(row + 1) * side];
        let bottom = &values[(row + 1) * side..(row + 2) * side];
        for &(col, fx) in &axis {
            let t = top[col] + (top[col + 1] - top[col]) * fx;
            let b = bottom[col] + (bottom[col + 1] - bottom[col]) * fx;
            out.push(t + (b - t) * fy);
        }
    }
    Some(out)
}

/// A tile whose samples all lie under this relative logit is not refined further: ten times
/// fainter than [`DEFAULT_MIN_FRACTION`], under which the map draws nothing (`ln(1e-4)`). The
/// margin covers a bump between samples that the coarser level missed.
pub const SKIP_BELOW: f32 = -9.21;

/// Whether a grid is so far under the best gallery point everywhere that finer samples
/// would draw nothing ([`SKIP_BELOW`]).
pub fn is_invisible(values: &[f32]) -> bool {
    values.iter().all(|&v| v.is_nan() || v < SKIP_BELOW)
}

/// A full grid at `level` as a grid at `level + 1`: the samples kept, the added ones
/// interpolated linearly between their neighbours (what a tile not worth refining is drawn
/// from). `None` when the grid does not fit the level.
pub fn upsample(values: &[f32], level: u8) -> Option<Vec<f32>> {
    let side = samples_per_side(level);
    if values.len() != side * side {
        return None;
    }
    let fine = samples_per_side(level + 1);
    let at = |col: usize, row: usize| values[row * side + col];
    let mut grid = Vec::with_capacity(fine * fine);
    for row in 0..fine {
        for col in 0..fine {
            let (c0, c1) = (col / 2, col.div_ceil(2));
            let (r0, r1) = (row / 2, row.div_ceil(2));
            grid.push((at(c0, r0) + at(c1, r0) + at(c0, r1) + at(c1, r1)) / 4.0);
        }
    }
    Some(grid)
}

/// A relative logit to the heat the gallery layer would give a lone gallery point there:
/// `exp(value)`, or 0 under [`DEFAULT_MIN_FRACTION`] (the gallery layer drops those points).
pub fn relative_logit_to_heat(value: f32) -> f32 {
    let heat = value.exp();
    if heat.is_finite() && heat >= DEFAULT_MIN_FRACTION {
        heat
    } else {
        0.0
    }
}

/// A tile drawn from a full grid of relative logits at `level`: unmultiplied RGBA bytes
/// (`size * size * 4`) in the gallery layer's colours, or `None` when nothing in it is visible
/// (or the grid does not fit the level).
pub fn render_tile_rgba(values: &[f32], level: u8, size: usize) -> Option<Vec<u8>> {
    let logits = tile_relative_logits(values, level, size)?;
    let mut rgba = Vec::with_capacity(size * size * 4);
    let mut visible = false;
    for value in logits {
        let colour = colour_ramp(heat_to_unit(relative_logit_to_heat(value)));
        visible |= colour[3] > 0;
        rgba.extend_from_slice(&colour);
    }
    visible.then_some(rgba)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn levels_nest_and_share_edges() {
        assert_eq!(
            (
                samples_per_side(0),
                samples_per_side(1),
                samples_per_side(2)
            ),
            (9, 17, 33)
        );
        let tile = HeatTile::new(10, 942, 614);
        // Sample (2i, 2j) of level 1 is sample (i, j) of level 0.
        for (i, j) in [(0, 0), (3, 5), (8, 8)] {
            let coarse = sample_position(tile, 0, i, j);
            let fine = sample_position(tile, 1, 2 * i, 2 * j);
            assert_abs_diff_eq!(coarse.lat_deg, fine.lat_deg, epsilon = 1e-12);
            assert_abs_diff_eq!(coarse.lon_deg, fine.lon_deg, epsilon = 1e-12);
        }
        // The east edge of a tile is the west edge of its neighbour, the south edge the north
        // edge of the one below.
        let east = HeatTile::new(10, 943, 614);
        let south = HeatTile::new(10, 942, 615);
        for k in 0..samples_per_side(2) {
            let a = sample_position(tile, 2, 32, k);
            let b = sample_position(east, 2, 0, k);
            assert_eq!(a, b);
            let c = sample_position(tile, 2, k, 32);
            let d = sample_position(south, 2, k, 0);
            assert_eq!(c, d);
        }
        // Tile 942, 614 at zoom 10 is Sydney's.
        let nw = sample_position(tile, 0, 0, 0);
        assert!((nw.lat_deg - -33.7).abs() < 0.2 && (nw.lon_deg - 151.2).abs() < 0.2);
    }

    #[test]
    fn finer_levels_score_only_the_new_samples() {
        assert_eq!(new_sample_indices(0).len(), 81);
        assert_eq!(new_sample_indices(1).len(), 17 * 17 - 81);
        assert_eq!(new_sample_indices(2).len(), 33 * 33 - 17 * 17);
        for level in 0..LEVELS {
            assert_eq!(added_per_tile(level), new_sample_indices(level).len());
            assert!(tiles_per_call(level) >= 1);
        }
        let tile = HeatTile::new(8, 100, 90);
        let value_at = |p: LatLon| (p.lat_deg * 3.0 + p.lon_deg) as f32;
        let level0: Vec<f32> = new_sample_positions(tile, 0)
            .into_iter()
            .map(value_at)
            .collect();
        let grid0 = refine_values(&[], 0, &level0).expect("level 0");
        let added1: Vec<f32> = new_sample_positions(tile, 1)
            .into_iter()
            .map(value_at)
            .collect();
        let grid1 = refine_values(&grid0, 1, &added1).expect("level 1");
        // Every sample of the merged grid is the value at its own position.
        let side = samples_per_side(1);
        for (i, &v) in grid1.iter().enumerate() {
            let expected = value_at(sample_position(tile, 1, i % side, i / side));
            assert_abs_diff_eq!(v, expected, epsilon = 1e-4);
        }
        assert!(refine_values(&grid0, 1, &added1[1..]).is_none());
        assert!(refine_values(&grid1, 1, &added1).is_none());
    }

    #[test]
    fn faint_tiles_are_upsampled_instead_of_refined() {
        let side = samples_per_side(0);
        let mut faint = vec![SKIP_BELOW - 1.0; side * side];
        assert!(is_invisible(&faint));
        faint[40] = SKIP_BELOW + 0.5;
        assert!(!is_invisible(&faint));
        assert!(is_invisible(&[f32::NAN, f32::NEG_INFINITY]));
        // Upsampling keeps the samples and interpolates the added ones.
        let ramp: Vec<f32> = (0..side * side).map(|i| (i % side) as f32).collect();
        let fine = upsample(&ramp, 0).expect("fits");
        let fine_side = samples_per_side(1);
        assert_eq!(fine.len(), fine_side * fine_side);
        for (i, &v) in fine.iter().enumerate() {
            assert_abs_diff_eq!(v, (i % fine_side) as f32 / 2.0, epsilon = 1e-6);
        }
        assert!(upsample(&ramp[1..], 0).is_none());
    }

    #[test]
    fn visible_tiles_cover_the_view_centre_first() {
        // Zoom 10 exactly: a 1280 x 800 view spans 5 x 3.1 tiles, so 6 x 4 or 6 x 5 of them.
        let centre = LatLon::new(-33.87, 151.21);
        let tiles = visible_tiles(centre, 10.0, [1280.0, 800.0]);
        assert!((24..=30).contains(&tiles.len()), "{}", tiles.len());
        assert_eq!(tiles[0], HeatTile::new(10, 942, 614));
        assert!(tiles.iter().all(|t| t.zoom == 10 && t.is_valid()));
        // Rounded zoom, and nothing off the world at its edge.
        let edge = visible_tiles(LatLon::new(0.0, 179.9), 2.4, [1280.0, 800.0]);
        assert!(edge.iter().all(|t| t.zoom == 2 && t.is_valid()));
        assert!(edge.iter().any(|t| t.x == 3));
    }

    #[test]
    fn tiles_join_without_seams() {
        // A field that varies smoothly over two neighbouring tiles: the last pixel column of
        // the west tile and the first of the east tile differ only by the field's slope.
        let west = HeatTile::new(9, 300, 200);
        let east = HeatTile::new(9, 301, 200);
        let field = |p: LatLon| -((p.lon_deg - 31.0).powi(2) + (p.lat_deg - 30.0).powi(2)) as f32;
        let grid = |tile: HeatTile| -> Vec<f32> {
            let side = samples_per_side(2);
            (0..side * side)
                .map(|i| field(sample_position(tile, 2, i % side, i / side)))
                .collect()
        };
        let size = 256;
        let w = tile_relative_logits(&grid(west), 2, size).expect("west");
        let e = tile_relative_logits(&grid(east), 2, size).expect("east");
        for row in [0, 100, 255] {
            let last = w[row * size + size - 1];
            let before = w[row * size + size - 2];
            let first = e[row * size];
            // The step across the edge is no larger than a step inside a tile (plus rounding).
            assert!(
                (first - last).abs() <= (last - before).abs() * 1.5 + 1e-5,
                "row {row}: {before} {last} | {first}"
            );
        }
    }

    #[test]
    fn colours_match_the_gallery_layer() {
        // The best gallery point (relative logit 0) is the ramp's top; weak points vanish.
        let side = samples_per_side(0);
        let peak = vec![0.0_f32; side * side];
        let rgba = render_tile_rgba(&peak, 0, 16).expect("visible");
        assert_eq!(&rgba[..4], &colour_ramp(1.0));
        // Half the best's probability: the colour the gallery layer gives a weight of 0.5.
        let half = vec![0.5_f32.ln(); side * side];
        let rgba = render_tile_rgba(&half, 0, 16).expect("visible");
        assert_eq!(&rgba[..4], &colour_ramp(heat_to_unit(0.5)));
        let faint = vec![(DEFAULT_MIN_FRACTION / 2.0).ln(); side * side];
        assert!(render_tile_rgba(&faint, 0, 16).is_none());
        assert!(render_tile_rgba(&peak[1..], 0, 16).is_none());
        assert_eq!(relative_logit_to_heat(f32::NEG_INFINITY), 0.0);
    }
}
