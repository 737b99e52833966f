"""The Windows PowerShell layer, checked statically (no PowerShell runs here): windows/*.ps1, windows/*.psm1 and
integration/replace_models.ps1 parse, their parameters are the documented ones with help, they follow the house
style, use no PowerShell 7-only syntax, and every ``sptrain`` sub-command and flag they pass exists in the real
parser (``build_parser()``), as does every command docs/windows.md shows; each wrapper passes exactly its
documented flags and positional arguments.

Shared helpers live once, in windows/common.psm1 (the native-command runner, the venv python lookup, the repository
root): no other script defines a function of the same name, starts a program itself or looks for the venv, every
script imports common.psm1 by a path built from ``$PSScriptRoot``, and every call to one of our functions reaches a
function that the script defines or imports, with parameters that function has.

Convention the flag check relies on (and enforces): a script builds each ``sptrain`` call as ONE array that starts
``@('-m', 'sunnypilot_training.cli.main', '<sub-command>', ...)``, grows it only with ``$Var += ...`` in the same
function, and hands it to ``Invoke-NativeCommand``. Any other ``'--flag'`` literal must sit in an array for another
program (``@('-m', 'pip', ...)``, or an array given to ``Invoke-NativeCommand -FilePath 'winget'``); a flag anywhere
else (a hashtable, a bare command line, a side array) is reported, so no flag escapes the parser check.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from sunnypilot_training.cli.main import build_parser

from spt_testutil import REPO_ROOT

WINDOWS = REPO_ROOT / "windows"
COMMON = WINDOWS / "common.psm1"
ENV_MODULE = WINDOWS / "env.psm1"
REPLACE_MODELS = REPO_ROOT / "integration" / "replace_models.ps1"
DOCS = REPO_ROOT / "docs" / "windows.md"
SPTRAIN_MODULE = "sunnypilot_training.cli.main"

# The documented parameters of each script, in order (the modules have none: their functions do).
SCRIPT_PARAMETERS = {
    "windows/setup_env.ps1": ["InstallCUDA", "PythonVersion", "CarlaRoot"],
    "windows/run_full_training.ps1": [
        "Scenario", "TrainEpisodes", "ValEpisodes", "OutputDir", "ExportDir", "CheckpointPath", "SkipDataCollection",
        "SkipTraining", "SkipExport", "SkipDrive", "InstallModels", "KeepCarlaRunning", "Simulator", "SunnypilotRoot",
        "ModelsDir", "Preset", "Seed", "CarlaRoot", "CarlaPort", "CarlaStartTimeout", "Overrides",
    ],
    "windows/env.psm1": [],
    "windows/common.psm1": [],
    "integration/replace_models.ps1": [
        "VisionTinygrad", "VisionMetadata", "PolicyTinygrad", "PolicyMetadata", "VisionOnnx", "PolicyOnnx",
        "SunnypilotRoot", "ModelsDir", "DryRun", "Restore",
    ],
}  # fmt: skip
EXPORTED = ["Enter-TrainingEnv", "Invoke-Carla", "Invoke-Collector", "Invoke-Trainer", "Export-DrivingModel",
            "Test-DrivingModel", "Install-DrivingModel", "Test-TrainingEnv"]  # fmt: skip
# The documented parameters of each function windows/env.psm1 defines (it exports them all), in order.
FUNCTION_PARAMETERS = {
    "Enter-TrainingEnv": [],
    "Invoke-Carla": ["Action", "Port", "CarlaRoot", "Workers", "Quality", "Timeout"],
    "Invoke-Collector": ["Scenario", "Episodes", "Output", "Simulator", "Port", "Workers", "Seed"],
    "Invoke-Trainer": ["Data", "Output", "Resume", "Overrides"],
    "Export-DrivingModel": ["Checkpoint", "ExportDir"],
    "Test-DrivingModel": ["ExportDir", "Driver", "Suite", "Runs", "Seed", "Seconds", "Runtime", "Workers", "Videos",
                          "Output"],
    "Install-DrivingModel": ["ExportDir", "VisionTinygrad", "VisionMetadata", "PolicyTinygrad", "PolicyMetadata",
                             "VisionOnnx", "PolicyOnnx", "SunnypilotRoot", "ModelsDir", "DryRun", "Restore"],
    "Test-TrainingEnv": ["OutputDir"],
}  # fmt: skip
# The shared helpers: defined in windows/common.psm1 and nowhere else.
COMMON_EXPORTED = ["Get-RepositoryRoot", "Invoke-NativeCommand", "Get-TrainingPython"]
# The scripts that call sptrain themselves (the others go through these: replace_models.ps1 through env.psm1).
SPTRAIN_CALLERS = {"windows/setup_env.ps1", "windows/run_full_training.ps1", "windows/env.psm1"}
# What only common.psm1 may spell (outside comments): the venv lookup, the repository root, the exit-code check.
COMMON_ONLY = (".venv", "venv\\Scripts\\python.exe", "bin/python", "Split-Path -Parent $PSScriptRoot",
               "$LASTEXITCODE")  # fmt: skip
# Parameters every [CmdletBinding()] function takes.
COMMON_PARAMETERS = {"Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable",
                     "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer",
                     "PipelineVariable"}  # fmt: skip
# What each wrapper passes (the documented mapping onto the CLI).
EXPECTED_CALLS = {
    ("windows/run_full_training.ps1", None): ("pipeline", {
        "--scenario", "--train-episodes", "--val-episodes", "--output-dir", "--export-dir", "--checkpoint",
        "--skip-collect", "--skip-train", "--skip-export", "--skip-drive", "--install", "--keep-carla-running",
        "--simulator", "--sunnypilot-root", "--models-dir", "--preset", "--seed", "--carla-root", "--carla-port"}),
    ("windows/env.psm1", "Invoke-Carla"): ("carla", {"--port", "--carla-root", "--workers", "--quality",
                                                     "--timeout"}),
    ("windows/env.psm1", "Invoke-Collector"): ("collect", {
        "--simulator", "--scenario", "--episodes", "--output", "--port", "--workers", "--seed"}),
    ("windows/env.psm1", "Invoke-Trainer"): ("train", {"--data", "--output-dir", "--resume"}),
    ("windows/env.psm1", "Export-DrivingModel"): ("export", {"--out-dir"}),
    ("windows/env.psm1", "Test-DrivingModel"): ("drive", {
        "--driver", "--suite", "--runs", "--seed", "--seconds", "--runtime", "--workers", "--videos", "--out"}),
    ("windows/env.psm1", "Install-DrivingModel"): ("install", {
        "--from-dir", "--vision-tinygrad", "--vision-metadata", "--policy-tinygrad", "--policy-metadata",
        "--vision-onnx", "--policy-onnx", "--sunnypilot-root", "--models-dir", "--dry-run", "--restore"}),
    ("windows/env.psm1", "Test-TrainingEnv"): ("doctor", {"--output-dir"}),
}  # fmt: skip
# What each wrapper passes besides flags and their values (positional arguments, as spelled); none where not listed.
EXPECTED_POSITIONALS = {
    ("windows/run_full_training.ps1", None): ["$Overrides"],
    ("windows/env.psm1", "Invoke-Carla"): ["$Action.ToLowerInvariant()"],
    ("windows/env.psm1", "Invoke-Trainer"): ["$Overrides"],
    ("windows/env.psm1", "Export-DrivingModel"): ["$Checkpoint"],
    ("windows/env.psm1", "Test-DrivingModel"): ["$ExportDir"],
}
# Approved PowerShell verbs (Get-Verb) that these scripts may use.
APPROVED_VERBS = {"ConvertTo", "Enter", "Exit", "Export", "Find", "Get", "Import", "Install", "Invoke", "New",
                  "Remove", "Set", "Start", "Stop", "Test", "Uninstall"}  # fmt: skip
WINDOWS_SCRIPTS = sorted(p for p in WINDOWS.glob("*.ps*1"))
ALL_SCRIPTS = [*WINDOWS_SCRIPTS, REPLACE_MODELS]


def _rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _parse(source: bytes) -> Node:
    return Parser(Language(tree_sitter_powershell.language())).parse(source).root_node


def _nodes(node: Node, kind: str, skip_functions: bool = False) -> list[Node]:
    """Every descendant of a type, in document order (optionally not inside nested function definitions)."""
    found = [node] if node.type == kind else []
    for child in node.children:
        if not (skip_functions and child.type == "function_statement"):
            found += _nodes(child, kind, skip_functions)
    return found


def _functions(root: Node) -> dict[str, Node]:
    return {_nodes(f, "function_name")[0].text.decode(): f for f in _nodes(root, "function_statement")}


def _param_block(scope: Node) -> Node | None:
    holder = scope if scope.type == "program" else next(c for c in scope.children if c.type == "script_block")
    return next((c for c in holder.children if c.type == "param_block"), None)


def _parameters(scope: Node) -> dict[str, Node]:
    block = _param_block(scope)
    params = _nodes(block, "script_parameter") if block else []
    return {next(c for c in p.children if c.type == "variable").text.decode().lstrip("$"): p for p in params}


def _help(scope: Node) -> str:
    """The comment-based help of a script (its first comment) or a function (the comment opening its body)."""
    comments = [c for c in scope.children if c.type == "comment" and c.text.startswith(b"<#")]
    return comments[0].text.decode() if comments else ""


def _literal(node: Node) -> str | None:
    """The value of a constant string (an array element or a string node), else None."""
    while node.type in ("unary_expression", "array_literal_expression") and node.child_count == 1:
        node = node.children[0]
    text = node.text.decode()
    if node.type != "string_literal" or (text.startswith('"') and ("$" in text or "`" in text)):
        return None
    return text[1:-1]


def _items(node: Node) -> list[Node]:
    """The elements of the array an expression builds: @(a, b), (a, b), a, b or one value (not inside commands)."""
    if node.type == "array_literal_expression":
        items = [c for c in node.children if c.type == "unary_expression"]
        inner = items[0].children[0] if len(items) == 1 and items[0].child_count == 1 else None
        if inner is not None and inner.type in ("array_expression", "parenthesized_expression"):
            return _items(inner)
        return items
    if node.type in ("command", "hash_literal_expression", "script_block"):
        return []
    for child in node.children:
        if found := _items(child):
            return found
    return []


def _flag_nodes(scope: Node, skip_functions: bool) -> dict[int, str]:
    """Every '--x' a scope spells: string literals and bare command-line tokens, by position."""
    found = {n.start_byte: v for n in _nodes(scope, "string_literal", skip_functions)
             if (v := _literal(n)) is not None and v.startswith("--")}  # fmt: skip
    for kind in ("generic_token", "command_parameter"):  # a bare `python ... --flag`
        found |= {
            n.start_byte: n.text.decode() for n in _nodes(scope, kind, skip_functions) if n.text.startswith(b"--")
        }
    return found


@dataclass
class SptrainCall:
    scope: Node
    function: str | None
    command: str
    action: Node | None  # the element after the sub-command (carla's action)
    flags: list[str] = field(default_factory=list)
    values: list[tuple[str, Node]] = field(default_factory=list)  # (flag, the element after it)
    positionals: list[str] = field(default_factory=list)  # elements neither a flag nor right after one (one add)

    def add(self, items: list[Node]) -> None:
        after_flag = False
        for i, item in enumerate(items):
            value = _literal(item)
            is_flag = value is not None and value.startswith("--")
            if is_flag:
                self.flags.append(value)
                if i + 1 < len(items):
                    self.values.append((value, items[i + 1]))
            elif not after_flag:
                self.positionals.append(item.text.decode())
            after_flag = is_flag


@dataclass
class Analysis:
    calls: list[SptrainCall] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)  # flags outside any recognised argument array
    stray_module: list[str] = field(default_factory=list)  # the CLI module named outside an sptrain array head


def _command_arguments(command: Node) -> dict[str, Node]:
    """-Name value pairs of a command."""
    elements = [c for c in _nodes(command, "command_elements")[0].children if c.type != "command_argument_sep"]
    return {e.text.decode(): v for e, v in zip(elements, elements[1:]) if e.type == "command_parameter"}


class _Scope:
    """One function (or the script outside its functions): its sptrain arrays, and which flag literals they hold."""

    def __init__(self, scope: Node, name: str | None, result: Analysis, heads: set[int]):
        self.scope, self.name, self.result, self.heads = scope, name, result, heads
        self.skip = scope.type == "program"  # the script scope leaves function bodies to their own scope
        self.accounted: set[int] = set()
        self.bindings: dict[str, object] = {}  # $var -> SptrainCall | "program" | pending flag positions

    @staticmethod
    def positions(items: list[Node]) -> list[int]:
        return sorted(pos for item in items for pos in _flag_nodes(item, skip_functions=True))

    def classify(self, items: list[Node], program_named: bool) -> object:
        values = [_literal(i) for i in items[:3]]
        if len(values) == 3 and values[:2] == ["-m", SPTRAIN_MODULE] and values[2] is not None:
            self.heads.add(items[1].start_byte)
            call = SptrainCall(self.scope, self.name, values[2], items[3] if len(items) > 3 else None)
            call.add(items[3:])
            self.result.calls.append(call)
            self.accounted.update(self.positions(items))
            return call
        if values[:1] == ["-m"] or program_named:  # python -m pip / venv, or a named program (winget, nvidia-smi)
            self.accounted.update(self.positions(items))
            return "program"
        return self.positions(items)  # a side array: its flags count once it goes to a named program

    def assign(self, node: Node) -> None:
        target = node.children[0].text.decode()
        op = next(c for c in node.children if c.type == "assignement_operator").text.decode()
        items, bound = _items(node.children[-1]), self.bindings.get(target)
        if op == "=":
            self.bindings[target] = self.classify(items, program_named=False)
        elif op == "+=" and isinstance(bound, SptrainCall):
            bound.add(items)
            self.accounted.update(self.positions(items))
        elif op == "+=" and bound == "program":
            self.accounted.update(self.positions(items))
        elif op == "+=" and isinstance(bound, list):
            bound.extend(self.positions(items))

    def invoke(self, command: Node) -> None:
        args = _command_arguments(command)
        named = "-FilePath" in args and _literal(args["-FilePath"]) is not None
        if "-ArgumentList" not in args:
            return
        items = _items(args["-ArgumentList"])
        target = items[0].text.decode() if len(items) == 1 else ""
        if target not in self.bindings:
            self.classify(items, program_named=named)
        elif named and isinstance(self.bindings[target], list):
            self.accounted.update(self.bindings[target])

    def run(self) -> None:
        events = _nodes(self.scope, "assignment_expression", self.skip) + [
            n for n in _nodes(self.scope, "command", self.skip) if n.children[0].text == b"Invoke-NativeCommand"
        ]
        for node in sorted(events, key=lambda n: n.start_byte):
            (self.assign if node.type == "assignment_expression" else self.invoke)(node)
        flags = _flag_nodes(self.scope, self.skip)
        self.result.unattributed += [flag for pos, flag in flags.items() if pos not in self.accounted]


def analyse(root: Node) -> Analysis:
    """Every sptrain call of a script with the flags it can pass, and every flag literal outside the convention."""
    result, heads = Analysis(), set()
    for name, function in _functions(root).items():
        _Scope(function, name, result, heads).run()
    _Scope(root, None, result, heads).run()
    module_nodes = [n for n in _nodes(root, "string_literal") if _literal(n) == SPTRAIN_MODULE]
    module_nodes += [n for n in _nodes(root, "generic_token") if n.text.decode() == SPTRAIN_MODULE]
    result.stray_module = [f"line {n.start_point[0] + 1}" for n in module_nodes if n.start_byte not in heads]
    return result


def _validate_set(scope: Node, variable: str) -> tuple[list[str], bool] | None:
    """([values], exact case?) of a parameter's [ValidateSet(...)], or None when it has none."""
    param = _parameters(scope).get(variable)
    if param is None:
        return None
    for attr in _nodes(param, "attribute"):
        if attr.text.startswith(b"[ValidateSet("):
            values = [v for n in _nodes(attr, "string_literal") if (v := _literal(n)) is not None]
            return values, bool(re.search(rb"IgnoreCase\s*=\s*\$false", attr.text))
    return None


