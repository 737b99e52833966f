"""Every moving thing of the built-in simulator at one instant (traffic first, the ego last), and who leads whom.

Progress coordinates: ``p = direction * s`` along a path, so "ahead" is always larger ``p`` (see ``traffic.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LATERAL_MARGIN_M = 0.3  # extra lateral clearance when deciding whether two vehicles share a lane


@dataclass
class Agents:
    """Every moving thing at one instant, traffic first and the ego (if any) last."""

    path: np.ndarray  # (n,) int
    direction: np.ndarray  # (n,) +-1
    p: np.ndarray  # (n,) progress of the box centre (m)
    d: np.ndarray  # (n,) lateral offset now
    d_target: np.ndarray  # (n,) lateral offset it is moving to
    v: np.ndarray
    a: np.ndarray
    length: np.ndarray
    width: np.ndarray
    present: np.ndarray  # (n,) bool
    _leaders: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def all_leaders(self) -> tuple[np.ndarray, np.ndarray]:
        """``leaders`` of every agent, computed once per instant (traffic and ego share it)."""
        if self._leaders is None:
            self._leaders = self.leaders(np.arange(len(self.p)))
        return self._leaders

    def leaders(self, rows: np.ndarray, d_probe: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest agent ahead in the same path, direction and lane for each row: (index or -1, gap m).

        A candidate (at its current or target offset) shares the lane when it overlaps laterally with the
        row's current or target offset; with ``d_probe``, with that offset only (the lane a change would enter).
        """
        half = 0.5 * (self.width[rows, None] + self.width[None, :]) + LATERAL_MARGIN_M
        probes = [d_probe] if d_probe is not None else [self.d[rows], self.d_target[rows]]
        lane = np.zeros((len(rows), len(self.p)), bool)
        for probe in probes:
            lane |= np.abs(self.d[None, :] - probe[:, None]) < half
            lane |= np.abs(self.d_target[None, :] - probe[:, None]) < half
        dp = self.p[None, :] - self.p[rows, None]
        ok = lane & (dp > 0) & self.present[None, :] & (self.path[None, :] == self.path[rows, None])
        ok &= self.direction[None, :] == self.direction[rows, None]
        gap = np.where(ok, dp - 0.5 * (self.length[rows, None] + self.length[None, :]), np.inf)
        idx = np.argmin(gap, axis=1)
        g = gap[np.arange(len(rows)), idx]
        return np.where(np.isfinite(g), idx, -1), g
