"""The repository's shape: layering, script-safe module names, and the package mapping (editable + wheel)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from spt_testutil import REPO_ROOT

PACKAGE = "sunnypilot_training"
LAYERS = ("contract", "collector", "training", "export", "integration", "cli")
SCRIPT_FOLDERS = ("collector", "training", "export", "integration", "contract", "windows")
# What each layer must never import (house style).
FORBIDDEN = {
    "contract": {"collector", "training", "export", "integration", "cli", "errors"},
    "collector": {"training", "export", "integration", "cli"},
    "integration": {"training", "export", "cli"},
    "training": {"integration", "cli"},
    "export": {"integration", "cli"},
}
FORBIDDEN_THIRD_PARTY = {"integration": {"torch"}, "collector": {"torch"}}


def _python_files(folder: str) -> list[Path]:
    return sorted(p for p in (REPO_ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, lineno) of every import in ``path``, relative imports resolved."""
    rel = path.relative_to(REPO_ROOT).with_suffix("")
    package_parts = [PACKAGE, *rel.parts[:-1]]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node.lineno))
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else None


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layering(layer: str) -> None:
    offences = []
    for path in _python_files(layer):
        for module, line in _imports(path):
            target = _layer_of(module)
            if target in FORBIDDEN[layer]:
                offences.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module}")
            if module.split(".")[0] in FORBIDDEN_THIRD_PARTY.get(layer, set()):
                offences.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module}")
    assert offences == []


def test_contract_imports_only_numpy_and_stdlib() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    offences = []
    for path in _python_files("contract"):
        for module, line in _imports(path):
            top = module.split(".")[0]
            if top != PACKAGE and top not in allowed:
                offences.append(f"{path.name}:{line} imports {module}")
            if top == PACKAGE and _layer_of(module) != "contract":
                offences.append(f"{path.name}:{line} imports {module}")
    assert offences == []


def test_integration_does_not_load_torch_at_runtime() -> None:
    modules = [f"{PACKAGE}.integration." + p.stem for p in _python_files("integration") if p.stem != "__init__"]
    code = "import sys, importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "assert 'torch' not in sys.modules, 'torch was imported'\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def _dependency_names() -> set[str]:
    names = set(md.packages_distributions()) | set(sys.stdlib_module_names)
    names |= {"onnx", "zarr", "torch", "tinygrad", "carla", "hydra", "omegaconf", "numpy", "tqdm", "onnxruntime"}
    return {n.lower() for n in names if n != PACKAGE}


def test_no_module_shadows_a_dependency() -> None:
    """Running ``python training/train.py`` puts ``training/`` first on sys.path: nothing there may shadow
    a dependency or the standard library."""
    deps = _dependency_names()
    offences = []
    for folder in SCRIPT_FOLDERS:
        base = REPO_ROOT / folder
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            name = entry.stem if entry.suffix == ".py" else entry.name if entry.is_dir() else None
            if name and not name.startswith(("_", ".")) and name.lower() in deps:
                offences.append(str(entry.relative_to(REPO_ROOT)))
    assert offences == []


def test_scripts_use_absolute_imports() -> None:
    """A file run as a script is ``__main__``: it can only reach the package through absolute imports."""
    offences = []
    for folder in SCRIPT_FOLDERS:
        for path in _python_files(folder) if (REPO_ROOT / folder).is_dir() else []:
            tree = ast.parse(path.read_text())
            is_script = "__name__ == \"__main__\"" in path.read_text()
            if is_script and any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)):
                offences.append(str(path.relative_to(REPO_ROOT)))
    assert offences == []


def test_layers_import_as_subpackages() -> None:
    import importlib

    for layer in LAYERS:
        module = importlib.import_module(f"{PACKAGE}.{layer}")
        assert Path(module.__file__).parent == REPO_ROOT / layer


def test_wheel_contains_the_package_and_imports(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(REPO_ROOT)], check=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    wheel = next(out.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    packages = [p.parent.relative_to(REPO_ROOT) for layer in LAYERS for p in (REPO_ROOT / layer).rglob("__init__.py")]
    for package in packages:  # every sub-package of every layer ships (pyproject lists them one by one)
        assert f"{PACKAGE}/{package.as_posix()}/__init__.py" in names, package
    for config in ("default.yaml", "model/tiny.yaml", "model/base.yaml"):
        assert f"{PACKAGE}/training/configs/{config}" in names
    assert f"{PACKAGE}/contract/profiles.py" in names
    assert not any(n.startswith(f"{PACKAGE}/tests/") for n in names)
    # Import from the wheel alone: -S skips .pth files, so the editable install cannot answer.
    site = sysconfig.get_paths()["purelib"]
    code = (f"import sys; sys.path[:0] = [{str(wheel)!r}, {site!r}]\n"
            f"import {PACKAGE}.contract.profiles as p, {PACKAGE}\n"
            f"assert {PACKAGE}.__file__.startswith({str(wheel)!r}), {PACKAGE}.__file__\n"
            "print(p.get_profile().vision.output_width)")
    result = subprocess.run([sys.executable, "-S", "-c", code], check=True, cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.stdout.strip() == "1576"