def _passed_values(call: SptrainCall, node: Node) -> list[str] | None:
    """What an element can be at run time when it is a literal or a [ValidateSet] parameter (lowered if it says so)."""
    if (literal := _literal(node)) is not None:
        return [literal]
    variables = _nodes(node, "variable")
    if not variables:
        return None
    found = _validate_set(call.scope, variables[0].text.decode().lstrip("$"))
    if found is None:
        return None
    values, exact = found
    if b".ToLowerInvariant()" in node.text:
        return [v.lower() for v in values]
    return values if exact else values + [v.swapcase() for v in values]  # any case may reach the CLI


def problems(analysis: Analysis, commands: dict[str, argparse.ArgumentParser]) -> list[str]:
    """What the parser does not accept: unknown sub-commands, carla actions, flags, choice values."""
    found = []
    for call in analysis.calls:
        where = f"{call.function or 'script'}: sptrain {call.command}"
        parser = commands.get(call.command)
        if parser is None:
            found.append(f"{where}: no such sub-command")
            continue
        if call.command == "carla":
            positional = [a for a in parser._actions if not a.option_strings and a.choices]
            actions = _passed_values(call, call.action) if call.action is not None else None
            if not positional or actions is None or not set(actions) <= set(positional[0].choices):
                found.append(f"{where}: action {actions} not among {positional[0].choices if positional else None}")
        by_flag = {opt: a for a in parser._actions for opt in a.option_strings}
        found += [f"{where}: no flag {flag}" for flag in call.flags if flag.partition("=")[0] not in by_flag]
        for flag, node in call.values:
            action = by_flag.get(flag)
            values = _passed_values(call, node)
            if action is not None and action.choices and values is not None and not set(values) <= set(action.choices):
                found.append(f"{where}: {flag} may get {sorted(set(values) - set(action.choices))}, "
                             f"not among {list(action.choices)}")  # fmt: skip
    return found


