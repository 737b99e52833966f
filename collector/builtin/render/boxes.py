"""Vehicle boxes in the built-in renderer: contact shadows, then a slab ray/box test against a depth buffer.

Box frame: x forward, y right, z down, origin at the centre of the bottom face (see :class:`~.world.VehicleBox`).
Faces are shaded by the sun (:func:`~.shading.light`) and carry a dark glass band, an underbody band and two rear
lights (bright red if braking); :mod:`.box_faces` decides which a pixel sees.

Each box is tested over the pixel rectangle its corners project to. Small rectangles (most boxes are far away)
are tested together, one (pixel, box) pair per element with the box's constants repeated per pair; large ones
one at a time with the constants as scalars; both give the same numbers. The result is the same as drawing the
boxes one after the other in list order: a box covers a pixel where its entry point is nearer than what is there
(``t_in * inv < 1``, ``inv`` the inverse-depth buffer, updated), so where several boxes hit one pixel the list
order counts (:func:`_resolve_depth`). Contact shadows darken the ground (to 5/8 per shadow) before any box is
drawn. Both model frames are drawn in one pass (one (C, H, W) buffer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ....contract import camera as cam
from ....errors import SimulatorError
from ..world import Lighting, VehicleBox
from .box_faces import GLASS_BAND, LIGHT_BAND, LIGHT_INSET_M, NEAR_M, P32, PILLAR_M, box_surface, surface
from .shading import light, pack

GLASS_RGB = (30.0, 36.0, 44.0)
UNDERBODY_RGB = (28.0, 28.0, 30.0)
BRAKE_ON_RGB = (255.0, 40.0, 30.0)  # emissive
BRAKE_OFF_RGB = (120.0, 22.0, 20.0)  # red plastic, lit like the rear face
SHADOW_MARGIN_M = 0.25  # the contact shadow extends this far beyond the footprint; it keeps 5/8 of the light
N_COLOURS = 19  # per box: body per face, glass per face, underbody per face, rear light
NEAR_TIE = 1e-6  # hits on one pixel closer than this (relative) are resolved in list order, as drawn one by one
BATCH_MAX_PX = 2048  # rectangles up to this many pixels are tested together, larger ones one at a time
_BOX_CORNERS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 0)], dtype=np.float64)
_BOX_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1])  # (12, 2)
_FOOT_CORNERS = np.array([[sx, sy, 0] for sx in (-1, 1) for sy in (-1, 1)], dtype=np.float64)  # (4, 3)
_FOOT_EDGES = np.array([(0, 1), (1, 3), (3, 2), (2, 0)])
_FOOT_OF_CORNER = np.array([0, 0, 1, 1, 2, 2, 3, 3])  # shadow corners as box corners: along a box's z edges, twice
_FACE_NORMALS = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], dtype=np.float64)


def rear_light_centres_ned(vehicle: VehicleBox) -> np.ndarray:
    """World points (2, 3) of the centres of a box's left and right rear lights (for tests and tools)."""
    y_m = vehicle.width_m / 2.0 - sum(LIGHT_INSET_M) / 2.0
    h_m = -vehicle.height_m * sum(LIGHT_BAND) / 2.0
    local = np.array([[-vehicle.length_m / 2.0, -y_m, h_m], [-vehicle.length_m / 2.0, y_m, h_m]])  # (2, 3)
    pose = np.asarray(vehicle.pose_ned, dtype=np.float64)
    return pose[:3] + local @ cam.rot_from_euler(pose[3:6]).T


@dataclass(frozen=True)
class Vehicles:
    """One frame's vehicle boxes, camera independent; ``R`` maps box to world axes."""

    R: np.ndarray  # (V, 3, 3) world from box
    corners: np.ndarray  # (V, 8, 3) box corners minus the camera, world axes
    foot: np.ndarray  # (V, 4, 3) corners of the contact shadow minus the camera, world axes
    foot_planes: np.ndarray  # (V, 4, 3) normals of the planes through the camera and the shadow's edges, inward
    colours: np.ndarray  # (V * N_COLOURS,) packed: body per face, glass per face, underbody per face, rear light
    params: np.ndarray  # (V, P32.N) float32, RAY columns left 0 (per camera)
    half_width_m: np.ndarray  # (V,) float64
    outside: np.ndarray  # (V,) bool: the camera is outside the box (a box around the camera is not drawn)


