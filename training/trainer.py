"""A training run end to end: settings -> device -> models -> (1) vision -> (2) feature cache -> (3) policy -> report.

(1) the vision model on the vision episodes; (2) the EMA vision model's ``hidden_state`` for every frame of the
policy and validation episodes (the feature cache); (3) the policy on ``features_buffer`` windows from that cache,
as the runtime uses the models. ``training.policy_split`` keeps the two apart (``data.split_for_stacking``): the
policy learns from features of episodes the vision model never trained on, as it will get them on new roads. The
last epoch of each stage calibrates its model's stds on the validation episodes (``calibration.py``). One checkpoint per
epoch (``<output_dir>/checkpoints/epoch_XXXX.pt``, epochs counted across both stages), written atomically by rank 0
and carrying the ``model_args`` that rebuild both models; ``training.resume=true checkpoint=PATH`` continues exactly
where that checkpoint stopped. Shared by ``python training/train.py`` (Hydra) and ``sptrain train`` (the Hydra
compose API): both hand a composed config to :func:`run_training`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from ..contract.inputs import LATERAL_DELAY_S
from ..contract.profiles import get_profile
from ..episodes.schema import VISION_TARGET_KEYS
from ..errors import ConfigError
from ..fileio import atomic_write_text
from . import checkpoint as ckpt_io
from . import features as feature_cache
from . import report
from .calibration import calibrate_policy, calibrate_vision
from .config import LANE_PRIOR_HEAD_OF, Settings, settings_from_cfg, settings_to_dict
from .data import PolicyDataset, ShardSet, VisionDataset, fed_back_curvatures, resolve_shards, split_for_stacking
from .device import Runtime, broadcast_object, seed_everything, setup_runtime, teardown
from .diffusion import DiffusionConfig
from .epoch_loop import StageTrainer
from .models import count_parameters
from .models.policy import PolicyModel
from .models.vision import VisionModel, lane_channel_index, lead_channel_index
from .optim import Ema
from .validation import best_epoch, policy_metrics, selection_scores, vision_metrics

STAGES = ("vision", "policy")


@dataclass
class RunState:
    run_id: str
    stage: str = "vision"
    epoch: int = 0  # last completed epoch, counted across stages
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Models:
    vision: VisionModel
    policy: PolicyModel
    vision_ema: Ema
    policy_ema: Ema

    @property
    def model_args(self) -> dict[str, dict[str, Any]]:
        """What rebuilds both models (``training.models.build_models``): stored in every checkpoint."""
        return {"vision": self.vision.model_args, "policy": self.policy.model_args}


def make_models(s: Settings, runtime: Runtime) -> Models:
    d = s.diffusion
    diffusion = DiffusionConfig(train_timesteps=d.train_timesteps, steps=d.steps, schedule=d.schedule,
                                prediction=d.prediction, export_samples=d.export_samples, seed=d.seed,
                                clip_x0=d.clip_x0, std_floor=d.std_floor)
    profile = s.contract.profile
    vision_size = {"preset": s.model.vision_size, "coord_channels": s.vision.coord_channels}
    vision = VisionModel(profile, vision_size, s.vision.heads, diffusion, s.model.shared_backbone,
                         s.vision.loss_weights, s.vision.motion_volume, motion_grid=s.vision.motion_grid,
                         speed_channel=s.vision.speed_channel, speed_reading=s.vision.speed_reading,
                         near_line_weight=s.vision.near_line_weight, lane_channel=s.vision.lane_channel,
                         lane_readout=s.vision.lane_readout, lead_channel=s.vision.lead_channel)
    given_speed = any(i.name == "lateral_control_params" for i in get_profile(profile).policy.inputs)
    policy = PolicyModel(profile, s.model.policy_size, diffusion, head=s.policy.head,
                         feature_dropout=s.policy.feature_dropout, feature_noise=s.policy.feature_noise,
                         speed_prior=s.policy.speed_prior and given_speed,
                         curvature_prior=s.policy.curvature_prior and given_speed,
                         lane_prior_index=lane_channel_index(s.vision.speed_channel)
                         if s.policy.lane_prior != "none" and given_speed else None,
                         lane_prior_head=LANE_PRIOR_HEAD_OF.get(s.policy.lane_prior, "never"),
                         long_action_weight=s.policy.long_action_weight,
                         curve_speed_mps2=s.policy.curve_speed if given_speed else 0.0,
                         lead_prior_index=lead_channel_index(s.vision.speed_channel, s.vision.lane_channel)
                         if s.policy.follow_gap > 0 and given_speed else None,
                         follow_gap_s=s.policy.follow_gap if given_speed else 0.0)
    vision.to(runtime.device)
    policy.to(runtime.device)
    decay = s.training.ema_decay
    return Models(vision, policy, Ema(vision, decay), Ema(policy, decay))


def run_epochs(trainer: StageTrainer, epochs: range, val_set, metrics_fn, state: RunState, progress: bool, save,
               log, feature_key: str | None, calibrate_fn=None, restore_fn=None) -> dict[str, Any]:
    """Train ``epochs`` of one stage; after each: validate the EMA model (rank 0), log, checkpoint. After the
    stage's last epoch (rank 0): with ``restore_fn`` (training.select_epoch=best) the EMA weights of the stage's epoch
    with the best validation score (``validation.best_epoch``, over every epoch of the stage, resumed ones too) come
    back from that epoch's checkpoint; then ``calibrate_fn`` sets the std calibration on the validation set and the
    model is validated again, so the checkpoint that ends a stage holds the selected, calibrated model and its
    record says which epoch it is (``selected_epoch``)."""
    record: dict[str, Any] = {}
    for epoch in epochs:
        losses, state.step = trainer.run_epoch(epoch, state.step, progress)
        record = {"stage": trainer.name, "epoch": epoch, **losses}
        if trainer.rt.is_main:
            record.update({f"val_{k}": v for k, v in metrics_fn(trainer.ema.model, val_set, trainer.rt.device).items()})
            if epoch == epochs[-1]:
                final = _end_of_stage(trainer, val_set, metrics_fn, state.history + [record], calibrate_fn, restore_fn)
                record.update(final)
        state.epoch, state.stage = epoch, trainer.name
        record["step"] = state.step
        state.history.append(record)
        log(record)
        save(trainer, feature_key)
    return record


def _end_of_stage(trainer: StageTrainer, val_set, metrics_fn, history: list[dict], calibrate_fn,
                  restore_fn) -> dict[str, Any]:
    """Select (``restore_fn``), calibrate and re-validate the EMA model that ends a stage; the record's additions."""
    out: dict[str, Any] = {}
    changed = False
    if restore_fn is not None:
        scores = selection_scores(history, trainer.name)
        out["selection_scores"] = {str(epoch): score for epoch, score in scores.items()}
        last, chosen = history[-1]["epoch"], best_epoch(scores)
        changed = chosen is not None and chosen != last and restore_fn(chosen)
        out["selected_epoch"] = chosen if changed else last
    if calibrate_fn is not None and len(val_set):
        out["calibration"] = calibrate_fn(trainer.ema.model, val_set, trainer.rt.device)
        changed = True
    if changed:
        out.update({f"val_{k}": v for k, v in metrics_fn(trainer.ema.model, val_set, trainer.rt.device).items()})
    return out