@pytest.fixture(scope="module")
def commands() -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.fixture(scope="module", params=ALL_SCRIPTS, ids=_rel)
def script(request) -> tuple[Path, Node]:
    return request.param, _parse(request.param.read_bytes())


def test_every_windows_script_is_known() -> None:
    assert {_rel(p) for p in ALL_SCRIPTS} == set(SCRIPT_PARAMETERS)


def test_scripts_parse_without_errors(script) -> None:
    path, tree = script
    assert not tree.has_error, f"{_rel(path)}: syntax errors at {[n.start_point for n in _nodes(tree, 'ERROR')]}"
    assert _parse(b"param([string]$A\nif ($A -eq { ) }").has_error  # the parser does flag broken PowerShell


def test_parameters_are_exactly_the_documented_ones(script) -> None:
    path, tree = script
    assert list(_parameters(tree)) == SCRIPT_PARAMETERS[_rel(path)]


def _documented_scopes(path: Path, tree: Node) -> list[tuple[str, Node]]:
    """The script itself (a .ps1) and its exported functions (a module)."""
    if path.suffix == ".ps1":
        return [(_rel(path), tree)]
    return [(name, f) for name, f in _functions(tree).items() if name in _exports(tree)]


def test_every_parameter_has_help(script) -> None:
    path, tree = script
    for name, scope in _documented_scopes(path, tree) + [("module", tree)] * (path.suffix == ".psm1"):
        text = _help(scope)
        for section in (".SYNOPSIS", ".DESCRIPTION", ".EXAMPLE"):
            assert section in text, f"{name}: no {section}"
        documented = re.findall(r"^\s*\.PARAMETER (\w+)\s*$", text, re.MULTILINE)
        assert sorted(documented) == sorted(_parameters(scope)), f"{name}: .PARAMETER entries vs parameters"
    for name, function in _functions(tree).items():  # private helpers: a synopsis and their parameters
        text = _help(function)
        assert ".SYNOPSIS" in text, name
        assert set(re.findall(r"\.PARAMETER (\w+)", text)) == set(_parameters(function)), name


