"""Reading request bodies field by field, collecting every problem instead of stopping."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Invalid:
    name: str  # the field, dotted and indexed for nested values ("image_urls[0].url")
    reason: str


def is_url(value: str, schemes: Collection[str]) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in schemes and bool(parts.hostname)


def is_loopback_url(value: str) -> bool:
    try:
        host = urlsplit(value).hostname or ""
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class Fields:
    """Typed access to one JSON object. ``None`` (JSON null) counts as absent.

    Each accessor returns the value when it is valid, else ``None`` after recording why
    in ``problems``. Nested objects share the parent's problem list.
    """

    def __init__(self, body: dict[str, Any], prefix: str = "", problems: list[Invalid] | None = None) -> None:
        self.body = body
        self.prefix = prefix
        self.problems: list[Invalid] = [] if problems is None else problems

    def problem(self, name: str, reason: str) -> None:
        self.problems.append(Invalid(self.prefix + name, reason))

    def present(self, name: str) -> bool:
        return self.body.get(name) is not None

    def _get(self, name: str, required: bool) -> Any:
        value = self.body.get(name)
        if value is None and required:
            self.problem(name, f"'{self.prefix + name}' is required")
        return value

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        max_length: int | None = None,
        choices: Collection[str] | None = None,
        non_empty: bool = False,
    ) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        full = self.prefix + name
        if not isinstance(value, str):
            self.problem(name, f"'{full}' must be a string")
            return None
        if non_empty and not value.strip():
            self.problem(name, f"'{full}' must not be empty")
            return None
        if max_length is not None and len(value) > max_length:
            self.problem(name, f"'{full}' must be at most {max_length} characters")
            return None
        if choices is not None and value not in choices:
            self.problem(name, f"'{full}' must be one of: {', '.join(choices)}")
            return None
        return value

    def url(self, name: str, *, schemes: Collection[str], required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and not is_url(value, schemes):
            self.problem(name, f"'{self.prefix + name}' must be an absolute {'/'.join(schemes)} URL")
            return None
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
        choices: Collection[int] | None = None,
    ) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        full = self.prefix + name
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, f"'{full}' must be an integer")
            return None
        return self._in_range(name, value, minimum, maximum, choices)

    def number(self, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float | None:
        value = self._get(name, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(name, f"'{self.prefix + name}' must be a number")
            return None
        return self._in_range(name, value, minimum, maximum, None)

    def boolean(self, name: str) -> bool | None:
        value = self._get(name, False)
        if value is not None and not isinstance(value, bool):
            self.problem(name, f"'{self.prefix + name}' must be a boolean")
            return None
        return value

    def array(
        self, name: str, *, required: bool = False, min_items: int = 0, max_items: int | None = None
    ) -> list[Any] | None:
        value = self._get(name, required)
        if value is None:
            return None
        full = self.prefix + name
        if not isinstance(value, list):
            self.problem(name, f"'{full}' must be an array")
            return None
        if len(value) < min_items or (max_items is not None and len(value) > max_items):
            bounds = f"{min_items}-{max_items}" if max_items is not None else f"at least {min_items}"
            self.problem(name, f"'{full}' must have {bounds} items, got {len(value)}")
            return None
        return value

    def url_array(
        self,
        name: str,
        *,
        schemes: Collection[str],
        required: bool = False,
        min_items: int = 0,
        max_items: int | None = None,
    ) -> list[str] | None:
        items = self.array(name, required=required, min_items=min_items, max_items=max_items)
        if items is None:
            return None
        ok = True
        for index, item in enumerate(items):
            if not isinstance(item, str) or not is_url(item, schemes):
                self.problem(f"{name}[{index}]", f"must be an absolute {'/'.join(schemes)} URL")
                ok = False
        return items if ok else None

    def nested(self, name: str, *, prefix: str | None = None) -> Fields | None:
        """The object at ``name`` as ``Fields`` sharing this problem list (None if absent or not an object)."""
        value = self._get(name, False)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(name, f"'{self.prefix + name}' must be an object")
            return None
        return Fields(value, prefix if prefix is not None else f"{self.prefix}{name}.", self.problems)

    def _in_range(
        self,
        name: str,
        value: float,
        minimum: float | None,
        maximum: float | None,
        choices: Collection[int] | None,
    ) -> Any:
        full = self.prefix + name
        if choices is not None and value not in choices:
            self.problem(name, f"'{full}' must be one of: {', '.join(str(c) for c in choices)}")
            return None
        if minimum is not None and value < minimum:
            self.problem(name, f"'{full}' must be >= {minimum}")
            return None
        if maximum is not None and value > maximum:
            self.problem(name, f"'{full}' must be <= {maximum}")
            return None
        return value
