//! The probability heatmap as a second walkers tile layer: semi-transparent tiles rendered by
//! [`crate::geo::heatmap`] from the selected photo's heat points, a few per frame, cached until
//! the photo (or its result) changes. Its opacity is the layer's transparency in the map.

use std::collections::HashMap;

use walkers::sources::Attribution;
use walkers::{Tile, TileId, TilePiece, Tiles};

use crate::geo::LatLon;
use crate::geo::heatmap::{DEFAULT_MIN_FRACTION, HeatPoints, render_tile_rgba};

const TILE_SIZE: usize = 256;
const TILES_PER_FRAME: usize = 4;
const MAX_CACHED_TILES: usize = 512;
/// The kernel radius on screen, in pixels.
pub const HEAT_RADIUS_PX: f32 = 14.0;

pub struct HeatTiles {
    ctx: egui::Context,
    /// Identifies what `points` were made from (photo and result), to rebuild only on change.
    key: Option<String>,
    points: HeatPoints,
    /// `None`: rendered, nothing visible there.
    textures: HashMap<TileId, Option<egui::TextureHandle>>,
    rendered_this_frame: usize,
    frame: u64,
}

impl HeatTiles {
    pub fn new(ctx: egui::Context) -> Self {
        Self {
            ctx,
            key: None,
            points: HeatPoints::default(),
            textures: HashMap::new(),
            rendered_this_frame: 0,
            frame: u64::MAX,
        }
    }

    /// Shows these points (positions and probabilities, parallel), or nothing with `None`.
    /// Does nothing when `key` is the one already shown.
    pub fn set(&mut self, key: Option<String>, points: impl FnOnce() -> (Vec<LatLon>, Vec<f32>)) {
        if key == self.key {
            return;
        }
        self.points = if key.is_some() {
            let (positions, probabilities) = points();
            HeatPoints::new(&positions, &probabilities, DEFAULT_MIN_FRACTION)
        } else {
            HeatPoints::default()
        };
        self.key = key;
        self.textures.clear();
    }

    /// Gallery points the heatmap draws.
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl Tiles for HeatTiles {
    fn at(&mut self, tile_id: TileId) -> Option<TilePiece> {
        if self.points.is_empty() {
            return None;
        }
        let frame = self.ctx.cumulative_frame_nr();
        if frame != self.frame {
            self.frame = frame;
            self.rendered_this_frame = 0;
        }
        let full = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        if let Some(texture) = self.textures.get(&tile_id) {
            return texture
                .as_ref()
                .map(|t| TilePiece::new(Tile::Raster(t.clone()), full));
        }
        if self.rendered_this_frame >= TILES_PER_FRAME {
            self.ctx.request_repaint();
            return None;
        }
        self.rendered_this_frame += 1;
        if self.textures.len() >= MAX_CACHED_TILES {
            self.textures.clear();
        }
        let texture = render_tile_rgba(
            &self.points,
            tile_id.x,
            tile_id.y,
            tile_id.zoom,
            TILE_SIZE,
            HEAT_RADIUS_PX,
        )
        .map(|rgba| {
            self.ctx.load_texture(
                format!("heat/{}/{}/{}", tile_id.zoom, tile_id.x, tile_id.y),
                egui::ColorImage::from_rgba_unmultiplied([TILE_SIZE, TILE_SIZE], &rgba),
                egui::TextureOptions::LINEAR,
            )
        });
        self.textures.insert(tile_id, texture.clone());
        texture.map(|t| TilePiece::new(Tile::Raster(t), full))
    }

    fn attribution(&self) -> Attribution {
        Attribution {
            text: "Heatmap: GeoCLIP probabilities",
            url: "https://github.com/VicenteVivan/geo-clip",
            logo_light: None,
            logo_dark: None,
        }
    }

    fn tile_size(&self) -> u32 {
        TILE_SIZE as u32
    }
}
