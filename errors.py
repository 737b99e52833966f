"""The one error hierarchy of the toolkit.

Every error raised at a boundary (a file, a config, a simulator, a target folder) is one of these, with a
message that says what was found, what was expected and what to do. The CLI maps them to exit code 2 and a
one-line message; anything else is a bug and exits 1 with a traceback.
"""

from __future__ import annotations

from .contract.errors import ContractError

__all__ = [
    "SunnypilotTrainingError",
    "ContractError",
    "ConfigError",
    "ShardFormatError",
    "ExportError",
    "InstallError",
    "SimulatorError",
    "USER_ERRORS",
]


class SunnypilotTrainingError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class ConfigError(SunnypilotTrainingError, ValueError):
    """A configuration key or command-line value is missing or invalid."""


class ShardFormatError(SunnypilotTrainingError):
    """A Zarr shard is missing, truncated, or does not follow the schema."""


class ExportError(SunnypilotTrainingError):
    """A model cannot be exported, or the exported artifacts fail their checks."""


class InstallError(SunnypilotTrainingError):
    """Models cannot be installed into the target, or the installed models fail the smoke test."""


class SimulatorError(SunnypilotTrainingError):
    """A simulator cannot be reached or fails during an episode."""


# What the CLI reports as a user-facing error (exit code 2) rather than a bug (exit code 1).
USER_ERRORS: tuple[type[BaseException], ...] = (SunnypilotTrainingError, ContractError)
