"""Colours of the built-in renderer: sunlight, the packed palette, the sky gradient and the sensor noise.

Colours are composed as packed little-endian RGBX uint32 (one gather per pixel, one add for the noise). For that,
noise is clipped to +-``NOISE_CLIP`` and scene colours to ``[NOISE_CLIP, 255 - NOISE_CLIP]``, so the packed add
never carries between channels. The X byte of a packed colour is 0, except in :func:`texel_colours`, which marks
edge texels (still to be resolved per pixel) with ``EDGE_FLAG``.

Light: surfaces show ``rgb * (ambient + (1 - ambient) max(0, n . sun)) * exposure``, the sky ``sky * exposure``.
Sensor noise: Gaussian, ``Lighting.noise_std`` 8-bit units per pixel and channel, read from a fixed bank of
N(0, 1) samples at an offset drawn from the given Generator (fresh normals would cost more than the whole render).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..world import Lighting
from .raster import EDGE_ID0, N_GROUND_IDS, TEXTURE_LEVELS, GroundRaster, Material

SKY_LEVELS = 64
SKY_TAN_STEP = 0.004  # tan(elevation) per sky level
SKY_BLOCK_PX = 16  # the sky level is evaluated once per this many columns
SKY_ID0 = N_GROUND_IDS  # palette: ground ids, then sky levels
HAZE_RGB = (235.0, 235.0, 235.0)
PAINT_RGB = {Material.WHITE_PAINT: (225.0, 225.0, 220.0), Material.YELLOW_PAINT: (215.0, 170.0, 55.0)}
TEXTURE_CONTRAST = {Material.GRASS: 0.18}  # relative brightness range; asphalt: Lighting's; paint 0.03
NOISE_CLIP = 10
NOISE_BANK_PX = 1 << 20
EDGE_FLAG = np.uint32(1 << 31)  # X-byte mark of an unresolved edge texel in texel_colours
_NOISE_SEED = 20260501


def light(lighting: Lighting, normals_ned: np.ndarray) -> np.ndarray:
    """Brightness (...,) of surfaces with world normals (..., 3), exposure included; the sun's azimuth is
    measured from north towards east, its elevation above the horizon."""
    el, az = lighting.sun_elevation_rad, lighting.sun_azimuth_rad
    sun = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), -np.sin(el)])  # towards the sun
    direct = np.maximum(normals_ned @ sun, 0.0)
    return (lighting.ambient + (1.0 - lighting.ambient) * direct) * lighting.exposure


def pack(rgb: np.ndarray) -> np.ndarray:
    """Colours (..., 3) -> packed '<u4' RGBX minus NOISE_CLIP per channel (see the module docstring)."""
    c = np.clip(np.round(np.asarray(rgb, dtype=np.float64)), NOISE_CLIP, 255 - NOISE_CLIP).astype(np.uint32)
    c -= NOISE_CLIP
    return (c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16)).astype("<u4")


def palette(lighting: Lighting) -> np.ndarray:
    """Packed colours (SKY_ID0 + SKY_LEVELS,) of the ground ids and the sky levels."""
    asphalt = np.asarray(lighting.asphalt_rgb, dtype=np.float64)
    worn = {m: (1.0 - lighting.paint_wear) * np.asarray(rgb) + lighting.paint_wear * asphalt
            for m, rgb in PAINT_RGB.items()}
    base = {Material.GRASS: np.asarray(lighting.grass_rgb, dtype=np.float64), Material.ASPHALT: asphalt, **worn}
    contrast = {**TEXTURE_CONTRAST, Material.ASPHALT: lighting.asphalt_contrast}
    ground_light = light(lighting, np.array([0.0, 0.0, -1.0]))
    levels = np.arange(TEXTURE_LEVELS) / (TEXTURE_LEVELS - 1) - 0.5  # (16,) -0.5 .. 0.5
    rows = []
    for m in Material:  # edge ids never reach the palette (the raster resolves them); give them a colour anyway
        colour = base.get(m, asphalt)
        rows.append(np.outer(1.0 + contrast.get(m, 0.03) * levels, colour) * ground_light)  # (16, 3)
    tan_el = np.arange(SKY_LEVELS) * SKY_TAN_STEP  # (64,)
    haze = np.exp(-tan_el / 0.08)[:, None]  # (64, 1): 1 at the horizon
    sky = (np.asarray(lighting.sky_rgb) * (1.0 - haze) + np.asarray(HAZE_RGB) * haze) * lighting.exposure
    return pack(np.concatenate(rows + [sky]))


def texel_colours(raster: GroundRaster, colours: np.ndarray) -> np.ndarray:
    """Packed colour of every material texel (raster.materials.data.shape) uint32; edge texels carry EDGE_FLAG."""
    ids = raster.materials.data
    packed = colours.take(ids)
    packed[ids >= EDGE_ID0] |= EDGE_FLAG
    return packed


def sky_colours(colours: np.ndarray, A: np.ndarray, forward_xy: np.ndarray, c0: int, v: np.ndarray,
                out: np.ndarray) -> None:
    """Packed sky into ``out`` (len(v), w) for pixel rows ``v`` and columns from ``c0`` on (a multiple of
    SKY_BLOCK_PX), by the tangent of the elevation, evaluated per row once per SKY_BLOCK_PX columns (block centres
    at absolute columns). ``A``: world from pixel."""
    width = out.shape[1]
    blocks = -(-width // SKY_BLOCK_PX)
    u = (c0 + SKY_BLOCK_PX // 2 + SKY_BLOCK_PX * np.arange(blocks)).astype(np.float32)  # block centres
    A32 = A.astype(np.float32)
    F = forward_xy[0] * A32[0] + forward_xy[1] * A32[1]  # (3,) ray component along the heading
    fwd = (F[0] * u)[None, :] + (F[1] * v + F[2])[:, None]  # (h, blocks)
    down = (A32[2, 0] * u)[None, :] + (A32[2, 1] * v + A32[2, 2])[:, None]  # (h, blocks)
    level = np.clip(down / np.maximum(fwd, np.float32(1e-6)) * np.float32(-1.0 / SKY_TAN_STEP), 0, SKY_LEVELS - 1)
    packed = colours[SKY_ID0:].take(level.astype(np.uint8), mode="wrap")  # (h, blocks)
    if width % SKY_BLOCK_PX == 0:
        out.reshape(len(v), blocks, SKY_BLOCK_PX)[...] = packed[:, :, None]
    else:
        out[...] = np.repeat(packed, SKY_BLOCK_PX, axis=1)[:, :width]


@cache
def unit_normals() -> np.ndarray:
    """A fixed (NOISE_BANK_PX, 3) float32 bank of N(0, 1) samples, made once per process (read-only)."""
    normal = np.random.default_rng(_NOISE_SEED).standard_normal((NOISE_BANK_PX, 3), dtype=np.float32)
    normal.setflags(write=False)
    return normal


def noise_bank(noise_std: float) -> np.ndarray:
    """Packed noise (NOISE_BANK_PX,): per channel round(N(0, std)) clipped to +-NOISE_CLIP, plus NOISE_CLIP."""
    return pack(np.clip(np.round(unit_normals() * np.float32(noise_std)), -NOISE_CLIP, NOISE_CLIP) + 2 * NOISE_CLIP)


def finish(packed: np.ndarray, rng: np.random.Generator | None, bank: np.ndarray | None, noise_std: float,
           edges: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Add sensor noise to ``packed`` (H, W) (in place), fill the flat indices ``edges[0]`` (pixels outside the
    device camera) with the pixels ``edges[1]`` (what modeld's clamped warp repeats there), unpack to (H, W, 3)
    uint8 RGB. ``bank``: :func:`noise_bank` of ``noise_std``, or None for no noise."""
    H, W = packed.shape
    if rng is not None and bank is not None:
        if packed.size <= bank.size // 2:
            start = int(rng.integers(0, bank.size - packed.size + 1))
            packed += bank[start : start + packed.size].reshape(H, W)
        else:  # large images (CAMERA route): fresh samples
            normal = rng.standard_normal((H, W, 3), dtype=np.float32) * np.float32(noise_std)
            packed += pack(np.clip(np.round(normal), -NOISE_CLIP, NOISE_CLIP) + 2 * NOISE_CLIP)
    else:
        packed += pack(np.full(3, 2.0 * NOISE_CLIP))
    if edges is not None and edges[0].size:
        flat = packed.reshape(-1)
        flat[edges[0]] = flat[edges[1]]
    channels = packed.view(np.uint8).reshape(H, W, 4)
    out = np.empty((H, W, 3), dtype=np.uint8)
    for k in range(3):
        out[..., k] = channels[..., k]
    return out
