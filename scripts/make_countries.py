#!/usr/bin/env python3
"""Builds assets/countries.zip, the country outlines that `geo::region` reads for `--within`
and the app's region control, from Natural Earth's 1:50m admin-0 countries as TopoJSON in the
npm package world-atlas 2.0.2 (`countries-50m.json`; Natural Earth is public domain, the
package's conversion is ISC, Copyright 2013-2019 Michael Bostock):

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python3 scripts/make_countries.py package/countries-50m.json assets/countries.zip

Ids in world-atlas are ISO 3166-1 numeric; the alpha-2/alpha-3 codes come from Debian's
iso-codes (`/usr/share/iso-codes/json/iso_3166-1.json`, 4.15.0; pass another path as the third
argument). Kosovo has no numeric id and gets `XK`/`XKX` as GeoNames uses; the few other
features without one (N. Cyprus, Somaliland, Siachen Glacier, Indian Ocean Ter.) keep their
Natural Earth name and no code.

Output: a zip holding one file, `countries.txt`, ASCII/UTF-8, one record a line:

    T <tab> scale_x <tab> scale_y <tab> translate_x <tab> translate_y    (once, first line)
    C <tab> alpha2 <tab> alpha3 <tab> numeric <tab> Natural Earth name   (a country)
    P                                                                    (a polygon of it)
    R <tab> x0,y0 dx,dy dx,dy ...                                        (a ring of it)

A polygon's first ring is its outer ring, the following ones its holes. Ring points are the
TopoJSON quantised integers (1e5 steps), the first absolute, the rest as deltas;
lon_deg = x * scale_x + translate_x, lat_deg = y * scale_y + translate_y. The closing point is
not repeated. Rings are kept as world-atlas has them: a ring that crosses the antimeridian (Russia's
Chukotka, Fiji) jumps from x near 0 to x near 99999 and back, and Antarctica's coast winds once
around the pole; `geo::region` unwraps longitudes and closes such rings over the pole when it
reads them. The zip is written with a fixed date so it is reproducible.
"""
import json
import sys
import zipfile

ISO_DEFAULT = "/usr/share/iso-codes/json/iso_3166-1.json"
NO_ID = {"Kosovo": ("XK", "XKX", "")}


def decode_arcs(topo):
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x, y))
        arcs.append(pts)
    return arcs


def ring_points(arcs, ring):
    pts = []
    for i in ring:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        # consecutive arcs share their end point
        pts.extend(arc if not pts else arc[1:])
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts.pop()
    return pts


def main(src, dst, iso_path=ISO_DEFAULT):
    topo = json.load(open(src, encoding="utf-8"))
    iso = json.load(open(iso_path, encoding="utf-8"))["3166-1"]
    by_numeric = {c["numeric"]: (c["alpha_2"], c["alpha_3"]) for c in iso}
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = decode_arcs(topo)
    lines = [f"T\t{sx!r}\t{sy!r}\t{tx!r}\t{ty!r}\n"]
    geoms = topo["objects"]["countries"]["geometries"]
    points = 0
    for g in geoms:
        name = g["properties"]["name"]
        num = g.get("id", "")
        if num:
            a2, a3 = by_numeric[num]
        else:
            a2, a3, num = NO_ID.get(name, ("", "", ""))
        lines.append(f"C\t{a2}\t{a3}\t{num}\t{name}\n")
        polys = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
        for poly in polys:
            lines.append("P\n")
            for ring in poly:
                pts = ring_points(arcs, ring)
                if len(pts) < 3:
                    continue
                parts = [f"{pts[0][0]},{pts[0][1]}"]
                parts += [f"{b[0] - a[0]},{b[1] - a[1]}" for a, b in zip(pts, pts[1:])]
                lines.append("R\t" + " ".join(parts) + "\n")
                points += len(pts)
    info = zipfile.ZipInfo("countries.txt", date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr(info, "".join(lines).encode("utf-8"), compresslevel=9)
    print(f"{len(geoms)} countries, {points} points -> {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:])
