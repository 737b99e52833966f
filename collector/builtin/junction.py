"""Who may enter a junction box: all-way stop (first come, first go) or priority (the other road yields).

Works in the *progress* coordinates of ``traffic.py`` (``p = direction * s``, so "ahead" is always larger ``p``)
on the :class:`~.traffic.Agents` of one instant (traffic first, the ego last).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .agents import Agents

STOP_WAIT_S = 1.0  # minimum standstill at a stop line
STOPPED_MPS = 0.1
YIELD_TIME_S = 10.0  # a yielding vehicle waits until every priority vehicle is this far (in time) from the box


@dataclass(frozen=True)
class Approach:
    """One way into a junction along a path, in progress coordinates (``p = direction * s``)."""

    stop_p_m: float  # stop line
    box_in_p_m: float  # the box every conflicting vehicle must clear
    box_out_p_m: float
    must_stop: bool  # stop at the line (all-way stop, or the yielding road of a priority junction)



class JunctionGate:
    """Who may enter the junction box: all-way stop (first come, first go) or priority (others yield).

    Each agent with an approach is APPROACHING (must stop at the line if the approach says so), WAITING
    (stopped at the line since ``arrival_s``), CLEARED (may cross) or DONE (past the box, or no approach).
    """

    APPROACHING, WAITING, CLEARED, DONE = 0, 1, 2, 3

    def __init__(self, approaches: dict[tuple[int, int], Approach], kind: str):
        self.approaches, self.kind = approaches, kind  # (path, direction) -> Approach; "all_way_stop"/"priority"
        self.state = np.zeros(0, np.int64)
        self.gaps = np.zeros(0)  # per agent, after update(): see _obstacle_gaps

    def _init(self, agents: Agents) -> None:
        n = len(agents.p)
        self.arrival_s = np.full(n, np.inf)
        self.stop_p, self.box_in, self.box_out = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        must = np.zeros(n, bool)
        for i in range(n):
            ap = self.approaches.get((int(agents.path[i]), int(agents.direction[i])))
            if ap is not None:
                self.stop_p[i], self.box_in[i], self.box_out[i], must[i] = (ap.stop_p_m, ap.box_in_p_m,
                                                                             ap.box_out_p_m, ap.must_stop)
        front = agents.p + 0.5 * agents.length
        self.state = np.where(must, self.APPROACHING, self.CLEARED)
        self.state[np.isnan(self.stop_p) | (front > self.stop_p + 0.5)] = self.DONE

    def update(self, t_s: float, agents: Agents) -> None:
        if len(self.state) != len(agents.p):
            self._init(agents)
        front, back = agents.p + 0.5 * agents.length, agents.p - 0.5 * agents.length
        active = self.state != self.DONE
        self.state[active & (~agents.present | (back > self.box_out))] = self.DONE
        arrive = (self.state == self.APPROACHING) & (front > self.stop_p - 2.5) & (agents.v < STOPPED_MPS)
        self.state[arrive], self.arrival_s[arrive] = self.WAITING, t_s
        for i in np.flatnonzero((self.state == self.WAITING) & (t_s - self.arrival_s >= STOP_WAIT_S)):
            if self._may_go(agents, i):
                self.state[i] = self.CLEARED
        self.gaps = self._obstacle_gaps(agents)

    def _may_go(self, agents: Agents, i: int) -> bool:
        others = (agents.path != agents.path[i]) & (self.state != self.DONE)
        if self.kind == "all_way_stop":
            first = (self.state == self.WAITING) & (self.arrival_s < self.arrival_s[i])
            return not np.any(others & ((self.state == self.CLEARED) | first))
        front = agents.p + 0.5 * agents.length
        to_box_s = (self.box_in - front) / np.maximum(agents.v, 1.0)
        blocking = others & (self.state == self.CLEARED) & ((front > self.box_in) | (to_box_s < YIELD_TIME_S))
        return not np.any(blocking)

    def _obstacle_gaps(self, agents: Agents) -> np.ndarray:
        """(n,) gap (m) from each agent's front to where it must stand still (stop line or box entry), or inf."""
        front, back = agents.p + 0.5 * agents.length, agents.p - 0.5 * agents.length
        gaps = np.full(len(agents.p), np.inf)
        stopping = (self.state == self.APPROACHING) | (self.state == self.WAITING)
        gaps[stopping] = (self.stop_p - 0.5 - front)[stopping]
        cleared = self.state == self.CLEARED
        inside = cleared & (front > self.box_in - 1.0) & (back < self.box_out)
        per_path = np.bincount(agents.path[inside], minlength=int(agents.path.max()) + 1)
        busy = int(inside.sum()) - per_path[agents.path] > 0  # a vehicle from another road is in the box
        room = self.box_in - 0.5 - front
        wait = cleared & busy & (room > 0) & (agents.v ** 2 < 2.0 * 5.0 * np.maximum(room, 0.0))
        gaps[wait] = room[wait]
        return gaps
