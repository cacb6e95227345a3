"""Compare the client's pydantic models with the API's OpenAPI document, both as JSON Schema.

A server property is compatible with a client field when every JSON type the server may send
there is one the client accepts (an integer where the client takes a number is fine), array
items and nested objects compared the same way, down through every ``$ref``. Required client
fields must be required by the server. Objects the document leaves free-form (no
``properties``) promise nothing to compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]
Resolve = Callable[[Schema], Schema]


def resolver(definitions: dict[str, Schema]) -> Resolve:
    def resolve(schema: Schema) -> Schema:
        while "$ref" in schema:
            schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return resolve(schema["allOf"][0])
        return schema

    return resolve


def _branches(schema: Schema, resolve: Resolve) -> list[Schema]:
    schema = resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [b for branch in schema[key] for b in _branches(branch, resolve)]
    return [schema]


def _types(schema: Schema) -> set[str] | None:
    """The JSON types a (resolved, single-branch) schema allows; None for any."""
    if "const" in schema:
        values = [schema["const"]]
    elif "enum" in schema:
        values = schema["enum"]
    else:
        values = None
    if values is not None:
        names = {"bool": "boolean", "int": "integer", "float": "number", "str": "string", "NoneType": "null",
                 "list": "array", "dict": "object"}
        return {names[type(v).__name__] for v in values}
    kind = schema.get("type")
    if kind is None:
        return None
    return set(kind) if isinstance(kind, list) else {kind}


def compatible(server: Schema, client: Schema, where: str, resolve_server: Resolve, resolve_client: Resolve,
               problems: list[str]) -> None:
    """Can the client take whatever the server's schema allows?"""
    client_branches = _branches(client, resolve_client)
    client_types: set[str] = set()
    for branch in client_branches:
        types = _types(branch)
        if types is None:
            return  # the client takes anything here
        client_types |= types
    if "number" in client_types:
        client_types.add("integer")
    for branch in _branches(server, resolve_server):
        server_types = _types(branch)
        if server_types is None:
            problems.append(f"{where}: the server may send anything, the client takes only {sorted(client_types)}")
            continue
        missing = server_types - client_types
        if missing:
            problems.append(f"{where}: the server sends {sorted(missing)}, the client takes {sorted(client_types)}")
        for kind in server_types & client_types & {"array", "object"}:
            target = next(b for b in client_branches if kind in (_types(b) or set()))
            if kind == "array":
                compatible(branch.get("items", {}), target.get("items", {}), f"{where}[]", resolve_server,
                           resolve_client, problems)
            elif "properties" in branch:
                compare_objects(branch, target, where, resolve_server, resolve_client, problems)


def compare_objects(server: Schema, client: Schema, where: str, resolve_server: Resolve, resolve_client: Resolve,
                    problems: list[str], *, pending: frozenset[str] = frozenset(), both_ways: bool = True) -> None:
    server_props: dict[str, Schema] = server.get("properties", {})
    client_props: dict[str, Schema] = client.get("properties", {})
    if not client_props and client.get("additionalProperties", True) is not False:
        return  # a plain dict on the client: takes any object
    for name in sorted(server_props.keys() - client_props.keys()):
        problems.append(f"{where}.{name}: in the API's schema, no field in the client model")
    if both_ways:
        for name in sorted(client_props.keys() - server_props.keys() - pending):
            problems.append(f"{where}.{name}: a client field the API's schema does not declare")
    for name in sorted(set(client.get("required", [])) - set(server.get("required", []))):
        problems.append(f"{where}.{name}: required by the client, optional in the API's schema")
    for name in sorted(server_props.keys() & client_props.keys()):
        compatible(server_props[name], client_props[name], f"{where}.{name}", resolve_server, resolve_client,
                   problems)


def model_drift(document: dict[str, Any], schema_name: str, model: type[BaseModel], *,
                pending: frozenset[str] = frozenset(), both_ways: bool = True,
                server_schema: Schema | None = None) -> list[str]:
    """Every mismatch between ``model`` and the document's ``schema_name`` (or ``server_schema``)."""
    definitions = document["components"]["schemas"]
    client = model.model_json_schema(ref_template="#/$defs/{model}")
    resolve_server, resolve_client = resolver(definitions), resolver(client.get("$defs", {}))
    problems: list[str] = []
    compare_objects(resolve_server(server_schema or definitions[schema_name]), client, model.__name__,
                    resolve_server, resolve_client, problems, pending=pending, both_ways=both_ways)
    return problems