def test_house_style(script) -> None:
    path, tree = script
    rel, text = _rel(path), path.read_text()
    needles = ["Set-StrictMode -Version Latest", "$ErrorActionPreference = 'Stop'", "$PSScriptRoot"]
    needles += [SPTRAIN_MODULE] * (rel in SPTRAIN_CALLERS)
    needles += ["'venv'"] * (path.name == "setup_env.ps1")
    needles += [*COMMON_ONLY, "venv\\Scripts\\python.exe"] * (path == COMMON)
    for needle in needles:
        assert needle in text, f"{rel}: {needle}"
    for name, function in _functions(tree).items():
        assert name.split("-")[0] in APPROVED_VERBS, f"{name}: not an approved verb"
        assert "[CmdletBinding(" in _param_block(function).text.decode(), f"{name}: no [CmdletBinding()]"
    if path.suffix == ".ps1":
        assert "[CmdletBinding(" in _param_block(tree).text.decode()
    if path == COMMON:  # its helpers take what the scripts hand them; users reach them through validated parameters
        return
    for scope_name, scope in _documented_scopes(path, tree):
        for param, node in _parameters(scope).items():
            attrs = node.text.decode()
            assert "[switch]" in attrs or "[Validate" in attrs, f"{scope_name} -{param}: no validation attribute"


# --- one copy of each shared helper, in windows/common.psm1 -----------------------------------------------------


def _duplicates(trees: dict[str, Node]) -> list[str]:
    """Function names defined more than once over all the scripts (twice in one file counts too)."""
    counts = Counter(n.text.decode() for tree in trees.values() for n in _nodes(tree, "function_name"))
    return sorted(name for name, count in counts.items() if count > 1)


def _without_comments(tree: Node, source: bytes) -> str:
    """The source with comments blanked (help text may mention what the code must not do)."""
    data = bytearray(source)
    for node in _nodes(tree, "comment"):
        data[node.start_byte : node.end_byte] = b" " * (node.end_byte - node.start_byte)
    return data.decode()


def _imports(path: Path, tree: Node) -> list[tuple[Node, Path | None]]:
    """Each Import-Module of a script, with the file it loads when the path is Join-Path $PSScriptRoot '<literal>'."""
    found = []
    for command in _nodes(tree, "command"):
        if command.children[0].text != b"Import-Module":
            continue
        arguments = [c for c in _nodes(command, "command_elements")[0].children if c.type != "command_argument_sep"]
        joins = [c for c in _nodes(arguments[0], "command") if c.children[0].text == b"Join-Path"] if arguments else []
        target = None
        if joins:
            parts = [c for c in _nodes(joins[0], "command_elements")[0].children if c.type != "command_argument_sep"]
            relative = _literal(parts[1]) if len(parts) == 2 and parts[0].text == b"$PSScriptRoot" else None
            if relative is not None:
                target = (path.parent / relative.replace("\\", "/")).resolve()
        found.append((command, target))
    return found


