#!/usr/bin/env bash
# Builds (or checks) geoloupe with `--features cuda` on a machine without a GPU or a CUDA install
# (issue 13): CUDA 13.0's nvcc, headers and libraries come from PyPI into a venv under the target
# folder (installed once; run again, it only builds), and the compute capability is set
# explicitly, as no nvidia-smi can be asked.
#
# Usage (from anywhere; CARGO_TARGET_DIR is honoured):
#   scripts/cuda-build.sh check            cargo check --features cuda --all-targets
#   scripts/cuda-build.sh clippy           cargo clippy --features cuda --all-targets -D warnings
#   scripts/cuda-build.sh build            cargo build --features cuda (the geoloupe binary)
#   scripts/cuda-build.sh stage DIR        build the parity tests' binary without `heif` (no
#                                          libheif needed there), strip and xz it into
#                                          DIR/parity.xz (7 MB): all scripts/gpu-check.sh
#                                          --prebuilt DIR needs on a GPU machine with no network
#                                          (it runs the benchmark too; docs/gpu.md says why not
#                                          the geoloupe binary)
#   scripts/cuda-build.sh env              print the environment lines it builds with
# `build` and `stage` leave the CUDA build at target/debug/geoloupe (it needs the CUDA libraries
# to start): a plain `cargo build` afterwards puts the CPU one back. `check` and `clippy` make no
# binary, so they are what CI runs.
# Environment:
#   CUDA_COMPUTE_CAP   default 90: the H200 (and H100) this was made for. candle compiles its
#                      kernels to PTX for exactly this capability; the driver JIT-compiles PTX
#                      for that GPU or a newer one, never an older one: set 86 for an RTX 30xx,
#                      89 for an RTX 40xx, 80 for an A100.
#   CUDA_FROM          pypi (default): CUDA 13.0 from PyPI, as below. system: the nvcc on PATH
#                      and its CUDA (a workstation's own toolkit, 12.x or 13.x, matching its
#                      driver; CUDA_COMPUTE_CAP then defaults to nvidia-smi's answer).
#
# Why CUDA 13.0 and not 12: candle 0.11 links cudarc with `dynamic-linking`, so the binary needs
# the CUDA libraries by soname (libcublas.so.13, libcublasLt.so.13, libcurand.so.10,
# libnvrtc.so.13, libcudart.so.13, libcuda.so.1) at run time. The GPU machines this project can
# borrow have driver 580 (CUDA 13.0) and PyTorch cu130's CUDA 13 libraries, not CUDA 12's. 13.0
# exactly, not newer: the driver must understand the PTX nvcc writes, and cudarc 0.19.10 knows
# CUDA versions up to 13.4 only.
#
# libcuda.so is the driver's and is on no package registry: linking uses a stub made here from
# the driver functions cudarc declares (target/.../cuda-13.0/stubs/libcuda.so, soname
# libcuda.so.1); at run time the real driver's libcuda.so.1 is loaded. Needs: python3 with venv,
# gcc/g++ (nvcc's host compiler), network to PyPI the first time (about 1.4 GB installed).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-check}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
toolkit="$target_dir/cuda-13.0"
venv="$toolkit/venv"
CUDA_COMPUTE_CAP_SET=${CUDA_COMPUTE_CAP:-}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
# candle's kernels compile one nvcc at a time by default on 2 cores; all of them here.
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}

# Pinned to one CUDA release (13.0 update 2), so every machine compiles the same kernels.
packages=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35
)
stamp="$toolkit/installed.txt"

install_toolkit() {
  if [[ -f "$stamp" && "$(cat "$stamp")" == "${packages[*]}" ]]; then
    return
  fi
  echo "== installing CUDA 13.0 from PyPI into $venv"
  rm -rf "$toolkit"
  mkdir -p "$toolkit"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${packages[@]}"
  printf '%s' "${packages[*]}" >"$stamp"
}

# The CUDA folder of the wheels (bin/nvcc, include, lib): CUDA_HOME.
cuda_home() {
  "$venv/bin/python" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13"))'
}

