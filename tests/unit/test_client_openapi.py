"""The client's models against the API's own OpenAPI document (reelhook.openapi), so they cannot drift.

tests/e2e/test_client_stack.py runs the same check against the document the local stack serves.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, create_model

from reelhook.openapi import document
from reelhook_client import FieldError, Job, ModelInfo, Output
from reelhook_client.models import ApiModel, ProviderList
from tests.openapi_drift import model_drift

# Job fields the API is gaining (being built now): optional in the client, compared as soon as
# the document declares them.
PENDING = frozenset({"request", "attempts", "route", "cancellation"})


def job_drift(doc: dict[str, Any], model: type[BaseModel] = Job) -> list[str]:
    return model_drift(doc, "JobOut", model, pending=PENDING)


def test_job_has_a_compatible_field_for_every_property_of_the_openapi_job_and_no_other() -> None:
    assert job_drift(document()) == []


def test_fields_still_to_come_are_optional() -> None:
    for name in PENDING:
        assert not Job.model_fields[name].is_required(), name


def test_field_errors_match_the_error_schema() -> None:
    doc = document()
    items = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["fields"]["items"]
    assert model_drift(doc, "Error", FieldError, server_schema=items) == []


def test_model_info_covers_what_the_catalogue_schema_declares() -> None:
    doc = document()
    entry = doc["components"]["schemas"]["ModelCatalog"]["properties"]["models"]["items"]
    # The catalogue's schema documents a few keys only: checked one way (ModelInfo keeps the rest as extras).
    assert model_drift(doc, "ModelCatalog", ModelInfo, server_schema=entry, both_ways=False) == []


def test_provider_health_matches_the_providers_schema_both_ways() -> None:
    assert model_drift(document(), "ProviderHealth", ProviderList) == []


def test_the_check_finds_each_kind_of_drift() -> None:
    """A model that has drifted every way the check knows is reported every way."""
    output_fields: dict[str, Any] = {name: (info.annotation, info) for name, info in Output.model_fields.items()
                                     if name != "poster_url"}
    drifted_output = create_model("DriftedOutput", __base__=ApiModel, **output_fields)
    fields: dict[str, Any] = {name: (info.annotation, info) for name, info in Job.model_fields.items()
                              if name != "warnings"}
    fields |= {
        "progress": (str | None, None),  # the API sends an integer
        "colour": (str | None, None),  # the API has no such property
        "submit_error": (str, ...),  # optional in the API
        "outputs": (list[drifted_output], []),  # a nested model missing a property
    }
    drifted = create_model("Drifted", __base__=ApiModel, **fields)
    problems = job_drift(document(), drifted)
    assert problems == [
        "Drifted.warnings: in the API's schema, no field in the client model",
        "Drifted.colour: a client field the API's schema does not declare",
        "Drifted.submit_error: required by the client, optional in the API's schema",
        "Drifted.outputs[].poster_url: in the API's schema, no field in the client model",
        "Drifted.progress: the server sends ['integer'], the client takes ['null', 'string']",
        "Drifted.submit_error: the server sends ['null'], the client takes ['string']",
    ], problems


def test_a_pending_field_is_compared_once_the_document_has_it() -> None:
    doc = document()
    job_out = doc["components"]["schemas"]["JobOut"]
    served = {**doc, "components": {"schemas": {**doc["components"]["schemas"], "JobOut": {
        **job_out, "properties": {**job_out["properties"], "route": {"type": "string"}}}}}}
    assert job_drift(served) == ["Job.route: the server sends ['string'], the client takes ['null', 'object']"]
