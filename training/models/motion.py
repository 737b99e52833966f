"""A ground-plane motion volume: how well frame t-4, moved as the road would move at each of a set of speeds,
matches frame t. It gives the vision model the car's speed as a curve to read instead of something a small
network has to discover in two stacked frames (docs/models.md, "Reading the speed").

Geometry (the model frame is calibrated, so its horizon row and principal point are the camera's constants).
A road point seen at row r below the horizon (``y = r - cy``) lies ``d = f * h / y`` ahead of a camera at height
``h``. After the car moves ``delta`` forward, the same point is ``d - delta`` ahead, so a pixel (r, c) of frame t
shows what frame t-4 had at::

    s = 1 / (1 + q * y / f),   r_old = cy + y * s,   c_old = cx + (c - cx) * s,   q = delta / h

The volume is built for ``len(ratios)`` values of q (= speed * 0.2 s / h: the height is not known, so a
hypothesis is a speed per metre of height) and for horizontal shifts of the whole image (the car's yaw over the
0.2 s, and the look of a lateral move). For each (q, shift) and each of ``bands`` horizontal bands of the road
below the horizon the cost is the mean absolute difference of the two frames' luma there.

The exported graph computes it with a one-hot MatMul (rows), a GatherElements (columns), Slices, Sub, Abs,
ReduceMean, ReduceMin and Softmax: no resampling op the runtimes would have to support. The tables are derived
from the camera and the grid, so they are rebuilt, not stored in checkpoints.

Features, for each band and for the whole road (normalised per sample and band, so they do not depend on the
picture's contrast; a single band is noisy, the whole road's curves are the steadiest):

* the speed curve: for each q the lowest cost over the shifts, rescaled so that the band's best is 0 and its
  mean is about 1 (:func:`normalised`);
* the yaw curve: for each shift the lowest cost over the speeds, rescaled alike;
* the log of the band's contrast (mean minus best cost): how much the curves can be trusted (a road of
  unbroken lines and even asphalt shows little motion);
* the soft argmin of each curve (q / ratio_max in [0, 1], shift / max_shift in [-1, 1]): where it is lowest, as
  a number a small network can scale into a speed (an MLP on the curves alone needs many examples to learn
  where a minimum lies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...contract.camera import CameraModel
from ...contract.constants import DT_S, FRAME_PAIR_OFFSET
from ...contract.yuv import FRAME_CHANNELS
from .blocks import mlp

PAIR_DT_S = FRAME_PAIR_OFFSET * DT_S  # seconds between the two frames of a vision input
EPS = 1e-4  # of the normalised luma's cost scale (pixel values are (x - 128) / 64)
# a floor of a band's spread, as a share of its mean cost: a volume flatter than that (no texture, or the blank frame
# t-4 of modeld's first frames) reads as flat instead of as its float rounding divided by EPS, which differs
# between runtimes (docs/models.md)
FLAT_SHARE = 1e-2
SOFT_ARGMIN_T = 0.05  # temperature of the soft argmins, in units of a band's normalised cost (its mean about 1)


@dataclass(frozen=True)
class MotionGrid:
    """Where and how finely the volume looks, in pixels of one Y sub-grid (channel 0: the model frame at half
    resolution, focal length 455 px). Defaults: speed per metre of camera height 0..40 m/s (q 0..8), yaw up to
    +-28 px (0.06 rad in 0.2 s: a yaw rate of 0.3 rad/s; the built-in world's curvy roads reach 0.2 rad/s, and
    +-12 px missed them: the sweep then read a moving car as standing, docs/models.md), the road from 16 px
    below the horizon to the bottom."""

    ratio_max: float = 8.0  # largest q = delta / h (40 m/s at a camera height of 1 m)
    ratios: int = 41
    max_shift_px: int = 28
    below_horizon_px: int = 16  # first row compared (farther rows hold little texture)
    row_stride: int = 2
    margin_px: int = 28  # columns left out on each side (at least the largest shift)
    bands: int = 4
    col_stride: int = 1  # every k-th column of the compared rows
    shift_step: int = 1  # yaw shifts searched every k pixels (max_shift_px a multiple of it)


def resampling_table(camera: CameraModel, shape_hw: tuple[int, int], grid: MotionGrid
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row_of, column_of, rows, ratios) for frame t-4 moved by each ratio q: ``row_of`` (Q * R,) the row of frame
    t-4 each compared row of frame t comes from, ``column_of`` (Q * R, C_ext) the column each extended column
    (the compared columns widened by ``max_shift_px`` on each side, so every shift is a slice) comes from;
    ``rows`` (R,) the compared rows of frame t; ``ratios`` (Q,)."""
    h, w = shape_hw
    focal, cx, cy = camera.intrinsics_at(shape_hw[1])  # of channel 0, the Y sub-grid Y[0::2, 0::2]
    first = int(math.ceil(cy)) + grid.below_horizon_px
    rows = np.arange(first, h, grid.row_stride)
    usable = len(rows) - len(rows) % grid.bands
    if (usable < grid.bands or grid.margin_px < grid.max_shift_px or 2 * grid.margin_px >= w
            or min(grid.col_stride, grid.shift_step) < 1 or grid.max_shift_px % grid.shift_step):
        raise ValueError(f"motion grid {grid} does not fit a {h}x{w} image with the horizon at row {cy:.1f}")
    rows = rows[:usable]
    ext_cols = np.arange(grid.margin_px - grid.max_shift_px, w - grid.margin_px + grid.max_shift_px)
    ratios = np.linspace(0.0, grid.ratio_max, grid.ratios)
    y = (rows - cy)[None, :, None]  # (1, R, 1) rows below the horizon
    s = 1.0 / (1.0 + ratios[:, None, None] * y / focal)  # (Q, R, 1)
    row_of = np.clip(np.rint(cy + y * s), 0, h - 1).astype(np.int64).reshape(-1)  # (Q * R,)
    column_of = np.clip(np.rint(cx + (ext_cols[None, None, :] - cx) * s), 0, w - 1).astype(np.int64)
    return row_of, column_of.reshape(len(row_of), -1), rows, ratios


