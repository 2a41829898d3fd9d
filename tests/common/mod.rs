//! Shared test setup: the real GeoCLIP heads and gallery imported from the geoclip 1.3.0 wheel,
//! and the committed fixtures (tests/fixtures, made by tests/fixtures/make_fixtures.py).
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use std::path::PathBuf;
use std::sync::OnceLock;

use geoloupe::model::DeviceChoice;
use geoloupe::model::files::{self, DataDirs};

#[cfg(feature = "app")]
pub mod app;

/// The repository: `CARGO_MANIFEST_DIR` at run time when set (`cargo test` sets it;
/// scripts/gpu-check.sh does for a test binary built on another machine), else where the test
/// was built.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Scratch space kept between runs: `CARGO_TARGET_TMPDIR` at run time when set (as for
/// [`manifest_dir`]), else the build's.
pub fn target_tmpdir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

pub fn fixtures() -> PathBuf {
    manifest_dir().join("tests").join("fixtures")
}

pub fn tiny_clip() -> PathBuf {
    fixtures().join("tiny_clip")
}

/// The geoclip wheel: `$GEOCLIP_WHEEL`, else `target/downloads/geoclip-1.3.0-py3-none-any.whl`
/// (where `scripts/test.sh` puts it).
pub fn wheel() -> PathBuf {
    let path = std::env::var_os("GEOCLIP_WHEEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            manifest_dir()
                .join("target")
                .join("downloads")
                .join("geoclip-1.3.0-py3-none-any.whl")
        });
    assert!(
        path.is_file(),
        "the real GeoCLIP weights are needed: run `pip download --no-deps geoclip==1.3.0 -d target/downloads` \
         (scripts/test.sh does this) or set GEOCLIP_WHEEL; not found: {}",
        path.display()
    );
    path
}

/// A data dir with the real release imported from the wheel, shared by the tests of one binary
/// (and, through the gallery cache, by later runs).
pub fn data_dirs() -> &'static DataDirs {
    static DIRS: OnceLock<DataDirs> = OnceLock::new();
    DIRS.get_or_init(|| {
        let root = target_tmpdir().join("geoloupe-data");
        let dirs = DataDirs::resolve(Some(&root)).expect("data dirs");
        if files::Release::open(&dirs.release_dir()).is_err() {
            files::import(&wheel(), &dirs).expect("import the geoclip wheel");
        }
        dirs
    })
}

/// The device the model's parity tests run on: `GEOLOUPE_TEST_DEVICE` (`cpu`, the default,
/// `cuda` or `metal`; the build needs that feature: `cargo test --features cuda --test parity`).
pub fn test_device_choice() -> DeviceChoice {
    match std::env::var("GEOLOUPE_TEST_DEVICE") {
        Ok(name) if !name.is_empty() => <DeviceChoice as clap::ValueEnum>::from_str(&name, true)
            .unwrap_or_else(|e| panic!("GEOLOUPE_TEST_DEVICE={name}: {e} (cpu, cuda or metal)")),
        _ => DeviceChoice::Cpu,
    }
}

/// The [`test_device_choice`]'s device, opened once.
pub fn test_device() -> &'static candle_core::Device {
    static DEVICE: OnceLock<candle_core::Device> = OnceLock::new();
    DEVICE.get_or_init(|| {
        let choice = test_device_choice();
        let device = choice
            .device()
            .unwrap_or_else(|e| panic!("GEOLOUPE_TEST_DEVICE={choice:?}: {e}"));
        eprintln!("model tests run on {device:?}");
        device
    })
}

/// Expected outputs recorded from PyTorch.
pub fn expected() -> &'static std::collections::HashMap<String, candle_core::Tensor> {
    static EXPECTED: OnceLock<std::collections::HashMap<String, candle_core::Tensor>> =
        OnceLock::new();
    EXPECTED.get_or_init(|| {
        candle_core::safetensors::load(
            fixtures().join("expected.safetensors"),
            &candle_core::Device::Cpu,
        )
        .expect("tests/fixtures/expected.safetensors")
    })
}

pub fn expected_f32(name: &str) -> Vec<f32> {
    expected()
        .get(name)
        .unwrap_or_else(|| panic!("fixture tensor {name}"))
        .flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .and_then(|t| t.to_vec1())
        .unwrap()
}

/// The fixture images and their file names.
pub const IMAGES: &[(&str, &str)] = &[
    ("landscape", "landscape.jpg"),
    ("portrait", "portrait.png"),
    ("rgba", "rgba.png"),
    ("grey", "grey.png"),
    ("small", "small.png"),
    ("rgb16", "rgb16.png"),
    ("rotated", "rotated.jpg"),
    ("kauai", "kauai.jpg"),
];

pub fn image_path(file: &str) -> PathBuf {
    fixtures().join("images").join(file)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Parses CSV (RFC 4180 quoting) into rows of fields.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    rows
}

/// GeoCLIP with the tiny test backbone and the real heads and gallery, exact mode, on the test
/// device: loaded once per test binary.
pub fn tiny_engine() -> &'static geoloupe::model::GeoClip {
    static ENGINE: OnceLock<geoloupe::model::GeoClip> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut paths = geoloupe::model::engine::ModelPaths::installed(data_dirs());
        paths.backbone_dir = tiny_clip();
        geoloupe::model::GeoClip::load(
            &paths,
            test_device(),
            geoloupe::model::Precision::Exact,
            &mut |_| true,
        )
        .expect("load GeoCLIP with the tiny backbone")
    })
}
