#!/usr/bin/env bash
# Screenshots the real desktop app under Xvfb into docs/screenshot.png.
#
# Needs (Debian/Ubuntu): xvfb xauth libgl1-mesa-dri libegl1 x11-apps xdotool imagemagick
# The model is the deterministic fake (GEOLOUPE_FAKE_MODEL=1: its candidates are made up from
# the file name), and the network is off (GEOLOUPE_OFFLINE=1), so the map shows the offline
# Natural Earth basemap. Usage: scripts/screenshot.sh [output.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshot.png}"
mkdir -p "$(dirname "$out")"

cargo build --bin geoloupe
bin="${CARGO_TARGET_DIR:-target}/debug/geoloupe"

work="$(mktemp -d)"
trap 'kill "${app_pid:-}" "${xvfb_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
source scripts/lib/window.sh
start_xvfb ":${SCREENSHOT_DISPLAY:-77}" "$work"
export GEOLOUPE_DATA_DIR="$work/data" GEOLOUPE_FAKE_MODEL=1 GEOLOUPE_OFFLINE=1
export HOME="$work/home"   # fresh eframe settings
mkdir -p "$HOME"

"$bin" tests/fixtures/images/gps.jpg tests/fixtures/images >"$work/app.log" 2>&1 &
app_pid=$!

wait_for_window "$work/app.log"
sleep 4
# gps.jpg is selected (named first on the command line). Run the model on it: Space, and a
# click on "Run on selection (1)" in case the key did not reach the window (no window manager).
xdotool mousemove 700 450
sleep 0.5
xdotool key space || true
sleep 1
xdotool mousemove 1172 129 click 1 || true
sleep 0.3
xdotool mousemove 700 600
sleep 5
xwd -root -silent -display "$DISPLAY" | convert xwd:- "$out"
echo "wrote $out"
