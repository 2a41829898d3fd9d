#!/usr/bin/env python3
"""Writes a stand-in for openai/clip-vit-large-patch14 in its real Hugging Face file layout, with
random weights: `model.safetensors` (f32, every tensor of transformers' `CLIPModel`: the text
tower, the vision tower, both projections, `logit_scale` and the two int64 `position_ids` buffers
older CLIP checkpoints carry; 592 tensors, ~1.71 GB), `config.json` and
`preprocessor_config.json` as the real repository has them.

It exists so `scripts/bench-memory.sh` can measure what loading the real file costs (peak
resident memory, start-up) without the Hugging Face Hub. The numbers it gives are not CLIP's:
the weights are random (normal, std 0.02; layer norms near 1), seeded, so the file is the same
on every run of one numpy version.

Usage: make_clip_l14_layout.py OUT_DIR [--seed N]
Needs numpy; if the `safetensors` package is importable, the written file is read back with it
(names, shapes, dtypes and one tensor's values) as a check of the layout.

The tensors are written one at a time (never all in memory): an 8-byte header length, the JSON
header (padded with spaces to 8 bytes), then the data in the order `safetensors.save_file` uses
(8-byte-aligned dtypes first, then by name).
"""

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

# transformers' CLIPConfig for openai/clip-vit-large-patch14.
TEXT = dict(vocab=49408, positions=77, width=768, layers=12, mlp=3072)
VISION = dict(width=1024, layers=24, mlp=4096, patch=14, image=224, channels=3)
PROJECTION = 768

# openai/clip-vit-large-patch14's config.json (the repository's file, written by transformers
# 4.16 with its `*_config_dict` copies and every PretrainedConfig default spelled out; the
# defaults that no loader reads are left out here).
CONFIG = {
    "_name_or_path": "clip-vit-large-patch14/",
    "architectures": ["CLIPModel"],
    "initializer_factor": 1.0,
    "logit_scale_init_value": 2.6592,
    "model_type": "clip",
    "projection_dim": PROJECTION,
    "text_config": {
        "_name_or_path": "",
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": "quick_gelu",
        "hidden_size": TEXT["width"],
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": TEXT["mlp"],
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": TEXT["positions"],
        "model_type": "clip_text_model",
        "num_attention_heads": 12,
        "num_hidden_layers": TEXT["layers"],
        "pad_token_id": 1,
        "projection_dim": PROJECTION,
        "torch_dtype": None,
        "vocab_size": TEXT["vocab"],
    },
    "text_config_dict": {
        "hidden_size": TEXT["width"],
        "intermediate_size": TEXT["mlp"],
        "num_attention_heads": 12,
        "num_hidden_layers": TEXT["layers"],
        "projection_dim": PROJECTION,
    },
    "torch_dtype": "float32",
    "transformers_version": None,
    "vision_config": {
        "_name_or_path": "",
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "hidden_act": "quick_gelu",
        "hidden_size": VISION["width"],
        "image_size": VISION["image"],
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": VISION["mlp"],
        "layer_norm_eps": 1e-05,
        "model_type": "clip_vision_model",
        "num_attention_heads": 16,
        "num_hidden_layers": VISION["layers"],
        "patch_size": VISION["patch"],
        "projection_dim": PROJECTION,
        "torch_dtype": None,
    },
    "vision_config_dict": {
        "hidden_size": VISION["width"],
        "intermediate_size": VISION["mlp"],
        "num_attention_heads": 16,
        "num_hidden_layers": VISION["layers"],
        "patch_size": VISION["patch"],
        "projection_dim": PROJECTION,
    },
}

# The repository's preprocessor_config.json (the same as tests/fixtures/make_fixtures.py's).
PREPROCESSOR_CONFIG = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}


def encoder_layers(prefix, layers, width, mlp):
    out = []
    for layer in range(layers):
        pre = f"{prefix}.encoder.layers.{layer}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            out.append((f"{pre}.self_attn.{proj}.weight", "F32", [width, width]))
            out.append((f"{pre}.self_attn.{proj}.bias", "F32", [width]))
        for norm in ("layer_norm1", "layer_norm2"):
            out.append((f"{pre}.{norm}.weight", "F32", [width]))
            out.append((f"{pre}.{norm}.bias", "F32", [width]))
        out.append((f"{pre}.mlp.fc1.weight", "F32", [mlp, width]))
        out.append((f"{pre}.mlp.fc1.bias", "F32", [mlp]))
        out.append((f"{pre}.mlp.fc2.weight", "F32", [width, mlp]))
        out.append((f"{pre}.mlp.fc2.bias", "F32", [width]))
    return out


