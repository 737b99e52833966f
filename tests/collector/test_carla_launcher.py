"""`sptrain carla start|stop|status` against a stand-in server executable (a real process, no CARLA)."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from sunnypilot_training.collector.carla_backend import launcher
from sunnypilot_training.errors import ConfigError, SimulatorError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in server is a shell script")


def _fake_root(tmp_path: Path, name: str = "CarlaUE4.sh", ready: bool = True, exit_code: int | None = None,
               stubborn_child: bool = False, folder: str = "CARLA_0.9.16") -> Path:
    """A stand-in CARLA folder (``tmp_path/folder``). ``stubborn_child``: like CarlaUE4.sh, the script runs the
    server as a child (not exec), and that child ignores SIGTERM."""
    root = tmp_path / folder
    root.mkdir(parents=True)
    body = f"exit {exit_code}" if exit_code is not None else "exec sleep 300"
    if stubborn_child:
        body = "sh -c 'trap \"\" TERM; sleep 300; sleep 1' & wait"
    script = root / name
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        port=$(echo "$@" | sed -n 's/.*-carla-rpc-port=\\([0-9]*\\).*/\\1/p')
        echo "$@" > "{tmp_path}/args-$port"
        echo "CARLA stand-in starting on $port"
        {'touch "' + str(tmp_path) + '/ready-$port"' if ready else ':'}
        {body}
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return root


@pytest.fixture
def probe(tmp_path: Path, monkeypatch):
    """The launcher's "does a client get a version and a world" probe, answered by the stand-in's ready file."""
    def wait_for_server(address, deadline_s, poll_s=2.0):
        return (0, 9, 16) if (tmp_path / f"ready-{address.port}").exists() else None

    monkeypatch.setattr(launcher, "wait_for_server", wait_for_server)
    monkeypatch.setattr(launcher, "STOP_WAIT_S", 1.0)


def test_start_status_stop_round_trip(tmp_path: Path, probe) -> None:
    root, state = _fake_root(tmp_path), tmp_path / "state"
    lines, started = launcher.start(str(root), "localhost", 2100, workers=2, quality="Epic", timeout_s=20,
                                    state_dir=state)
    assert started == [2100, 2103] and len(lines) == 2
    args = (tmp_path / "args-2100").read_text().split()
    assert args == ["-RenderOffScreen", "-carla-rpc-port=2100", "-nosound", "-quality-level=Epic"]
    records = launcher.records(state)
    assert [r.port for r in records] == [2100, 2103] and all(launcher.pid_alive(r.pid, reap=True) for r in records)
    status = launcher.status("localhost", 2100, 2, state_dir=state)
    assert all("CARLA 0.9.16 answers" in line and "running" in line for line in status)
    # already answering: left alone, not recorded again
    lines, started = launcher.start(str(root), "localhost", 2100, workers=1, state_dir=state)
    assert started == [] and "already answers" in lines[0]
    assert all(r.token for r in records)  # start times recorded against pid reuse
    assert "stopped pid" in launcher.stop(2103, state)[0]
    assert not launcher.server_running(records[1]) and launcher.server_running(records[0])
    launcher.stop(None, state)
    assert not launcher.server_running(records[0]) and launcher.records(state) == []
    assert "no CARLA server started by sptrain" in launcher.stop(None, state)[0]


def test_stop_ends_the_whole_process_group_even_when_the_wrapper_exits_first(tmp_path: Path, probe) -> None:
    root, state = _fake_root(tmp_path, stubborn_child=True), tmp_path / "state"
    launcher.start(str(root), "localhost", 2500, timeout_s=20, state_dir=state)
    [record] = launcher.records(state)
    assert "stopped pid" in launcher.stop(2500, state)[0]  # SIGTERM ends the wrapper; the child needs SIGKILL
    assert not launcher._group_alive(record.pid) and not launcher.server_running(record)


def test_a_recorded_pid_now_used_by_another_process_is_not_killed(tmp_path: Path, probe) -> None:
    state = tmp_path / "state"
    other = launcher.ServerRecord(os.getpid(), 2600, "CarlaUE4.sh", "log", 0.0, token="1")  # this test process
    launcher._save(other, state)
    assert not launcher.server_running(other)
    assert "had already exited" in launcher.stop(2600, state)[0]  # and we are still here


def test_when_one_of_several_servers_fails_to_start_all_are_stopped(tmp_path: Path, probe) -> None:
    root, state = _fake_root(tmp_path), tmp_path / "state"
    script = root / "CarlaUE4.sh"  # the server on the second port never answers
    script.write_text(script.read_text().replace('touch "', '[ "$port" = 2703 ] || touch "'))
    with pytest.raises(SimulatorError, match="port 2703 did not answer"):
        launcher.start(str(root), "localhost", 2700, workers=2, timeout_s=3.0, state_dir=state)
    first = (tmp_path / "args-2700").exists()
    assert first and launcher.records(state) == []  # the first server, which did start, was stopped too


def test_a_server_that_never_answers_is_stopped_with_its_log_named(tmp_path: Path, probe) -> None:
    root, state = _fake_root(tmp_path, ready=False), tmp_path / "state"
    with pytest.raises(SimulatorError, match=r"did not answer within 1 s and was stopped; see its log .*2200\.log"):
        launcher.start(str(root), "localhost", 2200, timeout_s=1.0, state_dir=state)
    assert launcher.records(state) == []
    assert "CARLA stand-in starting on 2200" in (state / "carla-2200.log").read_text()


def test_a_server_that_exits_while_starting_is_reported(tmp_path: Path, probe) -> None:
    root = _fake_root(tmp_path, name="CarlaUnreal.sh", ready=False, exit_code=3)
    with pytest.raises(SimulatorError, match="exited with code 3 while starting"):
        launcher.start(str(root), "localhost", 2300, timeout_s=20, state_dir=tmp_path / "state")


def test_missing_carla_folder_or_executable(tmp_path: Path, monkeypatch, probe) -> None:
    monkeypatch.delenv("CARLA_ROOT", raising=False)
    with pytest.raises(ConfigError, match=r"--carla-root DIR \(PowerShell: -CarlaRoot DIR\) or set CARLA_ROOT"):
        launcher.start(None, "localhost", 2400, state_dir=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        launcher.start(str(tmp_path / "nope"), "localhost", 2400, state_dir=tmp_path)
    with pytest.raises(SimulatorError, match="looked for CarlaUE4.sh, CarlaUnreal.sh"):
        launcher.start(str(tmp_path), "localhost", 2400, state_dir=tmp_path)
    monkeypatch.setenv("CARLA_ROOT", os.fspath(_fake_root(tmp_path)))
    _, started = launcher.start(None, "localhost", 2400, timeout_s=20, state_dir=tmp_path / "s")
    assert started == [2400]
    launcher.stop(None, tmp_path / "s")


# --- where the launcher is: each release archive's layout, on fake trees ------------------------------------------

# (platform, folders and files below the folder the user names, the launcher expected) per release archive
LAYOUTS = {
    "0.9.16 Windows zip": ("win32", ["WindowsNoEditor/CarlaUE4.exe",
                                     "WindowsNoEditor/CarlaUE4/Binaries/Win64/CarlaUE4-Win64-Shipping.exe",
                                     "WindowsNoEditor/PythonAPI/carla/dist/carla-0.9.16-cp311-cp311-win_amd64.whl"],
                           "WindowsNoEditor/CarlaUE4.exe"),
    "0.9.15 Windows zip": ("win32", ["WindowsNoEditor/CarlaUE4.exe",
                                     "WindowsNoEditor/PythonAPI/carla/dist/carla-0.9.15-py3.7-win-amd64.egg"],
                           "WindowsNoEditor/CarlaUE4.exe"),
    "0.10.0 Windows zip": ("win32", ["Carla-0.10.0-Win64-Shipping/CarlaUnreal.exe",
                                     "Carla-0.10.0-Win64-Shipping/CarlaUnreal/Binaries/Win64/CarlaUnreal.exe"],
                           "Carla-0.10.0-Win64-Shipping/CarlaUnreal.exe"),
    "zip contents moved up": ("win32", ["CarlaUE4.exe", "CarlaUE4/Binaries/Win64/CarlaUE4-Win64-Shipping.exe"],
                              "CarlaUE4.exe"),
    "0.9.16 Linux tarball": ("linux", ["CarlaUE4.sh", "CarlaUE4/Binaries/Linux/CarlaUE4-Linux-Shipping"],
                             "CarlaUE4.sh"),
    "0.10.0 Linux tarball": ("linux", ["Carla-0.10.0-Linux-Shipping/CarlaUnreal.sh"],
                             "Carla-0.10.0-Linux-Shipping/CarlaUnreal.sh"),
}  # fmt: skip


def _tree(root: Path, files: list[str]) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_launcher_is_found_in_the_folder_or_one_down(layout: str, tmp_path: Path) -> None:
    platform, files, expected = LAYOUTS[layout]
    root = _tree(tmp_path / "CARLA", files)
    assert launcher.find_executable(root, platform) == root / expected
    assert launcher.find_executable((root / expected).parent, platform) == root / expected  # its own folder too


def test_the_other_platform_s_launcher_is_not_taken(tmp_path: Path) -> None:
    root = _tree(tmp_path / "CARLA", ["WindowsNoEditor/CarlaUE4.exe"])
    with pytest.raises(SimulatorError, match=r"no CARLA server in .* or one folder down: looked for CarlaUE4\.sh"):
        launcher.find_executable(root, "linux")


def test_two_releases_one_folder_down_are_named_not_guessed(tmp_path: Path) -> None:
    root = _tree(tmp_path / "sims", ["CARLA_0.9.16/CarlaUE4.exe", "Carla-0.10.0-Win64-Shipping/CarlaUnreal.exe"])
    with pytest.raises(SimulatorError, match="several CARLA servers") as info:
        launcher.find_executable(root, "win32")
    assert "CARLA_0.9.16" in str(info.value) and "Carla-0.10.0-Win64-Shipping" in str(info.value)


def test_two_levels_down_is_not_searched(tmp_path: Path) -> None:
    root = _tree(tmp_path / "downloads", ["CARLA_0.9.16/WindowsNoEditor/CarlaUE4.exe"])
    with pytest.raises(SimulatorError, match="one folder down"):
        launcher.find_executable(root, "win32")


def test_the_server_starts_from_the_folder_one_down(tmp_path: Path, probe) -> None:
    _fake_root(tmp_path, name="CarlaUnreal.sh", folder="CARLA_0.10.0/Carla-0.10.0-Linux-Shipping")
    lines, started = launcher.start(str(tmp_path / "CARLA_0.10.0"), "localhost", 2800, timeout_s=20,
                                    state_dir=tmp_path / "state")
    assert started == [2800] and "Carla-0.10.0-Linux-Shipping/CarlaUnreal.sh" in lines[0]
    assert (tmp_path / "args-2800").read_text().split()[1] == "-carla-rpc-port=2800"
    launcher.stop(None, tmp_path / "state")


# --- the start timeout -------------------------------------------------------------------------------------------


def test_the_start_timeout_comes_from_the_flag_the_environment_or_the_default(monkeypatch) -> None:
    monkeypatch.delenv(launcher.START_TIMEOUT_ENV, raising=False)
    assert launcher.start_timeout_s() == launcher.DEFAULT_START_TIMEOUT_S
    monkeypatch.setenv(launcher.START_TIMEOUT_ENV, "900")
    assert launcher.start_timeout_s() == 900.0
    assert launcher.start_timeout_s(30.0) == 30.0  # the flag wins
    for bad in ("ten minutes", "0", "-5"):
        monkeypatch.setenv(launcher.START_TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=launcher.START_TIMEOUT_ENV):
            launcher.start_timeout_s()
    with pytest.raises(ConfigError, match="--timeout 0"):
        launcher.start_timeout_s(0.0)


def test_the_pipeline_s_start_waits_as_long_as_the_environment_says(tmp_path: Path, probe, monkeypatch) -> None:
    root, state = _fake_root(tmp_path, ready=False), tmp_path / "state"
    monkeypatch.setenv(launcher.START_TIMEOUT_ENV, "1.5")
    with pytest.raises(SimulatorError, match=rf"did not answer within 1\.5 s.*{launcher.START_TIMEOUT_ENV}"):
        launcher.start(str(root), "localhost", 2900, state_dir=state)  # no timeout given, as the pipeline calls it