def _sharing_problems(path: Path, tree: Node, source: bytes) -> list[str]:
    """How a script breaks the one-copy rule: starting programs or finding the venv itself, importing badly."""
    found = []
    imports = _imports(path, tree)
    top_level = {c.start_byte for c in _nodes(tree, "command", skip_functions=True)}
    for command, target in imports:
        where = command.text.decode()
        if target is None or not target.is_file():
            found.append(f"{where}: not Import-Module (Join-Path $PSScriptRoot '<a file that exists>')")
        if b"-Force" not in [c.text for c in _nodes(command, "command_parameter")]:
            found.append(f"{where}: no -Force (a changed module would not be reloaded)")
        if command.start_byte not in top_level:
            found.append(f"{where}: inside a function (import once, at the top)")
    if path == COMMON:
        return found + [f"{c.text.decode()}: common.psm1 imports nothing" for c, _ in imports]
    code = _without_comments(tree, source)
    if _nodes(tree, "command_invokation_operator"):
        found.append("starts a program itself (use Invoke-NativeCommand of common.psm1)")
    found += [f"spells {needle} (the venv lookup and the exit-code check are common.psm1's)" for needle in COMMON_ONLY
              if needle in code]  # fmt: skip
    if COMMON.resolve() not in [target for _, target in imports]:
        found.append("does not import common.psm1 by a path built from $PSScriptRoot")
    return found


def _enclosing_scope(node: Node) -> Node:
    while node.parent is not None and node.type != "function_statement":
        node = node.parent
    return node


def _signature(param: Node) -> tuple[list[str], list[str], bool]:
    """What splatting depends on: the type, the parameter sets and whether it is mandatory."""
    text = param.text.decode()
    kind = re.findall(r"\[(switch|string\[\]|string|int)\]", text)
    sets = re.findall(r"ParameterSetName\s*=\s*'(\w+)'", text)
    return kind, sets, bool(re.search(r"Mandatory\s*=\s*\$true", text))


def _default_set(scope: Node) -> str | None:
    block = _param_block(scope)
    found = re.search(r"DefaultParameterSetName\s*=\s*'(\w+)'", block.text.decode()) if block else None
    return found.group(1) if found else None


def _splat_problems(name: str, caller: Node, target: Node) -> list[str]:
    """`name @PSBoundParameters` passes the caller's parameters on: the target must take each, alike."""
    mine, theirs = _parameters(caller), _parameters(target)
    found = [f"{name}: takes no -{p}" for p in mine if p not in theirs]
    found += [f"{name} -{p}: {_signature(node)} here, {_signature(theirs[p])} there" for p, node in mine.items()
              if p in theirs and _signature(node) != _signature(theirs[p])]  # fmt: skip
    if _default_set(caller) != _default_set(target):
        found.append(f"{name}: default parameter set {_default_set(target)}, not {_default_set(caller)}")
    return found


def _call_problems(path: Path, tree: Node, ours: set[str]) -> list[str]:
    """Calls to our functions that reach none (not defined here, not exported by an import) or pass a -Name it lacks."""
    visible = dict(_functions(tree))
    for _, target in _imports(path, tree):
        if target is not None and target.is_file():
            module = _parse(target.read_bytes())
            visible |= {n: f for n, f in _functions(module).items() if n in _exports(module)}
    found = []
    for command in _nodes(tree, "command"):
        name = command.children[0].text.decode()
        if command.children[0].type != "command_name" or name not in ours:
            continue
        if name not in visible:
            found.append(f"{name}: neither defined in {path.name} nor exported by a module it imports")
            continue
        known = {p.lower() for p in [*_parameters(visible[name]), *COMMON_PARAMETERS]}
        elements = _nodes(command, "command_elements")[:1]
        arguments = [e for element in elements for e in element.children]
        given = [e.text.decode()[1:].rstrip(":") for e in arguments if e.type == "command_parameter"]
        found += [f"{name}: no -{g}" for g in given if g.lower() not in known]
        if any(e.text == b"@PSBoundParameters" for element in elements for e in _nodes(element, "variable")):
            found += _splat_problems(name, _enclosing_scope(command), visible[name])
    return found


def _our_function_names() -> set[str]:
    return {name for path in ALL_SCRIPTS for name in _functions(_parse(path.read_bytes()))}


def test_shared_helpers_are_defined_once_in_common() -> None:
    trees = {_rel(path): _parse(path.read_bytes()) for path in ALL_SCRIPTS}
    assert _duplicates(trees) == []
    owners = {name: rel for rel, tree in trees.items() for name in _functions(tree)}
    assert {name: owners.get(name) for name in COMMON_EXPORTED} == dict.fromkeys(COMMON_EXPORTED, _rel(COMMON))
    helper = _functions(trees[_rel(COMMON)])["Invoke-NativeCommand"].text.decode()
    assert "& $FilePath @Arguments" in helper and "$LASTEXITCODE -ne 0" in helper
    assert "$ErrorActionPreference = 'Continue'" in helper  # 5.1: stderr of a native program is not an error


def test_every_script_imports_common_and_leaves_it_the_shared_work(script) -> None:
    path, tree = script
    assert _sharing_problems(path, tree, path.read_bytes()) == [], _rel(path)


def test_every_call_to_our_functions_reaches_one(script) -> None:
    path, tree = script
    assert _call_problems(path, tree, _our_function_names()) == [], _rel(path)


def test_common_module_needs_no_venv() -> None:
    common = _parse(COMMON.read_bytes())
    at_import = [c.children[0].text.decode() for c in _nodes(common, "command", skip_functions=True)]
    assert at_import == ["Set-StrictMode", "Export-ModuleMember"]  # importing it runs nothing
    setup = {c.children[0].text.decode() for c in _nodes(_parse((WINDOWS / "setup_env.ps1").read_bytes()), "command")}
    assert "Get-TrainingPython" not in setup  # setup_env.ps1 runs before the venv exists
    assert {"Invoke-NativeCommand", "Get-RepositoryRoot"} <= setup


def _code_only(tree: Node, source: bytes) -> str:
    """The source with comments and string contents blanked (so words inside them do not count)."""
    data = bytearray(source)
    for node in _nodes(tree, "comment") + _nodes(tree, "string_literal"):
        data[node.start_byte : node.end_byte] = b" " * (node.end_byte - node.start_byte)
    return data.decode()


