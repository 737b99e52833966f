"""``sptrain carla start|stop|status``: run CARLA servers off-screen and stop the ones we started.

The launcher finds ``CarlaUE4`` (0.9.x) or ``CarlaUnreal`` (0.10.x) in ``CARLA_ROOT`` (or ``--carla-root``) or one
folder down (the 0.9.x Windows zips unpack into ``WindowsNoEditor/``, 0.10.0 into ``Carla-0.10.0-Win64-Shipping/`` or
``Carla-0.10.0-Linux-Shipping/``), starts it with ``-RenderOffScreen -carla-rpc-port=P -nosound -quality-level=Q``,
and waits until a client gets the server's version and a world (180 s, or ``--timeout`` /
``SPTRAIN_CARLA_START_TIMEOUT_S``). Each server it starts is recorded in the state folder
(``<cache>/sunnypilot-training/carla/carla-<port>.json`` with its process id and log file); ``stop`` ends only
those. A server already answering on a port is used as it is and never stopped by us.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ...errors import ConfigError, SimulatorError
from ...fileio import atomic_write_text, pid_alive
from .client import ServerAddress, rpc_ports, wait_for_server
from .versions import UE4, UE5

QUALITIES = ("Low", "Epic")
DEFAULT_START_TIMEOUT_S = 180.0
START_TIMEOUT_ENV = "SPTRAIN_CARLA_START_TIMEOUT_S"  # raises the default, e.g. for a first UE5 start (shaders)
STATE_DIR_ENV = "SPTRAIN_CARLA_STATE_DIR"
STOP_WAIT_S = 15.0


def start_timeout_s(explicit: float | None = None) -> float:
    """Seconds to wait for a started server: ``explicit`` (--timeout), else SPTRAIN_CARLA_START_TIMEOUT_S, else 180."""
    if explicit is not None:
        value, source = explicit, "--timeout"
    elif os.environ.get(START_TIMEOUT_ENV):
        text, source = os.environ[START_TIMEOUT_ENV], START_TIMEOUT_ENV
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{START_TIMEOUT_ENV}={text!r} is not a number of seconds; set it to e.g. 600 or "
                              f"remove it (default {DEFAULT_START_TIMEOUT_S:g} s)") from None
    else:
        return DEFAULT_START_TIMEOUT_S
    if not value > 0:
        raise ConfigError(f"{source} {value:g}: expected a positive number of seconds (e.g. 600 for a first UE5 start)")
    return value


def default_state_dir() -> Path:
    if STATE_DIR_ENV in os.environ:
        return Path(os.environ[STATE_DIR_ENV])
    base = os.environ.get("LOCALAPPDATA") if sys.platform == "win32" else os.environ.get("XDG_CACHE_HOME")
    return Path(base or Path.home() / ".cache") / "sunnypilot-training" / "carla"


def carla_root(explicit: str | None) -> Path:
    value = explicit or os.environ.get("CARLA_ROOT")
    if not value:
        raise ConfigError("no CARLA folder: pass --carla-root DIR (PowerShell: -CarlaRoot DIR) or set CARLA_ROOT to "
                          "the folder you unpacked CARLA into (windows/setup_env.ps1 -CarlaRoot sets it for you)")
    root = Path(value).expanduser()
    if not root.is_dir():
        raise ConfigError(f"CARLA folder {root} does not exist; expected the unpacked CARLA release "
                          f"(set CARLA_ROOT or --carla-root)")
    return root


def executable_names(platform: str = sys.platform) -> list[str]:
    """The server launchers' file names on ``platform``: CarlaUE4.exe, CarlaUnreal.exe (Windows) or .sh (Linux)."""
    suffix = ".exe" if platform == "win32" else ".sh"
    return [name + suffix for name in UE4.executables + UE5.executables]


