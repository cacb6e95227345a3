"""Make moto's server cheaper per request without changing what it answers.

Under a burst, moto's one process is the local stack's bottleneck: every DynamoDB request
goes through one lock (``stack.moto_lock_key``), so its cost per request caps the whole
stack's throughput. Profiled, these costs had nothing to do with what DynamoDB does:

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
- **Transactions.** Before a ``TransactWriteItems``, moto deep-copies every table it names,
  so it can roll back: a cost that grows with the table (about 200 ms CPU per transaction
  once a burst has stored a thousand jobs, all of it under the DynamoDB lock). A transaction
  can only change the items it names, so only those are copied; the table's item map is
  copied shallowly and its stream is cut back to its length before. A rollback leaves the
  same items and stream records as moto's own.
- **Parsing and copying every expression tree three times.** An ``UpdateItem`` parses its
  update expression and its condition once to check the placeholders it names and again to
  apply them, and the validator deep-copies the tree before rewriting it. The update
  expression's tree is kept per expression text, shared by the callers that only read it,
  and carries its own pickle: the validator's private copy is one unpickling (a tenth of a
  parse, and cheaper than ``deepcopy``). A condition's parse is kept for the same text, names
  and values, which is what the second parse of the same request asks for. Failed parses are
  never kept.
- **Copying nested values at every level.** moto turns a stored value into its wire form
  (for the answer, the stream record's images and the size checks) by deep-copying it and
  then converting each member, which copies every nested level again: the job item's list
  of events is copied once per level of depth, four times per ``UpdateItem``. The wire form
  is built directly, as fresh as before.
- **Checking what cannot have changed.** Three of an update's checks (one clause of each
  kind, no overlapping paths, no key attribute set) read only the expression, its names and
  the table's keys, and two are quadratic in the expression's length: once passed for those,
  they are not walked again. Which kind of node a tree walker handles is looked up once per
  walker and node class, not by ``isinstance`` over moto's ABCs at every node.
- **Copies nobody writes to.** ``UpdateItem``'s handler deep-copies the stored item only to
  read its attributes before the update, and a Query deep-copies every item it found only to
  read them: both read the stored items instead (under the DynamoDB lock, building fresh
  values as before).
- **Sizing an item.** moto re-sizes the whole item on every attribute an update sets, and
  sizes each member of a map by first wrapping it in a new ``DynamoType``, which rebuilds
  its subtree: the same sums without building anything.
- **Per-request bookkeeping.** moto lists a response class's methods with ``inspect`` on
  every request: kept per class. moto's Flask apps run in debug mode, whose request checks
  change no answer: off.

``install()`` is idempotent; tests/e2e/test_moto_speedups.py checks that the answers are
identical to moto's own.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
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


_transaction = threading.local()


class _TableSnapshot:
    """What one transaction can change in a moto table: the items it names, and its stream."""

    def __init__(self, table: Any, keys: list[dict[str, Any]]) -> None:
        from collections import defaultdict

        from moto.dynamodb.models.dynamo_type import DynamoType

        self.table = table
        if table.range_key_attr is None:
            self.items: Any = defaultdict(dict, table.items)
        else:
            self.items = defaultdict(dict, {h: dict(by_range) for h, by_range in table.items.items()})
        for key in keys:
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(hash_value, range_value)
            if item is None:
                continue
            # Updates change an item in place: the snapshot must hold its own copy.
            if range_value is None:
                self.items[hash_value] = copy.deepcopy(item)
            else:
                self.items[hash_value][range_value] = copy.deepcopy(item)
        shard = table.stream_shard
        self.stream_length = len(shard.items) if shard is not None else None

    def restore(self) -> None:
        self.table.items = self.items
        shard = self.table.stream_shard
        if shard is not None and self.stream_length is not None and len(shard.items) >= self.stream_length:
            del shard.items[self.stream_length:]


def _keys_named(transact_items: list[dict[str, Any]], table: Any) -> list[dict[str, Any]]:
    keys = []
    for entry in transact_items:
        for op in entry.values():
            if not isinstance(op, dict) or op.get("TableName") != table.name:
                continue
            if "Key" in op:
                keys.append(op["Key"])
            elif "Item" in op:
                attrs = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
                keys.append({name: op["Item"][name] for name in attrs if name in op["Item"]})
    return [key for key in keys if table.hash_key_attr in key
            and (table.range_key_attr is None or table.range_key_attr in key)]


class _CopyModule:
    """The ``copy`` module as a moto module sees it, but for the ``deepcopy`` a subclass changes."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


