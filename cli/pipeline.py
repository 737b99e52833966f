"""The one-shot main job: collect -> train -> export -> evaluate -> (install), with a run report.

Layout under ``--output-dir``: ``data/train``, ``data/val`` (shards), ``train/`` (training outputs), ``export/``
(modeld-named artifacts, unless ``--export-dir``), ``evaluation.json`` and ``REPORT.md``. Every stage reuses what
exists when skipped or re-run (complete shards are skipped, training resumes from its last checkpoint).
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from ..collector.carla_backend import launcher
from ..collector.collect import collect, schedule_episodes
from ..driving.drive_report import write_drive_report
from ..driving.road_tests import driver_spec, run_road_tests, summary_line, write_drive_json
from ..driving.suites import suite_names
from ..episodes.shards import find_shards
from ..errors import ConfigError
from ..evaluation.open_loop import evaluate_exported, verdicts
from ..export.artifacts import ArtifactPaths
from ..export.exporter import export_models, format_summary
from ..fileio import atomic_write_text
from ..integration.installer import install
from ..integration.target import files_in_dir, resolve_target
from ..integration.validate import validate_files
from ..training import checkpoint as ckpt_io
from ..training.checkpoint import latest_checkpoint
from ..training.config import load_config, path_override, settings_from_cfg
from ..training.trainer import run_training
from .collect_choices import VAL_SEED_OFFSET, resolve_simulator
from .collect_cmd import carla_options
from .pipeline_report import StageLog, write_report

PRESETS: dict[str, dict[str, Any]] = {
    # Sized for a 2-core CPU: the whole pipeline in well under 15 minutes.
    "quick": {"train_episodes": 8, "val_episodes": 2, "episode_seconds": 30.0, "workers": 2,
              "overrides": ["model=tiny", "training.vision_epochs=4", "training.policy_epochs=6",
                            "training.batch_size=16", "training.lr=1e-3", "training.warmup_steps=50",
                            "diffusion.steps=10", "diffusion.export_samples=8"],
              # closed loop: the first 4 runs of each suite, cut to 30 s, on 2 processes; one video per suite
              "drive": {"runs": 4, "seconds": 30.0, "workers": 2, "videos": 1}},
    # For a GPU workstation: hours, the base models.
    "full": {"train_episodes": 200, "val_episodes": 20, "episode_seconds": 60.0, "workers": 4,
             "overrides": ["model=base", "training.vision_epochs=20", "training.policy_epochs=20",
                           "training.batch_size=64", "training.num_workers=4", "training.lr=3e-4",
                           "training.precision=bf16", "training.warmup_steps=500"],
             "drive": {"runs": None, "seconds": None, "workers": 4, "videos": 2}},
}


def _workers(args, simulator: str, preset: dict) -> int:
    if args.workers:
        return args.workers
    return 1 if simulator == "carla" else preset["workers"]  # CARLA: one server per worker


class CarlaServers:
    """Servers for the collect stage: the launcher starts those that do not answer (and leaves the others alone);
    the ones it started are stopped afterwards unless kept."""

    def __init__(self, options, carla_root: str | None, keep_running: bool):
        self.options, self.carla_root, self.keep_running, self.started = options, carla_root, keep_running, []

    def __enter__(self) -> CarlaServers:

        o = self.options
        lines, self.started = launcher.start(self.carla_root, o.host, o.base_port, o.workers)
        print("\n".join(lines))
        return self

    def __exit__(self, *exc) -> None:
        if self.started and not self.keep_running:

            for port in self.started:
                print("\n".join(launcher.stop(port)))
        elif self.started:
            print(f"--keep-carla-running: CARLA stays up on port(s) {self.started}; stop it with `sptrain carla stop`")


def _collect(args, simulator: str, data: Path, preset: dict) -> dict[str, Any]:


    seconds = args.episode_seconds or preset["episode_seconds"]
    workers = _workers(args, simulator, preset)
    carla = carla_options(args, workers, prefix="carla-") if simulator == "carla" else None
    stats = {}
    with CarlaServers(carla, args.carla_root, args.keep_carla_running) if carla else nullcontext():
        for split, episodes, seed in (("train", args.train_episodes, args.seed),
                                      ("val", args.val_episodes, args.seed + VAL_SEED_OFFSET)):
            specs = schedule_episodes(simulator, args.scenario, episodes, data / split, seed, seconds)
            summary = collect(specs, workers=workers, progress=not args.no_progress, options=carla)
            print(summary.format())
            summary.raise_for_failures()
            stats[split] = {"episodes": episodes, "seed": seed, "written": len(summary.written),
                            "skipped": len(summary.skipped), "frames": summary.frames,
                            "wall_s": summary.wall_s}
    return stats


def _train(args, data: Path, train_dir: Path, overrides: list[str]) -> dict[str, Any]:

    base = [path_override("dataset.train_path", data / "train"), path_override("dataset.val_path", data / "val"),
            path_override("output_dir", train_dir),
            f"training.seed={args.seed}"]
    last = ckpt_io.latest_checkpoint(train_dir)
    if last is not None:  # a re-run continues (or finds the run complete)
        base += ["training.resume=true", f"checkpoint={last}"]
        print(f"resuming training from {last}")
    result = run_training(load_config(base + overrides), progress=not args.no_progress)
    return {"checkpoint": result["checkpoint"], "run_id": result["run_id"], "timings_s": result["timings_s"],
            "overrides": base + overrides}


def _export(checkpoint: str, export_dir: Path) -> dict[str, Any]:

    export_dir.mkdir(parents=True, exist_ok=True)
    targets = {name: ArtifactPaths.in_dir(export_dir, name) for name in ("driving_vision", "driving_policy")}
    report = export_models(checkpoint, targets, device="CPU", log=print)
    print(format_summary(report))
    return report


def _install(args, export_dir: Path) -> dict[str, Any]:

    target = resolve_target(args.sunnypilot_root, args.models_dir)
    result = install(target, validate_files(files_in_dir(export_dir)), dry_run=False)
    return {"target": str(target.models_dir), "backup": result.get("backup")}


def _evaluate(export_dir: Path, data: Path, progress: bool) -> dict[str, Any]:

    metrics = evaluate_exported(export_dir, find_shards(data / "val"), progress=progress)
    return {"metrics": metrics, "verdicts": verdicts(metrics)}


def _drive(export_dir: Path, out: Path, preset: dict, seed: int, progress: bool) -> dict[str, Any]:
    """The closed-loop road tests of the exported models (the preset's share of every suite)."""
    d = preset["drive"]
    spec = driver_spec(str(export_dir), None)
    report = run_road_tests(spec, suite_names(), d["runs"], seed, d["workers"], progress, d["seconds"])
    drive_dir = out / "drive"
    drive_dir.mkdir(parents=True, exist_ok=True)
    write_drive_json(report, drive_dir)
    files = write_drive_report(report, spec, drive_dir, d["videos"])
    print(summary_line(report))
    return {"report": report, "files": files, "summary": summary_line(report)}


def _validate(args) -> None:
    if args.install and not (args.sunnypilot_root or args.models_dir):
        raise ConfigError("--install needs --sunnypilot-root DIR or --models-dir DIR")
    if (args.sunnypilot_root or args.models_dir) and not args.install:
        raise ConfigError("--sunnypilot-root/--models-dir only make sense with --install")
    if args.install and args.skip_export:
        raise ConfigError("--install needs the export stage; drop --skip-export")
    for name in ("train_episodes", "val_episodes", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} {value}: expected at least 1")


def run_pipeline(args) -> int:
    _validate(args)
    preset = PRESETS[args.preset]
    args.train_episodes = args.train_episodes or preset["train_episodes"]
    args.val_episodes = args.val_episodes or preset["val_episodes"]
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data, train_dir = out / "data", out / "train"
    export_dir = Path(args.export_dir).resolve() if args.export_dir else out / "export"
    overrides = preset["overrides"] + list(args.overrides)
    log, info = StageLog(), {}
    simulator, note = resolve_simulator(args)
    if note:
        print(f"NOTE: {note}", file=sys.stderr)
        log.notes.append(note)
    info["simulator"] = simulator

    info["profile"] = settings_from_cfg(load_config(overrides)).contract.profile
    if not args.skip_collect and not args.checkpoint:
        info["collect"] = log.run("collect", _collect, args, simulator, data, preset)
    checkpoint = args.checkpoint
    if checkpoint is None and not args.skip_train:
        info["train"] = log.run("train", _train, args, data, train_dir, overrides)
        checkpoint = info["train"]["checkpoint"]
        info["plots"] = sorted(str(p) for p in (train_dir / "plots").glob("*.png"))
    if checkpoint is None:

        last = latest_checkpoint(train_dir)
        if last is None:
            raise ConfigError(f"no checkpoint: {train_dir}/checkpoints is empty; run without --skip-train or pass "
                              f"--checkpoint PATH")
        checkpoint = str(last)
    info["checkpoint"] = checkpoint
    if not args.skip_export:
        info["export"] = log.run("export", _export, checkpoint, export_dir)
        info["profile"] = info["export"]["profile"]  # the checkpoint's own profile
        info["evaluation"] = log.run("evaluate", _evaluate, export_dir, data, not args.no_progress)
        atomic_write_text(out / "evaluation.json", json.dumps(info["evaluation"], indent=2))
        if not args.skip_drive:
            info["drive"] = log.run("drive", _drive, export_dir, out, preset, args.seed, not args.no_progress)
    if args.install:
        info["install"] = log.run("install", _install, args, export_dir)
    report = write_report(out, args, log, info, getattr(args, "argv", sys.argv[1:]))
    print(f"\nreport: {report}")
    if "evaluation" in info:
        for name, ok in info["evaluation"]["verdicts"].items():
            print(f"  {name}: {'yes' if ok else 'NO'}")
    if "drive" in info:
        print(f"  closed loop: {info['drive']['summary']}")
    return 0
