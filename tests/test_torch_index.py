"""``sptrain doctor --torch-index``: the PyTorch wheel index for a GPU, from a table, before torch is installed.

The table (cli/torch_index.py) is checked against the architecture lists PyTorch publishes per build (written out
here from the release RFCs), not against itself: the chosen build must carry kernels the card can run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sunnypilot_training.cli.main import main
from sunnypilot_training.cli.torch_index import (
    WHEEL_BUILDS,
    cpu_index_url,
    index_url,
    parse_compute_capability,
    torch_index_url,
    wheel_build_for,
)
from sunnypilot_training.errors import ConfigError

# SASS architectures of each Windows / Linux x86_64 build in current PyTorch releases (pytorch/pytorch#190355 for
# 2.14: cu126 and cu130; #172352 for cu128 in 2.11, its last release).
PUBLISHED_ARCHS = {
    "cu126": {(5, 0), (6, 0), (7, 0), (7, 5), (8, 0), (8, 6), (9, 0)},
    "cu128": {(7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0)},
    "cu130": {(7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0)},
}
# Project dependencies that must not be needed to answer --torch-index (setup_env.ps1 asks before installing them).
HEAVY_MODULES = (
    "torch",
    "numpy",
    "hydra",
    "omegaconf",
    "zarr",
    "onnx",
    "onnxruntime",
    "tinygrad",
    "tqdm",
    "matplotlib",
    "tensorboard",
)
on_posix = pytest.mark.skipif(sys.platform == "win32", reason="the fake nvidia-smi is a POSIX shell script")


def _runs_on(tag: str, cc: tuple[int, int]) -> bool:
    """A cubin for X.y runs on X.z with z >= y (CUDA binary compatibility), never across major versions."""
    return any(major == cc[0] and minor <= cc[1] for major, minor in PUBLISHED_ARCHS[tag])


def _cuda_version(tag: str) -> tuple[int, int]:
    digits = tag.removeprefix("cu")
    return int(digits[:-1]), int(digits[-1])


@pytest.mark.parametrize("text", ["5.0", "6.1", "7.0", "7.5", "8.6", "8.9", "9.0", "10.0", "12.0", "12.1"])
def test_the_chosen_build_carries_kernels_the_card_runs(text: str) -> None:
    cc = parse_compute_capability(text)
    build = wheel_build_for(cc)
    assert build.tag in PUBLISHED_ARCHS, build.tag
    assert _runs_on(build.tag, cc), f"{text} -> {build.tag}, which has no kernels for it"
    assert build.reason  # the table says why


@pytest.mark.parametrize("text", ["10.0", "12.0"])
def test_blackwell_gets_a_cuda_12_8_or_newer_build(text: str) -> None:
    assert _cuda_version(wheel_build_for(parse_compute_capability(text)).tag) >= (12, 8)


@pytest.mark.parametrize("text", ["7.0", "7.5", "8.6", "9.0"])
def test_volta_to_hopper_get_a_cuda_12_build(text: str) -> None:
    assert _cuda_version(wheel_build_for(parse_compute_capability(text)).tag)[0] == 12


def test_table_rows_are_ordered_and_disjoint() -> None:
    for build in WHEEL_BUILDS:
        assert build.min_cc <= build.max_cc and build.tag.startswith("cu"), build
    for lower, upper in zip(WHEEL_BUILDS, WHEEL_BUILDS[1:]):
        assert lower.max_cc < upper.min_cc, (lower, upper)


@pytest.mark.parametrize("text", ["3.5", "3.7", "2.1", "4.9"])
def test_a_card_older_than_the_table_is_a_config_error_that_names_cpu(text: str) -> None:
    with pytest.raises(ConfigError, match="too old") as info:
        wheel_build_for(parse_compute_capability(text))
    assert text in str(info.value) and "--cpu" in str(info.value)


@pytest.mark.parametrize("text", ["11.0", "13.0"])
def test_a_capability_no_row_covers_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="not in the wheel table") as info:
        wheel_build_for(parse_compute_capability(text))
    assert text in str(info.value)


@pytest.mark.parametrize("text", ["8", "8.", ".6", "8.6.1", "sm_86", "12,0", "", "eight.six", "-8.6"])
def test_a_malformed_capability_names_the_value_and_the_form(text: str) -> None:
    with pytest.raises(ConfigError, match="MAJOR.MINOR") as info:
        parse_compute_capability(text)
    assert repr(text) in str(info.value)


def test_cpu_wins_and_urls_are_pip_index_urls() -> None:
    assert torch_index_url("12.0", cpu=True) == cpu_index_url() == "https://download.pytorch.org/whl/cpu"
    assert index_url("cu126") == "https://download.pytorch.org/whl/cu126"


# --- the nvidia-smi path -----------------------------------------------------------------------------------


def _fake_nvidia_smi(folder: Path, stdout: str, code: int = 0, stderr: str = "") -> Path:
    """A folder holding an executable ``nvidia-smi`` that prints ``stdout`` / ``stderr`` and exits ``code``."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "nvidia-smi"
    exe.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stdout.write({stdout!r})\nsys.stderr.write({stderr!r})\n"
        f"sys.exit({code})\n"
    )
    exe.chmod(0o755)
    return folder


