"""``REPORT.md`` of ``sptrain pipeline``: what ran, how long, on what data, how the exported models compare with the
baselines on held-out episodes, and how they drive in closed loop."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _pm(stat: dict[str, float] | None, digits: int = 2) -> str:
    """'mean ± std' over episodes, or '-'."""
    if not stat or not stat.get("n"):
        return "-"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


# (label, model metric, baseline metric or None, digits)
TEST_ROWS = [(f"plan {e.upper()} {h} s (m) vs constant velocity", f"plan_{e}_{h}s", f"plan_{e}_{h}s_cv", 2)
             for e in ("ade", "fde") for h in (2, 5, 10)]
TEST_ROWS += [(f"{side} lane line at {d} m (m) vs straight lines", f"lane_{side}_err_{d}m",
               f"lane_{side}_err_{d}m_straight", 2) for side in ("left", "right") for d in (10, 30, 60)]
TEST_ROWS += [("lane centre at the car (m) vs saying the car is centred", "lane_centre_err_0m",
               "lane_centre_err_0m_centred", 2),
              ("lead distance error (m)", "lead_x_err_m", None, 2),
              ("lead distance error / distance", "lead_x_rel_err", None, 3),
              ("lead speed error (m/s)", "lead_v_err_mps", None, 2),
              ("lead presence accuracy", "lead_prob_accuracy", None, 3),
              ("lateral action (m/s²) vs holding the current curvature", "action_lat_accel_err_mps2",
               "action_lat_accel_err_mps2_hold", 3),
              ("longitudinal action (m/s²) vs constant velocity", "action_long_accel_err_mps2",
               "action_long_accel_err_mps2_cv", 3),
              ("longitudinal action: mean signed error (m/s²)", "action_long_accel_bias_mps2", None, 3),
              ("speed error of the plan at t = 0 (m/s)", "plan_speed_err_mps", None, 2),
              ("speed error of the vision pose (m/s)", "pose_speed_err_mps", None, 2),
              ("desire state accuracy", "desire_state_accuracy", None, 3),
              ("plan: errors within 1 predicted std (0.68 ideal)", "plan_calibration_1sigma", None, 3),
              ("left line: errors within 1 std", "lane_left_calibration_1sigma", None, 3),
              ("right line: errors within 1 std", "lane_right_calibration_1sigma", None, 3)]
SCENARIO_COLUMNS = [("ADE 2 s", "plan_ade_2s"), ("ADE 5 s", "plan_ade_5s"), ("ADE 10 s", "plan_ade_10s"),
                    ("left 30 m", "lane_left_err_30m"), ("left 60 m", "lane_left_err_60m")]
BASELINE = {"plan_ade_2s": "plan_ade_2s_cv", "plan_ade_5s": "plan_ade_5s_cv", "plan_ade_10s": "plan_ade_10s_cv",
            "lane_left_err_30m": "lane_left_err_30m_straight", "lane_left_err_60m": "lane_left_err_60m_straight"}


def evaluation_markdown(evaluation: dict[str, Any]) -> list[str]:
    """The held-out tables: every horizon against its baseline (mean ± std over episodes), per scenario, the
    appearance shift, and the quality bars."""
    test = evaluation["test"]
    summary = test["summary"]
    overall = summary["all"]
    n = len(test["episodes"])
    lines = ["## Exported models on held-out test episodes", "",
             f"{n} episodes with seeds that neither training nor validation (nor the std calibration) used; mean ± "
             f"standard deviation over episodes (an episode without a lead or a painted line does not count for "
             f"those rows). Constant velocity is given the car's true speed; straight lines keep each true line's "
             f"offset at the car.", "",
             "| metric | model | baseline | model ÷ baseline |", "|---|---|---|---|"]
    for label, key, base, digits in TEST_ROWS:
        m, b = overall.get(key), overall.get(base) if base else None
        ratio = f"{m['mean'] / b['mean']:.2f}" if m and b and m.get("n") and b.get("n") and b["mean"] else ""
        lines.append(f"| {label} | {_pm(m, digits)} | {_pm(b, digits) if base else ''} | {ratio} |")
    lines += ["", "### Per scenario (model / baseline, means over episodes)", "",
              "| scenario | episodes | " + " | ".join(c for c, _ in SCENARIO_COLUMNS) + " | speed err (m/s) | "
              "plan 1σ |", "|---|---" + "|---" * (len(SCENARIO_COLUMNS) + 2) + "|"]
    for name, stats in summary.items():
        if name == "all":
            continue
        cells = []
        for _, key in SCENARIO_COLUMNS:
            m, b = stats.get(key, {}), stats.get(BASELINE[key], {})
            cells.append(f"{m['mean']:.2f} / {b['mean']:.2f}" if m.get("n") and b.get("n") else "-")
        speed, cov = stats.get("plan_speed_err_mps", {}), stats.get("plan_calibration_1sigma", {})
        lines.append(f"| {name} | {stats.get('plan_ade_5s', {}).get('n', 0)} | " + " | ".join(cells)
                     + f" | {speed.get('mean', float('nan')):.2f} | {cov.get('mean', float('nan')):.2f} |")
    if "test_unseen_look" in evaluation:
        unseen = evaluation["test_unseen_look"]["summary"]["all"]
        lines += ["", "### Appearance shift: the same roads in a look no training scenario uses", "",
                  f"{len(evaluation['test_unseen_look']['episodes'])} of the test episodes drawn again with low sun, "
                  f"dim light, strong noise, light pavement, worn paint and snowy or sandy verges "
                  f"(docs/simulator.md).", "",
                  "| metric | seen look | unseen look | change |", "|---|---|---|---|"]
        for label, key, _, digits in TEST_ROWS:
            if key not in ("plan_ade_2s", "plan_ade_5s", "plan_ade_10s", "lane_left_err_30m", "lane_left_err_60m",
                           "plan_speed_err_mps", "lead_x_rel_err"):
                continue
            a, b = overall.get(key), unseen.get(key)
            change = f"{100 * (b['mean'] / a['mean'] - 1):+.0f} %" if a and b and a.get("n") and b.get("n") and \
                a["mean"] else ""
            lines.append(f"| {label} | {_pm(a, digits)} | {_pm(b, digits)} | {change} |")
    lines += ["", "### Quality bars (all test episodes)", ""]
    lines += [f"* {name.replace('_', ' ')}: **{'yes' if ok else 'no'}**" for name, ok in evaluation["verdicts"].items()]
    return lines + [""]


ROUND_METRICS = ("plan_ade_2s", "plan_ade_5s", "plan_ade_10s", "lane_left_err_30m", "lane_left_err_60m",
                 "plan_speed_err_mps", "plan_calibration_1sigma")


def on_policy_markdown(info: dict[str, Any]) -> list[str]:
    """One row per model: the expert-only one (round 0) and each on-policy round, on the same test episodes."""
    head = " | ".join(m.replace("_", " ") for m in ROUND_METRICS)
    lines = ["## On-policy rounds", "",
             "Each round: the latest models drive new training episodes (the expert labels every frame and takes over "
             "when the car strays), then the models are trained again on all episodes. Test episodes as above.", "",
             f"| round | expert share of its episodes | {head} | closed loop |",
             "|---|---|" + "---|" * len(ROUND_METRICS) + "---|"]
    rows = [(0, None, info.get("evaluation"), info.get("drive"))]
    rows += [(r["round"], r["collect"]["expert_share"], r.get("evaluation"), r.get("drive")) for r in info["on_policy"]]
    for k, share, evaluation, drive in rows:
        summary = (evaluation or {}).get("test", {}).get("summary", {}).get("all", {})
        cells = [f"{summary[m]['mean']:.2f}" if m in summary else "—" for m in ROUND_METRICS]
        share_text = "—" if share is None else f"{share:.2f}"
        lines.append(f"| {k} | {share_text} | {' | '.join(cells)} | {drive['summary'] if drive else '—'} |")
    return lines + [""]


def write_report(out: Path, args, log: StageLog, info: dict[str, Any], argv: list[str]) -> Path:
    """README-style markdown: what ran, how long, on what data, how the exported models compare to baselines."""
    lines = ["# sunnypilot-training run report", "",
             f"Scenarios {', '.join(f'`{s}`' for s in args.scenarios)}, simulator `{info.get('simulator')}`, "
             f"preset `{args.preset}`, seed {args.seed}, contract profile `{info.get('profile')}`.", ""]
    lines += [f"> {note}" for note in log.notes] + ([""] if log.notes else [])
    lines += ["## Stages", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {secs:.1f} |" for name, secs in log.times_s.items()]
    lines += [f"| **total** | **{sum(log.times_s.values()):.1f}** |", ""]
    if "collect" in info:
        lines += ["## Data", "",
                  "| split | episodes | seed | seconds each (+ label tail) | frames written | size (MB) |",
                  "|---|---|---|---|---|---|"]
        for split, st in info["collect"].items():
            size_mb = _dir_mb(Path(args.output_dir) / "data" / split)
            lines.append(f"| {split} | {st['episodes']} | {st['seed']} | {st['seconds']:g} "
                         f"(+ {st['label_tail_seconds']:g}) | "
                         f"{st['frames'] or '(existing)'} | {size_mb:.0f} |")
        lines.append("")
    if "evaluation" in info:
        lines += evaluation_markdown(info["evaluation"])
    if "drive" in info:
        files = info["drive"]["files"]
        lines += [drive_markdown(info["drive"]["report"], out, files["plots"], files["videos"], heading="##"), ""]
    if info.get("on_policy"):
        lines += on_policy_markdown(info)
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


