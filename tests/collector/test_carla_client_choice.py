"""Which CARLA client a CARLA folder gets (collector/carla_backend/client_choice.py) and `sptrain doctor --carla-root`:
fake trees of each release archive, the shipped wheel before PyPI's, and a refusal that names the fix when no client
exists for this Python (CARLA 0.9.15 and 0.10.0 on Python 3.11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sunnypilot_training.collector.carla_backend import client_choice
from sunnypilot_training.collector.carla_backend.client_choice import (
    PYPI_CLIENTS,
    choose_client,
    inspect_folder,
    parse_client_file,
    platform_key,
    python_tag,
)
from sunnypilot_training.collector.carla_backend.versions import UE4, UE5, family_of
from sunnypilot_training.errors import ConfigError, SimulatorError

PY311 = (3, 11)
DIST = "PythonAPI/carla/dist"


def _tree(root: Path, files: list[str]) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


def _windows_zip(tmp_path: Path, folder: str, inner: str, launcher: str, shipped: list[str]) -> Path:
    """A Windows release unpacked into tmp_path/folder: the zip's own top folder ``inner`` ('' for none)."""
    base = f"{inner}/" if inner else ""
    return _tree(tmp_path / folder, [base + launcher] + [f"{base}{DIST}/{name}" for name in shipped])


# --- file names and versions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "tags", "platform"),
    [
        ("carla-0.9.16-cp311-cp311-win_amd64.whl", (0, 9, 16), ("cp311",), "win_amd64"),
        ("carla-0.9.15-cp37-cp37m-manylinux_2_27_x86_64.whl", (0, 9, 15), ("cp37",), "manylinux_2_27_x86_64"),
        ("carla-0.10.0-1-cp38-cp38-win_amd64.whl", (0, 10, 0), ("cp38",), "win_amd64"),  # with a build tag
        ("carla-0.9.15-py3.7-win-amd64.egg", (0, 9, 15), ("py3.7",), "win-amd64"),
    ],
)
def test_client_file_names_are_read(name, version, tags, platform) -> None:
    found = parse_client_file(Path(name))
    assert found is not None and (found.version, found.python_tags, found.platform_tag) == (version, tags, platform)
    assert found.is_wheel == name.endswith(".whl")


@pytest.mark.parametrize("name", ["carla.whl", "numpy-1.26-cp311-cp311-win_amd64.whl", "carla-latest-cp311.whl",
                                  "carla-0.9.16-cp311-cp311-win_amd64.zip", "README.txt"])
def test_other_files_are_not_clients(name: str) -> None:
    assert parse_client_file(Path(name)) is None


def test_python_and_platform_tags() -> None:
    assert python_tag((3, 11)) == "cp311" and python_tag((3, 9)) == "cp39"
    assert platform_key("win32", "AMD64") == "win_amd64" and platform_key("linux", "x86_64") == "linux_x86_64"
    assert platform_key("linux", "aarch64") is None and platform_key("darwin", "x86_64") is None


def test_the_pypi_table_holds_supported_releases_and_cpython_tags_only() -> None:
    assert PYPI_CLIENTS and all(family_of(version) is UE4 for version in PYPI_CLIENTS)  # no 0.10.x on PyPI
    for platforms in PYPI_CLIENTS.values():
        assert set(platforms) <= {"win_amd64", "linux_x86_64"}
        assert all(tag.startswith("cp3") and tag[3:].isdigit() for tags in platforms.values() for tag in tags)
    assert "cp311" not in PYPI_CLIENTS[(0, 9, 15)]["win_amd64"] and "cp311" in PYPI_CLIENTS[(0, 9, 16)]["win_amd64"]


# --- the release archives -----------------------------------------------------------------------------------------


