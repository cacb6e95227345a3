"""Make moto's server cheaper per request without changing what it answers.

Under a burst, moto's one process is the local stack's bottleneck: every DynamoDB request
goes through one lock (``stack.moto_lock_key``), so its cost per request caps the whole
stack's throughput. Profiled with py-spy, two costs had nothing to do with DynamoDB:

- **Response serialisation.** moto 5 serialises every answer by walking botocore's output
  shapes. A DynamoDB ``AttributeValue`` is a structure of ten optional members, and each member
  is looked up under several candidate names, for every attribute of every item returned:
  about a quarter of the process's CPU. moto already holds items in their wire form
  (``{"S": "..."}``, ``{"M": {...}}``), so an attribute value made only of strings, booleans,
  lists and maps is written as it stands. Anything else (binary, an unexpected shape) takes
  moto's own path.
- **Finding the backend.** Every request lists moto's package directory (about 200
  ``isdir`` calls) under a lock that all requests share. The list never changes while the
  process runs, so it is read once.

``install()`` is idempotent; tests/local/test_moto_speedups.py checks both answers are identical
to moto's own.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from typing import Any

_installed = False
_install_lock = threading.Lock()
_ORIGINAL: dict[str, Any] = {}

# The members of DynamoDB's AttributeValue that hold no bytes (B and BS are base64-encoded).
_SCALAR_TYPES = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_SET_TYPES = ("SS", "NS")


def is_plain_attribute_value(value: Any) -> bool:
    """True if ``value`` is already an AttributeValue in DynamoDB's JSON wire form, bytes-free."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    scalar = _SCALAR_TYPES.get(kind)
    if scalar is not None:
        return type(inner) is scalar
    if kind in _SET_TYPES:
        return type(inner) is list and all(type(v) is str for v in inner)
    if kind == "L":
        return type(inner) is list and all(is_plain_attribute_value(v) for v in inner)
    if kind == "M":
        return type(inner) is dict and all(type(k) is str and is_plain_attribute_value(v) for k, v in inner.items())
    return False


def _attribute_values_as_is() -> None:
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure
    _ORIGINAL["structure"] = original

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and is_plain_attribute_value(value):
            self._default_serialize(serialized, value, shape, key)
            return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]


def _module_list_read_once() -> None:
    from moto import backends

    original = backends.list_of_moto_modules
    _ORIGINAL["modules"] = original

    @functools.cache
    def modules() -> tuple[str, ...]:
        return tuple(original())

    def list_of_moto_modules() -> Iterable[str]:
        return modules()

    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]


def install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        _attribute_values_as_is()
        _module_list_read_once()
        _installed = True


def original_structure_serializer() -> Any:
    """moto's own ``_serialize_type_structure`` (for the equivalence test)."""
    install()
    return _ORIGINAL["structure"]
