#!/usr/bin/env python3
"""PyTorch's speed on the work `geoloupe bench` times, on the same GPU (scripts/gpu-check.sh).

A plain torch CLIP ViT-L/14 image tower (no transformers needed), random weights of the real
shape, as `geoloupe bench` uses: patch embedding (14x14 convolution, no bias), class and position
embeddings, pre-layernorm, 24 pre-norm layers (16-head attention through
`scaled_dot_product_attention`, a 4096-wide quick_gelu MLP), post-layernorm on the class token,
the 768-wide visual projection; then GeoCLIP's image MLP (768 -> 768, ReLU, -> 512), L2
normalisation, cosine against a 100,000 x 512 gallery, x exp(logit_scale), softmax and the top 5
copied to the host (geoloupe copies the logits and ranks on the CPU: a little more work).

Modes: `f32` (TF32 off, as candle's f32 matmuls: full f32 products) and `bf16` (weights and
activations in bfloat16, softmax over the gallery in f32). Prints one JSON object:
{"torch": version, "device": name, "results": {mode: {batch: photos_per_second}}}.

Usage: python3 scripts/gpu_torch_bench.py [--device cuda] [--batch-sizes 1,8,32] [--repeats 10]
"""

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

WIDTH, LAYERS, HEADS, MLP, PATCH, IMAGE, PROJ = 1024, 24, 16, 4096, 14, 224, 768
GALLERY, GEO = 100_000, 512


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(WIDTH, eps=1e-5)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.out = nn.Linear(WIDTH, WIDTH)
        self.ln2 = nn.LayerNorm(WIDTH, eps=1e-5)
        self.fc1 = nn.Linear(WIDTH, MLP)
        self.fc2 = nn.Linear(MLP, WIDTH)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = (
            self.qkv(self.ln1(x))
            .view(b, t, 3, HEADS, WIDTH // HEADS)
            .permute(2, 0, 3, 1, 4)
            .unbind(0)
        )
        a = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, WIDTH))
        h = self.fc1(self.ln2(x))
        h = h * torch.sigmoid(1.702 * h)  # quick_gelu
        return x + self.fc2(h)


class GeoClipImage(nn.Module):
    def __init__(self):
        super().__init__()
        tokens = (IMAGE // PATCH) ** 2 + 1
        self.patch = nn.Conv2d(3, WIDTH, PATCH, stride=PATCH, bias=False)
        self.cls = nn.Parameter(torch.randn(WIDTH) * 0.02)
        self.pos = nn.Parameter(torch.randn(tokens, WIDTH) * 0.02)
        self.pre = nn.LayerNorm(WIDTH, eps=1e-5)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.post = nn.LayerNorm(WIDTH, eps=1e-5)
        self.proj = nn.Linear(WIDTH, PROJ, bias=False)
        self.mlp = nn.Sequential(nn.Linear(PROJ, PROJ), nn.ReLU(), nn.Linear(PROJ, GEO))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)

    def forward(self, pixels):
        x = self.patch(pixels).flatten(2).transpose(1, 2)
        cls = self.cls.expand(x.shape[0], 1, WIDTH)
        x = self.pre(torch.cat([cls, x], dim=1) + self.pos)
        for layer in self.layers:
            x = layer(x)
        return self.mlp(self.proj(self.post(x[:, 0])))


def photos_per_second(model, gallery, batch, repeats, dtype, device):
    pixels = torch.randn(batch, 3, IMAGE, IMAGE, device=device, dtype=dtype)
    scale = math.exp(4.6)

    def step():
        features = F.normalize(model(pixels).float(), dim=-1)
        logits = scale * features @ gallery.T
        probs = logits.softmax(dim=-1)
        return probs.topk(5, dim=-1).indices.cpu()  # the copy waits for the GPU

    with torch.inference_mode():
        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        elapsed = time.perf_counter() - start
    return batch * repeats / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    # Full f32 products in f32 mode, as candle's (no TF32 in matmuls or the convolution).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    gallery = F.normalize(torch.randn(GALLERY, GEO, device=device), dim=-1)
    results = {}
    for mode, dtype in [("f32", torch.float32), ("bf16", torch.bfloat16)]:
        model = GeoClipImage().to(device=device, dtype=dtype).eval()
        results[mode] = {
            str(b): round(photos_per_second(model, gallery, b, args.repeats, dtype, device), 2)
            for b in batches
        }
        del model
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(json.dumps({"torch": torch.__version__, "device": name, "results": results}))


if __name__ == "__main__":
    main()