def test_0_9_16_windows_zip_uses_its_shipped_wheel(tmp_path: Path) -> None:
    given = _windows_zip(tmp_path, "CARLA_0.9.16", "WindowsNoEditor", "CarlaUE4.exe",
                         ["carla-0.9.16-cp310-cp310-win_amd64.whl", "carla-0.9.16-cp311-cp311-win_amd64.whl"])
    choice = choose_client(given, PY311, "win32", "AMD64")
    assert choice.source == "shipped" and choice.requirement.endswith("carla-0.9.16-cp311-cp311-win_amd64.whl")
    assert choice.folder.root == given / "WindowsNoEditor" and choice.folder.family is UE4
    assert choice.as_dict() | {"client": ""} == {
        "carla_root": str(given / "WindowsNoEditor"), "executable": str(given / "WindowsNoEditor" / "CarlaUE4.exe"),
        "family": "ue4", "engine": "Unreal Engine 4", "version": "0.9.16", "client": "", "source": "shipped"}


def test_0_9_16_without_a_shipped_wheel_for_this_python_uses_pypi(tmp_path: Path) -> None:
    given = _windows_zip(tmp_path, "CARLA_0.9.16", "WindowsNoEditor", "CarlaUE4.exe",
                         ["carla-0.9.16-cp312-cp312-win_amd64.whl",
                          "carla-0.9.16-cp311-cp311-manylinux_2_31_x86_64.whl"])
    choice = choose_client(given, PY311, "win32", "AMD64")
    assert (choice.source, choice.requirement) == ("pypi", "carla==0.9.16")


def test_the_release_comes_from_the_folder_name_when_nothing_is_shipped(tmp_path: Path) -> None:
    given = _tree(tmp_path / "CARLA_0.9.16", ["CarlaUE4.exe"])
    assert inspect_folder(given, "win32").version == (0, 9, 16)
    assert choose_client(given, PY311, "win32", "AMD64").requirement == "carla==0.9.16"


def test_0_9_15_on_python_3_11_is_refused_with_the_fix(tmp_path: Path) -> None:
    given = _windows_zip(tmp_path, "CARLA_0.9.15", "WindowsNoEditor", "CarlaUE4.exe",
                         ["carla-0.9.15-cp37-cp37m-win_amd64.whl", "carla-0.9.15-py3.7-win-amd64.egg"])
    with pytest.raises(ConfigError) as info:
        choose_client(given, PY311, "win32", "AMD64")
    text = str(info.value)
    for needle in ("CARLA 0.9.15", "Python 3.11", "carla-0.9.15-cp37-cp37m-win_amd64.whl", "cp37, cp38, cp39, cp310",
                   "zarr 3", "use CARLA 0.9.16", "make PythonAPI", "carla-0.9.15-cp311-*.whl",
                   str(given / "WindowsNoEditor" / "PythonAPI" / "carla" / "dist")):
        assert needle in text, needle
    # on a Python its PyPI client exists (not this toolkit's, but the table decides, not a rule about 0.9.15)
    assert choose_client(given, (3, 10), "win32", "AMD64").requirement == "carla==0.9.15"


def test_0_9_15_with_a_client_built_for_python_3_11_is_accepted(tmp_path: Path) -> None:
    given = _windows_zip(tmp_path, "CARLA_0.9.15", "WindowsNoEditor", "CarlaUE4.exe",
                         ["carla-0.9.15-cp37-cp37m-win_amd64.whl", "carla-0.9.15-cp311-cp311-win_amd64.whl"])
    assert choose_client(given, PY311, "win32", "AMD64").source == "shipped"


def test_0_10_0_windows_zip_with_a_cp38_wheel_only_is_refused(tmp_path: Path) -> None:
    given = _windows_zip(tmp_path, "CARLA_0.10.0", "Carla-0.10.0-Win64-Shipping", "CarlaUnreal.exe",
                         ["carla-0.10.0-cp38-cp38-win_amd64.whl"])
    assert inspect_folder(given, "win32").family is UE5
    with pytest.raises(ConfigError, match=r"no carla 0\.10\.0.*use CARLA 0\.9\.16.*carla-0\.10\.0-cp311-\*\.whl"):
        choose_client(given, PY311, "win32", "AMD64")


