"""Checks the double's public surface against the real ``carla`` module (used by the tests).

* every public class, enum member, method and attribute the double exposes exists in the real module, on the
  same class, as the same kind of thing (a method where the real one is a method, a data attribute where the
  real one is a property);
* enums have the real member names and values;
* where a real method's Boost.Python docstring carries signatures (``tick( (World)arg1 [, (float)seconds=0.0])
  -> int``), the double's parameter names and defaults match one of its overloads (``argN`` names are
  positional-only in the real module and match any name).
"""

from __future__ import annotations

import inspect
import re
import types

from .enums import BoostEnum

DOUBLE_ONLY = {
    "serve",
    "stop_all",
    "serve_from_env",
    "get_server",
    "Server",
    "Faults",
    "client_id",
    "set_timeout_wait_cap",
    "frame_of",
}
# (class, method): why the double's signature differs from every real overload
SIGNATURE_EXCEPTIONS = {
    ("World", "get_actors"): "the real overloads get_actors() and get_actors(actor_ids) are one optional argument",
    ("DestroyActor", "__init__"): "one argument takes an actor or an id; defaulted for the no-argument overload",
    ("SpawnActor", "__init__"): "the real overloads (blueprint, transform[, parent[, attachment_type, socket]]) "
    "are one signature with defaults",
    ("SetAutopilot", "__init__"): "one argument takes an actor or an id; defaulted for the no-argument overload",
    ("SetSimulatePhysics", "__init__"): "one argument takes an actor or an id",
    ("ApplyTransform", "__init__"): "one argument takes an actor or an id",
    ("ApplyVehicleControl", "__init__"): "one argument takes an actor or an id",
    ("SetVehicleLightState", "__init__"): "one argument takes an actor or an id",
}
_SIG = re.compile(r"^\s*(\w+)\((.*)\)\s*->")
_MISSING = object()


def _tokens(arglist: str):
    text = arglist.replace("[", " ").replace("]", " ")
    out = []
    for part in (p.strip() for p in text.split(",")):
        m = re.match(r"\((\w+)\)(\w+)(?:=(.*))?$", part)
        if m:
            out.append((m.group(2), m.group(3).strip() if m.group(3) is not None else _MISSING))
    return out


def real_overloads(func, name: str) -> list:
    """[[(param name, default text or _MISSING)], ...] from a Boost.Python docstring (self removed)."""
    overloads = []
    for line in (getattr(func, "__doc__", None) or "").splitlines():
        m = _SIG.match(line)
        if not m or m.group(1) != name:
            continue
        toks = _tokens(m.group(2))
        if toks and (name != "__init__" or toks[0][0] == "arg1"):
            toks = toks[1:]  # (a Boost quirk names __init__'s self after the first argument: keep those)
        overloads.append(toks)
    return overloads


def _same_default(real_text, value) -> bool:
    if real_text is _MISSING or value is inspect.Parameter.empty:
        return (real_text is _MISSING) == (value is inspect.Parameter.empty)
    if real_text.startswith("<"):
        return True  # an object repr: not comparable
    if real_text in ("True", "False"):
        return value is (real_text == "True")
    if real_text == "None":
        return value is None
    if real_text[:1] in "'\"":
        return value == real_text[1:-1]
    if real_text.startswith("carla."):
        return str(value) == real_text.rsplit(".", 1)[-1]
    try:
        return abs(float(real_text) - float(value)) < 1e-9
    except (TypeError, ValueError):
        return False


def _matches(overload, params) -> bool:
    if len(overload) != len(params):
        return False
    for (rname, rdefault), p in zip(overload, params):
        if not re.fullmatch(r"arg\d+", rname) and rname != p.name:
            return False
        if not _same_default(rdefault, p.default):
            return False
    return True


def public_classes(double) -> dict:
    out = {}
    for name in dir(double):
        obj = getattr(double, name)
        if not name.startswith("_") and name not in DOUBLE_ONLY and isinstance(obj, type):
            out[name] = obj
    for name in dir(double.command):
        obj = getattr(double.command, name)
        if not name.startswith("_") and isinstance(obj, type):
            out["command." + name] = obj
    return out


def check(real, double) -> list[str]:
    """Problems found (an empty list when the double conforms)."""
    problems = []
    for name in dir(double):
        obj = getattr(double, name)
        if name.startswith("_") or name in DOUBLE_ONLY or (isinstance(obj, types.ModuleType) and name != "command"):
            continue
        if not hasattr(real, name):
            problems.append(f"carla.{name} does not exist")
    for qual, cls in public_classes(double).items():
        real_cls = real
        for part in qual.split("."):
            real_cls = getattr(real_cls, part, None)
        if real_cls is None:
            problems.append(f"carla.{qual} does not exist")
            continue
        if issubclass(cls, BoostEnum):
            if {k: int(v) for k, v in cls.names.items()} != {k: int(v) for k, v in real_cls.names.items()}:
                problems.append(f"enum {qual}: members differ from the real ones")
            continue
        for attr in dir(cls):
            if attr.startswith("_") and attr != "__init__":
                continue
            if not hasattr(real_cls, attr):
                problems.append(f"carla.{qual}.{attr} does not exist")
                continue
            problems += _check_member(qual, attr, cls, real_cls)
    return problems


def _check_member(qual: str, attr: str, cls, real_cls) -> list[str]:
    real_attr = inspect.getattr_static(real_cls, attr)
    mine = inspect.getattr_static(cls, attr)
    real_is_data = isinstance(real_attr, property) or not callable(getattr(real_cls, attr))
    mine_is_data = not isinstance(mine, types.FunctionType | classmethod | staticmethod)
    if attr != "__init__" and real_is_data != mine_is_data:
        kind = "an attribute/property" if real_is_data else "a method"
        return [f"carla.{qual}.{attr} is {kind} in the real module"]
    if real_is_data or (qual.split(".")[-1], attr) in SIGNATURE_EXCEPTIONS:
        return []
    overloads = real_overloads(getattr(real_cls, attr), attr)
    if not overloads:
        return []
    params = list(inspect.signature(getattr(cls, attr)).parameters.values())[1:]
    if any(_matches(o, params) for o in overloads):
        return []
    mine_text = ", ".join(str(p) for p in params)
    return [f"carla.{qual}.{attr}({mine_text}) matches no real overload {overloads}"]
