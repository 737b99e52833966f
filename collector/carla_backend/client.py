"""Connecting to a CARLA server: the client module, versions, ports and the errors a user can act on.

The client module is ``carla`` unless ``SPTRAIN_CARLA_MODULE`` names another module with the same API (the
test suite points it at a double of the client API, since no CARLA server runs in CI).
"""

from __future__ import annotations

import importlib
import os
import re
import time
from dataclasses import dataclass
from types import ModuleType

from ...errors import SimulatorError

CARLA_MODULE_ENV = "SPTRAIN_CARLA_MODULE"
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 2000  # CARLA's RPC port; the server also uses the next two ports (streaming, secondary)
DEFAULT_TM_PORT = 8000
PORT_STRIDE = 3  # servers started for parallel collection listen on base, base + 3, base + 6, ...
DEFAULT_TIMEOUT_S = 30.0
START_HINT = ("start it with `sptrain carla start --port {port}` (CARLA_ROOT or --carla-root must point at the "
              "CARLA folder), or run CarlaUE4 / CarlaUnreal yourself with -carla-rpc-port={port}")


class ServerUnreachable(SimulatorError):
    """No CARLA server answers at an address (or it stopped answering)."""


def carla_module() -> ModuleType:
    """The CARLA client module; SimulatorError with the install command when it is missing."""
    name = os.environ.get(CARLA_MODULE_ENV, "carla")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise SimulatorError(f"the CARLA Python client ({name!r}) is not installed ({exc}); install it with "
                             f"`pip install -e .[carla]`, or the wheel in CARLA_ROOT/PythonAPI/carla/dist that "
                             f"matches your server and Python") from None


def parse_version(text: str) -> tuple[int, int, int]:
    """'0.9.16', '0.9.15.2', '0.10.0-dirty' -> (0, 9, 16); SimulatorError for anything else."""
    match = re.match(r"\s*(\d+)\.(\d+)\.(\d+)", str(text))
    if not match:
        raise SimulatorError(f"CARLA reported version {text!r}; expected a version like 0.9.16")
    return tuple(int(g) for g in match.groups())  # type: ignore[return-value]


@dataclass(frozen=True)
class ServerAddress:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tm_port: int = DEFAULT_TM_PORT

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def rpc_ports(base_port: int, workers: int) -> list[int]:
    """RPC ports of the servers of ``workers`` parallel collectors: base + 3 i."""
    if workers < 1:
        raise SimulatorError(f"--workers {workers}; expected at least 1")
    highest = 65535 - PORT_STRIDE * workers
    if not 1024 <= base_port <= highest:
        raise SimulatorError(f"--port/--base-port {base_port}; expected a port in 1024..{highest}")
    return [base_port + PORT_STRIDE * i for i in range(workers)]


def server_addresses(host: str, base_port: int, tm_port: int, workers: int) -> list[ServerAddress]:
    """The servers of ``workers`` parallel collectors: RPC ports base + 3 i, Traffic Manager ports tm + i."""
    rpc = rpc_ports(base_port, workers)
    if not 1024 <= tm_port <= 65535 - workers:
        raise SimulatorError(f"--tm-port {tm_port}; expected a port in 1024..{65535 - workers}")
    tms = [tm_port + i for i in range(workers)]
    if set(tms) & {p + k for p in rpc for k in range(PORT_STRIDE)}:
        raise SimulatorError(f"Traffic Manager ports {tms} overlap the CARLA server ports {rpc} (each server "
                             f"uses its port and the next two); choose another --tm-port")
    return [ServerAddress(host, p, q) for p, q in zip(rpc, tms)]


CONNECTION_WORDS = ("time-out", "timeout", "timed out", "connection", "rpc", "end of file", "broken pipe",
                    "connection refused", "connection reset")


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the client's way of saying the server stopped answering (rpclib / asio messages)."""
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(word in text for word in CONNECTION_WORDS)


def connect(address: ServerAddress, timeout_s: float = DEFAULT_TIMEOUT_S):
    """(client, server version tuple) of a running server; SimulatorError naming host, port and the fix."""
    carla = carla_module()
    client = carla.Client(address.host, address.port)
    client.set_timeout(float(timeout_s))
    try:
        version_text = client.get_server_version()
    except RuntimeError as exc:
        raise ServerUnreachable(f"no CARLA server answers at {address.host}:{address.port} within {timeout_s:g} s "
                             f"({exc}); {START_HINT.format(port=address.port)}") from None
    return client, parse_version(version_text)


def wait_for_server(address: ServerAddress, deadline_s: float, poll_s: float = 2.0) -> tuple[int, int, int] | None:
    """Poll until a server at ``address`` gives its version and a world; its version, or None at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            client, version = connect(address, timeout_s=max(1.0, min(5.0, end - time.monotonic())))
            client.get_world()
            return version
        except (SimulatorError, RuntimeError):
            pass
        if time.monotonic() >= end:
            return None
        time.sleep(min(poll_s, max(0.0, end - time.monotonic())))