def clip_state_dict():
    """(name, dtype, shape) of every tensor in CLIPModel's state dict."""
    t, v = TEXT, VISION
    grid = v["image"] // v["patch"]
    positions = grid * grid + 1
    out = [
        ("logit_scale", "F32", []),
        ("text_model.embeddings.token_embedding.weight", "F32", [t["vocab"], t["width"]]),
        ("text_model.embeddings.position_embedding.weight", "F32", [t["positions"], t["width"]]),
        ("text_model.embeddings.position_ids", "I64", [1, t["positions"]]),
        ("text_model.final_layer_norm.weight", "F32", [t["width"]]),
        ("text_model.final_layer_norm.bias", "F32", [t["width"]]),
        ("text_projection.weight", "F32", [PROJECTION, t["width"]]),
        ("vision_model.embeddings.class_embedding", "F32", [v["width"]]),
        (
            "vision_model.embeddings.patch_embedding.weight",
            "F32",
            [v["width"], v["channels"], v["patch"], v["patch"]],
        ),
        ("vision_model.embeddings.position_embedding.weight", "F32", [positions, v["width"]]),
        ("vision_model.embeddings.position_ids", "I64", [1, positions]),
        ("vision_model.pre_layrnorm.weight", "F32", [v["width"]]),
        ("vision_model.pre_layrnorm.bias", "F32", [v["width"]]),
        ("vision_model.post_layernorm.weight", "F32", [v["width"]]),
        ("vision_model.post_layernorm.bias", "F32", [v["width"]]),
        ("visual_projection.weight", "F32", [PROJECTION, v["width"]]),
    ]
    out += encoder_layers("text_model", t["layers"], t["width"], t["mlp"])
    out += encoder_layers("vision_model", v["layers"], v["width"], v["mlp"])
    return out


ITEM_BYTES = {"F32": 4, "I64": 8}


def values(rng, name, dtype, shape):
    if dtype == "I64":
        return np.arange(int(np.prod(shape)), dtype="<i8").reshape(shape)
    if name == "logit_scale":
        return np.array(np.log(100.0), dtype="<f4")
    if "norm" in name and name.endswith(".weight"):
        return (1.0 + 0.02 * rng.standard_normal(shape, dtype=np.float32)).astype("<f4")
    return (0.02 * rng.standard_normal(shape, dtype=np.float32)).astype("<f4")


def write_safetensors(path, tensors, seed):
    # safetensors' order: larger alignment first, then by name.
    tensors = sorted(tensors, key=lambda t: (-ITEM_BYTES[t[1]], t[0]))
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in tensors:
        size = ITEM_BYTES[dtype] * int(np.prod(shape, dtype=np.int64))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".safetensors.partial")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, dtype, shape in tensors:
            f.write(values(rng, name, dtype, shape).tobytes())
    tmp.replace(path)
    return 8 + len(text) + offset


def check(path, tensors):
    try:
        from safetensors import safe_open
    except ImportError:
        print("safetensors not installed: layout not read back", file=sys.stderr)
        return
    with safe_open(str(path), "np") as f:
        names = set(f.keys())
        expected = {n for n, _, _ in tensors}
        if names != expected:
            raise SystemExit(f"read back {len(names)} tensors, expected {len(expected)}")
        for name, dtype, shape in tensors:
            sl = f.get_slice(name)
            if list(sl.get_shape()) != shape or sl.get_dtype() != dtype:
                raise SystemExit(f"{name}: {sl.get_dtype()} {sl.get_shape()}, expected {dtype} {shape}")
        scale = f.get_tensor("logit_scale")
        if abs(float(scale) - float(np.log(100.0))) > 1e-6:
            raise SystemExit(f"logit_scale read back as {scale}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tensors = clip_state_dict()
    size = write_safetensors(args.out_dir / "model.safetensors", tensors, args.seed)
    check(args.out_dir / "model.safetensors", tensors)
    (args.out_dir / "config.json").write_text(json.dumps(CONFIG, indent=2, sort_keys=True) + "\n")
    (args.out_dir / "preprocessor_config.json").write_text(
        json.dumps(PREPROCESSOR_CONFIG, indent=2) + "\n"
    )
    text_bytes = sum(
        ITEM_BYTES[d] * int(np.prod(s, dtype=np.int64))
        for n, d, s in tensors
        if n.startswith(("text_model.", "text_projection."))
    )
    print(
        f"{args.out_dir}: {len(tensors)} tensors, {size} bytes "
        f"(text tower and projection {text_bytes} bytes)"
    )


if __name__ == "__main__":
    main()