def _labels_of(shards: ShardSet, key: str) -> np.ndarray:
    return np.concatenate([lab[key][lab["valid"]] for lab in shards.labels])


def fit_normalizers(models: Models, shards: ShardSet) -> None:
    """Normalisers from the training labels (valid frames), before any training."""
    models.vision.fit_normalizers({k: _labels_of(shards, k) for k in VISION_TARGET_KEYS})
    lat = fed_back = None
    if "lateral_control_params" in models.policy.input_names:
        speed = _labels_of(shards, "ego_speed")
        lat = np.stack([speed, np.full_like(speed, LATERAL_DELAY_S)], axis=1)
    if "prev_desired_curv" in models.policy.input_names:
        fed_back = np.concatenate([fed_back_curvatures(lab)[lab["valid"]] for lab in shards.labels])
    models.policy.fit_normalizers(_labels_of(shards, "plan"), lat, fed_back)
    models.vision_ema.model.load_state_dict(models.vision.state_dict())
    models.policy_ema.model.load_state_dict(models.policy.state_dict())


def checkpoint_dict(models: Models, state: RunState, stage: StageTrainer | None, config: dict, profile: str,
                    feature_key: str | None) -> dict[str, Any]:
    return {
        "format_version": ckpt_io.FORMAT_VERSION, "model_args": models.model_args,
        "run_id": state.run_id, "stage": state.stage, "epoch": state.epoch, "step": state.step,
        "vision": models.vision.state_dict(), "policy": models.policy.state_dict(),
        "vision_ema": models.vision_ema.state_dict(), "policy_ema": models.policy_ema.state_dict(),
        "trainer": stage.state_dict() if stage is not None else None,
        "rng": ckpt_io.capture_rng(), "config": config, "profile": profile,
        "feature_cache_key": feature_key, "history": json.loads(json.dumps(state.history)),
    }


