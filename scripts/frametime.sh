#!/usr/bin/env bash
# Frame time of the real desktop app under Xvfb while a batch runs on every core.
#
# Imports the real GeoCLIP heads (the wheel that scripts/test.sh downloads) and the tiny test
# backbone into a temporary data dir, encodes the gallery once (`geoloupe locate`), opens the
# app on N copies of a test photo, clicks "Run on all shown" and screenshots the status bar,
# whose "frame time" reads eframe's per-frame work (median and worst of the last 120 frames),
# every few seconds. Writes the bars, stacked, to the output PNG.
#
# With a third argument, a second folder of that many photos is opened with the first, so it
# is scanned and read in from the database (the library thread hashing new files) while the
# batch runs: "Run on all shown" is clicked as soon as the first folder is listed, with the
# list filtered to its folder.
#
# Needs what scripts/screenshot.sh needs. Usage: scripts/frametime.sh [output.png] [photos]
# [photos read in meanwhile]. With GEOLOUPE_FAKE_MODEL=1 GEOLOUPE_FAKE_DELAY_MS=50 it measures
# the same without CPU load.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/frametime.png}"
count="${2:-400}"
extra="${3:-0}"
wheel="${GEOCLIP_WHEEL:-target/downloads/geoclip-1.3.0-py3-none-any.whl}"

cargo build --bin geoloupe
bin="${CARGO_TARGET_DIR:-target}/debug/geoloupe"

work="$(mktemp -d)"
trap 'kill "${app_pid:-}" "${xvfb_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
data="$work/data"
mkdir -p "$work/photos" "$work/home"
for i in $(seq 1 "$count"); do cp tests/fixtures/images/kauai.jpg "$work/photos/p$i.jpg"; done
folders=("$work/photos")
if [ "$extra" -gt 0 ]; then
  mkdir -p "$work/more"
  for i in $(seq 1 "$extra"); do cp tests/fixtures/images/small.png "$work/more/m$i.png"; done
  folders+=("$work/more")
fi
if [ -z "${GEOLOUPE_FAKE_MODEL:-}" ]; then
  "$bin" --data-dir "$data" model import "$wheel" >/dev/null
  "$bin" --data-dir "$data" model import tests/fixtures/tiny_clip >/dev/null
  # Encode and cache the gallery now, so the app's model is ready at once.
  "$bin" --data-dir "$data" locate tests/fixtures/images/kauai.jpg >/dev/null
  run_button_y=279
else
  run_button_y=129
fi

source scripts/lib/window.sh
start_xvfb ":${FRAMETIME_DISPLAY:-79}" "$work"
export GEOLOUPE_DATA_DIR="$data" GEOLOUPE_OFFLINE=1 HOME="$work/home"
"$bin" "${folders[@]}" >"$work/app.log" 2>&1 &
app_pid=$!
wait_for_window "$work/app.log"
if [ "$extra" -gt 0 ]; then
  # Show only the batch's photos (the JPEGs) while the PNGs are still being read in.
  sleep 3
  xdotool windowfocus "$window"
  xdotool mousemove 60 82 click 1
  xdotool type ".jpg"
  xdotool mousemove 700 450 click 1
  sleep 0.5
else
  sleep 6
fi
xdotool mousemove 1316 "$run_button_y" click 1
xwd -root -silent -display "$DISPLAY" | convert xwd:- "$work/started.png"
cp "$work/started.png" "${out%.png}-start.png"
for shot in 1 2 3 4 5 6; do
  # Keep frames coming: move the pointer over the map.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    xdotool mousemove 600 400; sleep 0.15; xdotool mousemove 800 500; sleep 0.15
  done
  xwd -root -silent -display "$DISPLAY" | convert xwd:- -crop 1440x30+0+870 "$work/bar_$shot.png"
done
convert "$work"/bar_*.png -append "$out"
echo "wrote $out"
