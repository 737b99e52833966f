"""A world-fixed ground raster: what the ground looks like (material) and how high it is (height planes).

Built once per :class:`~.world.World` (:mod:`.raster_build`) and read by the renderer for every pixel that sees
the ground.

Frames and units: the world frame of ``world.py`` (x north, y east, z down, metres). The raster works in
**local** coordinates ``(x, y) - origin_xy`` (``origin_xy`` is a corner of the world's padded bounding box), so
per-pixel float32 math stays precise. Heights are world ``z`` (down).

Two sparse grids (:class:`~.raster_grid.SparseGrid`) share that origin; each stores only the square tiles near a
road:

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
"""

from __future__ import annotations

import numpy as np

from ....errors import SimulatorError
from ..world import World
from .raster_build import DOUBLE_LINE_SPACING_M, bounding_box, build_heights, build_materials
from .raster_grid import (
    CELL_M,
    EDGE_BAND_M,
    EDGE_ID0,
    EDGE_SIDES,
    HEIGHT_MARGIN_M,
    HEIGHT_TILE_SHIFT,
    MATERIAL_TILE_SHIFT,
    N_GRASS_TILES,
    N_GROUND_IDS,
    TEXEL_M,
    TEXTURE_LEVELS,
    Material,
    SparseGrid,
    hash_u32,
    texture_level,
)

__all__ = [
    "CELL_M", "DOUBLE_LINE_SPACING_M", "EDGE_BAND_M", "EDGE_ID0", "EDGE_SIDES", "HEIGHT_MARGIN_M", "HEIGHT_TILE_SHIFT",
    "MATERIAL_TILE_SHIFT", "N_GRASS_TILES", "N_GROUND_IDS", "TEXEL_M", "TEXTURE_LEVELS", "GroundRaster", "Material",
    "SparseGrid", "hash_u32", "texture_level",
]


class GroundRaster:
    """Material and height rasters of a :class:`World` (see the module docstring); ~0.5 s per 2 km of road, one core."""

    def __init__(self, world: World) -> None:
        if not world.roads:
            raise SimulatorError("World has no roads; expected at least one RoadSurface to build a ground raster")
        self.origin_xy, extent = bounding_box(world)
        self.heights = build_heights(world, self.origin_xy, extent)
        # per texel of edge ids: signed distance centre -> boundary (mm), outward normal angle (256 steps per turn)
        self.materials, self.edge_sd_mm, self.edge_dir = build_materials(world, self.origin_xy, extent)
        self.top_z = min(float(r.centre_ned[:, 2].min()) for r in world.roads) - 0.1  # highest ground (z down)
        refine = np.arange(N_GROUND_IDS, dtype=np.uint8)
        self._refined = np.stack([refine, refine])  # (2, N_GROUND_IDS): [outside, inside] id of an edge id
        for edge, (inside, outside) in EDGE_SIDES.items():
            levels = np.arange(TEXTURE_LEVELS)
            self._refined[0, edge * TEXTURE_LEVELS + levels] = outside * TEXTURE_LEVELS + levels
            self._refined[1, edge * TEXTURE_LEVELS + levels] = inside * TEXTURE_LEVELS + levels
        self._texel_offsets = self.materials.row_offsets()
        self._cell_offsets = self.heights.row_offsets()
        angle = np.arange(256) * (2.0 * np.pi / 256.0)
        self._dir_mm = np.stack([np.cos(angle), np.sin(angle)]).astype(np.float32) * np.float32(TEXEL_M * 1000.0)

    # ---------------------------------------------------------------- hot path (local coordinates)
    def ground_ids(self, x_texel: np.ndarray, y_texel: np.ndarray) -> np.ndarray:
        """Ground ids (uint8, same shape) at local texel coordinates (local metres / TEXEL_M, float32 arrays that
        are clamped in place). Edge texels are resolved per point into their inside or outside material."""
        flat = self.texel_rows(x_texel, y_texel)
        ids = self.materials.data.take(flat, mode="wrap")  # in range; wrap skips the bounds check
        edge = np.flatnonzero(ids >= EDGE_ID0)
        if edge.size:
            f = flat.reshape(-1).take(edge, mode="wrap")
            ids.reshape(-1)[edge] = self.edge_ids(f, x_texel.reshape(-1).take(edge, mode="wrap"),
                                                 y_texel.reshape(-1).take(edge, mode="wrap"))
        return ids

    def texel_rows(self, x_texel: np.ndarray, y_texel: np.ndarray) -> np.ndarray:
        """Rows of ``materials.data`` (int32, same shape) at local texel coordinates (float32, clamped in place)."""
        return self.materials.rows(*self.materials.clamp(x_texel, y_texel), self._texel_offsets)

    def edge_ids(self, rows: np.ndarray, x_texel: np.ndarray, y_texel: np.ndarray, table=None) -> np.ndarray:
        """Resolved ground ids (n,) uint8 of edge texels ``rows`` (n,) seen at texel coordinates (n,): the inside
        or the outside material by the signed distance of the point to the texel's boundary. ``table``: instead
        of ids, ``table[id]`` (a lookup (N_GROUND_IDS,) per ground id, e.g. colours)."""
        dx = np.modf(x_texel)[0] - np.float32(0.5)  # (n,) offset from the texel centre, in texels (x >= 0)
        dy = np.modf(y_texel)[0] - np.float32(0.5)
        d = self.edge_dir.take(rows, mode="wrap")  # rows are in range: wrap = no bounds check
        sd = self.edge_sd_mm.take(rows, mode="wrap") + self._dir_mm[0].take(d, mode="wrap") * dx
        sd += self._dir_mm[1].take(d, mode="wrap") * dy
        index = self.materials.data.take(rows, mode="wrap").astype(np.intp)
        index += (sd < 0) * N_GROUND_IDS  # [outside, inside] id of an edge id
        resolved = self._refined.reshape(-1)
        lookup = resolved if table is None else np.asarray(table).take(resolved)
        return lookup.take(index, mode="wrap")

    def planes_local(self, x_local: np.ndarray, y_local: np.ndarray) -> np.ndarray:
        """Height planes (..., 3) ``(a, gx, gy)``, ``z = a + gx x + gy y``, at local points; NaN = no data."""
        ix, iy = self.heights.clamp(np.asarray(x_local) * (1.0 / CELL_M), np.asarray(y_local) * (1.0 / CELL_M))
        return self.heights.data.take(self.heights.rows(ix, iy, self._cell_offsets), axis=0, mode="wrap")

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