def normalised(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cost rescaled so that each sample's and band's best is 0 and its mean about 1, the spread it was divided
    by) of a volume (B, Q, S, bands). The spread has a floor of FLAT_SHARE of the mean: a flat volume stays flat."""
    best = cost.amin(dim=(1, 2), keepdim=True)
    mean = cost.mean(dim=(1, 2), keepdim=True)
    spread = mean - best + FLAT_SHARE * mean + EPS
    return (cost - best) / spread, spread


class MotionVolume(nn.Module):
    """(B, 12, H, W) normalised frames of one camera -> (B, out_dim) motion features (see the module docstring)."""

    def __init__(self, camera: CameraModel, shape_hw: tuple[int, int], out_dim: int, hidden_dim: int,
                 grid: MotionGrid | None = None):
        super().__init__()
        self.grid = grid or MotionGrid()
        g = self.grid
        row_of, column_of, rows, self.ratios = resampling_table(camera, shape_hw, g)
        self.n_rows, self.width = len(rows), shape_hw[1]
        self.n_ratios, self.n_shifts = g.ratios, 2 * g.max_shift_px // g.shift_step + 1
        # every compared column of frame t-4 moved is at a multiple of `step` of the extended columns (the column
        # stride and the shift step share it), so only those are gathered and each shift reads `col_step` apart
        # (1, contiguous, when the stride divides the shift step)
        step = math.gcd(g.col_stride, g.shift_step)
        self.col_step, self.shift_cols = g.col_stride // step, g.shift_step // step
        self.n_cols = len(range(0, self.width - 2 * g.margin_px, g.col_stride))  # compared columns per row
        column_of = column_of[:, ::step]
        self.ext_width = column_of.shape[1]
        # exported: rows by a one-hot MatMul, columns by GatherElements over one row, both cheap for every runtime
        # (tinygrad turns a Gather of a large constant index into one slice per index); in torch one IndexSelect
        # of the same pixels (the one-hot product copies them exactly), several times faster on a CPU
        pick_rows = np.zeros((len(row_of), shape_hw[0]), np.float32)
        pick_rows[np.arange(len(row_of)), row_of] = 1.0
        self.register_buffer("pick_rows", torch.from_numpy(pick_rows), persistent=False)  # (Q * R, H)
        self.register_buffer("column_of", torch.from_numpy(np.ascontiguousarray(column_of))[None],
                             persistent=False)  # (1, Q * R, C_ext / step)
        pixel_of = (row_of[:, None] * self.width + column_of).reshape(-1)  # (Q * R * C_ext / step,) in H * W
        self.register_buffer("pixel_of", torch.from_numpy(pixel_of), persistent=False)
        self.register_buffer("rows", torch.from_numpy(rows.astype(np.int64)), persistent=False)
        self.register_buffer("ratio_pos", torch.linspace(0.0, 1.0, g.ratios), persistent=False)
        self.register_buffer("shift_pos", torch.linspace(-1.0, 1.0, self.n_shifts), persistent=False)
        self.n_features = (self.n_ratios + self.n_shifts + 3) * (g.bands + 1)
        self.mlp = mlp(self.n_features, hidden_dim, out_dim)
        self.n_soft = 2 * (g.bands + 1)  # the soft argmins: the last features
        self.linear = nn.Linear(self.n_soft, out_dim)  # a straight path from them (it generalises from few roads)

    def volume(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Q, S, bands) mean absolute luma difference per speed ratio, shift and band."""
        g = self.grid
        b = x.shape[0]
        if torch.onnx.is_in_onnx_export():
            old = torch.matmul(self.pick_rows, x[:, 0])  # (B, Q * R, W): luma sub-grid 0 of frame t-4, rows moved
            moved = torch.gather(old, 2, self.column_of.expand(b, -1, -1))  # (B, Q * R, C_ext / step)
        else:
            moved = torch.index_select(x[:, 0].flatten(1), 1, self.pixel_of)  # the same pixels
        moved = moved.reshape(b, self.n_ratios, self.n_rows, self.ext_width)  # (B, Q, R, C_ext / step)
        span = self.width - 2 * g.margin_px  # the compared columns, before the column stride
        new = x[:, FRAME_CHANNELS][:, self.rows, g.margin_px:g.margin_px + span:g.col_stride]  # (B, R, C) frame t
        new = new.contiguous()[:, None]  # (B, 1, R, C)
        end = self.col_step * (self.n_cols - 1) + 1
        costs = []
        for k in range(self.n_shifts):  # frame t at c against frame t-4 moved, at c + shift
            j = k * self.shift_cols
            diff = moved[..., j:j + end:self.col_step] - new  # (B, Q, R, C)
            diff = diff.abs() if diff.requires_grad else diff.abs_()  # in place unless a gradient needs it
            costs.append(diff.mean(dim=-1).reshape(b, self.n_ratios, g.bands, -1).mean(dim=-1))  # (B, Q, bands)
        return torch.stack(costs, dim=2)  # (B, Q, S, bands)

    def curve_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(speed curves (B, Q, bands + 1), yaw curves (B, S, bands + 1), log contrast (B, 1, bands + 1)) per band
        and for the whole road (the last), each band's costs normalised to best 0 and mean about 1."""
        cost = self.volume(x)  # (B, Q, S, bands)
        cost = torch.cat([cost, cost.mean(dim=-1, keepdim=True)], dim=-1)  # and the whole road: (B, Q, S, bands + 1)
        norm, spread = normalised(cost)
        return norm.amin(dim=2), norm.amin(dim=1), spread.reshape(x.shape[0], 1, -1).log()

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_features): speed curves, yaw curves, log contrast and soft argmins per band and for all bands."""
        return self.flat(*self.curve_parts(x))

    def flat(self, speed: torch.Tensor, yaw: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
        """:meth:`curve_parts` -> (B, n_features), with the soft argmins of each curve: where it is lowest, as a
        number in [0, 1] (q / ratio_max) and [-1, 1] (shift)."""
        q = torch.softmax(-speed / SOFT_ARGMIN_T, dim=1) * self.ratio_pos[:, None]  # (B, Q, bands)
        shift = torch.softmax(-yaw / SOFT_ARGMIN_T, dim=1) * self.shift_pos[:, None]  # (B, S, bands)
        return torch.cat([speed, yaw, contrast, q.sum(dim=1, keepdim=True), shift.sum(dim=1, keepdim=True)],
                         dim=1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.curves(x))

    def readout(self, curves: torch.Tensor) -> torch.Tensor:
        """(B, n_features) curves -> (B, out_dim) features."""
        return self.mlp(curves) + self.linear(curves[:, -self.n_soft:])


class SpeedReading(nn.Module):
    """The speed as the product of what the volume measures and what it cannot: (distance per metre of camera
    height, from the speed curves) x (the camera's height, from the road camera's features).

    The ratio is the expectation of q under a softmax over the volume's q hypotheses, whose logits are a weighted
    sum of the bands' speed curves divided by a temperature that follows the whole road's contrast (a road that
    shows little motion gives a flat softmax, and the learnt prior over q takes over) plus that prior: a few dozen
    parameters, too few to recognise an episode. The height is a linear readout of the road camera's features
    trained on the labelled camera height (lane widths and dash lengths in pixels tell it); the speed loss does not
    reach it, so it cannot turn into a memorised speed either."""

    HEIGHT_MID_M, HEIGHT_SPAN_M = 1.3, 0.3  # the height readout's origin and scale (metres)

    def __init__(self, ratios: np.ndarray, bands: int, feature_dim: int):
        super().__init__()
        self.register_buffer("ratio_mps", torch.as_tensor(np.asarray(ratios) / PAIR_DT_S, dtype=torch.float32),
                             persistent=False)  # (Q,) speed per metre of camera height of each hypothesis
        weight = torch.zeros(bands + 1)
        weight[-1] = 1.0  # starts as the whole road's soft argmin
        self.band_weight = nn.Parameter(weight)
        self.log_temperature = nn.Parameter(torch.tensor([math.log(SOFT_ARGMIN_T), 0.0]))  # offset, contrast slope
        self.prior = nn.Parameter(torch.zeros(len(ratios)))
        self.height = nn.Linear(feature_dim, 1)

    def height_m(self, road: torch.Tensor) -> torch.Tensor:
        """(B,) the camera height read from the road camera's features (B, feature_dim)."""
        return self.HEIGHT_MID_M + self.HEIGHT_SPAN_M * self.height(road)[:, 0]

    def ratio(self, speed: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
        """(B,) speed per metre of camera height (1/s) from the speed curves and log contrasts of curve_parts."""
        curve = (speed * self.band_weight).sum(dim=-1)  # (B, Q)
        log_t = self.log_temperature[0] + self.log_temperature[1] * contrast[:, 0, -1:]  # (B, 1)
        p = torch.softmax(self.prior - curve * torch.exp(-log_t), dim=1)
        return (p * self.ratio_mps).sum(dim=1)

    def forward(self, speed: torch.Tensor, contrast: torch.Tensor, road: torch.Tensor) -> torch.Tensor:
        """(B,) speed (m/s); the height enters without its gradient."""
        return self.ratio(speed, contrast) * self.height_m(road).detach()