def prepare_vehicles(vehicles: Sequence[VehicleBox], c: np.ndarray, lighting: Lighting, origin_xy) -> Vehicles:
    """Camera-independent constants of all boxes at once (``c``: camera, local coordinates)."""
    V = len(vehicles)
    pose = np.array([v.pose_ned for v in vehicles], dtype=np.float64).reshape(V, 6)
    attrs = np.array([(v.length_m, v.width_m, v.height_m, *v.rgb, v.brake_lights) for v in vehicles], np.float64)
    size = attrs[:, :3].reshape(V, 3)  # length, width, height
    if not (np.isfinite(pose).all() and (size > 0).all()):
        raise SimulatorError("a VehicleBox has a non-finite pose_ned or a size <= 0; expected finite "
                             "(x, y, z, roll, pitch, yaw) and positive length_m, width_m, height_m")
    R = cam.rot_from_euler(pose[:, 3:6]).reshape(V, 3, 3)  # world from box
    rel = pose[:, :3] - np.array([origin_xy[0], origin_xy[1], 0.0]) - c  # (V, 3) box origin minus camera
    half = size * np.array([0.5, 0.5, 1.0])  # (V, 3)
    foot = half * np.array([1.0, 1.0, 0.0]) + np.array([SHADOW_MARGIN_M, SHADOW_MARGIN_M, 0.0])  # (V, 3)
    R_T = R.transpose(0, 2, 1)
    corners = rel[:, None] + (_BOX_CORNERS * half[:, None]) @ R_T  # (V, 8, 3)
    foot_corners = rel[:, None] + (_FOOT_CORNERS * foot[:, None]) @ R_T  # (V, 4, 3)
    a, b = foot_corners[:, _FOOT_EDGES[:, 0]], foot_corners[:, _FOOT_EDGES[:, 1]]  # (V, 4, 3) edge ends
    planes = np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                       a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)  # (V, 4, 3) a x b
    planes *= np.sign((planes * foot_corners.mean(axis=1)[:, None]).sum(axis=-1))[..., None]  # inward
    o = -np.einsum("vji,vj->vi", R, rel)  # (V, 3) camera in box frames: R^T (c - p)
    lo = -half - o
    hi = half * np.array([1.0, 1.0, 0.0]) - o
    entry = np.where(lo > 0, lo, np.where(hi < 0, hi, 0.0))
    bands = np.concatenate([size[:, 2:] * np.array([*GLASS_BAND, *LIGHT_BAND]),
                            size[:, 1::-1] / 2 - np.array([PILLAR_M, 3 * PILLAR_M])], axis=1)  # (V, 6)
    params = np.concatenate([np.zeros((V, 9)), lo, hi, entry, 2 * np.arange(3) + (entry < 0), o], axis=1)
    params = np.concatenate([params.astype(np.float32), _outward(bands, [-1, 1, -1, 1, 1, 1])], axis=1)
    colours = _colours(attrs[:, 3:6], attrs[:, 6] > 0, lighting, R_T)
    return Vehicles(R, corners, foot_corners, planes, colours, params, size[:, 1] / 2, (entry != 0).any(axis=1))


def _outward(x: np.ndarray, direction) -> np.ndarray:
    """float64 ``x`` rounded to float32 towards -inf (direction -1) or +inf (+1), per column."""
    x32 = x.astype(np.float32)
    down = np.where(x32 > x, np.nextafter(x32, np.float32(-np.inf)), x32)
    up = np.where(x32 < x, np.nextafter(x32, np.float32(np.inf)), x32)
    return np.where(np.asarray(direction) < 0, down, up)


def _colours(rgb: np.ndarray, brake: np.ndarray, lighting: Lighting, R_T: np.ndarray) -> np.ndarray:
    """Packed colours (V * N_COLOURS,) of boxes with body ``rgb`` (V, 3) and ``brake`` lights (V,): body, glass
    and underbody per face, then the rear light."""
    shade = light(lighting, _FACE_NORMALS @ R_T)  # (V, 6) per face
    lamp = np.where(brake[:, None], np.asarray(BRAKE_ON_RGB) * lighting.exposure, np.outer(shade[:, 0], BRAKE_OFF_RGB))
    colours = np.concatenate([shade[..., None] * rgb[:, None], shade[..., None] * np.asarray(GLASS_RGB),
                              shade[..., None] * np.asarray(UNDERBODY_RGB), lamp[:, None]], axis=1)  # (V, 19, 3)
    return pack(colours).reshape(-1)


