"""What people look at after ``sptrain drive``: a top-down plot per suite, videos of the worst runs, ``DRIVE.md``.

* ``<suite>_paths.png``: every run's path in road coordinates (along the road, and across it, with the lane lines
  as horizontal lines) - straightened, so leaving a lane is visible at a glance; failed runs in red.
* ``<suite>_worst_<k>.gif``: the worst runs driven again (the same seed gives the same run): the road camera as the
  model sees it, with the plan (orange) and predicted lane lines (magenta) drawn on, and a top-down inset (lane
  lines, the car, the plan) - the last seconds before the run ended.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from ..contract import camera
from ..contract.constants import DT_S, NUM_LANE_LINES, X_IDXS, Plan
from ..episodes.pictures import draw_polyline
from ..fileio import atomic_write_text
from .harness import Frame, drive_run
from .road_tests import DriverSpec, summary_line
from .suites import SUITES, road_tests

VIDEO_LAST_S = 8.0
VIDEO_EVERY_N_FRAMES = 4  # 5 frames per second
VIDEO_SCALE, VIDEO_COLOURS = 0.75, 48  # GIFs of noisy camera frames: about 1.3 MB for 8 s
INSET_PX = 128
INSET_FORWARD_M, INSET_HALF_WIDTH_M = (-10.0, 70.0), 12.0  # the inset stretches the road sideways to show lanes
PLAN_RGB, LANE_RGB, TRUE_LANE_RGB, CAR_RGB = (255, 120, 30), (255, 0, 255), (230, 230, 230), (60, 160, 255)


def severity(result: dict[str, Any]) -> tuple:
    """Sort key: failed before passed, ended early before completed, then the largest lane error."""
    return (bool(result["passed"]), bool(result["completed"]), -result["time_outside_lane_s"],
            -result["max_abs_offset_m"])


def plot_paths(report: dict[str, Any], suite: str, out: Path) -> Path:
    runs = [r for r in report["runs"] if r["suite"] == suite]
    cols = 4
    rows = int(np.ceil(len(runs) / cols))
    fig = Figure(figsize=(4 * cols, 1.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, run in zip(axes.flat, runs):
        path = np.asarray(run["path_s_d"])
        s, d = path[:, 0] - path[0, 0], path[:, 1]
        w = run["lane_width_m"]
        for k in range(int(np.floor(d.min() / w)) - 1, int(np.ceil(d.max() / w)) + 2):
            ax.axhline(k * w, color="0.6", lw=0.8)
        ax.plot(s, d, color="tab:blue" if run["passed"] else "tab:red", lw=1.2)
        ax.set_title(f"{run['group']} #{run['index']}: {run['ended_by']}", fontsize=7)
        ax.invert_yaxis()  # right of the road is down, as seen from above with the road going right
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    fig.suptitle(f"{suite}: path across the road (m, right positive) vs distance along it (m)", fontsize=9)
    fig.tight_layout()
    path = out / f"{suite}_paths.png"
    fig.savefig(path, dpi=90)
    return path


def _project_on_road(rgb: np.ndarray, frame: Frame) -> None:
    """Draw the frame's plan and predicted lane lines onto the road camera picture (medmodel), in place."""
    out = frame.output
    if out.vision is not None:
        lines, probs = out.vision["lane_lines"][0], out.vision["lane_lines_prob"][0][1::2]
        for i in range(NUM_LANE_LINES):
            if probs[i] > 0.3:
                pts = np.concatenate([X_IDXS[:, None], lines[i]], axis=1)
                px, front = camera.project_points_device(pts, camera.MEDMODEL)
                draw_polyline(rgb, np.where(front[:, None], px, np.nan), LANE_RGB, 1)
    if out.plan is not None:
        height = camera.CAMERA_HEIGHT_M
        pts = out.plan[:, Plan.POSITION] + np.array([0.0, 0.0, height])
        px, front = camera.project_points_device(pts, camera.MEDMODEL)
        draw_polyline(rgb, np.where(front[:, None], px, np.nan), PLAN_RGB, 2)


