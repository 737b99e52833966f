"""The one-shot main job: collect -> train -> export -> evaluate -> drive -> (install), with a run report.

Layout under ``--output-dir``: ``data/<split>`` (shards), ``train/`` (training outputs), ``export/`` (modeld-named
artifacts, unless ``--export-dir``; with ``--profile P`` of a 2026 runtime also that runtime's files and
``sptrain_export.json``, which the install stage routes by), ``evaluation.json``, ``drive/`` and ``REPORT.md``.
Every stage reuses what exists when skipped or re-run (complete shards are skipped, training resumes from its last
checkpoint).

Four splits, each with seeds of its own (``--seed`` plus an offset), over the preset's mix of scenarios (or the
``--scenario`` given): ``train``; ``val`` (validation during training and the std calibration); ``test`` (the
held-out episodes the report shows: never trained, validated or calibrated on); ``test_unseen_look`` (the test
episodes again, drawn with a look no training scenario uses: the appearance shift, built-in simulator only).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..collector.carla_backend import launcher
from ..collector.collect import collect, schedule_episodes
from ..collector.scenarios import UNSEEN_LOOK_SUFFIX, scenario_names
from ..contract.profiles import get_profile
from ..driving.drive_report import write_drive_report
from ..driving.on_policy import OnPolicyBackend
from ..driving.road_tests import driver_spec, run_road_tests, summary_line, write_drive_json
from ..driving.suites import suite_names
from ..episodes.shards import find_shards, open_shard
from ..errors import ConfigError
from ..evaluation.open_loop import evaluate_exported, verdicts
from ..export.artifacts import ArtifactPaths
from ..export.exporter import export_models, format_summary
from ..fileio import atomic_write_text
from ..training import checkpoint as ckpt_io
from ..training.checkpoint import latest_checkpoint
from ..training.config import load_config, path_override, paths_override, settings_from_cfg
from ..training.trainer import run_training
from .collect_choices import ON_POLICY_SEED_OFFSET, TEST_SEED_OFFSET, VAL_SEED_OFFSET, resolve_simulator
from .collect_cmd import carla_options
from .install_cmd import FILE_FLAGS
from .install_cmd import run as install_run
from .pipeline_report import StageLog, write_report

QUICK_SCENARIOS = ("highway_follow", "curvy_road", "urban_intersection", "lane_change")
PRESETS: dict[str, dict[str, Any]] = {
    # Sized for a 2-core CPU: the whole pipeline in about 20 minutes (docs/benchmarks.md). Episodes per scenario.
    # Many short episodes: each draws its own driver, camera mount and look (variety beats length); each records
    # its seconds and runs 10 s on unrendered, so every recorded frame has its plan label (the label tail).
    "quick": {"scenarios": QUICK_SCENARIOS, "train_episodes": 24, "val_episodes": 2, "test_episodes": 8,
              "unseen_look_episodes": 4, "episode_seconds": 10.0, "test_seconds": 10.0, "label_tail_seconds": 10.0,
              "workers": 2,
              "overrides": ["model=tiny", "training.vision_epochs=2", "training.policy_epochs=6",
                            "dataset.cache_gb=4",
                            "training.batch_size=16", "training.lr=1e-3", "training.warmup_steps=50",
                            "diffusion.steps=10", "diffusion.export_samples=8"],
              # closed loop: the first 4 runs of each suite, cut to 30 s, on 2 processes; one video per suite
              "drive": {"runs": 4, "seconds": 30.0, "workers": 2, "videos": 1}},
    # For a GPU workstation: hours, the base models, every scenario. The quick preset's short episodes (more drivers,
    # mounts and looks for the same rendering beat longer ones), eight times as many: 200 minutes of driving,
    # 240 000 frames, about 50 GB of shards (docs/benchmarks.md, "More episodes").
    "full": {"scenarios": None, "train_episodes": 200, "val_episodes": 8, "test_episodes": 16,
             "unseen_look_episodes": 8, "episode_seconds": 10.0, "test_seconds": 10.0, "label_tail_seconds": 10.0,
             "workers": 4,
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


def label_tail_seconds(args, preset: dict) -> float:
    """The label tail of every split: ``--label-tail-seconds``, else the preset's."""
    tail = args.label_tail_seconds
    return float(preset["label_tail_seconds"] if tail is None else tail)


