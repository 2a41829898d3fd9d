//! geoloupe: where was this photo taken? GeoCLIP, run locally.
//!
//! The crate is split by domain (see `ARCHITECTURE.md`):
//! - [`geo`]: pure geometry and ranking (no candle, no I/O),
//! - [`platform`]: Windows path text and UTF-16 names as pure functions, testable everywhere,
//! - [`model`]: model files, preprocessing, the CLIP tower, GeoCLIP's heads, the gallery and the engine,
//! - [`library`]: scanning photos, EXIF, thumbnails, the SQLite store of results and decisions,
//! - [`track`]: GPS tracks (GPX, KML, NMEA) read as streams, photos placed on them by time as
//!   exiftool's `-geotag` does, neighbouring photos as fixes,
//! - [`export`]: GPX, CSV, GeoJSON, XMP sidecars and EXIF GPS write-back,
//! - [`cli`]: the headless command line,
//! - [`app`] and [`ui`]: the desktop app (eframe/egui, walkers map; the `app` feature, on by
//!   default: without it geoloupe is the headless command line).

#[cfg(feature = "app")]
pub mod app;
pub mod cli;
pub mod domain;
pub mod export;
pub mod geo;
pub mod library;
pub mod model;
pub mod platform;
pub mod runtime;
pub mod threads;
pub mod track;
#[cfg(feature = "app")]
pub mod ui;
