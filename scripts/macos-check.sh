#!/usr/bin/env bash
# The macOS check (issue 10): clippy for aarch64-apple-darwin, without and with `metal`, C code
# compiled by Zig (PyPI `ziglang`) through scripts/lib/zig-macos. Nothing is linked: that needs
# Apple's SDK. Needs: `rustup target add aarch64-apple-darwin`, `pip install ziglang`.
# Usage: scripts/macos-check.sh   (from anywhere; CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-apple-darwin
wrapper="$PWD/scripts/lib/zig-macos"
python3 -m ziglang version >/dev/null
# The cc crate reads these per target; the Linux (host) build scripts keep the host compiler.
export CC_aarch64_apple_darwin="$wrapper cc"
export CXX_aarch64_apple_darwin="$wrapper c++"
export AR_aarch64_apple_darwin="$wrapper ar"
# Deployment target for the cc crate (so it does not ask xcrun) and rustc, as in Packager.toml.
export MACOSX_DEPLOYMENT_TARGET=11.0

run() {
  echo "== cargo clippy --target $target $*"
  local start=$SECONDS
  cargo clippy --locked --target "$target" --no-default-features --features app "$@" --all-targets -- -D warnings
  echo "== passed in $((SECONDS - start)) s: --target $target $*"
}

run
run --features metal
