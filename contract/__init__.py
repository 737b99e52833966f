"""The modeld contract as code: profiles, constants, output packing/parsing, metadata, cameras, colour.

Pure numpy + stdlib; imports nothing else of ours. Everything that knows a shape, a slice, a grid or a frame
lives here and is imported by the rest of the toolkit.

The names below are loaded on first use (PEP 562), so importing the package (as ``sptrain doctor`` does before
numpy is installed) imports nothing heavy.
"""

from __future__ import annotations

import importlib

from ..errors import ContractError as ContractError  # re-exported
from ..errors import UnknownProfileError as UnknownProfileError  # re-exported

_EXPORTS = {
    "DT_S": "constants",
    "FEATURE_LEN": "constants",
    "HISTORY_BUFFER_LEN": "constants",
    "IDX_N": "constants",
    "LEAD_T_IDXS": "constants",
    "LEAD_T_OFFSETS": "constants",
    "META_T_IDXS": "constants",
    "MODEL_FREQ_HZ": "constants",
    "T_IDXS": "constants",
    "X_IDXS": "constants",
    "Desire": "constants",
    "LaneLine": "constants",
    "Meta": "constants",
    "Plan": "constants",
    "Pose": "constants",
    "RoadEdge": "constants",
    "TrafficConvention": "constants",
    "encode_traffic_convention": "constants",
    "DEFAULT_PROFILE": "profiles",
    "POLICY_MODEL": "profiles",
    "PROFILES": "profiles",
    "VISION_MODEL": "profiles",
    "HeadKind": "profiles",
    "HeadSpec": "profiles",
    "ModelSpec": "profiles",
    "Profile": "profiles",
    "get_profile": "profiles",
    "profile_ids": "profiles",
}
__all__ = sorted([*_EXPORTS, "ContractError", "UnknownProfileError"])


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