class _CopyNamedItemsOnly(_CopyModule):
    """Stands in for the ``copy`` module inside moto's DynamoDB backend.

    The backend only deep-copies whole tables to back up a transaction; during one, the copy
    is replaced by a ``_TableSnapshot`` and the table itself is handed back, so moto's own
    rollback (putting "the copy" back) changes nothing and ``transact_write_items`` restores
    the snapshots instead.
    """

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        snapshots = getattr(_transaction, "snapshots", None)
        if snapshots is None or type(value) is not Table:
            return copy.deepcopy(value, memo)
        if all(snapshot.table is not value for snapshot in snapshots):  # moto asks once per operation
            snapshots.append(_TableSnapshot(value, _keys_named(_transaction.items, value)))
        return value


def _transactions_copy_named_items_only() -> None:
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items
    _ORIGINAL["transact_write_items"] = original
    models.copy = _CopyNamedItemsOnly()  # type: ignore[assignment]

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _transaction.snapshots, _transaction.items = [], transact_items
        try:
            original(self, transact_items)
        except BaseException:
            for snapshot in reversed(_transaction.snapshots):
                snapshot.restore()
            raise
        finally:
            _transaction.snapshots = _transaction.items = None

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# Expressions a process keeps parsed: a stack uses a few dozen distinct texts.
_PARSED_LIMIT = 512


class _Bounded(OrderedDict[Any, Any]):
    """A small LRU map; callers hold moto's DynamoDB lock or tolerate a lost update."""

    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _PARSED_LIMIT:
            self.popitem(last=False)


# A kept tree carries its own pickle, so the validator's private copy is one unpickling.
_PICKLED = "_reelhook_pickled"
_MAP, _KINDS = "_reelhook_map", "_reelhook_kinds"


def _update_expressions_parsed_once() -> None:
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    original = UpdateExpressionParser.make  # bound to the class
    _ORIGINAL["update_make"] = original
    trees = _Bounded()

    def make(cls: Any, expression_str: str) -> Any:
        tree = trees.get(expression_str)
        if tree is None:
            tree = original(expression_str)
            pickled = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
            setattr(tree, _PICKLED, pickled)
            trees.remember(expression_str, tree)
        return tree

    def private_copy(value: Any, memo: Any = None) -> Any:
        pickled = getattr(value, _PICKLED, None) if memo is None else None
        if type(pickled) is bytes:
            return pickle.loads(pickled)  # noqa: S301 - bytes this process pickled itself
        return copy.deepcopy(value, memo)

    # Callers only read the kept tree (moto's handler lists its placeholders); the validator
    # works on a private copy, which it makes with ``deepcopy`` (its module's name for it).
    UpdateExpressionParser.make = classmethod(make)  # type: ignore[method-assign,assignment]
    validators.deepcopy = private_copy  # type: ignore[attr-defined]


def _static_update_checks_once() -> None:
    """An update expression's first three checks (one clause of each kind, no two actions on
    overlapping paths, no key attribute set) read only the expression, its names and the
    table's keys, and two of them rescan every action at every level of the tree: quadratic in
    the expression's length. Once they pass for a kept tree, its names and the table's keys,
    they are not walked again; they never change the tree, so the other checks see the same one."""
    from moto.dynamodb.parsing import validators

    cls = validators.UpdateExpressionValidator
    original_init = cls.__init__
    _ORIGINAL["validator_init"], _ORIGINAL["validator_validate"] = original_init, cls.validate
    static = (validators.ActionCountValidator, validators.OverlappingPathsValidator,
              validators.UpdateHashRangeKeyValidator)
    passed = _Bounded()

    def __init__(self: Any, expression: Any, expression_attribute_names: Any, expression_attribute_values: Any,
                 item: Any, table: Any) -> None:
        pickled = getattr(expression, _PICKLED, None)
        self._reelhook_static_key = None if type(pickled) is not bytes else (
            pickled, json.dumps(expression_attribute_names, sort_keys=True), tuple(table.table_key_attrs))
        original_init(self, expression, expression_attribute_names, expression_attribute_values, item, table)

    def validate(self: Any) -> Any:
        key = self._reelhook_static_key
        known = key is not None and key in passed
        node = self.node_to_validate
        for processor in self.processors:
            if known and type(processor) in static:
                continue
            node = processor.traverse(node)
            if not known and key is not None and type(processor) is static[-1]:
                passed.remember(key, True)
        return node

    cls.__init__ = __init__  # type: ignore[method-assign]
    cls.validate = validate  # type: ignore[method-assign]


