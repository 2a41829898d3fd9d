#!/usr/bin/env bash
# The heatmap in the real window under Xvfb, with the fake model: the gallery layer zoomed out
# (about zoom 4.5) and the continuous layer zoomed in (about 12.5, and 7.3 on the way back out),
# reached with the mouse wheel over the best candidate. Writes docs/heatmap-zoom4.png,
# docs/heatmap-zoom12.png and docs/heatmap-zoom7.png (or into the folder given), and prints
# the zooms of the continuous layer's requests from the app's debug log.
#
# The photo is kauai.jpg copied as tower.jpg: the fake model peaks at a point derived from the
# file name, and this one's is on land (52.5° N, 27.5° E, Belarus). Needs Xvfb, xdotool, xwd
# and ImageMagick. Usage: scripts/heatmap-screenshots.sh [output folder] (display :51, or
# HEATMAP_DISPLAY).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs}"
cargo build --bin geoloupe
work="$(mktemp -d)"
# The shared target folder may be rebuilt by someone else meanwhile: run a copy.
bin="$work/geoloupe"
cp "${CARGO_TARGET_DIR:-target}/debug/geoloupe" "$bin"
trap 'kill "${app_pid:-}" "${xvfb_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/photos" "$work/home" "$work/data" "$out"
cp tests/fixtures/images/kauai.jpg "$work/photos/tower.jpg"
cp tests/fixtures/images/gps.jpg tests/fixtures/images/landscape.jpg "$work/photos/"

export SCREEN_W=1600 SCREEN_H=1000
source scripts/lib/window.sh
start_xvfb ":${HEATMAP_DISPLAY:-51}" "$work"
export GEOLOUPE_DATA_DIR="$work/data" GEOLOUPE_OFFLINE=1 GEOLOUPE_FAKE_MODEL=1 HOME="$work/home"
RUST_LOG=geoloupe=debug "$bin" "$work/photos/tower.jpg" "$work/photos" >"$work/app.log" 2>&1 &
app_pid=$!
wait_for_window "$work/app.log"
sleep 6
shot() { xwd -root -silent -display "$DISPLAY" | convert xwd:- "$1"; }
# Hide the preview pane (more map), then "Run on all shown (3)": the map centres on the
# selected photo's best candidate.
xdotool mousemove 1112 12 click 1
sleep 1
xdotool mousemove 1462 129 click 1
sleep 4
# The best candidate is at the map's centre: zoom about it with the wheel.
xdotool mousemove 792 498
wheel() { for _ in $(seq 1 "$2"); do xdotool click "$1"; sleep 0.4; done; }
wheel 4 2
sleep 2
shot "$out/heatmap-zoom4.png"
xdotool mousemove 796 593
wheel 4 6
sleep 4
shot "$out/heatmap-zoom12.png"
wheel 5 4
sleep 5
shot "$out/heatmap-zoom7.png"
grep "continuous heatmap" "$work/app.log" || true
echo "wrote $out/heatmap-zoom4.png, $out/heatmap-zoom12.png, $out/heatmap-zoom7.png"
