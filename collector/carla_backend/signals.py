"""Blinkers and desire of a CARLA episode, worked out after driving from what the ego actually did.

The Traffic Manager drives the ego; the collector commands its lane changes (after switching the blinker on)
and its route at junctions. Desire follows ``collector/desire_rules.py``: laneChangeLeft/Right from the command
(the Traffic Manager starts the lateral move at once) until the camera is within CENTRED_M of the new lane's
centre, only if the ego really changed lanes within LANE_CHANGE_WINDOW_S; turnLeft/Right while the turn
blinker is on below the lane-change speed. A turn is a pass through a junction whose heading changes by more
than TURN_MIN_DEG; its blinker is on from TURN_SIGNAL_M before the junction to its end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...contract.constants import Desire
from ..desire_rules import CENTRED_M, LANE_CHANGE_MIN_SPEED_MPS, TURN_SIGNAL_M

LANE_CHANGE_WINDOW_S = 10.0
SETTLE_LIMIT_S = 6.0  # a lane change counts as ended at the latest this long after crossing the line
TURN_MIN_DEG = 30.0
CROSSING_JUMP_M = 1.0  # the offset to the lane centre jumps by about a lane width when the ego crosses a line


@dataclass
class LaneTrack:
    """Per frame: where the ego is in the map."""

    road_id: np.ndarray  # (T,) int
    lane_id: np.ndarray  # (T,) int
    in_junction: np.ndarray  # (T,) bool
    offset_m: np.ndarray  # (T,) camera to the right of its lane's centre
    yaw_deg: np.ndarray  # (T,) ego heading
    travelled_m: np.ndarray  # (T,) distance driven since the first frame
    speed_mps: np.ndarray  # (T,)


@dataclass
class Signals:
    desire: np.ndarray  # (T,) int
    left_blinker: np.ndarray  # (T,) bool
    right_blinker: np.ndarray  # (T,) bool
    lane_changes_done: int = 0
    lane_changes_refused: int = 0
    turns: int = 0


def _crossing(track: LaneTrack, start: int, stop: int, side: int) -> int | None:
    """First frame in (start, stop) where the ego crosses into the lane on ``side`` (-1 left, +1 right)."""
    for t in range(start + 1, stop):
        same_road = track.road_id[t] == track.road_id[t - 1] and not track.in_junction[t]
        jump = track.offset_m[t] - track.offset_m[t - 1]
        if same_road and track.lane_id[t] != track.lane_id[t - 1] and -side * jump > CROSSING_JUMP_M:
            return t
    return None


def _mark_lane_changes(track: LaneTrack, commands: list[tuple[int, int, int]], dt_s: float, out: Signals) -> None:
    T = len(track.lane_id)
    for blink, command, side in commands:
        crossed = _crossing(track, command, min(T, command + int(LANE_CHANGE_WINDOW_S / dt_s)), side)
        if crossed is None:
            out.lane_changes_refused += 1
            continue
        end = crossed
        limit = min(T - 1, crossed + int(SETTLE_LIMIT_S / dt_s))
        while end < limit and abs(track.offset_m[end]) >= CENTRED_M:
            end += 1
        blinker = out.left_blinker if side < 0 else out.right_blinker
        blinker[blink: end + 1] = True
        fast = track.speed_mps[command: end + 1] >= LANE_CHANGE_MIN_SPEED_MPS
        value = Desire.LANE_CHANGE_LEFT if side < 0 else Desire.LANE_CHANGE_RIGHT
        out.desire[command: end + 1][fast] = int(value)
        out.lane_changes_done += 1


def _junction_runs(in_junction: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], in_junction.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def _mark_turns(track: LaneTrack, out: Signals) -> None:
    T = len(track.yaw_deg)
    for a, b in _junction_runs(track.in_junction):
        if a == 0 or b == T - 1:
            continue  # a pass cut by the episode's start or end: its turn is unknown
        change = (track.yaw_deg[b + 1] - track.yaw_deg[a - 1] + 180.0) % 360.0 - 180.0
        if abs(change) < TURN_MIN_DEG:
            continue
        first = int(np.searchsorted(track.travelled_m, track.travelled_m[a] - TURN_SIGNAL_M))
        side = 1 if change > 0 else -1  # positive yaw turns right
        blinker = out.right_blinker if side > 0 else out.left_blinker
        blinker[first: b + 1] = True
        out.turns += 1
    for blinker, value in ((out.left_blinker, Desire.TURN_LEFT), (out.right_blinker, Desire.TURN_RIGHT)):
        slow = blinker & (track.speed_mps < LANE_CHANGE_MIN_SPEED_MPS) & (out.desire == int(Desire.NONE))
        out.desire[slow] = int(value)


def episode_signals(track: LaneTrack, lane_change_commands: list[tuple[int, int, int]], dt_s: float) -> Signals:
    """Desire and blinkers per frame; ``lane_change_commands`` holds (blinker frame, command frame, side)."""
    T = len(track.lane_id)
    out = Signals(np.full(T, int(Desire.NONE), dtype=np.int64), np.zeros(T, bool), np.zeros(T, bool))
    _mark_lane_changes(track, lane_change_commands, dt_s, out)
    _mark_turns(track, out)
    return out
