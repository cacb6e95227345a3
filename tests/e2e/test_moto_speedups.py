"""moto's server made cheaper per request must answer exactly as moto does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reelhook_local import moto_speedups

WIRE_ITEM = {
    "pk": {"S": "job#1"},
    "count": {"N": "12.5"},
    "done": {"BOOL": False},
    "nothing": {"NULL": True},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2"]},
    "events": {"L": [{"M": {"at": {"S": "2026-12-03T00:00:00Z"}, "status": {"S": "queued"},
                            "nested": {"L": [{"N": "1"}, {"M": {}}]}}}]},
    "empty_list": {"L": []},
    "blob": {"B": "aGVsbG8="},
    "blobs": {"BS": ["aGVsbG8="]},
}


@pytest.mark.parametrize("value, plain", [
    ({"S": "x"}, True),
    ({"N": "1"}, True),
    ({"BOOL": True}, True),
    ({"NULL": True}, True),
    ({"SS": ["a"]}, True),
    ({"L": [{"S": "a"}, {"M": {"k": {"N": "2"}}}]}, True),
    ({"B": "aGVsbG8="}, False),  # bytes go through moto's own base64 handling
    ({"L": [{"B": b"x"}]}, False),
    ({"S": 1}, False),
    ({"S": "a", "N": "1"}, False),
    ({"M": {"k": {"X": "?"}}}, False),
    ("not a dict", False),
])
def test_only_bytes_free_wire_values_count_as_plain(value: Any, plain: bool) -> None:
    assert moto_speedups.is_plain_attribute_value(value) is plain


def _serialize(operation: str, result: dict[str, Any], structure: Any) -> dict[str, Any]:
    from moto.core.responses import get_service_model
    from moto.core.serialize import JSONSerializer, XFormedAttributePicker

    model = get_service_model("dynamodb").operation_model(operation)
    original = JSONSerializer._serialize_type_structure
    JSONSerializer._serialize_type_structure = structure  # type: ignore[method-assign]
    try:
        answer = JSONSerializer(operation_model=model, value_picker=XFormedAttributePicker()).serialize(result)
    finally:
        JSONSerializer._serialize_type_structure = original  # type: ignore[method-assign]
    return json.loads(answer["body"])


@pytest.mark.parametrize("operation, result", [
    ("GetItem", {"Item": WIRE_ITEM}),
    ("UpdateItem", {"Attributes": WIRE_ITEM, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}}),
    ("Query", {"Items": [WIRE_ITEM, {"pk": {"S": "job#2"}}], "Count": 2, "ScannedCount": 2,
               "LastEvaluatedKey": {"pk": {"S": "job#2"}}}),
    ("BatchGetItem", {"Responses": {"t": [WIRE_ITEM]}, "UnprocessedKeys": {}}),
])
def test_dynamodb_answers_are_identical_to_motos_own_serializer(operation: str, result: dict[str, Any]) -> None:
    from moto.core.serialize import BaseJSONSerializer

    moto_speedups.install()
    assert BaseJSONSerializer._serialize_type_structure is not moto_speedups.original_structure_serializer()
    ours = _serialize(operation, result, BaseJSONSerializer._serialize_type_structure)
    theirs = _serialize(operation, result, moto_speedups.original_structure_serializer())
    assert ours == theirs
    assert ours != {}  # the comparison saw the items


def test_the_module_list_is_read_once() -> None:
    from moto import backends

    moto_speedups.install()
    first = backends.list_of_moto_modules()
    assert "dynamodb" in first and "sqs" in first
    assert backends.list_of_moto_modules() is first