def draw_vehicles(packed: np.ndarray, inv: np.ndarray, As: Sequence[np.ndarray], boxes: Vehicles,
                  skips: Sequence | None = None, stamp: np.ndarray | None = None) -> None:
    """Contact shadows, then boxes against the inverse-depth buffers ``inv`` (C, H, W) (updated), into ``packed``
    (C, H, W), for C cameras with rays ``As[c] @ (u, v, 1)``. ``skips[c]``: a pixel rectangle (r0, r1, c0, c1) of
    camera c left untouched (filled from elsewhere), or None. ``stamp``: scratch int32 of inv.size, or None.

    Shadow quads and boxes share one pass; its rows (owners) are shadows then boxes, camera by camera, box by box.
    """
    C, H, W = inv.shape
    V = len(boxes.outside)
    skips = [None] * C if skips is None else skips
    stamp = np.empty(inv.size, np.int32) if stamp is None else stamp
    Ainv_T = np.linalg.inv(np.asarray(As)).transpose(0, 2, 1)  # (C, 3, 3)
    shapes = (boxes.foot[:, _FOOT_OF_CORNER], boxes.corners)  # (V, 8, 3) each: shadow quads (corners doubled), boxes
    rects = _rects(np.concatenate([s @ M for s in shapes for M in Ainv_T]), _BOX_EDGES, (H, W))  # (2 C V, 4)
    rects[C * V :][~np.tile(boxes.outside, C)] = 0  # a box around the camera is not drawn
    table = np.zeros((2 * C * V, P32.N), np.float32)  # shadows: 4 edges, normal . ray > 0 inside; boxes: P32
    table[: C * V, :12] = np.concatenate([(boxes.foot_planes @ A).reshape(V, 12) for A in As])
    table[C * V :] = np.tile(boxes.params, (C, 1))
    table[C * V :, P32.RAY : P32.RAY + 9] = np.concatenate([(boxes.R.transpose(0, 2, 1) @ A).reshape(V, 9) for A in As])
    half_width = np.concatenate([np.zeros(C * V), np.tile(boxes.half_width_m, C)])[:, None]
    block = np.arange(2 * C * V) // V  # (shadow or box, camera) of each row
    shadowed, hits = [], []
    for flat, u, v, p, p64, owner in _groups(_pieces(rects, skips, block % C, H), W, table, half_width, C * V):
        if np.max(owner) < C * V:  # shadow pixels
            shadowed.append(flat[_in_shadow(inv, flat, u, v, p[:12])])
            continue
        t_in, hit, index = surface(u, v, p, p64[0]) if flat.ndim == 1 else box_surface(u, v, p, p64[0])
        owner = np.broadcast_to(owner, hit.shape)[hit]
        colour = boxes.colours.take(owner % V * N_COLOURS + index[hit].astype(np.intp), mode="wrap")
        hits.append((flat[hit], t_in[hit], colour, owner))
    overlap = _overlap(rects, block * H)
    if shadowed:
        _darken(packed, np.concatenate(shadowed), overlap, stamp)
    if hits:
        flat, t, colour, owner = (np.concatenate(x) for x in zip(*hits))
        _resolve_depth(packed, inv, flat, t, colour, owner if overlap else None, stamp)


def _rects(q: np.ndarray, edges: np.ndarray, shape) -> np.ndarray:
    """Pixel rectangles (V, 4) [r0, r1, c0, c1] of convex shapes (V, N, 3) = lambda (u, v, 1), near-clipped;
    ``edges`` (E, 2): corner pairs of the shape's edges (where a shape crosses the near plane)."""
    H, W = shape
    front = q[..., 2] > NEAR_M  # (V, N)
    uv = q[..., :2] / np.where(front, q[..., 2], 1.0)[..., None]
    lo = np.floor(np.where(front[..., None], uv, np.inf).min(axis=1))  # (V, 2) u, v
    hi = np.ceil(np.where(front[..., None], uv, -np.inf).max(axis=1)) + 1
    crossing = np.flatnonzero(front.any(axis=1) & ~front.all(axis=1))
    if crossing.size:  # add the points where the edges cross the near plane
        a, b = q[crossing][:, edges[:, 0]], q[crossing][:, edges[:, 1]]  # (n, E, 3)
        la, lb = a[..., 2] - NEAR_M, b[..., 2] - NEAR_M
        cross = la * lb < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            p = a + (b - a) * np.where(cross, la / (la - lb), 0.0)[..., None]
            uv = p[..., :2] / np.where(cross, p[..., 2], 1.0)[..., None]
        lo[crossing] = np.minimum(lo[crossing], np.floor(np.where(cross[..., None], uv, np.inf).min(axis=1)))
        hi[crossing] = np.maximum(hi[crossing], np.ceil(np.where(cross[..., None], uv, -np.inf).max(axis=1)) + 1)
    limits = np.clip(np.concatenate([lo, hi], axis=1), 0, np.array([W, H, W, H], float)).astype(int)  # (V, 4)
    return limits[:, [1, 3, 0, 2]]


