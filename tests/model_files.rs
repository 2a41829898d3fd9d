//! Model files: importing the real geoclip wheel, the release-format round trip, and clear
//! errors (naming the tensor and the file) for missing or mis-shaped weights.
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use common::*;
use geoloupe::model::ModelError;
use geoloupe::model::clip::{ClipVision, ClipVisionConfig};
use geoloupe::model::files::{self, Backbone, DataDirs, Manifest, Release};
use geoloupe::model::weights::WeightFile;

#[test]
fn wheel_import_writes_the_release_format() {
    let dirs = data_dirs();
    let release = Release::open(&dirs.release_dir()).unwrap();
    assert_eq!(release.config, files::ReleaseConfig::geoclip_default());
    let weights = WeightFile::open(&release.weights_path, &Device::Cpu).unwrap();
    let shapes = weights.shapes();
    assert_eq!(shapes.len(), files::release_expected_tensors().len());
    assert_eq!(shapes["logit_scale"], Vec::<usize>::new());
    assert_eq!(shapes["image_encoder.mlp.0.weight"], vec![768, 768]);
    assert_eq!(shapes["location_encoder.LocEnc2.capsule.0.b"], vec![256, 2]);
    let gallery = std::fs::read_to_string(&release.gallery_path).unwrap();
    assert!(gallery.starts_with("LAT,LON"));
    let manifest = Manifest::read(&dirs.release_dir()).unwrap();
    manifest.verify(&dirs.release_dir()).unwrap();
}

#[test]
fn release_folder_round_trip_is_identical() {
    let dirs = data_dirs();
    let other = tempfile::tempdir().unwrap();
    let other_dirs = DataDirs::resolve(Some(other.path())).unwrap();
    files::import(&dirs.release_dir(), &other_dirs).unwrap();
    for name in [files::CONFIG_FILE, files::WEIGHTS_FILE, files::GALLERY_FILE] {
        let a = std::fs::read(dirs.release_dir().join(name)).unwrap();
        let b = std::fs::read(other_dirs.release_dir().join(name)).unwrap();
        assert!(a == b, "{name} differs after re-import");
    }
    // And the tensors read back equal the wheel's.
    let a =
        candle_core::safetensors::load(dirs.release_dir().join(files::WEIGHTS_FILE), &Device::Cpu)
            .unwrap();
    let b = candle_core::safetensors::load(
        other_dirs.release_dir().join(files::WEIGHTS_FILE),
        &Device::Cpu,
    )
    .unwrap();
    for (name, t) in &a {
        let d = (t - &b[name])
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{name}");
    }
}

#[test]
fn backbone_folder_imports_and_validates() {
    let other = tempfile::tempdir().unwrap();
    let dirs = DataDirs::resolve(Some(other.path())).unwrap();
    let report = files::import(&tiny_clip(), &dirs).unwrap();
    assert_eq!(report.kind, "backbone");
    let backbone = Backbone::open(&dirs.backbone_dir()).unwrap();
    assert_eq!(backbone.vision.projection_dim, 768);
    assert_eq!(backbone.vision.patch_size, 14);
}

fn tiny_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(tiny_clip().join("model.safetensors"), &Device::Cpu).unwrap()
}

