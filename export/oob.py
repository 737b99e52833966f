"""The out-of-band pickle layout of openpilot's 2026 model pickles (a format fact, implemented here).

``int64 LE n``, then ``n`` bytes of protocol-5 pickle opcodes, then for every out-of-band buffer in the order
the pickler met it: ``int64 LE nbytes`` and the raw bytes. Loading reads the opcodes and hands the buffers to
``pickle.load(..., buffers=...)``. Loading executes the pickle: only for files this toolkit wrote.
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import IO, Any

_LENGTH = struct.Struct("<q")


def dump_oob(obj: Any, f: IO[bytes]) -> None:
    buffers: list[bytes] = []

    def keep(view: pickle.PickleBuffer) -> None:
        buffers.append(bytes(view.raw()))

    stream = io.BytesIO()
    pickle.Pickler(stream, protocol=5, buffer_callback=keep).dump(obj)
    opcodes = stream.getvalue()
    f.write(_LENGTH.pack(len(opcodes)))
    f.write(opcodes)
    for data in buffers:
        f.write(_LENGTH.pack(len(data)))
        f.write(data)


def load_oob(f: IO[bytes]) -> Any:
    (n,) = _LENGTH.unpack(f.read(_LENGTH.size))
    opcodes = f.read(n)
    buffers = []
    while header := f.read(_LENGTH.size):
        (size,) = _LENGTH.unpack(header)
        data = bytearray(size)
        if f.readinto(data) != size:
            raise EOFError(f"out-of-band pickle ends inside a {size}-byte buffer")
        buffers.append(pickle.PickleBuffer(data))
    return pickle.load(io.BytesIO(opcodes), buffers=buffers)  # noqa: S301 - our own files only


def is_oob(head: bytes) -> bool:
    """True when the first bytes look like the out-of-band layout (a length, then a protocol-5 pickle)."""
    return len(head) >= 10 and head[8:10] == b"\x80\x05"