def _overlap(rects: np.ndarray, row_offset: np.ndarray) -> bool:
    """Whether any two non-empty rectangles (n, 4) [r0, r1, c0, c1] share a pixel, their rows shifted by
    ``row_offset`` (n,) (rectangles of different images lie apart)."""
    keep = (rects[:, 1] > rects[:, 0]) & (rects[:, 3] > rects[:, 2])
    r0, r1, c0, c1 = rects[keep].T
    r0, r1 = r0 + row_offset[keep], r1 + row_offset[keep]
    both = (np.maximum(r0[:, None], r0) < np.minimum(r1[:, None], r1))
    both &= np.maximum(c0[:, None], c0) < np.minimum(c1[:, None], c1)  # (n, n), diagonal True
    return bool(both.sum() > r0.size)


def _pieces(rects: np.ndarray, skips: Sequence, camera: np.ndarray, H: int) -> np.ndarray:
    """Non-empty pieces (n, 6) [owner, r0, r1, c0, c1, image row of r0 = 0] of the rectangles (N, 4) of the
    ``camera`` (N,) of each outside its ``skips[camera]``, in the order of the rectangles (owner: their index)."""
    skip = np.array([(0, 0, 0, 0) if k is None else k for k in skips])[camera]  # (N, 4)
    r0, r1, c0, c1 = rects.T
    s_r0, s_r1, s_c0, s_c1 = skip.T
    m_r0, m_r1 = np.maximum(r0, s_r0), np.minimum(r1, s_r1)
    pieces = np.empty((len(rects), 4, 6), rects.dtype)  # above, below, left and right of the skipped rectangle
    pieces[..., 0] = np.arange(len(rects))[:, None]
    pieces[..., 5] = (camera * H)[:, None]
    pieces[:, :2, 3], pieces[:, :2, 4] = c0[:, None], c1[:, None]
    pieces[:, 0, 1], pieces[:, 0, 2] = r0, np.minimum(r1, s_r0)
    pieces[:, 1, 1], pieces[:, 1, 2] = np.maximum(r0, s_r1), r1
    pieces[:, 2:, 1], pieces[:, 2:, 2] = m_r0[:, None], m_r1[:, None]
    pieces[:, 2, 3], pieces[:, 2, 4] = c0, np.minimum(c1, s_c0)
    pieces[:, 3, 3], pieces[:, 3, 4] = np.maximum(c0, s_c1), c1
    pieces = pieces.reshape(-1, 6)
    return pieces[(pieces[:, 2] > pieces[:, 1]) & (pieces[:, 4] > pieces[:, 3])]


def _groups(pieces: np.ndarray, W: int, table: np.ndarray, table64: np.ndarray, split: int) -> list[tuple]:
    """Pixels of rectangle ``pieces`` (:func:`_pieces`) with their owners' constants ``table`` (n, K) and
    ``table64``, as ``(flat pixel index, u, v, constants, constants64, owner)`` in images ``W`` pixels wide: the
    small pieces of owners below ``split``, then those of the others, together (1-D, constants (K, N) repeated per
    pixel), then each large one alone (2-D, constants (K,) scalars)."""
    owner, r0, r1, c0, c1, base = pieces.T
    area = (r1 - r0) * (c1 - c0)
    small = area <= BATCH_MAX_PX
    groups = []
    for part in (small & (owner < split), small & (owner >= split)):
        if not part.any():
            continue
        o, n = owner[part], area[part]
        width = np.repeat((c1 - c0)[part], n)
        offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        row = offset // width
        col = offset - row * width + np.repeat(c0[part], n)
        row += np.repeat(r0[part], n)
        groups.append(((row + np.repeat(base[part], n)) * W + col, col.astype(np.float32), row.astype(np.float32),
                       np.repeat(table[o].T, n, axis=1), np.repeat(table64[o].T, n, axis=1), np.repeat(o, n)))
    for i in np.flatnonzero(~small):
        v, u = np.arange(r0[i], r1[i]), np.arange(c0[i], c1[i])
        groups.append((((v + base[i]) * W)[:, None] + u, u.astype(np.float32)[None, :], v.astype(np.float32)[:, None],
                       table[owner[i]], table64[owner[i]], owner[i]))
    return groups


