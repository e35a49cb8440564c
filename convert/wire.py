"""Protobuf wire-format pieces for the writers that stream weights straight from numpy arrays."""

from __future__ import annotations


def varint(n: int) -> bytes:
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