class _ItemsReadBeforeTheirUpdate(_CopyModule):
    """Stands in for the ``copy`` module inside moto's DynamoDB request handlers.

    Their one deep copy is ``UpdateItem``'s of the stored item, taken to read its attributes
    (``to_json``) before the update changes it. ``to_json`` already builds fresh values, so the
    item itself gives the same attributes without the copy.
    """

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.dynamo_type import Item

        return value if type(value) is Item and memo is None else copy.deepcopy(value, memo)


def _update_reads_the_old_item_without_copying() -> None:
    from moto.dynamodb import responses

    _ORIGINAL["responses_copy"] = responses.copy
    responses.copy = _ItemsReadBeforeTheirUpdate()  # type: ignore[assignment]


class _QueryResultsReadOnly(_CopyModule):
    """Stands in for the ``copy`` module inside moto's table model.

    A Query deep-copies every item it found before handing them on, although all that follows
    only reads them: the index projection and a ProjectionExpression build new items, the
    filter and the answer read attributes (``[item.attrs ...]``, then converted into new
    dicts), all under the DynamoDB lock. So a list of items is handed on as a new list of the
    same items; every other copy (a scanned item, a backup's table) is moto's deep copy.
    """

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.dynamo_type import Item

        if memo is None and type(value) is list and all(type(member) is Item for member in value):
            return list(value)
        return copy.deepcopy(value, memo)


def _query_results_not_copied() -> None:
    from moto.dynamodb.models import table

    _ORIGINAL["table_copy"] = table.copy
    table.copy = _QueryResultsReadOnly()  # type: ignore[assignment]


def _item_sizes_without_rewrapping() -> None:
    """moto checks an item's size on every attribute it sets, and sizes each member of a map
    by wrapping it in a new ``DynamoType`` first, which rebuilds that member's whole subtree.
    The same sum, over the same members, without building anything."""
    from moto.dynamodb.models.dynamo_type import DynamoType, ItemSizeTooLarge, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize, number_size

    original_size = DynamoType.size
    _ORIGINAL["size"], _ORIGINAL["limited_setitem"] = original_size, LimitedSizeDict.__setitem__
    sets = ("SS", "NS", "BS")

    def size(self: Any) -> int:
        kind, value = self.type, self.value
        if kind == "N":
            return number_size(str(value))
        if kind in sets:
            return original_size(self)
        if kind == "L":
            return sum(size(member) if type(member) is DynamoType else DynamoType(member).size() for member in value)
        if kind == "M":
            return sum(bytesize(key) + (size(member) if type(member) is DynamoType else DynamoType(member).size())
                       for key, member in value.items())
        return 1 if isinstance(value, bool) else bytesize(value)

    def part_size(part: Any) -> int:
        return size(part) if type(part) is DynamoType else bytesize(str(part))

    def setitem(self: Any, key: str, value: Any) -> None:
        current = sum(map(part_size, self.keys())) + sum(map(part_size, self.values()))
        # moto's limit (between DynamoDB's documented 400 KB and the 409-410 KB it accepts)
        if current + bytesize(key) + part_size(value) > 405000:
            raise ItemSizeTooLarge
        dict.__setitem__(self, key, value)

    DynamoType.size = size  # type: ignore[method-assign]
    LimitedSizeDict.__setitem__ = setitem  # type: ignore[method-assign,assignment]


