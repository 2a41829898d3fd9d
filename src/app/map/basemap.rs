//! The offline basemap: Natural Earth coastlines, land and country borders (public domain,
//! `assets/basemap.bin`, made by `scripts/make_basemap.py`) rasterised into slippy-map tiles on
//! the CPU. It is the map's bottom layer, so the map is never blank: with the network switched
//! off, or while OpenStreetMap tiles load or fail, this is what shows.

use std::collections::HashMap;

use walkers::sources::Attribution;
use walkers::{Tile, TileId, TilePiece, Tiles};

use crate::geo::LatLon;
use crate::geo::heatmap::mercator_unit;

/// The embedded Natural Earth data.
pub const BASEMAP_BYTES: &[u8] = include_bytes!("../../../assets/basemap.bin");

pub const OCEAN_RGBA: [u8; 4] = [172, 202, 226, 255];
pub const LAND_RGBA: [u8; 4] = [241, 238, 229, 255];
pub const COAST_RGBA: [u8; 4] = [96, 124, 150, 255];
pub const BORDER_RGBA: [u8; 4] = [168, 140, 168, 255];

/// How many tiles the basemap rasterises per frame at most (the rest next frame), so a jump
/// to a new place never makes one long frame.
const TILES_PER_FRAME: usize = 6;
const TILE_SIZE: usize = 256;
const MAX_CACHED_TILES: usize = 768;
/// From this zoom on, coastlines and borders are drawn two pixels wide.
const THICK_LINES_ZOOM: u8 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// A closed ring of land (islands and lakes' shores alternate: filled even-odd).
    Land,
    /// A border between two countries.
    Border,
}

/// One line of the basemap, projected to the Web-Mercator unit square.
#[derive(Clone, Debug)]
pub struct BasemapLine {
    pub kind: LineKind,
    /// `[x, y]` in `[0, 1]` (see [`mercator_unit`]).
    pub points_unit: Vec<[f32; 2]>,
    /// `[min_x, min_y, max_x, max_y]` of `points_unit`.
    pub bbox_unit: [f32; 4],
}

/// The decoded basemap.
#[derive(Clone, Debug, Default)]
pub struct Basemap {
    pub lines: Vec<BasemapLine>,
}