def splits(args, preset: dict, simulator: str) -> list[tuple[str, list[str], int, int, float]]:
    """(split, scenarios, episodes per scenario, seed, seconds recorded) of every split the run collects (each
    episode also runs on for the label tail)."""
    seconds = args.episode_seconds or preset["episode_seconds"]
    test_seconds = args.episode_seconds or preset["test_seconds"]
    out = [("train", args.scenarios, args.train_episodes, args.seed, seconds),
           ("val", args.scenarios, args.val_episodes, args.seed + VAL_SEED_OFFSET, seconds),
           ("test", args.scenarios, args.test_episodes, args.seed + TEST_SEED_OFFSET, test_seconds)]
    if simulator == "builtin" and args.unseen_look_episodes:  # CARLA draws its own weather, not our looks
        out.append(("test_unseen_look", [s + UNSEEN_LOOK_SUFFIX for s in args.scenarios], args.unseen_look_episodes,
                    args.seed + TEST_SEED_OFFSET, test_seconds))
    return out


def _collect(args, simulator: str, data: Path, preset: dict) -> dict[str, Any]:
    workers = _workers(args, simulator, preset)
    carla = carla_options(args, workers, prefix="carla-") if simulator == "carla" else None
    stats, tail = {}, label_tail_seconds(args, preset)
    with CarlaServers(carla, args.carla_root, args.keep_carla_running) if carla else nullcontext():
        for split, scenarios, episodes, seed, seconds in splits(args, preset, simulator):
            specs = [spec for scenario in scenarios
                     for spec in schedule_episodes(simulator, scenario, episodes, data / split, seed, seconds, tail)]
            summary = collect(specs, workers=workers, progress=not args.no_progress, options=carla)
            print(summary.format())
            summary.raise_for_failures()
            stats[split] = {"episodes": len(specs), "scenarios": list(scenarios), "seed": seed, "seconds": seconds,
                            "label_tail_seconds": tail,
                            "written": len(summary.written), "skipped": len(summary.skipped),
                            "frames": summary.frames, "wall_s": summary.wall_s}
    return stats


def _train(args, data: Path, train_dir: Path, overrides: list[str], rounds: int = 0) -> dict[str, Any]:
    """Train on ``data/train`` and, after ``rounds`` on-policy rounds, on their episodes too."""
    train = [data / "train"] + [data / on_policy_split(k) for k in range(1, rounds + 1)]
    base = [paths_override("dataset.train_path", train), path_override("dataset.val_path", data / "val"),
            path_override("output_dir", train_dir),
            f"training.seed={args.seed}"]
    last = ckpt_io.latest_checkpoint(train_dir)
    if last is not None:  # a re-run continues (or finds the run complete)
        base += ["training.resume=true", f"checkpoint={last}"]
        print(f"resuming training from {last}")
    result = run_training(load_config(base + overrides), progress=not args.no_progress)
    return {"checkpoint": result["checkpoint"], "run_id": result["run_id"], "timings_s": result["timings_s"],
            "overrides": base + overrides}


def _export(checkpoint: str, export_dir: Path, profile: str | None = None) -> dict[str, Any]:
    """``sptrain export CHECKPOINT --out-dir EXPORT_DIR [--profile P]``: the split set, and for a 2026 profile the
    runtime's files and ``sptrain_export.json`` beside it (what the install stage routes by)."""
    export_dir.mkdir(parents=True, exist_ok=True)
    targets = {name: ArtifactPaths.in_dir(export_dir, name) for name in ("driving_vision", "driving_policy")}
    report = export_models(checkpoint, targets, device="CPU", expect_profile=profile, log=print)
    print(format_summary(report))
    return report


def _install(args, export_dir: Path) -> dict[str, Any]:
    """``sptrain install --from-dir EXPORT_DIR``: the checkout's runtime is detected, a mismatch refused, and the
    files go where that runtime reads them (cli/install_cmd.py): an export of a 2026 profile (its
    ``sptrain_export.json``) through the runtime install and the release's harness, a split export as modeld's six
    files."""
    root = Path(args.sunnypilot_root) if args.sunnypilot_root else None
    models = Path(args.models_dir) if args.models_dir else None
    install_args = argparse.Namespace(from_dir=export_dir, sunnypilot_root=root, models_dir=models, restore=False,
                                      dry_run=False, **{slot: None for slot in FILE_FLAGS})
    install_run(install_args)
    return {"from": str(export_dir), "sunnypilot_root": str(root) if root else None,
            "models_dir": str(models) if models else None}


def _evaluate(export_dir: Path, data: Path, progress: bool) -> dict[str, Any]:
    """The exported models on the held-out test episodes (and, where collected, on them in the unseen look)."""
    out = {}
    for split in ("test", "test_unseen_look"):
        if (data / split).is_dir() and find_shards([data / split]):
            out[split] = evaluate_exported(export_dir, find_shards([data / split]), progress=progress)
    if "test" not in out:
        raise ConfigError(f"no test episodes in {data / 'test'}; run the collect stage (without --skip-collect)")
    out["verdicts"] = verdicts(out["test"]["summary"])
    return out


