//! Map overlays drawn by walkers plugins: the selected photo's claims with their distance
//! rings ([`claim`]), the markers (EXIF positions, candidates, the accepted
//! location) report what they drew and what was clicked in a [`crate::app::map::MapOutput`].
//! The tile layers (offline basemap, heatmap) are map state and live in [`crate::app::map`].

pub mod claim;
pub mod labels;
pub mod markers;
pub mod region;
pub mod track;

pub use claim::ClaimPlugin;
pub use labels::PlaceLabelsPlugin;
pub use markers::{DraggedPhotos, MarkersPlugin};
pub use region::RegionPlugin;
pub use track::TrackPlugin;
