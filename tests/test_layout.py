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
BASE_MODULES = ("errors", "fileio", "workers")  # standard library only; every layer may import them
LAYERS = ("contract", "episodes", "collector", "evaluation", "driving", "training", "export", "integration", "cli")
SCRIPT_FOLDERS = ("collector", "training", "export", "integration", "contract", "episodes", "evaluation", "driving",
                  "windows")
# What each layer may import of ours (besides itself and the base modules); the house style's layering.
ALLOWED = {
    "contract": set(),
    "episodes": {"contract"},
    "collector": {"contract", "episodes"},
    "evaluation": {"contract", "episodes"},
    "driving": {"contract", "episodes", "collector", "evaluation"},
    "training": {"contract", "episodes", "evaluation"},
    "export": {"contract", "training", "evaluation"},
    "integration": {"contract"},
    "cli": set(LAYERS),
}
FORBIDDEN_THIRD_PARTY = {"integration": {"torch"}, "collector": {"torch"}, "episodes": {"torch"},
                         "evaluation": {"torch"}, "driving": {"torch"}, "contract": {"torch", "zarr"}}
# Script entry points: a file run as `python <layer>/<script>.py` that only hands its arguments to the CLI.
SCRIPT_ENTRY_POINTS = {"collector/collect_data.py": {"cli"}}
# Sub-layers: training's models never import the data pipeline; export rebuilds models without the trainer.
FORBIDDEN_MODULES = {
    "training/models": ("training.data", "training.features", "training.trainer", "training.config",
                        "training.epoch_loop", "training.evaluate"),
    "export": ("training.trainer", "training.config", "training.data", "training.features", "training.epoch_loop"),
}


def _python_files(folder: str) -> list[Path]:
    base = REPO_ROOT / folder
    files = [base] if base.suffix == ".py" else sorted(base.rglob("*.py"))
    return [p for p in files if ".venv" not in p.parts]


def _product_files() -> list[Path]:
    return [p for layer in LAYERS for p in _python_files(layer)] + [REPO_ROOT / f"{m}.py" for m in BASE_MODULES]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(absolute module name, lineno, at module level) of every import in ``path``, relative imports resolved;
    ``from P import name`` counts as importing ``P.name`` when that is a module of ours."""
    rel = path.relative_to(REPO_ROOT).with_suffix("")
    package_parts = [PACKAGE, *rel.parts[:-1]]
    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            subs = [f"{module}.{a.name}" for a in node.names if _is_our_module(f"{module}.{a.name}")]
            found += [(m, node.lineno, id(node) in top_level) for m in (subs or [module])]
    return found


def _is_our_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return False
    base = REPO_ROOT.joinpath(*parts[1:])
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else None


@pytest.mark.parametrize("layer", LAYERS)
def test_layering(layer: str) -> None:
    offences = []
    for path in _python_files(layer):
        where = path.relative_to(REPO_ROOT).as_posix()
        for module, line, _ in _imports(path):
            target = _layer_of(module)
            allowed = ALLOWED[layer] | SCRIPT_ENTRY_POINTS.get(where, set())
            if target is not None and target not in {layer, *BASE_MODULES} and target not in allowed:
                offences.append(f"{where}:{line} imports {module}")
            if module.split(".")[0] in FORBIDDEN_THIRD_PARTY.get(layer, set()):
                offences.append(f"{where}:{line} imports {module}")
            for folder, banned in FORBIDDEN_MODULES.items():
                if where.startswith(folder + "/") and any(module.startswith(f"{PACKAGE}.{b}") for b in banned):
                    offences.append(f"{where}:{line} imports {module}")
    assert offences == []


def test_base_modules_import_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    offences = [f"{m}.py:{line} imports {module}" for m in BASE_MODULES
                for module, line, _ in _imports(REPO_ROOT / f"{m}.py") if module.split(".")[0] not in allowed]
    assert offences == []


def test_contract_imports_only_numpy_the_standard_library_and_the_base_modules() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    offences = []
    for path in _python_files("contract"):
        for module, line, _ in _imports(path):
            top = module.split(".")[0]
            if top != PACKAGE and top not in allowed:
                offences.append(f"{path.name}:{line} imports {module}")
            if top == PACKAGE and _layer_of(module) not in ("contract", *BASE_MODULES):
                offences.append(f"{path.name}:{line} imports {module}")
    assert offences == []


def test_no_import_cycles() -> None:
    """The module graph of the product code (function-level imports included) has no cycle."""
    graph = {_module_name(p): {m for m, _, _ in _imports(p) if _is_our_module(m)} for p in _product_files()}
    for node in list(graph):  # importing a.b.c imports the packages a.b and a first
        for target in list(graph[node]):
            parts = target.split(".")
            graph[node] |= {".".join(parts[:k]) for k in range(2, len(parts)) if ".".join(parts[:k]) in graph}
        graph[node].discard(node)
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open" and not _is_package_parent(nxt, node):
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def _is_package_parent(package: str, module: str) -> bool:
    """A module inside a package may be imported by that package's __init__ (re-exports) without a cycle."""
    return module.startswith(package + ".")


def test_function_level_imports_say_why() -> None:
    """An import inside a function hides the graph: allowed only with a comment on its line (or on the line above,
    e.g. ``try:  # why``) that says why (an optional dependency, a platform-only module, a child process that must
    not load it before its environment is set, ...)."""
    offences = []
    for path in _product_files():
        lines = path.read_text().splitlines()
        for module, line, at_top in _imports(path):
            if at_top:
                continue
            here, above = lines[line - 1], lines[line - 2] if line >= 2 else ""
            if "#" not in here and "#" not in above:
                offences.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module} inside a function")
    assert sorted(set(offences)) == []


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