def _attribute_values_converted_without_copies() -> None:
    """``to_regular_json`` deep-copies a value and then converts each member, which copies
    every nested level again; building the plain form directly gives the same fresh value."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    _ORIGINAL["to_regular_json"] = DynamoType.to_regular_json

    def plain(member: Any) -> Any:
        return member.to_regular_json() if isinstance(member, DynamoType) else copy.deepcopy(member)

    def to_regular_json(self: Any) -> dict[str, Any]:
        value = self.value
        if isinstance(value, dict):
            value = {key: plain(member) for key, member in value.items()}
        elif isinstance(value, list):
            value = [plain(member) for member in value]
        else:
            value = copy.deepcopy(value)
        if self.is_binary() and isinstance(value, str):
            value = base64.b64decode(value)
        return {self.type: value}

    DynamoType.to_regular_json = to_regular_json  # type: ignore[method-assign]


def _traversers_keep_their_map() -> None:
    """moto's tree walkers rebuild their node-kind map (a dict of bound methods) twice for every
    node of every walk, and a validation is seven to ten walks. The map is fixed per walker:
    kept. Which of its kinds a node is depends only on the walker's class and the node's, so
    that is looked up once per pair instead of by ``isinstance`` over the ABCs at every node."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    def processing_map(self: Any) -> dict[type, Callable[[Any], Any]]:
        kept = self.__dict__.get(_MAP)
        if kept is None:
            kept = self.__dict__[_MAP] = self._processing_map()
        return kept

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        kinds = self.__dict__.get(_KINDS)
        if kinds is None:
            kinds = self.__dict__[_KINDS] = tuple(processing_map(self))
        return kinds

    kind_for: dict[tuple[type, type], type | None] = {}
    is_node: dict[type, bool] = {}

    def kind_of(self: Any, node: Any) -> type | None:
        """The first of the walker's kinds that ``node`` is (its map's order), or None."""
        pair = (type(self), type(node))
        if pair not in kind_for:
            kind_for[pair] = next((kind for kind in processing_map(self) if isinstance(node, kind)), None)
        return kind_for[pair]

    def process(self: Any, node: Any) -> Any:
        kind = kind_of(self, node)
        return None if kind is None else processing_map(self)[kind](node)

    no_hook = DepthFirstTraverser.pre_processing_of_child
    original_walk = DepthFirstTraverser.traverse_node_recursively
    _ORIGINAL["traverse_node_recursively"] = original_walk

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        """moto's walk (children first, then the node), visiting the same nodes in the same order."""
        if type(self).pre_processing_of_child is not no_hook:
            return original_walk(self, node, child_id)
        handlers = processing_map(self)

        def walk(node: Any, child_id: int) -> Any:
            node_type = type(node)
            if node_type not in is_node:
                is_node[node_type] = isinstance(node, Node)
            if not is_node[node_type]:
                return node
            parent = node.parent
            if node.children is not None:
                for index, child in enumerate(node.children):
                    walk(child, index)
            kind = kind_of(self, node)
            if kind is not None:
                node = handlers[kind](node)
                node.parent = parent
                if parent:
                    parent.children[child_id] = node
            return node

        return walk(node, child_id)

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed  # type: ignore[method-assign]
    DepthFirstTraverser.process = process  # type: ignore[method-assign]
    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively  # type: ignore[method-assign]


def _conditions_parsed_once() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    original = ConditionExpressionParser.parse
    _ORIGINAL["condition_parse"] = original
    parsed = _Bounded()

    def parse(self: Any) -> Any:
        if not self.condition_expression:
            return original(self)
        try:
            key = (self.condition_expression,
                   json.dumps(self.expression_attribute_names, sort_keys=True),
                   json.dumps(self.expression_attribute_values, sort_keys=True))
        except (TypeError, ValueError):
            return original(self)
        found = parsed.get(key)
        if found is None:
            op = original(self)
            parsed.remember(key, (op, tuple(self.expr_attr_names_found), tuple(self.expr_attr_values_found)))
            return op
        op, names, values = found
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return op

    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]


def _method_names_listed_once() -> None:
    from moto.core import responses

    original = responses.method_names_from_class
    _ORIGINAL["method_names"] = original
    responses.method_names_from_class = functools.cache(original)


def without_debug(create_app: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """moto builds each service's Flask app in debug mode, whose request checks cost every
    request; its answers are the same without them (an unexpected error is still a 500)."""

    @functools.wraps(create_app)
    def create(service: Any) -> Any:
        app = create_app(service)
        app.debug = False
        return app

    return create


def install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        _attribute_values_as_is()
        _module_list_read_once()
        _transactions_copy_named_items_only()
        _update_expressions_parsed_once()
        _static_update_checks_once()
        _update_reads_the_old_item_without_copying()
        _item_sizes_without_rewrapping()
        _query_results_not_copied()
        _attribute_values_converted_without_copies()
        _traversers_keep_their_map()
        _conditions_parsed_once()
        _method_names_listed_once()
        _installed = True


def original_structure_serializer() -> Any:
    """moto's own ``_serialize_type_structure`` (for the equivalence test)."""
    install()
    return _ORIGINAL["structure"]
