"""What each function's init (importing its app.py) loads, checked in a fresh process.

Guards the cold-start work without timing anything: pydantic is only for validating a new
job (loaded by the first ``create_job``), botocore's session and clients come with the first
client, and reelhook's value classes are ``@record`` rather than dataclasses (which compile
their methods at import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
# Left as a dataclass: only the transfer function imports it.
DATACLASSES_ALLOWED = {"reelhook.adapters.s3_stream"}

PROBE = r"""
import dataclasses, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
dataclass_modules = sorted({
    name for name, mod in list(sys.modules.items())
    if name.startswith("reelhook") and mod is not None
    for value in vars(mod).values()
    if isinstance(value, type) and value.__module__ == name and dataclasses.is_dataclass(value)
})
print(json.dumps({"modules": sorted(sys.modules), "dataclass_modules": dataclass_modules}))
"""


def _init(function: str) -> dict[str, list[str]]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "layers" / "reelhook"),
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_LAMBDA_FUNCTION_NAME": function, "POWERTOOLS_SERVICE_NAME": "reelhook",
        "POWERTOOLS_METRICS_NAMESPACE": "reelhook", "JOBS_TABLE": "reelhook-jobs", "SECRET_ID": "reelhook/app",
    }
    answer = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "functions" / function / "app.py")],  # noqa: S603
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def loaded() -> dict[str, dict[str, list[str]]]:
    return {function: _init(function) for function in FUNCTIONS}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_init_does_not_load_pydantic(loaded: dict, function: str) -> None:
    heavy = [m for m in loaded[function]["modules"] if m.split(".")[0] in {"pydantic", "pydantic_core"}]
    assert not heavy, f"{function}'s init imports pydantic ({heavy[:3]}...)"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_init_creates_no_botocore_session(loaded: dict, function: str) -> None:
    modules = set(loaded[function]["modules"])
    assert not modules & {"botocore.session", "botocore.client", "boto3"}, "clients are created on first use"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_value_classes_are_records_not_dataclasses(loaded: dict, function: str) -> None:
    found = set(loaded[function]["dataclass_modules"]) - DATACLASSES_ALLOWED
    assert not found, f"dataclasses (compiled at every cold start) in {sorted(found)}: use reelhook.records.record"


def test_a_new_job_still_validates_with_pydantic() -> None:
    from reelhook import http_api

    status, body = http_api.create_job(b'{"model": 1}', None, "https://example.test", owner="anonymous")
    assert status == 422 and body["error"]["code"] == "validation_error"
    assert "pydantic" in sys.modules


def test_the_api_routes_without_a_general_purpose_resolver(loaded: dict) -> None:
    # Powertools' event handler (and asyncio, which it imports) cost the API's cold start
    # about as much as the rest of its init; reelhook.http_router routes its seven routes.
    modules = set(loaded["api"]["modules"])
    assert "aws_lambda_powertools.event_handler" not in modules
    assert "asyncio" not in modules