def test_0_10_0_with_a_cp311_wheel_is_accepted(tmp_path: Path) -> None:
    given = _windows_zip(tmp_path, "Downloads", "Carla-0.10.0-Win64-Shipping", "CarlaUnreal.exe",
                         ["carla-0.10.0-cp311-cp311-win_amd64.whl"])
    choice = choose_client(given, PY311, "win32", "AMD64")
    assert (choice.version, choice.source, choice.folder.family) == ((0, 10, 0), "shipped", UE5)


def test_linux_tarball_takes_a_manylinux_wheel(tmp_path: Path) -> None:
    given = _tree(tmp_path / "carla", ["CarlaUE4.sh", f"{DIST}/carla-0.9.16-cp311-cp311-manylinux_2_31_x86_64.whl",
                                       f"{DIST}/carla-0.9.16-cp311-cp311-win_amd64.whl"])
    choice = choose_client(given, PY311, "linux", "x86_64")
    assert choice.source == "shipped" and "manylinux_2_31_x86_64" in choice.requirement


def test_a_release_that_cannot_be_told_is_refused(tmp_path: Path) -> None:
    given = _tree(tmp_path / "sim", ["WindowsNoEditor/CarlaUE4.exe"])
    with pytest.raises(ConfigError, match=r"cannot tell which CARLA release .*\(e\.g\. C:\\CARLA_0\.9\.16\)"):
        choose_client(given, PY311, "win32", "AMD64")


def test_a_launcher_of_the_other_family_is_refused(tmp_path: Path) -> None:
    given = _tree(tmp_path / "CARLA_0.9.16", ["CarlaUnreal.exe"])
    with pytest.raises(ConfigError, match="Unreal Engine 5 launcher but .* names CARLA 0.9.16"):
        choose_client(given, PY311, "win32", "AMD64")


def test_an_unsupported_release_is_refused(tmp_path: Path) -> None:
    given = _tree(tmp_path / "CARLA_0.9.14", ["CarlaUE4.exe"])
    with pytest.raises(SimulatorError, match="0.9.14 is not supported"):
        choose_client(given, PY311, "win32", "AMD64")


def test_a_folder_without_a_launcher_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="no CARLA server in"):
        choose_client(_tree(tmp_path / "CARLA_0.9.16", ["README"]), PY311, "win32", "AMD64")


# --- sptrain doctor --carla-root ----------------------------------------------------------------------------------


def _blocked_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which numpy and torch do not import (as before setup_env.ps1 installs them)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys

        class _NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in ("numpy", "torch", "zarr"):
                    raise ModuleNotFoundError(f"No module named {name!r} (blocked: not installed yet)")
                return None

        sys.meta_path.insert(0, _NotInstalled())
    """))
    return {**os.environ, "PYTHONPATH": str(site)}


def _doctor(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sunnypilot_training.cli.main", "doctor", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


@pytest.mark.skipif(python_tag() not in PYPI_CLIENTS[(0, 9, 16)].get(client_choice.platform_key() or "", ()),
                    reason="PyPI has no CARLA 0.9.16 client for this Python and platform")
def test_doctor_prints_one_json_line_before_numpy_exists(tmp_path: Path) -> None:
    launcher_name = "CarlaUE4.exe" if sys.platform == "win32" else "CarlaUE4.sh"
    given = _tree(tmp_path / "CARLA_0.9.16", [f"WindowsNoEditor/{launcher_name}"])
    env = _blocked_env(tmp_path)
    assert subprocess.run([sys.executable, "-c", "import numpy"], env=env, capture_output=True).returncode != 0
    result = _doctor(["--carla-root", str(given)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    answer = json.loads(line)
    assert answer["carla_root"] == str((given / "WindowsNoEditor").resolve()) and answer["family"] == "ue4"
    assert answer["client"] == "carla==0.9.16" and answer["source"] == "pypi"


def test_doctor_refuses_0_9_15_in_one_line_with_exit_2(tmp_path: Path) -> None:
    launcher_name = "CarlaUE4.exe" if sys.platform == "win32" else "CarlaUE4.sh"
    given = _tree(tmp_path / "CARLA_0.9.15", [f"WindowsNoEditor/{launcher_name}"])
    result = _doctor(["--carla-root", str(given)], _blocked_env(tmp_path), tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "use CARLA 0.9.16" in result.stderr
