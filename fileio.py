"""Files written so that a crash never leaves half of one behind (a base module: standard library only).

Every file the toolkit writes for later use goes through :func:`atomic_writer` (or one of its shortcuts): the
content goes into a hidden temporary file beside the destination, is flushed to disk, and is renamed over the
destination in one step. Temporaries are named ``.<name>.tmp-<pid>-<token>``, so a later run can tell those of a
dead process (:func:`pid_alive`) from those of a running one. Also here: the sha256 of a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_STILL_ACTIVE = 259
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_BLOCK_BYTES = 1 << 20


def temporary_path(dst: str | os.PathLike) -> Path:
    """A hidden, unique temporary path beside ``dst`` that names this process: ``.<name>.tmp-<pid>-<token>``."""
    dst = Path(dst)
    return dst.with_name(f".{dst.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


@contextlib.contextmanager
def atomic_writer(dst: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """``with atomic_writer(path) as f: ...`` writes ``path`` all at once or not at all (the folder is created).

    Text modes default to UTF-8, whatever the platform's locale (Windows would otherwise write ANSI).
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(dst)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    try:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(dst: str | os.PathLike, data: bytes) -> Path:
    with atomic_writer(dst, "wb") as f:
        f.write(data)
    return Path(dst)


def atomic_write_text(dst: str | os.PathLike, text: str) -> Path:
    """``text`` as UTF-8, atomically."""
    with atomic_writer(dst, "w") as f:
        f.write(text)
    return Path(dst)


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Copy ``src`` over ``dst`` atomically, keeping ``src``'s permission bits; returns the copy's sha256."""
    digest = hashlib.sha256()
    with open(src, "rb") as fin, atomic_writer(dst, "wb") as fout:
        for block in iter(lambda: fin.read(_BLOCK_BYTES), b""):
            digest.update(block)
            fout.write(block)
        shutil.copymode(src, fout.name)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _windows_alive(pid: int) -> bool:
    import ctypes  # Windows only
    from ctypes import wintypes  # Windows only

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return ctypes.get_last_error() == 5  # access denied: it exists
    try:
        code = wintypes.DWORD()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def pid_alive(pid: int, reap: bool = False) -> bool:
    """Whether process ``pid`` runs, on Linux and Windows (``os.kill(pid, 0)`` would send Ctrl+C on Windows).

    ``reap``: a child of this process that has exited is waited for (else it lingers as a zombie and looks alive);
    only for children nobody else waits for."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_alive(pid)
    if reap:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        except ChildProcessError:
            pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
