//! Text queries against recorded references (tests/fixtures/make_text_fixtures.py made them
//! with transformers and geoclip 1.3.0):
//! - CLIP's tokenizer: the same ids as transformers' `CLIPTokenizer` on 241 strings,
//! - the tiny text tower (the exact ViT-L/14 text path): `get_text_features` within 1e-4,
//! - tiny text tower + real MLP + real 100K gallery: same top 5, probabilities within 1e-4,
//!   one text at a time and as a prompt ensemble.
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

mod common;

use common::*;
use geoloupe::domain::Prediction;
use geoloupe::model::engine::{ModelPaths, Towers};
use geoloupe::model::text::{ClipTokenizer, TEMPLATES, TOKENIZER_FILE};
use geoloupe::model::{GeoClip, Precision};

fn engine() -> &'static GeoClip {
    tiny_engine()
}

fn fixture(name: &str) -> serde_json::Value {
    let path = fixtures().join("text").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

/// The top 5 of a normalised GeoCLIP feature over the gallery, as a photo's is ranked.
fn top5(feature: &[f32]) -> Prediction {
    let engine = engine();
    let logits = engine.gallery_logits(&[feature]).unwrap();
    Prediction::from_logits(&logits[0], 5, |i| engine.gallery().lat_lon(i))
}

fn assert_ranks_as_recorded(label: &str, got: &Prediction, case: &serde_json::Value) {
    let want_idx = ids(&case["top5_indices"]);
    let want_p = floats(&case["top5_probs"]);
    let got_idx: Vec<u32> = got
        .candidates
        .iter()
        .map(|c| c.gallery_index as u32)
        .collect();
    assert_eq!(got_idx, want_idx, "{label}: top 5 differs");
    let got_p: Vec<f32> = got.candidates.iter().map(|c| c.probability).collect();
    let diff = max_abs_diff(&got_p, &want_p);
    assert!(diff < 1e-4, "{label}: probabilities differ by {diff}");
}

#[test]
fn tokenizer_gives_transformers_ids_on_every_recorded_string() {
    let cases = fixture("tokenizer_cases.json");
    let tokenizer = ClipTokenizer::from_file(&tiny_clip().join(TOKENIZER_FILE), 77).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        let got = tokenizer.encode(text).unwrap();
        if got != want {
            wrong.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} strings differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn long_texts_are_cut_to_the_context_with_both_markers() {
    let tokenizer = ClipTokenizer::from_file(&tiny_clip().join(TOKENIZER_FILE), 77).unwrap();
    let long = "harbour ".repeat(200);
    let ids = tokenizer.encode(&long).unwrap();
    assert_eq!(ids.len(), 77);
    assert_eq!((ids[0], ids[76]), (49406, 49407));
    assert_eq!(tokenizer.truncated(&long), 200 - 75);
    assert_eq!(tokenizer.encode("").unwrap(), vec![49406, 49407]);
    assert_eq!(tokenizer.truncated("a harbour"), 0);
}

#[test]
fn text_tower_matches_transformers_and_ranks_the_gallery_as_pytorch() {
    let expected = fixture("expected.json");
    let encoder = engine().text_encoder().unwrap();
    for case in expected["queries"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            encoder.tokenizer().encode(text).unwrap(),
            ids(&case["ids"]),
            "{text:?}: ids"
        );
        let embeds = encoder.clip_features(text).unwrap();
        let diff = max_abs_diff(&embeds, &floats(&case["text_embeds"]));
        assert!(diff < 1e-4, "{text:?}: text features differ by {diff}");
        let features = engine().mlp_features(&embeds).unwrap();
        let diff = max_abs_diff(&features, &floats(&case["features"]));
        assert!(diff < 1e-4, "{text:?}: GeoCLIP features differ by {diff}");
        let feature = engine().text_feature(text, false).unwrap();
        assert!(max_abs_diff(&feature, &normalized(&features)) < 1e-6);
        assert_ranks_as_recorded(text, &top5(&feature), case);
    }
}

#[test]
fn prompt_ensembles_match_pytorch() {
    let expected = fixture("expected.json");
    let templates: Vec<&str> = expected["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        templates, TEMPLATES,
        "the fixture's templates are geoloupe's"
    );
    for case in expected["ensembles"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let feature = engine().text_feature(text, true).unwrap();
        let diff = max_abs_diff(&feature, &floats(&case["feature"]));
        assert!(diff < 1e-5, "{text:?}: ensemble feature differs by {diff}");
        assert_ranks_as_recorded(text, &top5(&feature), case);
        // The ensemble is not the bare text.
        assert!(max_abs_diff(&feature, &engine().text_feature(text, false).unwrap()) > 1e-3);
    }
}

#[test]
fn a_backbone_without_its_tokenizer_says_which_file_is_missing() {
    let dir = target_tmpdir().join("text-no-tokenizer");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(tiny_clip()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != TOKENIZER_FILE {
            std::fs::hard_link(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut paths = ModelPaths::installed(data_dirs());
    paths.backbone_dir = dir.clone();
    // Photos need no tokenizer: the model loads.
    let engine = GeoClip::load(&paths, test_device(), Precision::Exact, &mut |_| true).unwrap();
    let err = engine
        .text_feature("a harbour", false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&dir.join(TOKENIZER_FILE).display().to_string()),
        "{err}"
    );
    assert!(err.contains("geoloupe model"), "{err}");
}

#[test]
fn a_text_only_engine_answers_as_the_full_one_and_refuses_photos() {
    let mut paths = ModelPaths::installed(data_dirs());
    paths.backbone_dir = tiny_clip();
    let text_only = GeoClip::load_towers(
        &paths,
        test_device(),
        Precision::Exact,
        Towers::TextOnly,
        &mut |_| true,
    )
    .unwrap();
    let text = "a fjord with a small village";
    assert_eq!(
        text_only.text_feature(text, false).unwrap(),
        engine().text_feature(text, false).unwrap()
    );
    assert_eq!(
        text_only.provenance(test_device_choice()),
        engine().provenance(test_device_choice())
    );
    let photo = geoloupe::model::engine::prepare_photo(
        &image_path("kauai.jpg"),
        text_only.preprocess_config(),
    )
    .unwrap();
    let err = text_only.image_features(&[&photo]).unwrap_err().to_string();
    assert!(err.contains("text queries only"), "{err}");
}
