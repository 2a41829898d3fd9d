#!/usr/bin/env bash
# Cluster runs (issue 15), offline: the Kubernetes Job validated against Kubernetes' own schema
# (kubernetes-validate from PyPI, which carries it), the Slurm script through `bash -n` and
# ShellCheck, and the results file the tests left read back by DuckDB (check_results.py).
# Needs: python3 -m pip install kubernetes-validate==1.37.0 duckdb==2.0.1; apt-get install
# ShellCheck; a `cargo test --test cluster` run before it.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m kubernetes_validate --strict --kubernetes-version 1.37.0 \
  packaging/kubernetes/geoloupe-job.yaml
bash -n packaging/slurm/geoloupe-array.sh
shellcheck packaging/slurm/geoloupe-array.sh scripts/headless.sh scripts/check-cluster.sh
echo "== packaging/slurm/geoloupe-array.sh: bash -n and shellcheck pass"

results="${CARGO_TARGET_DIR:-target}/tmp/cluster-archive/single.parquet"
[[ -f "$results" ]] || { echo "no $results: run cargo test --test cluster first" >&2; exit 1; }
# 200 generated photos and 2 broken files (tests/cluster.rs).
python3 scripts/check_results.py "$results" 202 2
