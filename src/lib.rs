//! geoloupe: where was this photo taken? GeoCLIP, run locally.
//!
//! The crate is split by domain (see `ARCHITECTURE.md`):
//! - [`geo`]: pure geometry and ranking (no candle, no I/O),
//! - [`model`]: model files, preprocessing, the CLIP tower, GeoCLIP's heads, the gallery and the engine,
//! - [`cli`]: the headless command line.

pub mod cli;
pub mod geo;
pub mod model;