def find_executable(root: Path, platform: str = sys.platform) -> Path:
    """The server launcher in ``root`` or in one of its folders (how the release archives unpack: 0.9.x Windows
    zips into WindowsNoEditor/, 0.10.0 into Carla-0.10.0-Win64-Shipping/ or Carla-0.10.0-Linux-Shipping/).

    SimulatorError naming what was looked for when there is none, or the candidates when several folders hold one.
    """
    names = executable_names(platform)
    for name in names:
        if (root / name).is_file():
            return root / name
    below = sorted(folder / name for folder in _folders(root) for name in names if (folder / name).is_file())
    if len(below) == 1:
        return below[0]
    if below:
        raise SimulatorError(f"{root} holds several CARLA servers ({', '.join(str(p) for p in below)}); pass the "
                             f"folder of the one to use as --carla-root / CARLA_ROOT")
    raise SimulatorError(f"no CARLA server in {root} or one folder down: looked for {', '.join(names)}; point "
                         f"CARLA_ROOT or --carla-root at the folder you unpacked the CARLA 0.9.16 (or 0.9.15, "
                         f"0.10.0) release into")


def _folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return []


@dataclass
class ServerRecord:
    pid: int
    port: int
    executable: str
    log: str
    started_at: float
    token: str = ""  # what identifies the process beyond its id (ids are reused): see _start_token

    def path(self, state_dir: Path) -> Path:
        return state_dir / f"carla-{self.port}.json"


def _save(record: ServerRecord, state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record.path(state_dir), json.dumps(asdict(record), indent=1))


def records(state_dir: Path) -> list[ServerRecord]:
    out = []
    for path in sorted(state_dir.glob("carla-*.json")):
        try:
            out.append(ServerRecord(**json.loads(path.read_text(encoding="utf-8"))))
        except (ValueError, TypeError) as exc:
            print(f"warning: ignoring unreadable launcher record {path} ({exc}); delete it", file=sys.stderr)
    return out


def _start_token(pid: int) -> str:
    """Linux: the process's start time (clock ticks since boot); Windows: its image name; else ''."""
    if sys.platform == "win32":
        out = subprocess.run(["tasklist", "/FI", f"PID eq {pid}", "/FO", "CSV", "/NH"], capture_output=True,
                             text=True)
        first = out.stdout.strip().splitlines()[:1]
        return first[0].split(",")[0].strip('"') if first and first[0].startswith('"') else ""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]  # field 22: starttime
    except (OSError, IndexError):
        return ""


def server_running(record: ServerRecord) -> bool:
    """Whether the server of a record still runs. On Linux that is its process group: CarlaUE4.sh may have
    exited while the Unreal binary it started runs on. A recorded id now used by another process is not ours."""
    leader = pid_alive(record.pid, reap=True)
    if leader and record.token and _start_token(record.pid) != record.token:
        return False
    if sys.platform == "win32":
        return leader
    return _group_alive(record.pid)


def _group_alive(pgid: int) -> bool:
    """Whether a process group has a member that is not a zombie (killed members stay zombies until their
    parent, often init, reaps them)."""
    proc = Path("/proc")
    if proc.is_dir():
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_tree(record: ServerRecord) -> None:
    """End a server and its children (CarlaUE4 starts a shipping binary as a child); SIGKILL after STOP_WAIT_S."""
    if sys.platform == "win32":
        subprocess.run(["taskkill", "/PID", str(record.pid), "/T", "/F"], capture_output=True)
        return
    try:
        os.killpg(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline and server_running(record):
        time.sleep(0.2)
    if server_running(record):
        try:
            os.killpg(record.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_WAIT_S  # SIGKILL is delivered asynchronously: wait until it took
        while time.monotonic() < deadline and server_running(record):
            time.sleep(0.05)


def _spawn(executable: Path, port: int, quality: str, log_path: Path) -> subprocess.Popen:
    cmd = [str(executable), "-RenderOffScreen", f"-carla-rpc-port={port}", "-nosound", f"-quality-level={quality}"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        if sys.platform == "win32":
            flags = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "DETACHED_PROCESS", 0)
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, creationflags=flags,
                                    cwd=str(executable.parent))
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=str(executable.parent))


