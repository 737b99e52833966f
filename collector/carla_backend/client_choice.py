"""Which CARLA Python client fits a CARLA folder and this Python: the wheel shipped in the folder, the package index's,
or none - then a ConfigError that says what was found and what to do.

The client must be the server's own release (a 0.9.16 client with a 0.9.16 server). The folder's release is read from
the client files it ships (``PythonAPI/carla/dist/carla-<version>-...``), else from the folder's name
(``CARLA_0.9.16``, ``Carla-0.10.0-Win64-Shipping``); its family (UE4 / UE5) from the launcher it holds.
Standard library only: ``windows/setup_env.ps1`` asks ``sptrain doctor --carla-root DIR`` before numpy and torch are
installed.
"""

from __future__ import annotations

import platform as platform_module
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from .launcher import find_executable
from .versions import ServerFamily, family_of, family_of_executable

# The CARLA clients on PyPI per release: platform -> CPython tags. Checked with
# `pip download --no-deps --only-binary=:all: --python-version X.Y --platform P carla==V` for X.Y 3.7 ... 3.13 and P
# win_amd64, manylinux_2_27_x86_64, manylinux_2_31_x86_64: 0.9.15 has cp37-cp310 (win_amd64, manylinux_2_27);
# 0.9.16 has cp310-cp312 (win_amd64, manylinux_2_31); no 0.10.x is on PyPI.
PYPI_CLIENTS: dict[tuple[int, int, int], dict[str, tuple[str, ...]]] = {
    (0, 9, 15): {"win_amd64": ("cp37", "cp38", "cp39", "cp310"), "linux_x86_64": ("cp37", "cp38", "cp39", "cp310")},
    (0, 9, 16): {"win_amd64": ("cp310", "cp311", "cp312"), "linux_x86_64": ("cp310", "cp311", "cp312")},
}
TESTED_RELEASE = (0, 9, 16)  # the release whose client PyPI has for the Python this toolkit needs (3.11)
DIST_DIR = Path("PythonAPI") / "carla" / "dist"
_VERSION_IN_NAME = re.compile(r"(?<![\d.])(0\.\d{1,2}\.\d{1,2})(?![\d])")


@dataclass(frozen=True)
class ClientFile:
    """A client file of a CARLA release: carla-<version>-<python>-<abi>-<platform>.whl, or an .egg (not installable
    by pip, but it names the release)."""

    path: Path
    version: tuple[int, int, int]
    python_tags: tuple[str, ...]  # ('cp311',); an egg's ('py3.7',)
    platform_tag: str

    @property
    def is_wheel(self) -> bool:
        return self.path.suffix == ".whl"


def parse_client_file(path: Path) -> ClientFile | None:
    """carla-0.9.16-cp311-cp311-win_amd64.whl / carla-0.9.15-py3.7-win-amd64.egg -> ClientFile; None otherwise."""
    parts = path.name[: -len(path.suffix)].split("-") if path.suffix in (".whl", ".egg") else []
    if len(parts) < 3 or parts[0] != "carla":
        return None
    found = _VERSION_IN_NAME.fullmatch(parts[1])
    if found is None:
        return None
    version = tuple(int(v) for v in found.group(1).split("."))
    if path.suffix == ".whl" and len(parts) in (5, 6):  # an optional build tag sits before the python tag
        return ClientFile(path, version, tuple(parts[-3].split(".")), parts[-1])  # type: ignore[arg-type]
    if path.suffix == ".egg" and len(parts) >= 3:
        return ClientFile(path, version, (parts[2],), "-".join(parts[3:]))  # type: ignore[arg-type]
    return None


def python_tag(version: tuple[int, int] = sys.version_info[:2]) -> str:
    return f"cp{version[0]}{version[1]}"


def platform_key(system: str = sys.platform, machine: str | None = None) -> str | None:
    """'win_amd64' or 'linux_x86_64' (the platforms CARLA publishes clients for), else None."""
    machine = (machine or platform_module.machine()).lower()
    if machine not in ("amd64", "x86_64"):
        return None
    return {"win32": "win_amd64", "linux": "linux_x86_64"}.get(system)


def _fits_platform(tag: str, key: str | None) -> bool:
    if key == "linux_x86_64":
        return tag == key or (tag.startswith("manylinux") and tag.endswith("_x86_64"))
    return key is not None and tag == key


@dataclass(frozen=True)
class CarlaFolder:
    """An unpacked CARLA release: where its launcher is, its family and (when it can be told) its release."""

    given: Path  # the folder the user named
    root: Path  # the folder holding the launcher and PythonAPI/ (given, or one folder down)
    executable: Path
    family: ServerFamily
    version: tuple[int, int, int] | None
    shipped: tuple[ClientFile, ...]

    @property
    def dist(self) -> Path:
        return self.root / DIST_DIR