def _inset(frame: Frame) -> np.ndarray:
    """(INSET_PX, INSET_PX, 3) top-down view in the car's frame: true lane lines, the plan, the car."""
    img = np.full((INSET_PX, INSET_PX, 3), 40, np.uint8)
    along = INSET_PX / (INSET_FORWARD_M[1] - INSET_FORWARD_M[0])
    across = INSET_PX / (2 * INSET_HALF_WIDTH_M)

    def to_px(x_fwd: np.ndarray, y_right: np.ndarray) -> np.ndarray:
        return np.stack([INSET_PX / 2 + y_right * across, INSET_PX - (x_fwd - INSET_FORWARD_M[0]) * along], axis=1)

    for line in frame.lane_lines_car:
        draw_polyline(img, to_px(line[:, 0], line[:, 1]), TRUE_LANE_RGB, 1)
    if frame.output.plan is not None:
        plan = frame.output.plan
        draw_polyline(img, to_px(plan[:, 0], plan[:, 1]), PLAN_RGB, 2)
    car = to_px(np.array([0.0, 0.0, -4.0, -4.0, 0.0]), np.array([-0.9, 0.9, 0.9, -0.9, -0.9]))
    draw_polyline(img, car, CAR_RGB, 1)
    return img


def write_video(spec: DriverSpec, run: dict[str, Any], out: Path, seed: int) -> Path | None:
    """Drive ``run`` again, recording, and write the GIF of its last ``VIDEO_LAST_S`` seconds."""
    test = road_tests(run["suite"], run["index"] + 1)[run["index"]]
    _, frames = drive_run(replace(test, duration_s=run["driven_s"] + DT_S), spec.build(), seed, record=True)
    if not frames:
        return None
    images = []
    for frame in frames[-int(VIDEO_LAST_S / DT_S)::VIDEO_EVERY_N_FRAMES]:
        rgb = frame.road_rgb.copy()
        _project_on_road(rgb, frame)
        rgb[-INSET_PX - 4:-4, -INSET_PX - 4:-4] = _inset(frame)
        size = (int(rgb.shape[1] * VIDEO_SCALE), int(rgb.shape[0] * VIDEO_SCALE))
        images.append(Image.fromarray(rgb).resize(size, Image.BILINEAR).quantize(VIDEO_COLOURS,
                                                                                 dither=Image.Dither.NONE))
    path = out / f"{run['suite']}_{run['group']}_{run['index']}.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=VIDEO_EVERY_N_FRAMES * 50, loop=0)
    return path


def write_drive_report(report: dict[str, Any], spec: DriverSpec, out: Path,
                       videos_per_suite: int = 2) -> dict[str, list[str]]:
    """Plots, videos and ``DRIVE.md`` into ``out``; returns {"plots": [...], "videos": [...]}."""
    out.mkdir(parents=True, exist_ok=True)
    plots, videos = [], []
    for suite in report["suites"]:
        plots.append(str(plot_paths(report, suite, out)))
        worst = sorted((r for r in report["runs"] if r["suite"] == suite), key=severity)[:videos_per_suite]
        for run in worst:
            path = write_video(spec, run, out, report["seed"])
            if path is not None:
                videos.append(str(path))
    atomic_write_text(out / "DRIVE.md", drive_markdown(report, out, plots, videos))
    return {"plots": plots, "videos": videos}


def drive_markdown(report: dict[str, Any], out: Path, plots: list[str], videos: list[str], heading: str = "#") -> str:
    lines = [f"{heading} Closed-loop road tests", "",
             f"Driver: {report['driver']['label']}; seed {report['seed']}"
             + (f"; first {report['runs_per_suite']} runs per suite" if report.get("runs_per_suite") else "")
             + (f"; runs cut to {report['duration_s']:g} s" if report.get("duration_s") else "") + ".", "",
             f"**{summary_line(report)}**", "",
             "| suite | passed | ended by | mean / max abs offset (m) | time outside lane (s) | max lat accel "
             "(m/s²) | rms lat jerk (m/s³) | lane changes | min time gap (s) | collisions |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in report["suites"].items():
        ended = ", ".join(f"{k} {v}" for k, v in sorted(s["ended_by"].items()))
        lc = f"{s['lane_change_success']}/{s['runs']}" if "lane_change_success" in s else "-"
        gap = f"{s['min_time_gap_s']:.2f}" if s["min_time_gap_s"] is not None else "-"
        lines.append(f"| {name} | {s['passed']}/{s['runs']} | {ended} | {s['mean_abs_offset_m']:.2f} / "
                     f"{s['max_abs_offset_m']:.2f} | {s['time_outside_lane_s']:.1f} | {s['max_lat_accel_mps2']:.2f} | "
                     f"{s['rms_lat_jerk_mps3']:.2f} | {lc} | {gap} | {s['collisions']} |")
    lines += ["", "What the suites hold and what passing means: docs/driving.md. " + SUITES_TEXT, ""]
    for p in plots + videos:
        rel = Path(p).relative_to(out) if Path(p).is_relative_to(out) else Path(p)
        lines += [f"![{Path(p).stem}]({rel.as_posix()})", ""]
    return "\n".join(lines)


SUITES_TEXT = "; ".join(f"{s.name}: {s.description}" for s in SUITES.values()) + "."
