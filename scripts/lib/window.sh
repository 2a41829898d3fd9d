# Shared by scripts/screenshot.sh, scripts/frametime.sh and scripts/workbench.sh (sourced, not
# run): an Xvfb display of $SCREEN_W x $SCREEN_H (default 1440x900) with software GL, and
# waiting for the app's window.

# start_xvfb DISPLAY WORKDIR: starts Xvfb (its pid in xvfb_pid) and exports DISPLAY and the
# software-GL settings (Mesa's llvmpipe; no Wayland).
start_xvfb() {
  Xvfb "$1" -screen 0 "${SCREEN_W:-1440}x${SCREEN_H:-900}x24" -nolisten tcp >"$2/xvfb.log" 2>&1 &
  xvfb_pid=$!
  sleep 2
  export DISPLAY="$1" LIBGL_ALWAYS_SOFTWARE=1 WAYLAND_DISPLAY= XDG_SESSION_TYPE=x11
}

# wait_for_window APP_LOG: waits up to 60 s for the "geoloupe" window (its id in window), then
# sizes it to the screen; without a window, prints the app's log and exits.
wait_for_window() {
  window=""
  for _ in $(seq 1 60); do
    window="$(xdotool search --name '^geoloupe$' 2>/dev/null | head -n1 || true)"
    [ -n "$window" ] && break
    sleep 1
  done
  if [ -z "$window" ]; then
    echo "the window did not appear; app log:" >&2
    cat "$1" >&2
    exit 1
  fi
  xdotool windowsize "$window" "${SCREEN_W:-1440}" "${SCREEN_H:-900}" windowmove "$window" 0 0 || true
}
