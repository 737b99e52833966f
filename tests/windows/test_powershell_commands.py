"""Every PowerShell command the guides show binds to our scripts' parameters as PowerShell would bind it (checked
statically, no PowerShell runs here): names that exist, one parameter set, no mandatory parameter left to a prompt,
positional words that have a place, and values that pass [ValidateSet] / [ValidateRange] / [ValidatePattern].

The guides are docs/windows.md, the Windows section of README.md and of docs/export-install.md. docs/windows.md's
"Short commands" section holds the commands of the guide's first version (an Invoke-Carla with only -Port, two
Invoke-Collector calls without -Seed, run_full_training.ps1 with four parameters and replace_models.ps1 with the four
model files); they must bind without a prompt too. The guides' PowerShell blocks must also parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from spt_testutil import REPO_ROOT

ENV_MODULE = REPO_ROOT / "windows" / "env.psm1"
SCRIPTS = [REPO_ROOT / "windows" / "setup_env.ps1", REPO_ROOT / "windows" / "run_full_training.ps1",
           REPO_ROOT / "integration" / "replace_models.ps1"]  # fmt: skip
GUIDES = {  # file -> the heading of the section that counts (None: the whole file)
    "docs/windows.md": None,
    "README.md": "## Windows walkthrough",
    "docs/export-install.md": "## Windows",
}
SHORT_COMMANDS_HEADING = "## 13. Short commands"
# The first guide's commands: the command and exactly the parameters it named (issue 14, point 5).
FIRST_GUIDE = [
    ("Invoke-Carla", {"Port"}),
    ("Invoke-Collector", {"Scenario", "Episodes", "Output"}),
    ("Invoke-Collector", {"Scenario", "Episodes", "Output"}),
    ("run_full_training.ps1", {"Scenario", "TrainEpisodes", "ValEpisodes", "OutputDir"}),
    ("replace_models.ps1", {"VisionTinygrad", "VisionMetadata", "PolicyTinygrad", "PolicyMetadata"}),
]
ALL_SETS = "__AllParameterSets"


def _parse(source: bytes) -> Node:
    return Parser(Language(tree_sitter_powershell.language())).parse(source).root_node


def _nodes(node: Node, kind: str) -> list[Node]:
    found = [node] if node.type == kind else []
    for child in node.children:
        found += _nodes(child, kind)
    return found


@dataclass
class Param:
    name: str
    kind: str
    sets: dict[str, tuple[bool, int | None]]  # set -> (mandatory, position)
    choices: tuple[list[str], bool] | None = None  # [ValidateSet] values, exact case
    bounds: tuple[float, float] | None = None  # [ValidateRange]
    pattern: str | None = None  # [ValidatePattern]


@dataclass
class Signature:
    name: str
    params: dict[str, Param] = field(default_factory=dict)
    default_set: str | None = None


def _signature(name: str, scope: Node) -> Signature:
    holder = scope if scope.type == "program" else next(c for c in scope.children if c.type == "script_block")
    block = next(c for c in holder.children if c.type == "param_block")
    default = re.search(r"DefaultParameterSetName\s*=\s*'(\w+)'", block.text.decode())
    signature = Signature(name, default_set=default.group(1) if default else None)
    for node in _nodes(block, "script_parameter"):
        text = node.text.decode()
        pname = next(c for c in node.children if c.type == "variable").text.decode().lstrip("$")
        kind = re.findall(r"\[(switch|string\[\]|string|int|double)\]", text)[-1]
        sets = {}
        for attribute in re.findall(r"\[Parameter\(([^)]*)\)\]", text) or [""]:
            set_name = re.search(r"ParameterSetName\s*=\s*'(\w+)'", attribute)
            position = re.search(r"Position\s*=\s*(\d+)", attribute)
            sets[set_name.group(1) if set_name else ALL_SETS] = (
                bool(re.search(r"Mandatory\s*=\s*\$true", attribute)), int(position.group(1)) if position else None)
        param = Param(pname, kind, sets)
        if found := re.search(r"\[ValidateSet\(([^)]*)\)\]", text):
            values = re.findall(r"'([^']*)'", found.group(1).split("IgnoreCase")[0])
            param.choices = values, bool(re.search(r"IgnoreCase\s*=\s*\$false", found.group(1)))
        if found := re.search(r"\[ValidateRange\(([-\d.]+),\s*([-\d.]+)\)\]", text):
            param.bounds = float(found.group(1)), float(found.group(2))
        if found := re.search(r"\[ValidatePattern\('((?:[^']|'')*)'\)\]", text):
            param.pattern = found.group(1).replace("''", "'")
        signature.params[pname] = param
    return signature


def _signatures() -> dict[str, Signature]:
    """Our commands by the name a guide calls them: env.psm1's exported functions and the scripts' file names."""
    found = {}
    module = _parse(ENV_MODULE.read_bytes())
    for function in _nodes(module, "function_statement"):
        name = _nodes(function, "function_name")[0].text.decode()
        found[name] = _signature(name, function)
    for path in SCRIPTS:
        found[path.name] = _signature(path.name, _parse(path.read_bytes()))
    return found


def _value_problems(param: Param, value: str) -> list[str]:
    if value.startswith(("$", "(", "@")):  # computed at run time
        return []
    plain = value.strip("'\"")
    found = []
    if param.choices is not None:
        values, exact = param.choices
        ok = plain in values if exact else plain.lower() in {v.lower() for v in values}
        found += [] if ok else [f"-{param.name} {plain!r} is not among {values}"]
    if param.kind == "int":
        if not re.fullmatch(r"-?\d+", plain):
            return found + [f"-{param.name} {plain!r} is not a whole number"]
        if param.bounds and not param.bounds[0] <= int(plain) <= param.bounds[1]:
            found.append(f"-{param.name} {plain} is outside {param.bounds}")
    if param.pattern is not None and not re.search(param.pattern, plain, re.IGNORECASE):
        found.append(f"-{param.name} {plain!r} does not match {param.pattern!r}")
    return found


def binding_problems(signature: Signature, words: list[str]) -> list[str]:
    """What keeps PowerShell from binding ``words`` to ``signature`` without a prompt. A guide's ``...`` (the
    parameters shown above) leaves out the check for mandatory and positional parameters."""
    partial = "..." in words
    words = [word for word in words if word != "..."]
    by_lower = {name.lower(): param for name, param in signature.params.items()}
    given: dict[str, list[str]] = {}
    positional: list[str] = []
    problems: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        named = re.fullmatch(r"-([A-Za-z]\w*)(:(.*))?", word)
        if named is None:
            positional.append(word)
            i += 1
            continue
        param = by_lower.get(named.group(1).lower())
        if param is None:
            problems.append(f"no parameter -{named.group(1)}")
            i += 2 if i + 1 < len(words) and not words[i + 1].startswith("-") else 1  # and its value
            continue
        if param.kind == "switch" or named.group(2):
            given[param.name] = [named.group(3) or "$true"]
            i += 1
            continue
        values = words[i + 1 : i + 2]
        i += 2
        while param.kind == "string[]" and values and values[-1].endswith(",") and i < len(words):
            values.append(words[i])
            i += 1
        if not values:
            problems.append(f"-{param.name} has no value")
        given[param.name] = [v.rstrip(",") for v in values]
    sets = sorted({s for p in signature.params.values() for s in p.sets if s != ALL_SETS}) or [ALL_SETS]
    usable = [s for s in sets if all(set(signature.params[p].sets) & {s, ALL_SETS} for p in given)]
    chosen = usable[0] if len(usable) == 1 else signature.default_set if signature.default_set in usable else None
    if chosen is None:
        return problems + [f"no single parameter set fits {sorted(given)} (sets {usable})"]
    in_set = {n: p.sets.get(chosen, p.sets.get(ALL_SETS)) for n, p in signature.params.items()
              if set(p.sets) & {chosen, ALL_SETS}}  # fmt: skip
    places = sorted((pos, n) for n, (_, pos) in in_set.items() if pos is not None and n not in given)
    if len(positional) > len(places):
        problems.append(f"no place for the positional {positional[len(places):]}")
    given |= {name: [word] for (_, name), word in zip(places, positional)}
    problems += [f"-{n} is mandatory (PowerShell would prompt)" for n, (mandatory, _) in in_set.items()
                 if mandatory and n not in given and not partial]  # fmt: skip
    for name, values in given.items():
        for value in values:
            problems += _value_problems(signature.params[name], value)
    return problems


def _section(text: str, heading: str) -> str:
    """From ``heading`` to the next heading of its level or above (lines inside code fences are not headings)."""
    lines, level, inside, fenced = [], heading.split()[0], False, False
    for line in text.splitlines(keepends=True):
        fenced ^= line.startswith("```")
        is_heading = not fenced and re.match(r"#+ ", line)
        if inside and is_heading and len(line.split()[0]) <= len(level):
            break
        inside = inside or line.rstrip("\n") == heading
        if inside:
            lines.append(line)
    assert lines, f"no section {heading!r}"
    return "".join(lines)


def _blocks(path: str, heading: str | None) -> list[str]:
    text = (REPO_ROOT / path).read_text()
    if heading is not None:
        text = _section(text, heading)
    return re.findall(r"```powershell\n(.*?)```", text, re.DOTALL)


def _commands(block: str) -> list[str]:
    """The commands of a block: continuation lines joined, comments and statement separators removed."""
    joined = re.sub(r"`\n\s*", " ", block)
    lines = [line.split(" #")[0].strip() for line in joined.splitlines() if not line.lstrip().startswith("#")]
    return [part.strip() for line in lines for part in line.split(";") if part.strip()]


def _our_commands(commands: list[str], signatures: dict[str, Signature]) -> list[tuple[str, list[str]]]:
    found = []
    for command in commands:
        words = command.split()
        name = Path(words[0].replace("\\", "/")).name
        if name in signatures:
            found.append((name, words[1:]))
    return found


@pytest.fixture(scope="module")
def signatures() -> dict[str, Signature]:
    return _signatures()


@pytest.mark.parametrize(("path", "heading"), GUIDES.items(), ids=list(GUIDES))
def test_every_command_in_the_guides_binds_without_a_prompt(path, heading, signatures) -> None:
    commands = _our_commands([c for b in _blocks(path, heading) for c in _commands(b)], signatures)
    assert commands, f"{path}: no command of ours found"
    wrong = [f"{name} {' '.join(words)}: {problem}" for name, words in commands
             for problem in binding_problems(signatures[name], words)]  # fmt: skip
    assert wrong == []


@pytest.mark.parametrize(("path", "heading"), GUIDES.items(), ids=list(GUIDES))
def test_the_guides_powershell_blocks_parse(path, heading) -> None:
    for block in _blocks(path, heading):
        tree = _parse(block.encode())
        assert not tree.has_error, f"{path}: {block[:200]}"


def test_the_first_guide_s_commands_are_in_the_guide_and_bind(signatures) -> None:
    [block] = _blocks("docs/windows.md", SHORT_COMMANDS_HEADING)
    commands = _our_commands(_commands(block), signatures)
    named = [(name, {w[1:] for w in words if re.fullmatch(r"-[A-Za-z]\w*", w)}) for name, words in commands]
    assert named == FIRST_GUIDE
    for name, words in commands:
        assert binding_problems(signatures[name], words) == [], (name, words)


def test_the_binder_catches_what_powershell_would_refuse_or_prompt_for(signatures) -> None:
    collector, install = signatures["Invoke-Collector"], signatures["Install-DrivingModel"]
    assert binding_problems(collector, ["-Scenario", "x", "-Episodes", "2"]) == [
        "-Output is mandatory (PowerShell would prompt)"]
    assert binding_problems(collector, ["-Scenario", "curvy-road", "-Episodes", "0", "-Output", "o", "-Simulator",
                                        "Carla", "-Frobnicate", "1"]) == [
        "no parameter -Frobnicate", "-Scenario 'curvy-road' does not match '^[a-z][a-z0-9_]*$'",
        "-Episodes 0 is outside (1.0, 1000000.0)", "-Simulator 'Carla' is not among ['auto', 'builtin', 'carla']"]
    assert binding_problems(collector, ["-Scenario", "Curvy_Road", "-Episodes", "1", "-Output", "o"]) == []  # as 5.1
    assert "no single parameter set" in binding_problems(install, ["-SunnypilotRoot", "a", "-ModelsDir", "b"])[0]
    assert binding_problems(signatures["Test-DrivingModel"], ["runs\\x", "y", "-Output", "o"]) == [
        "no place for the positional ['y']"]
    assert binding_problems(signatures["Test-DrivingModel"], ["runs\\x", "-Output", "o"]) == []  # -ExportDir by place
    # before this change the seed's replace_models.ps1 call prompted for -SunnypilotRoot: the binder sees that
    mandatory_root = Signature("old", dict(install.params), install.default_set)
    mandatory_root.params["SunnypilotRoot"] = Param("SunnypilotRoot", "string", {"Checkout": (True, None)})
    files = ["-VisionTinygrad", "a", "-VisionMetadata", "b", "-PolicyTinygrad", "c", "-PolicyMetadata", "d"]
    assert binding_problems(mandatory_root, files) == ["-SunnypilotRoot is mandatory (PowerShell would prompt)"]
    assert binding_problems(install, files) == []
