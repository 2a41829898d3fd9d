#!/usr/bin/env python3
"""Reads a geoloupe results file (`locate --output`, `merge`) with DuckDB, a tool nobody here
wrote, as README's one-liner does (issue 15): the typed columns, the candidates as a list of
structs, and the provenance in the file's metadata.

    python3 scripts/check_results.py FILE.parquet [PHOTOS] [FAILED]
"""

import json
import sys

import duckdb


def main() -> None:
    path = sys.argv[1]
    want_photos = int(sys.argv[2]) if len(sys.argv) > 2 else None
    want_failed = int(sys.argv[3]) if len(sys.argv) > 3 else None
    # README's one-liner (the most confident answers first).
    top = duckdb.execute(
        f"SELECT path, lat_deg, lon_deg, place, candidates[1].probability AS p "
        f"FROM '{path}' WHERE status = 'ok' ORDER BY p DESC LIMIT 10"
    ).fetchall()
    assert top, "no located photo"
    for row_path, lat, lon, place, p in top:
        assert -90 <= lat <= 90 and -180 <= lon <= 180, (row_path, lat, lon)
        assert place, row_path
        assert 0 < p <= 1, (row_path, p)
    photos, failed, bad_lists = duckdb.execute(
        f"SELECT count(*), count(*) FILTER (status = 'failed'), "
        f"count(*) FILTER (status = 'ok' AND (len(candidates) = 0 "
        f"  OR candidates[1].lat_deg != lat_deg OR candidates[1].rank != 1)) "
        f"FROM '{path}'"
    ).fetchone()
    assert bad_lists == 0, f"{bad_lists} located photos whose first candidate is not their answer"
    if want_photos is not None:
        assert photos == want_photos, f"{photos} photos, want {want_photos}"
    if want_failed is not None:
        assert failed == want_failed, f"{failed} failed, want {want_failed}"
    duplicates = duckdb.execute(
        f"SELECT count(*) - count(DISTINCT path) FROM '{path}'"
    ).fetchone()[0]
    assert duplicates == 0, f"{duplicates} duplicate paths"
    metadata = dict(
        duckdb.execute(
            f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{path}')"
        ).fetchall()
    )
    assert metadata["geoloupe.format"] == "geoloupe-results/1", metadata
    provenance = json.loads(metadata["geoloupe.provenance"])
    assert len(provenance["weights_sha256"]) == 64 and len(provenance["gallery_sha256"]) == 64
    print(
        f"== DuckDB {duckdb.__version__} read {path}: {photos} photos, {failed} failed, "
        f"model {provenance['model']} ({provenance['backbone']})"
    )


if __name__ == "__main__":
    main()
