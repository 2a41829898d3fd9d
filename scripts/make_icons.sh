#!/usr/bin/env bash
# Makes every app icon from icons/geoloupe.svg (issue 10), reproducibly:
#   icons/geoloupe-{16,32,48,64,128,256,512}.png   the window icon (256) and the Linux hicolor set
#   icons/geoloupe.icns                           macOS (.app): 16..1024 px, made by png2icns
#   icons/geoloupe.ico                            Windows (.exe, NSIS): 16..256 px in one file
# Needs (Debian/Ubuntu): librsvg2-bin (rsvg-convert), icnsutils (png2icns), imagemagick.
# Usage: scripts/make_icons.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

svg=icons/geoloupe.svg
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

render() { # render SIZE OUT
  rsvg-convert --width "$1" --height "$1" --format png --output "$2" "$svg"
}

for size in 16 32 48 64 128 256 512; do
  render "$size" "icons/geoloupe-$size.png"
done

# .icns: png2icns picks each image's icon type by its size (16, 32, 48, 128, 256, 512, 1024).
icns_pngs=()
for size in 16 32 48 128 256 512 1024; do
  render "$size" "$work/icns-$size.png"
  icns_pngs+=("$work/icns-$size.png")
done
png2icns icons/geoloupe.icns "${icns_pngs[@]}" >/dev/null

# .ico: each size rendered from the SVG (not downscaled from one bitmap), PNG-compressed at 256.
ico_pngs=()
for size in 16 24 32 48 64 128 256; do
  render "$size" "$work/ico-$size.png"
  ico_pngs+=("$work/ico-$size.png")
done
convert "${ico_pngs[@]}" icons/geoloupe.ico

echo "wrote icons/geoloupe-*.png, icons/geoloupe.icns, icons/geoloupe.ico"
