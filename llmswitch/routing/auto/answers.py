"""Final-answer extraction and normalisation, for agreement checks between independent answers.

Generic on purpose: nothing here knows about any benchmark. An answer is looked for, in order, in

1. the first decodable JSON object with an ``answer`` key (fenced or not),
2. an ``"answer": ...`` pattern (JSON that does not decode),
3. the last line starting with ``Answer:`` (any case),
4. the last ``\\boxed{...}``,
5. the last number of the text.

The answer is then put into a canonical form so that two answers agree when they mean the same thing:
Python/JSON literals compare by value (``{'a': 1}`` == ``{"a": 1}``, ``8.50`` == ``8.5``), numbers lose
their units, currency signs, thousands separators and LaTeX wrappers, ``\\frac{a}{b}`` becomes a/b, and
``x + y = 12`` becomes ``12``. Answers that are not understood are compared as cleaned text.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from typing import Any

__all__ = ["answers_agree", "canonical_answer", "extract_answer", "normalize_answer"]

_DECODER = json.JSONDecoder()
_ANSWER_KEY = re.compile(r'"answer"\s*:\s*')
_ANSWER_LINE = re.compile(
    r"^\s*\**\s*(?:final\s+)?answer\s*\**\s*[:：]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
_NUM_TOKEN = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_DROP = re.compile(
    r"\\(?:left|right|displaystyle|,|;|!|quad|qquad|\s)|\^\s*\{?\\circ\}?|°|\\%|%|\$|\\\$"
)
_SPACES = re.compile(r"\s+")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_LONG_WORD = re.compile(r"[A-Za-z]{3,}")
_LATEX_CMD = re.compile(r"\\[A-Za-z]+")
_TRAILING_PAREN = re.compile(r"\s*\([^()]*\)\s*$")
_WORD_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z][a-zA-Z .'/-]*)?\s*$")


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (brace-matched)."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def _json_answer(text: str) -> tuple[bool, Any]:
    """The ``answer`` of the first decodable JSON object holding one."""
    pos = text.find("{")
    tries = 0
    while pos >= 0 and tries < 50:
        tries += 1
        try:
            obj, _end = _DECODER.raw_decode(text, pos)
        except ValueError:
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict) and "answer" in obj:
            return True, obj["answer"]
        pos = text.find("{", pos + 1)
    return False, None


def _pattern_answer(text: str) -> str | None:
    """``"answer": value`` in JSON-like text that did not decode."""
    matches = list(_ANSWER_KEY.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    if rest.startswith('"'):
        # a JSON string, possibly with unescaped content: take up to the last quote before a closing brace
        try:
            value, _ = _DECODER.raw_decode(rest)
            return str(value)
        except ValueError:
            end = re.search(r'"\s*(?:,|\}|$)', rest[1:])
            return rest[1 : 1 + end.start()] if end else rest[1:].strip()
    line = re.split(r"\n\s*\}|\n", rest, maxsplit=1)[0]
    return line.strip().rstrip(",").strip() or None


def extract_answer(text: str) -> Any:
    """The model's final answer in *text* (see module doc), or None when none is found."""
    if not text:
        return None
    found, value = _json_answer(text)
    if found:
        return value
    pattern = _pattern_answer(text)
    if pattern is not None:
        return pattern
    lines = _ANSWER_LINE.findall(text)
    if lines:
        return lines[-1]
    boxed = _boxed(text)
    if boxed is not None:
        return boxed
    numbers = _NUM_TOKEN.findall(text)
    if numbers:
        return numbers[-1]
    return None


def _num(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return f"n:{x}"
    if x == 0:
        return "n:0"
    return "n:" + f"{x:.9g}"


def _canon_literal(value: Any) -> str:
    """Canonical text of a Python value; numbers by value, containers recursively, order kept (not dicts)."""
    if isinstance(value, bool):
        return f"b:{value}"
    if isinstance(value, int | float):
        return _num(float(value))
    if isinstance(value, str):
        return "s:" + value
    if isinstance(value, list):
        return "[" + ",".join(_canon_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ",".join(_canon_literal(v) for v in value) + ")"
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted(_canon_literal(v) for v in value)) + "}"
    if isinstance(value, dict):
        items = sorted(f"{_canon_literal(k)}:{_canon_literal(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if value is None:
        return "None"
    return "s:" + str(value)


def _clean_math(s: str) -> str:
    s = s.strip()
    boxed = _boxed(s)
    if boxed is not None:
        s = boxed
    for _ in range(3):
        s = _TEXT_CMD.sub(r"\1", s)
    s = _LATEX_DROP.sub("", s)
    s = s.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    s = _SPACES.sub(" ", s).strip().strip(".").strip()
    return s


def _number_of(s: str) -> float | None:
    """One number (or a simple fraction / arithmetic of numbers) with optional plain words."""
    t = s.replace("−", "-")
    m = _FRAC.fullmatch(t.strip())
    if m:
        a, b = _number_of(m.group(1)), _number_of(m.group(2))
        if a is not None and b not in (None, 0.0):
            return a / b
        return None
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)
    m2 = _WORD_NUMBER.match(t)
    if m2:
        try:
            return float(m2.group(1))
        except ValueError:
            return None
    if re.fullmatch(r"[-+*/().\d\s]+", t) and re.search(r"\d", t) and len(t) < 40:
        try:
            node = ast.parse(t.strip(), mode="eval")
            if all(
                isinstance(
                    n, ast.Expression | ast.BinOp | ast.UnaryOp | ast.Constant | ast.operator | ast.unaryop
                )
                for n in ast.walk(node)
            ):
                v = eval(compile(node, "<answer>", "eval"), {"__builtins__": {}}, {})  # arithmetic only
                if isinstance(v, int | float):
                    return float(v)
        except (SyntaxError, ValueError, ZeroDivisionError, TypeError, OverflowError, RecursionError):
            return None
    return None


def normalize_answer(value: Any) -> str | None:
    """Canonical form of an extracted answer, or None if it is empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        return _canon_literal(value)
    s = value.strip()
    if not s:
        return None
    if _THOUSANDS.fullmatch(s):
        return _num(float(s.replace(",", "")))
    if len(s) < 2000:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lit = ast.literal_eval(s)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            lit = None
        else:
            if isinstance(lit, str):
                inner = lit.strip()
                # a quoted number inside a quoted string stays a string; plain text falls through to math
                return "s:" + inner if inner else None
            return _canon_literal(lit)
    cleaned = _clean_math(s)
    if "=" in cleaned and not cleaned.startswith("="):
        lhs, rhs = (part.strip() for part in cleaned.rsplit("=", 1))
        if rhs and not _LONG_WORD.search(_LATEX_CMD.sub("", lhs)):
            cleaned = rhs
    number = _number_of(cleaned)
    if number is None:
        number = _number_of(_TRAILING_PAREN.sub("", cleaned))
    if number is not None:
        return _num(number)
    if _LONG_WORD.search(cleaned):
        numbers = _NUM_TOKEN.findall(cleaned)
        if len(numbers) == 1 and not re.search(r"[\[\]{}()<>^√]", cleaned):
            return _num(float(numbers[0].replace(",", "")))
    return "s:" + cleaned if cleaned else None


def canonical_answer(text: str) -> str | None:
    """``normalize_answer(extract_answer(text))``."""
    return normalize_answer(extract_answer(text))


def answers_agree(a: str | None, b: str | None) -> bool:
    """Two canonical answers agree when both exist and are equal."""
    return a is not None and a == b
