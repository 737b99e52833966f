"""Which PyTorch wheel index fits a GPU: ``sptrain doctor --torch-index [--compute-capability X.Y | --cpu]``.

PyTorch publishes one wheel build per CUDA toolkit (``https://download.pytorch.org/whl/<tag>``) and each build carries
kernels for a fixed list of GPU architectures; a build without kernels for a card fails at the first CUDA call with
"no kernel image is available". The mapping from compute capability to build is :data:`WHEEL_BUILDS`, a table.

Stdlib only (plus our error classes): ``windows/setup_env.ps1`` asks this before torch and numpy are installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError

INDEX_BASE_URL = "https://download.pytorch.org/whl"
CPU_TAG = "cpu"
NVIDIA_SMI = "nvidia-smi"
NVIDIA_SMI_ARGS = ("--query-gpu=compute_cap", "--format=csv,noheader")
NVIDIA_SMI_TIMEOUT_S = 30.0
_CC_PATTERN = re.compile(r"(\d{1,2})\.(\d{1,2})")

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
# Cards of compute capability 11.x (Jetson Thor) and 13.0 or newer match no row: no published build is known to
# carry their kernels, so the command says so rather than guess.
WHEEL_BUILDS: tuple[WheelBuild, ...] = (
    WheelBuild(
        (5, 0),
        (6, 9),
        "cu126",
        "Maxwell/Pascal: only the CUDA 12.6 build still carries sm_50/sm_60 kernels (cu128 and newer dropped them; "
        "once PyTorch retires cu126 these cards stay on its last release)",
    ),
    WheelBuild(
        (7, 0),
        (9, 9),
        "cu126",
        "Volta to Hopper: the CUDA 12.6 build carries sm_70 to sm_90 and runs on older NVIDIA drivers "
        "(cu128 dropped Volta in PyTorch 2.11, CUDA 13 builds never had it)",
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


def query_compute_capability(
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> tuple[str | None, str]:
    """The first GPU's compute capability as nvidia-smi prints it, or ``(None, why not)``."""
    exe = shutil.which(NVIDIA_SMI)
    if exe is None:
        return None, "nvidia-smi not found (no NVIDIA driver on this machine)"
    try:
        done = run([exe, *NVIDIA_SMI_ARGS], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi could not run ({exc})"
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        said = (done.stderr or done.stdout).strip().splitlines()
        return None, f"nvidia-smi exited with code {done.returncode}" + (f": {said[0]}" if said else " (no GPU?)")
    return lines[0], ""


def torch_index_url(
    compute_capability: str | None = None, cpu: bool = False, note: Callable[[str], None] | None = None
) -> str:
    """The pip index URL for torch: the CPU build, the build for ``compute_capability``, or for this machine's GPU.

    What was chosen and why (and any warning) goes to ``note`` (default: stderr), so stdout stays the URL alone.
    """
    note = note or _stderr
    if cpu:
        return cpu_index_url()
    if compute_capability is None:
        compute_capability, problem = query_compute_capability()
        if compute_capability is None:
            note(f"warning: {problem}; using the CPU build of torch (pass --compute-capability X.Y for a CUDA build)")
            return cpu_index_url()
        if _CC_PATTERN.fullmatch(compute_capability) is None:
            note(
                f"warning: nvidia-smi printed {compute_capability!r}, not a compute capability; using the CPU build "
                f"of torch (pass --compute-capability X.Y for a CUDA build)"
            )
            return cpu_index_url()
    cc = parse_compute_capability(compute_capability)
    build = wheel_build_for(cc)
    note(f"compute capability {cc[0]}.{cc[1]} -> {build.tag}: {build.reason}")
    return index_url(build.tag)


def _stderr(message: str) -> None:
    print(f"sptrain doctor: {message}", file=sys.stderr)
