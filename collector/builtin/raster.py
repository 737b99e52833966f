"""A world-fixed ground raster: what the ground looks like (material) and how high it is (height planes).

Built once per :class:`~.world.World` and read by the renderer for every pixel that sees the ground.

Frames and units: the world frame of ``world.py`` (x north, y east, z down, metres). The raster works in
**local** coordinates ``(x, y) - origin_xy`` (``origin_xy`` is a corner of the world's padded bounding box), so
per-pixel float32 math stays precise. Heights are world ``z`` (down).

Two sparse grids share that origin; each stores only the square tiles near a road:

* **materials** — texels of ``TEXEL_M`` (0.1 m) in tiles of 64 x 64. A texel holds a *ground id*
  ``material * TEXTURE_LEVELS + level``: its :class:`Material` and a texture level 0..15 hashed from the texel's
  global index (the texture is fixed to the world, so it moves correctly with the camera). Off-road tiles map
  to one of ``N_GRASS_TILES`` shared grass tiles. Texels crossed by a boundary (a pavement's side, a marking's
  outline) are ``EDGE_*`` materials that also store the signed distance of the texel centre to the boundary
  and the boundary's normal, so :meth:`GroundRaster.ground_ids` decides inside/outside **per pixel**: edges
  stay straight at any magnification instead of showing 10 cm stairs.
* **heights** — cells of ``CELL_M`` (1 m) in tiles of 32 x 32, each a plane ``z = a + gx x + gy y`` (local x,
  y) of the road under it. Cells within ``HEIGHT_MARGIN_M`` of a pavement carry that road's height (terrain
  beside a road follows it; pavements win over terrain bands); farther cells are NaN = no data. A road's
  cross-section is flat, as in ``RoadSurface.point_at``.

Painting rules: pavement of every road, then markings and stop lines (paint wins over asphalt where roads
overlap). A dashed marking is painted where ``(s - s_start_m) mod (dash_m + gap_m) < dash_m``; a double solid
marking is two lines of ``width_m`` whose centres lie ``DOUBLE_LINE_SPACING_M`` apart around ``offset_m``;
a stop line spans ``s_m +- width_m / 2`` and ``d_from_m..d_to_m``. Pavement ends (s = 0, length) are not
edge-refined (roads usually continue into a junction patch there).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ...errors import SimulatorError
from .world import MarkingColor, MarkingStyle, RoadSurface, World

TEXEL_M = 0.1  # material texel size
MATERIAL_TILE_SHIFT = 6  # material tiles are 64 x 64 texels (6.4 m)
CELL_M = 1.0  # height cell size
HEIGHT_TILE_SHIFT = 5  # height tiles are 32 x 32 cells (32 m), a multiple of the material tile
HEIGHT_MARGIN_M = 30.0  # terrain beside a pavement follows the road's height this far
TEXTURE_LEVELS = 16  # ground id = material * TEXTURE_LEVELS + level
N_GRASS_TILES = 8  # shared off-road tiles with different texture patterns
DOUBLE_LINE_SPACING_M = 0.3  # centre-to-centre distance of the two lines of a double solid marking
EDGE_BAND_M = 0.075  # texels whose centre is this close to a boundary are edge texels (> half diagonal)
_INSET_M = 0.125  # outline samples reach this far outside a boundary (every edge texel is visited)
_SPLAT_STEP_M = 0.06  # (s, d) sample spacing: < TEXEL_M / sqrt(2), so every texel of an area is hit
_CHUNK_SAMPLES = 1_500_000  # samples per chunk (bounds memory on long roads)


class Material(IntEnum):
    GRASS = 0
    ASPHALT = 1
    WHITE_PAINT = 2
    YELLOW_PAINT = 3
    EDGE_PAVEMENT = 4  # asphalt inside, grass outside
    EDGE_WHITE = 5  # white paint inside, asphalt outside
    EDGE_YELLOW = 6  # yellow paint inside, asphalt outside


EDGE_SIDES = {  # edge material -> (inside, outside)
    Material.EDGE_PAVEMENT: (Material.ASPHALT, Material.GRASS),
    Material.EDGE_WHITE: (Material.WHITE_PAINT, Material.ASPHALT),
    Material.EDGE_YELLOW: (Material.YELLOW_PAINT, Material.ASPHALT),
}
N_GROUND_IDS = len(Material) * TEXTURE_LEVELS
_EDGE_ID0 = Material.EDGE_PAVEMENT * TEXTURE_LEVELS


@dataclass
class SparseGrid:
    """Square tiles of ``2**tile_shift`` cells of ``cell_m`` metres; ``tile_map`` (ntx, nty) holds tile ids.

    ``data`` has one row per cell, tile after tile. Cell ``(ix, iy)`` (local x, y over ``cell_m``) lives in tile
    ``tile_map[ix >> shift, iy >> shift]``. The border ring of ``tile_map`` is never allocated (the bounding box
    is padded), so :meth:`clamp` maps every outside point onto an empty tile.
    """

    cell_m: float
    tile_shift: int
    tile_map: np.ndarray  # (ntx, nty) int32
    data: np.ndarray  # (n_tiles * side**2, ...) cell values

    def flat_index(self, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
        """Row of ``data`` (int32, same shape) for int32 cell indices **inside** the grid; overwrites ``ix``, ``iy``.

        Callers clamp first (``clamp``): the grid's border ring of tiles is never allocated, so clamping an
        outside point onto the border reads an empty tile.
        """
        shift, mask = self.tile_shift, (1 << self.tile_shift) - 1
        tile = ix >> shift
        tile *= self.tile_map.shape[1]
        tile += iy >> shift
        flat = self.tile_map.reshape(-1).take(tile)
        flat <<= 2 * shift
        ix &= mask
        ix <<= shift
        flat |= ix
        iy &= mask
        flat |= iy
        return flat

    def clamp(self, x_cells: np.ndarray, y_cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer cell indices (int32) of float cell coordinates, clamped into the grid (in place on the floats)."""
        side = 1 << self.tile_shift
        np.clip(x_cells, 0, self.tile_map.shape[0] * side - 1, out=x_cells)
        np.clip(y_cells, 0, self.tile_map.shape[1] * side - 1, out=y_cells)
        return x_cells.astype(np.int32), y_cells.astype(np.int32)

    def allocate(self, ix: np.ndarray, iy: np.ndarray, first_id: int) -> int:
        """Give every still-empty tile touched by cells ``(ix, iy)`` a new id; returns the next free id."""
        keys = np.unique((ix >> self.tile_shift).astype(np.int64) * self.tile_map.shape[1] + (iy >> self.tile_shift))
        flat_map = self.tile_map.reshape(-1)
        new = keys[flat_map[keys] < first_id]
        flat_map[new] = np.arange(first_id, first_id + new.size, dtype=np.int32)
        return first_id + new.size


