"""`reelhook doctor` against a deployed stack (CloudFormation in moto), and without its dependencies."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from reelhook_cli.doctor import parameter_env_names
from reelhook_cli.main import cli

SECRET = {"callback_token_key": "k" * 48, "freepik_api_key": "fk", "freepik_webhook_secret": "ws",
          "uniall_api_key": "uk", "aihubmax_api_key": "ak"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def deploy(session: Any, **parameters: str) -> None:
    """A stand-in for the real stack: the outputs and parameters the doctor reads, and the secret
    (made beside it: moto's CloudFormation cannot make secrets)."""
    secret_arn = session.client("secretsmanager").create_secret(Name="app", SecretString=json.dumps(SECRET))["ARN"]
    parameters = parameters | {"SecretArnForTest": secret_arn}
    template = {
        "Parameters": {name: {"Type": "String", "Default": ""} for name in parameters},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"ApiUrl": {"Value": "https://abc123.execute-api.us-east-1.amazonaws.com"},
                    "SecretArn": {"Value": {"Ref": "SecretArnForTest"}}},
    }
    session.client("cloudformation").create_stack(
        StackName="reelhook", TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])


def run(*args: str) -> tuple[Result, dict[str, dict[str, Any]]]:
    result = CliRunner().invoke(cli, ["doctor", "--json", *args], catch_exceptions=False)
    return result, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_template_parameters_map_to_the_functions_environment_names():
    assert parameter_env_names({"FreepikBaseUrl": "u", "FreepikApiKeyHeader": "h", "AihubmaxStatusPath": "p"}) == {
        "FREEPIK_BASE_URL": "u", "FREEPIK_API_KEY_HEADER": "h", "AIHUBMAX_STATUS_PATH": "p"}


def test_a_deployed_stacks_loopback_and_http_urls_are_refused_by_the_ssrf_guard(aws):
    """Only a local stack the user points at (--env-file) may be reached over http or loopback."""
    topic = aws.client("sns").create_topic(Name="alarms")["TopicArn"]
    deploy(aws, CallbackBaseUrl="http://127.0.0.1:9", FreepikBaseUrl="https://169.254.169.254",
           UniallBaseUrl="http://127.0.0.1:9", AihubmaxBaseUrl="https://10.0.0.1", AlarmTopicArn=topic)
    result, checks = run("--stack-name", "reelhook")
    assert result.exit_code == 1
    assert checks["stack"]["status"] == "ok" and checks["secret"]["status"] == "ok"
    assert "169.254.169.254" in checks["freepik key"]["message"] and "refused" in checks["freepik key"]["message"]
    assert "scheme 'http' is not allowed" in checks["uniall key"]["message"]
    assert checks["aihubmax key"]["status"] == "fail" and "refused" in checks["aihubmax key"]["message"]
    assert checks["callback route"]["status"] == "fail" and "scheme 'http'" in checks["callback route"]["message"]
    # The stack's AlarmTopicArn parameter is what is checked: a topic nobody subscribed to.
    assert checks["alarm topic"]["status"] == "warn" and topic in checks["alarm topic"]["message"]
    assert checks["freepik webhook secret"]["status"] == "ok"


def test_a_missing_stack_is_one_failed_check_naming_it(aws):
    result, checks = run("--stack-name", "not-deployed")
    assert result.exit_code == 1
    assert list(checks) == ["stack"] and "not-deployed" in checks["stack"]["message"]
    assert "--stack-name" in checks["stack"]["fix"]


def test_explicit_settings_need_no_stack(aws):
    secret = aws.client("secretsmanager").create_secret(Name="s", SecretString=json.dumps(SECRET | {
        "uniall_api_key": ""}))["ARN"]
    result, checks = run("--secret-arn", secret, "--callback-url", "http://127.0.0.1:9", "--provider", "uniall")
    assert result.exit_code == 1 and "stack" not in checks
    assert checks["uniall key"]["status"] == "fail" and "uniall_api_key is empty" in checks["uniall key"]["message"]


def test_an_unknown_provider_is_bad_usage():
    result = CliRunner().invoke(cli, ["doctor", "--provider", "nope", "--secret-arn", "x"])
    assert result.exit_code == 2 and "no provider nope" in result.output


def test_without_the_reelhook_package_it_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "reelhook" else real(name, *a))
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "missing_dependency" and "reelhook package" in error["message"]
    assert "pip install -e ." in " ".join(error.get("details", []))
