"""Geometry of the demo city: a lattice of square cells (~800 m) over lon 120.10-120.40, lat 30.15-30.40.

Each cell is one grid; every coarser area is the union of its children, so the levels tile the city without
overlap and nest exactly. Partitions are graph-Voronoi regions grown by breadth-first search over
edge-adjacent cells, which keeps every area a single connected polygon.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable
from typing import Any

from shapely.geometry import box, mapping
from shapely.geometry.polygon import orient

# Lattice over the city's bounding box; coordinates are rounded once per lattice line so that neighbouring
# cells share bit-identical vertices and unions come out clean.
LON0, LON1, LAT0, LAT1 = 120.10, 120.40, 30.15, 30.40
NCOLS, NROWS = 36, 35

Cell = tuple[int, int]  # (column, row)


def lattice() -> tuple[list[float], list[float]]:
    lons = [round(LON0 + i * (LON1 - LON0) / NCOLS, 6) for i in range(NCOLS + 1)]
    lats = [round(LAT0 + j * (LAT1 - LAT0) / NROWS, 6) for j in range(NROWS + 1)]
    return lons, lats


def city_cells(rng: random.Random) -> list[Cell]:
    """Cells inside a wobbly ellipse. Each row keeps one contiguous run of columns and neighbouring runs
    overlap, so the city is connected and has no holes."""
    phase1, phase2 = rng.uniform(0, 6.3), rng.uniform(0, 6.3)
    cells = []
    for r in range(NROWS):
        y = (r + 0.5) / NROWS * 2 - 1
        half = math.sqrt(max(0.0, 1 - y * y)) * (1 + 0.07 * math.sin(3 * y + phase1))
        half = max(half, 0.2)
        shift = 0.05 * math.sin(2 * y + phase2)
        for c in range(NCOLS):
            x = (c + 0.5) / NCOLS * 2 - 1
            if abs(x - shift) <= half:
                cells.append((c, r))
    return cells


def bfs_regions(cells: set[Cell], seeds: list[Cell]) -> list[list[Cell]]:
    """Multi-source BFS over edge neighbours: every cell joins the seed that reaches it first. Each region is
    connected because a cell's BFS parent belongs to the same region."""
    owner: dict[Cell, int] = {}
    queue: deque[Cell] = deque()
    for i, s in enumerate(seeds):
        owner[s] = i
        queue.append(s)
    while queue:
        c, r = queue.popleft()
        i = owner[(c, r)]
        for n in ((c + 1, r), (c - 1, r), (c, r + 1), (c, r - 1)):
            if n in cells and n not in owner:
                owner[n] = i
                queue.append(n)
    regions: list[list[Cell]] = [[] for _ in seeds]
    for cell in sorted(cells):
        regions[owner[cell]].append(cell)
    return regions


def centroid(cells: Iterable[Cell]) -> tuple[float, float]:
    cs = list(cells)
    return sum(c for c, _ in cs) / len(cs), sum(r for _, r in cs) / len(cs)


def nearest(cells: Iterable[Cell], point: tuple[float, float]) -> Cell:
    return min(cells, key=lambda c: ((c[0] - point[0]) ** 2 + (c[1] - point[1]) ** 2, c))


def partition(
    cells: list[Cell], k: int, rng: random.Random, seeds: list[Cell] | None = None
) -> list[list[Cell]]:
    """Split a connected set of cells into k connected, roughly balanced regions (farthest-point seeds, then a
    few Lloyd steps that move each seed to its region's centre)."""
    k = min(k, len(cells))
    cellset = set(cells)
    ordered = sorted(cells)
    if seeds is None:
        chosen = [rng.choice(ordered)]
        while len(chosen) < k:
            chosen.append(
                max(ordered, key=lambda c: min((c[0] - s[0]) ** 2 + (c[1] - s[1]) ** 2 for s in chosen))
            )
        seeds = chosen
    regions = bfs_regions(cellset, seeds)
    for _ in range(4):
        seeds = [nearest(reg, centroid(reg)) for reg in regions]
        regions = bfs_regions(cellset, seeds)
    return [reg for reg in regions if reg]


def geojson(geom: Any) -> dict[str, Any]:
    """Shapely polygon → GeoJSON dict with lists (not tuples) and a counter-clockwise exterior (RFC 7946)."""
    geom = orient(geom.simplify(0), 1.0)
    if geom.geom_type != "Polygon":  # pragma: no cover - the BFS partition guarantees connected areas
        raise ValueError(f"area is not a single polygon: {geom.geom_type}")
    m = mapping(geom)
    return {"type": "Polygon", "coordinates": [[[x, y] for x, y in ring] for ring in m["coordinates"]]}


class Lattice:
    """The lattice's lines, and the box of a cell."""

    def __init__(self) -> None:
        self.lons, self.lats = lattice()

    def box(self, cell: Cell) -> Any:
        c, r = cell
        return box(self.lons[c], self.lats[r], self.lons[c + 1], self.lats[r + 1])
