"""Where a pixel's ray hits a vehicle box, and what it sees there: slab ray/box test and face details.

Box frame: x forward, y right, z down, origin at the centre of the bottom face (see :class:`~.world.VehicleBox`);
a ray from the camera at ``o`` (box frame) through pixel (u, v) is ``o + t w``, ``w`` linear in (u, v). Faces
0..5 are -x (rear), +x (front), -y (left), +y (right), -z (top), +z (bottom); each shows its body colour, a dark
glass band and an underbody band, the rear face two rear lights (:mod:`.boxes` composes the colours).

The per-box constants come as rows of :class:`P32` columns, either repeated per pixel (1-D arrays, many boxes at
once) or as scalars (one box, 2-D pixel arrays); the arithmetic is the same either way.
"""

from __future__ import annotations

import numpy as np

NEAR_M = 0.05  # near clipping distance of vehicle boxes (ray parameter ~ metres ahead)
GLASS_BAND = (0.60, 0.93)  # fractions of the box height
LIGHT_BAND = (0.46, 0.58)
LIGHT_INSET_M = (0.06, 0.38)  # lateral span of each rear light, measured inwards from the box side
PILLAR_M = 0.12
UNDERBODY_M = 0.28


class P32:
    """Columns of a box's float32 constants (per camera): the box-frame ray of pixel (u, v) is
    ``RAY[3k] u + RAY[3k + 1] v + RAY[3k + 2]`` along box axis k; slab planes minus the camera position ``o``.
    Band limits are rounded outwards to float32 (``x > limit`` in float32 == in float64 for a float32 x)."""

    RAY = 0  # 9 columns, row-major (per camera)
    LO = 9  # 3: box minimum corner minus o
    HI = 12  # 3: box maximum corner minus o
    ENTRY = 15  # 3: the slab plane a ray from outside enters through (LO ahead, HI behind), 0 inside the slab
    FACE = 18  # 3: the face a ray entering through axis k's ENTRY plane hits (2k, or 2k + 1 from behind)
    ORIGIN = 21  # 3: o, the camera in the box frame
    GLASS = 24  # 2: glass band, height above the bottom (lower limit rounded down, upper up)
    LIGHT = 26  # 2: rear-light band, height above the bottom
    INNER = 28  # 2: half-width of the glass on rear/front faces and on side faces (rounded up)
    N = 30


def surface(u, v, p, half_width_m) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slab ray/box test: entry parameter ``t_in``, whether the ray hits the box (nearer than nothing yet), and
    the colour index of the hit (:func:`_face_detail`), for pixels (u, v) and their boxes' constants p (P32).

    Per axis k the ray meets the slab planes at ``t = (LO or HI) / w_k``: it leaves the slab at the larger, and
    if the camera is outside the slab it enters at ``ENTRY / w_k``; inside, ENTRY is 0 and so never the entry
    (a hit has ``t_in > NEAR_M``). The entry face is the last axis whose entry is ``t_in``.
    """
    w = [p[P32.RAY + 3 * k] * u + (p[P32.RAY + 3 * k + 1] * v + p[P32.RAY + 3 * k + 2]) for k in range(3)]
    t_near, t_far = [], []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # (no hit where it matters)
        for k in range(3):
            r = np.float32(1.0) / w[k]
            t_near.append(r * p[P32.ENTRY + k])
            t_far.append(np.maximum(r * p[P32.LO + k], r * p[P32.HI + k]))
        t_in = np.fmax(np.fmax(t_near[0], t_near[1]), t_near[2])  # fmax: 0 * inf of an inside axis is no entry
        t_out = np.minimum(np.minimum(t_far[0], t_far[1]), t_far[2])
        hit = (t_out >= t_in) & (t_in > NEAR_M)
        face = np.where(t_near[2] >= t_in, p[P32.FACE + 2], np.where(t_near[1] >= t_in, p[P32.FACE + 1], p[P32.FACE]))
        return t_in, hit, _face_detail(face, t_in, w, p, half_width_m)  # (garbage where there is no hit)


def box_surface(u, v, p, half_width_m) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`surface` for one box (constants ``p`` scalars): the same results, with the camera's side of each
    slab decided once (outside a slab, the ray leaves through the far plane, ``EXIT``) and, when it is outside
    only one slab, one entry face for the whole box."""
    w = [p[P32.RAY + 3 * k] * u + (p[P32.RAY + 3 * k + 1] * v + p[P32.RAY + 3 * k + 2]) for k in range(3)]
    entries = [k for k in range(3) if p[P32.ENTRY + k] != 0]
    t_near, t_in, t_out = {}, None, None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # (no hit where it matters)
        for k in range(3):
            r = np.float32(1.0) / w[k]
            if k in entries:
                t_near[k] = r * p[P32.ENTRY + k]
                t_in = t_near[k] if t_in is None else np.maximum(t_in, t_near[k])
                exit_ = p[P32.HI + k] if p[P32.ENTRY + k] == p[P32.LO + k] else p[P32.LO + k]
                t_far = r * exit_  # (a ray moving away from the slab never hits: its t_in is negative)
            else:
                t_far = np.maximum(r * p[P32.LO + k], r * p[P32.HI + k])
            t_out = t_far if t_out is None else np.minimum(t_out, t_far)
        hit = (t_out >= t_in) & (t_in > NEAR_M)
        face = p[P32.FACE + entries[0]]
        for k in entries[1:]:  # the last entry reached at t_in
            face = np.where(t_near[k] >= t_in, p[P32.FACE + k], face)
        return t_in, hit, _face_detail(face, t_in, w, p, half_width_m)


