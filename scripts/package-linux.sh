#!/usr/bin/env bash
# The Linux package (issue 10): builds the .deb with cargo-packager from the dev binary, then on
# this machine installs it with apt (so its dependencies resolve), lists what went where,
# validates the installed desktop file and metainfo, checks the hicolor icons and MimeType=,
# starts the app from the installed launcher's Exec= under Xvfb (fake model, offline, scratch
# HOME) on tests/fixtures/images, screenshots it, removes the package and checks its files are
# gone. Each step's time is printed.
#
# Needs: root (or sudo) for apt-get, cargo-packager 0.11.8 (`cargo install cargo-packager
# --version 0.11.8 --locked`), desktop-file-utils, appstream, xvfb, xdotool, x11-apps,
# imagemagick, python3 >= 3.11. geoloupe must not be installed already.
# Usage: scripts/package-linux.sh [screenshot.png]   (default docs/linux-deb.png)
# Env: PACKAGE_DISPLAY (Xvfb display number, default 92).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
out_png="${1:-docs/linux-deb.png}"

as_root=()
if [ "$(id -u)" != 0 ]; then
  as_root=(sudo)
fi

step_name=""
step_start=$SECONDS
step() { # step NAME: ends the step before (printing its time), starts NAME
  [ -n "$step_name" ] && echo "== took $((SECONDS - step_start)) s: $step_name"
  step_name="$*"
  step_start=$SECONDS
  [ "$step_name" = done ] || echo "== $step_name"
}

work="$(mktemp -d)"
cleanup() {
  kill "${app_pid:-}" "${xvfb_pid:-}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

installed() { [ "$(dpkg-query -W -f='${Status}' geoloupe 2>/dev/null || true)" = "install ok installed" ]; }
if installed; then
  echo "geoloupe is already installed; remove it first (apt-get remove geoloupe)" >&2
  exit 1
fi

step "cargo packager --formats deb (builds and stages the dev binary first)"
rm -f target/packages/geoloupe_*.deb
cargo packager --config packaging/Packager.toml --formats deb
deb="$(ls target/packages/geoloupe_*_amd64.deb)"
ls -l "$deb"
dpkg-deb --info "$deb"

step "apt-get install $deb"
"${as_root[@]}" apt-get install -y --no-install-recommends "./$deb"

step "dpkg -L geoloupe"
dpkg -L geoloupe | tee "$work/files"

step "validating the installed desktop file and metainfo"
desktop=/usr/share/applications/org.geoloupe.geoloupe.desktop
metainfo=/usr/share/metainfo/org.geoloupe.geoloupe.metainfo.xml
desktop-file-validate "$desktop"
appstreamcli validate --no-net "$metainfo"
grep '^MimeType=' "$desktop"
python3 scripts/check_packaging.py --desktop "$desktop"

step "hicolor icons"
icon="$(sed -n 's/^Icon=//p' "$desktop")"
for size in 16 32 48 64 128 256 512; do
  png="/usr/share/icons/hicolor/${size}x${size}/apps/$icon.png"
  [ "$(identify -format '%wx%h' "$png")" = "${size}x${size}" ] || {
    echo "missing or wrong size: $png" >&2
    exit 1
  }
done
test -s "/usr/share/icons/hicolor/scalable/apps/$icon.svg"
echo "Icon=$icon: 16..512 px PNGs and the scalable SVG are in /usr/share/icons/hicolor"

step "starting the app from the installed launcher under Xvfb"
exec_line="$(sed -n 's/^Exec=//p' "$desktop")"
read -ra exec_words <<<"$exec_line"
command=()
for word in "${exec_words[@]}"; do
  case "$word" in
    %F | %U) command+=("$repo/tests/fixtures/images/gps.jpg" "$repo/tests/fixtures/images") ;;
    %f | %u) command+=("$repo/tests/fixtures/images/gps.jpg") ;;
    %*) ;;
    *) command+=("$word") ;;
  esac
done
resolved="$(command -v "${command[0]}")"
echo "Exec=$exec_line -> ${command[*]} ($resolved)"
[ "$resolved" = /usr/bin/geoloupe ] || {
  echo "the launcher does not run the installed binary" >&2
  exit 1
}
source scripts/lib/window.sh
start_xvfb ":${PACKAGE_DISPLAY:-92}" "$work"
mkdir -p "$work/home"
(
  cd "$work"
  HOME="$work/home" GEOLOUPE_DATA_DIR="$work/data" GEOLOUPE_FAKE_MODEL=1 GEOLOUPE_OFFLINE=1 \
    exec "${command[@]}" >"$work/app.log" 2>&1
) &
app_pid=$!
wait_for_window "$work/app.log"
sleep 5
kill -0 "$app_pid"
mkdir -p "$(dirname "$out_png")"
xwd -root -silent -display "$DISPLAY" | convert xwd:- "$out_png"
echo "wrote $out_png"
kill "$app_pid"
wait "$app_pid" 2>/dev/null || true
app_pid=""

step "apt-get remove geoloupe"
"${as_root[@]}" apt-get remove -y geoloupe
left=0
while read -r path; do
  if [ -f "$path" ] || [ -L "$path" ]; then
    echo "left behind: $path" >&2
    left=1
  fi
done <"$work/files"
[ "$left" = 0 ]
if installed; then
  echo "geoloupe is still installed" >&2
  exit 1
fi
echo "removed: none of the package's $(wc -l <"$work/files") paths is left as a file"
step "done"
