"""CARLA coordinates -> the collector's world frame, and the road's lines and edges from map waypoints.

CARLA's world is left-handed: x forward, y right, z up, angles in degrees with positive yaw turning x towards
y, positive pitch nose up and positive roll right side down. Our world frame (``collector/truth.py``) is
(x, y, -z): right-handed and z down, so positions only flip z and the Euler angles keep their signs (in
radians). Lines are sampled along the ego's lane every ``STEP_M`` from ``BEHIND_M`` behind the car to
``AHEAD_M`` ahead; at a junction the branch the ego really took is followed.
"""

from __future__ import annotations

import math

import numpy as np

STEP_M = 2.0
BEHIND_M = 10.0
AHEAD_M = 226.0  # past LINE_SAMPLES_AHEAD_M (220 m)
N_SAMPLES = int(round((BEHIND_M + AHEAD_M) / STEP_M)) + 1
PAINTED = ("Broken", "Solid", "SolidSolid", "SolidBroken", "BrokenSolid", "BrokenBroken", "BottsDots")
PAVEMENT = ("Driving", "Shoulder", "Parking", "Bidirectional", "Biking", "Stop", "Entry", "Exit", "OnRamp",
            "OffRamp")
MAX_NEIGHBOURS = 8
BRANCH_LOOKAHEAD_M = 30.0


def pose_from_transform(transform) -> np.ndarray:
    """(6,) x, y, z, roll, pitch, yaw of a CARLA transform in the z-down world frame (metres, radians)."""
    loc, rot = transform.location, transform.rotation
    return np.array([loc.x, loc.y, -loc.z, math.radians(rot.roll), math.radians(rot.pitch),
                     math.radians(rot.yaw)])


def vector_ned(v) -> np.ndarray:
    return np.array([v.x, v.y, -v.z])


def body_component(v, transform) -> float:
    """Component of a CARLA world vector along the body x axis of ``transform``."""
    f = transform.get_forward_vector()
    return float(v.x * f.x + v.y * f.y + v.z * f.z)


def _name(enum_value) -> str:
    return str(getattr(enum_value, "name", enum_value)).rsplit(".", 1)[-1]


def is_same_direction_driving(w, lane) -> bool:
    """``lane`` (beside ``w``) is a driving lane with w's direction of travel (lane ids of one sign)."""
    return lane is not None and lane.lane_id * w.lane_id > 0 and _name(lane.lane_type) == "Driving"


def is_painted(marking) -> bool:
    return marking is not None and _name(marking.type) in PAINTED


def is_pavement(waypoint) -> bool:
    return waypoint is not None and _name(waypoint.lane_type) in PAVEMENT


def _loc(w) -> np.ndarray:
    loc = w.transform.location
    return np.array([loc.x, loc.y, loc.z])


def _right(w) -> np.ndarray:
    r = w.transform.get_right_vector()
    v = np.array([r.x, r.y, 0.0])
    return v / max(np.linalg.norm(v), 1e-9)


def neighbours(w, side: int) -> list:
    """Lanes beside ``w`` on its ``side`` (-1 left, +1 right, in w's direction of travel), nearest first.

    Crossing the centre line reverses a lane's orientation (its left is our right), as in CARLA.
    """
    out, cur, flipped = [], w, False
    for _ in range(MAX_NEIGHBOURS):
        nxt = cur.get_left_lane() if (side < 0) != flipped else cur.get_right_lane()
        if nxt is None or _name(nxt.lane_type) in ("NONE", "Any"):
            break
        if (nxt.lane_id > 0) != (cur.lane_id > 0):
            flipped = not flipped
        out.append(nxt)
        cur = nxt
    return out


def _far_marking(w, lane, side: int):
    """The marking on the far side (from w) of the neighbouring ``lane``."""
    same = (lane.lane_id > 0) == (w.lane_id > 0)
    return (lane.left_lane_marking if same else lane.right_lane_marking) if side < 0 else (
        lane.right_lane_marking if same else lane.left_lane_marking)