def hash_u32(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """A well-mixed uint32 per integer pair (deterministic, platform independent)."""
    h = np.asarray(ix).astype(np.uint32) * np.uint32(0x9E3779B1)
    h ^= np.asarray(iy).astype(np.uint32) * np.uint32(0x85EBCA77)
    h ^= np.uint32(salt)
    for shift, mult in ((15, 0x2C1B3C6D), (12, 0x297A2D39)):
        h ^= h >> np.uint32(shift)
        h *= np.uint32(mult)
    return h ^ (h >> np.uint32(15))


def texture_level(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Texture level 0..15 (uint8) of global texels: the mean of a 0.1 m and a 0.8 m hash octave."""
    fine = hash_u32(ix, iy, 0x1234) & np.uint32(15)
    coarse = hash_u32(ix >> 3, iy >> 3, 0x5678) & np.uint32(15)
    return ((fine + coarse) >> np.uint32(1)).astype(np.uint8)


class GroundRaster:
    """Material and height rasters of a :class:`World` (see the module docstring); ~1 s per 2 km of road."""

    def __init__(self, world: World) -> None:
        if not world.roads:
            raise SimulatorError("World has no roads; expected at least one RoadSurface to build a ground raster")
        self.origin_xy, extent = _bounding_box(world)
        self.materials = _empty_grid(extent, TEXEL_M, MATERIAL_TILE_SHIFT, np.uint8)
        self.heights = _empty_grid(extent, CELL_M, HEIGHT_TILE_SHIFT, np.float64)
        self.edge_sd_mm = np.zeros(0, np.int8)  # per texel: signed distance centre -> boundary (edge texels)
        self.edge_dir = np.zeros(0, np.uint8)  # per texel: outward boundary normal angle, 256 steps per turn
        self._build_heights(world)
        self._build_materials(world)
        self.top_z = min(float(r.centre_ned[:, 2].min()) for r in world.roads) - 0.1  # highest ground (z down)
        refine = np.arange(N_GROUND_IDS, dtype=np.uint8)
        self._refined = np.stack([refine, refine])  # (2, N_GROUND_IDS): [outside, inside] id of an edge id
        for edge, (inside, outside) in EDGE_SIDES.items():
            levels = np.arange(TEXTURE_LEVELS)
            self._refined[0, edge * TEXTURE_LEVELS + levels] = outside * TEXTURE_LEVELS + levels
            self._refined[1, edge * TEXTURE_LEVELS + levels] = inside * TEXTURE_LEVELS + levels
        angle = np.arange(256) * (2.0 * np.pi / 256.0)
        self._dir_mm = np.stack([np.cos(angle), np.sin(angle)]).astype(np.float32) * np.float32(TEXEL_M * 1000.0)

    # ---------------------------------------------------------------- hot path (local coordinates)
    def ground_ids(self, x_texel: np.ndarray, y_texel: np.ndarray) -> np.ndarray:
        """Ground ids (uint8, same shape) at local texel coordinates (local metres / TEXEL_M, float32 arrays that
        are clamped in place). Edge texels are resolved per point into their inside or outside material."""
        flat = self.materials.flat_index(*self.materials.clamp(x_texel, y_texel))
        ids = self.materials.data.take(flat)
        edge = np.flatnonzero(ids >= _EDGE_ID0)
        if edge.size:
            f = flat.reshape(-1).take(edge)
            xe, ye = x_texel.reshape(-1).take(edge), y_texel.reshape(-1).take(edge)
            dx = xe - np.floor(xe) - np.float32(0.5)  # (n,) offset from the texel centre, in texels
            dy = ye - np.floor(ye) - np.float32(0.5)
            d = self.edge_dir.take(f)
            sd = self.edge_sd_mm.take(f) + self._dir_mm[0].take(d) * dx + self._dir_mm[1].take(d) * dy
            flat_ids = ids.reshape(-1)
            flat_ids[edge] = self._refined[(sd < 0).astype(np.intp), flat_ids.take(edge)]
        return ids

    def planes_local(self, x_local: np.ndarray, y_local: np.ndarray) -> np.ndarray:
        """Height planes (..., 3) ``(a, gx, gy)``, ``z = a + gx x + gy y``, at local points; NaN = no data."""
        ix, iy = self.heights.clamp(np.asarray(x_local) * (1.0 / CELL_M), np.asarray(y_local) * (1.0 / CELL_M))
        return self.heights.data.take(self.heights.flat_index(ix, iy), axis=0)

    # ---------------------------------------------------------------- world-coordinate queries (tests, tools)
    def material_at(self, x_ned, y_ned) -> np.ndarray:
        """:class:`Material` ids (uint8) at world points, edges resolved (points off the raster are grass)."""
        x = (np.asarray(x_ned, dtype=np.float64) - self.origin_xy[0]) / TEXEL_M
        y = (np.asarray(y_ned, dtype=np.float64) - self.origin_xy[1]) / TEXEL_M
        ids = self.ground_ids(np.atleast_1d(x).astype(np.float32), np.atleast_1d(y).astype(np.float32))
        return ids // TEXTURE_LEVELS

    def height_at(self, x_ned, y_ned) -> np.ndarray:
        """Ground z (down) at world points; NaN where no road is within the height margin."""
        x = np.atleast_1d(np.asarray(x_ned, dtype=np.float64) - self.origin_xy[0])
        y = np.atleast_1d(np.asarray(y_ned, dtype=np.float64) - self.origin_xy[1])
        plane = self.planes_local(x, y)  # (N, 3)
        return plane[..., 0] + plane[..., 1] * x + plane[..., 2] * y

    # ---------------------------------------------------------------- construction
    def _build_heights(self, world: World) -> None:
        """Allocate tiles over every road's terrain band, then write planes: terrain bands first, pavements last."""
        grid, next_id = self.heights, 1
        for road in world.roads:
            d = _samples(road.left_edge_m - HEIGHT_MARGIN_M, road.right_edge_m + HEIGHT_MARGIN_M, CELL_M / 2)
            for _, xy in _band_points(road, _samples(0.0, road.length_m, CELL_M / 2), d, self.origin_xy):
                next_id = grid.allocate(*_cells(grid, xy), next_id)
        grid.data = np.full((next_id << (2 * grid.tile_shift), 3), np.nan)  # tile 0 stays empty (NaN)
        for margin_m in (HEIGHT_MARGIN_M, CELL_M):
            for road in world.roads:
                _write_planes(self, road, margin_m)

    def _build_materials(self, world: World) -> None:
        grid, next_id = self.materials, N_GRASS_TILES
        dilate = np.array([[0.0, 0.0], [-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])  # (5, 2) m
        for road in world.roads:  # allocate from a coarse sampling dilated by 0.5 m
            d = _samples(road.left_edge_m - 0.5, road.right_edge_m + 0.5, 0.5)
            for _, xy in _band_points(road, _samples(0.0, road.length_m, 0.5), d, self.origin_xy):
                next_id = grid.allocate(*_cells(grid, (xy.reshape(-1, 1, 2) + dilate).reshape(-1, 2)), next_id)
        n_texels = next_id << (2 * grid.tile_shift)
        grid.data = np.concatenate([grid.data, np.zeros(n_texels - grid.data.size, np.uint8)])
        self.edge_sd_mm, self.edge_dir = np.zeros(n_texels, np.int8), np.zeros(n_texels, np.uint8)
        pavements, paints = _strips(world)
        for group in (pavements, paints):  # edges of a group first, then its plain interiors
            _write_edges(self, group)
            for strip in group:
                _fill(self, strip)
        _apply_texture(grid)


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


# -------------------------------------------------------------------------------------------- construction helpers


def _bounding_box(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Origin (2,) and extent (2,) in metres of the roads' bounding box, padded and snapped to height tiles."""
    tile_m = CELL_M * (1 << HEIGHT_TILE_SHIFT)
    pad_m = HEIGHT_MARGIN_M + max(max(abs(r.left_edge_m), abs(r.right_edge_m)) for r in world.roads) + tile_m
    xy = np.concatenate([r.centre_ned[:, :2] for r in world.roads])  # (N, 2)
    lo = np.floor((xy.min(axis=0) - pad_m) / tile_m) * tile_m
    hi = np.ceil((xy.max(axis=0) + pad_m) / tile_m) * tile_m
    return lo, hi - lo


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


def _band_points(road: RoadSurface, s_m: np.ndarray, d_m: np.ndarray, origin_xy: np.ndarray):
    """Yield ``(s (S, D), local xy (S, D, 2))`` chunks of the road's (s, d) sample grid."""
    rows = max(1, _CHUNK_SAMPLES // max(1, d_m.size))
    for i in range(0, s_m.size, rows):
        s = s_m[i : i + rows, None]  # (S, 1)
        p = road.point_at(s, d_m[None, :])  # (S, D, 3)
        yield np.broadcast_to(s, p.shape[:2]), p[..., :2] - origin_xy


def _cells(grid: SparseGrid, xy_local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ixy = np.floor(xy_local.reshape(-1, 2) / grid.cell_m).astype(np.int32)  # (N, 2)
    return ixy[:, 0].copy(), ixy[:, 1].copy()


def _first_per_key(key: np.ndarray, order_key: np.ndarray) -> np.ndarray:
    """Indices of one entry per distinct ``key``: the one with the smallest ``order_key`` (deterministic)."""
    order = np.lexsort((order_key, key))
    _, first = np.unique(key[order], return_index=True)
    return order[first]


def _write_planes(raster: GroundRaster, road: RoadSurface, margin_m: float) -> None:
    """Height planes of the band ``left - margin <= d <= right + margin`` of one road (sampled every CELL_M / 2)."""
    grid = raster.heights
    dzds = np.gradient(road.centre_ned[:, 2], road.s_m)  # (N,) slope of z (down) along s
    heading = np.unwrap(road.heading_rad)
    d = _samples(road.left_edge_m - margin_m, road.right_edge_m + margin_m, CELL_M / 2)
    for s, xy in _band_points(road, _samples(0.0, road.length_m, CELL_M / 2), d, raster.origin_xy):
        z = np.interp(s, road.s_m, road.centre_ned[:, 2])  # (S, D)
        slope, h = np.interp(s, road.s_m, dzds), np.interp(s, road.s_m, heading)
        gx, gy = slope * np.cos(h), slope * np.sin(h)  # (S, D) world gradient of z
        plane = np.stack([z - gx * xy[..., 0] - gy * xy[..., 1], gx, gy], axis=-1).reshape(-1, 3)  # (S * D, 3)
        flat = grid.flat_index(*_cells(grid, xy))
        keep = _first_per_key(flat, np.arange(flat.size))  # the first sample per cell
        grid.data[flat[keep]] = plane[keep]


def _strip_samples(strip: _Strip) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """s samples (all, deep mask), d samples (boundary bands, deep): deep = farther than 0.2 m inside."""
    inner = 0.2
    length = strip.road.length_m
    if strip.lateral_only:
        s = _samples(0.0, length, _SPLAT_STEP_M)
        deep_s = np.ones(s.size, bool)
    else:
        s0, s1 = strip.s_range
        s = _samples(max(s0 - _INSET_M, 0.0), min(s1 + _INSET_M, length), _SPLAT_STEP_M)
        deep_s = (s >= s0 + inner) & (s <= s1 - inner)
        if strip.dash is not None:
            dash, period, start = strip.dash
            phase = np.mod(s - start, period)
            s_keep = (phase <= dash + _INSET_M) | (phase >= period - _INSET_M)
            deep_s &= (phase >= inner) & (phase <= dash - inner)
            s, deep_s = s[s_keep], deep_s[s_keep]
    d0, d1 = strip.d_range
    if d1 - d0 <= 2 * inner:
        return s, deep_s, _samples(d0 - _INSET_M, d1 + _INSET_M, _SPLAT_STEP_M), np.zeros(0), np.zeros(0)
    band = np.concatenate([_samples(d0 - _INSET_M, d0 + inner, _SPLAT_STEP_M),
                           _samples(d1 - inner, d1 + _INSET_M, _SPLAT_STEP_M)])
    return s, deep_s, band, _samples(d0 + inner, d1 - inner, _SPLAT_STEP_M), np.ones(1, bool)


def _strip_sdf(strip: _Strip, s_c: np.ndarray, d_c: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (N,) of road points to the strip outline (< 0 inside) and the outward normal angle (N,)."""
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


def _boundary_records(raster: GroundRaster, strip: _Strip, s: np.ndarray, d: np.ndarray) -> list[np.ndarray]:
    """Texels near the strip's outline: (flat index, rank, sd_mm, dir, material) with rank 0 = interior."""
    grid, road = raster.materials, strip.road
    heading = np.unwrap(road.heading_rad)
    out = []
    for s_grid, xy in _band_points(road, s, d, raster.origin_xy):
        ix, iy = _cells(grid, xy)
        centre = (np.stack([ix, iy], axis=-1) + 0.5) * TEXEL_M  # (N, 2) local texel centres
        flat = grid.flat_index(ix, iy)
        s_n = s_grid.reshape(-1)
        h = np.interp(s_n, road.s_m, heading)
        delta = centre - (road.point_at(s_n)[:, :2] - raster.origin_xy)  # (N, 2) from the reference point at s
        s_c = s_n + np.cos(h) * delta[:, 0] + np.sin(h) * delta[:, 1]
        d_c = -np.sin(h) * delta[:, 0] + np.cos(h) * delta[:, 1]
        sd, angle = _strip_sdf(strip, s_c, d_c, h)
        keep = (sd < EDGE_BAND_M) & ((flat >> (2 * grid.tile_shift)) >= N_GRASS_TILES)
        sd_mm = np.clip(np.round(sd[keep] * 1000.0), -127, 127)
        rank = np.where(sd_mm <= -EDGE_BAND_M * 1000.0, 0, 1 + np.abs(sd_mm))
        direction = (np.round(angle[keep] * (256.0 / (2.0 * np.pi))).astype(np.int64) & 255)
        material = np.where(rank == 0, strip.fill, strip.edge)
        out.append(np.stack([flat[keep], rank, sd_mm, direction, material]).astype(np.int64))  # (5, n)
    return out


def _write_edges(raster: GroundRaster, strips: list[_Strip]) -> None:
    """Resolve the outline texels of a group of strips (interior beats edge, nearer boundary beats farther)."""
    records = []
    for strip in strips:
        s, deep_s, band, deep_d, _ = _strip_samples(strip)
        records += _boundary_records(raster, strip, s, band)
        if deep_d.size and (~deep_s).any():
            records += _boundary_records(raster, strip, s[~deep_s], deep_d)
    if not records:
        return
    flat, rank, sd_mm, direction, material = np.concatenate(records, axis=1)
    keep = _first_per_key(flat, rank)
    flat = flat[keep]
    raster.materials.data[flat] = material[keep]
    raster.edge_sd_mm[flat] = sd_mm[keep]
    raster.edge_dir[flat] = direction[keep]


def _fill(raster: GroundRaster, strip: _Strip) -> None:
    """Paint the strip's deep interior (more than 0.2 m inside its outline) with its fill material."""
    s, deep_s, _, deep_d, _ = _strip_samples(strip)
    grid = raster.materials
    if not deep_d.size or not deep_s.any():
        return
    for _, xy in _band_points(strip.road, s[deep_s], deep_d, raster.origin_xy):
        flat = grid.flat_index(*_cells(grid, xy))
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
    local = np.arange(side)
    ix = tx[:, None, None] * side + local[None, :, None]  # (T, side, 1)
    iy = ty[:, None, None] * side + local[None, None, :]  # (T, 1, side)
    level = texture_level(*np.broadcast_arrays(ix, iy)).reshape(-1)  # (T * side * side,)
    grid.data = (grid.data * TEXTURE_LEVELS + level).astype(np.uint8)
