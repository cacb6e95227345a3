"""``reelhook.records.record`` behaves as ``@dataclass(frozen=True)`` does for reelhook's classes."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from reelhook.records import field, record


def _pair() -> tuple[type, type]:
    def body() -> dict[str, Any]:
        return {"__annotations__": {"name": "str", "count": "int", "tags": "tuple[str, ...]", "extras": "dict"},
                "count": 0, "tags": (), "extras": field(default_factory=dict),
                "label": lambda self: f"{self.name}:{self.count}"}

    plain = type("Thing", (), body())
    made = record(type("Thing", (), body()))
    reference = dataclasses.dataclass(frozen=True)(plain)
    return made, reference


@pytest.mark.parametrize("args, kwargs", [
    (("a",), {}), (("a", 2), {}), ((), {"name": "a", "count": 3}), (("a",), {"tags": ("x",)}),
    (("a", 1, ("t",), {"k": "v"}), {}),
])
def test_construction_equality_hash_and_repr_match_dataclasses(args: tuple, kwargs: dict) -> None:
    made, reference = _pair()
    ours, theirs = made(*args, **kwargs), reference(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert vars(ours) == vars(theirs)
    assert ours == made(*args, **kwargs)
    assert ours != theirs  # a different class, as two dataclasses would be
    assert ours.label() == theirs.label()
    with pytest.raises(TypeError):  # a dict field: unhashable, as the dataclass is
        hash(theirs)
    with pytest.raises(TypeError):
        hash(ours)
    assert made.__match_args__ == reference.__match_args__


def test_defaults_and_factories() -> None:
    made, _ = _pair()
    first, second = made("a"), made("b")
    assert first.count == 0 and first.tags == () and first.extras == {}
    assert first.extras is not second.extras
    assert made.count == 0 and not hasattr(made, "extras")


@pytest.mark.parametrize("args, kwargs", [
    ((), {}), (("a", 1, (), {}, "extra"), {}), (("a",), {"name": "b"}), (("a",), {"colour": "red"}),
])
def test_bad_arguments_raise_type_error_like_dataclasses(args: tuple, kwargs: dict) -> None:
    made, reference = _pair()
    with pytest.raises(TypeError):
        reference(*args, **kwargs)
    with pytest.raises(TypeError):
        made(*args, **kwargs)


def test_hash_of_field_values() -> None:
    made = record(type("Point", (), {"__annotations__": {"x": "int", "y": "int"}, "y": 0}))
    reference = dataclasses.dataclass(frozen=True)(type("Point", (), {"__annotations__": {"x": "int", "y": "int"},
                                                                        "y": 0}))
    assert hash(made(1, 2)) == hash(reference(1, 2)) == hash((1, 2))
    assert {made(1), made(1, 0)} == {made(1)}


def test_frozen() -> None:
    made, _ = _pair()
    thing = made("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        thing.name = "b"
    with pytest.raises(dataclasses.FrozenInstanceError):
        thing.other = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        del thing.name
    assert thing.name == "a"


def test_copy_and_pickle() -> None:
    from reelhook.spec import FieldError

    error = FieldError("prompt", "is required", ["x"])
    assert copy.deepcopy(error) == error
    assert pickle.loads(pickle.dumps(error)) == error  # noqa: S301
    assert copy.copy(error) == error


def test_ordering_and_definition_errors() -> None:
    with pytest.raises(TypeError, match="non-default argument"):
        record(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))
    with pytest.raises(ValueError, match="mutable default"):
        record(type("Bad", (), {"__annotations__": {"a": "list"}, "a": []}))
    with pytest.raises(TypeError, match="not supported"):
        record(type("Bad", (), {"__annotations__": {"a": "int"}, "__repr__": lambda self: "x"}))