def _drive(export_dir: Path, out: Path, preset: dict, seed: int, progress: bool,
           name: str = "drive") -> dict[str, Any]:
    """The closed-loop road tests of the exported models (the preset's share of every suite), in ``out/name``."""
    d = preset["drive"]
    spec = driver_spec(str(export_dir), None)
    report = run_road_tests(spec, suite_names(), d["runs"], seed, d["workers"], progress, d["seconds"])
    drive_dir = out / name
    drive_dir.mkdir(parents=True, exist_ok=True)
    write_drive_json(report, drive_dir)
    files = write_drive_report(report, spec, drive_dir, d["videos"])
    print(summary_line(report))
    return {"report": report, "files": files, "summary": summary_line(report)}


def on_policy_split(k: int) -> str:
    return f"train_on_policy_{k}"


def _collect_on_policy(args, k: int, data: Path, export_dir: Path, preset: dict) -> dict[str, Any]:
    """Round ``k``'s episodes: the exported models drive new roads, the expert labels every frame and takes over
    when the car strays (driving/on_policy.py); as many episodes per scenario as the expert's training set, each as
    long as an expert episode runs with its label tail (the model needs every frame to drive, so all are recorded)."""
    seed = args.seed + k * ON_POLICY_SEED_OFFSET
    seconds = (args.episode_seconds or preset["episode_seconds"]) + label_tail_seconds(args, preset)
    split = data / on_policy_split(k)
    specs = [spec for scenario in args.scenarios
             for spec in schedule_episodes("builtin", scenario, args.train_episodes, split, seed, seconds)]
    summary = collect(specs, workers=_workers(args, "builtin", preset), progress=not args.no_progress,
                      backend=OnPolicyBackend(str(export_dir)))
    print(summary.format())
    summary.raise_for_failures()
    shares = [float(open_shard(p).attrs.get("expert_share", 0.0)) for p in find_shards([split])]
    return {"episodes": len(specs), "seed": seed, "seconds": seconds, "frames": summary.frames,
            "expert_share": float(np.mean(shares)) if shares else None}


def _on_policy_rounds(args, log: StageLog, info: dict, data: Path, out: Path, export_dir: Path, overrides: list[str],
                      preset: dict) -> list[dict[str, Any]]:
    """DAgger-style rounds after the first export: collect with the latest models, train again on everything,
    export, evaluate and drive; each round in its own folders (train_round_k, export_round_k, drive_round_k)."""
    rounds, driver = [], export_dir
    for k in range(1, args.on_policy_rounds + 1):
        r: dict[str, Any] = {"round": k, "driver": str(driver)}
        r["collect"] = log.run(f"on-policy {k}: collect", _collect_on_policy, args, k, data, driver, preset)
        trained = log.run(f"on-policy {k}: train", _train, args, data, out / f"train_round_{k}", overrides, k)
        r["checkpoint"] = trained["checkpoint"]
        driver = out / f"export_round_{k}"
        log.run(f"on-policy {k}: export", _export, trained["checkpoint"], driver, args.profile)
        r["export_dir"] = str(driver)
        r["evaluation"] = log.run(f"on-policy {k}: evaluate", _evaluate, driver, data, not args.no_progress)
        if not args.skip_drive:
            r["drive"] = log.run(f"on-policy {k}: drive", _drive, driver, out, preset, args.seed,
                                 not args.no_progress, f"drive_round_{k}")
        rounds.append(r)
    return rounds


def training_overrides(profile_id: str | None, overrides: list[str]) -> list[str]:
    """``overrides`` with the training profile whose networks ``--profile`` packages.

    The 2026 profiles package op-0.10.1's networks (``trains_as``), so training keeps its configured profile when
    that trains the same networks and is set to ``trains_as`` otherwise (e.g. ``--profile op-0.10.0``); a
    ``contract.profile=`` override of other networks is refused."""
    if profile_id is None:
        return overrides
    wanted = get_profile(profile_id).trains_as
    configured = settings_from_cfg(load_config(overrides)).contract.profile
    if get_profile(configured).trains_as == wanted:
        return overrides
    if any(o.split("=", 1)[0].lstrip("+") == "contract.profile" for o in overrides):
        raise ConfigError(f"--profile {profile_id} packages the networks of {wanted}, but the override "
                          f"contract.profile={configured} trains those of {get_profile(configured).trains_as}; drop "
                          f"the override or set contract.profile={wanted}")
    return [*overrides, f"contract.profile={wanted}"]


