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
from types import SimpleNamespace

import pytest

from sunnypilot_training.cli.main import main
from sunnypilot_training.cli.torch_index import (
    MIN_DRIVER_BY_CUDA_MAJOR,
    TAG_RELEASES,
    WHEEL_BUILDS,
    allows,
    check_driver,
    cpu_index_url,
    cuda_version_of,
    index_url,
    parse_compute_capability,
    parse_driver_version,
    published,
    tag_of,
    torch_index_url,
    torch_matches,
    torch_requirement_of,
    verify_torch,
    wheel_build_for,
)
from sunnypilot_training.errors import ConfigError

from spt_testutil import REPO_ROOT

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
@pytest.mark.parametrize("printed", ["12.0, 580.88", "8.6, 535.54.03\n8.6, 535.54.03", "7.5, 572.16\n12.0, 572.16"])
def test_without_flags_the_first_gpu_from_nvidia_smi_decides(printed: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path / "bin", printed)))  # one line per GPU
    notes: list[str] = []
    url = torch_index_url(note=notes.append)
    first = parse_compute_capability(printed.splitlines()[0].split(",")[0])
    assert url == index_url(wheel_build_for(first).tag)
    assert not any("warning" in n for n in notes) and "driver " in notes[0], notes


@on_posix
def test_an_rtx_50_card_on_a_driver_older_than_r580_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path / "bin", "12.0, 572.16\n")))
    with pytest.raises(ConfigError, match=r"cu130 build .* needs NVIDIA driver R580 or newer .* has 572\.16") as info:
        torch_index_url(note=lambda _: None)
    assert "--cpu" in str(info.value) and "nvidia.com/drivers" in str(info.value)


@on_posix
def test_require_gpu_turns_a_missing_gpu_into_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    with pytest.raises(ConfigError, match="a CUDA build was asked for but nvidia-smi not found"):
        torch_index_url(note=lambda _: None, require_gpu=True)
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path / "bin", "[N/A], 580.88")))
    with pytest.raises(ConfigError, match=r"'\[N/A\]', not a compute capability"):
        torch_index_url(note=lambda _: None, require_gpu=True)


@on_posix
@pytest.mark.parametrize(
    ("printed", "code", "stderr", "said"),
    [
        ("", 9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver", "couldn't communicate"),
        ("[N/A], 580.88", 0, "", "[N/A]"),
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
    folder = _fake_nvidia_smi(tmp_path / "bin", f"{printed}, 580.88") if printed else tmp_path / "empty"
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
        (["doctor", "--cuda"], "only applies with --torch-index"),
        (["doctor", "--torch-index", "--driver-version", "580.88"], "goes with --compute-capability"),
        (["doctor", "--torch-index", "--compute-capability", "12.0", "--driver-version", "566.36"], "R580"),
        (["doctor", "--torch-index", "--compute-capability", "8.6", "--driver-version", "520.61.05"], "R525"),
        (["doctor", "--torch-index", "--compute-capability", "8.6", "--driver-version", "latest"], "'latest'"),
        (["doctor", "--torch-matches", "cu999x"], "not a PyTorch build tag"),
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


def test_torch_queries_are_mutually_exclusive(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--torch-index", "--torch-requirement"])
    assert info.value.code == 2 and "not allowed" in capsys.readouterr().err


# --- the NVIDIA driver -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "parsed"), [("580.88", (580, 88)), ("525.60.13", (525, 60, 13)),
                                              (" 1050.1 ", (1050, 1))])
def test_driver_versions_are_read(text: str, parsed: tuple[int, ...]) -> None:
    assert parse_driver_version(text) == parsed


@pytest.mark.parametrize("text", ["580", "r580", "580.88.1.2", "", "N/A"])
def test_a_malformed_driver_version_names_the_value(text: str) -> None:
    with pytest.raises(ConfigError, match="not an NVIDIA driver version") as info:
        parse_driver_version(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("tag", "driver", "ok"),
    [("cu130", (580, 65, 6), True), ("cu130", (579, 99), False), ("cu130", (572, 16), False),
     ("cu126", (525, 60, 13), True), ("cu126", (520, 61, 5), False), ("cu126", (580, 88), True),
     ("cpu", (300, 0), True)],
)
def test_the_driver_gate_follows_nvidia_s_minor_version_compatibility(tag, driver, ok) -> None:
    if ok:
        check_driver(tag, driver)
    else:
        with pytest.raises(ConfigError, match=rf"R{MIN_DRIVER_BY_CUDA_MAJOR[cuda_version_of(tag)[0]]} or newer"):
            check_driver(tag, driver)


def test_every_cuda_build_of_the_table_has_a_driver_minimum() -> None:
    for build in WHEEL_BUILDS:
        assert cuda_version_of(build.tag)[0] in MIN_DRIVER_BY_CUDA_MAJOR, build.tag


def test_an_explicit_capability_with_a_driver_is_gated_without_asking_nvidia_smi(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path / "bin", "", 1, "must not be called")))
    notes: list[str] = []
    assert torch_index_url("12.0", driver_version="581.15", note=notes.append) == index_url("cu130")
    assert "driver 581.15 -> cu130" in notes[0]
    assert torch_index_url("8.6", note=notes.append) == index_url("cu126") and "driver not checked" in notes[1]


# --- the table is honest for the torch releases this package allows -------------------------------------------


def _pyproject_torch_requirement() -> str:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    return torch_requirement_of([line.strip().strip('",') for line in text.splitlines()
                                 if line.strip().startswith('"torch')])


