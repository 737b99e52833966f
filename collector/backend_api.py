"""What a simulator backend is to the collector: the episode it is asked for, what it reports back, its interface.

A backend is one object with a ``name``, a ``version`` (bumped whenever its output for a given seed changes), a
``check`` that fails before anything runs (no server, a wrong version) and a ``run`` that collects episodes and
reports each result as it comes. ``collector/collect.py`` keeps the registry; a new simulator is one folder whose
backend module exposes ``BACKEND``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..contract.constants import DT_S
from ..episodes.shards import shard_name


@dataclass(frozen=True)
class EpisodeSpec:
    """Episode ``episode_index`` of ``seed``: every random stream of it is seeded from (scenario, seed, index).

    ``duration_s`` is what the shard records; the world goes on for ``label_tail_s`` more, unrecorded, so that the
    labels that look ahead (the plan's 10 s, the lead's and the meta's futures) hold on every recorded frame."""

    simulator: str
    scenario: str
    seed: int
    episode_index: int
    duration_s: float
    output_dir: str
    label_tail_s: float = 0.0

    @property
    def simulated_s(self) -> float:
        """Seconds the world runs: the recorded ones and the label tail."""
        return self.duration_s + self.label_tail_s

    @property
    def n_recorded(self) -> int:
        """Frames the shard records (the label tail is simulated, not recorded)."""
        return int(round(self.duration_s / DT_S))

    @property
    def n_simulated(self) -> int:
        """Frames the world runs, the label tail included."""
        return int(round(self.simulated_s / DT_S))

    @property
    def name(self) -> str:
        return shard_name(self.scenario, self.seed, self.episode_index)


@dataclass
class EpisodeResult:
    name: str
    n_frames: int
    seconds: float
    timings_s: dict[str, float] = field(default_factory=dict)  # stage -> seconds (profile of the episode)
    error: str | None = None  # set when the episode failed and was not written


Done = Callable[[EpisodeResult], None]


class SimulatorBackend(Protocol):
    name: str
    version: str

    def check(self, options: Any) -> None:
        """Raise a SimulatorError or ConfigError now if ``run`` cannot work (e.g. no server answers)."""

    def run(self, specs: list[EpisodeSpec], workers: int, options: Any, done: Done) -> None:
        """Collect ``specs`` (one shard each); ``done`` receives every result, written or failed."""
