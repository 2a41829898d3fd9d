#!/usr/bin/env bash
# Peak resident memory and start-up of `geoloupe locate` loading a full-size CLIP ViT-L/14 in the
# real Hugging Face file layout (issue 13, items 3 and 4).
#
#   scripts/bench-memory.sh                      exact mode (the default precision)
#   PRECISIONS="exact bf16" scripts/bench-memory.sh
#
# What it does, from the repository root:
#   1. makes (once, cached in target/bench-memory/) a stand-in for openai/clip-vit-large-patch14:
#      model.safetensors with every tensor of transformers' CLIPModel (text tower included,
#      1,710,540,580 bytes, random weights) plus config.json and preprocessor_config.json, by
#      scripts/make_clip_l14_layout.py in a venv with numpy and safetensors from PyPI;
#   2. installs GeoCLIP's real heads and 100K gallery from the geoclip wheel ($GEOCLIP_WHEEL, else
#      target/downloads/geoclip-1.3.0-py3-none-any.whl) into a scratch data dir;
#   3. builds geoloupe (debug profile, as CI does) and copies the binary aside, unless
#      GEOLOUPE_BIN names one;
#   4. per precision, measures with /usr/bin/time -v:
#      (b) `locate` on 10 photos with the gallery feature cache empty (the first gallery encode),
#      (a) the same with the cache filled by (b),
#      (c) start-up: process start to the first ranked photo (first line of `--format jsonl`) on
#          one photo with the cache filled, best of 3;
#      (d) `query` on one text (issue 14), which reads the text tower and not the image tower:
#          its peak RSS and wall time (tokenizer.json, the real CLIP tokenizer, is taken from
#          tests/fixtures/tiny_clip/);
#      and prints a table. `--precision P` is passed only when PRECISIONS is set.
# Wall times depend on what else runs on the machine (the load average is printed); peak RSS does
# not. BENCH_MEMORY_STRICT=1 exits 1 when a target is missed (1.5 GiB exact, 1.0 GiB bf16,
# start-up 2 s).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="$root/target/bench-memory"
clip="$work/clip-vit-large-patch14"
data="$work/data"
photos="$work/photos"
mkdir -p "$work"

wheel="${GEOCLIP_WHEEL:-$root/target/downloads/geoclip-1.3.0-py3-none-any.whl}"
if [[ ! -f "$wheel" ]]; then
    echo "error: the geoclip wheel is needed: pip download --no-deps geoclip==1.3.0 -d target/downloads (or set GEOCLIP_WHEEL)" >&2
    exit 2
fi
if [[ ! -x /usr/bin/time ]]; then
    echo "error: /usr/bin/time (GNU time) is needed: apt-get install time" >&2
    exit 2
fi

# 1. The CLIP folder in the real layout (random weights).
expected_bytes=1710540580
if [[ "$(stat -c %s "$clip/model.safetensors" 2>/dev/null || echo 0)" != "$expected_bytes" ]]; then
    if [[ ! -x "$work/venv/bin/python" ]]; then
        python3 -m venv "$work/venv"
        "$work/venv/bin/pip" install --quiet numpy safetensors
    fi
    "$work/venv/bin/python" scripts/make_clip_l14_layout.py "$clip"
fi

# 2. The real heads and gallery.
if [[ ! -f "$data/models/geoclip/manifest.json" ]]; then
    install_heads=1
else
    install_heads=0
fi

# 3. The binary (copied: the target folder may be shared with other builds).
if [[ -n "${GEOLOUPE_BIN:-}" ]]; then
    bin="$GEOLOUPE_BIN"
else
    cargo build --locked --bin geoloupe
    cp "${CARGO_TARGET_DIR:-$root/target}/debug/geoloupe" "$work/geoloupe"
    bin="$work/geoloupe"
fi
if [[ "$install_heads" == 1 ]]; then
    "$bin" --data-dir "$data" model import "$wheel" >/dev/null
fi

# Ten photos (the fixtures, repeated).
rm -rf "$photos"
mkdir -p "$photos"
n=0
while [[ $n -lt 10 ]]; do
    for f in landscape.jpg portrait.png rgba.png grey.png kauai.jpg rotated.jpg small.png rgb16.png; do
        [[ $n -lt 10 ]] || break
        cp "tests/fixtures/images/$f" "$photos/$n-$f"
        n=$((n + 1))
    done
