"""Minimal stand-ins for the native-code modules a checkout's ``modeld.py`` imports, so that its own model-state
class can be imported and run in a plain Python process.

``modeld.py`` imports messaging (cereal over capnp, msgq), visionipc, params, logging, realtime/hardware helpers and
the car interface at module level, but its model-state class needs none of them: they serve ``main()``, which the
smoke test never calls. ``install_standins`` puts two finders on ``sys.meta_path``:

* first, for ``STANDIN_MODULES`` and their submodules: those names are always answered with a ``StandinModule``
  (the checkout's own copy is not imported: it would load capnp schemas, open sockets or touch hardware);
* last, for what no other finder found: modules of the checkout's ``openpilot`` package whose Cython source
  (``<name>.pyx``) is there (extensions a checkout only has after its build), and the native packages of the
  openpilot environment (``NATIVE_PACKAGES``: capnp, zmq, setproctitle, zstandard) when they are not installed.

A ``StandinModule`` answers any attribute with a ``Standin``: an inert object that can be read further, called,
indexed, subclassed and used in type annotations, and is false (``if TICI:`` takes the PC path). Every name
answered is recorded (``Standins.answered``) for the report. Written for this toolkit from the import lists of the
modeld.py files named in docs/contract.md.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

STANDIN_MODULES = (
    "cereal", "openpilot.cereal",  # capnp messaging, services, log schema
    "msgq",  # visionipc and the message queue (C++)
    "opendbc",  # the car interface: CarParams for main()
    "openpilot.common.params", "openpilot.common.swaglog",  # Params (C++), cloudlog (zmq)
    "openpilot.common.hardware", "openpilot.system.hardware",  # device hardware access
    "openpilot.selfdrive.modeld.usbgpu_link",  # the USB GPU link (hardware)
)
# third-party native packages of the openpilot environment, stood in only when not installed here
NATIVE_PACKAGES = ("capnp", "zmq", "setproctitle", "zstandard")
CHECKOUT_PACKAGE = "openpilot"
NATIVE = "native code or IPC: always stood in"
BUILD_OUTPUT = "not in the checkout (an extension its build makes)"
NOT_INSTALLED = "a native package of the openpilot environment, not installed here"


class Standin:
    """Any attribute, call or item of a stood-in module: inert, named for error messages."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Standin:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Standin(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs) -> Standin:
        return Standin(f"{self._name}()")

    def __getitem__(self, key) -> Standin:
        return Standin(f"{self._name}[{key!r}]")

    def __iter__(self):
        return iter(())

    def __bool__(self) -> bool:  # ``if TICI:`` - no device hardware here: the PC paths
        return False

    def __or__(self, other):  # ``VisionBuf | None`` in an annotation
        return self

    __ror__ = __or__

    def __mro_entries__(self, bases: tuple) -> tuple:  # ``class X(messaging.SubMaster)``
        return (object,)

    def __repr__(self) -> str:
        return f"<stand-in {self._name}>"


class StandinModule(types.ModuleType):
    """A module (and package) whose every attribute is a ``Standin``."""

    def __init__(self, name: str):
        super().__init__(name, f"stand-in for {name} (sunnypilot_training.integration.native_standins)")
        self.__path__: list[str] = []

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Standin(f"{self.__name__}.{attr}")


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return StandinModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@dataclass
class Standins:
    """The finders and what they answered: ``{module name: why}``."""

    answered: dict[str, str] = field(default_factory=dict)
    finders: list = field(default_factory=list)

    def spec(self, name: str, why: str) -> importlib.machinery.ModuleSpec:
        self.answered.setdefault(name, why)
        return importlib.machinery.ModuleSpec(name, _Loader(), is_package=True)

    def remove(self) -> None:
        """Take the finders off ``sys.meta_path`` and forget the stand-in modules they made."""
        for finder in self.finders:
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
        for name in self.answered:
            if isinstance(sys.modules.get(name), StandinModule):
                del sys.modules[name]


class _NativeFinder(importlib.abc.MetaPathFinder):
    def __init__(self, standins: Standins):
        self.standins = standins

    def find_spec(self, fullname, path=None, target=None):
        if _under(fullname, STANDIN_MODULES):
            return self.standins.spec(fullname, NATIVE)
        return None


class _BuildOutputFinder(importlib.abc.MetaPathFinder):
    """Answers a module of the checkout that no finder found only when its Cython source is there (``<leaf>.pyx``):
    an extension the checkout's build makes. A missing Python module stays missing (ImportError)."""

    def __init__(self, standins: Standins):
        self.standins = standins

    def find_spec(self, fullname, path=None, target=None):
        leaf = fullname.rpartition(".")[2]
        if _under(fullname, (CHECKOUT_PACKAGE,)) and any((Path(p) / f"{leaf}.pyx").is_file() for p in path or ()):
            return self.standins.spec(fullname, BUILD_OUTPUT)
        if _under(fullname, NATIVE_PACKAGES):
            return self.standins.spec(fullname, NOT_INSTALLED)
        return None


def install_standins() -> Standins:
    """Put the finders on ``sys.meta_path`` (and drop already imported modules they answer for)."""
    for name in [m for m in sys.modules if _under(m, STANDIN_MODULES)]:
        del sys.modules[name]
    standins = Standins()
    standins.finders = [_NativeFinder(standins), _BuildOutputFinder(standins)]
    sys.meta_path.insert(0, standins.finders[0])
    sys.meta_path.append(standins.finders[1])
    return standins
