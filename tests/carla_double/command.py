"""``carla.command``: batch commands for ``Client.apply_batch`` / ``apply_batch_sync`` and their ``Response``."""

from __future__ import annotations

from .errors import NoInit as _NoInit

FutureActor = 0


def _actor_id(actor) -> int:
    return int(actor) if isinstance(actor, int) else int(actor.id)


class Response(_NoInit):
    """Result of one command of ``apply_batch_sync``: ``actor_id``, ``error`` ('' when none), ``has_error()``."""

    __slots__ = ("_actor_id", "_error")

    def _setup(self, actor_id: int = 0, error: str = ""):
        self._actor_id, self._error = int(actor_id), str(error)

    actor_id = property(lambda self: self._actor_id)
    error = property(lambda self: self._error)

    def has_error(self) -> bool:
        return bool(self._error)

    def __repr__(self):
        return f"Response(actor_id={self._actor_id}, error={self._error!r})"


class DestroyActor:
    __slots__ = ("actor_id",)

    def __init__(self, actor=0):
        self.actor_id = _actor_id(actor)


class SpawnActor:
    __slots__ = ("_blueprint", "transform", "parent_id", "attachment_type", "socket_name", "_then")

    def __init__(self, blueprint=None, transform=None, parent=None, attachment_type=0, socket_name=""):
        self._blueprint, self.transform = blueprint, transform
        self.parent_id = 0 if parent is None else _actor_id(parent)
        self.attachment_type, self.socket_name = attachment_type, socket_name
        self._then: list = []

    def then(self, command):
        """Commands run after the spawn; FutureActor (0) in them stands for the spawned actor's id."""
        self._then.append(command)
        return self


class SetAutopilot:
    __slots__ = ("actor_id", "enabled", "tm_port")

    def __init__(self, actor=0, enabled=False, tm_port=8000):
        self.actor_id, self.enabled, self.tm_port = _actor_id(actor), bool(enabled), int(tm_port)


class SetSimulatePhysics:
    __slots__ = ("actor_id", "enabled")

    def __init__(self, actor=0, enabled=False):
        self.actor_id, self.enabled = _actor_id(actor), bool(enabled)


class ApplyTransform:
    __slots__ = ("actor_id", "transform")

    def __init__(self, actor=0, transform=None):
        self.actor_id, self.transform = _actor_id(actor), transform


class ApplyVehicleControl:
    __slots__ = ("actor_id", "control")

    def __init__(self, actor=0, control=None):
        self.actor_id, self.control = _actor_id(actor), control


class SetVehicleLightState:
    __slots__ = ("actor_id", "light_state")

    def __init__(self, actor=0, light_state=0):
        self.actor_id, self.light_state = _actor_id(actor), int(light_state)