def _face_detail(face: np.ndarray, t: np.ndarray, w: list[np.ndarray], p, half_width_m) -> np.ndarray:
    """Colour index (float32) into a box's colours for hits ``o + t w`` on ``face``: body, glass (+6) or
    underbody (+12) of the face, or 18 for a rear light."""
    if np.ndim(face) == 0:
        return _one_face_detail(face, t, w, p, half_width_m)
    x_face = face < 2  # rear / front: the lateral axis is y; sides: x
    o = P32.ORIGIN
    up = -(p[o + 2] + t * w[2])  # height above the box's bottom
    lateral = np.abs(np.where(x_face, p[o + 1] + t * w[1], p[o] + t * w[0]))
    glass = (up > p[P32.GLASS]) & (up < p[P32.GLASS + 1])
    glass &= lateral < np.where(x_face, p[P32.INNER], p[P32.INNER + 1])
    index = face + np.float32(6) * glass + np.float32(12) * (up < UNDERBODY_M)
    from_side = half_width_m - lateral  # float64, as the light's inset
    lamp = (face == 0) & (up > p[P32.LIGHT]) & (up < p[P32.LIGHT + 1])
    lamp &= (from_side > LIGHT_INSET_M[0]) & (from_side < LIGHT_INSET_M[1])
    return np.where(face >= 4, face, np.where(lamp, np.float32(18), index))


def _one_face_detail(face: np.float32, t: np.ndarray, w: list[np.ndarray], p, half_width_m) -> np.ndarray:
    """:func:`_face_detail` when every hit is on one ``face`` (the same values, fewer operations)."""
    if face >= 4:  # top or bottom: body colour only
        return np.full(t.shape, face, np.float32)
    o = P32.ORIGIN
    up = -(p[o + 2] + t * w[2])  # height above the box's bottom
    lateral = np.abs(p[o + 1] + t * w[1]) if face < 2 else np.abs(p[o] + t * w[0])
    glass = (up > p[P32.GLASS]) & (up < p[P32.GLASS + 1])
    glass &= lateral < (p[P32.INNER] if face < 2 else p[P32.INNER + 1])
    index = face + np.float32(6) * glass + np.float32(12) * (up < UNDERBODY_M)
    if face == 0:  # the rear lights
        from_side = half_width_m - lateral  # float64, as the light's inset
        lamp = (up > p[P32.LIGHT]) & (up < p[P32.LIGHT + 1])
        lamp &= (from_side > LIGHT_INSET_M[0]) & (from_side < LIGHT_INSET_M[1])
        index[lamp] = 18
    return index
