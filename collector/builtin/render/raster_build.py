"""Building a :class:`~.raster.GroundRaster`: tiles, height planes and painted materials of a World's roads.

Roads are sampled on (s, d) grids (``RoadSurface.point_at``: ``x - d sin h``, ``y + d cos h``); a sample marks
the cell it falls in. Heights: tiles over every road's terrain band, then planes, terrain bands first and
pavements last (the first sample per cell within a chunk of rows). Materials: tiles over the pavements (dilated
by 0.5 m), then for pavements and then paints (markings and stop lines) the outline texels of the group (a texel
near several outlines keeps the interior, else the nearest outline) and the deep interior of each strip.

Painting rules: pavement of every road, then markings and stop lines (paint wins over asphalt where roads
overlap). A dashed marking is painted where ``(s - s_start_m) mod (dash_m + gap_m) < dash_m``; a double solid
marking is two lines of ``width_m`` whose centres lie ``DOUBLE_LINE_SPACING_M`` apart around ``offset_m``;
a stop line spans ``s_m +- width_m / 2`` and ``d_from_m..d_to_m``. Pavement ends (s = 0, length) are not
edge-refined (roads usually continue into a junction patch there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..world import MarkingColor, MarkingStyle, RoadSurface, World
from .raster_grid import (
    CELL_M,
    EDGE_BAND_M,
    HEIGHT_MARGIN_M,
    HEIGHT_TILE_SHIFT,
    MATERIAL_TILE_SHIFT,
    N_GRASS_TILES,
    TEXEL_M,
    TEXTURE_LEVELS,
    Material,
    SparseGrid,
    hash_u32,
)

DOUBLE_LINE_SPACING_M = 0.3  # centre-to-centre distance of the two lines of a double solid marking
_INNER_M = 0.2  # the deep interior of a strip lies this far inside its outline
_INSET_M = 0.125  # outline samples reach this far outside a boundary (every edge texel is visited)
_SPLAT_STEP_M = 0.06  # (s, d) sample spacing: < TEXEL_M / sqrt(2), so every texel of an area is hit
_CHUNK_SAMPLES = 1_500_000  # samples per chunk (bounds memory on long roads)
_COARSE_SHIFT = 3  # the coarse texture octave has cells of 8 x 8 texels (see raster_grid.texture_level)
_FINE_SALT, _COARSE_SALT = 0x1234, 0x5678


@dataclass(frozen=True)
class _Strip:
    """A painted rectangle in road coordinates, optionally dashed along s."""

    road: RoadSurface
    d_range: tuple[float, float]
    s_range: tuple[float, float]
    fill: Material
    edge: Material
    dash: tuple[float, float, float] | None = None  # (dash_m, period_m, phase origin s_m)
    lateral_only: bool = False  # no boundary at the s ends (pavements)


@dataclass(frozen=True)
class _Rows:
    """A chunk of an (s, d) sample grid: per row (S,) the reference point and heading, per sample (S, D) local
    x and y (exactly ``RoadSurface.point_at(s, d)[..., :2] - origin_xy``)."""

    s: np.ndarray  # (S,)
    x: np.ndarray  # (S,) reference line, local
    y: np.ndarray
    heading: np.ndarray  # (S,) unwrapped
    X: np.ndarray  # (S, D)
    Y: np.ndarray  # (S, D)


def bounding_box(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Origin (2,) and extent (2,) in metres of the roads' bounding box, padded and snapped to height tiles."""
    tile_m = CELL_M * (1 << HEIGHT_TILE_SHIFT)
    pad_m = HEIGHT_MARGIN_M + max(max(abs(r.left_edge_m), abs(r.right_edge_m)) for r in world.roads) + tile_m
    xy = np.concatenate([r.centre_ned[:, :2] for r in world.roads])  # (N, 2)
    lo = np.floor((xy.min(axis=0) - pad_m) / tile_m) * tile_m
    hi = np.ceil((xy.max(axis=0) + pad_m) / tile_m) * tile_m
    return lo, hi - lo


