//! The GPS gallery: candidate `[lat, lon]` points (GeoCLIP ships 100K), their location-encoder
//! features computed once, and an on-disk cache of those features keyed by the hashes of the
//! weights and the gallery, so later runs load them instead of re-encoding.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::heads::{GEO_EMBED_DIM, LocationEncoder};
use super::{ModelError, sha256_bytes};
use crate::geo::LatLon;

/// Points encoded per step while precomputing; bounds memory and paces progress reports.
pub const ENCODE_CHUNK: usize = 4096;
/// Bumped whenever the cached representation changes (v2: the Fourier phase rounded as PyTorch
/// rounds it, one fused multiply-add; v1 caches differ in the last bits and are re-encoded).
const CACHE_FORMAT: &str = "geoloupe-gallery-features-v2";

/// Gallery points in GeoCLIP order, `[lat, lon]` degrees as f32 (as PyTorch reads them).
#[derive(Clone, Debug)]
pub struct Gallery {
    pub coords_lat_lon_deg: Vec<[f32; 2]>,
    pub sha256: String,
    pub path: PathBuf,
}

impl Gallery {
    /// Reads a `LAT,LON` CSV. Columns are found by header name (case-insensitive), so a
    /// `LON,LAT` file is read correctly too; extra columns are ignored. Lines may end in LF or
    /// CRLF, and a UTF-8 byte order mark (what Excel writes with "CSV UTF-8") is skipped.
    pub fn read_csv(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(ModelError::io("read gallery", path))?;
        let invalid = |reason: String| ModelError::Invalid {
            what: "gallery CSV".into(),
            reason,
            path: path.to_owned(),
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| invalid("empty file".into()))?;
        let columns: Vec<String> = header
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_ascii_uppercase())
            .collect();
        let find = |name: &str| columns.iter().position(|c| c == name);
        let (Some(lat_col), Some(lon_col)) = (find("LAT"), find("LON")) else {
            return Err(invalid(format!(
                "header must name LAT and LON columns, found `{header}`"
            )));
        };
        let mut coords = Vec::new();
        for (i, line) in lines {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let parse = |col: usize| -> Result<f32, ModelError> {
                fields
                    .get(col)
                    .and_then(|f| f.parse::<f32>().ok())
                    .ok_or_else(|| {
                        invalid(format!(
                            "line {}: expected numbers in LAT and LON, found `{line}`",
                            i + 1
                        ))
                    })
            };
            let (lat, lon) = (parse(lat_col)?, parse(lon_col)?);
            if !LatLon::new(f64::from(lat), f64::from(lon)).is_valid() {
                return Err(invalid(format!(
                    "line {}: ({lat}, {lon}) is not a valid latitude, longitude",
                    i + 1
                )));
            }
            coords.push([lat, lon]);
        }
        if coords.is_empty() {
            return Err(invalid("no points".into()));
        }
        Ok(Self {
            coords_lat_lon_deg: coords,
            sha256: sha256_bytes(&bytes),
            path: path.to_owned(),
        })
    }

    pub fn len(&self) -> usize {
        self.coords_lat_lon_deg.len()
    }

    pub fn is_empty(&self) -> bool {
        self.coords_lat_lon_deg.is_empty()
    }

    pub fn lat_lon(&self, index: usize) -> Option<LatLon> {
        self.coords_lat_lon_deg
            .get(index)
            .map(|&[lat, lon]| LatLon::new(f64::from(lat), f64::from(lon)))
    }
}

/// The cache file for a given pair of weights and gallery.
pub fn cache_path(cache_dir: &Path, weights_sha256: &str, gallery_sha256: &str) -> PathBuf {
    let key =
        sha256_bytes(format!("{CACHE_FORMAT}\n{weights_sha256}\n{gallery_sha256}").as_bytes());
    cache_dir.join(format!("gallery-{}.safetensors", &key[..16]))
}