def test_no_powershell_7_only_syntax(script) -> None:
    path, tree = script
    code = _code_only(tree, path.read_bytes())
    assert _nodes(tree, "pipeline_chain_tail") == [], "&& / || pipeline chains need PowerShell 7"
    for needle in ("??", "?.", "-Parallel", "$IsWindows", "$IsLinux", "$IsMacOS", "-AsByteStream", "utf8NoBOM",
                   "-AdditionalChildPath", "clean {"):  # fmt: skip
        assert needle not in code, f"{_rel(path)}: {needle} does not run on Windows PowerShell 5.1"
    for command in _nodes(tree, "command"):  # Join-Path takes two paths in 5.1
        if command.children[0].text == b"Join-Path":
            elements = _nodes(command, "command_elements")[0].children
            paths = [c for c in elements if c.type not in ("command_argument_sep", "command_parameter")]
            assert len(paths) <= 2, f"{_rel(path)}: {command.text.decode()}"


SCOPES = "env|script|global|local|private|using|function|variable"
DRIVE_QUALIFIED = re.compile(rf"\$(?!(?:{SCOPES}):)[A-Za-z_]\w*:(?![\w\\])")


def _bad_variable_references(source: str) -> list[str]:
    """`"... $Name: ..."` in an expandable string: PowerShell reads `$Name:` as a drive-qualified variable and
    refuses to parse the file (tree-sitter-powershell accepts it); `${Name}:` is the correct form."""
    strings = re.findall(r'"(?:[^"`]|`.)*"', source)
    return [m.group(0) for text in strings for m in DRIVE_QUALIFIED.finditer(text)]


def test_no_variable_is_read_as_a_drive_reference(script) -> None:
    path, _ = script
    assert _bad_variable_references(path.read_text()) == [], _rel(path)
    assert _bad_variable_references('Write-Host "in $Dist: done"') == ["$Dist:"]  # the check does fire
    assert _bad_variable_references('Write-Host "in ${Dist}: done $env:PATH"') == []


def test_every_sptrain_call_exists_in_the_parser(script, commands) -> None:
    path, tree = script
    analysis = analyse(tree)
    if _rel(path) in SPTRAIN_CALLERS:
        assert analysis.calls, f"{_rel(path)}: no sptrain call found"
    else:  # common.psm1 holds helpers; replace_models.ps1 goes through Install-DrivingModel
        assert analysis.calls == [], f"{_rel(path)}: calls sptrain itself"
    assert problems(analysis, commands) == []


def test_every_flag_belongs_to_an_argument_array(script) -> None:
    path, tree = script
    analysis = analyse(tree)
    assert analysis.stray_module == [], f"{_rel(path)}: the CLI module is named outside an sptrain array head"
    assert analysis.unattributed == [], f"{_rel(path)}: flags outside the convention"


@pytest.mark.parametrize(("key", "expected"), EXPECTED_CALLS.items(), ids=[f"{k[0]}:{k[1]}" for k in EXPECTED_CALLS])
def test_wrappers_pass_the_documented_flags(key, expected) -> None:
    rel, function = key
    calls = [c for c in analyse(_parse((REPO_ROOT / rel).read_bytes())).calls if c.function == function]
    assert [(c.command, set(c.flags)) for c in calls] == [expected]
    assert calls[0].positionals == EXPECTED_POSITIONALS.get(key, [])


def test_every_sptrain_call_is_expected() -> None:
    """Each wrapper's call has its documented mapping (setup_env.ps1 only asks sptrain doctor during installation)."""
    found = {(rel, c.function) for rel in SPTRAIN_CALLERS if rel != "windows/setup_env.ps1"
             for c in analyse(_parse((REPO_ROOT / rel).read_bytes())).calls}  # fmt: skip
    assert found == set(EXPECTED_CALLS) and set(EXPECTED_POSITIONALS) <= found


def test_env_module_functions_take_the_documented_parameters() -> None:
    functions = _functions(_parse(ENV_MODULE.read_bytes()))
    assert {name: list(_parameters(f)) for name, f in functions.items()} == FUNCTION_PARAMETERS


def test_drive_wrapper_takes_a_model_or_a_reference_driver(commands) -> None:
    drive = _functions(_parse(ENV_MODULE.read_bytes()))["Test-DrivingModel"]
    params = _parameters(drive)
    assert _default_set(drive) == "Model"
    assert _signature(params["ExportDir"]) == (["string"], ["Model"], True)
    assert _signature(params["Driver"]) == (["string"], ["Driver"], True)
    assert _signature(params["Output"]) == (["string"], [], True)
    parser = commands["drive"]
    choices = {a.option_strings[0]: list(a.choices) for a in parser._actions if a.option_strings and a.choices}
    for param, flag in (("Driver", "--driver"), ("Suite", "--suite"), ("Runtime", "--runtime")):
        assert _validate_set(drive, param) == (choices[flag], True), param  # every choice, exact case
    assert [a.dest for a in parser._actions if not a.option_strings] == ["export_dir"]  # $ExportDir is positional


def _exports(tree: Node) -> list[str]:
    [export] = [c for c in _nodes(tree, "command") if c.children[0].text == b"Export-ModuleMember"]
    return [v for item in _items(_command_arguments(export)["-Function"]) if (v := _literal(item))]


def test_env_module_exports_the_documented_functions() -> None:
    tree = _parse(ENV_MODULE.read_bytes())
    exported = _exports(tree)
    assert exported == EXPORTED
    assert set(exported) <= set(_functions(tree)) and not set(exported) & set(COMMON_EXPORTED)


def test_common_module_exports_the_shared_helpers() -> None:
    tree = _parse(COMMON.read_bytes())
    assert _exports(tree) == COMMON_EXPORTED
    assert list(_functions(tree)) == COMMON_EXPORTED  # nothing private: every helper it holds is shared