def build_heights(world: World, origin_xy: np.ndarray, extent_m: np.ndarray) -> SparseGrid:
    """Height planes (n, 3) ``(a, gx, gy)`` of every road's terrain band, then of its pavement; NaN elsewhere."""
    grid, next_id = _empty_grid(extent_m, CELL_M, HEIGHT_TILE_SHIFT, np.float64), 1
    for road in world.roads:
        d = _samples(road.left_edge_m - HEIGHT_MARGIN_M, road.right_edge_m + HEIGHT_MARGIN_M, CELL_M / 2)
        for rows in _rows(road, _samples(0.0, road.length_m, CELL_M / 2), d, origin_xy):
            next_id = grid.allocate(*_cells(grid, rows), next_id)
    grid.data = np.full((next_id << (2 * grid.tile_shift), 3), np.nan)  # tile 0 stays empty (NaN)
    offsets = grid.row_offsets()
    for margin_m in (HEIGHT_MARGIN_M, CELL_M):
        for road in world.roads:
            _write_planes(grid, offsets, road, margin_m, origin_xy)
    return grid


def build_materials(world: World, origin_xy: np.ndarray, extent_m: np.ndarray) -> tuple[SparseGrid, np.ndarray,
                                                                                         np.ndarray]:
    """Material grid (ground ids, texture applied), and per texel the signed distance (mm, int8) of its centre
    to its boundary and the boundary's outward normal angle (uint8, 256 steps per turn) for edge texels."""
    grid, next_id = _empty_grid(extent_m, TEXEL_M, MATERIAL_TILE_SHIFT, np.uint8), N_GRASS_TILES
    dilate = np.array([0.0, -0.5, -0.5, 0.5, 0.5]), np.array([0.0, -0.5, 0.5, -0.5, 0.5])  # (5,) x, y offsets, m
    for road in world.roads:  # allocate from a coarse sampling dilated by 0.5 m
        d = _samples(road.left_edge_m - 0.5, road.right_edge_m + 0.5, 0.5)
        for rows in _rows(road, _samples(0.0, road.length_m, 0.5), d, origin_xy):
            X, Y = (v.reshape(-1, 1) + offset for v, offset in zip((rows.X, rows.Y), dilate))
            next_id = grid.allocate(*_cells(grid, X, Y), next_id)
    n_texels = next_id << (2 * grid.tile_shift)
    grid.data = np.concatenate([grid.data, np.zeros(n_texels - grid.data.size, np.uint8)])
    edge_sd_mm, edge_dir = np.zeros(n_texels, np.int8), np.zeros(n_texels, np.uint8)
    offsets = grid.row_offsets()
    pavements, paints = _strips(world)
    for group in (pavements, paints):  # edges of a group first, then its plain interiors
        _write_edges(grid, offsets, edge_sd_mm, edge_dir, group, origin_xy)
        for strip in group:
            _fill(grid, offsets, strip, origin_xy)
    _apply_texture(grid)
    return grid, edge_sd_mm, edge_dir


def _strips(world: World) -> tuple[list[_Strip], list[_Strip]]:
    pavements = [
        _Strip(r, (r.left_edge_m, r.right_edge_m), (0.0, r.length_m), Material.ASPHALT, Material.EDGE_PAVEMENT,
               lateral_only=True)
        for r in world.roads
    ]
    paints = []
    for road in world.roads:
        for m in road.markings:
            fill, edge = (Material.YELLOW_PAINT, Material.EDGE_YELLOW) if m.color == MarkingColor.YELLOW else (
                Material.WHITE_PAINT, Material.EDGE_WHITE)
            centres = [m.offset_m]
            if m.style == MarkingStyle.DOUBLE_SOLID:
                centres = [m.offset_m - DOUBLE_LINE_SPACING_M / 2, m.offset_m + DOUBLE_LINE_SPACING_M / 2]
            dash = (m.dash_m, m.dash_m + m.gap_m, m.s_start_m) if m.style == MarkingStyle.DASHED else None
            for c in centres:
                d_range = (c - m.width_m / 2, c + m.width_m / 2)
                paints.append(_Strip(road, d_range, (m.s_start_m, m.s_end_m), fill, edge, dash))
    for stop in world.stop_lines:
        d_range = (min(stop.d_from_m, stop.d_to_m), max(stop.d_from_m, stop.d_to_m))
        s_range = (stop.s_m - stop.width_m / 2, stop.s_m + stop.width_m / 2)
        paints.append(_Strip(world.road(stop.road), d_range, s_range, Material.WHITE_PAINT, Material.EDGE_WHITE))
    return pavements, paints


