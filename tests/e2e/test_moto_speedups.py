"""moto's server made cheaper per request must answer exactly as moto does."""

from __future__ import annotations

import copy
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


# ---------------------------------------------------------------------------- parsed once

UPDATE = "SET #status = :to, events = list_append(if_not_exists(events, :empty), :event) ADD n :one REMOVE gone"


def _shape(node: Any) -> Any:
    children = getattr(node, "children", None)
    if isinstance(children, list):
        return type(node).__name__, [_shape(child) for child in children]
    return repr(node)


def test_the_kept_tree_is_shared_and_the_validator_works_on_a_private_copy() -> None:
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    moto_speedups.install()
    kept = UpdateExpressionParser.make(UPDATE)
    assert UpdateExpressionParser.make(UPDATE) is kept  # parsed once, read by every caller
    fresh = _shape(moto_speedups._ORIGINAL["update_make"](UPDATE))
    assert _shape(kept) == fresh and "ExpressionAttributeValue" in str(fresh)
    private = validators.deepcopy(kept)  # what Validator.__init__ does with the tree it is given
    assert private is not kept and _shape(private) == fresh
    private.children.clear()  # the validator rewrites its copy...
    assert _shape(UpdateExpressionParser.make(UPDATE)) == fresh  # ...never the kept tree
    assert validators.deepcopy([1, [2]]) == [1, [2]]  # anything else is moto's deepcopy


def test_one_expression_text_applies_each_requests_own_values() -> None:
    from moto import mock_aws

    moto_speedups.install()
    with mock_aws():
        ddb = _table_with_items(2)
        for index, to in ((0, "queued"), (1, "running"), (0, "failed")):
            ddb.update_item(TableName="t", Key={"pk": {"S": f"job#{index}"}, "sk": {"S": "job"}},
                            UpdateExpression="SET #s = :to, events = list_append(if_not_exists(events, :empty), :e)",
                            ExpressionAttributeNames={"#s": "status"},
                            ExpressionAttributeValues={":to": {"S": to}, ":empty": {"L": []},
                                                       ":e": {"L": [{"S": to}]}})
        items = {item["pk"]["S"]: item for item in ddb.scan(TableName="t")["Items"]}
        assert items["job#0"]["status"] == {"S": "failed"}
        assert items["job#0"]["events"] == {"L": [{"S": "queued"}, {"S": "failed"}]}
        assert items["job#1"]["status"] == {"S": "running"} and items["job#1"]["events"] == {"L": [{"S": "running"}]}


@pytest.mark.parametrize("name", [*sorted(WIRE_ITEM), "bytes"])
def test_plain_values_are_built_as_moto_builds_them_and_share_nothing(name: str) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    moto_speedups.install()
    wire = {"B": b"hello"} if name == "bytes" else WIRE_ITEM[name]
    ours, theirs = DynamoType(copy.deepcopy(wire)), DynamoType(copy.deepcopy(wire))
    assert ours.to_regular_json() == moto_speedups._ORIGINAL["to_regular_json"](theirs)
    plain = ours.to_regular_json()
    before = repr(ours.to_regular_json())
    for value in plain.values():  # change every container the answer holds
        if isinstance(value, list):
            value.append("changed")
        elif isinstance(value, dict):
            value["changed"] = 1
    assert repr(ours.to_regular_json()) == before


def test_an_invalid_update_expression_fails_every_time() -> None:
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    moto_speedups.install()
    for _ in range(2):
        with pytest.raises(Exception, match=r"[Ss]yntax|[Ii]nvalid"):
            UpdateExpressionParser.make("SET = :broken")


