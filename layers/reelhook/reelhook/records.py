"""Frozen value classes without per-class code generation.

``@dataclass(frozen=True)`` compiles six methods per class (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) from generated source with
``exec`` when the class is defined. reelhook defines twenty-odd such classes on the import
paths of its functions, and compiling them was most of the layer's own cold-start cost
(about 4 ms of CPU per class on Python 3.12). ``@record`` gives those classes the same
behaviour with shared, generic methods:

- fields are the class's annotations, in order; a class attribute is the field's default,
  ``dataclasses.field(default=...)`` / ``field(default_factory=...)`` work as they do there;
- construction by position or keyword, with dataclass-like ``TypeError`` messages;
- ``repr``, value equality (same class only), ``hash`` of the field values, ``__match_args__``;
- instances are immutable: assignment and deletion raise ``dataclasses.FrozenInstanceError``.

Not supported (reelhook does not use them): inheriting fields from another record,
``ClassVar``/``InitVar`` fields, ``__post_init__``, defining the generated methods in the
class body, ``dataclasses.fields``/``replace``/``asdict``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError, field
from typing import Any, TypeVar, dataclass_transform

__all__ = ["FrozenInstanceError", "field", "record"]

T = TypeVar("T", bound=type)
_FACTORY = object()


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in self.__match_args__)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return _values(self) == _values(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(_values(self))


def _repr(self: Any) -> str:
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
    return f"{self.__class__.__qualname__}({inner})"


def _make_init(cls: type, names: tuple[str, ...], defaults: dict[str, tuple[bool, Any]]) -> Callable[..., None]:
    required = [name for name in names if name not in defaults]
    set_field = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__qualname__}.__init__() takes {len(names) + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        for name, value in zip(names, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{cls.__qualname__}.__init__() got multiple values for argument {name!r}")
            set_field(self, name, value)
        missing = []
        for name in names[len(args):]:
            if name in kwargs:
                set_field(self, name, kwargs.pop(name))
            elif name in defaults:
                is_factory, default = defaults[name]
                set_field(self, name, default() if is_factory else default)
            else:
                missing.append(name)
        if missing:
            listed = " and ".join(", ".join(repr(n) for n in missing).rsplit(", ", 1))
            raise TypeError(f"{cls.__qualname__}.__init__() missing {len(missing)} required argument"
                            f"{'s' if len(missing) > 1 else ''}: {listed}")
        if kwargs:
            name = next(iter(kwargs))
            raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected keyword argument {name!r}")

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = f"{cls.__qualname__}({', '.join(names)}); required: {', '.join(required) or 'none'}"
    return __init__


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: T) -> T:
    """Make ``cls`` a frozen value class (see the module docstring)."""
    names = tuple(inspect.get_annotations(cls))
    defaults: dict[str, tuple[bool, Any]] = {}
    for name in names:
        if name not in cls.__dict__:
            if defaults:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            continue
        value = cls.__dict__[name]
        if isinstance(value, Field):
            if value.default_factory is not MISSING:
                defaults[name] = (True, value.default_factory)
                delattr(cls, name)
            elif value.default is not MISSING:
                defaults[name] = (False, value.default)
                setattr(cls, name, value.default)
            else:
                delattr(cls, name)
                if defaults:
                    raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            if isinstance(value, list | dict | set):
                raise ValueError(f"mutable default {type(value)} for field {name} is not allowed: use default_factory")
            defaults[name] = (False, value)
    methods = {"__init__": _make_init(cls, names, defaults), "__repr__": _repr, "__eq__": _eq, "__hash__": _hash,
               "__setattr__": _frozen_setattr, "__delattr__": _frozen_delattr}
    defined = sorted(set(methods) & set(cls.__dict__))
    if defined:
        raise TypeError(f"{cls.__qualname__} defines {', '.join(defined)}: not supported by @record")
    for attribute, method in methods.items():
        setattr(cls, attribute, method)
    cls.__match_args__ = names  # type: ignore[attr-defined]
    return cls
