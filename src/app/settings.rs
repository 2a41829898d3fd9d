//! What the app remembers between runs (through eframe's storage): a small serde struct, apart
//! from the runtime handles in [`super::App`].

use serde::{Deserialize, Serialize};

use crate::model::{DeviceChoice, Precision};

/// The key under which [`Settings`] live in eframe's storage.
pub const SETTINGS_KEY: &str = "geoloupe.settings";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewMode {
    #[default]
    Grid,
    List,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    #[default]
    Path,
    Name,
    Date,
    State,
}

/// Which photos the browser lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateFilter {
    #[default]
    All,
    HasExifGps,
    /// Photos without a valid EXIF GPS fix (the ones the model is for).
    NoExifGps,
    Located,
    NotLocated,
    Accepted,
    Failed,
}

impl StateFilter {
    pub const ALL: [Self; 7] = [
        Self::All,
        Self::HasExifGps,
        Self::NoExifGps,
        Self::Located,
        Self::NotLocated,
        Self::Accepted,
        Self::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::All => "All photos",
            Self::HasExifGps => "With EXIF GPS",
            Self::NoExifGps => "Without EXIF GPS",
            Self::Located => "Located",
            Self::NotLocated => "Not located",
            Self::Accepted => "Accepted",
            Self::Failed => "Errors",
        }
    }
}

/// Persisted settings. Unknown or missing fields fall back to defaults (`serde(default)`), so
/// an older or newer settings blob never stops the app from starting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// When off, nothing touches the network: no map tiles, no downloads.
    pub network_enabled: bool,
    pub show_heatmap: bool,
    /// 0 (invisible) to 1.
    pub heatmap_opacity: f32,
    pub show_exif_markers: bool,
    pub top_k: usize,
    pub device: DeviceChoice,
    /// Exact (f32, the default) or fast mode (bf16 matrix products in the image tower).
    pub precision: Precision,
    pub view_mode: ViewMode,
    pub sort: SortKey,
    pub sort_descending: bool,
    pub state_filter: StateFilter,
    /// Only photos whose name contains this (case-insensitive).
    pub name_filter: String,
    /// Only photos below this folder, when set.
    pub folder_filter: Option<std::path::PathBuf>,
    /// Thumbnail cell size in the grid, in points.
    pub thumbnail_size: f32,
    /// The folders and files opened last, reopened at start when no paths are given.
    pub last_opened: Vec<std::path::PathBuf>,
    /// How exports write each photo's path: relative to the exported file (the default), the
    /// file name only, or in full.
    pub export_paths: crate::export::PathStyle,
    /// "Write XMP sidecars" also writes the place names of *accepted* locations as IPTC
    /// City/State/Country/CountryCode (never for an estimate nobody accepted).
    pub xmp_iptc_location: bool,
    /// Refine each candidate on GeoCLIP's continuous location encoder (a grid search around
    /// the gallery point down to ~100 m; ~0.2 s a photo for 5 candidates on 2 cores).
    pub refine_candidates: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            network_enabled: true,
            show_heatmap: true,
            heatmap_opacity: 0.7,
            show_exif_markers: true,
            top_k: 5,
            device: DeviceChoice::Cpu,
            precision: Precision::Exact,
            view_mode: ViewMode::Grid,
            sort: SortKey::Path,
            sort_descending: false,
            state_filter: StateFilter::All,
            name_filter: String::new(),
            folder_filter: None,
            thumbnail_size: 112.0,
            last_opened: Vec::new(),
            export_paths: crate::export::PathStyle::default(),
            xmp_iptc_location: true,
            refine_candidates: true,
        }
    }
}

impl Settings {
    /// Clamps values a hand-edited or old settings blob could have out of range.
    pub fn sanitised(mut self) -> Self {
        self.top_k = self.top_k.clamp(1, 100);
        self.heatmap_opacity = if self.heatmap_opacity.is_finite() {
            self.heatmap_opacity.clamp(0.0, 1.0)
        } else {
            0.7
        };
        self.thumbnail_size = if self.thumbnail_size.is_finite() {
            self.thumbnail_size.clamp(48.0, 256.0)
        } else {
            112.0
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_tolerate_missing_fields() {
        let s = Settings {
            network_enabled: false,
            top_k: 7,
            ..Settings::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        let back: Settings = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let partial: Settings = serde_json::from_str(r#"{"top_k": 1000}"#).unwrap();
        assert!(partial.network_enabled);
        assert!(
            partial.xmp_iptc_location,
            "IPTC location of accepted locations: on"
        );
        assert_eq!(partial.sanitised().top_k, 100);
    }
}