def _check_same_models(ckpt: dict[str, Any], config: dict[str, Any], path: str) -> None:
    """Resuming needs the architecture the checkpoint was trained with; ConfigError names what differs."""
    keys = {"model": None, "vision": None, "diffusion": ("train_timesteps", "schedule", "prediction")}
    for section, only in keys.items():
        old, new = ckpt["config"].get(section, {}), config.get(section, {})
        differ = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v and (only is None or k in only)}
        if differ:
            found = ", ".join(f"{section}.{k}={n!r} (the checkpoint has {o!r})" for k, (o, n) in differ.items())
            raise ConfigError(f"checkpoint {path} cannot be continued with {found}; use the checkpoint's settings "
                              f"or start a new output_dir")


def restore(models: Models, ckpt: dict[str, Any], profile: str, resume: bool) -> RunState:
    if ckpt["profile"] != profile:
        raise ConfigError(f"checkpoint was trained for contract.profile={ckpt['profile']}, the config asks for "
                          f"{profile}; set contract.profile={ckpt['profile']}")
    ckpt_io.load_weights(models.vision, ckpt["vision"])
    ckpt_io.load_weights(models.policy, ckpt["policy"])
    ckpt_io.load_weights(models.vision_ema.model, ckpt["vision_ema"])
    ckpt_io.load_weights(models.policy_ema.model, ckpt["policy_ema"])
    if not resume:  # start a new run from these weights
        return RunState(run_id=uuid.uuid4().hex[:8])
    return RunState(run_id=ckpt["run_id"], stage=ckpt["stage"], epoch=int(ckpt["epoch"]), step=int(ckpt["step"]),
                    history=list(ckpt.get("history") or []))


def trim_metrics(path: Path, last_epoch: int) -> None:
    """Drop metrics rows of epochs after ``last_epoch`` (a resume from an older checkpoint redoes them)."""
    if path.exists():
        rows = [line for line in path.read_text().splitlines() if line.strip()]
        atomic_write_text(path, "".join(line + "\n" for line in rows if json.loads(line)["epoch"] <= last_epoch))


