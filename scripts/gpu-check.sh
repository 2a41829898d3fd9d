#!/usr/bin/env bash
# The GPU check (issue 13, item 5), on a machine with an NVIDIA GPU: the parity tests on the GPU
# (GEOLOUPE_TEST_DEVICE=cuda, the CPU's tolerances), `geoloupe bench`'s measurements at batch 1,
# 8 and 32 (exact f32, and fast bf16 where the bench reports it), and PyTorch on the same GPU
# when python3 has torch with CUDA (scripts/gpu_torch_bench.py: f32 and bf16); then one table of
# photos per second. A few minutes.
#
# Usage (from anywhere):
#   scripts/gpu-check.sh --prebuilt DIR   run DIR/parity.xz (or DIR/parity), the parity tests'
#                                         binary made elsewhere by `scripts/cuda-build.sh stage
#                                         DIR` (a GPU machine with no network: nothing is built
#                                         here). It runs the benchmark too (its ignored test
#                                         `geoloupe_bench` runs `geoloupe bench`'s code), so
#                                         the geoloupe binary need not travel (docs/gpu.md)
#   scripts/gpu-check.sh --build          build it first (scripts/cuda-build.sh stage: the
#                                         system's nvcc when there is one, else CUDA 13.0 from
#                                         PyPI), e.g. on a workstation
# Options:
#   --out DIR      logs, JSON and the table (default target/gpu-check); at most 8 files
#   --wheel PATH   the geoclip 1.3.0 wheel for the parity tests (default $GEOCLIP_WHEEL, else
#                  target/downloads/geoclip-1.3.0-py3-none-any.whl); without it they are skipped
#   --repeats N    timed passes per batch size (default 5)
#   --batch-sizes  default 1,8,32
#   --device D     default cuda; `cpu` is a dry run of this script on any machine (a CUDA
#                  build still needs the CUDA libraries to start: LD_LIBRARY_PATH)
# Needs at run time: the NVIDIA driver (libcuda.so.1) and the CUDA 13 libraries the binary is
# linked to (libcudart.so.13, libcublas.so.13 with its libcublasLt.so.13, libcurand.so.10):
# from the system, or from Python's nvidia packages (PyTorch's), which this script finds.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
mode="" bin="" out=target/gpu-check repeats=5 batches=1,8,32 device=cuda
wheel=${GEOCLIP_WHEEL:-target/downloads/geoclip-1.3.0-py3-none-any.whl}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prebuilt) mode=prebuilt bin=${2:?--prebuilt DIR}; shift 2 ;;
    --build) mode=build; shift ;;
    --out) out=${2:?--out DIR}; shift 2 ;;
    --wheel) wheel=${2:?--wheel PATH}; shift 2 ;;
    --repeats) repeats=${2:?--repeats N}; shift 2 ;;
    --batch-sizes) batches=${2:?--batch-sizes LIST}; shift 2 ;;
    --device) device=${2:?--device cuda|cpu}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ -n "$mode" ]] || { usage >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/geoloupe-gpu-check.XXXXXX")
start=$SECONDS
step() { echo "== gpu-check: $* (at $((SECONDS - start)) s)"; }
failed=()

step "the GPU"
if [[ "$device" == cuda ]]; then
  {
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader
    nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/driver CUDA version \1/p'
  } | tee "$out/env.txt"
else
  echo "no GPU: a dry run on $device" | tee "$out/env.txt"
fi

if [[ "$mode" == build ]]; then
  bin="$scratch/stage"
  if command -v nvcc >/dev/null; then from=system; else from=pypi; fi
  step "building with CUDA_FROM=$from"
  CUDA_FROM=$from scripts/cuda-build.sh stage "$bin"
fi
mkdir -p "$scratch/bin"
for name in parity; do
  if [[ -f "$bin/$name" ]]; then
    cp "$bin/$name" "$scratch/bin/$name"
  elif [[ -f "$bin/$name.xz" ]]; then
    python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$bin/$name.xz" "$scratch/bin/$name"
  else
    echo "missing $bin/$name (scripts/cuda-build.sh stage DIR makes it)" >&2
    exit 1
  fi
  chmod +x "$scratch/bin/$name"
done
parity="$scratch/bin/parity"

# The CUDA libraries: the system's, then Python's nvidia packages (PyTorch's wheels bring them).
extra=$(python3 - <<'EOF' 2>/dev/null || true
import glob, os
dirs = []
try:
    import nvidia
    for root in nvidia.__path__:
        dirs += sorted(os.path.dirname(p) for p in glob.glob(os.path.join(root, "**", "lib*.so.*"), recursive=True))
except ImportError:
    pass
print(":".join(dict.fromkeys(dirs)))
EOF
)
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64 \
  /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d "$d" ]] && extra="${extra:+$extra:}$d"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$extra"