/// Why `assets/basemap.bin` could not be read (a build problem; the map then shows only ocean).
#[derive(Debug, thiserror::Error)]
#[error("invalid offline basemap data: {0}")]
pub struct BasemapError(&'static str);

impl Basemap {
    /// Parses the format written by `scripts/make_basemap.py`.
    pub fn parse(bytes: &[u8]) -> Result<Self, BasemapError> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(4)? != b"GLBM" {
            return Err(BasemapError("bad magic"));
        }
        if reader.u32()? != 1 {
            return Err(BasemapError("unknown version"));
        }
        let count = reader.u32()? as usize;
        let mut lines = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let kind = match reader.take(1)?[0] {
                0 => LineKind::Land,
                1 => LineKind::Border,
                _ => return Err(BasemapError("unknown line kind")),
            };
            let n = reader.u32()? as usize;
            let mut points_unit = Vec::with_capacity(n.min(1 << 20));
            let mut bbox_unit = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
            for _ in 0..n {
                let lon_cdeg = reader.i16()?;
                let lat_cdeg = reader.i16()?;
                let (x, y) = mercator_unit(LatLon::new(
                    f64::from(lat_cdeg) / 100.0,
                    f64::from(lon_cdeg) / 100.0,
                ));
                // Unwrap across the antimeridian (Natural Earth's land rings wrap around it), so
                // each ring is continuous; render_tile draws the copies one world left and right.
                let mut x = x as f32;
                if let Some(prev) = points_unit.last().map(|p: &[f32; 2]| p[0]) {
                    while x - prev > 0.5 {
                        x -= 1.0;
                    }
                    while x - prev < -0.5 {
                        x += 1.0;
                    }
                }
                let p = [x, y as f32];
                bbox_unit = [
                    bbox_unit[0].min(p[0]),
                    bbox_unit[1].min(p[1]),
                    bbox_unit[2].max(p[0]),
                    bbox_unit[3].max(p[1]),
                ];
                points_unit.push(p);
            }
            lines.push(BasemapLine {
                kind,
                points_unit,
                bbox_unit,
            });
        }
        Ok(Self { lines })
    }

    /// The embedded basemap; an empty one (ocean only) if the asset were corrupt.
    pub fn embedded() -> Self {
        Self::parse(BASEMAP_BYTES).unwrap_or_default()
    }

    /// Tile `(x, y, zoom)` as unmultiplied RGBA, `size * size * 4` bytes: ocean, land filled,
    /// coastlines and borders one pixel wide.
    pub fn render_tile(&self, tile_x: u32, tile_y: u32, zoom: u8, size: usize) -> Vec<u8> {
        let mut rgba = OCEAN_RGBA.repeat(size * size);
        let world_px = size as f64 * f64::from(1u32 << zoom.min(30));
        let origin = [
            f64::from(tile_x) * size as f64,
            f64::from(tile_y) * size as f64,
        ];
        let to_px = |p: [f32; 2], shift: f64| {
            [
                ((f64::from(p[0]) + shift) * world_px - origin[0]) as f32,
                (f64::from(p[1]) * world_px - origin[1]) as f32,
            ]
        };
        let tile_unit = [
            origin[0] / world_px,
            origin[1] / world_px,
            (origin[0] + size as f64) / world_px,
            (origin[1] + size as f64) / world_px,
        ];
        let overlaps = |b: [f32; 4], shift: f64| {
            f64::from(b[2]) + shift >= tile_unit[0]
                && f64::from(b[0]) + shift <= tile_unit[2]
                && f64::from(b[3]) >= tile_unit[1]
                && f64::from(b[1]) <= tile_unit[3]
        };
        // Land: even-odd scanline fill at pixel centres.
        let mut crossings: Vec<Vec<f32>> = vec![Vec::new(); size];
        let copies = |bbox: [f32; 4]| -> Vec<f64> {
            [-1.0, 0.0, 1.0]
                .into_iter()
                .filter(|&shift| overlaps(bbox, shift))
                .collect()
        };
        for line in self.lines.iter().filter(|l| l.kind == LineKind::Land) {
            for shift in copies(line.bbox_unit) {
                let n = line.points_unit.len();
                for i in 0..n {
                    let a = to_px(line.points_unit[i], shift);
                    let b = to_px(line.points_unit[(i + 1) % n], shift);
                    let (lo, hi) = if a[1] <= b[1] { (a, b) } else { (b, a) };
                    if hi[1] - lo[1] <= f32::EPSILON {
                        continue;
                    }
                    let first_row = (lo[1] - 0.5).ceil().max(0.0) as usize;
                    let last_row = (hi[1] - 0.5).ceil().min(size as f32);
                    if last_row <= 0.0 {
                        continue;
                    }
                    for (row, row_crossings) in crossings
                        .iter_mut()
                        .enumerate()
                        .take(last_row as usize)
                        .skip(first_row)
                    {
                        let y = row as f32 + 0.5;
                        let t = (y - lo[1]) / (hi[1] - lo[1]);
                        row_crossings.push(lo[0] + t * (hi[0] - lo[0]));
                    }
                }
            }
        }
        for (row, xs) in crossings.iter_mut().enumerate() {
            xs.sort_by(f32::total_cmp);
            for pair in xs.chunks_exact(2) {
                let start = (pair[0] - 0.5).ceil().max(0.0) as usize;
                let end = ((pair[1] - 0.5).ceil().max(0.0) as usize).min(size);
                for col in start..end {
                    let at = (row * size + col) * 4;
                    rgba[at..at + 4].copy_from_slice(&LAND_RGBA);
                }
            }
        }
        // Outlines: borders first, coastlines over them; two pixels wide once zoomed in (the
        // data is 1:50m, so zoomed in there is little else to see).
        let width_px = if zoom >= THICK_LINES_ZOOM { 2 } else { 1 };
        for kind in [LineKind::Border, LineKind::Land] {
            let colour = if kind == LineKind::Land {
                COAST_RGBA
            } else {
                BORDER_RGBA
            };
            for line in self.lines.iter().filter(|l| l.kind == kind) {
                for shift in copies(line.bbox_unit) {
                    let closed = kind == LineKind::Land;
                    let n = line.points_unit.len();
                    let segments = if closed { n } else { n.saturating_sub(1) };
                    for i in 0..segments {
                        let a = to_px(line.points_unit[i], shift);
                        let b = to_px(line.points_unit[(i + 1) % n], shift);
                        // A ring's closing edge may jump a whole world (Antarctica): skip it.
                        if (a[0] - b[0]).abs() > 0.5 * world_px as f32 {
                            continue;
                        }
                        draw_segment(&mut rgba, size, a, b, colour, width_px);
                    }
                }
            }
        }
        rgba
    }
}

