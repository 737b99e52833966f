"""The exception types and messages the real client raises, reproduced where callers can observe them."""

from __future__ import annotations


class ArgumentError(TypeError):
    """Boost.Python's ``ArgumentError`` (a TypeError): raised when an argument has the wrong Python type."""


ArgumentError.__module__ = "Boost.Python"


def argument_error(where: str, *values) -> ArgumentError:
    types = ", ".join(type(v).__name__ for v in values)
    return ArgumentError(f"Python argument types in\n    {where}({types})\ndid not match C++ signature")


def timeout_message(timeout_s: float, host: str, port: int) -> str:
    """LibCarla's TimeoutException text (client/TimeoutException.cpp)."""
    return (
        f"time-out of {int(round(timeout_s * 1000))}ms while waiting for the simulator, make sure the "
        f"simulator is ready and connected to {host}:{port}"
    )


DESTROYED_ACTOR = (
    "trying to operate on a destroyed actor; an actor's function was called, but the actor is already destroyed."
)
SPAWN_COLLISION = "Spawn failed because of collision at spawn position"

NO_INIT = "This class cannot be instantiated from Python"


class NoInit:
    """Classes the real module does not let Python construct: ``Cls(...)`` raises, the double uses ``_make``."""

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        raise RuntimeError(NO_INIT)

    @classmethod
    def _make(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._setup(*args, **kwargs)
        return obj
