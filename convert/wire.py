"""Protobuf wire-format pieces for the writers that stream straight from Python values and numpy arrays.

Enough of the encoding (varints, fixed32 floats, length-delimited fields) to write ONNX and Caffe
messages without importing a generated protobuf module: `zoo convert -f onnx` never imports `onnx`.
"""

from __future__ import annotations

import struct

_U64 = (1 << 64) - 1


def varint(n: int) -> bytes:
    """Base-128 varint; negative numbers as 64-bit two's complement, as protobuf's int64 does."""
    n &= _U64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_header(number: int, length: int) -> bytes:
    """The key and length of a length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(length)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field: a string, bytes or an embedded message."""
    return field_header(number, len(payload)) + payload


def field_str(number: int, text: str) -> bytes:
    return field_bytes(number, text.encode("utf-8"))


def field_int(number: int, value: int) -> bytes:
    """A varint field (int32, int64, enum, bool)."""
    return varint(number << 3) + varint(int(value))


def field_float(number: int, value: float) -> bytes:
    """A `float` field (wire type 5, little-endian IEEE single)."""
    return varint(number << 3 | 5) + struct.pack("<f", value)


def message(*fields: bytes) -> bytes:
    return b"".join(fields)
