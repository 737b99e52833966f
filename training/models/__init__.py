"""The driving models: ``VisionModel`` (driving_vision) and ``PolicyModel`` (driving_policy).

Each model's ``forward`` is the exported ONNX graph (inputs and output layout of its contract profile);
``loss(batch)`` trains it on a dataset batch. ``count_parameters`` / ``count_flops`` report sizes.
Checkpoints carry each model's ``model_args`` (plain data), and :func:`build_models` rebuilds both from them, so
export and evaluation need neither the trainer nor the config machinery.
"""

from typing import Any

from .blocks import count_flops, count_parameters
from .policy import POLICY_SIZES, PolicyModel, PolicySize, desired_curvature_target
from .vision import VISION_SIZES, VisionModel, VisionSize


def build_models(model_args: dict[str, dict[str, Any]]) -> tuple[VisionModel, PolicyModel]:
    """Both models from a checkpoint's ``model_args`` ``{"vision": {...}, "policy": {...}}`` (fresh weights)."""
    return VisionModel(**model_args["vision"]), PolicyModel(**model_args["policy"])


def model_args_from_config(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``model_args`` of a format-1 checkpoint, which stored only the resolved training config (plain dict)."""
    model, diffusion = config.get("model", {}), config.get("diffusion", {})
    profile = config.get("contract", {}).get("profile")
    return {"vision": {"profile_id": profile, "size": model.get("vision_size", "tiny"),
                       "heads": config.get("vision", {}).get("heads", "diffusion"), "diffusion": diffusion,
                       "shared_backbone": model.get("shared_backbone", False)},
            "policy": {"profile_id": profile, "size": model.get("policy_size", "tiny"), "diffusion": diffusion}}


__all__ = [
    "build_models",
    "model_args_from_config",
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