done
one_photo="tests/fixtures/images/landscape.jpg"
[[ -f "$clip/tokenizer.json" ]] || cp tests/fixtures/tiny_clip/tokenizer.json "$clip/"

# Peak RSS (KiB) and wall seconds of one locate run; its log goes to $work/last.log.
measure() {
    measure_command locate --format jsonl "$@"
}

# The same for any subcommand taking --backbone.
measure_command() {
    local out="$work/time.txt"
    local command="$1"
    shift
    RUST_LOG=geoloupe::model::engine=info /usr/bin/time -v -o "$out" \
        "$bin" --data-dir "$data" "$command" --backbone "$clip" "$@" \
        >"$work/last.out" 2>"$work/last.log"
    local rss wall
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$out")
    # m:ss.ss or h:mm:ss to seconds.
    wall=$(awk -v t="$wall" 'BEGIN { n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }')
    echo "$rss $wall"
}

# Seconds from process start to the first line on standard output.
first_line_secs() {
    local start end
    start=$(date +%s%N)
    "$bin" --data-dir "$data" locate --backbone "$clip" --format jsonl "$@" 2>/dev/null | {
        IFS= read -r _line || true
        end=$(date +%s%N)
        cat >/dev/null
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
    }
}

gib() { awk -v k="$1" 'BEGIN { printf "%.3f", k / 1048576 }'; }
within() { awk -v v="$1" -v lim="$2" 'BEGIN { print (v <= lim) ? "yes" : "NO" }'; }

precisions="${PRECISIONS:-exact}"
missed=0
rows=()
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for precision in $precisions; do
    flags=()
    if [[ -n "${PRECISIONS:-}" ]]; then
        flags=(--precision "$precision")
    fi
    case "$precision" in
        bf16) limit_gib=1.0 ;;
        *) limit_gib=1.5 ;;
    esac
    rm -rf "$data/cache/gallery"
    read -r rss wall < <(measure "${flags[@]}" "$photos")
    loaded=$(grep -o 'model loaded in.*' "$work/last.log" | head -1 || true)
    rows+=("$precision|10 photos, first gallery encode|$(gib "$rss")|$wall|$(within "$(gib "$rss")" "$limit_gib") (<= $limit_gib GiB)")
    [[ "$(within "$(gib "$rss")" "$limit_gib")" == yes ]] || missed=1
    echo "$precision, cache empty: $loaded"
    read -r rss wall < <(measure "${flags[@]}" "$photos")
    loaded=$(grep -o 'model loaded in.*' "$work/last.log" | head -1 || true)
    rows+=("$precision|10 photos, gallery cached|$(gib "$rss")|$wall|$(within "$(gib "$rss")" "$limit_gib") (<= $limit_gib GiB)")
    [[ "$(within "$(gib "$rss")" "$limit_gib")" == yes ]] || missed=1
    echo "$precision, cached: $loaded"
    best=""
    for _ in 1 2 3; do
        secs=$(first_line_secs "${flags[@]}" "$one_photo")
        if [[ -z "$best" ]] || awk -v a="$secs" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best="$secs"
        fi
    done
    rows+=("$precision|start-up to the first ranked photo (1 photo, cached; best of 3)|-|$best|$(within "$best" 2) (<= 2 s)")
    [[ "$(within "$best" 2)" == yes ]] || missed=1
    read -r rss wall < <(measure_command query "${flags[@]}" "a snowy harbour with red roofs")
    rows+=("$precision|query: 1 text (text tower, heads, cached gallery; no image tower)|$(gib "$rss")|$wall|-")
done

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf '%-9s | %-66s | %-13s | %-7s | %s\n' precision case "peak RSS GiB" "wall s" "within target"
printf '%s\n' "----------|--------------------------------------------------------------------|---------------|---------|--------------"
for row in "${rows[@]}"; do
    IFS='|' read -r p c r w ok <<<"$row"
    printf '%-9s | %-66s | %-13s | %-7s | %s\n' "$p" "$c" "$r" "$w" "$ok"
done
if [[ "${BENCH_MEMORY_STRICT:-0}" == 1 && "$missed" == 1 ]]; then
    exit 1
fi
