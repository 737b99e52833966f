"""integration/replace_models.ps1, checked statically (no pwsh here): it parses, its parameters are exactly the
documented ones with help, it follows the house style, and every flag it passes exists in `sptrain install`."""

from __future__ import annotations

import argparse
import re

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from sunnypilot_training.cli import install_cmd

from spt_testutil import REPO_ROOT

SCRIPT = REPO_ROOT / "integration" / "replace_models.ps1"
PARAMETERS = ["VisionTinygrad", "VisionMetadata", "PolicyTinygrad", "PolicyMetadata", "VisionOnnx", "PolicyOnnx",
              "SunnypilotRoot", "ModelsDir", "DryRun", "Restore"]


def _parse(source: bytes) -> Node:
    return Parser(Language(tree_sitter_powershell.language())).parse(source).root_node


def _nodes(node: Node, kind: str) -> list[Node]:
    found = [node] if node.type == kind else []
    for child in node.children:
        found += _nodes(child, kind)
    return found


@pytest.fixture(scope="module")
def tree() -> Node:
    return _parse(SCRIPT.read_bytes())


def test_script_parses_without_errors(tree: Node) -> None:
    assert not tree.has_error and _nodes(tree, "ERROR") == []
    assert _parse(b"param([string]$A\nif ($A -eq { ) }").has_error  # the parser does flag broken PowerShell


def test_parameters_are_exactly_the_documented_ones(tree: Node) -> None:
    [block] = [c for c in tree.children if c.type == "param_block"]  # the script's own param block
    names = [next(c for c in p.children if c.type == "variable").text.decode().lstrip("$")
             for p in _nodes(block, "script_parameter")]
    assert names == PARAMETERS
    text = SCRIPT.read_text()
    for name in PARAMETERS:
        assert re.search(rf"^\.PARAMETER {name}$", text, re.MULTILINE), f"no help for -{name}"
    for section in (".SYNOPSIS", ".DESCRIPTION", ".EXAMPLE"):
        assert section in text


def test_house_style(tree: Node) -> None:
    text = SCRIPT.read_text()
    for needle in ("[CmdletBinding(", "Set-StrictMode -Version Latest", "$ErrorActionPreference = 'Stop'",
                   "$PSScriptRoot", "$LASTEXITCODE", "[ValidateNotNullOrEmpty()]", "ParameterSetName",
                   "sunnypilot_training.cli.main", "venv\\Scripts\\python.exe", ".venv"):
        assert needle in text, needle
    functions = [_nodes(f, "function_name")[0].text.decode() for f in _nodes(tree, "function_statement")]
    assert functions == ["Invoke-NativeCommand"]  # one private helper, an approved verb
    assert "?? " not in text and " ? " not in text  # no PowerShell 7-only operators (5.1 must run it)


def test_every_flag_it_passes_exists_in_sptrain_install() -> None:
    parser = argparse.ArgumentParser(prog="sptrain")
    install_cmd.register(parser.add_subparsers(dest="command"))
    install = parser._subparsers._group_actions[0].choices["install"]
    known = {opt for action in install._actions for opt in action.option_strings}
    passed = set(re.findall(r"'(--[a-z-]+)'", SCRIPT.read_text()))
    assert passed and passed <= known, passed - known
    assert {"--vision-tinygrad", "--policy-onnx", "--sunnypilot-root", "--models-dir", "--dry-run",
            "--restore"} <= passed
