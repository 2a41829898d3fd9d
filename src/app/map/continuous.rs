//! The continuous heatmap layer: zoomed in past [`CONTINUOUS_MIN_ZOOM`], the selected photo's
//! heat comes from GeoCLIP's location encoder sampled over the visible tiles
//! ([`crate::geo::heat_grid`]) on the inference thread, instead of from the gallery's points.
//!
//! - Once the view has stayed the same for [`SETTLE`], [`ContinuousHeat::update`] says which
//!   tiles to ask for (those not already at the finest level); a moved view cancels the request.
//! - The thread answers tile by tile and level by level; [`ContinuousHeat::receive`] keeps the
//!   newest level of each tile waiting, and [`ContinuousHeat::upload`] turns at most
//!   [`TEXTURES_PER_FRAME`] of them into textures each frame, so no frame waits on this.
//! - Textures are cached per photo and tile (the finest level received), [`MAX_CACHED_TILES`] at
//!   most, the least recently drawn forgotten first: going back to a photo or a place is instant.
//! - [`HeatLayer`] is the walkers tile layer: a tile not computed yet shows the nearest
//!   coarser continuous tile, else the gallery layer's tile, so the map is never blank.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use walkers::sources::Attribution;
use walkers::{Tile, TileId, TilePiece, Tiles};

use super::HeatTiles;
use crate::geo::LatLon;
use crate::geo::heat_grid::{self, CONTINUOUS_MIN_ZOOM, HeatTile};

/// Tile size in pixels (walkers' grid).
const TILE_SIZE: usize = 256;
/// Textures made per frame at most (each is a 256 x 256 interpolation).
pub const TEXTURES_PER_FRAME: usize = 3;
/// Cached tiles at most, over all photos.
pub const MAX_CACHED_TILES: usize = 512;
/// How long the view must stay unchanged before its tiles are asked for.
pub const SETTLE: Duration = Duration::from_millis(150);
/// How many zoom levels up a missing tile looks for a coarser continuous one to stretch.
const FALLBACK_ZOOMS: u8 = 4;

/// What the map shows, as far as the continuous layer cares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeatView {
    pub centre: LatLon,
    /// walkers' (fractional) zoom.
    pub zoom: f64,
    /// The map's size in points.
    pub size_px: [f32; 2],
}

impl HeatView {
    /// Whether this view is zoomed in far enough for the continuous layer.
    pub fn is_continuous(&self) -> bool {
        self.zoom.round() >= f64::from(CONTINUOUS_MIN_ZOOM)
    }
}

/// What the caller should tell the inference thread this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum HeatAction {
    /// Nothing.
    Wait,
    /// The view moved (or the layer is off): cancel the request in flight.
    Cancel,
    /// Ask for these tiles (nearest the centre first).
    Request(Vec<HeatTile>),
}

struct CachedTile {
    level: u8,
    /// `None`: computed, nothing visible.
    texture: Option<egui::TextureHandle>,
    /// When it was last drawn (a counter).
    used: u64,
}

/// A level received for a tile of the current photo, waiting for its texture.
#[derive(Debug)]
struct Pending {
    tile: HeatTile,
    level: u8,
    values: Arc<[f32]>,
}

/// The continuous layer's state. See the module docs.
pub struct ContinuousHeat {
    ctx: egui::Context,
    /// The selected photo and result (`None`: no photo, or one without a result).
    photo_key: Option<Arc<str>>,
    tiles: HashMap<(Arc<str>, HeatTile), CachedTile>,
    pending: Vec<Pending>,
    /// The view last frame and since when it is so.
    view: Option<(HeatView, Instant)>,
    /// The view and photo last asked for.
    requested: Option<(HeatView, Arc<str>)>,
    /// The heat generation of the request in flight: events of others are stale.
    in_flight: Option<u64>,
    /// The photo whose heat could not be computed (the gallery layer shows instead).
    failed: Option<Arc<str>>,
    tick: u64,
}

impl ContinuousHeat {
    pub fn new(ctx: egui::Context) -> Self {
        Self {
            ctx,
            photo_key: None,
            tiles: HashMap::new(),
            pending: Vec::new(),
            view: None,
            requested: None,
            in_flight: None,
            failed: None,
            tick: 0,
        }
    }

    /// Shows this photo's heat (`None`: none). True when it changed: what was waiting for the
    /// old photo is dropped (the caller cancels its request).
    pub fn set_photo(&mut self, key: Option<&str>) -> bool {
        if self.photo_key.as_deref() == key {
            return false;
        }
        self.photo_key = key.map(Arc::from);
        self.pending.clear();
        self.requested = None;
        self.in_flight = None;
        true
    }

    pub fn photo_key(&self) -> Option<&str> {
        self.photo_key.as_deref()
    }

