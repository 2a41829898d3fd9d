#!/usr/bin/env bash
# geoloupe on Windows, from Linux: cross-builds geoloupe.exe (the app and the CLI, one binary)
# for x86_64-pc-windows-gnu with MinGW-w64, runs the tests under Wine, starts the app under Wine
# on Xvfb (a screenshot), and builds the NSIS installer and checks it under Wine (install,
# start, uninstall).
#
# Usage: scripts/windows.sh [build|clippy|test|app|installer|all]...   (default: build)
#   build      cargo build of geoloupe.exe; prints its size
#   clippy     clippy for the Windows target, all targets (the cfg(windows) code)
#   test       the lib unit tests and tests/{parity,cli,export,library,model_files}.rs, built for
#              Windows and run under Wine; prints the counts (log: $work/wine-tests.log)
#   app        geoloupe.exe under Wine on Xvfb with the fake model on tests/fixtures/images;
#              screenshot into docs/windows-wine.png
#   installer  packaging/windows/geoloupe.nsi with makensis (a stripped copy of the exe), then in
#              a fresh Wine prefix: silent install, files and registry checked, the installed exe
#              started through the "Open with" command on a photo (docs/windows-installed.png),
#              silent uninstall, files and registry checked gone
#   all        all of the above
#
# Needs (Debian): gcc-mingw-w64-x86-64 wine wine64 nsis xvfb xdotool x11-apps imagemagick, and
# `rustup target add x86_64-pc-windows-gnu`. 64-bit Wine is enough (the installer is 64-bit).
# Environment: CARGO_TARGET_DIR as for cargo; GEOLOUPE_WINE_PROFILE=dev|release (default dev: the
# dependencies are optimised in dev builds too); GEOLOUPE_WINE_DISPLAY (default :91);
# GEOCLIP_WHEEL as for scripts/test.sh (the tests import the real GeoCLIP heads from it).
#
# Cross builds use `--no-default-features --features app`: the default `cli` feature brings
# `heif`, which needs libheif, which this script does not build for Windows.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-pc-windows-gnu
profile="${GEOLOUPE_WINE_PROFILE:-dev}"
case "$profile" in
  dev) profile_dir=debug ;;
  release) profile_dir=release ;;
  *) echo "GEOLOUPE_WINE_PROFILE must be dev or release" >&2; exit 2 ;;
esac
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
exe="$target_dir/$target/$profile_dir/geoloupe.exe"
work="$target_dir/windows"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
cargo_args=(--locked --target "$target" --profile "$profile" --no-default-features --features app)
mkdir -p "$work"

export WINEDEBUG=-all
# No Mono or Gecko install prompts in fresh prefixes.
export WINEDLLOVERRIDES="mscoree,mshtml="

# new_prefix DIR: a fresh 64-bit Wine prefix in DIR (exported as WINEPREFIX), with the
# bcryptprimitives.dll that Wine 8 lacks (scripts/lib/wine-bcryptprimitives.c says why).
new_prefix() {
  rm -rf "$1"
  mkdir -p "$(dirname "$1")"
  export WINEPREFIX="$1"
  wineboot -i >"$work/wineboot.log" 2>&1
  wineserver -w
  add_bcryptprimitives
}

# Wine 9 and later have bcryptprimitives.dll; Wine 8 (Debian 12) needs ours in system32.
add_bcryptprimitives() {
  local system32="$WINEPREFIX/drive_c/windows/system32"
  if [ -f "$system32/bcryptprimitives.dll" ] &&
    ! grep -q "Wine placeholder DLL" "$system32/bcryptprimitives.dll" 2>/dev/null; then
    return
  fi
  if ! wine --version | grep -qE '^wine-[0-8]\.'; then
    return
  fi
  x86_64-w64-mingw32-gcc -O2 -shared -s -o "$work/bcryptprimitives.dll" \
    scripts/lib/wine-bcryptprimitives.c -ladvapi32
  cp "$work/bcryptprimitives.dll" "$system32/bcryptprimitives.dll"
}

# The test prefix is made once and kept (wineboot takes a while).
use_test_prefix() {
  export WINEPREFIX="$work/prefix-tests"
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    new_prefix "$WINEPREFIX"
  fi
  add_bcryptprimitives
}

# elapsed STEP START: how long a step took.
elapsed() {
  echo "== $1: $(($(date +%s) - $2)) s"
}

step_build() {
  local start
  start=$(date +%s)
  cargo build "${cargo_args[@]}" --bin geoloupe
  echo "built $exe: $(du -h "$exe" | cut -f1) ($(stat -c %s "$exe") bytes)"
  elapsed build "$start"
}

step_clippy() {
  local start
  start=$(date +%s)
  cargo clippy "${cargo_args[@]}" --all-targets -- -D warnings
  elapsed clippy "$start"
}

