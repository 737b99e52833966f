"""The training configuration: Hydra/OmegaConf in, validated typed settings out.

``load_config(overrides)`` composes ``training/configs/default.yaml`` (the same files ``python training/train.py``
uses) and :func:`settings_from_cfg` turns the result into frozen dataclasses validated in ``__post_init__``;
errors name the key, the value and the fix. :class:`ReadRecorder` wraps settings and records every key the
code reads, which is how the tests prove that no key in the config is dead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..contract.profiles import PROFILES
from ..errors import ConfigError
from .diffusion import DiffusionConfig
from .models.motion import MotionGrid
from .models.vision import LANE_READOUTS, SPEED_READINGS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cuda", "cpu")
HEADS = ("diffusion", "mdn", "regression")
SIZES = ("tiny", "base")
SELECT_EPOCH = ("best", "last")
# policy.lane_prior -> when the pursuit adds the curvature head's learned change (PolicyModel's lane_prior_head)
LANE_PRIOR_HEAD_OF = {"pursuit": "never", "pursuit_and_head": "always",
                      "pursuit_and_head_in_lane_changes": "lane_change"}
LANE_PRIORS = ("none", *LANE_PRIOR_HEAD_OF)


def _check(cond: bool, key: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"{key}={value!r}: expected {expected}")


@dataclass(frozen=True)
class DatasetSettings:
    train_path: Any
    val_path: Any
    on_corrupt: str = "error"
    cache_gb: float = 0.0

    def __post_init__(self) -> None:
        _check(self.on_corrupt in ("error", "skip"), "dataset.on_corrupt", self.on_corrupt, "error or skip")
        _check(self.cache_gb >= 0, "dataset.cache_gb", self.cache_gb, "GB of decoded frames kept in memory (0: none)")


@dataclass(frozen=True)
class ContractSettings:
    profile: str = "op-0.10.1"

    def __post_init__(self) -> None:

        _check(self.profile in PROFILES, "contract.profile", self.profile, f"one of {list(PROFILES)}")


@dataclass(frozen=True)
class TrainingSettings:
    vision_epochs: int = 2
    policy_epochs: int = 2
    batch_size: int = 16
    num_workers: int = 0
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    ema_decay: float = 0.995
    precision: str = "fp32"
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    policy_split: float = 0.5
    augment: bool = True
    select_epoch: str = "best"
    every_frame: bool = False

    def __post_init__(self) -> None:
        _check(self.select_epoch in SELECT_EPOCH, "training.select_epoch", self.select_epoch,
               f"one of {list(SELECT_EPOCH)} (best: each stage ends with its epoch of the best validation score)")
        _check(0.0 <= self.policy_split < 1.0, "training.policy_split", self.policy_split,
               "a fraction in [0, 1) of the training episodes kept from the vision model for the policy (0: none)")
        for key in ("vision_epochs", "policy_epochs", "num_workers", "warmup_steps"):
            value = getattr(self, key)
            _check(isinstance(value, int) and value >= 0, f"training.{key}", value, "an integer >= 0")
        _check(self.batch_size >= 1, "training.batch_size", self.batch_size, "an integer >= 1")
        _check(self.lr > 0, "training.lr", self.lr, "a positive learning rate")
        _check(self.weight_decay >= 0, "training.weight_decay", self.weight_decay, ">= 0")
        _check(0.0 <= self.ema_decay < 1.0, "training.ema_decay", self.ema_decay, "in [0, 1)")
        _check(self.precision in PRECISIONS, "training.precision", self.precision, f"one of {list(PRECISIONS)}")
        _check(self.device in DEVICES, "training.device", self.device, f"one of {list(DEVICES)}")


COARSE_MOTION_GRID = {"row_stride": 2, "col_stride": 2, "shift_step": 2}  # the default motion grid (docs/models.md)


@dataclass(frozen=True)
class VisionSettings:
    heads: str = "diffusion"
    loss_weights: dict = field(default_factory=dict)  # loss part -> weight (default 1); the model checks the names
    motion_volume: bool = True  # the road camera's features also read a ground-plane motion volume
    speed_channel: bool = False  # the last hidden_state value is the motion branch's speed reading (needs the volume)
    speed_reading: str = "linear"  # how the branch reads the speed (SPEED_READINGS)
    motion_grid: dict | None = field(default_factory=lambda: dict(COARSE_MOTION_GRID))  # MotionGrid fields to change
    # (None: its defaults, the full grid)
    near_line_weight: float = 1.0  # the lane lines' loss weight at the car, fading with the distance ahead
    coord_channels: bool = False  # the backbone's stem also sees each pixel's column and row
    lane_channel: bool = False  # a readout (lane_readout) says the lane centre; hidden_state carries it
    lane_readout: str = "fused"  # what lane_channel's readout reads (LANE_READOUTS): the fused features (both cameras
    # and the motion branch; the bend reading follows the true one) or the road camera's alone (what older checkpoints
    # without the key rebuild)
    lead_channel: bool = False  # a readout of the fused features says the lead in the car's lane (its gap and speed
    # against the car's; loss part lead_gap); hidden_state carries it (policy.follow_gap)

    def __post_init__(self) -> None:
        _check(self.heads in HEADS, "vision.heads", self.heads, f"one of {list(HEADS)}")
        _check(self.speed_reading in SPEED_READINGS, "vision.speed_reading", self.speed_reading,
               f"one of {list(SPEED_READINGS)}")
        known = {f.name for f in fields(MotionGrid)}
        for name, value in (self.motion_grid or {}).items():
            _check(name in known and isinstance(value, (int, float)), f"vision.motion_grid.{name}", value,
                   f"a number for one of {sorted(known)}")
        _check(self.motion_volume or not self.speed_channel, "vision.speed_channel", self.speed_channel,
               "false unless vision.motion_volume is true (the reading comes from the motion volume)")
        for name, weight in self.loss_weights.items():
            _check(isinstance(weight, (int, float)) and weight >= 0, f"vision.loss_weights.{name}", weight,
                   "a number >= 0")
        _check(isinstance(self.coord_channels, bool), "vision.coord_channels", self.coord_channels, "true or false")
        _check(isinstance(self.lane_channel, bool), "vision.lane_channel", self.lane_channel, "true or false")
        _check(isinstance(self.lead_channel, bool), "vision.lead_channel", self.lead_channel, "true or false")
        _check(self.lane_readout in LANE_READOUTS, "vision.lane_readout", self.lane_readout,
               f"one of {list(LANE_READOUTS)}")
        _check(isinstance(self.near_line_weight, (int, float)) and self.near_line_weight >= 1.0,
               "vision.near_line_weight", self.near_line_weight, "a number >= 1 (1: every point of a line alike)")


@dataclass(frozen=True)
class PolicySettings:
    head: str = "diffusion"
    feature_dropout: float = 0.0
    feature_noise: float = 0.0
    speed_prior: bool = True
    curvature_prior: bool = False
    lane_prior: str = "none"  # op-0.10.0: desired_curvature = pure pursuit on the vision's lane reading (+ the head)
    long_action_weight: float = 0.0  # loss weight of the acceleration the controls take from the plan's mean
    curve_speed: float = 0.0  # m/s^2: the speed prior slows for the bend the lane reading shows at this (0: off)
    follow_gap: float = 0.0  # s: the speed prior brakes for the lead the lead reading shows, to this time gap (0: off)

    def __post_init__(self) -> None:
        _check(self.head in HEADS, "policy.head", self.head, f"one of {list(HEADS)}")
        _check(isinstance(self.speed_prior, bool), "policy.speed_prior", self.speed_prior, "true or false")
        _check(self.lane_prior in LANE_PRIORS, "policy.lane_prior", self.lane_prior, f"one of {list(LANE_PRIORS)}")
        _check(isinstance(self.curvature_prior, bool), "policy.curvature_prior", self.curvature_prior,
               "true or false")
        _check(0.0 <= self.feature_dropout < 1.0, "policy.feature_dropout", self.feature_dropout,
               "a probability in [0, 1) of zeroing one feature of the features_buffer in training")
        _check(isinstance(self.long_action_weight, (int, float)) and self.long_action_weight >= 0.0,
               "policy.long_action_weight", self.long_action_weight,
               "a weight >= 0 of the error of the plan's longitudinal action (0: not trained for)")
        _check(isinstance(self.curve_speed, (int, float)) and self.curve_speed >= 0.0, "policy.curve_speed",
               self.curve_speed, "a lateral acceleration >= 0 in m/s^2 (0: no curve speed prior), e.g. 2.0")
        _check(isinstance(self.follow_gap, (int, float)) and self.follow_gap >= 0.0, "policy.follow_gap",
               self.follow_gap, "a time gap >= 0 in s (0: no follow prior), e.g. 1.5")
        _check(self.feature_noise >= 0.0, "policy.feature_noise", self.feature_noise,
               "a standard deviation >= 0 of the noise added to the features_buffer in training")


@dataclass(frozen=True)
class ModelSettings:
    name: str = "tiny"
    vision_size: str = "tiny"
    policy_size: str = "tiny"
    shared_backbone: bool = True

    def __post_init__(self) -> None:
        _check(self.vision_size in SIZES, "model.vision_size", self.vision_size, f"one of {list(SIZES)}")
        _check(self.policy_size in SIZES, "model.policy_size", self.policy_size, f"one of {list(SIZES)}")


@dataclass(frozen=True)
class Settings:
    dataset: DatasetSettings
    output_dir: str
    checkpoint: str | None
    contract: ContractSettings
    training: TrainingSettings
    diffusion: DiffusionConfig
    vision: VisionSettings
    policy: PolicySettings
    model: ModelSettings

    def __post_init__(self) -> None:
        if self.training.resume and not self.checkpoint:
            raise ConfigError("training.resume=true needs checkpoint=PATH (the checkpoint to continue)")
        if self.policy.lane_prior != "none" and not self.vision.lane_channel:
            raise ConfigError(f"policy.lane_prior={self.policy.lane_prior} needs vision.lane_channel=true (the pursuit "
                              "steers by the vision model's own lane-centre reading, which hidden_state carries only "
                              "with it); set both, or policy.lane_prior=none")
        if self.policy.curve_speed > 0 and self.policy.lane_prior == "none":
            raise ConfigError(f"policy.curve_speed={self.policy.curve_speed:g} needs policy.lane_prior (and "
                              "vision.lane_channel=true): the curve speed prior reads the bend ahead from the lane "
                              "reading the pursuit uses; set policy.lane_prior=pursuit, or policy.curve_speed=0")

        if self.policy.follow_gap > 0 and not (self.vision.lead_channel and self.policy.speed_prior
                                               and not self.policy.curvature_prior):
            raise ConfigError(f"policy.follow_gap={self.policy.follow_gap:g} needs vision.lead_channel=true and "
                              "policy.speed_prior=true (with policy.curvature_prior=false): the follow prior brakes "
                              "the speed prior for the lead the vision model's lead reading shows; set those, or "
                              "policy.follow_gap=0")


_SECTIONS = {"dataset": DatasetSettings, "contract": ContractSettings, "training": TrainingSettings,
             "diffusion": DiffusionConfig, "vision": VisionSettings, "policy": PolicySettings, "model": ModelSettings}


def _section(name: str, cls: type, raw: dict) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {[f'{name}.{k}' for k in unknown]}; known: {sorted(known)}")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def settings_from_cfg(cfg: Any) -> Settings:
    """Validated settings from a composed OmegaConf config (or a plain dict)."""
    raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    raw.pop("hydra", None)
    top = {"output_dir", "checkpoint"} | set(_SECTIONS)
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown}; known: {sorted(top)}")
    sections = {name: _section(name, cls, raw.get(name) or {}) for name, cls in _SECTIONS.items()}
    return Settings(output_dir=str(raw.get("output_dir", "./artifacts")), checkpoint=raw.get("checkpoint"),
                    **sections)


def path_override(key: str, path) -> str:
    """``key='path'`` as a Hydra override that survives any folder name: forward slashes (Windows accepts them;
    Hydra would read backslashes as escapes) and quoted (Hydra's grammar rejects unquoted ``( , ' [ = #``)."""
    text = Path(path).as_posix().replace("'", "\\'")
    return f"{key}='{text}'"


def paths_override(key: str, paths) -> str:
    """``key=['a','b']``: a list of paths as one Hydra override, each quoted as :func:`path_override` quotes it."""
    quoted = [path_override("", p)[1:] for p in paths]
    return f"{key}=[{','.join(quoted)}]"


def load_config(overrides: list[str] | None = None, config_name: str = "default") -> Any:
    """Compose the Hydra config with command-line style overrides (``key=value``)."""
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides or []))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError("config: " + " ".join(str(exc).split())) from None


def settings_to_dict(settings: Settings) -> dict:
    out = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        out[f.name] = {g.name: getattr(value, g.name) for g in fields(value)} if is_dataclass(value) else value
    return out


def config_leaf_keys(cfg: Any) -> set[str]:
    """Dotted keys of every leaf of a composed config (the ``hydra`` node excluded)."""
    raw = OmegaConf.to_container(cfg, resolve=True)
    raw.pop("hydra", None)
    keys: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            keys.add(prefix[:-1])

    walk(raw, "")
    return keys