def _conditional_update(ddb: Any, expected: str, to: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        ddb.update_item(TableName="t", Key={"pk": {"S": "job#1"}, "sk": {"S": "job"}},
                        UpdateExpression="SET #s = :to ADD n :one",
                        ConditionExpression="attribute_exists(pk) AND #s = :expected",
                        ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={":to": {"S": to}, ":expected": {"S": expected},
                                                   ":one": {"N": "1"}})
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return False
    return True


def test_conditions_kept_parsed_still_judge_each_request_by_its_own_values() -> None:
    from moto import mock_aws

    moto_speedups.install()
    with mock_aws():
        ddb = _table_with_items(2)
        ddb.update_item(TableName="t", Key={"pk": {"S": "job#1"}, "sk": {"S": "job"}},
                        UpdateExpression="SET #s = :q", ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={":q": {"S": "queued"}})
        assert _conditional_update(ddb, "queued", "running")
        assert not _conditional_update(ddb, "queued", "running")  # same text and values, new item state
        assert _conditional_update(ddb, "running", "succeeded")
        assert not _conditional_update(ddb, "running", "failed")
        item = ddb.get_item(TableName="t", Key={"pk": {"S": "job#1"}, "sk": {"S": "job"}})["Item"]
        assert item["status"] == {"S": "succeeded"} and item["n"] == {"N": "3"}  # 1 + two applied updates


def test_response_classes_are_listed_once() -> None:
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler

    moto_speedups.install()
    names = responses.method_names_from_class(DynamoHandler)
    assert "update_item" in names
    assert responses.method_names_from_class(DynamoHandler) is names


# ---------------------------------------------------------------------------- checked once

def _validated_shape(expression: str, names: dict[str, str], values: dict[str, Any]) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    class Table:  # what the validator reads of a table
        table_key_attrs = ["pk", "sk"]
        attribute_keys = ["pk", "sk"]
        attr = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]

    item = Item(DynamoType({"S": "job#1"}), DynamoType({"S": "job"}),
                {"pk": {"S": "job#1"}, "sk": {"S": "job"}, "events": {"L": [{"S": "queued"}]}, "n": {"N": "1"}})
    return _shape(UpdateExpressionValidator(UpdateExpressionParser.make(expression), names, values, item,
                                            Table()).validate())


