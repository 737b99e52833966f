"""Where camera rays first meet the ground of a :class:`~.raster.GroundRaster`: Newton steps on height planes.

Rays are ``c + lambda w`` (``c``: camera in local x, y and world z; ``w`` (3, N) world directions); the answer is
``1 / lambda`` per ray, ``<= 0`` for sky. Each Newton step intersects the plane under the current guess, so a
constant grade is exact in one step. Far rays first march out to find a hill that rises above the ego's
horizon. Away from roads, and for rays that do not settle (grazing a crest or the edge of a terrain band), the
ground is a flat plane level with the ground under the ego. The height field is single-valued: no bridges.
Every ray is searched independently of the others, so rays of several cameras can share one call.
"""

from __future__ import annotations

import numpy as np

from ....contract import camera as cam
from .raster import GroundRaster

NEWTON_ITERATIONS = 3
CONVERGED_INV = 3e-3  # coarse rays whose inverse depth moved less than this (relative) have converged
FAR_RANGE_M = 400.0  # rays that miss the current plane look again this far away (horizontal range)
MARCH_RANGES_M = (30.0, 60.0, 120.0, 240.0, 400.0)  # far rays first look for ground at these ranges
MAX_SKY_TAN = 0.12  # rays this steeply above the ego's road plane are sky without a search (12 % grade)


def plane_inv_depth(planes: np.ndarray, w: np.ndarray, c: np.ndarray) -> np.ndarray:
    """1 / lambda where rays ``c + lambda w`` (w (3, N)) meet planes (N, 3) or (3,); <= 0: no hit ahead."""
    a, gx, gy = planes[..., 0], planes[..., 1], planes[..., 2]
    num = a + gx * c[0] + gy * c[1] - c[2]  # plane z under the camera minus the camera's z
    den = w[2] - gx * w[0] - gy * w[1]  # how fast the ray approaches the plane
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.divide(den, num)
    np.maximum(inv, -1e3, out=inv)  # = np.clip, without its Python overhead
    return np.minimum(inv, 1e3, out=inv)


def search_ground(raster: GroundRaster, w: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Inverse ray parameter (N,) of the first ground hit of rays w (3, N) from ``c``, by Newton steps on the
    raster's height planes (see the module docstring)."""
    under = raster.planes_local(c[:1], c[1:2])[0]  # (3,) plane under the camera
    if np.isnan(under[0]):  # off the raster: flat ground one camera height below
        under = np.array([c[2] + cam.CAMERA_HEIGHT_M, 0.0, 0.0])
    flat = np.array([under[0] + under[1] * c[0] + under[2] * c[1], 0.0, 0.0])  # level with the ego's ground
    inv = plane_inv_depth(under, w, c)  # (N,)
    horiz = np.maximum(np.hypot(w[0], w[1]), 1e-9)  # (N,)
    rise = -w[2] / horiz  # tan of the elevation
    with np.errstate(divide="ignore", invalid="ignore"):  # horizontal range within which a rising ray
        reach = np.where(rise > 0, (c[2] - min(raster.top_z, flat[0])) / rise, np.inf)  # can meet ground
    todo = np.flatnonzero((w[2] - under[1] * w[0] - under[2] * w[1] > -MAX_SKY_TAN * horiz) & (reach > 0))
    far = todo[inv[todo] * horiz[todo] < 1.0 / MARCH_RANGES_M[1]]  # no hit on the ego's plane within 60 m
    if far.size:
        inv[far] = _march(raster, w[:, far], c, horiz[far], reach[far], inv[far], flat)
    for _ in range(NEWTON_ITERATIONS):
        if not todo.size:
            return inv
        wt, inv_t = w[:, todo], inv[todo]  # (3, n), (n,)
        far_lam = FAR_RANGE_M / horiz[todo]
        with np.errstate(divide="ignore"):
            lam = np.where(inv_t * far_lam > 1.0, 1.0 / inv_t, far_lam)  # current guess; far if no hit in range
        planes = _planes_or(raster, c[0] + lam * wt[0], c[1] + lam * wt[1], flat)  # (n, 3)
        new = plane_inv_depth(planes, wt, c)
        inv[todo] = new
        todo = todo[np.abs(new - inv_t) > CONVERGED_INV * np.abs(new) + 1e-9]
    inv[todo] = plane_inv_depth(flat, w[:, todo], c)
    return inv


def _march(raster: GroundRaster, w, c, horiz: np.ndarray, reach: np.ndarray, inv: np.ndarray,
           flat: np.ndarray) -> np.ndarray:
    """Better first guesses (n,) for far rays: the plane at the first of MARCH_RANGES_M where the ray is
    below the ground (a hill ahead can rise above the ego's horizon); unchanged where it never is. Beyond its
    reach a rising ray is above all ground, so a range past the reach ends the march."""
    ranges = np.asarray(MARCH_RANGES_M)[:, None]  # (R, 1)
    lam = ranges / horiz  # (R, n)
    x, y = c[0] + lam * w[0], c[1] + lam * w[1]
    planes = _planes_or(raster, x, y, flat)  # (R, n, 3)
    below = c[2] + lam * w[2] >= planes[..., 0] + planes[..., 1] * x + planes[..., 2] * y  # z down
    below &= reach >= ranges
    ray = np.flatnonzero(below.any(axis=0))
    inv = inv.copy()
    inv[ray] = plane_inv_depth(planes[below.argmax(axis=0)[ray], ray], w[:, ray], c)
    return inv


def _planes_or(raster: GroundRaster, x: np.ndarray, y: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Height planes (..., 3) at local points; ``fallback`` (3,) where the raster has none."""
    planes = raster.planes_local(x, y)
    missing = np.isnan(planes[..., 0])
    if missing.any():
        planes[missing] = fallback
    return planes