def _validate(args) -> None:
    if args.install and not (args.sunnypilot_root or args.models_dir):
        raise ConfigError("--install needs --sunnypilot-root DIR or --models-dir DIR")
    if (args.sunnypilot_root or args.models_dir) and not args.install:
        raise ConfigError("--sunnypilot-root/--models-dir only make sense with --install")
    if args.install and args.skip_export:
        raise ConfigError("--install needs the export stage; drop --skip-export")
    for name in ("train_episodes", "val_episodes", "test_episodes", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} {value}: expected at least 1")
    if args.unseen_look_episodes is not None and args.unseen_look_episodes < 0:
        raise ConfigError(f"--unseen-look-episodes {args.unseen_look_episodes}: expected 0 (none) or more")
    if args.label_tail_seconds is not None and args.label_tail_seconds < 0:
        raise ConfigError(f"--label-tail-seconds {args.label_tail_seconds:g}: expected 0 or more")
    if args.on_policy_rounds < 0:
        raise ConfigError(f"--on-policy-rounds {args.on_policy_rounds}: expected 0 (none) or more")
    if args.on_policy_rounds and args.skip_export:
        raise ConfigError("--on-policy-rounds needs the export stage (the exported models drive); drop --skip-export")


def run_pipeline(args) -> int:
    _validate(args)
    preset = PRESETS[args.preset]
    for name in ("train_episodes", "val_episodes", "test_episodes"):
        setattr(args, name, getattr(args, name) or preset[name])
    if args.unseen_look_episodes is None:
        args.unseen_look_episodes = preset["unseen_look_episodes"]
    args.scenarios = list(args.scenario or preset["scenarios"] or scenario_names())
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data, train_dir = out / "data", out / "train"
    export_dir = Path(args.export_dir).resolve() if args.export_dir else out / "export"
    overrides = training_overrides(args.profile, preset["overrides"] + list(args.overrides))
    log, info = StageLog(), {}
    simulator, note = resolve_simulator(args)
    if note:
        print(f"NOTE: {note}", file=sys.stderr)
        log.notes.append(note)
    info["simulator"] = simulator

    info["profile"] = args.profile or settings_from_cfg(load_config(overrides)).contract.profile
    if not args.skip_collect and not args.checkpoint:
        info["collect"] = log.run("collect", _collect, args, simulator, data, preset)
    checkpoint = args.checkpoint
    if checkpoint is None and not args.skip_train:
        info["train"] = log.run("train", _train, args, data, train_dir, overrides)
        checkpoint = info["train"]["checkpoint"]
        info["plots"] = sorted(str(p) for p in (train_dir / "plots").glob("*.png"))
    if checkpoint is None:
        last = latest_checkpoint(train_dir)
        if last is None and not args.skip_export:  # --skip-train --skip-export with none: a collect-only run
            raise ConfigError(f"no checkpoint: {train_dir}/checkpoints is empty; run without --skip-train or pass "
                              f"--checkpoint PATH (or add --skip-export to only collect)")
        checkpoint = None if last is None else str(last)
    info["checkpoint"] = checkpoint
    if not args.skip_export:
        info["export"] = log.run("export", _export, checkpoint, export_dir, args.profile)
        info["profile"] = info["export"]["profile"]  # --profile, else the checkpoint's own
        info["evaluation"] = log.run("evaluate", _evaluate, export_dir, data, not args.no_progress)
        atomic_write_text(out / "evaluation.json", json.dumps(info["evaluation"], indent=2))
        if not args.skip_drive:
            info["drive"] = log.run("drive", _drive, export_dir, out, preset, args.seed, not args.no_progress)
        if args.on_policy_rounds:
            if simulator != "builtin":
                raise ConfigError(f"--on-policy-rounds: on-policy episodes need the built-in simulator (the expert "
                                  f"labels what the model's car sees); this run uses {simulator}")
            info["on_policy"] = _on_policy_rounds(args, log, info, data, out, export_dir, overrides, preset)
            atomic_write_text(out / "on_policy.json", json.dumps(info["on_policy"], indent=2, default=str))
    if args.install:
        info["install"] = log.run("install", _install, args, export_dir)
    report = write_report(out, args, log, info, getattr(args, "argv", sys.argv[1:]))
    print(f"\nreport: {report}")
    if "evaluation" in info:
        for name, ok in info["evaluation"]["verdicts"].items():
            print(f"  {name}: {'yes' if ok else 'no'}")
    if "drive" in info:
        print(f"  closed loop: {info['drive']['summary']}")
    return 0