def log_epoch(record: dict[str, Any], output_dir: Path, writer, runtime: Runtime) -> None:
    if not runtime.is_main:
        return
    with open(output_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    if writer is not None:
        for k, v in record.items():
            if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                writer.add_scalar(f"{record['stage']}/{k}", v, record["epoch"])
        writer.flush()


def run_stages(s: Settings, models: Models, state: RunState, runtime: Runtime, ckpt: dict | None, config: dict,
               progress: bool = True) -> dict[str, Any]:
    """Train what remains of the vision and policy stages; returns timings and the final metrics."""
    out = Path(s.output_dir)
    profile = s.contract.profile
    on_corrupt, cache = s.dataset.on_corrupt, s.dataset.cache_gb
    train_paths = resolve_shards(s.dataset.train_path, "dataset.train_path")
    train_shards = ShardSet(train_paths, on_corrupt)  # labels only (normalisers)
    val_shards = ShardSet(resolve_shards(s.dataset.val_path, "dataset.val_path"), on_corrupt, cache)
    vision_paths, policy_paths = split_for_stacking(train_shards.paths, s.training.policy_split)
    vision_shards = ShardSet(vision_paths, on_corrupt, cache)
    policy_shards = train_shards if len(policy_paths) == len(train_shards) else ShardSet(policy_paths, on_corrupt)
    if ckpt is None:
        fit_normalizers(models, train_shards)
    v_epochs, p_epochs = s.training.vision_epochs, s.training.policy_epochs
    writer = _tensorboard(out, runtime)
    timings: dict[str, float] = {}
    last: dict[str, dict[str, float]] = {}
    resuming = ckpt is not None and bool(s.training.resume)
    resume_trainer = ckpt.get("trainer") if resuming else None
    if resuming:
        ckpt_io.restore_rng(ckpt["rng"])

    def save(stage: StageTrainer | None, key: str | None) -> None:
        if runtime.is_main:
            ckpt_io.save_atomic(checkpoint_dict(models, state, stage, config, profile, key),
                                ckpt_io.checkpoint_path(out, state.epoch))
        runtime.barrier()

    def restorer(ema: Ema, name: str):
        """training.select_epoch=best: loads the stage's EMA weights of an earlier epoch from its checkpoint."""
        def restore(epoch: int) -> bool:
            path = ckpt_io.checkpoint_path(out, epoch)
            if not path.is_file() and s.checkpoint and s.checkpoint != LATEST_CHECKPOINT:
                path = Path(s.checkpoint).parent / path.name  # a run resumed from another folder's checkpoint
            if not path.is_file():
                print(f"training.select_epoch=best: {path.name} (the best {name} epoch) is in neither "
                      f"{out / 'checkpoints'} nor beside checkpoint={s.checkpoint}; the {name} model of the "
                      f"stage's last epoch is kept")
                return False
            ckpt_io.load_weights(ema.model, ckpt_io.load_checkpoint(path)[f"{name}_ema"])
            print(f"training.select_epoch=best: the {name} model of epoch {epoch} (best on validation)")
            return True
        return restore if s.training.select_epoch == "best" else None

    # (1) vision
    start = time.perf_counter()
    if state.epoch < v_epochs:
        train_set = VisionDataset(vision_shards, augment=s.training.augment,
                                  every_frame=s.training.every_frame)
        trainer = StageTrainer("vision", models.vision, models.vision_ema, train_set, s.training, runtime, v_epochs)
        if resume_trainer is not None and state.stage == "vision":
            trainer.load_state_dict(resume_trainer)
        epochs = range(state.epoch + 1, v_epochs + 1)
        last["vision"] = run_epochs(trainer, epochs, VisionDataset(val_shards), vision_metrics, state, progress, save,
                                    lambda record: log_epoch(record, out, writer, runtime), None, calibrate_vision,
                                    restorer(models.vision_ema, "vision"))
    timings["vision"] = time.perf_counter() - start

    # (2) feature cache from the EMA vision model
    start = time.perf_counter()
    key = broadcast_object(ckpt_io.weights_hash(models.vision_ema.model), runtime)  # rank 0's weights
    directory = feature_cache.cache_dir(out, key)
    if runtime.is_main:
        for shards in (policy_shards, val_shards):
            feature_cache.load_or_compute(models.vision_ema.model, shards, directory, runtime.device,
                                          progress=progress)
    runtime.barrier()
    inputs = get_profile(profile).policy.input_shapes()
    train_feats = feature_cache.load_or_compute(models.vision_ema.model, policy_shards, directory, runtime.device,
                                                compute=False)
    val_feats = feature_cache.load_or_compute(models.vision_ema.model, val_shards, directory, runtime.device,
                                              compute=False)
    timings["features"] = time.perf_counter() - start

    # (3) policy
    start = time.perf_counter()
    if state.epoch < v_epochs + p_epochs:
        dataset = PolicyDataset(policy_shards, train_feats, inputs)
        trainer = StageTrainer("policy", models.policy, models.policy_ema, dataset, s.training, runtime, p_epochs)
        if resume_trainer is not None and state.stage == "policy":
            trainer.load_state_dict(resume_trainer)
        epochs = range(max(state.epoch, v_epochs) + 1, v_epochs + p_epochs + 1)
        last["policy"] = run_epochs(trainer, epochs, PolicyDataset(val_shards, val_feats, inputs), policy_metrics,
                                    state, progress, save, lambda record: log_epoch(record, out, writer, runtime), key,
                                    calibrate_policy, restorer(models.policy_ema, "policy"))
    timings["policy"] = time.perf_counter() - start
    if writer is not None:
        writer.close()
    return {"timings_s": timings, "last": last, "feature_cache": str(directory), "history": list(state.history),
            "train_shards": len(train_shards), "vision_shards": len(vision_shards),
            "policy_shards": len(policy_shards), "val_shards": len(val_shards)}


def _tensorboard(out: Path, runtime: Runtime):
    if not runtime.is_main:
        return None
    try:  # optional: tensorboard is a dependency, but a broken install only loses the scalars
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; a broken install only loses the scalars
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


LATEST_CHECKPOINT = "latest"  # checkpoint=latest: the newest checkpoint in <output_dir>/checkpoints


def start_run(s: Settings, runtime: Runtime, config: dict) -> tuple[Models, RunState, dict | None]:
    """Seed, build the models, and apply ``checkpoint`` (weights only, or everything with resume)."""
    seed_everything(s.training.seed)  # identical initial weights on every rank
    models = make_models(s, runtime)
    seed_everything(s.training.seed + runtime.rank)  # per-rank noise streams
    path = s.checkpoint
    if path == LATEST_CHECKPOINT:
        found = ckpt_io.latest_checkpoint(s.output_dir)
        if found is None:
            raise ConfigError(f"checkpoint=latest: no checkpoint in {Path(s.output_dir) / 'checkpoints'}; train "
                              f"without it first, or give checkpoint=PATH")
        path = str(found)
        print(f"checkpoint=latest: {path}")
    ckpt = ckpt_io.load_checkpoint(path) if path else None
    if ckpt is None:
        return models, RunState(run_id=uuid.uuid4().hex[:8]), None
    _check_same_models(ckpt, config, path)
    state = restore(models, ckpt, s.contract.profile, bool(s.training.resume))
    if s.training.resume and runtime.is_main:
        trim_metrics(Path(s.output_dir) / "metrics.jsonl", state.epoch)
    return models, state, ckpt


def run_training(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Train from a composed config (Hydra/OmegaConf or a plain dict); returns the result."""
    s: Settings = settings_from_cfg(cfg)
    runtime = setup_runtime(s.training.device, s.training.precision)
    try:
        out = Path(s.output_dir)
        config = settings_to_dict(s)
        if runtime.is_main:
            out.mkdir(parents=True, exist_ok=True)
            text = OmegaConf.to_yaml(OmegaConf.create(config))
            print("resolved config:\n" + text)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = "config.yaml" if not (out / "config.yaml").exists() else f"config_{stamp}.yaml"
            atomic_write_text(out / name, text)  # every start keeps its own resolved config
            print(f"device: {runtime.device} ({runtime.precision}); world size {runtime.world_size}"
                  + (f"; note: {runtime.note}" if runtime.note else ""))
        models, state, ckpt = start_run(s, runtime, config)
        if runtime.is_main:
            print(f"model preset {s.model.name}: vision {count_parameters(models.vision) / 1e6:.2f} M parameters, "
                  f"policy {count_parameters(models.policy) / 1e6:.2f} M parameters")
        result = run_stages(s, models, state, runtime, ckpt, config, progress=progress)
        last = ckpt_io.latest_checkpoint(out)
        if runtime.is_main:
            result["plots"] = [str(p) for p in report.final_plots(models.vision_ema.model, models.policy_ema.model,
                                                                  s.dataset, result, out)]
            print(report.format_summary(result, out, last))
        result.update({"run_id": state.run_id, "checkpoint": str(last) if last else None})
        return result
    finally:
        teardown(runtime)