def _newest_allowed_minor(requirement: str) -> tuple[int, int]:
    """The newest torch (major, minor) a requirement with an upper bound `<X.Y` allows."""
    [bound] = [clause[1:] for clause in requirement.removeprefix("torch").split(",") if clause.startswith("<")]
    major, minor = (int(part) for part in bound.split(".")[:2])
    assert not bound.startswith("="), "an inclusive bound: write <X.Y"
    return (major, minor - 1)


def test_torch_is_bounded_where_a_build_of_the_table_ends() -> None:
    requirement = _pyproject_torch_requirement()
    newest = _newest_allowed_minor(requirement)
    for build in WHEEL_BUILDS:
        assert published(build.tag, newest), f"{build.tag} is not published for torch {newest}: raise the table"
    assert newest == (2, 14) and not published("cu126", (2, 15))  # 2.14 is the last cu126 release
    assert published("cu130", (2, 15)) and published("cpu", (2, 15))


def test_every_cuda_build_of_the_table_has_its_release_range() -> None:
    assert {build.tag for build in WHEEL_BUILDS} <= set(TAG_RELEASES)
    for first, last in TAG_RELEASES.values():
        assert last is None or first <= last


# --- what is installed ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "version", "ok"),
    [("torch>=2.4,<2.15", "2.14.1+cu126", True), ("torch<2.15,>=2.4", "2.15.0+cu130", False),
     ("torch>=2.4,<2.15", "2.3.1+cpu", False), ("torch>=2.4", "2.15.0", True), ("torch>2.4,<=2.14", "2.14.0", True)],
)
def test_requirements_are_checked_on_the_release_without_its_label(requirement, version, ok) -> None:
    assert allows(requirement, version) is ok


def test_the_requirement_comes_from_the_package_s_own_list() -> None:
    assert torch_requirement_of(["numpy>=1.26", "torch<2.15,>=2.4", 'torchvision; extra == "x"']) == "torch<2.15,>=2.4"
    with pytest.raises(ConfigError, match="0 unconditional torch requirements"):
        torch_requirement_of(["numpy", 'torch>=2; extra == "gpu"'])


def test_the_requirement_command_prints_the_installed_package_s(tmp_path) -> None:
    result = _sptrain(["doctor", "--torch-requirement"], {**os.environ, "PYTHONPATH": str(_blocker(tmp_path / "s"))},
                      tmp_path)
    assert result.returncode == 0, result.stderr
    [printed] = result.stdout.splitlines()
    for version in ("2.3.1", "2.4.0", "2.14.1+cu126", "2.15.0"):  # the same range as pyproject.toml's, in any order
        assert allows(printed, version) is allows(_pyproject_torch_requirement(), version), version


@pytest.mark.parametrize(
    ("installed", "wanted", "ok", "why"),
    [
        ("2.14.1+cu126", "https://download.pytorch.org/whl/cu126", True, "is the cu126 build"),
        ("2.14.1+cu130", "https://download.pytorch.org/whl/cu126", False, "not the cu126 build"),  # sorts higher
        ("2.14.1+cpu", "cu130", False, "not the cu130 build"),
        ("2.14.1", "cpu", False, "not the cpu build"),  # a PyPI wheel: its build is not known
        ("2.15.0+cu130", "cu130", False, "outside this package's requirement"),
        (None, "cpu", False, "not installed"),
    ],
)
def test_the_installed_torch_is_taken_only_when_it_is_the_chosen_build(installed, wanted, ok, why) -> None:
    matches, said = torch_matches(wanted, installed, "torch>=2.4,<2.15")
    assert matches is ok and why in said


def test_tags_come_from_index_urls() -> None:
    assert tag_of(index_url("cu130")) == "cu130" == tag_of("cu130") and tag_of(cpu_index_url() + "/") == "cpu"
    with pytest.raises(ConfigError, match="not a PyTorch build tag"):
        tag_of("https://pypi.org/simple")


def _fake_torch(version: str, cuda: str | None, available: bool) -> SimpleNamespace:
    return SimpleNamespace(__version__=version, version=SimpleNamespace(cuda=cuda),
                           cuda=SimpleNamespace(is_available=lambda: available))


def test_verify_accepts_the_chosen_build() -> None:
    assert verify_torch("cu130", _fake_torch("2.14.1+cu130", "13.0", True)) == "torch 2.14.1+cu130 (CUDA build: 13.0)"
    assert "CUDA build: none" in verify_torch("cpu", _fake_torch("2.14.1+cpu", None, False))


@pytest.mark.parametrize(
    ("wanted", "torch", "needle"),
    [
        ("cu126", _fake_torch("2.14.1+cu130", "13.0", True), "not the cu126 build"),
        ("cpu", _fake_torch("2.14.1+cu126", "12.6", True), "not the cpu build"),
        ("cu130", _fake_torch("2.14.1+cpu", None, False), "not the cu130 build"),
        ("cu130", _fake_torch("2.14.1+cu130", "13.0", False), "sees no GPU .* R580"),
    ],
)
def test_verify_says_what_is_wrong(wanted, torch, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        verify_torch(wanted, torch)


def test_the_installed_cpu_build_of_this_environment_verifies(tmp_path) -> None:
    result = _sptrain(["doctor", "--torch-verify", "cpu"], dict(os.environ), tmp_path)
    import torch  # the environment's own torch decides what the command must say

    if torch.version.cuda is None:
        assert result.returncode == 0 and result.stdout.startswith(f"torch {torch.__version__}"), result.stderr
    else:
        assert result.returncode == 2 and "not the cpu build" in result.stderr


def test_matches_answers_yes_or_no_without_torch_or_numpy(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(_blocker(tmp_path / "site"))}
    result = _sptrain(["doctor", "--torch-matches", "cu999"], env, tmp_path)
    assert result.returncode == 0 and result.stdout == "no\n", result.stderr
    assert "not the cu999 build" in result.stderr or "not installed" in result.stderr