/// Encodes every gallery point and L2-normalises the rows: (N, 512). `progress(done, total)`
/// is called after each chunk; returning `false` from `keep_going` cancels.
pub fn encode_gallery(
    encoder: &LocationEncoder,
    gallery: &Gallery,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Tensor, ModelError> {
    let total = gallery.len();
    let mut chunks = Vec::with_capacity(total.div_ceil(ENCODE_CHUNK));
    for (i, chunk) in gallery.coords_lat_lon_deg.chunks(ENCODE_CHUNK).enumerate() {
        let features = encoder
            .forward(chunk)
            .and_then(|f| super::clip::l2_normalize_rows(&f))
            .map_err(ModelError::candle("encoding the gallery"))?;
        chunks.push(features);
        if !progress((i * ENCODE_CHUNK + chunk.len()).min(total), total) {
            return Err(ModelError::Cancelled);
        }
    }
    Tensor::cat(&chunks, 0).map_err(ModelError::candle("joining gallery features"))
}

/// Loads cached features if the file exists and has the gallery's shape.
pub fn load_cached(path: &Path, expected_rows: usize, device: &Device) -> Option<Tensor> {
    let tensors = candle_core::safetensors::load(path, device).ok()?;
    let features = tensors.get("gallery_features")?;
    (features.dims() == [expected_rows, GEO_EMBED_DIM] && features.dtype() == DType::F32)
        .then(|| features.clone())
}

/// Writes features atomically (temporary file, then rename).
pub fn store_cached(path: &Path, features: &Tensor) -> Result<(), ModelError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(ModelError::io("create cache folder", dir))?;
    let tmp = path.with_extension("safetensors.partial");
    features
        .to_device(&Device::Cpu)
        .and_then(|f| f.save_safetensors("gallery_features", &tmp))
        .map_err(ModelError::candle(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(ModelError::io("move cache file into place", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("g.csv");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_lat_lon_and_lon_lat_headers() {
        let dir = tempfile::tempdir().unwrap();
        let g = Gallery::read_csv(&write(dir.path(), "LAT,LON\n10.5,-20.25\n-1,2\n")).unwrap();
        assert_eq!(g.coords_lat_lon_deg, vec![[10.5, -20.25], [-1.0, 2.0]]);
        let g2 = Gallery::read_csv(&write(dir.path(), "lon,lat\n-20.25,10.5\n")).unwrap();
        assert_eq!(g2.coords_lat_lon_deg, vec![[10.5, -20.25]]);
        assert_ne!(g.sha256, g2.sha256);
    }

    /// LF, CRLF and a UTF-8 byte order mark (Excel's "CSV UTF-8") all read the same points.
    #[test]
    fn reads_lf_crlf_and_a_byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        let expected = vec![[10.5, -20.25], [-1.0, 2.0]];
        for text in [
            "LAT,LON\n10.5,-20.25\n-1,2\n",
            "LAT,LON\r\n10.5,-20.25\r\n-1,2\r\n",
            "\u{feff}LAT,LON\r\n10.5,-20.25\r\n-1,2",
            "\u{feff}\"LAT\",\"LON\"\n10.5,-20.25\n-1,2\n",
        ] {
            let g = Gallery::read_csv(&write(dir.path(), text)).unwrap();
            assert_eq!(g.coords_lat_lon_deg, expected, "{text:?}");
        }
        // The columns are found by name behind the mark too.
        let g =
            Gallery::read_csv(&write(dir.path(), "\u{feff}LON,LAT\r\n-20.25,10.5\r\n")).unwrap();
        assert_eq!(g.coords_lat_lon_deg, vec![[10.5, -20.25]]);
    }

    #[test]
    fn rejects_bad_rows_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let err = Gallery::read_csv(&write(dir.path(), "LAT,LON\n1,2\n95,0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        let err = Gallery::read_csv(&write(dir.path(), "X,Y\n1,2\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("LAT and LON"), "{err}");
        assert!(Gallery::read_csv(&write(dir.path(), "LAT,LON\n")).is_err());
    }

    #[test]
    fn cache_key_depends_on_both_hashes() {
        let d = Path::new("/c");
        assert_ne!(cache_path(d, "a", "b"), cache_path(d, "a", "c"));
        assert_ne!(cache_path(d, "a", "b"), cache_path(d, "x", "b"));
        assert_eq!(cache_path(d, "a", "b"), cache_path(d, "a", "b"));
    }
}
