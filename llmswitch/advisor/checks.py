"""Checks that need no judge: JSON validity (JSON mode / JSON schema requests) and exact final answers.

- JSON: when the request asked for ``response_format`` ``json_object`` or ``json_schema``, the answer
  must parse as JSON as it is (a client in JSON mode calls ``json.loads`` on it; a fenced block fails)
  and, for ``json_schema``, validate against the schema (the common keywords: type, enum, const,
  properties, required, additionalProperties, items, min/max, anyOf/oneOf/allOf, local $ref).
- Final answer: taken from, in order, the first JSON object with an ``answer`` key, an
  ``"answer": ...`` pattern, the last ``Answer:`` line, the last ``\\boxed{}``; compared after
  normalisation (numbers by value within 1e-6 relative, Python/JSON literals by value, else text
  without case, spaces, quotes, ``$`` and LaTeX wrappers). When the log carries a ``reference`` answer
  this is a correctness check; otherwise it only measures agreement with the baseline's answer.

A check *decides* a comparison when exactly one side fails it; the judge is then not asked (a broken
JSON answer or a wrong final result is worse whatever its prose). Checks never decide on agreement.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

__all__ = ["answers_equal", "extract_final_answer", "json_check", "schema_errors"]

_DECODER = json.JSONDecoder()


def json_check(request: dict[str, Any], text: str) -> bool | None:
    """True/False when the request asked for JSON output, None when it did not."""
    fmt = request.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_object", "json_schema"):
        return None
    try:
        value = json.loads(text.strip())
    except (json.JSONDecodeError, ValueError):
        return False
    if fmt["type"] == "json_object":
        return isinstance(value, dict)
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return not schema_errors(value, schema) if isinstance(schema, dict) else isinstance(value, dict)


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "integer": (int,), "number": (int, float),
}  # fmt: skip


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def schema_errors(
    value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, path: str = "$"
) -> list[str]:
    """Violations of a JSON schema (the common subset), as short messages; [] when valid."""
    root = root or schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return schema_errors(value, target, root, path)
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(value, k) for k in kinds):
            return [f"{path}: expected {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: not in enum")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: not the constant")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        errors += [f"{path}.{k}: required" for k in schema.get("required") or [] if k not in value]
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                errors += schema_errors(v, props[k], root, f"{path}.{k}")
            elif extra is False:
                errors.append(f"{path}.{k}: not allowed")
            elif isinstance(extra, dict):
                errors += schema_errors(v, extra, root, f"{path}.{k}")
    if isinstance(value, list):
        if isinstance(schema.get("items"), dict):
            for i, v in enumerate(value):
                errors += schema_errors(v, schema["items"], root, f"{path}[{i}]")
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", math.inf):
            errors.append(f"{path}: wrong number of items")
    if isinstance(value, str) and not schema.get("minLength", 0) <= len(value) <= schema.get(
        "maxLength", math.inf
    ):
        errors.append(f"{path}: wrong length")
    if _is_type(value, "number") and not schema.get("minimum", -math.inf) <= value <= schema.get(
        "maximum", math.inf
    ):
        errors.append(f"{path}: out of range")
    for sub in schema.get("allOf") or []:
        errors += schema_errors(value, sub, root, path)
    if schema.get("anyOf") and all(schema_errors(value, s, root, path) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if schema.get("oneOf") and sum(not schema_errors(value, s, root, path) for s in schema["oneOf"]) != 1:
        errors.append(f"{path}: does not match exactly one of oneOf")
    return errors


_ANSWER_KEY = re.compile(r'"answer"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\n]+)')
_ANSWER_LINE = re.compile(r"^\s*\**\s*(?:final\s+)?answer\s*\**\s*[:：]\s*(.+?)\s*$", re.I | re.M)
_BOXED = "\\boxed{"


def _last_boxed(text: str) -> str | None:
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, i = 1, start + len(_BOXED)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def extract_final_answer(text: str) -> str | None:
    """The final answer stated in a reply, or None if it states none recognisably."""
    for i, ch in enumerate(text):
        if ch == "{":
            try:
                obj, _ = _DECODER.raw_decode(text, i)
            except ValueError:
                continue
            if isinstance(obj, dict) and "answer" in obj:
                value = obj["answer"]
                return value if isinstance(value, str) else json.dumps(value)
    m = _ANSWER_KEY.search(text)
    if m:
        raw = m.group(1).strip()
        try:
            value = json.loads(raw)
            return value if isinstance(value, str) else json.dumps(value)
        except ValueError:
            return raw.strip('"')
    lines = _ANSWER_LINE.findall(text)
    if lines:
        return str(lines[-1])
    return _last_boxed(text)


_UNWRAP = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}|\\boxed\{([^{}]*)\}")
_FRAC = re.compile(r"^\\d?frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}$")
_NUM = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?$", re.I)


def _canonical(answer: str) -> object:
    s = _UNWRAP.sub(lambda m: m.group(1) or m.group(2) or "", answer.strip())
    s = s.replace("$", "").replace("\\%", "").replace("%", "").replace("\\!", "").strip().rstrip(".")
    if m := _FRAC.match(s):
        try:
            return float(m.group(1)) / float(m.group(2))
        except (ValueError, ZeroDivisionError):
            pass
    plain = s.replace(",", "") if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s) else s
    if _NUM.match(plain):
        return float(plain)
    try:
        value = ast.literal_eval(s)
        if isinstance(value, (list, tuple, dict, set, str, bool, int, float)) and not isinstance(value, str):
            return (type(value).__name__, repr(value) if isinstance(value, (set, dict)) else value)
        if isinstance(value, str):
            s = value
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        pass
    return re.sub(r"\s+", "", s.strip("'\"").lower())


def answers_equal(a: str, b: str) -> bool:
    """Two final answers mean the same thing (numbers within 1e-6 relative)."""
    x, y = _canonical(a), _canonical(b)
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(x, tuple) and isinstance(y, tuple) and x[0] == y[0] == "dict":
        try:
            return bool(ast.literal_eval(a.strip()) == ast.literal_eval(b.strip()))
        except (ValueError, SyntaxError):
            return False
    return x == y
