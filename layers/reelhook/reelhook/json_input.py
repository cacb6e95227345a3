"""JSON from outside (clients, webhooks, providers), parsed within limits a hostile body cannot pass.

- **Depth** is measured on the raw text before parsing (a regular expression skips strings),
  so a body of ten thousand ``[`` never reaches the parser's recursion.
- **Numbers** that DynamoDB cannot store (more than 38 significant digits, magnitudes outside
  1E-130 to below 1E126) are parsed without error (huge integers as ``Decimal``, so int()'s
  digit limit is never met) and reported, with their field, by ``unstorable_numbers``.
- **NaN and Infinity** are not JSON, whatever Python's parser allows.
- Errors say where: ``line 1, column 7: Expecting ',' delimiter``.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

# DynamoDB nests documents up to 32 levels; a job item keeps the request two levels down.
MAX_DEPTH = 24
MAX_DIGITS = 38
MIN_MAGNITUDE = Decimal("1E-130")
MAX_MAGNITUDE = Decimal("1E126")
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


class JsonInputError(ValueError):
    """The text is not JSON reelhook takes; the message says why and where."""


def nesting_depth(text: str) -> int:
    depth = deepest = 0
    for match in _STRUCTURE.finditer(text):
        piece = match.group()
        if piece in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif piece in ("]", "}"):
            depth -= 1
    return deepest


def _constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not valid JSON")


def _integer(text: str) -> int | Decimal:
    # Too many digits for DynamoDB (or for int() itself): kept as Decimal for unstorable_numbers.
    return Decimal(text) if len(text.lstrip("-")) > MAX_DIGITS else int(text)


def _number_problem(value: int | float | Decimal) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "is out of range: DynamoDB stores magnitudes from 1E-130 to below 1E126"
    exact = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    if len(exact.as_tuple().digits) > MAX_DIGITS:
        return f"has more than {MAX_DIGITS} significant digits, more than DynamoDB stores"
    if exact and not (MIN_MAGNITUDE <= abs(exact) < MAX_MAGNITUDE):
        return "is out of range: DynamoDB stores magnitudes from 1E-130 to below 1E126"
    return None


def unstorable_numbers(data: Any, limit: int = 50) -> list[tuple[str, str]]:
    """``(field, problem)`` for each number DynamoDB could not store, in field-path notation."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack and len(found) < limit:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}" if path else str(key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            problem = _number_problem(value)
            if problem:
                found.append((path or "body", problem))
    return found


def loads(raw: str | bytes | None, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` as JSON within the limits above; raises ``JsonInputError``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else (raw or "")
    except UnicodeDecodeError as exc:
        raise JsonInputError(f"the body is not UTF-8 (byte {exc.start})") from None
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JsonInputError(f"the body nests {depth} levels deep; at most {max_depth} are allowed")
    try:
        return json.loads(text, parse_constant=_constant, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JsonInputError("the body nests too deeply") from None
