"""``REPORT.md`` of ``sptrain pipeline``: what ran, how long, on what data, how the exported models compare with the
baselines on held-out episodes, and how they drive in closed loop."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.constants import DT_S
from ..driving.drive_report import drive_markdown
from ..errors import SunnypilotTrainingError
from ..fileio import atomic_write_text


@dataclass
class StageLog:
    times_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def run(self, name: str, func, *args, **kwargs):
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        except SunnypilotTrainingError as exc:
            raise type(exc)(f"stage '{name}' failed: {exc}") from exc
        finally:
            self.times_s[name] = time.perf_counter() - start


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6 if path.exists() else 0.0


def write_report(out: Path, args, log: StageLog, info: dict[str, Any], argv: list[str]) -> Path:
    """README-style markdown: what ran, how long, on what data, how the exported models compare to baselines."""
    lines = ["# sunnypilot-training run report", "",
             f"Scenario `{args.scenario}`, simulator `{info.get('simulator')}`, preset `{args.preset}`, seed "
             f"{args.seed}, contract profile `{info.get('profile')}`.", ""]
    lines += [f"> {note}" for note in log.notes] + ([""] if log.notes else [])
    lines += ["## Stages", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {secs:.1f} |" for name, secs in log.times_s.items()]
    lines += [f"| **total** | **{sum(log.times_s.values()):.1f}** |", ""]
    if "collect" in info:
        lines += ["## Data", "", "| split | episodes | seed | frames written | minutes | size (MB) |",
                  "|---|---|---|---|---|---|"]
        for split, st in info["collect"].items():
            size_mb = _dir_mb(Path(args.output_dir) / "data" / split)
            lines.append(f"| {split} | {st['episodes']} | {st['seed']} | {st['frames'] or '(existing)'} | "
                         f"{(st['frames'] or 0) * DT_S / 60:.1f} | {size_mb:.0f} |")
        lines.append("")
    if "evaluation" in info:
        m, v = info["evaluation"]["metrics"], info["evaluation"]["verdicts"]
        lines += ["## Exported models on held-out episodes (unseen seeds)", "",
                  "| metric | model | baseline | beats it |", "|---|---|---|---|",
                  f"| plan ADE 10 s (m) vs constant velocity | {m['plan_ade_10s']:.2f} | {m['plan_ade_10s_cv']:.2f} | "
                  f"{'yes' if v['plan_ade_10s_beats_constant_velocity'] else 'NO'} |",
                  f"| plan FDE 10 s (m) vs constant velocity | {m['plan_fde_10s']:.2f} | {m['plan_fde_10s_cv']:.2f} | "
                  f"{'yes' if m['plan_fde_10s'] < m['plan_fde_10s_cv'] else 'NO'} |",
                  f"| lane-line error at 60 m (m) vs straight lines | {m['far_lane_err_m']:.2f} | "
                  f"{m['far_lane_err_m_straight']:.2f} | {'yes' if v['far_lane_beats_straight_lines'] else 'NO'} |",
                  ""]
        extra = {k: m[k] for k in ("lead_x_err_m", "lead_v_err_mps", "desire_state_accuracy",
                                   "plan_calibration_1sigma") if k in m}
        lines += ["Other metrics: " + ", ".join(f"{k} {val:.3f}" for k, val in extra.items()), ""]
    if "drive" in info:
        files = info["drive"]["files"]
        lines += [drive_markdown(info["drive"]["report"], out, files["plots"], files["videos"], heading="##"), ""]
    if info.get("plots"):
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).relative_to(out)})" for p in info["plots"]] + [""]
    if "export" in info:
        lines += ["## Artifacts", ""] + [f"* `{p}`" for p in info["export"].get("files", [])] + [""]
    lines += ["## Reproduce", "", "```bash", "sptrain " + " ".join(shlex.quote(a) for a in argv), "```", ""]
    if "train" in info:
        lines += ["Training alone:", "", "```bash", "sptrain train " + " ".join(info["train"]["overrides"]), "```", ""]
    path = out / "REPORT.md"
    atomic_write_text(path, "\n".join(lines))
    return path


