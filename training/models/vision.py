"""The vision model (``driving_vision``): two 12-channel uint8 camera inputs -> one flat contract output.

Architecture (top to bottom)::

    img, big_img (B, 12, 128, 256) uint8 -> float, (x - 128) / 64
      -> per camera: stem conv + GroupNorm + SiLU, then MBConv stages (stride 2 each) -> (B, C, 4, 8)
         -> 1x1 conv to ``flat_channels`` -> flatten (keeps where things are) -> Linear -> camera features
      -> concat(road, wide) -> MLP -> LayerNorm -> hidden_state (B, 512)   [the policy's features_buffer entry]
      -> heads on hidden_state:
         meta, desire_pred, lane_lines_prob, lead_prob: MLP logits
         pose, wide_from_device_euler, road_transform: Gaussian MDN heads
         lane_lines, road_edges, lead: conditional diffusion heads (``heads="diffusion"``: mu = the mean head,
         std = the samples' RMS about it), MDN heads (``"mdn"``) or plain regression heads (``"regression"``)
      every std is multiplied by a validation calibration (``std_scale`` buffers, training/calibration.py)

Every regression target is normalised per dimension by a data-fitted :class:`Normalizer` (buffers); outputs are
denormalised inside the graph, so the exported model speaks physical units.

op-0.10.0 multi-hypothesis lead (2 hypotheses x (6 x 4), 3 selection logits, one per time offset 0/2/4 s):

* diffusion heads: the head samples the full (3, 6, 4) lead target like op-0.10.1. Hypothesis 0 = the samples of
  the lead at offset 0 s, hypothesis 1 = the samples of the lead at offset 4 s (mean / log(std + floor)). The
  lead at an offset is usually one of those two vehicles (labels sample each lead's trajectory at the same
  absolute times, so the same vehicle gives the same trajectory). Selection logit (h, slot o) =
  -mean(((mu_o - mu_h) / sigma_o)^2): slot 0 picks hypothesis 0, slot 4 s hypothesis 1, slot 2 s the closer one.
* MDN heads: winner-takes-all multi-hypothesis loss: per offset with a lead, the hypothesis with the lower NLL is
  trained on it and the slot's logits learn (cross-entropy) to pick it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...contract.camera import MODEL_CAMERAS
from ...contract.constants import (
    DESIRE_LEN,
    DESIRE_PRED_LEN,
    FEATURE_LEN,
    IMG_SHAPE,
    LEAD_MHP_SELECTION,
    LEAD_TRAJ_LEN,
    LEAD_WIDTH,
    NUM_LANE_LINES,
    X_IDXS,
    LeadField,
    RoadTransform,
    lane_centre_y,
)
from ...contract.profiles import DEFAULT_PROFILE, get_profile
from ...contract.yuv import FRAME_CHANNELS
from ...errors import ConfigError
from ..diffusion import DiffusionConfig
from .blocks import (
    DiffusionHead,
    MdnHead,
    RegressionHead,
    all_fitted,
    flat_outputs,
    gaussian_nll_elements,
    mdn_flat,
    mlp,
    resolve_size,
    soft_cross_entropy,
)
from .motion import MotionGrid, MotionVolume, SpeedReading

HEAD_TYPES = ("diffusion", "mdn", "regression")
NORMS = ("group", "batch")  # "batch": checkpoints from before GroupNorm (format <= 2) only
NORM_GROUPS = 8  # GroupNorm groups (fewer where a layer's channels are not a multiple)
IMG_OFFSET = 128.0
IMG_SCALE = 1.0 / 64.0
LANE_MIN_WEIGHT = 0.2  # lane-line regression weight where the line is not painted (its geometry is still labelled)
LINE_COLUMN_WEIGHTS = (1.0, 0.2)  # lane lines and road edges: lateral y, height z (relative loss weights)
NEAR_LINE_SCALE_M = 15.0  # near_line_weight fades with the distance ahead as exp(-x / this)
LEAD_COLUMN_WEIGHTS = (1.0, 0.5, 1.0, 0.3)  # lead x, y, v, a
LEAD_OFFSET_SHAPE = (LEAD_TRAJ_LEN, LEAD_WIDTH)  # one lead trajectory (6, 4)
LEAD_TARGET_SHAPE = (LEAD_MHP_SELECTION,) + LEAD_OFFSET_SHAPE  # (3, 6, 4): one per offset
MDN_HEADS = ("pose", "wide_from_device_euler", "road_transform")
TRAJECTORY_HEADS = ("lane_lines", "road_edges", "lead")
LOGIT_HEADS = ("meta", "desire_pred", "lane_lines_prob", "lead_prob")
MOTION_PART = "motion_speed"  # with the motion volume: its branch alone must tell the speed
HEIGHT_PART = "motion_height"  # with speed_reading="ratio_height": the branch's camera height
# the middle of the left and right lane lines, from the lane_lines head's mean, against the labelled one: where the
# car is in its lane, said directly (the lines' own loss spreads it over 264 numbers); off unless weighted
CENTRE_PART = "lane_centre"
# with lane_channel: a readout (LANE_READOUTS) says the lane centre at LANE_CHANNEL_AT_M,
# trained on its own (deep supervision, as the motion branch's speed), and hidden_state carries the reading
LANE_PART = "lane_position"
# metres ahead of the car: the car's place and heading in its lane (0, 10 m: policy.lane_prior's pursuit) and the
# bend ahead (30 m with the other two: policy.curve_speed)
LANE_CHANNEL_AT_M = (0.0, 10.0, 30.0)
# what the readout reads: "road", a linear readout of the road camera's own features; "fused", a small MLP on the
# fused features (both cameras and the motion branch), whose values at the channel's place it then replaces
LANE_READOUTS = ("road", "fused")
# with lead_channel: a readout of the fused features says the lead in the car's lane now (LEAD_READINGS: its
# distance, as log1p(d / LEAD_GAP_SCALE_M), and its speed less the car's, in units of LEAD_SPEED_SCALE_MPS), trained on
# its own as the lane channel; a lead further than LEAD_CHANNEL_RANGE_M, or none, reads as "clear": that range and
# the car's own speed. hidden_state carries the reading just before the lane channel's (policy.follow_gap)
LEAD_PART = "lead_gap"
LEAD_READINGS = 2
LEAD_CHANNEL_RANGE_M = 100.0
LEAD_GAP_SCALE_M = 10.0
LEAD_GAP_UNIT = 0.1  # the gap's error counts in these (about 10 % of the distance)
LEAD_SPEED_SCALE_MPS = 2.0
LOSS_PARTS = LOGIT_HEADS + MDN_HEADS + TRAJECTORY_HEADS + (MOTION_PART, HEIGHT_PART, CENTRE_PART, LANE_PART,
                                                          LEAD_PART)
# a part's weight where loss_weights does not name it (otherwise 1)
DEFAULT_PART_WEIGHTS = {CENTRE_PART: 0.0}
LANE_CENTRE_SCALE_M = 0.3  # the lane-centre error is measured in these (about the labelled centre's spread)
LANE_CENTRE_DISTANCE_M = 15.0  # ... and counts near the car: weights exp(-x / this) over the points ahead
# how the motion branch's speed is read: "linear", a linear readout of its features; "ratio_height", the volume's
# distance per metre of camera height times a camera height read from the road camera (motion.SpeedReading)
SPEED_READINGS = ("linear", "ratio_height")
MOTION_SPEED_SCALE = 10.0  # m/s per unit of the motion branch's speed readout
FUTURE_PARTS = ("meta", "desire_pred", "lead_prob", "lead")  # parts (and their labels) that look up to 10 s ahead


def lane_channel_index(speed_channel: bool) -> int:
    """Where lane_channel's readings (the lane centre at LANE_CHANNEL_AT_M, units of LANE_CENTRE_SCALE_M) begin in
    hidden_state: just before the speed channel's one value, or at the end without it."""
    return FEATURE_LEN - len(LANE_CHANNEL_AT_M) - int(speed_channel)