step "libraries the binary loads"
{ ldd "$parity" | grep -E 'cuda|cublas|curand|nvrtc' || true; } | tee -a "$out/env.txt"
if ldd "$parity" | grep -q 'not found'; then
  echo "some CUDA libraries are missing (above): install the CUDA 13 runtime libraries or PyTorch cu13x" >&2
  exit 1
fi

step "parity tests on the GPU"
if [[ -f "$wheel" ]]; then
  # The test binary finds the fixtures and its scratch folder through cargo's variables.
  if GEOLOUPE_TEST_DEVICE=$device CARGO_MANIFEST_DIR="$PWD" CARGO_TARGET_TMPDIR="$scratch/tmp" \
    GEOCLIP_WHEEL="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")" \
    "$parity" --test-threads 1 --nocapture >"$out/parity.log" 2>&1; then
    parity_result=$(grep -E '^test result' "$out/parity.log" | tail -n 1)
  else
    parity_result="FAILED: $(grep -E '^test result' "$out/parity.log" | tail -n 1)"
    failed+=(parity)
  fi
  tail -n 30 "$out/parity.log"
else
  parity_result="not run: no geoclip wheel at $wheel"
fi
echo "$parity_result"

step "geoloupe bench (exact, and fast mode where the bench reports it)"
# `geoloupe bench`'s measurements through the test binary (its ignored test geoloupe_bench);
# the JSON report is the block from a line "{" to a line "}" among libtest's lines.
data="$scratch/tmp/geoloupe-data" # the parity tests' install: the real heads and gallery
[[ -d "$data" ]] || data="$scratch/data"
if GEOLOUPE_TEST_DEVICE=$device GEOLOUPE_BENCH_BATCHES=$batches GEOLOUPE_BENCH_REPEATS=$repeats \
  GEOLOUPE_BENCH_DATA=$data "$parity" --ignored --exact geoloupe_bench --nocapture \
  >"$scratch/bench.out" 2>"$out/bench.log"; then
  sed -n '/^{$/,/^}$/p' "$scratch/bench.out" | tee "$out/bench.json"
else
  cat "$scratch/bench.out" >>"$out/bench.log"
  tail -n 20 "$out/bench.log"
  failed+=(bench)
fi

step "PyTorch on the same GPU"
if [[ "$device" != cuda ]]; then
  echo "PyTorch is measured on a GPU only" | tee "$out/torch.log"
elif python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  if ! python3 scripts/gpu_torch_bench.py --batch-sizes "$batches" >"$out/torch.json" 2>"$out/torch.log"; then
    tail -n 20 "$out/torch.log"
    failed+=(torch)
  fi
else
  echo "python3 has no torch with CUDA: PyTorch not measured" | tee "$out/torch.log"
fi

step "table"
python3 - "$out" "$parity_result" "$batches" "$device" <<'EOF' | tee "$out/table.md"
import json, os, sys
out, parity, batches, device = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
rows = []

def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def walk(node, path=()):
    """Every `secs_per_photo` list ([batch, secs] pairs) in a bench report, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "secs_per_photo" and isinstance(value, list):
                yield path, value
            else:
                yield from walk(value, path + (key,))

report = load("bench.json")
for path, pairs in walk(report) if report else []:
    per = {str(b): 1.0 / s for b, s in pairs if s > 0}
    rows.append((f"geoloupe ({'/'.join(path) or 'exact'})", per))
torch = load("torch.json")
if torch:
    for mode, per in torch["results"].items():
        rows.append((f"PyTorch {torch['torch']} ({mode})", {b: float(v) for b, v in per.items()}))
env = open(os.path.join(out, "env.txt")).readline().strip()
print(f"GPU: {env}")
print()
print("| photos per second | " + " | ".join(f"batch {b}" for b in batches) + " |")
print("|---|" + "---:|" * len(batches))
for label, per in rows:
    print(f"| {label} | " + " | ".join(f"{per[b]:.1f}" if b in per else "-" for b in batches) + " |")
print()
print(f"parity tests on {device}: {parity}")
EOF

rm -rf "$scratch"
step "done"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
