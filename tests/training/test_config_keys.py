"""Every key of the training config is read by the code: no dead keys.

The trainer receives typed settings (``training/config.py``); this test reads the product code and follows every
parameter or local annotated with a settings class (``s: Settings``, ``settings: TrainingSettings``, ...) and every
local name bound to a part of one (``d = s.diffusion``) to the attribute chains it reads (``s.training.lr`` is the key
``training.lr``). A key of ``training/configs/default.yaml`` that no chain reads is dead.
"""

from __future__ import annotations

import ast
from dataclasses import fields

from sunnypilot_training.training import config as config_module
from sunnypilot_training.training.config import config_leaf_keys, load_config

from spt_testutil import REPO_ROOT

SECTION_OF_CLASS = {"Settings": ""} | {cls.__name__: f"{name}." for name, cls in config_module._SECTIONS.items()}
TOP_LEVEL = {f.name for f in fields(config_module.Settings)}


def _chain(node: ast.AST) -> list[str] | None:
    """``a.b.c`` -> ['a', 'b', 'c'] (None for anything that is not a plain name with attributes)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _annotation_name(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _keys_read_in(func: ast.FunctionDef) -> set[str]:
    roots = {a.arg: SECTION_OF_CLASS[_annotation_name(a.annotation)] for a in func.args.args + func.args.kwonlyargs
             if _annotation_name(a.annotation) in SECTION_OF_CLASS}
    keys: set[str] = set()
    for node in ast.walk(func):  # annotated locals (`s: Settings = ...`) and aliases such as `d = s.diffusion`
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and _annotation_name(node.annotation) in SECTION_OF_CLASS:
            roots[node.target.id] = SECTION_OF_CLASS[_annotation_name(node.annotation)]
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            chain = _chain(node.value)
            if chain and chain[0] in roots and len(chain) == 2 and chain[1] in config_module._SECTIONS:
                roots[node.targets[0].id] = f"{chain[1]}."
    for node in ast.walk(func):
        chain = _chain(node) if isinstance(node, ast.Attribute) else None
        if chain and chain[0] in roots:
            dotted = roots[chain[0]] + ".".join(chain[1:])
            keys.add(dotted)
            keys.update(dotted.rsplit(".", k)[0] for k in range(1, dotted.count(".") + 1))
    return keys


def keys_read_by_the_code() -> set[str]:
    keys: set[str] = set()
    for path in sorted((REPO_ROOT / "training").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                keys |= _keys_read_in(node)
    return keys


# settings whose value is a whole mapping handed to the code (which checks its names): an entry counts as read
# when the mapping is read
MAPPING_SETTINGS = ("vision.loss_weights", "vision.motion_grid")


def test_every_config_key_is_read_by_the_code() -> None:
    read = keys_read_by_the_code()
    whole = tuple(m + "." for m in MAPPING_SETTINGS if m in read)
    unread = sorted(k for k in config_leaf_keys(load_config()) if k not in read and not k.startswith(whole))
    assert unread == []


def test_the_check_finds_a_dead_key() -> None:
    read = keys_read_by_the_code()
    assert "training.lr" in read and "diffusion.train_timesteps" in read
    assert "training.no_such_key" not in read  # a key nothing reads would be reported
