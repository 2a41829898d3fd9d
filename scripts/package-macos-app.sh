#!/usr/bin/env bash
# The macOS bundle's layout and Info.plist, checked on Linux (issue 10): cargo-packager's `app`
# format is not tied to macOS, so it lays out target/packages/geoloupe.app here, and
# scripts/check_packaging.py reads its Info.plist with plistlib (identifier, icon, document
# types with UTIs, minimum macOS). The bundle carries the Linux dev binary as a stand-in: a
# macOS binary cannot be linked without Apple's SDK. The .dmg needs macOS (cargo-packager builds
# it only there, with hdiutil). Usage: scripts/package-macos-app.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
cargo packager --config packaging/Packager.toml --formats app
python3 scripts/check_packaging.py --app target/packages/geoloupe.app
echo "== .app laid out and checked in $((SECONDS - start)) s"
