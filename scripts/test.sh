#!/usr/bin/env bash
# The test command (README.md, CI): fetch the real GeoCLIP heads (the geoclip 1.3.0 wheel from
# PyPI, 40 MB, once), then format check, clippy, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

wheel=target/downloads/geoclip-1.3.0-py3-none-any.whl
if [ ! -f "$wheel" ] && [ -z "${GEOCLIP_WHEEL:-}" ]; then
  mkdir -p target/downloads
  python3 -m pip download --quiet --no-deps geoclip==1.3.0 -d target/downloads
fi
# geoclip 1.3.0's wheel, as published on PyPI.
if [ -z "${GEOCLIP_WHEEL:-}" ]; then
  echo "$(cat scripts/geoclip-1.3.0.sha256)  $wheel" | sha256sum --check --quiet
fi

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
