#!/usr/bin/env bash
# Throughput of a cluster worker (issue 15): `geoloupe locate` on N photos (default 1,000) as a
# shard would run it, with and without `--output part.parquet`, best of R runs each; prints
# photos per hour per core and what the Parquet part (rows, sha256 of every photo, journal
# commits) adds to the run.
#
#   scripts/bench-cluster.sh [N] [R]                  the data folder's installed backbone
#   BACKBONE=DIR scripts/bench-cluster.sh 1000 2      another backbone folder
#
# The photos are copies of tests/fixtures/images/landscape.jpg (1024 x 683), each made distinct
# by a number after its end, so every sha256 differs and nothing is cached between photos.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-1000}
repeats=${2:-2}
geoloupe=${GEOLOUPE_BIN:-target/debug/geoloupe}
[[ -n "${GEOLOUPE_BIN:-}" ]] || cargo build --locked --bin geoloupe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/photos"
for ((i = 0; i < count; i++)); do
  { cat tests/fixtures/images/landscape.jpg; printf '%08d' "$i"; } >"$work/photos/$(printf 'p%05d.jpg' "$i")"
done
backbone=()
[[ -z "${BACKBONE:-}" ]] || backbone=(--backbone "$BACKBONE")
# The gallery cache filled first, so no run pays for it.
"$geoloupe" model prepare "${backbone[@]}" >/dev/null

best() {
  local best_s=""
  for ((r = 0; r < repeats; r++)); do
    rm -rf "$work/part.parquet" "$work/part.parquet.journal"
    local start end
    start=$(date +%s.%N)
    "$geoloupe" locate "${backbone[@]}" --format none "$@" "$work/photos" 2>/dev/null
    end=$(date +%s.%N)
    best_s=$(awk -v a="$start" -v b="$end" -v best="$best_s" \
      'BEGIN { t = b - a; if (best == "" || t < best) best = t; printf "%.3f", best }')
  done
  echo "$best_s"
}

cores=$(nproc)
plain=$(best)
parquet=$(best --output "$work/part.parquet")
awk -v n="$count" -v c="$cores" -v plain="$plain" -v pq="$parquet" 'BEGIN {
  printf "== %d photos on %d cores: %.2f s without --output, %.2f s with (best of runs)\n", n, c, plain, pq
  printf "== %.0f photos per hour per core; the Parquet part adds %+.2f %% (%.2f ms a photo)\n",
    n / pq * 3600 / c, (pq - plain) / plain * 100, (pq - plain) / n * 1000
}'