fn tiny_config() -> ClipVisionConfig {
    ClipVisionConfig::from_hf_json(
        &std::fs::read_to_string(tiny_clip().join("config.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_missing_tensor_is_an_error_naming_it_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut tensors = tiny_tensors();
    // candle-transformers would fill this one with random values; we refuse.
    tensors
        .remove("vision_model.embeddings.class_embedding")
        .unwrap();
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let file = WeightFile::open(&path, &Device::Cpu).unwrap();
    let err = ClipVision::new(&file, &tiny_config())
        .err()
        .expect("must fail");
    assert!(
        matches!(&err, ModelError::MissingTensor { name, .. } if name == "vision_model.embeddings.class_embedding")
    );
    let message = err.to_string();
    assert!(
        message.contains("class_embedding") && message.contains(&path.display().to_string()),
        "{message}"
    );
}

#[test]
fn a_misshaped_tensor_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut tensors = tiny_tensors();
    tensors.insert(
        "visual_projection.weight".into(),
        Tensor::zeros((512, 64), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let file = WeightFile::open(&path, &Device::Cpu).unwrap();
    let err = ClipVision::new(&file, &tiny_config())
        .err()
        .expect("must fail");
    assert!(
        matches!(&err, ModelError::ShapeMismatch { name, expected, .. } if name == "visual_projection.weight" && expected == &vec![768, 64]),
        "{err}"
    );
}

#[test]
fn a_release_with_a_missing_head_tensor_is_refused() {
    let dirs = data_dirs();
    let dir = tempfile::tempdir().unwrap();
    for name in [files::CONFIG_FILE, files::GALLERY_FILE] {
        std::fs::copy(dirs.release_dir().join(name), dir.path().join(name)).unwrap();
    }
    let mut tensors =
        candle_core::safetensors::load(dirs.release_dir().join(files::WEIGHTS_FILE), &Device::Cpu)
            .unwrap();
    tensors.remove("location_encoder.LocEnc1.head.0.bias");
    candle_core::safetensors::save(&tensors, dir.path().join(files::WEIGHTS_FILE)).unwrap();
    let err = Release::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("location_encoder.LocEnc1.head.0.bias"),
        "{err}"
    );
}

#[test]
fn importing_something_else_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = DataDirs::resolve(Some(dir.path())).unwrap();
    let not_wheel = dir.path().join("fake.whl");
    std::fs::write(&not_wheel, b"not a zip").unwrap();
    let err = files::import(&not_wheel, &dirs).unwrap_err().to_string();
    assert!(err.contains("fake.whl"), "{err}");
    let err = files::import(&dir.path().join("nope"), &dirs)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    // Nothing was installed by the failures.
    assert!(Release::open(&dirs.release_dir()).is_err());
}

#[test]
fn a_corrupted_file_fails_verification() {
    let dirs = data_dirs();
    let dir = tempfile::tempdir().unwrap();
    let other = DataDirs::resolve(Some(dir.path())).unwrap();
    files::import(&dirs.release_dir(), &other).unwrap();
    let gallery = other.release_dir().join(files::GALLERY_FILE);
    // Break the hard link before editing, so the shared install stays intact.
    let text = std::fs::read_to_string(&gallery).unwrap();
    std::fs::remove_file(&gallery).unwrap();
    std::fs::write(&gallery, text.replacen("LAT,LON\n", "LAT,LON\n0,0\n", 1)).unwrap();
    let err = Manifest::read(&other.release_dir())
        .unwrap()
        .verify(&other.release_dir())
        .unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
}

/// The location encoder is read on first use, from the heads file the model was loaded with:
/// a heads file changed after loading is refused (its sha256 keys the gallery cache and the
/// provenance), not silently mixed in.
#[test]
fn the_location_encoder_is_read_on_first_use_from_the_unchanged_file() {
    use geoloupe::model::GeoClip;
    use geoloupe::model::engine::ModelPaths;
    let dirs = data_dirs();
    let tmp = tempfile::tempdir().unwrap();
    let release_dir = tmp.path().join("geoclip");
    std::fs::create_dir_all(&release_dir).unwrap();
    for name in [files::CONFIG_FILE, files::WEIGHTS_FILE, files::GALLERY_FILE] {
        std::fs::copy(dirs.release_dir().join(name), release_dir.join(name)).unwrap();
    }
    let paths = ModelPaths {
        release_dir: release_dir.clone(),
        backbone_dir: tiny_clip(),
        gallery_csv: None,
        gallery_cache_dir: dirs.gallery_cache_dir(),
    };
    let engine = GeoClip::load(
        &paths,
        &Device::Cpu,
        geoloupe::model::Precision::Exact,
        &mut |_| true,
    )
    .unwrap();
    let feature = vec![1.0 / (512f32).sqrt(); 512];
    let first = engine.location_logits(&feature, &[[48.85, 2.35]]).unwrap();
    assert_eq!(first.len(), 1);
    // Read once: a second call does not read the file again, even when it is gone.
    let weights = release_dir.join(files::WEIGHTS_FILE);
    let original = std::fs::read(&weights).unwrap();
    std::fs::remove_file(&weights).unwrap();
    assert_eq!(
        engine.location_logits(&feature, &[[48.85, 2.35]]).unwrap(),
        first
    );

    // A fresh engine whose heads file changes before the encoder is first needed.
    std::fs::write(&weights, &original).unwrap();
    let engine = GeoClip::load(
        &paths,
        &Device::Cpu,
        geoloupe::model::Precision::Exact,
        &mut |_| true,
    )
    .unwrap();
    let mut changed = original;
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(&weights, &changed).unwrap();
    let err = engine
        .location_logits(&feature, &[[48.85, 2.35]])
        .unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
}
