"""schemathesis against the OpenAPI document the local stack serves: no 5xx, answers as documented."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("REELHOOK_FUZZ_EXAMPLES", "40"))


@pytest.fixture(scope="module")
def stack():
    with LocalStack(StackOptions(sandbox=SandboxConfig(step_seconds=0.2))) as running:
        yield running


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


def test_api_never_answers_5xx_and_matches_its_document(stack):
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/jobs", "/v1/jobs/{id}", "/v1/models"}
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def exercise(case):
            case.call_and_validate(base_url=stack.api_url, checks=CHECKS)

        exercise()
