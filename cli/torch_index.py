"""Which PyTorch wheel index fits a GPU: ``sptrain doctor --torch-index [--compute-capability X.Y | --cpu]``.

PyTorch publishes one wheel build per CUDA toolkit (``https://download.pytorch.org/whl/<tag>``) and each build carries
kernels for a fixed list of GPU architectures; a build without kernels for a card fails at the first CUDA call with
"no kernel image is available". The mapping from compute capability to build is :data:`WHEEL_BUILDS`, a table.

Also here, for installers: the NVIDIA driver gate (a CUDA 13 build needs driver R580+, a CUDA 12 build R525+), the
torch requirement of this package (its bound keeps the table honest), whether the installed torch is the chosen
build (pip keeps an installed build whose local label sorts higher: ``+cu130`` > ``+cu126`` > ``+cpu``) and the
check after installing (``torch.version.cuda``).

Stdlib only (plus our error classes): ``windows/setup_env.ps1`` asks this before torch and numpy are installed.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from ..errors import ConfigError

INDEX_BASE_URL = "https://download.pytorch.org/whl"
CPU_TAG = "cpu"
PROJECT = "sunnypilot-training"
NVIDIA_SMI = "nvidia-smi"
NVIDIA_SMI_ARGS = ("--query-gpu=compute_cap,driver_version", "--format=csv,noheader")
NVIDIA_SMI_TIMEOUT_S = 30.0
_CC_PATTERN = re.compile(r"(\d{1,2})\.(\d{1,2})")
_DRIVER_PATTERN = re.compile(r"(\d{3,4})\.(\d{1,3})(?:\.(\d{1,3}))?")
_TAG_PATTERN = re.compile(r"cpu|cu(\d{2})(\d)")

ComputeCapability = tuple[int, int]


@dataclass(frozen=True)
class WheelBuild:
    """Cards with ``min_cc <= compute capability <= max_cc`` run the ``tag`` build (both ends inclusive)."""

    min_cc: ComputeCapability
    max_cc: ComputeCapability
    tag: str
    reason: str

    def covers(self, cc: ComputeCapability) -> bool:
        return self.min_cc <= cc <= self.max_cc


# Sources (the Linux x86_64 and Windows wheels carry the same architectures):
# * PyTorch's CUDA support matrix (RELEASE.md "PyTorch CUDA support matrix") and the per-release RFCs
#   pytorch/pytorch#157517 (2.8/2.9), #172352 (2.11), #178665 (2.12), #190355 (2.14), #190385 (2.15, proposed):
#     cu126: sm 5.0, 6.0, 7.0, 7.5, 8.0, 8.6, 9.0        ("legacy" since 2.12, kept for pre-Turing cards)
#     cu128: sm 5.0 ... 12.0 in 2.7; sm 5.x/6.x removed in 2.8, sm 7.0 in 2.10/2.11 (#172352); no cu128 build
#            from 2.12 on
#     cu130: sm 7.5, 8.0, 8.6, 9.0, 10.0, 12.0           (2.9 on; PyTorch's stable CUDA build from 2.12 on;
#                                                         needs NVIDIA driver R580 or newer)
# * PyTorch 2.8 release notes: "Removed support for Maxwell, Pascal, and Volta architectures with CUDA 12.8 and
#   12.9 builds ... please utilize CUDA 12.6 instead".
# * CUDA C++ Programming Guide, "Binary Compatibility": a cubin built for X.y runs on X.z with z >= y, so sm 5.0
#   covers 5.2/5.3, 6.0 covers 6.1/6.2, 8.6 covers 8.9 (Ada), 12.0 covers 12.1; never across major versions.
# * Which releases each build exists for (download.pytorch.org/whl/<tag>): cu126 from 2.6 to 2.14 (#190385 removes
#   it from 2.15 on), cu130 from 2.9 on. pyproject.toml bounds torch below 2.15, so every row's build exists for the
#   newest torch this package allows (tests/test_torch_index.py checks that against the bound).
# Cards of compute capability 11.x (Jetson Thor) and 13.0 or newer match no row: no published build is known to
# carry their kernels, so the command says so rather than guess.
WHEEL_BUILDS: tuple[WheelBuild, ...] = (
    WheelBuild(
        (5, 0),
        (6, 9),
        "cu126",
        "Maxwell/Pascal: only the CUDA 12.6 build still carries sm_50/sm_60 kernels (cu128 and newer dropped them; "
        "PyTorch 2.14 is its last release, 2.15 dropped it)",
    ),
    WheelBuild(
        (7, 0),
        (9, 9),
        "cu126",
        "Volta to Hopper: the CUDA 12.6 build carries sm_70 to sm_90 and runs on NVIDIA drivers from R525 "
        "(cu128 dropped Volta in PyTorch 2.11, CUDA 13 builds never had it; PyTorch 2.14 is its last release)",
    ),
    WheelBuild(
        (10, 0),
        (10, 9),
        "cu130",
        "Blackwell data-centre GPUs need a CUDA 12.8+ build: cu130, PyTorch's stable CUDA build (cu128 stopped "
        "at PyTorch 2.11); it needs NVIDIA driver R580 or newer",
    ),
    WheelBuild(
        (12, 0),
        (12, 9),
        "cu130",
        "Blackwell (RTX 50-series, RTX PRO) needs a CUDA 12.8+ build: cu130, PyTorch's stable CUDA build (cu128 "
        "stopped at PyTorch 2.11); it needs NVIDIA driver R580 or newer",
    ),
)


# First and last torch release (major, minor) published per build; None: still published.
TAG_RELEASES: dict[str, tuple[tuple[int, int], tuple[int, int] | None]] = {
    "cu126": ((2, 6), (2, 14)),
    "cu130": ((2, 9), None),
}
# NVIDIA's minor version compatibility: a CUDA 12.x build runs on driver R525 or newer, a CUDA 13.x build on R580 or
# newer (docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html, table 1).
MIN_DRIVER_BY_CUDA_MAJOR = {12: 525, 13: 580}


def _span(build: WheelBuild) -> str:
    high = f"{build.max_cc[0]}.x" if build.max_cc[1] == 9 else f"{build.max_cc[0]}.{build.max_cc[1]}"
    return f"{build.min_cc[0]}.{build.min_cc[1]}-{high}"


def index_url(tag: str) -> str:
    return f"{INDEX_BASE_URL}/{tag}"


def cpu_index_url() -> str:
    return index_url(CPU_TAG)


def parse_compute_capability(text: str) -> ComputeCapability:
    """``"8.6"`` -> ``(8, 6)``; ConfigError naming the value and the expected form otherwise."""
    match = _CC_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"--compute-capability {text!r} is not a compute capability; expected MAJOR.MINOR such as "
            f"8.6 or 12.0 (nvidia-smi --query-gpu=compute_cap --format=csv,noheader prints it)"
        )
    return int(match[1]), int(match[2])


def wheel_build_for(cc: ComputeCapability, table: tuple[WheelBuild, ...] = WHEEL_BUILDS) -> WheelBuild:
    """The row of ``table`` covering ``cc``; ConfigError when the card is too old or no row covers it."""
    for build in table:
        if build.covers(cc):
            return build
    shown = f"{cc[0]}.{cc[1]}"
    oldest = min(build.min_cc for build in table)
    if cc < oldest:
        raise ConfigError(
            f"compute capability {shown}: this GPU is too old for any current PyTorch CUDA build "
            f"(the oldest supported is {oldest[0]}.{oldest[1]}); use the CPU build (--cpu)"
        )
    known = ", ".join(_span(build) for build in table)
    raise ConfigError(
        f"compute capability {shown} is not in the wheel table (it covers {known}); install torch "
        f"from the newest index listed on pytorch.org by hand, or use the CPU build (--cpu)"
    )


def parse_driver_version(text: str) -> tuple[int, ...]:
    """``"580.88"`` -> ``(580, 88)``, ``"525.60.13"`` -> ``(525, 60, 13)``; ConfigError otherwise."""
    match = _DRIVER_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"--driver-version {text!r} is not an NVIDIA driver version; expected e.g. 580.88 or "
                          f"525.60.13 (nvidia-smi --query-gpu=driver_version --format=csv,noheader prints it)")
    return tuple(int(g) for g in match.groups() if g is not None)


def cuda_version_of(tag: str) -> tuple[int, int] | None:
    """``cu126`` -> ``(12, 6)``, ``cpu`` -> None; ConfigError for anything that is not a build tag."""
    match = _TAG_PATTERN.fullmatch(tag)
    if match is None:
        raise ConfigError(f"{tag!r} is not a PyTorch build tag; expected cpu or cuXYZ such as cu126 or cu130")
    return None if tag == CPU_TAG else (int(match[1]), int(match[2]))


def check_driver(tag: str, driver: tuple[int, ...]) -> None:
    """ConfigError when the NVIDIA driver is too old for the CUDA build ``tag`` (minor version compatibility)."""
    cuda = cuda_version_of(tag)
    if cuda is None:
        return
    needed = MIN_DRIVER_BY_CUDA_MAJOR.get(cuda[0])
    if needed is None:
        raise ConfigError(f"no known driver requirement for CUDA {cuda[0]}.{cuda[1]} ({tag}); install torch by hand")
    if driver[0] < needed:
        shown = ".".join(map(str, driver))
        raise ConfigError(
            f"the {tag} build of torch (CUDA {cuda[0]}.{cuda[1]}) needs NVIDIA driver R{needed} or newer and this "
            f"machine has {shown}: install a current driver (nvidia.com/drivers or the NVIDIA app), then run the "
            f"setup again; or install the CPU build (setup without -InstallCUDA, sptrain doctor --torch-index --cpu)"
        )


def published(tag: str, release: tuple[int, int]) -> bool:
    """Whether PyTorch publishes the ``tag`` build of torch ``release`` (major, minor): see TAG_RELEASES."""
    if tag == CPU_TAG:
        return True
    first, last = TAG_RELEASES[tag]
    return first <= release and (last is None or release <= last)


def query_gpu(
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> tuple[str | None, str | None, str]:
    """The first GPU's compute capability and driver version as nvidia-smi prints them, or ``(None, None, why)``."""
    exe = shutil.which(NVIDIA_SMI)
    if exe is None:
        return None, None, "nvidia-smi not found (no NVIDIA driver on this machine)"
    try:
        done = run([exe, *NVIDIA_SMI_ARGS], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, None, f"nvidia-smi could not run ({exc})"
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        said = (done.stderr or done.stdout).strip().splitlines()
        why = f"nvidia-smi exited with code {done.returncode}" + (f": {said[0]}" if said else " (no GPU?)")
        return None, None, why
    fields = [field.strip() for field in lines[0].split(",")]
    return fields[0], (fields[1] if len(fields) > 1 and fields[1] else None), ""


def torch_index_url(
    compute_capability: str | None = None,
    cpu: bool = False,
    note: Callable[[str], None] | None = None,
    driver_version: str | None = None,
    require_gpu: bool = False,
) -> str:
    """The pip index URL for torch: the CPU build, the build for ``compute_capability``, or for this machine's GPU.

    Asking nvidia-smi also reads the driver version; a CUDA build the driver is too old for is a ConfigError (so is
    a missing GPU with ``require_gpu``). What was chosen and why (and any warning) goes to ``note`` (default: stderr),
    so stdout stays the URL alone.
    """
    note = note or _stderr
    if cpu:
        return cpu_index_url()
    if compute_capability is None:
        compute_capability, queried_driver, problem = query_gpu()
        driver_version = driver_version or queried_driver
        if compute_capability is None or _CC_PATTERN.fullmatch(compute_capability) is None:
            said = problem or f"nvidia-smi printed {compute_capability!r}, not a compute capability"
            if require_gpu:
                raise ConfigError(f"a CUDA build was asked for but {said}; install the NVIDIA driver (it brings "
                                  f"nvidia-smi) or choose the CPU build (setup without -InstallCUDA, --cpu)")
            note(f"warning: {said}; using the CPU build of torch (pass --compute-capability X.Y for a CUDA build)")
            return cpu_index_url()
    cc = parse_compute_capability(compute_capability)
    build = wheel_build_for(cc)
    if driver_version is not None:
        check_driver(build.tag, parse_driver_version(driver_version))
        note(f"compute capability {cc[0]}.{cc[1]}, driver {driver_version.strip()} -> {build.tag}: {build.reason}")
    else:
        note(f"compute capability {cc[0]}.{cc[1]} -> {build.tag}: {build.reason} (driver not checked: pass "
             f"--driver-version)")
    return index_url(build.tag)


# --- what is installed -----------------------------------------------------------------------------------------


def tag_of(index_or_tag: str) -> str:
    """The build tag of an index URL (``https://download.pytorch.org/whl/cu130`` -> ``cu130``) or of a tag."""
    tag = index_or_tag.strip().rstrip("/").removeprefix(INDEX_BASE_URL + "/")
    cuda_version_of(tag)  # ConfigError unless cpu / cuXYZ
    return tag


def torch_requirement(project: str = PROJECT) -> str:
    """This package's torch requirement as installed (e.g. ``torch<2.15,>=2.4``): what an installer passes to pip
    together with the index URL, so that the build it installs is one ``pip install -e .`` keeps."""
    try:
        requirements = md.requires(project) or []
    except md.PackageNotFoundError:
        raise ConfigError(f"{project} is not installed, so its torch requirement is unknown; install it first "
                          f"(pip install --no-deps -e .)") from None
    return torch_requirement_of(requirements, project)


def torch_requirement_of(requirements: list[str], project: str = PROJECT) -> str:
    """The one unconditional torch requirement among ``requirements`` (Requires-Dist / pyproject dependencies)."""
    found = [r.replace(" ", "") for r in requirements if re.match(r"torch(?![\w.-])", r) and ";" not in r]
    if len(found) != 1:
        raise ConfigError(f"{project} declares {len(found)} unconditional torch requirements ({found}); expected one")
    return found[0]


def _release(version: str) -> tuple[int, int, int]:
    """``2.14.1+cu126`` -> ``(2, 14, 1)``; ``2.15`` -> ``(2, 15, 0)`` (PEP 440 pads with zeros)."""
    parts = [int(part) for part in re.findall(r"\d+", version.split("+", 1)[0])[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def allows(requirement: str, version: str) -> bool:
    """Whether ``version`` (e.g. 2.14.1+cu126) satisfies ``requirement`` (torch>=A,<B; the operators >=, >, <, <=)."""
    release = _release(version)
    for clause in requirement.removeprefix("torch").split(","):
        match = re.fullmatch(r"(>=|<=|>|<)(\d+(?:\.\d+)*)", clause.strip())
        if match is None:
            raise ConfigError(f"cannot read the torch requirement clause {clause!r} of {requirement!r}")
        bound = _release(match[2])
        ok = {">=": release >= bound, ">": release > bound, "<": release < bound, "<=": release <= bound}[match[1]]
        if not ok:
            return False
    return True


def installed_torch() -> str | None:
    try:
        return md.version("torch")
    except md.PackageNotFoundError:
        return None


def torch_matches(index_or_tag: str, installed: str | None, requirement: str) -> tuple[bool, str]:
    """Whether the installed torch (its version with the local label, e.g. 2.14.1+cu126) is the chosen build inside
    the requirement, and why not. A version without a label (a PyPI wheel) is never taken for a chosen build."""
    tag = tag_of(index_or_tag)
    if installed is None:
        return False, "torch is not installed"
    label = installed.partition("+")[2]
    if label != tag:
        return False, f"torch {installed} is installed, not the {tag} build"
    if not allows(requirement, installed):
        return False, f"torch {installed} is outside this package's requirement {requirement}"
    return True, f"torch {installed} is the {tag} build"


def verify_torch(index_or_tag: str, torch: ModuleType | None = None) -> str:
    """After installing: torch imports, is the chosen build (``torch.version.cuda``) and, for a CUDA build, sees a
    GPU; one line describing it, or ConfigError saying what is wrong and what to do."""
    tag = tag_of(index_or_tag)
    if torch is None:
        try:  # torch is what is checked: this module must load before torch is installed
            import torch  # see the line above
        except ImportError as exc:
            raise ConfigError(f"torch does not import ({exc}); install it again from {index_url(tag)}") from None
    wanted, built = cuda_version_of(tag), torch.version.cuda
    described = f"torch {torch.__version__} (CUDA build: {built or 'none'})"
    if (tuple(int(part) for part in built.split(".")[:2]) if built else None) != wanted:
        raise ConfigError(f"{described} is installed, not the {tag} build; uninstall it (pip uninstall torch) and "
                          f"install from {index_url(tag)}")
    if wanted is not None and not torch.cuda.is_available():
        raise ConfigError(f"{described} sees no GPU (torch.cuda.is_available() is False): the {tag} build needs NVIDIA "
                          f"driver R{MIN_DRIVER_BY_CUDA_MAJOR[wanted[0]]} or newer; nvidia-smi shows the driver")
    return described


def _stderr(message: str) -> None:
    print(f"sptrain doctor: {message}", file=sys.stderr)
