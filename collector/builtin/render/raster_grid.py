"""What the ground raster stores: materials, ground ids, and the sparse tiled grid both of its layers use.

Frames and units: the world frame of ``world.py`` (x north, y east, z down, metres), in **local** coordinates
``(x, y) - origin_xy`` (see :mod:`.raster`). A grid cell ``(ix, iy)`` covers local ``[ix, ix + 1) * cell_m`` by
``[iy, iy + 1) * cell_m``.

* **materials** — texels of ``TEXEL_M`` (0.1 m) in tiles of 64 x 64. A texel holds a *ground id*
  ``material * TEXTURE_LEVELS + level``: its :class:`Material` and a texture level 0..15 hashed from the texel's
  global index (:func:`texture_level`). Ids from ``EDGE_ID0`` on are edge texels, resolved per pixel.
* **heights** — cells of ``CELL_M`` (1 m) in tiles of 32 x 32, each a plane ``(a, gx, gy)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

TEXEL_M = 0.1  # material texel size
MATERIAL_TILE_SHIFT = 6  # material tiles are 64 x 64 texels (6.4 m)
CELL_M = 1.0  # height cell size
HEIGHT_TILE_SHIFT = 5  # height tiles are 32 x 32 cells (32 m), a multiple of the material tile
HEIGHT_MARGIN_M = 30.0  # terrain beside a pavement follows the road's height this far
TEXTURE_LEVELS = 16  # ground id = material * TEXTURE_LEVELS + level
N_GRASS_TILES = 8  # shared off-road tiles with different texture patterns
EDGE_BAND_M = 0.075  # texels whose centre is this close to a boundary are edge texels (> half diagonal)


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
EDGE_ID0 = Material.EDGE_PAVEMENT * TEXTURE_LEVELS  # ground ids from here on are edge texels


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

    def row_offsets(self) -> np.ndarray:
        """Per tile (flat ``tile_map`` index) int32: the row of cell ``(ix, iy)`` in ``data`` is
        ``offsets[tile] + (ix << shift) + iy`` (:meth:`rows`; valid until tiles are allocated again)."""
        tx, ty = np.indices(self.tile_map.shape)
        shift = self.tile_shift
        return ((((self.tile_map - tx) << shift) - ty) << shift).astype(np.int32).reshape(-1)

    def rows(self, ix: np.ndarray, iy: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Like :meth:`flat_index` (same values, same dtype as ``ix``) with ``offsets`` from :meth:`row_offsets`;
        overwrites ``ix``."""
        shift = self.tile_shift
        tile = ix >> shift
        tile *= self.tile_map.shape[1]
        tile += iy >> shift
        flat = offsets.take(tile, mode="wrap")  # in range: wrap = no bounds check, ~2x faster
        ix <<= shift
        flat += ix
        flat += iy
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
    """A well-mixed uint32 per integer pair (deterministic, platform independent; ix, iy broadcast)."""
    h = np.asarray(ix).astype(np.uint32) * np.uint32(0x9E3779B1)
    h = h ^ (np.asarray(iy).astype(np.uint32) * np.uint32(0x85EBCA77))  # not in place: ix and iy may broadcast
    h ^= np.uint32(salt)
    for shift, mult in ((15, 0x2C1B3C6D), (12, 0x297A2D39)):
        h ^= h >> np.uint32(shift)
        h *= np.uint32(mult)
    return h ^ (h >> np.uint32(15))


def texture_level(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Texture level 0..15 (uint8) of global texels: the mean of a 0.1 m and a 0.8 m hash octave."""
    fine = hash_u32(ix, iy, 0x1234) & np.uint32(15)  # raster_build._apply_texture computes the same per tile
    coarse = hash_u32(ix >> 3, iy >> 3, 0x5678) & np.uint32(15)
    return ((fine + coarse) >> np.uint32(1)).astype(np.uint8)