    /// Whether the current photo's heat failed (the gallery layer shows instead).
    pub fn has_failed(&self) -> bool {
        self.failed.is_some() && self.failed == self.photo_key
    }

    /// Called each frame with the view while the continuous layer is wanted (`None`: it is
    /// not: zoomed out, no photo, no model). Says what to ask of the inference thread.
    pub fn update(&mut self, view: Option<HeatView>, now: Instant) -> HeatAction {
        let (Some(view), Some(key)) = (view, self.photo_key.clone()) else {
            self.view = None;
            self.requested = None;
            return self.cancel_in_flight();
        };
        if self.has_failed() {
            return HeatAction::Wait;
        }
        let since = match self.view {
            Some((last, since)) if last == view => since,
            _ => {
                self.view = Some((view, now));
                if self.requested.as_ref().is_some_and(|(v, _)| *v != view) {
                    self.requested = None;
                    return self.cancel_in_flight();
                }
                now
            }
        };
        if self
            .requested
            .as_ref()
            .is_some_and(|(v, k)| *v == view && *k == key)
        {
            return HeatAction::Wait;
        }
        let settled_for = now.duration_since(since);
        if settled_for < SETTLE {
            self.ctx.request_repaint_after(SETTLE - settled_for);
            return HeatAction::Wait;
        }
        self.requested = Some((view, Arc::clone(&key)));
        let finest = heat_grid::LEVELS - 1;
        let tiles: Vec<HeatTile> = heat_grid::visible_tiles(view.centre, view.zoom, view.size_px)
            .into_iter()
            .filter(|t| {
                self.tiles
                    .get(&(Arc::clone(&key), *t))
                    .is_none_or(|c| c.level < finest)
            })
            .collect();
        if tiles.is_empty() {
            HeatAction::Wait
        } else {
            HeatAction::Request(tiles)
        }
    }

    fn cancel_in_flight(&mut self) -> HeatAction {
        self.pending.clear();
        if self.in_flight.take().is_some() {
            HeatAction::Cancel
        } else {
            HeatAction::Wait
        }
    }

    /// The heat generation the request just sent got.
    pub fn sent(&mut self, heat_generation: u64) {
        self.in_flight = Some(heat_generation);
    }

    /// Whether a request is in flight.
    pub fn is_waiting(&self) -> bool {
        self.in_flight.is_some()
    }

    /// A tile's level from the inference thread; ignored unless it answers the request in
    /// flight for the current photo.
    pub fn receive(
        &mut self,
        heat_generation: u64,
        photo_key: &str,
        tile: HeatTile,
        level: u8,
        values: Arc<[f32]>,
    ) {
        if self.in_flight != Some(heat_generation) || self.photo_key.as_deref() != Some(photo_key) {
            return;
        }
        if let Some(waiting) = self.pending.iter_mut().find(|p| p.tile == tile) {
            if level > waiting.level {
                waiting.level = level;
                waiting.values = values;
            }
            return;
        }
        self.pending.push(Pending {
            tile,
            level,
            values,
        });
        self.ctx.request_repaint();
    }

    /// The request for this photo failed: the gallery layer shows instead.
    pub fn fail(&mut self, heat_generation: u64, photo_key: &str) {
        if self.in_flight == Some(heat_generation) && self.photo_key.as_deref() == Some(photo_key) {
            self.failed = self.photo_key.clone();
            self.in_flight = None;
        }
    }

    /// Levels received and not yet drawn.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Makes at most `budget` textures from what was received (in the order it came: the
    /// centre first, coarse first); asks for another frame while more wait. Returns how many.
    pub fn upload(&mut self, budget: usize) -> usize {
        let Some(key) = self.photo_key.clone() else {
            self.pending.clear();
            return 0;
        };
        let take = budget.min(self.pending.len());
        for Pending {
            tile,
            level,
            values,
        } in self.pending.drain(..take).collect::<Vec<_>>()
        {
            let texture = heat_grid::render_tile_rgba(&values, level, TILE_SIZE).map(|rgba| {
                self.ctx.load_texture(
                    format!("heat-continuous/{}/{}/{}", tile.zoom, tile.x, tile.y),
                    egui::ColorImage::from_rgba_unmultiplied([TILE_SIZE, TILE_SIZE], &rgba),
                    egui::TextureOptions::LINEAR,
                )
            });
            self.tick += 1;
            let entry = self.tiles.entry((Arc::clone(&key), tile));
            let cached = entry.or_insert(CachedTile {
                level,
                texture: None,
                used: self.tick,
            });
            if level >= cached.level || cached.texture.is_none() {
                cached.level = level;
                cached.texture = texture;
            }
            cached.used = self.tick;
        }
        self.evict();
        if !self.pending.is_empty() {
            self.ctx.request_repaint();
        }
        take
    }