def cross_section(w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines (4, 3), edges (2, 3) in CARLA coordinates at waypoint ``w``, and which lines exist (4,) bool.

    Lines: far-left, left, right, far-right boundaries (a missing neighbour lane is drawn one lane width out
    and does not exist). Edges: the outer boundaries of the pavement lanes (driving, shoulder, parking ...)
    contiguous with the ego's lane.
    """
    c, r, half = _loc(w), _right(w), w.lane_width / 2.0
    left_lanes, right_lanes = neighbours(w, -1), neighbours(w, +1)
    lines = np.empty((4, 3))
    exist = np.zeros(4, dtype=bool)
    lines[1], lines[2] = c - r * half, c + r * half
    exist[1], exist[2] = is_painted(w.left_lane_marking), is_painted(w.right_lane_marking)
    for k, side, lanes in ((0, -1, left_lanes), (3, +1, right_lanes)):
        lane = lanes[0] if lanes and is_pavement(lanes[0]) else None
        width = lane.lane_width if lane is not None else w.lane_width
        lines[k] = c + side * r * (half + width)
        exist[k] = lane is not None and _name(lane.lane_type) == "Driving" and is_painted(_far_marking(w, lane, side))
    edges = np.empty((2, 3))
    for k, side, lanes in ((0, -1, left_lanes), (1, +1, right_lanes)):
        offset = half
        for lane in lanes:
            if not is_pavement(lane):
                break
            offset += lane.lane_width
        edges[k] = c + side * r * offset
    return lines, edges, exist


def _branch_points(start, forward: bool) -> np.ndarray:
    """(n, 2) points along a branch for BRANCH_LOOKAHEAD_M, following its first continuation."""
    pts, cur = [_loc(start)[:2]], start
    for _ in range(int(BRANCH_LOOKAHEAD_M / STEP_M)):
        nxt = cur.next(STEP_M) if forward else cur.previous(STEP_M)
        if not nxt:
            break
        cur = nxt[0]
        pts.append(_loc(cur)[:2])
    return np.array(pts)


def _closest(candidates: list, track_xy: np.ndarray, forward: bool = True):
    """The branch the ego took: the candidate whose next BRANCH_LOOKAHEAD_M stay nearest the ego's track.

    Right at a fork the branches are centimetres apart; over 30 m they part by metres, far more than the
    ego's offset from its lane centre. With no track (episode end) the first candidate is kept.
    """
    if len(candidates) == 1 or len(track_xy) == 0:
        return candidates[0]
    scores = []
    for c in candidates:
        pts = _branch_points(c, forward)  # (n, 2)
        d = np.linalg.norm(pts[:, None, :] - track_xy[None, :, :], axis=2).min(axis=1)  # (n,)
        scores.append(float(d.mean()))
    return candidates[int(np.argmin(scores))]


def lane_samples(start, future_xy: np.ndarray, past_xy: np.ndarray) -> list:
    """N_SAMPLES waypoints along the lane of ``start`` (fewer if the lane ends), BEHIND_M behind it first."""
    behind = start.previous(BEHIND_M)
    first = _closest(behind, past_xy, forward=False) if behind else start
    samples = [first]
    for _ in range(N_SAMPLES - 1):
        nxt = samples[-1].next(STEP_M)
        if not nxt:
            break
        samples.append(_closest(nxt, future_xy))
    return samples


def road_geometry(samples: list) -> tuple[np.ndarray, np.ndarray]:
    """Lines (4, N_SAMPLES, 3) and edges (2, N_SAMPLES, 3) in the z-down world frame along ``samples``.

    A lane that ends early is extended by repeating its last point (the labeller extrapolates from the last
    10 m, see docs/labels.md).
    """
    lines = np.empty((4, N_SAMPLES, 3))
    edges = np.empty((2, N_SAMPLES, 3))
    for i, w in enumerate(samples):
        lines[:, i], edges[:, i], _ = cross_section(w)
    lines[:, len(samples):] = lines[:, len(samples) - 1: len(samples)]
    edges[:, len(samples):] = edges[:, len(samples) - 1: len(samples)]
    lines[..., 2] *= -1.0
    edges[..., 2] *= -1.0
    return lines, edges


def lateral_offset_m(w, location) -> float:
    """Signed distance of a CARLA location to the right of waypoint ``w``'s lane centre."""
    d = np.array([location.x, location.y, location.z]) - _loc(w)
    return float(d @ _right(w))