step_test() {
  local start log
  start=$(date +%s)
  log="$work/wine-tests.log"
  use_test_prefix
  local tests=(--lib --test parity --test cli --test export --test library --test model_files)
  cargo test "${cargo_args[@]}" "${tests[@]}" --no-run
  elapsed "test build" "$start"
  start=$(date +%s)
  # Test threads: Wine is slower to start processes and threads; keep the default parallelism.
  local status=0
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine \
    cargo test "${cargo_args[@]}" "${tests[@]}" --no-fail-fast 2>&1 | tee "$log" || status=$?
  wineserver -w
  elapsed "tests under Wine" "$start"
  echo "== under Wine, per test binary:"
  grep -E '^     Running|^test result:' "$log" | sed 's/^ *//' | paste - - || true
  awk '/^test result:/ {
         for (i = 1; i <= NF; i++) {
           if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1);
           if ($(i) ~ /^ignored;?$/) g += $(i-1)
         }
       }
       END { printf "== total under Wine: %d passed, %d failed, %d ignored\n", p, f, g }' "$log"
  echo "== ignored under Wine (with the reason):"
  grep -E '^test .* \.\.\. ignored' "$log" || echo "(none)"
  if grep -qE '^test .* \.\.\. FAILED' "$log"; then
    echo "== failed under Wine:"
    grep -E '^test .* \.\.\. FAILED' "$log" | sort -u
  fi
  return "$status"
}

# screenshot_window APP_LOG OUT: waits for the geoloupe window, runs the (fake) model on the
# selected photo (a click on the map for the keyboard focus, then Space), then screenshots the
# display.
screenshot_window() {
  wait_for_window "$1"
  sleep 4
  xdotool mousemove 600 500 click 1 || true
  sleep 0.5
  xdotool key space || true
  sleep "${GEOLOUPE_WINE_SETTLE_SECS:-6}"
  mkdir -p "$(dirname "$2")"
  xwd -root -silent -display "$DISPLAY" | convert xwd:- "$2"
  echo "wrote $2"
}

