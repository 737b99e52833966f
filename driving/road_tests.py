"""Run road-test suites with one driver: the runs in parallel processes, a summary per suite, ``drive.json``.

``drive.json``::

    {"driver": {...}, "seed": S, "suites": {"<suite>": {"runs": N, "passed": K, "pass_rate", "ended_by": {...},
     "mean_abs_offset_m", "max_abs_offset_m", "time_outside_lane_s", "max_lat_accel_mps2", "rms_lat_jerk_mps3",
     "lane_change_success" (lane_change), "min_time_gap_s" (follow), "collisions"}},
     "runs": [{"suite", "group", "name", "seed", "index", "passed", "ended_by", ...metrics}]}

The same command (driver, suites, ``--runs``, ``--seed``) always gives the same ``drive.json``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..collector.builtin.blas import one_blas_thread
from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..workers import run_jobs
from .drivers import REFERENCE_DRIVERS, ModelDriver, reference_driver
from .harness import drive_run
from .suites import RoadTest, road_tests, suite_names

# progress bars share a thread lock: tqdm's default process lock leaks a semaphore when worker processes are spawned
tqdm.set_lock(threading.RLock())


@dataclass(frozen=True)
class DriverSpec:
    """Which driver, as plain data (each worker process builds its own)."""

    kind: str  # "model" or a reference driver name
    export_dir: str | None = None
    runtime: str = "onnxruntime"

    def build(self):
        if self.kind == "model":
            return ModelDriver(str(self.export_dir), self.runtime)
        return reference_driver(self.kind)

    @property
    def label(self) -> str:
        return f"model {self.export_dir} ({self.runtime})" if self.kind == "model" else self.kind


def driver_spec(export_dir: str | None, driver: str | None, runtime: str = "onnxruntime") -> DriverSpec:
    """From the command line: an export folder, or ``--driver``; exactly one of them."""
    if (export_dir is None) == (driver is None):
        raise ConfigError("give an export folder (the model to test) or --driver "
                          f"{'|'.join(REFERENCE_DRIVERS)}, not both or neither")
    if driver is not None:
        if driver not in (*REFERENCE_DRIVERS, "oracle"):
            raise ConfigError(f"--driver {driver!r}; expected one of {list(REFERENCE_DRIVERS)}")
        return DriverSpec(driver)
    if not Path(export_dir).is_dir():
        raise ConfigError(f"{export_dir}: no such export folder; run `sptrain export CKPT --out-dir DIR` first")
    return DriverSpec("model", str(Path(export_dir).resolve()), runtime)


def selected_suites(suite: str) -> list[str]:
    if suite == "all":
        return suite_names()
    if suite not in suite_names():
        raise ConfigError(f"--suite {suite!r}; expected one of {suite_names()} or all")
    return [suite]


def _run_one(job: tuple[DriverSpec, RoadTest, int]) -> dict[str, Any]:
    spec, test, seed = job
    result, _ = drive_run(test, spec.build(), seed)
    return result


def summarise(suite: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-suite summary of ``drive.json``."""
    def mean(key):
        values = [r[key] for r in results if r.get(key) is not None]
        return float(np.mean(values)) if values else None

    ended: dict[str, int] = {}
    for r in results:
        ended[r["ended_by"]] = ended.get(r["ended_by"], 0) + 1
    out = {"runs": len(results), "passed": sum(bool(r["passed"]) for r in results),
           "completed": sum(bool(r["completed"]) for r in results), "ended_by": ended,
           "mean_abs_offset_m": mean("mean_abs_offset_m"),
           "max_abs_offset_m": max((r["max_abs_offset_m"] for r in results), default=None),
           "time_outside_lane_s": sum(r["time_outside_lane_s"] for r in results),
           "max_lat_accel_mps2": max((r["max_lat_accel_mps2"] for r in results), default=None),
           "rms_lat_jerk_mps3": mean("rms_lat_jerk_mps3"), "collisions": sum(bool(r["collision"]) for r in results)}
    out["pass_rate"] = out["passed"] / max(out["runs"], 1)
    if suite == "lane_change":
        out["lane_change_success"] = sum(bool(r.get("lane_change_success")) for r in results)
    gaps = [r["min_time_gap_s"] for r in results if r.get("min_time_gap_s") is not None]
    out["min_time_gap_s"] = float(min(gaps)) if gaps else None
    return out


def run_road_tests(spec: DriverSpec, suites: list[str], runs: int | None, seed: int, workers: int = 1,
                   progress: bool = True, duration_s: float | None = None) -> dict[str, Any]:
    """Drive every selected run; returns the ``drive.json`` content (runs in suite order, each with its path)."""
    tests = [t for s in suites for t in road_tests(s, runs, duration_s)]
    jobs = [(spec, t, seed) for t in tests]
    bar = tqdm(total=len(jobs), unit="run", desc=f"drive ({spec.kind})", disable=not progress)
    results: list[dict[str, Any]] = []
    # in order: the report does not depend on timing
    for result in run_jobs(_run_one, jobs, workers, ordered=True, here=one_blas_thread):
        results.append(result)
        bar.update(1)
    bar.close()
    summary = {s: summarise(s, [r for r in results if r["suite"] == s]) for s in suites}
    return {"driver": {**asdict(spec), "label": spec.label}, "seed": seed, "runs_per_suite": runs,
            "duration_s": duration_s, "suites": summary, "runs": results}


def write_drive_json(report: dict[str, Any], out_dir: Path) -> Path:
    """``drive.json`` without the per-frame paths (those go into the plots)."""
    clean = {**report, "runs": [{k: v for k, v in r.items() if k != "path_s_d"} for r in report["runs"]]}
    return atomic_write_text(out_dir / "drive.json", json.dumps(clean, indent=2) + "\n")


def summary_line(report: dict[str, Any]) -> str:
    """``N/24 lane-keep, M/20 lane-change, K/12 follow``."""
    names = {"lane_keep": "lane-keep", "lane_change": "lane-change", "follow": "follow"}
    return ", ".join(f"{s['passed']}/{s['runs']} {names.get(k, k)}" for k, s in report["suites"].items())