# --- the checks can fail ---------------------------------------------------------------------------------------

BAD_SNIPPET = b"""
function Invoke-Bad {
    [CmdletBinding()]
    param([ValidateSet('builtin', 'nope', IgnoreCase = $false)][string]$Simulator)
    $CliArgs = @('-m', 'sunnypilot_training.cli.main', 'pipeline', '--scenario', 'x', '--simulator', $Simulator)
    $CliArgs += @('--no-such-flag', 1)
    $Extra = @('--sneaky', 2)
    $CliArgs += $Extra
    $Map = @{ Seed = '--from-a-hashtable' }
    & $Python -m sunnypilot_training.cli.main collect --bare-flag
    Invoke-NativeCommand -FilePath $Python -ArgumentList @('-m', 'sunnypilot_training.cli.main', 'nosuchcommand')
    Invoke-NativeCommand -FilePath 'winget' -ArgumentList @('install', '--id', 'X')
}
"""


def test_the_flag_checks_catch_wrong_flags(commands) -> None:
    analysis = analyse(_parse(BAD_SNIPPET))
    pipeline = next(c for c in analysis.calls if c.command == "pipeline")
    assert pipeline.flags == ["--scenario", "--simulator", "--no-such-flag"]
    assert pipeline.positionals == ["$Extra"]  # 'x' and 1 are flag values; the side array, added alone, is not
    found = problems(analysis, commands)
    assert any("no flag --no-such-flag" in p for p in found), found
    assert any("--simulator may get ['nope']" in p for p in found), found
    assert any("nosuchcommand: no such sub-command" in p for p in found), found
    assert sorted(analysis.unattributed) == ["--bare-flag", "--from-a-hashtable", "--sneaky"]
    assert analysis.stray_module == ["line 10"]


BAD_SHARING = b"""
[CmdletBinding()]
param([int]$ExportDir, [string]$Nope)
Import-Module .\\windows\\env.psm1
function Invoke-NativeCommand {
    [CmdletBinding()]
    param()
    Import-Module (Join-Path $PSScriptRoot 'common.psm1')
}
& python -m pip install --upgrade pip
if ($LASTEXITCODE -ne 0) { throw 'failed' }
$Python = Join-Path $PSScriptRoot '.venv/bin/python'
Get-TrainingPython
"""
GOOD_IMPORTS_BAD_CALLS = b"""
[CmdletBinding()]
param([int]$ExportDir, [string]$Nope)
Import-Module (Join-Path $PSScriptRoot 'common.psm1') -Force
Import-Module (Join-Path $PSScriptRoot 'env.psm1') -Force
Get-TrainingPython -Quiet
Install-DrivingModel -ExportDir 'x' -DryRun:$true -Verbose -Frobnicate
Install-DrivingModel @PSBoundParameters
"""


def test_the_sharing_checks_catch_copies_and_bad_imports() -> None:
    tree = _parse(BAD_SHARING)
    assert not tree.has_error and not _parse(GOOD_IMPORTS_BAD_CALLS).has_error
    assert _duplicates({"a.ps1": tree, "b.ps1": _parse(b"function Invoke-NativeCommand { param() }")}) == [
        "Invoke-NativeCommand"
    ]
    assert _duplicates({"a.ps1": _parse(b"function Get-X { param() }\nfunction Get-X { param() }")}) == ["Get-X"]
    found = _sharing_problems(WINDOWS / "bad.ps1", tree, BAD_SHARING)
    assert any("env.psm1: not Import-Module (Join-Path" in p for p in found), found
    assert sum("no -Force" in p for p in found) == 2, found
    assert any("inside a function" in p for p in found), found
    assert "starts a program itself (use Invoke-NativeCommand of common.psm1)" in found
    assert {p.split()[1] for p in found if p.startswith("spells ")} == {".venv", "bin/python", "$LASTEXITCODE"}
    assert "does not import common.psm1 by a path built from $PSScriptRoot" not in found  # the nested one counts
    assert any("not import common.psm1" in p for p in _sharing_problems(WINDOWS / "bad.ps1", _parse(b"1"), b"1"))
    ours = _our_function_names()
    assert _call_problems(WINDOWS / "bad.ps1", _parse(b"Get-TrainingPython\nGet-Date"), ours) == [
        "Get-TrainingPython: neither defined in bad.ps1 nor exported by a module it imports"
    ]
    found = _call_problems(WINDOWS / "bad.ps1", _parse(GOOD_IMPORTS_BAD_CALLS), ours)
    assert found == ["Get-TrainingPython: no -Quiet", "Install-DrivingModel: no -Frobnicate",
                     "Install-DrivingModel: takes no -Nope",
                     "Install-DrivingModel -ExportDir: (['int'], [], False) here, (['string'], [], False) there",
                     "Install-DrivingModel: default parameter set Checkout, not None"]  # fmt: skip


# --- docs/windows.md -------------------------------------------------------------------------------------------


