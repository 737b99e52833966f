"""integration/replace_models.ps1, checked statically (no pwsh here): it parses, its parameters are exactly the
documented ones with help, it follows the house style, and it is a thin entry point: no functions of its own, it
imports windows/common.psm1 and windows/env.psm1 from its own folder and hands its parameters to
Install-DrivingModel, which takes each of them alike and passes each on as an `sptrain install` flag that exists."""

from __future__ import annotations

import argparse
import re

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from sunnypilot_training.cli import install_cmd

from spt_testutil import REPO_ROOT

SCRIPT = REPO_ROOT / "integration" / "replace_models.ps1"
ENV_MODULE = REPO_ROOT / "windows" / "env.psm1"
COMMON = REPO_ROOT / "windows" / "common.psm1"
PARAMETERS = [
    "VisionTinygrad",
    "VisionMetadata",
    "PolicyTinygrad",
    "PolicyMetadata",
    "VisionOnnx",
    "PolicyOnnx",
    "SunnypilotRoot",
    "ModelsDir",
    "DryRun",
    "Restore",
]
# The only commands the script runs: its setup, the two imports and the one call.
COMMANDS = ["Set-StrictMode", "Import-Module", "Join-Path", "Import-Module", "Join-Path", "Install-DrivingModel"]


def _parse(source: bytes) -> Node:
    return Parser(Language(tree_sitter_powershell.language())).parse(source).root_node


def _nodes(node: Node, kind: str) -> list[Node]:
    found = [node] if node.type == kind else []
    for child in node.children:
        found += _nodes(child, kind)
    return found


def _parameters(param_block: Node) -> dict[str, Node]:
    return {next(c for c in p.children if c.type == "variable").text.decode().lstrip("$"): p
            for p in _nodes(param_block, "script_parameter")}  # fmt: skip


def _signature(param: Node) -> tuple[list[str], list[str], bool]:
    """What passing a parameter on depends on: its type, its parameter sets and whether it is mandatory."""
    text = param.text.decode()
    kind = re.findall(r"\[(switch|string\[\]|string|int)\]", text)
    sets = re.findall(r"ParameterSetName\s*=\s*'(\w+)'", text)
    return kind, sets, bool(re.search(r"Mandatory\s*=\s*\$true", text))


def _kebab(name: str) -> str:
    return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


@pytest.fixture(scope="module")
def tree() -> Node:
    return _parse(SCRIPT.read_bytes())


@pytest.fixture(scope="module")
def install_function() -> Node:
    module = _parse(ENV_MODULE.read_bytes())
    [function] = [f for f in _nodes(module, "function_statement")
                  if _nodes(f, "function_name")[0].text == b"Install-DrivingModel"]  # fmt: skip
    return function


def test_script_parses_without_errors(tree: Node) -> None:
    assert not tree.has_error and _nodes(tree, "ERROR") == []
    assert _parse(b"param([string]$A\nif ($A -eq { ) }").has_error  # the parser does flag broken PowerShell


def test_parameters_are_exactly_the_documented_ones(tree: Node) -> None:
    [block] = [c for c in tree.children if c.type == "param_block"]  # the script's own param block
    assert list(_parameters(block)) == PARAMETERS
    text = SCRIPT.read_text()
    for name in PARAMETERS:
        assert re.search(rf"^\.PARAMETER {name}$", text, re.MULTILINE), f"no help for -{name}"
    for section in (".SYNOPSIS", ".DESCRIPTION", ".EXAMPLE"):
        assert section in text


def test_house_style(tree: Node) -> None:
    text = SCRIPT.read_text()
    for needle in ("[CmdletBinding(", "Set-StrictMode -Version Latest", "$ErrorActionPreference = 'Stop'",
                   "$PSScriptRoot", "[ValidateNotNullOrEmpty()]", "ParameterSetName"):  # fmt: skip
        assert needle in text, needle
    assert "?? " not in text and " ? " not in text  # no PowerShell 7-only operators (5.1 must run it)
    assert _nodes(tree, "pipeline_chain_tail") == []  # no && / || pipeline chains either


def test_it_is_a_thin_entry_point(tree: Node) -> None:
    assert _nodes(tree, "function_statement") == []  # no helper of its own: common.psm1 and env.psm1 hold them
    assert _nodes(tree, "command_invokation_operator") == []  # starts no program itself
    assert [c.children[0].text.decode() for c in _nodes(tree, "command")] == COMMANDS
    code = bytearray(SCRIPT.read_bytes())
    for comment in _nodes(tree, "comment"):  # the help may say what it runs; the code must not
        code[comment.start_byte : comment.end_byte] = b" " * (comment.end_byte - comment.start_byte)
    for needle in ("sunnypilot_training.cli.main", "'--", "$LASTEXITCODE", ".venv"):  # all in env.psm1 / common.psm1
        assert needle not in code.decode(), needle


def test_it_imports_the_modules_from_its_own_folder(tree: Node) -> None:
    imports = [c for c in _nodes(tree, "command") if c.children[0].text == b"Import-Module"]
    targets = []
    for command in imports:
        [join] = [c for c in _nodes(command, "command") if c.children[0].text == b"Join-Path"]
        parts = [c for c in _nodes(join, "command_elements")[0].children if c.type != "command_argument_sep"]
        assert [p.text.decode() for p in parts[:1]] == ["$PSScriptRoot"] and len(parts) == 2, command.text
        assert b"-Force" in [c.text for c in _nodes(command, "command_parameter")], command.text
        targets.append((SCRIPT.parent / parts[1].text.decode().strip("'").replace("\\", "/")).resolve())
    assert targets == [COMMON.resolve(), ENV_MODULE.resolve()]
    assert all(target.is_file() for target in targets)


def test_it_hands_every_parameter_to_install_driving_model(tree: Node, install_function: Node) -> None:
    [call] = [c for c in _nodes(tree, "command") if c.children[0].text == b"Install-DrivingModel"]
    assert [v.text.decode() for v in _nodes(call, "variable")] == ["@PSBoundParameters"]
    [script_block] = [c for c in tree.children if c.type == "param_block"]
    [function_block] = _nodes(install_function, "param_block")
    mine, theirs = _parameters(script_block), _parameters(function_block)
    assert {name: _signature(node) for name, node in mine.items()} == {
        name: _signature(theirs[name]) for name in mine if name in theirs
    }
    default = re.compile(r"DefaultParameterSetName\s*=\s*'(\w+)'")
    assert default.findall(SCRIPT.read_text()) == default.findall(function_block.text.decode()) == ["Checkout"]


def test_every_flag_it_passes_exists_in_sptrain_install(install_function: Node) -> None:
    parser = argparse.ArgumentParser(prog="sptrain")
    install_cmd.register(parser.add_subparsers(dest="command"))
    install = parser._subparsers._group_actions[0].choices["install"]
    known = {opt for action in install._actions for opt in action.option_strings}
    text = install_function.text.decode()
    passed = set(re.findall(r"'(--[a-z-]+)'", text))
    assert passed and passed <= known, passed - known
    for name in PARAMETERS:  # each parameter reaches the flag of its name
        assert _kebab(name) in passed and f"${name}" in text, name
    assert _kebab("VisionTinygrad") == "--vision-tinygrad"