def lead_channel_index(speed_channel: bool, lane_channel: bool) -> int:
    """Where lead_channel's readings begin in hidden_state: just before the lane channel's (or where those would
    begin without it)."""
    return lane_channel_index(speed_channel) - LEAD_READINGS + (0 if lane_channel else len(LANE_CHANNEL_AT_M))


def lead_reading(hidden, index: int):
    """(gap (...,) m, the lead's speed less the car's (...,) m/s) that hidden_state (..., FEATURE_LEN), torch or
    numpy, carries from ``index`` on (see :func:`lead_channel_index`); a clear road reads LEAD_CHANNEL_RANGE_M and 0."""
    u, rel = hidden[..., index], hidden[..., index + 1]
    exp = torch.exp if isinstance(u, torch.Tensor) else np.exp  # (exp - 1: ONNX has no expm1)
    return LEAD_GAP_SCALE_M * (exp(u) - 1.0), rel * LEAD_SPEED_SCALE_MPS


def lead_in_range(lead, lead_prob):
    """(B,) bool, torch or numpy: where the lead labels (B, 3, 6, 4) and lead_prob (B, 3) hold a lead now (offset 0,
    time 0) nearer than LEAD_CHANNEL_RANGE_M, the leads the lead channel reads."""
    return (lead_prob[:, 0] > 0.5) & (lead[:, 0, 0, LeadField.X] < LEAD_CHANNEL_RANGE_M)


