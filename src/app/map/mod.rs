//! The map's state: walkers' memory (centre, zoom), the tile layers (the offline basemap, the
//! OpenStreetMap tiles while the network is on, the heatmap of the selected photo), whether
//! OpenStreetMap tiles arrive, and what the markers plugin reported last frame ([`MapOutput`]).
//! Drawing is `ui::map`'s; this is what it reads and writes.

pub mod basemap;
pub mod heat;

use std::time::{Duration, Instant};

use egui::Pos2;

pub use basemap::BasemapTiles;
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
}

/// Map state: walkers' memory, the tile layers and what the markers plugin reported.
pub struct MapState {
    pub memory: walkers::MapMemory,
    pub basemap: BasemapTiles,
    /// OpenStreetMap, only while the network is on (dropped when switched off).
    pub osm: Option<walkers::HttpTiles>,
    pub heat: HeatTiles,
    pub output: MapOutput,
    /// Clicking the map places the selected photo.
    pub place_mode: bool,
    /// Whether OpenStreetMap tiles arrive.
    pub tile_watch: TileWatch,
}

impl MapState {
    pub fn new(ctx: &egui::Context) -> Self {
        let mut memory = walkers::MapMemory::default();
        let _ = memory.set_zoom(2.0);
        Self {
            memory,
            basemap: BasemapTiles::new(ctx.clone()),
            osm: None,
            heat: HeatTiles::new(ctx.clone()),
            output: MapOutput::default(),
            place_mode: false,
            tile_watch: TileWatch::default(),
        }
    }

    pub fn center_at(&mut self, at: LatLon) {
        self.memory.center_at(to_position(at));
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