def _in_shadow(inv: np.ndarray, flat, u, v, e) -> np.ndarray:
    """Which pixels (flat indices, columns u, rows v) see ground inside their box's shadow quad: ``e . (u, v, 1)
    > 0`` for its 4 edges (e: 12 rows of constants)."""
    inside = inv.reshape(-1).take(flat, mode="wrap") > 0  # ground (wrap: in range, no bounds check)
    for k in range(0, 12, 3):
        inside &= e[k] * u + e[k + 2] > -e[k + 1] * v
    return inside


def _darken(packed: np.ndarray, flat: np.ndarray, repeats: bool, stamp: np.ndarray) -> None:
    """Darken pixels (flat indices, a pixel once per shadow over it; ``repeats``: some may repeat) to 5/8."""
    image = packed.reshape(-1)
    single, many = _split_repeats(flat, stamp) if repeats else (slice(None), None)
    for layer in [single] + ([] if many is None else _layers(flat, many, None)):
        p = flat[layer]
        x = image[p]
        image[p] = x - ((x >> 2) & np.uint32(0x3F3F3F3F)) - ((x >> 3) & np.uint32(0x1F1F1F1F))


def _split_repeats(flat: np.ndarray, stamp: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Indices into pixel indices ``flat`` (N,): of those alone on their pixel, and of the others (None if
    none). ``stamp``: scratch int32 (>= every pixel index)."""
    everything = np.arange(flat.size, dtype=np.int32)
    if flat.size < 2:
        return everything, None
    stamp[flat] = everything  # one index per pixel wins (whichever)
    lost = flat[stamp.take(flat, mode="wrap") != everything]
    if not lost.size:
        return everything, None
    stamp[lost] = -1  # pixels with several indices
    multi = stamp.take(flat, mode="wrap") == -1
    return np.flatnonzero(~multi), np.flatnonzero(multi)


def _layers(flat: np.ndarray, many: np.ndarray, owner: np.ndarray | None) -> list[np.ndarray]:
    """Indices ``many`` into pixel indices ``flat`` in layers without repeated pixels: layer r holds each
    pixel's r-th index in the order of ``owner`` (any order if None)."""
    key = flat[many] if owner is None else flat[many].astype(np.int64) * (int(owner.max()) + 1) + owner[many]
    order = many[np.argsort(key, kind="stable")]
    s = flat[order]
    start = np.empty(s.size, bool)
    start[0] = True
    np.not_equal(s[1:], s[:-1], out=start[1:])
    i = np.arange(s.size)
    rank = i - np.maximum.accumulate(np.where(start, i, 0))
    return [order[rank == r] for r in range(int(rank.max()) + 1)]


def _resolve_depth(packed: np.ndarray, inv: np.ndarray, flat, t, colour, owner: np.ndarray | None,
                   stamp: np.ndarray) -> None:
    """Write ``colour`` and ``1 / t`` of box hits (flat pixel indices) nearer than the depth buffer, as if the
    boxes were drawn one after another in the order of ``owner`` (None: no pixel has two hits).

    Drawn in order, a pixel ends with its nearest hit if that is nearer than the ground, unless two hits are
    within rounding of each other (``NEAR_TIE``): then the order decides, and those pixels are drawn box by box.
    """
    image, depth = packed.reshape(-1), inv.reshape(-1)
    single, many = _split_repeats(flat, stamp) if owner is not None else (slice(None), None)
    _write_nearer(image, depth, flat, t, colour, single)
    if many is None:
        return
    order = many[np.argsort((flat[many].astype(np.int64) << 32) | t[many].view(np.uint32))]  # pixel, then t (> 0)
    start = np.flatnonzero(np.r_[True, flat[order[1:]] != flat[order[:-1]]])  # every pixel has >= 2 hits
    first, second = order[start], order[start + 1]
    tie = t[second].astype(np.float64) <= t[first] * (1.0 + NEAR_TIE)
    _write_nearer(image, depth, flat, t, colour, first[~tie])
    if tie.any():
        stamp[flat[first[tie]]] = -2
        tied = many[stamp.take(flat[many], mode="wrap") == -2]
        for layer in _layers(flat, tied, owner):
            _write_nearer(image, depth, flat, t, colour, layer)


def _write_nearer(image: np.ndarray, depth: np.ndarray, flat, t, colour, pairs) -> None:
    """Box hits ``pairs`` (indices, at most one per pixel) nearer than what is there: colour and depth."""
    p, t_p = flat[pairs], t[pairs]
    near = t_p * depth[p] < 1.0  # nearer than what is there (sky: inv <= 0)
    image[p[near]] = colour[pairs][near]
    depth[p[near]] = np.float32(1.0) / t_p[near]
