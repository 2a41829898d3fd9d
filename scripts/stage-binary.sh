#!/usr/bin/env bash
# Builds the app (the dev profile: this project has one build profile) and stages a stripped
# copy for cargo-packager in target/packaging/bin (Packager.toml's binaries-dir; run by its
# before-packaging-command, or by hand). Usage: scripts/stage-binary.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --bin geoloupe
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/geoloupe"
stage=target/packaging/bin
mkdir -p "$stage"
# Stripped: the dev binary carries debug info (hundreds of MB); symbols stay out of packages.
strip --strip-all -o "$stage/geoloupe.tmp" "$bin"
mv "$stage/geoloupe.tmp" "$stage/geoloupe"
echo "staged $stage/geoloupe ($(du -h "$stage/geoloupe" | cut -f1), from $bin)"
