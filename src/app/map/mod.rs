//! The map's state: walkers' memory (centre, zoom), the tile layers (the offline basemap, the
//! OpenStreetMap tiles while the network is on, the heatmap of the selected photo), whether
//! OpenStreetMap tiles arrive, and what the markers plugin reported last frame ([`MapOutput`]).
//! Drawing is `ui::map`'s; this is what it reads and writes.

pub mod basemap;
pub mod cluster;
pub mod continuous;
pub mod fit;
pub mod heat;
pub mod labels;

use std::time::{Duration, Instant};

use egui::Pos2;

pub use basemap::BasemapTiles;
pub use continuous::{ContinuousHeat, HeatLayer, HeatView};
pub use heat::HeatTiles;

use crate::geo::LatLon;

/// GeoCLIP's `[lat, lon]` to walkers' lon-first `Position`.
pub fn to_position(p: LatLon) -> walkers::Position {
    walkers::lat_lon(p.lat_deg, p.lon_deg)
}

/// walkers' lon-first `Position` to [`LatLon`].
pub fn from_position(p: walkers::Position) -> LatLon {
    LatLon::new(p.y(), p.x())
}

/// A candidate marker as drawn this frame.
#[derive(Clone, Debug, PartialEq)]
pub struct DrawnCandidate {
    pub rank: usize,
    pub position: LatLon,
    pub probability: f32,
    /// Distance to the photo's EXIF position, when it has one.
    pub distance_to_exif_km: Option<f64>,
    /// Where on screen (points).
    pub screen: Pos2,
}

/// What the markers plugin drew and what happened, for one frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapOutput {
    pub candidates: Vec<DrawnCandidate>,
    /// EXIF positions on the map (all photos that have one, when shown; drawn where visible).
    pub exif_markers: usize,
    /// Where the accepted location was drawn, if any.
    pub accepted_screen: Option<Pos2>,
    /// The rank of the candidate the user clicked.
    pub clicked_rank: Option<usize>,
    /// The rank of the candidate under the pointer.
    pub hovered_rank: Option<usize>,
    /// A location placed by hand (click in place mode, or the accepted pin dropped).
    pub placed: Option<LatLon>,
    /// Photos dragged from the browser and dropped on the map: their indices and where.
    pub dropped: Option<(Vec<usize>, LatLon)>,
    /// The EXIF markers drawn as one, with how many each holds.
    pub exif_clusters: Vec<usize>,
}

/// Map state: walkers' memory, the tile layers and what the markers plugin reported.
pub struct MapState {
    pub memory: walkers::MapMemory,
    pub basemap: BasemapTiles,
    /// OpenStreetMap, only while the network is on (dropped when switched off).
    pub osm: Option<walkers::HttpTiles>,
    pub heat: HeatTiles,
    /// The continuous heatmap zoomed in (from the location encoder, over the visible tiles).
    pub continuous: ContinuousHeat,
    pub output: MapOutput,
    /// Clicking the map places the selected photo.
    pub place_mode: bool,
    /// Whether OpenStreetMap tiles arrive.
    pub tile_watch: TileWatch,
    /// Arrow keys pan the map (it was clicked last) instead of moving the browser's selection.
    pub keys_to_map: bool,
    /// Where the map was drawn last frame (for "fit", which needs the viewport's size).
    pub viewport: Option<egui::Rect>,
    /// The place search box on the map.
    pub search: PlaceSearch,
    /// The place names on the offline basemap, for the current view.
    pub labels: labels::LabelCache,
}

/// The place search box: what is typed and the pick list it gave.
#[derive(Debug, Default)]
pub struct PlaceSearch {
    pub query: String,
    /// The query `hits` were found for.
    pub searched: String,
    pub hits: Vec<crate::geo::place_search::PlaceHit>,
}

/// The zoom "fit" uses at most (one point, or points on top of each other).
pub const FIT_MAX_ZOOM: f64 = 12.0;
/// Room left around the points "fit" frames, in points.
pub const FIT_MARGIN_PX: f32 = 48.0;

impl MapState {
    pub fn new(ctx: &egui::Context) -> Self {
        // The place list (search box, basemap names) is unpacked off the UI thread; the thread
        // ends by itself once it is built (detached: nothing to cancel or wait for).
        if crate::geo::place_search::PlaceIndex::embedded_if_ready().is_none() {
            let repaint = ctx.clone();
            let _ = std::thread::Builder::new()
                .name("place-search".into())
                .spawn(move || {
                    crate::geo::place_search::warm_up_place_search();
                    repaint.request_repaint();
                });
        }
        let mut memory = walkers::MapMemory::default();
        let _ = memory.set_zoom(2.0);
        Self {
            memory,
            basemap: BasemapTiles::new(ctx.clone()),
            osm: None,
            heat: HeatTiles::new(ctx.clone()),
            continuous: ContinuousHeat::new(ctx.clone()),
            output: MapOutput::default(),
            place_mode: false,
            tile_watch: TileWatch::default(),
            keys_to_map: false,
            viewport: None,
            search: PlaceSearch::default(),
            labels: labels::LabelCache::default(),
        }
    }

    pub fn center_at(&mut self, at: LatLon) {
        self.memory.center_at(to_position(at));
    }

    /// The map's centre (walkers follows "my position", the home, until moved).
    pub fn centre(&self, home: LatLon) -> LatLon {
        self.memory.detached().map(from_position).unwrap_or(home)
    }

