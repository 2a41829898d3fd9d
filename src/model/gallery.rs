//! The GPS gallery: candidate `[lat, lon]` points (GeoCLIP ships 100K), their location-encoder
//! features computed once, and an on-disk cache of those features keyed by the hashes of the
//! weights and the gallery, so later runs load them instead of re-encoding.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::heads::{GEO_EMBED_DIM, LocationEncoder};
use super::weights::{WeightFile, with_cpu_f32};
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

/// Encodes every gallery point and L2-normalises the rows: (N, 512). Chunk by chunk into the
/// one (N, 512) buffer the result keeps, so nothing else of that size is ever held.
/// `progress(done, total)` is called after each chunk; returning `false` cancels.
pub fn encode_gallery(
    encoder: &LocationEncoder,
    gallery: &Gallery,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Tensor, ModelError> {
    encode_gallery_in_chunks(encoder, gallery, ENCODE_CHUNK, progress)
}

/// [`encode_gallery`] with `chunk` points a step.
pub fn encode_gallery_in_chunks(
    encoder: &LocationEncoder,
    gallery: &Gallery,
    chunk: usize,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Tensor, ModelError> {
    let total = gallery.len();
    let chunk = chunk.max(1);
    let mut features = vec![0f32; total * GEO_EMBED_DIM];
    let mut done = 0;
    for (points, out) in gallery
        .coords_lat_lon_deg
        .chunks(chunk)
        .zip(features.chunks_mut(chunk * GEO_EMBED_DIM))
    {
        encoder
            .forward(points)
            .and_then(|f| super::clip::l2_normalize_rows(&f))
            .and_then(|f| f.to_device(&Device::Cpu)?.contiguous())
            .and_then(|f| with_cpu_f32(&f, |f| out.copy_from_slice(f)))
            .map_err(ModelError::candle("encoding the gallery"))?;
        done += points.len();
        if !progress(done, total) {
            return Err(ModelError::Cancelled);
        }
    }
    Tensor::from_vec(features, (total, GEO_EMBED_DIM), &Device::Cpu)
        .and_then(|f| f.to_device(encoder.device()))
        .map_err(ModelError::candle("gallery features"))
}

/// The tensor's name in a cache file.
const CACHE_TENSOR: &str = "gallery_features";

/// Loads cached features if the file exists and holds f32 features of the gallery's shape.
/// Read straight into the tensor's buffer (no memory map left resident, no second copy).
pub fn load_cached(path: &Path, expected_rows: usize, device: &Device) -> Option<Tensor> {
    let file = WeightFile::open(path, device).ok()?;
    if file.dtype(CACHE_TENSOR) != Some("F32") {
        return None;
    }
    let shape = [expected_rows, GEO_EMBED_DIM];
    let values = file.read_f32(CACHE_TENSOR, &shape).ok()?;
    Tensor::from_vec(values, &shape, &Device::Cpu)
        .and_then(|t| t.to_device(device))
        .ok()
}

/// Writes features atomically (temporary file, then rename), as a safetensors file with one
/// f32 tensor `gallery_features`, streamed from the tensor's own buffer.
pub fn store_cached(path: &Path, features: &Tensor) -> Result<(), ModelError> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(ModelError::io("create cache folder", dir))?;
    // A temporary name of this writer's own: two processes encoding the same gallery at once
    // (tests, several `locate`s, workers sharing a cache) each finish their file, and either
    // rename leaves a whole one in place.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let write_id = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!(
        "safetensors.partial-{}-{write_id}",
        std::process::id()
    ));
    let features = features
        .to_device(&Device::Cpu)
        .and_then(|f| f.contiguous())
        .map_err(ModelError::candle("reading gallery features"))?;
    let dims = features.dims().to_vec();
    let bytes = 4 * features.elem_count();
    let mut header = serde_json::json!({
        CACHE_TENSOR: { "dtype": "F32", "shape": dims, "data_offsets": [0, bytes] }
    })
    .to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(header.as_bytes())?;
        let mut buf = Vec::with_capacity(4 * 65536);
        let written = with_cpu_f32(&features, |values| {
            for chunk in values.chunks(65536) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
                out.write_all(&buf)?;
            }
            Ok::<_, std::io::Error>(())
        })
        .map_err(std::io::Error::other)?;
        written?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ModelError::io("write", &tmp)(e));
    }
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

    /// Deterministic points all over the globe, poles and the antimeridian included.
    fn points(n: usize) -> Gallery {
        let coords = (0..n)
            .map(|i| {
                let t = i as f32 / n as f32;
                [180.0 * t - 90.0, (i as f32 * 137.507_77) % 360.0 - 180.0]
            })
            .collect();
        Gallery {
            coords_lat_lon_deg: coords,
            sha256: String::new(),
            path: PathBuf::new(),
        }
    }

    fn encoder() -> LocationEncoder {
        let random = crate::model::weights::RandomWeights::new(&Device::Cpu);
        LocationEncoder::new(&random, "location_encoder.").unwrap()
    }

    fn rows(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Encoding chunk by chunk into one buffer gives the features of encoding every point in
    /// one step (what the cache held before chunks), whatever the chunk size.
    #[test]
    fn the_chunked_encode_equals_the_one_shot_encode() {
        let gallery = points(3000);
        let encoder = encoder();
        let one_shot = encoder
            .forward(&gallery.coords_lat_lon_deg)
            .and_then(|f| crate::model::clip::l2_normalize_rows(&f))
            .unwrap();
        let one_shot = rows(&one_shot);
        for chunk in [1000, 1024, ENCODE_CHUNK, 7] {
            let mut reports = Vec::new();
            let chunked =
                encode_gallery_in_chunks(&encoder, &gallery, chunk, &mut |done, total| {
                    reports.push((done, total));
                    true
                })
                .unwrap();
            assert_eq!(chunked.dims(), [3000, GEO_EMBED_DIM]);
            let chunked = rows(&chunked);
            let max_diff = one_shot
                .iter()
                .zip(&chunked)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(max_diff <= 1e-6, "chunk {chunk}: max difference {max_diff}");
            assert_eq!(reports.len(), 3000usize.div_ceil(chunk), "chunk {chunk}");
            assert_eq!(reports.last(), Some(&(3000, 3000)));
        }
    }

    #[test]
    fn a_cancelled_encode_stops_after_the_chunk() {
        let gallery = points(300);
        let mut calls = 0;
        let result = encode_gallery_in_chunks(&encoder(), &gallery, 100, &mut |done, _| {
            calls += 1;
            done < 100
        });
        assert!(matches!(result, Err(ModelError::Cancelled)));
        assert_eq!(calls, 1);
    }

    /// The cache written from the features' own buffer reads back bit for bit, by this module
    /// and by candle's safetensors loader; a cache of another size is not used.
    #[test]
    fn the_cache_round_trips_and_candle_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let features = encode_gallery(&encoder(), &points(50), &mut |_, _| true).unwrap();
        let path = dir.path().join("gallery").join("g.safetensors");
        store_cached(&path, &features).unwrap();
        let back = load_cached(&path, 50, &Device::Cpu).unwrap();
        let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(rows(&back)), bits(rows(&features)));
        let candle = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(
            bits(rows(&candle["gallery_features"])),
            bits(rows(&features))
        );
        assert!(load_cached(&path, 49, &Device::Cpu).is_none());
        assert!(load_cached(&dir.path().join("none"), 50, &Device::Cpu).is_none());
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["g.safetensors"], "no temporary file left");
    }

    /// Two processes (or threads) that encode the same gallery at once both store the cache:
    /// each writes its own temporary file, and either rename leaves a whole file. (With one
    /// shared temporary name, one writer's rename took the other's file away: "could not move
    /// cache file into place", seen when CI's test processes started together.)
    #[test]
    fn writers_storing_the_same_cache_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.safetensors");
        let values: Vec<f32> = (0..200 * GEO_EMBED_DIM).map(|i| i as f32).collect();
        let features = Tensor::from_vec(values, (200, GEO_EMBED_DIM), &Device::Cpu).unwrap();
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        for _ in 0..10 {
                            store_cached(&path, &features)?;
                        }
                        Ok::<_, ModelError>(())
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap().unwrap();
            }
        });
        assert!(load_cached(&path, 200, &Device::Cpu).is_some());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name != "g.safetensors")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn cache_key_depends_on_both_hashes() {
        let d = Path::new("/c");
        assert_ne!(cache_path(d, "a", "b"), cache_path(d, "a", "c"));
        assert_ne!(cache_path(d, "a", "b"), cache_path(d, "x", "b"));
        assert_eq!(cache_path(d, "a", "b"), cache_path(d, "a", "b"));
    }
}