def inspect_folder(given: Path, platform: str = sys.platform) -> CarlaFolder:
    """Find the launcher in ``given`` or one folder down and read the release; SimulatorError without a launcher."""
    executable = find_executable(given, platform)
    root = executable.parent
    dist = root / DIST_DIR
    files = sorted(dist.iterdir()) if dist.is_dir() else []
    shipped = tuple(f for f in (parse_client_file(p) for p in files) if f is not None)
    return CarlaFolder(given, root, executable, family_of_executable(executable.name), _release(shipped, root, given),
                       shipped)


def _release(shipped: tuple[ClientFile, ...], *folders: Path) -> tuple[int, int, int] | None:
    """The release the client files name (when they agree), else the one in a folder's name."""
    named = {f.version for f in shipped}
    if len(named) == 1:
        return named.pop()
    for folder in folders:
        for part in (folder.name, folder.parent.name):  # the folder, or the one it was unpacked into
            found = _VERSION_IN_NAME.search(part)
            if found and (not named or tuple(int(v) for v in found.group(1).split(".")) in named):
                return tuple(int(v) for v in found.group(1).split("."))  # type: ignore[return-value]
    return None


@dataclass(frozen=True)
class ClientChoice:
    folder: CarlaFolder
    version: tuple[int, int, int]
    requirement: str  # what pip installs: the shipped wheel's path, or carla==X.Y.Z from the package index
    source: str  # 'shipped' or 'pypi'

    def as_dict(self) -> dict[str, str]:
        return {"carla_root": str(self.folder.root), "executable": str(self.folder.executable),
                "family": self.folder.family.name, "engine": self.folder.family.engine,
                "version": _dotted(self.version), "client": self.requirement, "source": self.source}


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def choose_client(given: Path, python: tuple[int, int] = sys.version_info[:2], platform: str = sys.platform,
                  machine: str | None = None) -> ClientChoice:
    """The client to install for the CARLA folder ``given`` on this Python; ConfigError with the fix when none fits."""
    folder = inspect_folder(given, platform)
    tag, key = python_tag(python), platform_key(platform, machine)
    if folder.version is None:
        raise ConfigError(f"cannot tell which CARLA release {folder.root} is: {folder.dist} holds no carla-*.whl or "
                          f".egg and no folder name carries a version; unpack the release into a folder named after "
                          f"it (e.g. C:\\CARLA_0.9.16) or put its client wheel into {folder.dist}")
    if family_of(folder.version) is not folder.family:
        raise ConfigError(f"{folder.executable.name} is a {folder.family.engine} launcher but {folder.root} names "
                          f"CARLA {_dotted(folder.version)} ({family_of(folder.version).engine}); point at one "
                          f"unpacked release")
    for client in folder.shipped:
        if (client.is_wheel and client.version == folder.version and tag in client.python_tags
                and _fits_platform(client.platform_tag, key)):
            return ClientChoice(folder, folder.version, str(client.path), "shipped")
    if key is not None and tag in PYPI_CLIENTS.get(folder.version, {}).get(key, ()):
        return ClientChoice(folder, folder.version, f"carla=={_dotted(folder.version)}", "pypi")
    raise ConfigError(_no_client_message(folder, python, key))


def _no_client_message(folder: CarlaFolder, python: tuple[int, int], key: str | None) -> str:
    version, shown = folder.version, f"{python[0]}.{python[1]}"
    assert version is not None
    wheels = [c.path.name for c in folder.shipped if c.is_wheel]
    pypi = PYPI_CLIENTS.get(version, {}).get(key or "", ())
    found = (f"CARLA {_dotted(version)} ({folder.family.engine}) at {folder.root} has no Python client for Python "
             f"{shown} on {key or sys.platform}: {folder.dist} holds {', '.join(wheels) or 'no wheel'}, and PyPI has "
             + (f"carla {_dotted(version)} for {', '.join(pypi)} only" if pypi else f"no carla {_dotted(version)}"))
    build = (f"build the {_dotted(version)} client for Python {shown} from CARLA's sources (`make PythonAPI`) and put "
             f"the carla-{_dotted(version)}-{python_tag(python)}-*.whl into {folder.dist}, then run setup again")
    tested = (f"use CARLA {_dotted(TESTED_RELEASE)} instead (its client is on PyPI for Python 3.10-3.12): unpack "
              f"CARLA_{_dotted(TESTED_RELEASE)} and pass that folder")
    if version == TESTED_RELEASE:
        return f"{found}. Use Python 3.11 or 3.12 (windows/setup_env.ps1 makes a 3.11 environment), or {build}"
    return (f"{found}; this toolkit needs Python 3.11 or newer (zarr 3), so no environment holds both. Either "
            f"{tested}, or {build}")
