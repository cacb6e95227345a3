"""`reelhook doctor --env-file` against the local stack: healthy, then broken one way at a time."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reelhook_cli.main import cli
from reelhook_local.serve import local_env, write_env_file
from reelhook_local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(StackOptions()) as running:
        yield running


@pytest.fixture(scope="module")
def env_file(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("doctor") / "local.env"
    write_env_file(path, local_env(stack, enforce_iam=True))
    return path


@pytest.fixture(scope="module")
def topics(stack: LocalStack) -> dict[str, str]:
    """An alarm topic someone listens to (an SQS queue), and one nobody does."""
    sns, sqs = stack.client("sns"), stack.client("sqs")
    heard = sns.create_topic(Name=f"{stack.options.resource_prefix}-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{stack.options.resource_prefix}-alarm-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=heard, Protocol="sqs", Endpoint=queue_arn)
    unheard = sns.create_topic(Name=f"{stack.options.resource_prefix}-unheard")["TopicArn"]
    return {"heard": heard, "unheard": unheard}


def doctor(env_file: Path, *args: str) -> tuple[Result, dict[str, dict[str, Any]]]:
    result = CliRunner().invoke(cli, ["doctor", "--env-file", str(env_file), "--json", *args],
                                catch_exceptions=False)
    report = json.loads(result.stdout)
    return result, {check["name"]: check for check in report["checks"]}


@contextmanager
def secret_fields(stack: LocalStack, **changes: str) -> Iterator[None]:
    """The deployment secret with some fields changed, put back afterwards."""
    assert stack.resources is not None
    client, secret_id = stack.client("secretsmanager"), stack.resources.secret_id
    original = client.get_secret_value(SecretId=secret_id)["SecretString"]
    client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(json.loads(original) | changes))
    try:
        yield
    finally:
        client.put_secret_value(SecretId=secret_id, SecretString=original)


def statuses(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


def test_a_healthy_stack_is_all_ok(env_file, topics, stack):
    assert stack.resources is not None
    jobs_before = stack.client("dynamodb").scan(TableName=stack.resources.table_name)["Count"]
    result, checks = doctor(env_file, "--alarm-topic-arn", topics["heard"])
    assert result.exit_code == 0, result.output
    assert set(statuses(checks).values()) == {"ok"}, checks
    assert {"stack", "secret", "secret callback_token_key", "freepik key", "uniall key", "aihubmax key",
            "freepik webhook secret", "callback route", "alarm topic"} == set(checks)
    assert "HTTP 404" in checks["uniall key"]["message"]  # the task that cannot exist, asked with a good key
    assert "HTTP 401" in checks["callback route"]["message"]
    # Probes change nothing: no job, no provider task.
    assert stack.client("dynamodb").scan(TableName=stack.resources.table_name)["Count"] == jobs_before
    assert len(stack.sandbox.tasks) == 0


def test_without_an_alarm_topic_it_warns_and_still_passes(env_file):
    result, checks = doctor(env_file)
    assert result.exit_code == 0, result.output
    assert checks["alarm topic"]["status"] == "warn" and "notify nobody" in checks["alarm topic"]["message"]
    assert checks["alarm topic"]["fix"]
    strict = CliRunner().invoke(cli, ["doctor", "--env-file", str(env_file), "--strict"], catch_exceptions=False)
    assert strict.exit_code == 1


def test_an_empty_secret_field_fails_and_names_it(env_file, topics, stack):
    with secret_fields(stack, uniall_api_key=""):
        result, checks = doctor(env_file, "--alarm-topic-arn", topics["heard"])
    assert result.exit_code == 1
    assert checks["uniall key"]["status"] == "fail"
    assert "uniall_api_key is empty" in checks["uniall key"]["message"] and checks["uniall key"]["fix"]
    assert checks["freepik key"]["status"] == checks["aihubmax key"]["status"] == "ok"
    # Leaving a provider out is how a deployment that does not use it passes.
    result, checks = doctor(env_file, "--alarm-topic-arn", topics["heard"], "--provider", "freepik")
    assert result.exit_code == 0 and "uniall key" not in checks


def test_a_wrong_provider_key_fails_as_refused(env_file, topics, stack):
    with secret_fields(stack, aihubmax_api_key="not-the-key"):
        result, checks = doctor(env_file, "--alarm-topic-arn", topics["heard"])
    assert result.exit_code == 1
    check = checks["aihubmax key"]
    assert check["status"] == "fail" and "HTTP 401" in check["message"] and "aihubmax_api_key" in check["fix"]
    assert [name for name, status in statuses(checks).items() if status != "ok"] == ["aihubmax key"]


def test_a_missing_freepik_webhook_secret_is_a_warning(env_file, topics, stack):
    with secret_fields(stack, freepik_webhook_secret=""):
        result, checks = doctor(env_file, "--alarm-topic-arn", topics["heard"])
    assert result.exit_code == 0, result.output
    check = checks["freepik webhook secret"]
    assert check["status"] == "warn" and "freepik_webhook_secret is empty" in check["message"]
    assert "confirmed by a status GET" in check["message"]
    assert checks["freepik key"]["status"] == "ok"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_callback_url_fails(env_file, topics):
    result, checks = doctor(env_file, "--alarm-topic-arn", topics["heard"],
                            "--callback-url", f"http://127.0.0.1:{closed_port()}")
    assert result.exit_code == 1
    check = checks["callback route"]
    assert check["status"] == "fail" and "no answer" in check["message"] and check["fix"]


def test_a_callback_url_that_is_not_reelhook_fails(env_file, topics, stack):
    # The provider sandbox answers 404 there, but not as reelhook's callback function would.
    result, checks = doctor(env_file, "--alarm-topic-arn", topics["heard"], "--callback-url", stack.sandbox.root_url)
    assert result.exit_code == 1
    assert checks["callback route"]["status"] == "fail"
    assert "not from reelhook's callback function" in checks["callback route"]["message"]


def test_an_alarm_topic_without_subscriptions_warns(env_file, topics):
    result, checks = doctor(env_file, "--alarm-topic-arn", topics["unheard"])
    assert result.exit_code == 0
    check = checks["alarm topic"]
    assert check["status"] == "warn" and "no confirmed subscription" in check["message"]
    assert "aws sns subscribe" in check["fix"]


def test_an_alarm_topic_that_does_not_exist_fails(env_file, topics):
    missing = topics["heard"].rsplit(":", 1)[0] + ":no-such-topic"
    result, checks = doctor(env_file, "--alarm-topic-arn", missing)
    assert result.exit_code == 1 and checks["alarm topic"]["status"] == "fail"


def test_the_human_report_is_one_line_per_check_with_the_fix_below(env_file, stack):
    with secret_fields(stack, uniall_api_key=""):
        result = CliRunner().invoke(cli, ["doctor", "--env-file", str(env_file)], catch_exceptions=False)
    lines = result.output.splitlines()
    assert result.exit_code == 1
    assert lines[0].startswith("reelhook doctor: local stack")
    fail = next(i for i, line in enumerate(lines) if line.startswith("fail") and "uniall key" in line)
    assert "uniall_api_key is empty" in lines[fail] and lines[fail + 1].strip().startswith("fix: ")
    assert any(line.startswith("ok") and "freepik key" in line for line in lines)