    /// Forgets the least recently drawn tiles over [`MAX_CACHED_TILES`].
    fn evict(&mut self) {
        let over = self.tiles.len().saturating_sub(MAX_CACHED_TILES);
        if over == 0 {
            return;
        }
        let mut by_use: Vec<(u64, (Arc<str>, HeatTile))> = self
            .tiles
            .iter()
            .map(|(k, c)| (c.used, k.clone()))
            .collect();
        by_use.sort_by_key(|(used, _)| *used);
        for (_, key) in by_use.into_iter().take(over) {
            self.tiles.remove(&key);
        }
    }

    /// Tiles cached, over all photos.
    pub fn cached_len(&self) -> usize {
        self.tiles.len()
    }

    /// The finest level cached for the current photo at `tile`.
    pub fn cached_level(&self, tile: HeatTile) -> Option<u8> {
        let key = self.photo_key.clone()?;
        self.tiles.get(&(key, tile)).map(|c| c.level)
    }

    /// Tiles of the current photo cached with something visible.
    pub fn visible_tiles_cached(&self) -> usize {
        self.tiles
            .iter()
            .filter(|((k, _), c)| Some(k) == self.photo_key.as_ref() && c.texture.is_some())
            .count()
    }

    /// The current photo's piece for `tile`: `Some(None)` when it is known to show nothing,
    /// `None` when nothing is known (neither the tile nor a coarser one).
    fn piece(&mut self, tile: HeatTile) -> Option<Option<TilePiece>> {
        let key = self.photo_key.clone()?;
        self.tick += 1;
        for up in 0..=FALLBACK_ZOOMS.min(tile.zoom) {
            let parent = HeatTile::new(tile.zoom - up, tile.x >> up, tile.y >> up);
            let Some(cached) = self.tiles.get_mut(&(Arc::clone(&key), parent)) else {
                continue;
            };
            cached.used = self.tick;
            let Some(texture) = cached.texture.clone() else {
                return Some(None);
            };
            // The part of the parent that covers `tile`.
            let span = 1.0 / f32::from(1u16 << up);
            let min = egui::pos2(
                (tile.x - (parent.x << up)) as f32 * span,
                (tile.y - (parent.y << up)) as f32 * span,
            );
            let uv = egui::Rect::from_min_size(min, egui::vec2(span, span));
            return Some(Some(TilePiece::new(Tile::Raster(texture), uv)));
        }
        None
    }
}

/// The heat layer walkers draws: with `continuous`, its tiles, the gallery layer's where none
/// is computed yet; without, the gallery layer.
pub struct HeatLayer<'a> {
    pub continuous: Option<&'a mut ContinuousHeat>,
    pub gallery: &'a mut HeatTiles,
}

