"""A sunnypilot-shaped checkout for tests: modeld's parser package (a minimal, faithful stand-in of openpilot's
``selfdrive/modeld`` parser for the split runner, written from docs/contract.md, not copied) and stock model files.
"""

from __future__ import annotations

import os
from pathlib import Path

STOCK_FILES = ("driving_vision_tinygrad.pkl", "driving_vision_metadata.pkl", "driving_policy_tinygrad.pkl",
               "driving_policy_metadata.pkl", "driving_vision.onnx")  # no driving_policy.onnx: an install adds it

CONSTANTS_PY = '''
class ModelConstants:
    IDX_N = 33
    FEATURE_LEN = 512
    DESIRE_LEN = 8
    DESIRE_PRED_LEN = 4
    DESIRE_PRED_WIDTH = 8
    POSE_WIDTH = 6
    WIDE_FROM_DEVICE_WIDTH = 3
    NUM_LANE_LINES = 4
    NUM_ROAD_EDGES = 2
    LANE_LINES_WIDTH = 2
    LEAD_TRAJ_LEN = 6
    LEAD_WIDTH = 4
    LEAD_MHP_N = 2
    LEAD_MHP_SELECTION = 3
    PLAN_WIDTH = 15
    PLAN_MHP_N = 5
    PLAN_MHP_SELECTION = 1
'''

PARSER_PY = '''
import numpy as np

from openpilot.selfdrive.modeld.constants import ModelConstants as MC


def safe_exp(x):
    return np.exp(np.minimum(x, 11.0))  # clipped like modeld: exp(11) is about float16's limit


def sigmoid(x):
    return 1.0 / (1.0 + safe_exp(-x))


def softmax(x, axis=-1):
    e = safe_exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


class Parser:
    def __init__(self, ignore_missing=False):
        self.ignore_missing = ignore_missing

    def _missing(self, outs, name):
        if name in outs:
            return False
        if self.ignore_missing:
            return True
        raise ValueError(f"Missing output {name}")

    def parse_binary_crossentropy(self, name, outs):
        if not self._missing(outs, name):
            outs[name] = sigmoid(outs[name])

    def parse_categorical_crossentropy(self, name, outs, out_shape):
        if not self._missing(outs, name):
            raw = outs[name]
            outs[name] = softmax(raw.reshape((raw.shape[0],) + out_shape), axis=-1)

    def parse_mdn(self, name, outs, in_N=0, out_N=1, out_shape=None):
        if self._missing(outs, name):
            return
        raw = outs[name]
        batch = raw.shape[0]
        raw = raw.reshape((batch, max(in_N, 1), -1))
        n = (raw.shape[2] - out_N) // 2
        mu, std = raw[:, :, :n], safe_exp(raw[:, :, n:2 * n])  # all means first, then all log-stds
        if in_N > 1:
            weights = softmax(raw[:, :, 2 * n:], axis=1)  # over hypotheses, per selection slot
            if out_N == 1:  # hypotheses sorted best first
                order = np.argsort(-weights[:, :, 0], axis=1)
                weights = np.take_along_axis(weights, order[:, :, None], axis=1)
                mu = np.take_along_axis(mu, order[:, :, None], axis=1)
                std = np.take_along_axis(std, order[:, :, None], axis=1)
            outs[name + "_weights"] = weights
            outs[name + "_hypotheses"] = mu.reshape((batch, in_N) + out_shape)
            outs[name + "_stds_hypotheses"] = std.reshape((batch, in_N) + out_shape)
            best = np.argmax(weights, axis=1)  # (B, out_N)
            mu = np.take_along_axis(mu, best[:, :, None], axis=1)
            std = np.take_along_axis(std, best[:, :, None], axis=1)
        final = (batch, out_N) + out_shape if out_N > 1 else (batch,) + out_shape
        outs[name] = mu.reshape(final)
        outs[name + "_stds"] = std.reshape(final)

    def is_mhp(self, outs, name, single_values):
        return not self._missing(outs, name) and outs[name].shape[1] != 2 * single_values

    def parse_vision_outputs(self, outs):
        self.parse_mdn("pose", outs, 0, 0, (MC.POSE_WIDTH,))
        self.parse_mdn("wide_from_device_euler", outs, 0, 0, (MC.WIDE_FROM_DEVICE_WIDTH,))
        self.parse_mdn("road_transform", outs, 0, 0, (MC.POSE_WIDTH,))
        self.parse_mdn("lane_lines", outs, 0, 0, (MC.NUM_LANE_LINES, MC.IDX_N, MC.LANE_LINES_WIDTH))
        self.parse_mdn("road_edges", outs, 0, 0, (MC.NUM_ROAD_EDGES, MC.IDX_N, MC.LANE_LINES_WIDTH))
        self.parse_binary_crossentropy("lane_lines_prob", outs)
        self.parse_categorical_crossentropy("desire_pred", outs, (MC.DESIRE_PRED_LEN, MC.DESIRE_PRED_WIDTH))
        self.parse_binary_crossentropy("meta", outs)
        self.parse_binary_crossentropy("lead_prob", outs)
        single = MC.LEAD_MHP_SELECTION * MC.LEAD_TRAJ_LEN * MC.LEAD_WIDTH
        if self.is_mhp(outs, "lead", single):
            self.parse_mdn("lead", outs, MC.LEAD_MHP_N, MC.LEAD_MHP_SELECTION, (MC.LEAD_TRAJ_LEN, MC.LEAD_WIDTH))
        else:
            self.parse_mdn("lead", outs, 0, 0, (MC.LEAD_MHP_SELECTION, MC.LEAD_TRAJ_LEN, MC.LEAD_WIDTH))
        return outs

    def parse_policy_outputs(self, outs):
        if self.is_mhp(outs, "plan", MC.IDX_N * MC.PLAN_WIDTH):
            self.parse_mdn("plan", outs, MC.PLAN_MHP_N, MC.PLAN_MHP_SELECTION, (MC.IDX_N, MC.PLAN_WIDTH))
        else:
            self.parse_mdn("plan", outs, 0, 0, (MC.IDX_N, MC.PLAN_WIDTH))
        self.parse_categorical_crossentropy("desire_state", outs, (MC.DESIRE_PRED_WIDTH,))
        if "desired_curvature" in outs:
            self.parse_mdn("desired_curvature", outs, 0, 0, (1,))
        return outs
'''


def write_checkout(root: Path, parser_source: str = PARSER_PY) -> Path:
    """A sunnypilot-shaped tree: the package files modeld's parser needs and random stock model files."""
    modeld = root / "selfdrive" / "modeld"
    (modeld / "models").mkdir(parents=True)
    for init in (root / "__init__.py", root / "selfdrive" / "__init__.py", modeld / "__init__.py"):
        init.write_text("")
    (modeld / "constants.py").write_text(CONSTANTS_PY)
    (modeld / "parse_model_outputs.py").write_text(parser_source)
    for name in STOCK_FILES:
        (modeld / "models" / name).write_bytes(os.urandom(4096))
    return root