def _doc_commands() -> list[str]:
    """Each command in the fenced code blocks of docs/windows.md (split at ';' and '|')."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", DOCS.read_text(), re.DOTALL)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()
             if not line.lstrip().startswith("#")]  # fmt: skip
    return [part.strip() for line in lines for part in re.split(r"[;|]", line) if part.strip()]


def _sptrain_problems(args: list[str], commands: dict[str, argparse.ArgumentParser]) -> list[str]:
    """What the parser rejects in ``sptrain ARGS`` as the docs write it: the sub-command, its action, a --flag."""
    parser = commands.get(args[0]) if args else None
    if parser is None:
        return [f"no sub-command {args[:1]}"]
    rest = args[1:]
    positional = [a for a in parser._actions if not a.option_strings and a.choices]
    if positional and rest and not rest[0].startswith("-"):  # `carla start`, `contract show`
        if rest[0] not in positional[0].choices:
            return [f"{args[0]}: {rest[0]!r} is not among {list(positional[0].choices)}"]
        if isinstance(positional[0], argparse._SubParsersAction):
            return _sptrain_problems(rest, dict(positional[0].choices))
    known = {o for a in parser._actions for o in a.option_strings}
    return [f"{args[0]}: no flag {w}" for w in rest if w.startswith("--") and w.partition("=")[0] not in known]


def test_docs_show_only_commands_that_exist(commands) -> None:
    module = _parse((WINDOWS / "env.psm1").read_bytes())
    targets = {name: _parameters(f) for name, f in _functions(module).items() if name in EXPORTED}
    targets |= {path.name: _parameters(_parse(path.read_bytes())) for path in ALL_SCRIPTS}
    seen, wrong = set(), []
    for command in _doc_commands():
        words = command.split()
        names = [Path(w.replace("\\", "/")).name for w in words]  # .\venv\Scripts\sptrain.exe is sptrain too
        if "sptrain" in names or "sptrain.exe" in names:
            at = names.index("sptrain") if "sptrain" in names else names.index("sptrain.exe")
            args = words[at + 1 :]
            wrong += [f"{command}: {p}" for p in _sptrain_problems(args, commands)]
            seen.add(f"sptrain {args[0] if args else ''}")
            continue
        name = Path(words[0].replace("\\", "/")).name
        if name in targets:
            seen.add(name)
            wrong += [f"{command}: {w}" for w in words[1:] if re.fullmatch(r"-[A-Z]\w*", w) and
                      w[1:] not in targets[name]]  # fmt: skip
    assert wrong == []
    assert set(EXPORTED) | {"setup_env.ps1", "run_full_training.ps1", "replace_models.ps1"} <= seen, seen
    assert {"sptrain inspect", "sptrain carla", "sptrain doctor", "sptrain collect", "sptrain train",
            "sptrain export", "sptrain drive"} <= seen, seen  # fmt: skip


def test_the_docs_check_catches_a_wrong_command(commands) -> None:
    assert _sptrain_problems(["carla", "restart"], commands)
    assert _sptrain_problems(["collect", "--no-such-flag"], commands)
    assert _sptrain_problems(["contract", "show", "--no-such-flag"], commands)
    assert _sptrain_problems(["frobnicate"], commands)
    assert _sptrain_problems(["contract", "show", "--profile", "op-0.10.1"], commands) == []


# --- what the scripts ask Python, and in which order ------------------------------------------------------------


def test_setup_asks_sptrain_doctor_each_decision() -> None:
    calls = analyse(_parse((WINDOWS / "setup_env.ps1").read_bytes())).calls
    asked = sorted(sorted(c.flags) for c in calls if c.command == "doctor")
    assert asked == sorted([[], ["--carla-root"], ["--cpu", "--torch-index"], ["--cuda", "--torch-index"],
                            ["--torch-requirement"], ["--torch-matches"], ["--torch-verify"]])  # fmt: skip
    assert {c.command for c in calls} == {"doctor"}


def _first(code: str, needle: str) -> int:
    assert needle in code, needle
    return code.index(needle)


def test_setup_checks_carla_first_and_installs_the_chosen_torch_build() -> None:
    path = WINDOWS / "setup_env.ps1"
    code = _without_comments(_parse(path.read_bytes()), path.read_bytes())
    order = ["'--carla-root'", "'--torch-index'", "'--torch-matches'", "'uninstall', '--yes', 'torch'",
             "'install', $TorchRequirement, '--index-url', $TorchIndex", "'--torch-verify'",
             "'--force-reinstall', '--no-deps', $Carla.client",
             "SetEnvironmentVariable('CARLA_ROOT', $Carla.carla_root"]  # CARLA_ROOT only for a folder that passed
    positions = [_first(code, needle) for needle in order]
    assert positions == sorted(positions), "setup steps out of order"
    assert "'--upgrade', 'torch'" not in code  # pip would keep a build whose local label sorts higher
    assert "if ($SameBuild -eq 'yes')" in code  # the installed torch is removed only when it is another build
    assert "Get-ComputeCapability" not in code and "nvidia-smi" not in code  # sptrain doctor reads nvidia-smi now


def _default(scope: Node, name: str) -> str | None:
    found = re.search(r"=\s*'([^']*)'\s*$", _parameters(scope)[name].text.decode())
    return found.group(1) if found else None


def test_the_short_commands_start_carla_and_collect_with_it_when_it_answers(commands) -> None:
    functions = _functions(_parse(ENV_MODULE.read_bytes()))
    assert _default(functions["Invoke-Carla"], "Action") == "Start"
    assert _default(functions["Invoke-Collector"], "Simulator") == "auto"
    script = _parse((WINDOWS / "run_full_training.ps1").read_bytes())
    assert _default(script, "Simulator") == "auto"
    for parser_name in ("collect", "pipeline"):
        [simulator] = [a for a in commands[parser_name]._actions if "--simulator" in a.option_strings]
        assert "auto" in simulator.choices
    for rel, function in (("windows/run_full_training.ps1", None), ("windows/env.psm1", "Invoke-Collector")):
        [call] = [c for c in analyse(_parse((REPO_ROOT / rel).read_bytes())).calls if c.function == function]
        source = (REPO_ROOT / rel).read_text()
        assert "--simulator" in call.flags and "ContainsKey('Simulator')" not in source  # always passed


def test_the_install_target_falls_back_to_sunnypilot_root_then_the_current_checkout() -> None:
    install = _functions(_parse(ENV_MODULE.read_bytes()))["Install-DrivingModel"]
    text = install.text.decode()
    for needle in ("$env:SUNNYPILOT_ROOT", "(Get-Location).ProviderPath", "'selfdrive\\modeld'",
                   "throw \"No install target: pass -SunnypilotRoot", "-ModelsDir <a model folder>"):
        assert needle in text, needle
    assert _signature(_parameters(install)["SunnypilotRoot"]) == (["string"], ["Checkout"], False)
