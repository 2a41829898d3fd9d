#!/usr/bin/env bash
# The headless build (issue 15): `geoloupe` without the desktop app, for clusters and containers.
#
#   scripts/headless.sh   build it (dev profile, as everything here) into
#                         target/headless/geoloupe, check it has no desktop crates and opens
#                         no window, and print its size (stripped) and number of crates beside
#                         the desktop build's.
#
# It reuses the desktop build's compiled dependencies (the feature pins in Cargo.toml), so after
# the desktop build it compiles geoloupe alone; it lists any other crate it had to build again,
# which means a pin is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

headless=(--no-default-features --features cli)
target=$(rustc -vV | sed -n 's/^host: //p')
crates() {
  cargo tree --locked "$@" -e normal --prefix none --target "$target" | sed 's/ (\*)//' | sort -u | wc -l
}

size_mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }'; }

report() {
  local name=$1 binary=$2 crates=$3 stripped
  stripped=$(mktemp)
  strip -o "$stripped" "$binary"
  echo "== $name: $(size_mib "$stripped") MiB stripped ($(size_mib "$binary") MiB with debug info), $crates crates"
  rm -f "$stripped"
}

build() {
  local start=$SECONDS
  # The desktop binary first (a no-op after the test command), kept aside: both builds write
  # target/debug/geoloupe.
  cargo build --locked --bin geoloupe
  mkdir -p target/headless
  cp target/debug/geoloupe target/headless/geoloupe-desktop
  local rebuilt
  rebuilt=$(cargo build --locked "${headless[@]}" --bin geoloupe --message-format json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and not m["fresh"] and not m["package_id"].split("#")[-1].startswith("geoloupe@"):
        print(m["package_id"].split("#")[-1])' | sort -u)
  if [[ -n "$rebuilt" ]]; then
    echo "warning: the headless build compiled these dependencies again (a feature pin in Cargo.toml is missing):" >&2
    printf '%s\n' "$rebuilt" >&2
  else
    echo "== headless: every dependency reused from the desktop build"
  fi
  cp target/debug/geoloupe target/headless/geoloupe
  # Put the desktop binary back for the steps after this one.
  cargo build --locked --bin geoloupe
  echo "== headless build done in $((SECONDS - start)) s"
  # No eframe, winit or GL in it.
  if cargo tree --locked "${headless[@]}" -e normal --prefix none | grep -qE '^(eframe|egui|winit|glow|glutin|rfd|walkers) '; then
    echo "the headless build pulls in desktop crates:" >&2
    cargo tree --locked "${headless[@]}" -e normal -i winit >&2 || true
    exit 1
  fi
  target/headless/geoloupe --version
  if target/headless/geoloupe 2>/dev/null; then
    echo "the headless geoloupe opened something with no command" >&2
    exit 1
  fi
  report "desktop geoloupe" target/headless/geoloupe-desktop "$(crates)"
  report "headless geoloupe" target/headless/geoloupe "$(crates "${headless[@]}")"
  rm -f target/headless/geoloupe-desktop
}

build