def lead_channel_targets(lead: torch.Tensor, lead_prob: torch.Tensor, ego_speed_mps: torch.Tensor) -> torch.Tensor:
    """(B, LEAD_READINGS) the lead channel's targets in its units from the lead labels (B, 3, 6, 4) and lead_prob
    (B, 3) (the lead now: offset 0, time 0) and the car's speed (B,) m/s: log1p(gap / LEAD_GAP_SCALE_M) and the
    lead's speed less the car's / LEAD_SPEED_SCALE_MPS; no lead, or one beyond LEAD_CHANNEL_RANGE_M: that range and
    0."""
    gap, speed = lead[:, 0, 0, LeadField.X], lead[:, 0, 0, LeadField.V]
    near = lead_in_range(lead, lead_prob)
    gap = torch.where(near, gap.clamp(0.0, LEAD_CHANNEL_RANGE_M), torch.full_like(gap, LEAD_CHANNEL_RANGE_M))
    rel = torch.where(near, speed - ego_speed_mps, torch.zeros_like(speed))
    return torch.stack([torch.log1p(gap / LEAD_GAP_SCALE_M), rel / LEAD_SPEED_SCALE_MPS], dim=1)


def lane_reading_m(hidden, index: int):
    """(..., len(LANE_CHANNEL_AT_M)) m: the lane centre at LANE_CHANNEL_AT_M that hidden_state (..., FEATURE_LEN),
    torch or numpy, carries from ``index`` on (see :func:`lane_channel_index`)."""
    return hidden[..., index:index + len(LANE_CHANNEL_AT_M)] * LANE_CENTRE_SCALE_M


def bend_curvature(reading_m: torch.Tensor) -> torch.Tensor:
    """(B,) 1/m, positive right: the curvature 2 c of the quadratic a + b x + c x^2 through the lane-centre readings
    (B, len(LANE_CHANNEL_AT_M)) (m, right) at LANE_CHANNEL_AT_M (the road's bend ahead, for a car heading nearly
    along it)."""
    (x0, x1, x2), y = LANE_CHANNEL_AT_M, reading_m
    slope_near = (y[:, 1] - y[:, 0]) / (x1 - x0)
    slope_far = (y[:, 2] - y[:, 1]) / (x2 - x1)
    return 2.0 * (slope_far - slope_near) / (x2 - x0)


@dataclass(frozen=True)
class VisionSize:
    """Sizes of a vision model; the feature map after the stages is 128/(stem_stride * 2**stages) x 256/(...)."""

    stem_channels: int = 16
    stem_stride: int = 4  # 2 (3x3 conv) or 4 (4x4 patchify conv)
    widths: tuple[int, ...] = (24, 40, 64)  # one MBConv stage per width, each starting with a stride-2 block
    depths: tuple[int, ...] = (1, 1, 1)
    expand: int = 2  # MBConv expansion ratio
    flat_channels: int = 16
    camera_dim: int = 256
    fuse_dim: int = 256
    head_dim: int = 64
    denoiser_width: int = 96
    denoiser_depth: int = 2
    norm: str = "group"  # normalisation in the backbone (NORMS)
    frame_difference: bool = False  # the stem also sees frame t minus frame t-4 (motion made explicit)
    coord_channels: bool = False  # the stem also sees each pixel's column and row (-1..1): where a line lies is a value


VISION_SIZES: dict[str, VisionSize] = {
    "tiny": VisionSize(),
    "base": VisionSize(stem_channels=32, stem_stride=2, widths=(32, 64, 160, 320), depths=(2, 3, 4, 2), expand=4,
                       flat_channels=64, camera_dim=1024, fuse_dim=1024, head_dim=256, denoiser_width=256,
                       denoiser_depth=3),
}


