"""A checkpoint -> the EMA vision and policy models to export, rebuilt from the checkpoint's own ``model_args``.

The models are rebuilt by ``training.models.build_models`` from the arguments the checkpoint carries (neither the
trainer nor the config machinery is involved), then the EMA weights (``vision_ema`` / ``policy_ema``) are loaded
and the models put in eval mode. The ONNX ``model_checkpoint`` string is ``"<run_id>/<epoch>"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.profiles import POLICY_MODEL, VISION_MODEL, ModelSpec, Profile, get_profile, profile_ids
from ..errors import ConfigError, ContractError, ExportError
from ..training.checkpoint import load_checkpoint, load_weights, weights_hash
from ..training.models import build_models

EMA_KEYS = {VISION_MODEL: "vision_ema", POLICY_MODEL: "policy_ema"}


@dataclass
class ExportSource:
    """What an export needs from one checkpoint."""

    path: Path
    run_id: str
    epoch: int
    stage: str
    profile: Profile
    models: dict[str, Any]  # model name -> torch.nn.Module in eval mode (EMA weights)
    fitted: dict[str, bool]  # model name -> normalisers fitted (False: the model outputs normalised units)
    policy_trained: bool = False  # the policy stage ran on features of exactly these vision weights

    @property
    def model_checkpoint(self) -> str:
        return f"{self.run_id}/{self.epoch}"

    def spec(self, model_name: str) -> ModelSpec:
        return self.profile.model(model_name)


def _build(ckpt: dict, path: Path):
    try:
        return build_models(ckpt["model_args"])
    except (ConfigError, TypeError, ValueError, KeyError) as exc:
        raise ExportError(f"checkpoint {path}: its model_args cannot rebuild the models ({exc}); export a checkpoint "
                          f"written by this version of sunnypilot-training") from None


def _load_ema(model, state: Any, key: str, path: Path) -> None:
    if not isinstance(state, dict):
        raise ExportError(f"checkpoint {path}: {key!r} is {type(state).__name__}, expected a state dict; the "
                          f"checkpoint is incomplete - export a checkpoint written after an epoch finished")
    try:
        load_weights(model, state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"checkpoint {path}: the {key} weights do not fit the model its model_args describe "
                          f"({first}); the checkpoint's model_args and weights disagree") from None


def load_export_source(path: str | os.PathLike, expect_profile: str | None = None) -> ExportSource:
    """Load ``path`` (weights_only) and rebuild both EMA models on the CPU, in eval mode."""
    path = Path(path)
    try:
        ckpt = load_checkpoint(path)
    except ConfigError as exc:
        raise ExportError(str(exc)) from None
    profile_id = str(ckpt["profile"])
    try:
        trained = get_profile(profile_id)
        profile = trained if expect_profile is None else get_profile(expect_profile)
    except ContractError as exc:
        raise ExportError(f"checkpoint {path}: {exc}") from None
    if profile.trains_as != trained.trains_as:
        same = [pid for pid in profile_ids() if get_profile(pid).trains_as == trained.trains_as]
        raise ExportError(f"checkpoint {path} was trained for contract profile {profile_id} (the networks of "
                          f"{trained.trains_as}), --profile asks for {expect_profile} (the networks of "
                          f"{profile.trains_as}); a model exports only for the runtimes of the networks it was trained "
                          f"as - pass --profile with one of {same}")
    missing = [k for k in EMA_KEYS.values() if k not in ckpt]
    if missing:
        raise ExportError(f"checkpoint {path} lacks {missing}; export needs the EMA weights of both models")
    vision, policy = _build(ckpt, path)
    if {get_profile(vision.profile_id).trains_as, get_profile(policy.profile_id).trains_as} != {trained.trains_as}:
        raise ExportError(f"checkpoint {path}: profile {profile_id} but its models are built for "
                          f"{sorted({vision.profile_id, policy.profile_id})}; the checkpoint is inconsistent")
    models = {VISION_MODEL: vision, POLICY_MODEL: policy}
    for name, model in models.items():
        _load_ema(model, ckpt[EMA_KEYS[name]], EMA_KEYS[name], path)
        model.eval()
    vision_key = weights_hash(models[VISION_MODEL])  # the EMA vision weights, as the trainer keyed its feature cache
    policy_trained = ckpt["stage"] == "policy" and ckpt.get("feature_cache_key") == vision_key
    return ExportSource(path=path, run_id=str(ckpt["run_id"]), epoch=int(ckpt["epoch"]), stage=str(ckpt["stage"]),
                        profile=profile, models=models, policy_trained=policy_trained,
                        fitted={name: bool(m.normalizers_fitted) for name, m in models.items()})
