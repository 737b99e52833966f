"""The driving models: ``VisionModel`` (driving_vision) and ``PolicyModel`` (driving_policy).

Each model's ``forward`` is the exported ONNX graph (inputs and output layout of its contract profile);
``loss(batch)`` trains it on a dataset batch. ``count_parameters`` / ``count_flops`` report sizes.
"""

from .blocks import count_flops, count_parameters
from .policy import POLICY_SIZES, PolicyModel, PolicySize, desired_curvature_target
from .vision import VISION_SIZES, VisionModel, VisionSize

__all__ = [
    "POLICY_SIZES",
    "VISION_SIZES",
    "PolicyModel",
    "PolicySize",
    "VisionModel",
    "VisionSize",
    "count_flops",
    "count_parameters",
    "desired_curvature_target",
]
