"""The one error hierarchy of the toolkit (a base module: standard library only, importable by every layer).

Every error raised at a boundary (a file, a config, a simulator, a target folder, a value outside the modeld
contract) is one of these, with a message that says what was found, what was expected and what to do. The CLI maps
them to exit code 2 and a one-line message; anything else is a bug and exits 1 with a traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

__all__ = [
    "SunnypilotTrainingError",
    "ContractError",
    "UnknownProfileError",
    "ConfigError",
    "ShardFormatError",
    "ExportError",
    "InstallError",
    "SimulatorError",
    "EXIT_OK",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "run_guarded",
]


class SunnypilotTrainingError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class ContractError(SunnypilotTrainingError, ValueError):
    """A value does not fit the modeld contract: unknown profile, wrong shape or width, unsafe pickle."""


class UnknownProfileError(ContractError, KeyError):
    """A contract profile id that is not defined."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown profile"


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


EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2


def run_guarded(prog: str, func: Callable[..., int | None], *args: object) -> int:
    """Run a command and map the outcome to an exit code.

    A toolkit error prints one line ``<prog>: error: <message>`` and returns 2; anything else is a bug: the
    traceback is printed and 1 returned. Shared by ``sptrain`` and the script forms (``python x/y.py``).
    """
    try:
        code = func(*args)
    except SunnypilotTrainingError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"{prog}: unexpected error (a bug); the traceback is above", file=sys.stderr)
        return EXIT_UNEXPECTED
    return EXIT_OK if code is None else int(code)