impl Tiles for HeatLayer<'_> {
    fn at(&mut self, tile_id: TileId) -> Option<TilePiece> {
        let tile = HeatTile::new(tile_id.zoom, tile_id.x, tile_id.y);
        match self.continuous.as_mut().and_then(|c| c.piece(tile)) {
            Some(piece) => piece,
            None => self.gallery.at(tile_id),
        }
    }

    fn attribution(&self) -> Attribution {
        if self.continuous.is_some() {
            Attribution {
                text: "Heatmap: GeoCLIP location encoder",
                url: "https://github.com/VicenteVivan/geo-clip",
                logo_light: None,
                logo_dark: None,
            }
        } else {
            self.gallery.attribution()
        }
    }

    fn tile_size(&self) -> u32 {
        TILE_SIZE as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(zoom: f64) -> HeatView {
        HeatView {
            centre: LatLon::new(22.07, -159.5),
            zoom,
            size_px: [1280.0, 800.0],
        }
    }

    fn grid(level: u8, value: f32) -> Arc<[f32]> {
        vec![value; heat_grid::sample_count(level)].into()
    }

    /// Settles the view and returns what it asked for.
    fn settle(heat: &mut ContinuousHeat, v: HeatView, t0: Instant) -> Vec<HeatTile> {
        assert_eq!(
            heat.update(Some(v), t0),
            HeatAction::Wait,
            "not settled yet"
        );
        match heat.update(Some(v), t0 + SETTLE) {
            HeatAction::Request(tiles) => tiles,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn asks_once_the_view_settles_and_cancels_when_it_moves() {
        let mut heat = ContinuousHeat::new(egui::Context::default());
        assert!(heat.set_photo(Some("a")));
        assert!(!heat.set_photo(Some("a")));
        let t0 = Instant::now();
        let tiles = settle(&mut heat, view(10.0), t0);
        assert_eq!(
            tiles,
            heat_grid::visible_tiles(view(10.0).centre, 10.0, [1280.0, 800.0])
        );
        heat.sent(7);
        // Asked once per view.
        assert_eq!(
            heat.update(Some(view(10.0)), t0 + SETTLE * 3),
            HeatAction::Wait
        );
        // Moving cancels, and settling again asks again.
        let t1 = t0 + SETTLE * 4;
        assert_eq!(heat.update(Some(view(10.5)), t1), HeatAction::Cancel);
        assert!(!heat.is_waiting());
        assert!(!settle(&mut heat, view(10.5), t1).is_empty());
        heat.sent(8);
        // Zoomed out past the threshold (the caller passes `None`): cancelled.
        assert_eq!(heat.update(None, t1 + SETTLE * 2), HeatAction::Cancel);
        assert!(!view(6.4).is_continuous() && view(6.5).is_continuous());
    }

    #[test]
    fn keeps_the_newest_level_and_ignores_stale_answers() {
        let ctx = egui::Context::default();
        let mut heat = ContinuousHeat::new(ctx);
        heat.set_photo(Some("a"));
        let t0 = Instant::now();
        let tiles = settle(&mut heat, view(10.0), t0);
        heat.sent(3);
        let tile = tiles[0];
        heat.receive(2, "a", tile, 0, grid(0, 0.0)); // an older request
        heat.receive(3, "b", tile, 0, grid(0, 0.0)); // another photo
        assert_eq!(heat.pending_len(), 0);
        heat.receive(3, "a", tile, 0, grid(0, 0.0));
        heat.receive(3, "a", tile, 1, grid(1, 0.0));
        heat.receive(3, "a", tiles[1], 0, grid(0, -20.0)); // nothing visible
        assert_eq!(
            heat.pending_len(),
            2,
            "one entry per tile, its newest level"
        );
        assert_eq!(heat.upload(1), 1);
        assert_eq!(heat.cached_level(tile), Some(1));
        assert_eq!(heat.upload(8), 1);
        assert_eq!(heat.cached_level(tiles[1]), Some(0));
        assert_eq!(heat.visible_tiles_cached(), 1);
        // A known tile draws (or draws nothing); an unknown one falls back to its parent.
        assert!(matches!(heat.piece(tile), Some(Some(_))));
        assert!(matches!(heat.piece(tiles[1]), Some(None)));
        let child = HeatTile::new(11, tile.x * 2 + 1, tile.y * 2);
        match heat.piece(child) {
            Some(Some(piece)) => {
                assert_eq!(piece.uv.min, egui::pos2(0.5, 0.0));
                assert_eq!(piece.uv.size(), egui::vec2(0.5, 0.5));
            }
            _ => panic!("the parent stands in"),
        }
        assert!(heat.piece(HeatTile::new(10, 0, 0)).is_none());
        // Finished tiles are not asked for again; a new photo starts over, the old tiles kept.
        heat.receive(3, "a", tile, 2, grid(2, 0.0));
        heat.upload(8);
        let t1 = t0 + SETTLE * 10;
        heat.update(Some(view(10.0001)), t1);
        let again = settle(&mut heat, view(10.0001), t1);
        assert!(!again.contains(&tile) && again.contains(&tiles[1]));
        assert!(heat.set_photo(Some("b")));
        assert_eq!(heat.cached_level(tile), None);
        assert_eq!(heat.cached_len(), 2);
        heat.set_photo(Some("a"));
        assert_eq!(heat.cached_level(tile), Some(2));
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_the_least_recently_drawn() {
        let mut heat = ContinuousHeat::new(egui::Context::default());
        heat.set_photo(Some("a"));
        heat.sent(1);
        let tile = |i: u32| HeatTile::new(12, i, 7);
        let receive = |heat: &mut ContinuousHeat, i: u32| {
            heat.receive(1, "a", tile(i), 0, grid(0, -20.0));
            heat.upload(1);
        };
        receive(&mut heat, 0);
        for i in 1..MAX_CACHED_TILES as u32 {
            receive(&mut heat, i);
            // Tile 0 stays in use.
            assert!(heat.piece(tile(0)).is_some());
        }
        assert_eq!(heat.cached_len(), MAX_CACHED_TILES);
        receive(&mut heat, MAX_CACHED_TILES as u32);
        assert_eq!(heat.cached_len(), MAX_CACHED_TILES);
        assert!(heat.piece(tile(0)).is_some(), "drawn recently: kept");
        assert!(
            heat.piece(tile(1)).is_none(),
            "the least recently drawn went"
        );
    }

    #[test]
    fn a_failed_photo_leaves_the_gallery_layer() {
        let mut heat = ContinuousHeat::new(egui::Context::default());
        heat.set_photo(Some("a"));
        let t0 = Instant::now();
        settle(&mut heat, view(9.0), t0);
        heat.sent(5);
        heat.fail(4, "a");
        assert!(!heat.has_failed(), "a stale failure");
        heat.fail(5, "a");
        assert!(heat.has_failed());
        assert_eq!(heat.update(Some(view(9.5)), t0), HeatAction::Wait);
    }
}
