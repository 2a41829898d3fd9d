//! Map overlays as walkers layers and plugins: the offline basemap and the heatmap are
//! [`walkers::Tiles`] sources, the markers (EXIF positions, candidates, the accepted location)
//! a [`walkers::Plugin`] that reports what it drew and what was clicked in a [`MapOutput`].

pub mod basemap;
pub mod heat;
pub mod markers;

pub use basemap::BasemapTiles;
pub use heat::HeatTiles;
pub use markers::{DrawnCandidate, MapOutput, MarkersPlugin};

use crate::geo::LatLon;

/// GeoCLIP's `[lat, lon]` to walkers' lon-first `Position`.
pub fn to_position(p: LatLon) -> walkers::Position {
    walkers::lat_lon(p.lat_deg, p.lon_deg)
}

/// walkers' lon-first `Position` to [`LatLon`].
pub fn from_position(p: walkers::Position) -> LatLon {
    LatLon::new(p.y(), p.x())
}
