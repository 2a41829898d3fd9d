#!/usr/bin/env python3
"""Builds assets/basemap.bin, the offline basemap, from Natural Earth (public domain) TopoJSON.

Input: the npm package `world-atlas` 2.x (Natural Earth 1:50m land, 1:110m countries), e.g.

    npm pack world-atlas@2 && tar xzf world-atlas-2.0.2.tgz
    python3 scripts/make_basemap.py package/ assets/basemap.bin

Output format (little-endian), read by `src/ui/overlays/basemap.rs`:

    b"GLBM" u32 version=1 u32 line_count
    line_count x { u8 kind (0 = land ring, closed; 1 = country border), u32 point_count,
                   point_count x (i16 lon_centideg, i16 lat_centideg) }

Coordinates are lon-first like GeoJSON, in hundredths of a degree (~1 km).
"""
import json
import struct
import sys
from pathlib import Path


def decode_arcs(topo):
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def arc_points(arcs, index):
    return arcs[index] if index >= 0 else list(reversed(arcs[~index]))


def ring_points(arcs, ring):
    pts = []
    for i, a in enumerate(ring):
        p = arc_points(arcs, a)
        pts.extend(p if i == 0 else p[1:])
    return pts


def polygons(geom):
    if geom["type"] == "Polygon":
        return [geom["arcs"]]
    if geom["type"] == "MultiPolygon":
        return geom["arcs"]
    return []


def quantise(pts):
    out = []
    for lon, lat in pts:
        q = (round(max(-180, min(180, lon)) * 100), round(max(-90, min(90, lat)) * 100))
        if not out or out[-1] != q:
            out.append(q)
    return out


def main(src, dst):
    src = Path(src)
    lines = []
    land = json.loads((src / "land-50m.json").read_text())
    land_arcs = decode_arcs(land)
    for geom in land["objects"]["land"]["geometries"]:
        for poly in polygons(geom):
            for ring in poly:
                pts = quantise(ring_points(land_arcs, ring))
                if len(pts) >= 3:
                    lines.append((0, pts))
    countries = json.loads((src / "countries-110m.json").read_text())
    c_arcs = decode_arcs(countries)
    # Borders: arcs used by two different countries (topojson.mesh(a !== b)).
    users = {}
    for ci, geom in enumerate(countries["objects"]["countries"]["geometries"]):
        for poly in polygons(geom):
            for ring in poly:
                for a in ring:
                    users.setdefault(a if a >= 0 else ~a, set()).add(ci)
    for arc_index, who in sorted(users.items()):
        if len(who) >= 2:
            pts = quantise(c_arcs[arc_index])
            if len(pts) >= 2:
                lines.append((1, pts))
    out = bytearray(b"GLBM")
    out += struct.pack("<II", 1, len(lines))
    for kind, pts in lines:
        out += struct.pack("<BI", kind, len(pts))
        for lon, lat in pts:
            out += struct.pack("<hh", lon, lat)
    Path(dst).write_bytes(out)
    print(f"{dst}: {len(lines)} lines, {sum(len(p) for _, p in lines)} points, {len(out)} bytes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