    /// Centres and zooms so every point shows (see [`fit::fit_view`]); false when there is no
    /// valid point.
    pub fn fit(&mut self, points: &[LatLon]) -> bool {
        let size = self
            .viewport
            .map(|r| [r.width(), r.height()])
            .unwrap_or([800.0, 600.0]);
        match fit::fit_view(points, size, FIT_MARGIN_PX, FIT_MAX_ZOOM) {
            Some(view) => {
                self.center_at(view.centre);
                let _ = self.memory.set_zoom(view.zoom);
                true
            }
            None => false,
        }
    }

    /// Moves the view by `delta_px` screen points (positive x: the map content moves left, i.e.
    /// the view goes east), wrapping around the antimeridian.
    pub fn pan_by(&mut self, home: LatLon, delta_px: egui::Vec2) {
        let world_px = 256.0 * 2f64.powf(self.memory.zoom());
        let (x, y) = crate::geo::heatmap::mercator_unit(self.centre(home));
        let x = x + f64::from(delta_px.x) / world_px;
        let y = (y + f64::from(delta_px.y) / world_px).clamp(0.0, 1.0);
        let at = crate::geo::heatmap::mercator_unit_to_lat_lon(x.rem_euclid(1.0), y);
        self.center_at(at);
    }

    /// Puts a centre panned past 180° back into `[-180, 180]`, so the map keeps going round.
    /// True when it moved. Not while the map glides after a drag (that would stop it; it is
    /// wrapped when it comes to rest).
    pub fn wrap_centre(&mut self) -> bool {
        if self.memory.animating() {
            return false;
        }
        match self.memory.detached() {
            Some(p) if p.x().abs() > 180.0 => {
                let lon_deg = (p.x() + 180.0).rem_euclid(360.0) - 180.0;
                self.center_at(LatLon::new(p.y(), lon_deg));
                true
            }
            _ => false,
        }
    }
}

/// Notices when OpenStreetMap tiles don't arrive (no network, a proxy, the server down): walkers
/// logs failed fetches and never retries them, and the basemap underneath hides the gap, so
/// without this the map would look offline while the switch says online.
#[derive(Debug, Default)]
pub struct TileWatch {
    missing_since: Option<Instant>,
}

impl TileWatch {
    /// How long the tile under the map's centre may be missing before the map says so.
    pub const GRACE: Duration = Duration::from_secs(8);

    /// Called each frame with whether the centre tile is there; true once it has been missing
    /// for [`Self::GRACE`].
    pub fn update(&mut self, now: Instant, centre_tile_loaded: bool) -> bool {
        if centre_tile_loaded {
            self.missing_since = None;
            return false;
        }
        let since = *self.missing_since.get_or_insert(now);
        now.duration_since(since) >= Self::GRACE
    }

    /// Forget the wait (the network was switched off).
    pub fn reset(&mut self) {
        self.missing_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    const HOME: LatLon = LatLon::new(20.0, 0.0);

    #[test]
    fn panning_east_past_the_antimeridian_comes_round_from_the_west() {
        let mut state = MapState::new(&egui::Context::default());
        state.center_at(LatLon::new(-17.0, 179.5));
        state.memory.set_zoom(6.0).expect("zoom 6");
        // 256 * 2^6 points per world: 200 points is 4.4° of longitude.
        state.pan_by(HOME, egui::vec2(200.0, 0.0));
        let centre = state.centre(HOME);
        assert_abs_diff_eq!(centre.lon_deg, 179.5 + 4.39453125 - 360.0, epsilon = 1e-6);
        assert_abs_diff_eq!(centre.lat_deg, -17.0, epsilon = 1e-6);
        // And back west.
        state.pan_by(HOME, egui::vec2(-200.0, 0.0));
        assert_abs_diff_eq!(state.centre(HOME).lon_deg, 179.5, epsilon = 1e-6);
        // Down moves south, and never off the map.
        state.pan_by(HOME, egui::vec2(0.0, 1e9));
        assert!(state.centre(HOME).lat_deg < -85.0);
    }

    #[test]
    fn a_centre_dragged_past_180_is_wrapped_back() {
        let mut state = MapState::new(&egui::Context::default());
        state.memory.center_at(walkers::lon_lat(190.0, 10.0));
        assert!(state.wrap_centre());
        assert_abs_diff_eq!(state.centre(HOME).lon_deg, -170.0, epsilon = 1e-9);
        assert_abs_diff_eq!(state.centre(HOME).lat_deg, 10.0, epsilon = 1e-9);
        state.memory.center_at(walkers::lon_lat(-200.0, 10.0));
        assert!(state.wrap_centre());
        assert_abs_diff_eq!(state.centre(HOME).lon_deg, 160.0, epsilon = 1e-9);
        assert!(!state.wrap_centre());
    }

    #[test]
    fn fit_uses_the_last_viewport() {
        let mut state = MapState::new(&egui::Context::default());
        state.viewport = Some(egui::Rect::from_min_size(
            egui::pos2(0.0, 0.0),
            egui::vec2(1000.0, 700.0),
        ));
        assert!(!state.fit(&[]));
        assert!(state.fit(&[LatLon::new(48.85, 2.35), LatLon::new(52.52, 13.40)]));
        let wide = state.memory.zoom();
        state.viewport = Some(egui::Rect::from_min_size(
            egui::pos2(0.0, 0.0),
            egui::vec2(300.0, 300.0),
        ));
        assert!(state.fit(&[LatLon::new(48.85, 2.35), LatLon::new(52.52, 13.40)]));
        assert!(
            state.memory.zoom() < wide,
            "a smaller map zooms out further"
        );
    }
}