# The link-time names (libcublas.so -> libcublas.so.13, ...) the wheels do not ship, and the
# libcuda stub, in CUDA_HOME/lib and CUDA_HOME/lib/stubs, where cudarc's build script searches.
link_names() {
  local home=$1 lib
  for lib in cudart cublas cublasLt curand nvrtc; do
    local versioned
    versioned=$(cd "$home/lib" && ls "lib$lib.so."* 2>/dev/null | grep -E "^lib$lib\.so\.[0-9]+$" | head -n 1)
    [[ -n "$versioned" ]] || { echo "lib$lib.so.* missing in $home/lib" >&2; exit 1; }
    ln -sfn "$versioned" "$home/lib/lib$lib.so"
  done
  local stub="$home/lib/stubs/libcuda.so"
  [[ -f "$stub" ]] && return
  mkdir -p "$home/lib/stubs"
  # cudarc's driver bindings, at the version Cargo.lock pins.
  local cudarc
  cudarc=$(cargo metadata --locked --format-version 1 --features cuda 2>/dev/null |
    python3 -c 'import json, sys, os
d = json.load(sys.stdin)
print(next(os.path.dirname(p["manifest_path"]) for p in d["packages"] if p["name"] == "cudarc"))')
  python3 - "$cudarc/src/driver/sys/mod.rs" "$home/lib/stubs/libcuda.c" <<'EOF'
import re, sys
names = sorted(set(re.findall(r"^pub unsafe fn (cu\w+)\(", open(sys.argv[1]).read(), re.M)))
assert len(names) > 100, f"only {len(names)} driver functions found in {sys.argv[1]}"
with open(sys.argv[2], "w") as out:
    out.write("/* Link-time stub of the CUDA driver made by scripts/cuda-build.sh: never loaded. */\n")
    out.writelines(f"int {n}(void) {{ return 999; }}\n" for n in names)
EOF
  gcc -shared -fPIC -o "$stub" -Wl,-soname,libcuda.so.1 "$home/lib/stubs/libcuda.c"
}

case "${CUDA_FROM:-pypi}" in
  pypi)
    install_toolkit
    CUDA_HOME=$(cuda_home)
    export CUDA_HOME
    export PATH="$CUDA_HOME/bin:$PATH"
    link_names "$CUDA_HOME"
    from="from PyPI: CUDA_HOME=$CUDA_HOME"
    ;;
  system)
    command -v nvcc >/dev/null || { echo "CUDA_FROM=system, but no nvcc on PATH" >&2; exit 1; }
    if [[ -z "${CUDA_COMPUTE_CAP_SET:-}" ]] && command -v nvidia-smi >/dev/null; then
      CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
    fi
    from="of this system: $(command -v nvcc)"
    ;;
  *)
    echo "CUDA_FROM is pypi or system, not ${CUDA_FROM}" >&2
    exit 2
    ;;
esac

nvcc_version=$(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
echo "== CUDA $nvcc_version $from"
echo "== CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP (kernels as PTX for sm_$CUDA_COMPUTE_CAP), CARGO_TARGET_DIR=$target_dir"

timed() {
  echo "== $*"
  local start=$SECONDS
  "$@"
  echo "== done in $((SECONDS - start)) s: $*"
}

case "$mode" in
  env)
    echo "export CUDA_HOME=$CUDA_HOME CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP PATH=$CUDA_HOME/bin:\$PATH"
    ;;
  check)
    timed cargo check --locked --features cuda --all-targets
    ;;
  clippy)
    timed cargo clippy --locked --features cuda --all-targets -- -D warnings
    ;;
  build)
    timed cargo build --locked --features cuda
    ;;
  stage)
    dir=${2:?usage: scripts/cuda-build.sh stage DIR}
    # No `heif`: libheif is not on every GPU machine, and nothing here needs it.
    features=(--no-default-features --features cuda)
    echo "== cargo test --locked ${features[*]} --test parity --no-run"
    stage_start=$SECONDS
    # The parity tests' binary: cargo prints its path as JSON.
    test_bin=$(cargo test --locked "${features[@]}" --test parity --no-run --message-format json |
      python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "parity" and m.get("executable"):
        print(m["executable"])')
    [[ -n "$test_bin" ]] || { echo "no parity test binary was built" >&2; exit 1; }
    echo "== done in $((SECONDS - stage_start)) s: $test_bin"
    mkdir -p "$dir"
    rm -f "$dir/parity" "$dir/parity.xz"
    strip -o "$dir/parity" "$test_bin"
    xz -T0 -9 "$dir/parity"
    echo "== staged in $dir (scripts/gpu-check.sh --prebuilt $dir):"
    ls -l "$dir"
    echo "== needs at run time (ldd; libcuda.so.1 is the driver's):"
    ldd "$test_bin" | grep -E 'cuda|cublas|curand|nvrtc' || true
    ;;
  *)
    echo "usage: scripts/cuda-build.sh check|clippy|build|stage DIR|env" >&2
    exit 2
    ;;
esac
