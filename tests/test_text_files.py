"""Text files the product writes name their encoding: on Windows the default is the ANSI code page, so a path or a
name outside it is garbled or fails. Writes go through fileio.atomic_write_text (UTF-8) or give encoding=."""

from __future__ import annotations

import ast
from pathlib import Path

from spt_testutil import REPO_ROOT

LAYERS = ("contract", "episodes", "collector", "evaluation", "driving", "training", "export", "integration", "cli")
BASE_MODULES = ("errors.py", "fileio.py")
# Writes without an encoding that are still to be changed (each writes ASCII-only JSON or JSON lines today, so none
# breaks yet); the list may only shrink.
KNOWN = {
    "export/tinygrad_compile.py: write_text",
    "integration/smoke_test.py: write_text",
    "training/trainer.py: open('a')",
}


def _product_files() -> list[Path]:
    files = [p for layer in LAYERS for p in (REPO_ROOT / layer).rglob("*.py")]
    return files + [REPO_ROOT / name for name in BASE_MODULES]


def _text_writes_without_encoding(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "write_text":
            found.append("write_text")
        elif name == "open":
            mode_node = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None)
            mode = mode_node.value if isinstance(mode_node, ast.Constant) else None
            if isinstance(mode, str) and "b" not in mode and set(mode) & set("wax"):
                found.append(f"open({mode!r})")
    return found


def test_text_writes_name_their_encoding() -> None:
    found = {f"{path.relative_to(REPO_ROOT).as_posix()}: {call}" for path in _product_files()
             for call in _text_writes_without_encoding(ast.parse(path.read_text(encoding="utf-8")))}
    assert found <= KNOWN, sorted(found - KNOWN)


def test_the_check_finds_writes_without_an_encoding() -> None:
    code = ("Path('a').write_text(s)\nPath('a').write_text(s, encoding='utf-8')\nopen(p, 'w')\nopen(p, 'wb')\n"
            "open(p, mode='a')\nopen(p)\nopen(p, 'w', encoding='utf-8')\n")
    assert _text_writes_without_encoding(ast.parse(code)) == ["write_text", "open('w')", "open('a')"]