def conv_norm_act(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True,
                  norm_kind: str = "group"):
    """Conv -> GroupNorm -> SiLU. GroupNorm keeps no running statistics: training, validation and the exported
    graph normalise alike, whichever camera (or mix of cameras) goes through a shared backbone."""
    pad = (kernel - 1) // 2 if stride == 1 or kernel % 2 else 0
    norm = nn.GroupNorm(math.gcd(c_out, NORM_GROUPS), c_out) if norm_kind == "group" else nn.BatchNorm2d(c_out)
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, pad, groups=groups, bias=False), norm]
    return nn.Sequential(*layers, nn.SiLU()) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> 3x3 depthwise (stride) -> 1x1 project; residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int, norm: str = "group"):
        super().__init__()
        hidden = c_in * expand
        self.block = nn.Sequential(conv_norm_act(c_in, hidden, norm_kind=norm),
                                   conv_norm_act(hidden, hidden, 3, stride, groups=hidden, norm_kind=norm),
                                   conv_norm_act(hidden, c_out, act=False, norm_kind=norm))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class Backbone(nn.Module):
    """One camera: (B, 12, 128, 256) float -> (B, camera_dim)."""

    def __init__(self, size: VisionSize):
        super().__init__()
        if size.stem_stride not in (2, 4) or len(size.widths) != len(size.depths) or min(size.depths) < 1:
            raise ConfigError(f"model.size: stem_stride={size.stem_stride} (use 2 or 4), widths={size.widths} and "
                              f"depths={size.depths} (same length, depths >= 1)")
        kernel = 3 if size.stem_stride == 2 else 4
        n = size.norm
        if n not in NORMS:
            raise ConfigError(f"model.size: norm={n!r}; use one of {list(NORMS)}")
        self.frame_difference = size.frame_difference
        stem_in = IMG_SHAPE[1] + (FRAME_CHANNELS if size.frame_difference else 0) + (2 if size.coord_channels else 0)
        coords = None
        if size.coord_channels:  # (1, 2, H, W): column, row in -1..1 (a constant, rebuilt rather than saved)
            rows, cols = torch.meshgrid(torch.linspace(-1.0, 1.0, IMG_SHAPE[2]),
                                        torch.linspace(-1.0, 1.0, IMG_SHAPE[3]), indexing="ij")
            coords = torch.stack([cols, rows])[None]
        self.register_buffer("coords", coords, persistent=False)
        layers = [conv_norm_act(stem_in, size.stem_channels, kernel, size.stem_stride, norm_kind=n)]
        c = size.stem_channels
        for width, depth in zip(size.widths, size.depths):
            layers += [MBConv(c if i == 0 else width, width, 2 if i == 0 else 1, size.expand, n) for i in range(depth)]
            c = width
        layers.append(conv_norm_act(c, size.flat_channels, norm_kind=n))
        self.features = nn.Sequential(*layers)
        down = size.stem_stride * 2 ** len(size.widths)
        self.map_hw = (IMG_SHAPE[2] // down, IMG_SHAPE[3] // down)
        self.proj = nn.Linear(size.flat_channels * math.prod(self.map_hw), size.camera_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frame_difference:  # channels 0:6 = frame t-4, 6:12 = frame t
            x = torch.cat([x, x[:, FRAME_CHANNELS:] - x[:, :FRAME_CHANNELS]], dim=1)
        if self.coords is not None:
            x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1)
        fmap = self.features(x)  # (B, flat_channels, h, w)
        return F.silu(self.proj(fmap.flatten(1)))  # (B, camera_dim)


class LeadMhpHead(nn.Module):
    """op-0.10.0 MDN lead: H hypotheses of (6, 4) mu / log-std and (H, 3) selection logits (WTA loss)."""

    def __init__(self, cond_dim: int, hidden_dim: int, hypotheses: int):
        super().__init__()
        self.hyp = hypotheses
        self.mdn = MdnHead((hypotheses,) + LEAD_OFFSET_SHAPE, cond_dim, hidden_dim)
        self.logits = mlp(cond_dim, hidden_dim, hypotheses * LEAD_MHP_SELECTION)
        self.normalizer = self.mdn.normalizer  # shared over hypotheses: fit on (N, H, 6, 4) copies

    def flat(self, cond: torch.Tensor) -> torch.Tensor:
        mu, log_std = self.mdn(cond)  # (B, H, 6, 4) each
        logits = self.logits(cond).reshape(-1, self.hyp, LEAD_MHP_SELECTION)  # (B, H, 3)
        return mdn_flat(mu, log_std, logits, self.hyp)

    def loss(self, cond: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """target (B, 3, 6, 4) physical, present (B, 3) lead_prob."""
        mu, log_std = self.mdn.forward_normalized(cond)  # (B, H, 6, 4)
        norm = self.normalizer  # every hypothesis has the same statistics
        y = ((target - norm.mean[0]) / norm.std[0])[:, None]  # (B, 1, 3, 6, 4) vs hypotheses on axis 1
        nll = gaussian_nll_elements(mu[:, :, None], log_std[:, :, None], y).mean(dim=(3, 4))  # (B, H, 3)
        best = nll.argmin(dim=1)  # (B, 3)
        reg = nll.gather(1, best[:, None]).squeeze(1)  # (B, 3)
        logits = self.logits(cond).reshape(-1, self.hyp, LEAD_MHP_SELECTION)
        cls = F.cross_entropy(logits, best, reduction="none")  # (B, 3)
        return ((reg + cls) * present).sum() / present.sum().clamp_min(1.0)


class VisionModel(nn.Module):
    """``driving_vision`` for one contract profile; ``forward(img, big_img)`` is the exported graph.

    Normalisers start as the identity: call :meth:`fit_normalizers` on training labels before training (the stats
    live in the state_dict).
    """

    def __init__(self, profile_id: str = DEFAULT_PROFILE, size: str | Mapping | VisionSize = "tiny",
                 heads: str = "diffusion", diffusion: DiffusionConfig | Mapping | None = None,
                 shared_backbone: bool = False, loss_weights: Mapping[str, float] | None = None,
                 motion_volume: bool = False, motion_grid: Mapping | None = None, speed_channel: bool = False,
                 speed_reading: str = "linear", near_line_weight: float = 1.0, lane_channel: bool = False,
                 lane_readout: str = "road", lead_channel: bool = False):
        super().__init__()
        if heads not in HEAD_TYPES:
            raise ConfigError(f"model.heads={heads!r}: use one of {list(HEAD_TYPES)}")
        self.profile_id = profile_id
        self.spec = get_profile(profile_id).vision
        self.input_names = tuple(i.name for i in self.spec.inputs)
        self.size = resolve_size(size, VISION_SIZES, VisionSize)
        self.heads_type = heads
        self.diffusion_config = diffusion if isinstance(diffusion, DiffusionConfig) else \
            DiffusionConfig.from_dict(diffusion)
        self.shared_backbone = shared_backbone
        self.loss_weights = dict(loss_weights or {})
        unknown = sorted(set(self.loss_weights) - set(LOSS_PARTS))
        if unknown:
            raise ConfigError(f"vision.loss_weights: unknown part(s) {unknown}; the parts are {list(LOSS_PARTS)}")
        s = self.size
        self.backbones = nn.ModuleList(Backbone(s) for _ in range(1 if shared_backbone else 2))
        self.motion_volume = motion_volume  # the road camera's features also read a ground-plane motion volume
        # the grid is kept in model_args: a checkpoint rebuilds with the grid it was trained with
        self.motion = MotionVolume(MODEL_CAMERAS["img"], IMG_SHAPE[2:], s.camera_dim, s.head_dim,
                                   MotionGrid(**(motion_grid or {}))) if motion_volume else None
        # deep supervision: a linear speed readout of the branch's features, trained with the pose speed, so the
        # branch learns the speed even while the rest of the network leans on other cues; with speed_channel the
        # reading (m/s / MOTION_SPEED_SCALE) replaces hidden_state's last value, in the exported graph too
        if speed_reading not in SPEED_READINGS:
            raise ConfigError(f"vision.speed_reading={speed_reading!r}: use one of {list(SPEED_READINGS)}")
        self.speed_reading = speed_reading
        self.motion_speed = None
        if motion_volume:
            self.motion_speed = nn.Linear(s.camera_dim, 1) if speed_reading == "linear" else \
                SpeedReading(self.motion.ratios, self.motion.grid.bands, s.camera_dim)
        if speed_channel and not motion_volume:
            raise ConfigError("vision.speed_channel=true needs vision.motion_volume=true (the reading comes from it)")
        self.speed_channel = speed_channel
        # where the car is in its lane, read from the road camera's features or the fused ones (lane_readout; in units
        # of LANE_CENTRE_SCALE_M); hidden_state's last values (before the speed channel) carry the reading
        self.lane_channel = bool(lane_channel)
        if lane_readout not in LANE_READOUTS:
            raise ConfigError(f"vision.lane_readout={lane_readout!r}: use one of {list(LANE_READOUTS)}")
        self.lane_readout = lane_readout
        self.lane_position = None
        if self.lane_channel:
            self.lane_position = nn.Linear(s.camera_dim, len(LANE_CHANNEL_AT_M)) if lane_readout == "road" else \
                mlp(FEATURE_LEN, s.head_dim, len(LANE_CHANNEL_AT_M))
        # the lead in the car's lane now (LEAD_READINGS), read from the fused features; hidden_state carries it
        self.lead_channel = bool(lead_channel)
        self.lead_gap = mlp(FEATURE_LEN, s.head_dim, LEAD_READINGS) if self.lead_channel else None
        at = np.stack([np.interp(LANE_CHANNEL_AT_M, X_IDXS, row) for row in np.eye(len(X_IDXS))])  # (33, readings)
        self.register_buffer("lane_channel_interp", torch.tensor(at, dtype=torch.float32), persistent=False)
        self.fuse = nn.Sequential(nn.Linear(2 * s.camera_dim, s.fuse_dim), nn.SiLU(),
                                  nn.Linear(s.fuse_dim, FEATURE_LEN), nn.LayerNorm(FEATURE_LEN))
        self.logit_heads = nn.ModuleDict({n: mlp(FEATURE_LEN, s.head_dim, self.spec.head(n).width)
                                          for n in LOGIT_HEADS})
        self.mdn_heads = nn.ModuleDict({n: MdnHead(self.spec.head(n).shape, FEATURE_LEN, s.head_dim)
                                        for n in MDN_HEADS})
        self.lead_hyp = self.spec.head("lead").hypotheses
        self.trajectory_heads = nn.ModuleDict({n: self._make_trajectory_head(n, i)
                                               for i, n in enumerate(TRAJECTORY_HEADS)})
        self.register_buffer("line_weight", torch.tensor(LINE_COLUMN_WEIGHTS), persistent=False)
        # the lane lines' points near the car (where they say where the car is in its lane) count more
        if not near_line_weight >= 1.0:
            raise ConfigError(f"vision.near_line_weight={near_line_weight}: use a number >= 1 (1: every point alike)")
        self.near_line_weight = float(near_line_weight)
        near = 1.0 + (self.near_line_weight - 1.0) * np.exp(-X_IDXS / NEAR_LINE_SCALE_M)  # (33,)
        self.register_buffer("line_distance_weight", torch.tensor(near, dtype=torch.float32)[:, None],
                             persistent=False)  # (33, 1)
        centre = np.exp(-X_IDXS / LANE_CENTRE_DISTANCE_M)  # the lane centre counts near the car (sums to 1)
        self.register_buffer("centre_distance_weight", torch.tensor(centre / centre.sum(), dtype=torch.float32),
                             persistent=False)
        self.register_buffer("lead_weight", torch.tensor(LEAD_COLUMN_WEIGHTS), persistent=False)

    @property
    def normalizers_fitted(self) -> bool:
        """True once every target normaliser has statistics (fit before training)."""
        return all_fitted(self)

    @property
    def model_args(self) -> dict:
        """Constructor arguments as plain data (for checkpoints): ``VisionModel(**model.model_args)`` rebuilds it."""
        return {"profile_id": self.profile_id, "size": asdict(self.size), "heads": self.heads_type,
                "diffusion": self.diffusion_config.to_dict(), "shared_backbone": self.shared_backbone,
                "loss_weights": dict(self.loss_weights), "motion_volume": self.motion_volume,
                "motion_grid": asdict(self.motion.grid) if self.motion is not None else None,
                "speed_channel": self.speed_channel, "speed_reading": self.speed_reading,
                "near_line_weight": self.near_line_weight, "lane_channel": self.lane_channel,
                "lane_readout": self.lane_readout, "lead_channel": self.lead_channel}

    def _make_trajectory_head(self, name: str, index: int) -> nn.Module:
        s = self.size
        shape = LEAD_TARGET_SHAPE if name == "lead" else self.spec.head(name).shape
        if self.heads_type == "diffusion":
            return DiffusionHead(shape, FEATURE_LEN, s.denoiser_width, s.denoiser_depth, self.diffusion_config,
                                 seed_offset=1000 * index)
        if name == "lead" and self.lead_hyp > 1:
            return LeadMhpHead(FEATURE_LEN, s.head_dim, self.lead_hyp)
        return (MdnHead if self.heads_type == "mdn" else RegressionHead)(shape, FEATURE_LEN, s.head_dim)

    # --- graph --------------------------------------------------------------------------------------------------
    def features(self, img: torch.Tensor, big_img: torch.Tensor) -> torch.Tensor:
        """hidden_state (B, 512) from the two uint8 camera inputs (B, 12, 128, 256)."""
        return self._features(img, big_img)[0]

    def _features(self, img: torch.Tensor, big_img: torch.Tensor
                  ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor | None] | None, torch.Tensor | None,
                             torch.Tensor | None]:
        """(hidden_state, the motion branch's (speed reading (B,) m/s, camera height reading (B,) m or None), or
        None without the branch, the lane-centre reading (B, len(LANE_CHANNEL_AT_M)) in units of
        LANE_CENTRE_SCALE_M, or None without lane_channel, the lead reading (B, LEAD_READINGS) in its units (see
        :func:`lead_channel_targets`), or None without lead_channel)."""
        road_in = (img.float() - IMG_OFFSET) * IMG_SCALE
        road = self.backbones[0](road_in)  # (B, camera_dim)
        road_alone = road  # before the motion branch adds its features (what lane_readout="road" reads)
        branch = None
        if self.motion is not None:
            motion, branch = self._branch(road_in, road)
            road = road + motion
        wide = self.backbones[-1]((big_img.float() - IMG_OFFSET) * IMG_SCALE)
        hidden = self.fuse(torch.cat([road, wide], dim=1))  # (B, 512)
        if self.speed_channel:
            hidden = torch.cat([hidden[:, :-1], branch[0][:, None] / MOTION_SPEED_SCALE], dim=1)
        lane = None
        if self.lane_position is not None:  # the readings take the values just before the speed channel (or the last)
            lane = self.lane_position(road_alone if self.lane_readout == "road" else hidden)
            start = lane_channel_index(self.speed_channel)
            hidden = torch.cat([hidden[:, :start], lane, hidden[:, start + lane.shape[1]:]], dim=1)
        lead = None
        if self.lead_gap is not None:  # the lead's readings take the values just before the lane channel's
            lead = self.lead_gap(hidden)
            start = lead_channel_index(self.speed_channel, self.lane_channel)
            hidden = torch.cat([hidden[:, :start], lead, hidden[:, start + LEAD_READINGS:]], dim=1)
        return hidden, branch, lane, lead

    def _branch(self, road_in: torch.Tensor, road: torch.Tensor
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor | None]]:
        """The motion branch on the normalised road input and the road camera's features (B, camera_dim):
        (its features (B, camera_dim), (speed reading (B,) m/s, camera height reading (B,) m or None))."""
        parts = self.motion.curve_parts(road_in)
        motion = self.motion.readout(self.motion.flat(*parts))
        if isinstance(self.motion_speed, SpeedReading):
            speed, _, contrast = parts
            return motion, (self.motion_speed(speed, contrast, road), self.motion_speed.height_m(road))
        return motion, (self.motion_speed_mps(motion), None)

    def motion_speed_mps(self, motion: torch.Tensor) -> torch.Tensor:
        """(B,) speed_reading="linear": the speed the motion branch's features (B, camera_dim) tell on their own."""
        return self.motion_speed(F.silu(motion))[:, 0] * MOTION_SPEED_SCALE

    def forward(self, img: torch.Tensor, big_img: torch.Tensor) -> torch.Tensor:
        """(B, output_width) float32 in the profile's layout."""
        hidden = self.features(img, big_img)  # (B, 512)
        out = {name: head(hidden) for name, head in self.logit_heads.items()}
        for name, head in self.mdn_heads.items():
            out[name] = mdn_flat(*head(hidden))
        for name, head in self.trajectory_heads.items():
            out[name] = self._trajectory_flat(name, head, hidden)
        out["hidden_state"] = hidden
        return flat_outputs(self.spec, out)

    def _trajectory_flat(self, name: str, head: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        if isinstance(head, LeadMhpHead):
            return head.flat(hidden)
        if not isinstance(head, DiffusionHead):
            return mdn_flat(*head(hidden))
        mu, log_std, _ = head.export_stats(hidden)
        if name != "lead" or self.lead_hyp <= 1:
            return mdn_flat(mu, log_std)
        return mdn_flat(*lead_hypotheses(mu, log_std), hypotheses=self.lead_hyp)

    # --- training -----------------------------------------------------------------------------------------------
    def branch_readings(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The motion branch's own (speed (B,) m/s, camera height (B,) m or None) from the uint8 road camera input
        (validation; not outputs of the exported model)."""
        road_in = (img.float() - IMG_OFFSET) * IMG_SCALE
        return self._branch(road_in, self.backbones[0](road_in))[1]

    def lane_targets(self, lines: torch.Tensor) -> torch.Tensor:
        """(B, len(LANE_CHANNEL_AT_M)) m: the labelled lane centre at LANE_CHANNEL_AT_M from lane lines
        (B, 4, 33, 2)."""
        return lane_centre_y(lines) @ self.lane_channel_interp

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of per-head losses on a VisionDataset batch; parts are floats for logging.

        A batch with a ``future`` flag (B,) trains the parts that look ahead in time (:data:`FUTURE_PARTS`) only
        on the samples whose episode holds that future; the rest (pose, lines, edges, ...) learn from every frame.
        """
        hidden, branch, lane, lead = self._features(batch["img"], batch["big_img"])
        future = batch.get("future")
        ahead = torch.ones(hidden.shape[0], dtype=torch.bool, device=hidden.device) if future is None else \
            future.bool()
        if bool(ahead.any()):
            parts = self._future_parts(hidden[ahead], {k: batch[k][ahead] for k in FUTURE_PARTS})
        else:  # no sample holds a future: those parts learn nothing from this batch
            parts = {k: hidden.sum() * 0.0 for k in FUTURE_PARTS}
        lane_prob = batch["lane_lines_prob"].float()  # (B, 4)
        parts["lane_lines_prob"] = F.binary_cross_entropy_with_logits(  # same target on [deprecated, used]
            self.logit_heads["lane_lines_prob"](hidden).reshape(-1, NUM_LANE_LINES, 2),
            lane_prob[:, :, None].expand(-1, -1, 2))
        for name, head in self.mdn_heads.items():
            parts[name] = head.loss(hidden, batch[name].float())
        lane_weight = (LANE_MIN_WEIGHT + (1.0 - LANE_MIN_WEIGHT) * lane_prob)[:, :, None, None]  # (B, 4, 1, 1)
        yz = self.line_weight  # (2,): y counts, height hardly
        heads = self.trajectory_heads
        parts["lane_lines"] = heads["lane_lines"].loss(hidden, batch["lane_lines"].float(),
                                                       lane_weight * yz * self.line_distance_weight)
        parts["road_edges"] = heads["road_edges"].loss(hidden, batch["road_edges"].float(), yz.expand(1, 1, 1, 2))
        if branch is not None:
            speed, height = branch
            parts[MOTION_PART] = F.smooth_l1_loss(speed, batch["pose"][:, 0].float(), beta=1.0)
            if height is not None:
                target = batch["road_transform"][:, RoadTransform.HEIGHT].float()
                parts[HEIGHT_PART] = F.mse_loss(height, target) / SpeedReading.HEIGHT_SPAN_M ** 2
        if self.part_weight(CENTRE_PART) > 0:
            parts[CENTRE_PART] = self._centre_loss(hidden, batch["lane_lines"].float())
        if lane is not None:  # the same robust error as the lane_centre part, at the readout's distances
            err = lane - self.lane_targets(batch["lane_lines"].float()) / LANE_CENTRE_SCALE_M
            parts[LANE_PART] = 2.0 * F.smooth_l1_loss(err, torch.zeros_like(err), beta=1.0)
        if lead is not None:  # the gap in units of LEAD_GAP_UNIT (relative), the speed in LEAD_SPEED_SCALE_MPS
            target = lead_channel_targets(batch["lead"].float(), batch["lead_prob"].float(),
                                          batch["pose"][:, 0].float())
            err = (lead - target) / torch.tensor([LEAD_GAP_UNIT, 1.0], device=lead.device)
            parts[LEAD_PART] = F.smooth_l1_loss(err, torch.zeros_like(err), beta=1.0)
        total = sum(self.part_weight(k) * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def part_weight(self, part: str) -> float:
        """The loss weight of one of :data:`LOSS_PARTS`: ``loss_weights``, else :data:`DEFAULT_PART_WEIGHTS`, else 1."""
        return float(self.loss_weights.get(part, DEFAULT_PART_WEIGHTS.get(part, 1.0)))

    def _centre_loss(self, hidden: torch.Tensor, lines: torch.Tensor) -> torch.Tensor:
        """The error of the lane centre (the middle of the left and right lines) of the lane_lines head's mean
        against the labels, in units of LANE_CENTRE_SCALE_M: squared within one unit, linear beyond (a junction's
        lines far ahead do not outweigh the car's place in its lane), weighted as exp(-x / LANE_CENTRE_DISTANCE_M)."""
        mean = self.trajectory_heads["lane_lines"].mean(hidden)  # (B, 4, 33, 2) physical
        err = (lane_centre_y(mean) - lane_centre_y(lines)) / LANE_CENTRE_SCALE_M  # (B, 33)
        huber = 2.0 * F.smooth_l1_loss(err, torch.zeros_like(err), reduction="none", beta=1.0)  # x^2, or 2|x| - 1
        return (huber * self.centre_distance_weight).sum(dim=1).mean()

    def _future_parts(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The losses of the heads whose labels look ahead in time (meta events, desire, leads)."""
        B = hidden.shape[0]
        lead_prob = batch["lead_prob"].float()  # (B, 3)
        parts = {
            "meta": F.binary_cross_entropy_with_logits(self.logit_heads["meta"](hidden), batch["meta"].float()),
            "desire_pred": soft_cross_entropy(self.logit_heads["desire_pred"](hidden).reshape(
                B, DESIRE_PRED_LEN, DESIRE_LEN), batch["desire_pred"].float()),
            "lead_prob": F.binary_cross_entropy_with_logits(self.logit_heads["lead_prob"](hidden), lead_prob),
        }
        head, lead = self.trajectory_heads["lead"], batch["lead"].float()
        if isinstance(head, LeadMhpHead):
            parts["lead"] = head.loss(hidden, lead, lead_prob)
        else:
            parts["lead"] = head.loss(hidden, lead, lead_prob[:, :, None, None] * self.lead_weight)
        return parts

    @torch.no_grad()
    def fit_normalizers(self, data: Mapping[str, np.ndarray] | Iterable[Mapping[str, torch.Tensor]]) -> None:
        """Fit every regression normaliser from labels: a dict of label arrays (N, ...) keyed like the dataset
        (``lane_lines``, ``road_edges``, ``lead``, ``lead_prob``, ``pose``, ``road_transform``,
        ``wide_from_device_euler``) or an iterable of such batches. Leads are fitted where ``lead_prob`` is 1."""
        labels = _collect_labels(data, MDN_HEADS + TRAJECTORY_HEADS + ("lead_prob",))
        for name in MDN_HEADS:
            self.mdn_heads[name].normalizer.fit(labels[name])
        for name in ("lane_lines", "road_edges"):
            self.trajectory_heads[name].normalizer.fit(labels[name])
        lead, present = labels["lead"], labels["lead_prob"][:, :, None, None]  # (N, 3, 6, 4), (N, 3, 1, 1)
        head = self.trajectory_heads["lead"]
        if isinstance(head, LeadMhpHead):  # one (6, 4) normaliser over every offset and hypothesis
            rows, mask = lead.reshape((-1,) + LEAD_OFFSET_SHAPE), present.reshape(-1, 1, 1)
            head.normalizer.fit(np.repeat(rows[:, None], self.lead_hyp, 1), np.repeat(mask[:, None], self.lead_hyp, 1))
        else:
            head.normalizer.fit(lead, present)


def lead_hypotheses(mu: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """op-0.10.0 lead from per-offset sample stats (B, 3, 6, 4): hypotheses = offsets 0 and 4 s,
    -> mu, log_std (B, 2, 6, 4) and selection logits (B, 2, 3) (see the module docstring)."""
    hyp_mu = torch.stack([mu[:, 0], mu[:, -1]], dim=1)  # (B, 2, 6, 4)
    hyp_log_std = torch.stack([log_std[:, 0], log_std[:, -1]], dim=1)
    z = (mu[:, None] - hyp_mu[:, :, None]) * torch.exp(-log_std[:, None])  # (B, 2 hyp, 3 slots, 6, 4)
    logits = -z.square().mean(dim=(3, 4))  # (B, 2, 3)
    return hyp_mu, hyp_log_std, logits


def _collect_labels(data, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if isinstance(data, Mapping):
        return {k: np.asarray(data[k], dtype=np.float64) for k in keys}
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for batch in data:
        for k in keys:
            chunks[k].append(np.asarray(batch[k], dtype=np.float64))
    if not chunks[keys[0]]:
        raise ConfigError("fit_normalizers got no batches; give it training labels")
    return {k: np.concatenate(v) for k, v in chunks.items()}