def start(root: str | None, host: str, port: int, workers: int = 1, quality: str = "Low",
          timeout_s: float | None = None, state_dir: Path | None = None) -> tuple[list[str], list[int]]:
    """Start the servers of ``workers`` collectors (ports port, port+3, ...); ``timeout_s``: see start_timeout_s.

    Returns lines describing what happened and the ports of the servers started now (the ones to stop later).
    """
    if quality not in QUALITIES:
        raise ConfigError(f"--quality {quality!r}; expected one of {', '.join(QUALITIES)}")
    timeout_s = start_timeout_s(timeout_s)
    state_dir = state_dir or default_state_dir()
    addresses = [ServerAddress(host, p) for p in rpc_ports(port, workers)]
    lines, started = [], []
    executable = None
    for address in addresses:
        version = wait_for_server(address, 0.0)
        if version is not None:
            lines.append(f"{address}: CARLA {'.'.join(map(str, version))} already answers (left as it is)")
            continue
        if host not in ("localhost", "127.0.0.1"):
            raise SimulatorError(f"no CARLA server answers at {address} and the launcher only starts local "
                                 f"servers; start it on {host} yourself")
        executable = executable or find_executable(carla_root(root))
        log_path = state_dir / f"carla-{address.port}.log"
        proc = _spawn(executable, address.port, quality, log_path)
        record = ServerRecord(proc.pid, address.port, str(executable), str(log_path), time.time(),
                              _start_token(proc.pid))
        _save(record, state_dir)
        started.append((address, record, proc))
    try:
        for address, record, proc in started:
            _wait_started(address, record, proc, timeout_s, state_dir)
            lines.append(f"{address}: started {record.executable} (pid {record.pid}, log {record.log})")
    except BaseException:  # one failed: stop every server this call started, not only that one
        for _, record, _ in started:
            if server_running(record):
                _kill_tree(record)
            record.path(state_dir).unlink(missing_ok=True)
        raise
    return lines, [address.port for address, _, _ in started]


def _wait_started(address: ServerAddress, record: ServerRecord, proc: subprocess.Popen, timeout_s: float,
                  state_dir: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            record.path(state_dir).unlink(missing_ok=True)
            raise SimulatorError(f"CARLA on port {address.port} exited with code {proc.returncode} while starting; "
                                 f"see its log {record.log}")
        if wait_for_server(address, 0.0) is not None:
            return
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    _kill_tree(record)
    record.path(state_dir).unlink(missing_ok=True)
    raise SimulatorError(f"CARLA on port {address.port} did not answer within {timeout_s:g} s and was stopped; "
                         f"see its log {record.log} (a first start compiles shaders: try a longer --timeout, or set "
                         f"{START_TIMEOUT_ENV}, e.g. to 900)")


def stop(port: int | None = None, state_dir: Path | None = None) -> list[str]:
    """Stop the servers this launcher started (all, or the one on ``port``)."""
    state_dir = state_dir or default_state_dir()
    chosen = [r for r in records(state_dir) if port is None or r.port == port]
    if not chosen:
        where = f"on port {port}" if port is not None else "at all"
        return [f"no CARLA server started by sptrain is recorded {where} (state folder {state_dir})"]
    lines = []
    for record in chosen:
        alive = server_running(record)
        if alive:
            _kill_tree(record)
        record.path(state_dir).unlink(missing_ok=True)
        lines.append(f"port {record.port}: " + (f"stopped pid {record.pid}" if alive else
                                                 f"pid {record.pid} had already exited (record removed)"))
    return lines


def status(host: str, port: int, workers: int = 1, state_dir: Path | None = None) -> list[str]:
    state_dir = state_dir or default_state_dir()
    mine = {r.port: r for r in records(state_dir)}
    lines = []
    ports = set(rpc_ports(port, workers)) | set(mine)
    for p in sorted(ports):
        version = wait_for_server(ServerAddress(host, p), 0.0)
        answer = f"CARLA {'.'.join(map(str, version))} answers" if version else "no answer"
        owner = ""
        if p in mine:
            r = mine[p]
            state = "running" if server_running(r) else "exited"
            owner = f"; started by sptrain (pid {r.pid}, {state}, log {r.log})"
        lines.append(f"{host}:{p}: {answer}{owner}")
    return lines
