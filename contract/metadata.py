"""Model metadata: the ``*_metadata.pkl`` dict and the ONNX ``metadata_props`` encoding.

modeld's build step reads the ONNX ``metadata_props`` (``output_slices`` = base64 text of a pickled
``dict[str, slice]``; ``model_checkpoint`` = free text) and the graph's input/output shapes, and pickles
``{'model_checkpoint', 'output_slices', 'input_shapes', 'output_shapes'}`` as ``X_metadata.pkl``.
Metadata pickles are only ever loaded with :func:`load_metadata`, whose unpickler admits no global but
``builtins.slice``.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from dataclasses import dataclass
from typing import Any

from ..errors import ContractError
from .profiles import PROFILES, ModelSpec

METADATA_KEYS = ("model_checkpoint", "output_slices", "input_shapes", "output_shapes")
PROP_OUTPUT_SLICES = "output_slices"
PROP_MODEL_CHECKPOINT = "model_checkpoint"
_ALLOWED_GLOBALS = {("builtins", "slice"): slice}


class _SliceOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"metadata pickle refers to {module}.{name}; only builtins.slice is allowed"
            ) from None


def restricted_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle data that may only use ``builtins.slice``; ContractError names ``source`` otherwise."""
    try:
        return _SliceOnlyUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ContractError(f"{source}: not a valid metadata pickle ({exc}); expected a pickled dict whose only "
                            f"global is builtins.slice - re-export the model") from None


def build_metadata(spec: ModelSpec, model_checkpoint: str) -> dict[str, Any]:
    """The ``*_metadata.pkl`` dict modeld's get_model_metadata.py produces for a model of ``spec``."""
    return {
        "model_checkpoint": str(model_checkpoint),
        "output_slices": spec.output_slices(),
        "input_shapes": spec.input_shapes(),
        "output_shapes": {spec.output_name: spec.output_shape},
    }


def encode_output_slices(slices: dict[str, slice]) -> str:
    """base64 text of the pickled slice dict, as modeld decodes it from ``metadata_props``."""
    return codecs.encode(pickle.dumps(dict(slices)), "base64").decode()


def decode_output_slices(text: str, source: str = "metadata_props") -> dict[str, slice]:
    try:
        raw = codecs.decode(text.encode(), "base64")
    except Exception as exc:  # binascii.Error and friends
        raise ContractError(f"{source}: output_slices is not base64 text ({exc})") from None
    value = restricted_loads(raw, source)
    if not isinstance(value, dict) or not all(isinstance(v, slice) for v in value.values()):
        raise ContractError(f"{source}: output_slices decodes to {type(value).__name__}, expected dict of slices")
    return value


def onnx_metadata_props(spec: ModelSpec, model_checkpoint: str) -> dict[str, str]:
    """The key/value pairs to put in the ONNX model's ``metadata_props``."""
    return {
        PROP_OUTPUT_SLICES: encode_output_slices(spec.output_slices()),
        PROP_MODEL_CHECKPOINT: str(model_checkpoint),
    }


def dump_metadata(metadata: dict[str, Any]) -> bytes:
    return pickle.dumps(metadata)


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Load a ``*_metadata.pkl`` with the restricted unpickler and check its keys."""
    with open(path, "rb") as f:
        data = f.read()
    value = restricted_loads(data, str(path))
    if not isinstance(value, dict) or set(value) != set(METADATA_KEYS):
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ContractError(f"{path}: metadata has keys {found}, expected {list(METADATA_KEYS)}")
    return value


def compare_metadata(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Differences that matter to modeld (all but ``model_checkpoint``); empty when compatible."""
    problems = []
    if list(actual) != list(expected):
        problems.append(f"keys {list(actual)} != {list(expected)}")
    for key in ("input_shapes", "output_shapes", "output_slices"):
        a, e = actual.get(key, {}), expected.get(key, {})
        if list(a.items()) != list(e.items()):
            problems.append(f"{key}: {a} != {e}")
    return problems


@dataclass(frozen=True)
class ProfileMatch:
    """The contract profile and model a metadata dict belongs to; ``problems`` is empty for an exact match."""

    profile_id: str
    spec: ModelSpec
    problems: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return not self.problems


def match_metadata(metadata: dict[str, Any], model: str | None = None) -> ProfileMatch | None:
    """The profile (and model, or only ``model``) whose metadata equals ``metadata`` in everything modeld reads;
    else the first one with the same output shape, with its differences; None when no output shape fits."""
    shape = tuple(metadata.get("output_shapes", {}).get("outputs", ()))
    candidates = [(pid, spec) for pid, profile in PROFILES.items() for name, spec in profile.models.items()
                  if (model is None or name == model) and spec.output_shape == shape]
    matches = [ProfileMatch(pid, spec, tuple(compare_metadata(metadata, build_metadata(spec, ""))))
               for pid, spec in candidates]
    exact = [m for m in matches if m.exact]
    return (exact or matches or [None])[0]
