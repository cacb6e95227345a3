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


def _table_with_items(count: int) -> Any:
    import boto3

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    for index in range(count):
        ddb.put_item(TableName="t", Item={"pk": {"S": f"job#{index}"}, "sk": {"S": "job"}, "n": {"N": str(index)}})
    return ddb


def _state(ddb: Any) -> tuple[list[Any], int]:
    from moto.dynamodb.models import dynamodb_backends

    items = sorted(ddb.scan(TableName="t")["Items"], key=lambda item: item["pk"]["S"])
    shard = dynamodb_backends["123456789012"]["us-east-1"].get_table("t").stream_shard
    return items, len(shard.items)


def _transaction(failing: bool) -> list[dict[str, Any]]:
    return [
        {"Update": {"TableName": "t", "Key": {"pk": {"S": "job#1"}, "sk": {"S": "job"}},
                    "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "100"}}}},
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "job#new"}, "sk": {"S": "job"}}}},
        {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "job#2"}, "sk": {"S": "job"}},
                            "ConditionExpression": "attribute_not_exists(pk)" if failing else "attribute_exists(pk)"}},
    ]


def test_a_cancelled_transaction_leaves_the_items_and_the_stream_as_they_were() -> None:
    from botocore.exceptions import ClientError
    from moto import mock_aws

    moto_speedups.install()
    with mock_aws():
        ddb = _table_with_items(5)
        before = _state(ddb)
        # The update and the put are applied before the failing check is reached, then undone.
        with pytest.raises(ClientError, match="TransactionCanceled"):
            ddb.transact_write_items(TransactItems=_transaction(failing=True))
        assert _state(ddb) == before
        ddb.put_item(TableName="t", Item={"pk": {"S": "job#later"}, "sk": {"S": "job"}})
        assert _state(ddb)[1] == before[1] + 1  # the table and its stream still take writes

        ddb.transact_write_items(TransactItems=_transaction(failing=False))
        items, records = _state(ddb)
        assert {"pk": {"S": "job#1"}, "sk": {"S": "job"}, "n": {"N": "100"}} in items
        assert {"pk": {"S": "job#new"}, "sk": {"S": "job"}} in items
        assert records == before[1] + 3


def test_a_transaction_copies_only_the_items_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws
    from moto.dynamodb.models.dynamo_type import Item

    moto_speedups.install()
    copies = 0
    original = Item.__deepcopy__

    def counted(self: Any, memo: Any) -> Any:
        nonlocal copies
        copies += 1
        return original(self, memo)

    with mock_aws():
        ddb = _table_with_items(50)
        monkeypatch.setattr(Item, "__deepcopy__", counted)
        ddb.transact_write_items(TransactItems=_transaction(failing=False))
    # The snapshot copies job#1 and job#2 and the update copies job#1 once more; moto's own backup
    # copies the whole table once per operation (151 copies here).
    assert 0 < copies <= 3
