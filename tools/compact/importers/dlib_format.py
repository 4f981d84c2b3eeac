"""dlib's serialization format, read with numpy only (no dlib).

Integers are a control byte (sign bit, byte count) and little-endian bytes; floats are a
mantissa and an exponent; tensors are raw float32. Every read knows its byte offset, so a
mismatch names the file, the offset and the layer being read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from tools.compact.errors import ToolError

T = TypeVar("T")


class DlibReader:
    """Typed reader of dlib's serialization format that tracks the byte offset."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path
        self.where = "file header"

    def error(self, message: str, offset: int | None = None) -> ToolError:
        """Return a ToolError naming the file, the byte offset and what was being read."""
        at = self.pos if offset is None else offset
        return ToolError(f"{self.path}: {message} at byte {at} ({self.where})")

    def take(self, size: int) -> bytes:
        """Return the next ``size`` bytes."""
        if self.pos + size > len(self.data):
            raise self.error(f"unexpected end of file (need {size} bytes)")
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def integer(self, max_bytes: int = 8, signed: bool = True) -> int:
        """Read dlib's variable-length integer: a control byte (sign, size), then the bytes."""
        control = self.take(1)[0]
        size = control & 0x0F
        if size == 0 or size > max_bytes or (not signed and control & 0x80):
            raise self.error(f"bad integer control byte 0x{control:02x}", self.pos - 1)
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def int32(self) -> int:
        """Read a signed integer of at most 4 bytes."""
        return self.integer(4)

    def ints(self, longs: int, ints: int) -> tuple[int, ...]:
        """Read ``longs`` 64-bit and then ``ints`` 32-bit signed integers."""
        return (*(self.integer() for _ in range(longs)), *(self.int32() for _ in range(ints)))

    def uint64(self) -> int:
        """Read an unsigned integer of at most 8 bytes."""
        return self.integer(8, signed=False)

    def boolean(self) -> bool:
        """Read a bool stored as the character 0 or 1."""
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.error(f"bad bool byte {byte!r}", self.pos - 1)
        return byte == b"1"

    def string(self) -> str:
        """Read a length-prefixed string (layer names are short)."""
        start = self.pos
        size = self.uint64()
        if size > 64:
            raise self.error(f"string length {size} is implausible", start)
        return self.take(size).decode("latin-1")

    def real(self) -> float:
        """Read a float_details scalar (mantissa int64, exponent int16) like dlib's float."""
        start = self.pos
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.error("legacy ASCII floats are not supported", start)
        mantissa, exponent = self.integer(8), self.integer(2)
        if exponent >= 32000:
            raise self.error(f"non-finite float (exponent {exponent})", start)
        return float(np.float32(math.ldexp(float(np.float32(mantissa)), exponent)))

    def dims(self) -> tuple[int, int, int, int]:
        """Read four integers: a tensor's shape."""
        return (self.integer(), self.integer(), self.integer(), self.integer())

    def tensor(self) -> np.ndarray:
        """Read a resizable_tensor (version 2, 4 dims, raw float32 LE) as a flat array."""
        self.check("tensor version", self.int32, 2)
        start, dims = self.pos, self.dims()
        if min(dims) < 0:
            raise self.error(f"negative tensor shape {dims}", start)
        return np.frombuffer(self.take(4 * math.prod(dims)), "<f4").astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        """Read an alias_tensor (version 1) and return its shape."""
        self.check("alias_tensor version", self.int32, 1)
        return self.dims()

    def check(self, what: str, read: Callable[[], T], *allowed: object) -> T:
        """Read a value and raise a ToolError at its offset unless it is one of ``allowed``."""
        start = self.pos
        found = read()
        if found not in allowed:
            wanted = " or ".join(repr(value) for value in allowed)
            raise self.error(f"{what} is {found!r}, expected {wanted}", start)
        return found