/// Plots the pixels along `a`–`b` (one per step along the longer axis), `width_px` square.
fn draw_segment(
    rgba: &mut [u8],
    size: usize,
    a: [f32; 2],
    b: [f32; 2],
    colour: [u8; 4],
    width_px: usize,
) {
    let s = size as f32;
    if (a[0] < 0.0 && b[0] < 0.0)
        || (a[1] < 0.0 && b[1] < 0.0)
        || (a[0] >= s && b[0] >= s)
        || (a[1] >= s && b[1] >= s)
    {
        return;
    }
    // Clip to the tile (Liang–Barsky), so a long segment at deep zoom costs only its visible part.
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (mut t0, mut t1) = (0.0_f32, 1.0_f32);
    for (p, q) in [(-dx, a[0]), (dx, s - a[0]), (-dy, a[1]), (dy, s - a[1])] {
        if p == 0.0 {
            if q < 0.0 {
                return;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return;
    }
    let (a, b) = (
        [a[0] + t0 * dx, a[1] + t0 * dy],
        [a[0] + t1 * dx, a[1] + t1 * dy],
    );
    let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().max(1.0) as usize;
    for i in 0..=steps {
        let t = i as f32 / steps as f32;
        let x = a[0] + t * (b[0] - a[0]);
        let y = a[1] + t * (b[1] - a[1]);
        if x >= 0.0 && y >= 0.0 && x < s && y < s {
            for row in (y as usize)..(y as usize + width_px).min(size) {
                for col in (x as usize)..(x as usize + width_px).min(size) {
                    let at = (row * size + col) * 4;
                    rgba[at..at + 4].copy_from_slice(&colour);
                }
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BasemapError> {
        let end = self.at.checked_add(n).ok_or(BasemapError("truncated"))?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or(BasemapError("truncated"))?;
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, BasemapError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i16(&mut self) -> Result<i16, BasemapError> {
        let b = self.take(2)?;
        Ok(i16::from_le_bytes([b[0], b[1]]))
    }
}

/// The basemap as a walkers [`Tiles`] source: tiles are rasterised on demand (a few per frame)
/// and kept as textures.
pub struct BasemapTiles {
    basemap: Basemap,
    ctx: egui::Context,
    textures: HashMap<TileId, egui::TextureHandle>,
    rendered_this_frame: usize,
    frame: u64,
}

impl BasemapTiles {
    pub fn new(ctx: egui::Context) -> Self {
        Self {
            basemap: Basemap::embedded(),
            ctx,
            textures: HashMap::new(),
            rendered_this_frame: 0,
            frame: u64::MAX,
        }
    }

    /// How many tiles are ready as textures.
    pub fn cached_tiles(&self) -> usize {
        self.textures.len()
    }
}

impl BasemapTiles {
    /// The texture of a tile, rasterised now if this frame's budget allows (else `None`, and a
    /// repaint is asked for). `tile_id.x` may be any column of the world's copies east or west.
    pub fn texture(&mut self, tile_id: TileId) -> Option<egui::TextureHandle> {
        let frame = self.ctx.cumulative_frame_nr();
        if frame != self.frame {
            self.frame = frame;
            self.rendered_this_frame = 0;
        }
        let columns = 1u32
            .checked_shl(u32::from(tile_id.zoom))
            .unwrap_or(u32::MAX);
        let tile_id = TileId {
            x: tile_id.x % columns.max(1),
            ..tile_id
        };
        if let Some(texture) = self.textures.get(&tile_id) {
            return Some(texture.clone());
        }
        if self.rendered_this_frame >= TILES_PER_FRAME {
            self.ctx.request_repaint();
            return None;
        }
        self.rendered_this_frame += 1;
        if self.textures.len() >= MAX_CACHED_TILES {
            self.textures.clear();
        }
        let rgba = self
            .basemap
            .render_tile(tile_id.x, tile_id.y, tile_id.zoom, TILE_SIZE);
        let image = egui::ColorImage::from_rgba_unmultiplied([TILE_SIZE, TILE_SIZE], &rgba);
        let texture = self.ctx.load_texture(
            format!("basemap/{}/{}/{}", tile_id.zoom, tile_id.x, tile_id.y),
            image,
            egui::TextureOptions::LINEAR,
        );
        self.textures.insert(tile_id, texture.clone());
        Some(texture)
    }
}

impl Tiles for BasemapTiles {
    fn at(&mut self, tile_id: TileId) -> Option<TilePiece> {
        let full = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        self.texture(tile_id)
            .map(|texture| TilePiece::new(Tile::Raster(texture), full))
    }

    fn attribution(&self) -> Attribution {
        Attribution {
            text: "Made with Natural Earth",
            url: "https://www.naturalearthdata.com/",
            logo_light: None,
            logo_dark: None,
        }
    }

    fn tile_size(&self) -> u32 {
        TILE_SIZE as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_basemap_parses_with_land_and_borders() {
        let map = Basemap::parse(BASEMAP_BYTES).expect("valid asset");
        assert!(map.lines.len() > 1000);
        assert!(map.lines.iter().any(|l| l.kind == LineKind::Border));
        assert!(map.lines.iter().any(|l| l.kind == LineKind::Land));
        assert!(Basemap::parse(b"nope").is_err());
    }

    #[test]
    fn zoomed_in_coastlines_are_drawn_two_pixels_wide() {
        let map = Basemap::embedded();
        // 2x2 blocks of coastline in the tile with Italy's west coast: a one-pixel line has
        // (almost) none, a two-pixel line has one per pixel of its length.
        let blocks_and_pixels = |zoom: u8| {
            let n = f64::from(1u32 << zoom);
            let (x, y) = mercator_unit(LatLon::new(41.7, 12.3));
            let tile = map.render_tile((x * n) as u32, (y * n) as u32, zoom, 256);
            let coast = |j: usize| tile[j * 4..j * 4 + 4] == COAST_RGBA;
            let blocks = (0..255 * 256)
                .filter(|&i| {
                    i % 256 < 255 && coast(i) && coast(i + 1) && coast(i + 256) && coast(i + 257)
                })
                .count();
            let pixels = (0..256 * 256).filter(|&i| coast(i)).count();
            (blocks, pixels)
        };
        let (thick_blocks, thick_pixels) = blocks_and_pixels(8);
        let (thin_blocks, thin_pixels) = blocks_and_pixels(3);
        assert!(
            thick_pixels > 100 && thin_pixels > 100,
            "{thick_pixels} and {thin_pixels} coast pixels"
        );
        assert!(
            thick_blocks * 3 > thick_pixels,
            "two pixels wide at zoom 8: {thick_blocks} blocks in {thick_pixels} pixels"
        );
        assert!(
            thin_blocks * 5 < thin_pixels,
            "one pixel wide at zoom 3: {thin_blocks} blocks in {thin_pixels} pixels"
        );
    }

    #[test]
    fn the_world_tile_has_land_and_ocean_in_the_right_places() {
        let map = Basemap::embedded();
        let size = 256;
        let tile = map.render_tile(0, 0, 0, size);
        let pixel = |lat: f64, lon: f64| {
            let (x, y) = mercator_unit(LatLon::new(lat, lon));
            let at = ((y * size as f64) as usize * size + (x * size as f64) as usize) * 4;
            [tile[at], tile[at + 1], tile[at + 2], tile[at + 3]]
        };
        // Middle of the Pacific, middle of the Sahara, middle of Brazil (land, or a border on it).
        assert_eq!(pixel(0.0, -150.0), OCEAN_RGBA);
        assert_ne!(pixel(23.0, 13.0), OCEAN_RGBA);
        assert_ne!(pixel(-10.0, -55.0), OCEAN_RGBA);
        // Rings that wrap the antimeridian (Russia) must not flip whole rows: Siberia and
        // Greenland are land, the Barents Sea and the Bering Sea are water.
        assert_ne!(pixel(65.0, 100.0), OCEAN_RGBA);
        assert_ne!(pixel(75.0, -40.0), OCEAN_RGBA);
        assert_eq!(pixel(73.0, 40.0), OCEAN_RGBA);
        assert_eq!(pixel(57.0, -175.0), OCEAN_RGBA);
    }
}
