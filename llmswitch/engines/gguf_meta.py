"""Read a GGUF file's key/value metadata with the standard library only.

`gguf.GGUFReader` maps and decodes every tensor descriptor and field into numpy views, which takes
seconds on a 100 MB model; the engine only needs the chat template at start-up and the tiny test model
only the tokenizer, so this reads the header sequentially and stops before the tensor infos
(~0.1 s for SmolLM2's 49k-token vocabulary). Little-endian GGUF v2/v3 only, which is all llama.cpp
writes on the platforms we run on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GGUF_MAGIC = b"GGUF"

# GGUFValueType ids (gguf spec), with the struct format of the fixed-size ones.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_FMT = {
    UINT8: "B",
    INT8: "b",
    UINT16: "H",
    INT16: "h",
    UINT32: "I",
    INT32: "i",
    FLOAT32: "f",
    BOOL: "?",
    UINT64: "Q",
    INT64: "q",
    FLOAT64: "d",
}

Scalar = int | float | bool | str
Value = Scalar | list[Scalar]


class GGUFFormatError(ValueError):
    """The file is not a GGUF file this reader understands."""


@dataclass(frozen=True, slots=True)
class Field:
    """One metadata value with its GGUF type (`item_type` is the element type of an ARRAY)."""

    type: int
    value: Value
    item_type: int | None = None


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def take(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise GGUFFormatError("truncated GGUF header")
        return data

    def unpack(self, fmt: str) -> tuple[Scalar, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def u32(self) -> int:
        return int(self.unpack("I")[0])

    def u64(self) -> int:
        return int(self.unpack("Q")[0])

    def string(self) -> str:
        return self.take(self.u64()).decode("utf-8", errors="replace")

    def scalar(self, vtype: int) -> Scalar:
        if vtype == STRING:
            return self.string()
        fmt = _SCALAR_FMT.get(vtype)
        if fmt is None:
            raise GGUFFormatError(f"unknown GGUF value type {vtype}")
        return self.unpack(fmt)[0]

    def field(self) -> Field:
        vtype = self.u32()
        if vtype != ARRAY:
            return Field(vtype, self.scalar(vtype))
        item_type, count = self.u32(), self.u64()
        if item_type == STRING:
            items: list[Scalar] = [self.string() for _ in range(count)]
        elif item_type in _SCALAR_FMT:  # one bulk unpack: 49k token types in microseconds
            items = list(self.unpack(f"{count}{_SCALAR_FMT[item_type]}"))
        else:
            raise GGUFFormatError(f"unsupported GGUF array of type {item_type}")
        return Field(ARRAY, items, item_type)


def read_metadata(path: str | Path) -> dict[str, Field]:
    """All key/value metadata of the GGUF file at `path`, in file order."""
    with open(path, "rb", buffering=1 << 20) as f:
        r = _Reader(f)
        if f.read(4) != GGUF_MAGIC:
            raise GGUFFormatError(f"{path}: not a GGUF file (bad magic)")
        version = r.u32()
        if version not in (2, 3):
            raise GGUFFormatError(f"{path}: unsupported GGUF version {version}")
        r.u64()  # tensor count: the tensors are not needed here
        kv_count = r.u64()
        out: dict[str, Field] = {}
        for _ in range(kv_count):
            key = r.string()
            out[key] = r.field()
        return out


def chat_template(path: str | Path) -> str | None:
    """The GGUF's default chat template (`tokenizer.chat_template`), if it has one."""
    field = read_metadata(path).get("tokenizer.chat_template")
    return field.value if field is not None and isinstance(field.value, str) else None