def test_a_validated_tree_is_the_one_motos_own_walks_give(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    moto_speedups.install()
    names, values = {"#status": "status"}, {":to": {"S": "running"}, ":empty": {"L": []},
                                            ":event": {"L": [{"S": "running"}]}, ":one": {"N": "1"}}
    first, again = (_validated_shape(UPDATE, names, values) for _ in range(2))  # checks run, then skipped
    with monkeypatch.context() as patched:
        patched.setattr(DepthFirstTraverser, "traverse_node_recursively",
                        moto_speedups._ORIGINAL["traverse_node_recursively"])
        patched.setattr(validators.UpdateExpressionValidator, "validate", moto_speedups._ORIGINAL["validator_validate"])
        theirs = _validated_shape(UPDATE, names, values)
    assert first == again == theirs and "DDBTypedValue" in str(theirs)


@pytest.mark.parametrize("expression, names, error", [
    ("SET a = :v, a.b = :v", {}, "overlap"),  # overlapping paths
    ("SET #k = :v", {"#k": "pk"}, "key"),  # a key attribute
    ("SET a = :v SET b = :v", {}, "SET"),  # two SET clauses
])
def test_an_update_that_fails_a_check_once_fails_it_every_time(expression: str, names: dict[str, str],
                                                              error: str) -> None:
    moto_speedups.install()
    for _ in range(2):
        with pytest.raises(Exception, match=error):
            _validated_shape(expression, names, {":v": {"S": "x"}})


def test_names_are_checked_again_when_they_change() -> None:
    moto_speedups.install()
    _validated_shape("SET #a = :v", {"#a": "status"}, {":v": {"S": "x"}})  # passes, and is remembered
    with pytest.raises(Exception, match="key"):
        _validated_shape("SET #a = :v", {"#a": "sk"}, {":v": {"S": "x"}})  # same text, now a key attribute


@pytest.mark.parametrize("name", sorted(WIRE_ITEM))
def test_attribute_sizes_are_motos_own(name: str) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    moto_speedups.install()
    value = DynamoType(copy.deepcopy(WIRE_ITEM[name]))
    assert value.size() == moto_speedups._ORIGINAL["size"](DynamoType(copy.deepcopy(WIRE_ITEM[name])))


def test_an_item_over_the_size_limit_is_still_refused() -> None:
    from botocore.exceptions import ClientError
    from moto import mock_aws

    moto_speedups.install()
    with mock_aws():
        ddb = _table_with_items(1)
        key = {"pk": {"S": "job#0"}, "sk": {"S": "job"}}
        ddb.update_item(TableName="t", Key=key, UpdateExpression="SET a = :v", ExpressionAttributeValues={
            ":v": {"M": {"text": {"S": "x" * 200_000}}}})
        with pytest.raises(ClientError, match="size"):
            ddb.update_item(TableName="t", Key=key, UpdateExpression="SET b = :v", ExpressionAttributeValues={
                ":v": {"L": [{"S": "y" * 150_000}, {"M": {"more": {"S": "z" * 60_000}}}]}})
        assert "b" not in ddb.get_item(TableName="t", Key=key)["Item"]


@pytest.mark.parametrize("return_values", ["ALL_OLD", "UPDATED_OLD", "UPDATED_NEW", "ALL_NEW"])
def test_an_update_answers_with_the_item_as_it_was_and_as_it_is(return_values: str) -> None:
    from moto import mock_aws

    moto_speedups.install()
    with mock_aws():
        ddb = _table_with_items(1)
        key = {"pk": {"S": "job#0"}, "sk": {"S": "job"}}
        ddb.update_item(TableName="t", Key=key, UpdateExpression="SET events = :e",
                        ExpressionAttributeValues={":e": {"L": [{"S": "queued"}]}})
        answer = ddb.update_item(TableName="t", Key=key, ReturnValues=return_values,
                                 UpdateExpression="SET events = list_append(events, :e) ADD n :one",
                                 ExpressionAttributeValues={":e": {"L": [{"S": "running"}]}, ":one": {"N": "1"}})
        old = {"events": {"L": [{"S": "queued"}]}, "n": {"N": "0"}}
        new = {"events": {"L": [{"S": "queued"}, {"S": "running"}]}, "n": {"N": "1"}}
        expected = {"ALL_OLD": {**key, **old}, "UPDATED_OLD": old, "UPDATED_NEW": new, "ALL_NEW": {**key, **new}}
        assert answer["Attributes"] == expected[return_values]


def test_the_expression_only_checks_are_walked_once_per_expression_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.parsing import validators

    moto_speedups.install()
    walks: list[str] = []
    for checker in (validators.ActionCountValidator, validators.OverlappingPathsValidator,
                    validators.UpdateHashRangeKeyValidator, validators.ExecuteOperations):
        original = checker.traverse
        monkeypatch.setattr(checker, "traverse", lambda self, node, _o=original: walks.append(type(self).__name__)
                            or _o(self, node))
    expression = "SET #a = :v, b = list_append(if_not_exists(b, :v), :v) REMOVE c"
    for _ in range(3):
        _validated_shape(expression, {"#a": "walked_once"}, {":v": {"L": []}})
    assert walks.count("ExecuteOperations") == 3  # what depends on the item and values: every time
    assert [walks.count(name) for name in ("ActionCountValidator", "OverlappingPathsValidator",
                                           "UpdateHashRangeKeyValidator")] == [1, 1, 1]


def test_a_query_hands_on_its_items_without_copying_them_and_changes_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws
    from moto.dynamodb.models.dynamo_type import Item

    moto_speedups.install()
    with mock_aws():
        ddb = _table_with_items(3)
        for index in range(3):
            ddb.update_item(TableName="t", Key={"pk": {"S": f"job#{index}"}, "sk": {"S": "job"}},
                            UpdateExpression="SET events = :e, doc = :d", ExpressionAttributeValues={
                                ":e": {"L": [{"M": {"status": {"S": "queued"}}}]}, ":d": {"M": {"a": {"S": "b"}}}})
        before = _state(ddb)
        copies: list[int] = []
        original = Item.__deepcopy__
        monkeypatch.setattr(Item, "__deepcopy__", lambda self, memo: copies.append(1) or original(self, memo))
        whole = ddb.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={
            ":p": {"S": "job#1"}})["Items"]
        part = ddb.query(TableName="t", KeyConditionExpression="pk = :p", ProjectionExpression="events[0].#s, doc.a",
                         FilterExpression="n = :n", ExpressionAttributeNames={"#s": "status"},
                         ExpressionAttributeValues={":p": {"S": "job#1"}, ":n": {"N": "1"}})["Items"]
        assert copies == []
        assert whole == [before[0][1]]
        assert part == [{"events": {"L": [{"M": {"status": {"S": "queued"}}}]}, "doc": {"M": {"a": {"S": "b"}}}}]
        assert _state(ddb) == before  # projecting and filtering changed no stored item
