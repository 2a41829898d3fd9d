#!/usr/bin/env bash
# Locate an archive with a Slurm job array (issue 15; README, "Millions of photos"). Each array
# task locates one shard (its index from SLURM_ARRAY_TASK_ID, the number of shards from the
# array's size) and writes RESULTS/part-INDEX.parquet; a task run again resumes its part.
#
#   PHOTOS=/archive RESULTS=/scratch/results GEOLOUPE_DATA_DIR=/shared/geoloupe \
#     sbatch --array=0-15%8 packaging/slurm/geoloupe-array.sh
#   geoloupe merge /scratch/results/part-*.parquet --output all.parquet
#
# sbatch passes the environment on (PHOTOS, RESULTS, GEOLOUPE_DATA_DIR, and GEOLOUPE for the
# binary when it is not on PATH).
#SBATCH --job-name=geoloupe
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --time=24:00:00
#SBATCH --output=geoloupe-%A_%a.log
#SBATCH --requeue
set -euo pipefail

: "${PHOTOS:?set PHOTOS to the folder of photos (or a manifest file: see --manifest)}"
: "${RESULTS:?set RESULTS to the folder for the part files}"
: "${SLURM_ARRAY_TASK_ID:?run this with sbatch --array=0-N}"
: "${SLURM_ARRAY_TASK_COUNT:?run this with sbatch --array=0-N}"
geoloupe=${GEOLOUPE:-geoloupe}

# candle's threads: as many as the task's CPUs.
export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
mkdir -p "$RESULTS"
part=$(printf '%s/part-%04d.parquet' "$RESULTS" "$SLURM_ARRAY_TASK_ID")
if [[ -f "$PHOTOS" ]]; then
  inputs=(--manifest "$PHOTOS")
else
  inputs=("$PHOTOS")
fi

# Exit status 1 means some photos could not be located: they are rows in the part file with
# their error, not a reason to fail the task.
status=0
"$geoloupe" locate --shards "$SLURM_ARRAY_TASK_COUNT" --output "$part" --format none \
  "${inputs[@]}" || status=$?
if ((status > 1)); then
  exit "$status"
fi