# close_app PID: closes the window like a user would, then ends the prefix's processes.
close_app() {
  # Alt+F4: Wine turns it into WM_CLOSE, as Windows does.
  xdotool mousemove 600 500 click 1 key alt+F4 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$1" 2>/dev/null && echo "the app did not close in 10 s; ending it" >&2
  wineserver -k 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

step_app() {
  local start scratch app_pid
  start=$(date +%s)
  [ -f "$exe" ] || step_build
  scratch="$work/app"
  rm -rf "$scratch"
  mkdir -p "$scratch/home"
  new_prefix "$scratch/prefix"
  # shellcheck source=scripts/lib/window.sh
  source scripts/lib/window.sh
  SCREEN_W=1600 SCREEN_H=1000 start_xvfb "${GEOLOUPE_WINE_DISPLAY:-:91}" "$scratch"
  export SCREEN_W=1600 SCREEN_H=1000
  trap 'kill "${xvfb_pid:-}" 2>/dev/null || true' EXIT
  GEOLOUPE_DATA_DIR="$scratch/data" HOME="$scratch/home" GEOLOUPE_FAKE_MODEL=1 GEOLOUPE_OFFLINE=1 \
    wine "$exe" tests/fixtures/images/gps.jpg tests/fixtures/images >"$scratch/app.log" 2>&1 &
  app_pid=$!
  screenshot_window "$scratch/app.log" docs/windows-wine.png
  close_app "$app_pid"
  kill "$xvfb_pid" 2>/dev/null || true
  elapsed app "$start"
}

step_installer() {
  local start stage setup prefix user appdata programs start_menu cmd photo_win app_pid
  start=$(date +%s)
  [ -f "$exe" ] || step_build
  stage="$work/stage"
  rm -rf "$stage"
  mkdir -p "$stage" "$target_dir/packages"
  x86_64-w64-mingw32-strip -o "$stage/geoloupe.exe" "$exe"
  setup="$target_dir/packages/geoloupe-$version-setup.exe"
  makensis -V2 -NOCD -DVERSION="$version" -DSTAGE="$stage" -DOUTFILE="$setup" \
    packaging/windows/geoloupe.nsi
  echo "built $setup: $(du -h "$setup" | cut -f1) (geoloupe.exe stripped: $(du -h "$stage/geoloupe.exe" | cut -f1))"
  elapsed "installer build" "$start"

  start=$(date +%s)
  prefix="$work/installer/prefix"
  new_prefix "$prefix"
  user="$(whoami)"
  appdata="$prefix/drive_c/users/$user/AppData"
  programs="$appdata/Local/Programs/geoloupe"
  start_menu="$appdata/Roaming/Microsoft/Windows/Start Menu/Programs"
  # The photo extensions of the installer's ForEachPhotoExtension macro.
  local extensions
  extensions="$(sed -n 's/^ *!insertmacro ${MACRO} "\(\.[a-z]*\)"$/\1/p' packaging/windows/geoloupe.nsi |
    tr '\n' ' ')"
  local uninstall_key='HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\geoloupe'

  echo "== install (silent)"
  wine "$setup" /S
  wineserver -w
  for f in geoloupe.exe geoloupe.ico uninstall.exe BASEMAP_LICENSE.md PLACES_LICENSE.md; do
    [ -f "$programs/$f" ] || { echo "missing after install: $programs/$f" >&2; exit 1; }
  done
  [ -f "$start_menu/geoloupe.lnk" ] || { echo "no Start-menu shortcut" >&2; exit 1; }
  echo "installed files: $(ls "$programs" | tr '\n' ' ')"
  echo "Start menu: $(ls "$start_menu" | tr '\n' ' ')"
  wine reg query "$uninstall_key" | tr -d '\r'
  echo "Add/Remove Programs (wine uninstaller --list):"
  wine uninstaller --list | tr -d '\r'
  wine uninstaller --list | tr -d '\r' | grep -q '|||geoloupe$' ||
    { echo "geoloupe is not listed in Add/Remove Programs" >&2; exit 1; }
  cmd="$(wine reg query 'HKCU\Software\Classes\geoloupe.Photo\shell\open\command' /ve | tr -d '\r' |
    sed -n 's/.*REG_SZ *//p')"
  echo "open command: $cmd"
  local ext
  for ext in $extensions; do
    wine reg query "HKCU\\Software\\Classes\\$ext\\OpenWithProgids" /v geoloupe.Photo >/dev/null ||
      { echo "no Open with entry for $ext" >&2; exit 1; }
  done
  echo "Open with entries: $extensions"

  echo "== the installed geoloupe.exe, through the Open with command on a photo"
  # shellcheck source=scripts/lib/window.sh
  source scripts/lib/window.sh
  mkdir -p "$work/installer/home"
  SCREEN_W=1600 SCREEN_H=1000 start_xvfb "${GEOLOUPE_WINE_DISPLAY:-:91}" "$work/installer"
  export SCREEN_W=1600 SCREEN_H=1000
  trap 'kill "${xvfb_pid:-}" 2>/dev/null || true' EXIT
  photo_win="$(winepath -w tests/fixtures/images/gps.jpg)"
  # The registered command with %1 replaced, as Explorer runs it.
  local exe_win="${cmd%%\" *}"
  exe_win="${exe_win#\"}"
  [ "$cmd" = "\"$exe_win\" \"%1\"" ] || { echo "unexpected open command: $cmd" >&2; exit 1; }
  GEOLOUPE_DATA_DIR="$work/installer/data" HOME="$work/installer/home" GEOLOUPE_FAKE_MODEL=1 \
    GEOLOUPE_OFFLINE=1 wine "$exe_win" "$photo_win" >"$work/installer/app.log" 2>&1 &
  app_pid=$!
  screenshot_window "$work/installer/app.log" docs/windows-installed.png
  close_app "$app_pid"
  kill "$xvfb_pid" 2>/dev/null || true

  echo "== uninstall (silent)"
  wine "$programs/uninstall.exe" /S
  wineserver -w
  # NSIS's uninstaller runs from a copy in %TEMP%; wait for that copy to finish removing files.
  for _ in $(seq 1 30); do
    [ -e "$programs" ] || break
    sleep 1
  done
  [ ! -e "$programs" ] || { echo "left after uninstall: $(ls -A "$programs")" >&2; exit 1; }
  [ ! -e "$start_menu/geoloupe.lnk" ] || { echo "shortcut left after uninstall" >&2; exit 1; }
  local key
  for key in "$uninstall_key" 'HKCU\Software\Classes\geoloupe.Photo' \
    'HKCU\Software\Classes\Applications\geoloupe.exe'; do
    if wine reg query "$key" >/dev/null 2>&1; then
      echo "registry key left after uninstall: $key" >&2
      exit 1
    fi
  done
  for ext in $extensions; do
    if wine reg query "HKCU\\Software\\Classes\\$ext\\OpenWithProgids" /v geoloupe.Photo >/dev/null 2>&1; then
      echo "Open with entry left after uninstall: $ext" >&2
      exit 1
    fi
  done
  if wine uninstaller --list | grep -q 'geoloupe'; then
    echo "still listed in Add/Remove Programs" >&2
    exit 1
  fi
  echo "uninstalled: no files, shortcut, registry keys or Add/Remove entry left"
  elapsed "installer check under Wine" "$start"
}

# Failing tests fail the script, after the other steps have run.
test_status=0
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(build)
for step in "${steps[@]}"; do
  case "$step" in
    build) step_build ;;
    clippy) step_clippy ;;
    test) step_test || test_status=$? ;;
    app) step_app ;;
    installer) step_installer ;;
    all)
      step_build
      step_clippy
      step_test || test_status=$?
      step_app
      step_installer
      ;;
    *) echo "unknown step: $step (build|clippy|test|app|installer|all)" >&2; exit 2 ;;
  esac
done
exit "$test_status"
