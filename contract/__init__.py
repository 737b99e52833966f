"""The modeld contract as code: profiles, constants, output packing/parsing, metadata, cameras, colour.

Pure numpy + stdlib; imports nothing else of ours. Everything that knows a shape, a slice, a grid or a frame
lives here and is imported by the rest of the toolkit.
"""

from .constants import (  # noqa: F401
    DT_S,
    FEATURE_LEN,
    HISTORY_BUFFER_LEN,
    IDX_N,
    LEAD_T_IDXS,
    LEAD_T_OFFSETS,
    META_T_IDXS,
    MODEL_FREQ_HZ,
    T_IDXS,
    X_IDXS,
    Desire,
    LaneLine,
    Meta,
    Plan,
    Pose,
    RoadEdge,
    TrafficConvention,
    encode_traffic_convention,
)
from .errors import ContractError, UnknownProfileError  # noqa: F401
from .profiles import (  # noqa: F401
    DEFAULT_PROFILE,
    POLICY_MODEL,
    PROFILES,
    VISION_MODEL,
    HeadKind,
    HeadSpec,
    ModelSpec,
    Profile,
    get_profile,
    profile_ids,
)