def _empty_grid(extent_m: np.ndarray, cell_m: float, tile_shift: int, dtype) -> SparseGrid:
    ntx, nty = np.round(extent_m / (cell_m * (1 << tile_shift))).astype(int)
    if dtype == np.uint8:  # materials: each empty tile shows one of the shared grass tiles
        tx, ty = np.meshgrid(np.arange(ntx), np.arange(nty), indexing="ij")
        tile_map = (hash_u32(tx, ty, 0x9ABC) % np.uint32(N_GRASS_TILES)).astype(np.int32)
        return SparseGrid(cell_m, tile_shift, tile_map, np.zeros(N_GRASS_TILES << (2 * tile_shift), np.uint8))
    return SparseGrid(cell_m, tile_shift, np.zeros((ntx, nty), np.int32), np.zeros((0, 3)))


def _samples(lo: float, hi: float, step: float) -> np.ndarray:
    """Evenly spaced samples from ``lo`` to ``hi`` inclusive, spacing <= ``step``; empty if ``hi < lo``."""
    if hi < lo:
        return np.zeros(0)
    return np.linspace(lo, hi, int(np.ceil((hi - lo) / step)) + 1)


def _rows(road: RoadSurface, s_m: np.ndarray, d_m: np.ndarray, origin_xy: np.ndarray) -> Iterator[_Rows]:
    """The road's (s, d) sample grid in chunks of rows, local coordinates."""
    rows = max(1, _CHUNK_SAMPLES // max(1, d_m.size))
    for i in range(0, s_m.size, rows):
        s = s_m[i : i + rows]
        x, y = np.interp(s, road.s_m, road.centre_ned[:, 0]), np.interp(s, road.s_m, road.centre_ned[:, 1])
        heading = np.interp(s, road.s_m, road.heading_unwrapped_rad)
        X = x[:, None] - d_m * np.sin(heading)[:, None]
        X -= origin_xy[0]
        Y = y[:, None] + d_m * np.cos(heading)[:, None]
        Y -= origin_xy[1]
        yield _Rows(s, x - origin_xy[0], y - origin_xy[1], heading, X, Y)


def _cells(grid: SparseGrid, X: np.ndarray | _Rows, Y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cell indices (N,) int32 of local points (any shape; or the samples of a chunk of rows, which are
    overwritten: ``floor(X / cell_m)`` in place saves two temporaries per coordinate)."""
    if isinstance(X, _Rows):
        out = []
        for v in (X.X, X.Y):
            np.divide(v, grid.cell_m, out=v)
            out.append(np.floor(v, out=v).astype(np.int32).reshape(-1))
        return out[0], out[1]
    ix, iy = np.floor(X / grid.cell_m).astype(np.int32), np.floor(Y / grid.cell_m).astype(np.int32)
    return ix.reshape(-1), iy.reshape(-1)


def _first_per_key(key: np.ndarray, order_key: np.ndarray | None = None) -> np.ndarray:
    """Indices of one entry per distinct ``key`` (N,): the one with the smallest ``order_key`` (small
    non-negative ints), ties and ``order_key=None`` by position."""
    if order_key is not None:
        key = key.astype(np.int64) * (int(order_key.max(initial=0)) + 1) + order_key
    order = np.argsort(key, kind="stable")
    first = np.ones(order.size, bool)
    if order_key is None:
        np.not_equal(key[order[1:]], key[order[:-1]], out=first[1:])
    else:
        k = key[order] // (int(order_key.max(initial=0)) + 1)
        np.not_equal(k[1:], k[:-1], out=first[1:])
    return order[first]


def _write_planes(grid: SparseGrid, offsets: np.ndarray, road: RoadSurface, margin_m: float,
                  origin_xy: np.ndarray) -> None:
    """Height planes of the band ``left - margin <= d <= right + margin`` of one road (sampled every CELL_M / 2)."""
    dzds = np.gradient(road.centre_ned[:, 2], road.s_m)  # (N,) slope of z (down) along s
    d = _samples(road.left_edge_m - margin_m, road.right_edge_m + margin_m, CELL_M / 2)
    for rows in _rows(road, _samples(0.0, road.length_m, CELL_M / 2), d, origin_xy):
        z = np.interp(rows.s, road.s_m, road.centre_ned[:, 2])[:, None]  # (S, 1)
        slope = np.interp(rows.s, road.s_m, dzds)
        gx, gy = (slope * np.cos(rows.heading))[:, None], (slope * np.sin(rows.heading))[:, None]  # world grad of z
        a = (z - gx * rows.X - gy * rows.Y).reshape(-1)
        flat = grid.rows(*_cells(grid, rows), offsets)
        keep = _first_per_key(flat)  # the first sample per cell
        a = a[keep]
        grid.data[flat[keep]] = np.stack([a, np.broadcast_to(gx, rows.X.shape).reshape(-1)[keep],
                                          np.broadcast_to(gy, rows.X.shape).reshape(-1)[keep]], axis=-1)


def _strip_samples(strip: _Strip) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """s samples (all, deep mask), d samples (boundary bands, deep): deep = farther than _INNER_M inside."""
    length = strip.road.length_m
    if strip.lateral_only:
        s = _samples(0.0, length, _SPLAT_STEP_M)
        deep_s = np.ones(s.size, bool)
    else:
        s0, s1 = strip.s_range
        s = _samples(max(s0 - _INSET_M, 0.0), min(s1 + _INSET_M, length), _SPLAT_STEP_M)
        deep_s = (s >= s0 + _INNER_M) & (s <= s1 - _INNER_M)
        if strip.dash is not None:
            dash, period, start = strip.dash
            phase = np.mod(s - start, period)
            s_keep = (phase <= dash + _INSET_M) | (phase >= period - _INSET_M)
            deep_s &= (phase >= _INNER_M) & (phase <= dash - _INNER_M)
            s, deep_s = s[s_keep], deep_s[s_keep]
    d0, d1 = strip.d_range
    if d1 - d0 <= 2 * _INNER_M:
        return s, deep_s, _samples(d0 - _INSET_M, d1 + _INSET_M, _SPLAT_STEP_M), np.zeros(0)
    band = np.concatenate([_samples(d0 - _INSET_M, d0 + _INNER_M, _SPLAT_STEP_M),
                           _samples(d1 - _INNER_M, d1 + _INSET_M, _SPLAT_STEP_M)])
    return s, deep_s, band, _samples(d0 + _INNER_M, d1 - _INNER_M, _SPLAT_STEP_M)


def _strip_sdf(strip: _Strip, s_c: np.ndarray, d_c: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance of road points to the strip outline (< 0 inside) and the outward normal angle."""
    d0, d1 = strip.d_range
    dd = np.maximum(d0 - d_c, d_c - d1)
    lat_sign = np.where(d_c > (d0 + d1) / 2, 1.0, -1.0)
    ds, s_sign = np.full(s_c.shape, -np.inf), np.ones(s_c.shape)
    if not strip.lateral_only:
        s0, s1 = strip.s_range
        ds = np.maximum(s0 - s_c, s_c - s1)
        s_sign = np.where(s_c - s0 > s1 - s_c, 1.0, -1.0)  # the nearer end
        if strip.dash is not None:
            dash, period, start = strip.dash
            phase = np.mod(s_c - start, period)
            inside = phase <= dash
            dash_d = np.where(inside, np.maximum(-phase, phase - dash), np.minimum(phase - dash, period - phase))
            near_end = np.where(inside, phase > dash / 2, phase - dash < period - phase)
            use = dash_d > ds
            ds, s_sign = np.where(use, dash_d, ds), np.where(use, np.where(near_end, 1.0, -1.0), s_sign)
    lateral = dd >= ds
    angle = np.where(lateral, h + lat_sign * (np.pi / 2), h + (s_sign < 0) * np.pi)
    return np.maximum(dd, ds), angle


def _boundary_records(grid: SparseGrid, offsets: np.ndarray, strip: _Strip, s: np.ndarray, d: np.ndarray,
                      origin_xy: np.ndarray) -> list[np.ndarray]:
    """Texels near the strip's outline: (flat index, rank, sd_mm, dir, material) with rank 0 = interior."""
    out = []
    for rows in _rows(strip.road, s, d, origin_xy):
        ix, iy = _cells(grid, rows)
        dx = ((ix + 0.5) * TEXEL_M).reshape(rows.X.shape) - rows.x[:, None]  # texel centre minus reference point
        dy = ((iy + 0.5) * TEXEL_M).reshape(rows.X.shape) - rows.y[:, None]
        flat = grid.rows(ix, iy, offsets)
        cos_h, sin_h = np.cos(rows.heading)[:, None], np.sin(rows.heading)[:, None]
        s_c = rows.s[:, None] + cos_h * dx + sin_h * dy
        d_c = -sin_h * dx + cos_h * dy
        sd, angle = (v.reshape(-1) for v in _strip_sdf(strip, s_c, d_c, rows.heading[:, None]))
        keep = (sd < EDGE_BAND_M) & ((flat >> (2 * grid.tile_shift)) >= N_GRASS_TILES)
        sd_mm = np.clip(np.round(sd[keep] * 1000.0), -127, 127)
        rank = np.where(sd_mm <= -EDGE_BAND_M * 1000.0, 0, 1 + np.abs(sd_mm))
        direction = (np.round(angle[keep] * (256.0 / (2.0 * np.pi))).astype(np.int64) & 255)
        material = np.where(rank == 0, strip.fill, strip.edge)
        out.append(np.stack([flat[keep], rank, sd_mm, direction, material]).astype(np.int64))  # (5, n)
    return out


def _write_edges(grid: SparseGrid, offsets: np.ndarray, edge_sd_mm: np.ndarray, edge_dir: np.ndarray,
                 strips: list[_Strip], origin_xy: np.ndarray) -> None:
    """Resolve the outline texels of a group of strips (interior beats edge, nearer boundary beats farther)."""
    records = []
    for strip in strips:
        s, deep_s, band, deep_d = _strip_samples(strip)
        records += _boundary_records(grid, offsets, strip, s, band, origin_xy)
        if deep_d.size and (~deep_s).any():
            records += _boundary_records(grid, offsets, strip, s[~deep_s], deep_d, origin_xy)
    if not records:
        return
    flat, rank, sd_mm, direction, material = np.concatenate(records, axis=1)
    keep = _first_per_key(flat, rank)
    flat = flat[keep]
    grid.data[flat] = material[keep]
    edge_sd_mm[flat] = sd_mm[keep]
    edge_dir[flat] = direction[keep]


def _fill(grid: SparseGrid, offsets: np.ndarray, strip: _Strip, origin_xy: np.ndarray) -> None:
    """Paint the strip's deep interior (more than _INNER_M inside its outline) with its fill material."""
    s, deep_s, _, deep_d = _strip_samples(strip)
    if not deep_d.size or not deep_s.any():
        return
    for rows in _rows(strip.road, s[deep_s], deep_d, origin_xy):
        flat = grid.rows(*_cells(grid, rows), offsets)
        grid.data[flat[(flat >> (2 * grid.tile_shift)) >= N_GRASS_TILES]] = strip.fill


def _apply_texture(grid: SparseGrid) -> None:
    """Turn material ids into ground ids by adding each texel's world-fixed texture level."""
    side = 1 << grid.tile_shift
    n_tiles = grid.data.size // (side * side)
    tx, ty = np.zeros(n_tiles, np.int64), np.zeros(n_tiles, np.int64)
    ids = grid.tile_map.reshape(-1)
    tx[ids], ty[ids] = np.divmod(np.arange(ids.size), grid.tile_map.shape[1])  # where each tile lies
    grass = np.arange(N_GRASS_TILES)
    tx[grass], ty[grass] = grass * 97 + 5, grass * 89 + 3  # shared grass tiles: arbitrary distinct patterns
    local, coarse = np.arange(side), np.arange(side >> _COARSE_SHIFT)
    fine = hash_u32((tx[:, None] * side + local)[:, :, None], (ty[:, None] * side + local)[:, None, :], _FINE_SALT)
    fine &= np.uint32(15)  # (T, side, side)
    blocks = hash_u32((tx[:, None] * (side >> _COARSE_SHIFT) + coarse)[:, :, None],  # texel >> 3: one per 8 x 8
                      (ty[:, None] * (side >> _COARSE_SHIFT) + coarse)[:, None, :], _COARSE_SALT) & np.uint32(15)
    fine += np.repeat(np.repeat(blocks, 1 << _COARSE_SHIFT, axis=1), 1 << _COARSE_SHIFT, axis=2)
    fine >>= np.uint32(1)  # = texture_level of every texel
    grid.data = (grid.data * TEXTURE_LEVELS + fine.reshape(-1)).astype(np.uint8)