@on_posix
@pytest.mark.parametrize("printed", ["12.0", "8.6\n8.6", "7.5\n12.0"])  # one line per GPU: the first one counts
def test_without_flags_the_first_gpu_from_nvidia_smi_decides(printed: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path / "bin", printed)))
    notes: list[str] = []
    url = torch_index_url(note=notes.append)
    first = parse_compute_capability(printed.splitlines()[0])
    assert url == index_url(wheel_build_for(first).tag)
    assert not any("warning" in n for n in notes), notes


@on_posix
@pytest.mark.parametrize(
    ("printed", "code", "stderr", "said"),
    [
        ("", 9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver", "couldn't communicate"),
        ("[N/A]", 0, "", "[N/A]"),
        ("", 0, "", "no GPU"),
    ],
)
def test_nvidia_smi_without_a_usable_gpu_gives_the_cpu_build_and_a_warning(
    printed, code, stderr, said, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path / "bin", printed, code, stderr)))
    notes: list[str] = []
    assert torch_index_url(note=notes.append) == cpu_index_url()
    assert len(notes) == 1 and notes[0].startswith("warning:") and said in notes[0], notes


def test_no_nvidia_smi_gives_the_cpu_build_and_a_warning(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no nvidia-smi anywhere
    notes: list[str] = []
    assert torch_index_url(note=notes.append) == cpu_index_url()
    assert len(notes) == 1 and "nvidia-smi not found" in notes[0]


def test_an_explicit_capability_does_not_ask_nvidia_smi(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path / "bin", "", 1, "must not be called")))
    assert torch_index_url("9.0", note=lambda _: None) == index_url(wheel_build_for((9, 0)).tag)


# --- the command line --------------------------------------------------------------------------------------


def _sptrain(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sunnypilot_training.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def _blocker(folder: Path) -> Path:
    """A sitecustomize that makes importing the project's dependencies fail, as before they are installed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        textwrap.dedent(f"""
        import sys

        class _NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {HEAVY_MODULES!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: not installed yet)")
                return None

        sys.meta_path.insert(0, _NotInstalled())
    """)
    )
    return folder


def test_torch_index_needs_neither_torch_nor_numpy(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(_blocker(tmp_path / "site"))}
    for module in ("numpy", "torch"):  # the blocker works: a test that can fail
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=env)
        assert probe.returncode != 0 and "blocked" in probe.stderr, probe
    result = _sptrain(["doctor", "--torch-index", "--compute-capability", "8.6"], env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == index_url(wheel_build_for((8, 6)).tag) + "\n"


@on_posix
@pytest.mark.parametrize(("printed", "expected"), [("12.0", (12, 0)), (None, None)])
def test_the_command_prints_exactly_one_line(printed, expected, tmp_path) -> None:
    folder = _fake_nvidia_smi(tmp_path / "bin", printed) if printed else tmp_path / "empty"
    folder.mkdir(exist_ok=True)
    result = _sptrain(["doctor", "--torch-index"], {**os.environ, "PATH": str(folder)}, tmp_path)
    assert result.returncode == 0, result.stderr
    want = index_url(wheel_build_for(expected).tag) if expected else cpu_index_url()
    assert result.stdout.splitlines() == [want] and result.stdout.endswith("\n")
    assert ("warning" in result.stderr) == (printed is None), result.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["doctor", "--cpu"], "only applies with --torch-index"),
        (["doctor", "--compute-capability", "8.6"], "only applies with --torch-index"),
        (["doctor", "--torch-index", "--compute-capability", "8,6"], "'8,6'"),
        (["doctor", "--torch-index", "--compute-capability", "3.0"], "too old"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, needle, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr()
    assert err.out == "" and needle in err.err and len(err.err.strip().splitlines()) == 1


def test_cpu_and_a_capability_together_are_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--torch-index", "--cpu", "--compute-capability", "8.6"])
    assert info.value.code == 2 and "not allowed" in capsys.readouterr().err
