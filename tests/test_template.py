"""template.yaml: offline SAM transform, cfn-lint, least-privilege IAM, resource shapes,
and the template-driven resource builder the local stack uses.

Nothing here talks to AWS: the transform gets a region from the environment and a managed
policy loader that returns nothing, cfn-lint runs on bundled specs, and the builder runs
under moto's ``mock_aws``.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from reelhook_local.aws_resources import (
    StackResources,
    UnresolvedError,
    create_stack_resources,
    load_template,
    template_env,
)
from tests.template_tools import REGION, ROOT, TEMPLATE_PATH, sam_transform

# cfn-lint rules deliberately ignored, each with the reason. Empty: the template lints clean.
IGNORED_CFN_LINT_RULES: dict[str, str] = {}

# Managed policies a role may carry. Neither touches a data service. Notably absent:
# AWSLambdaSQSQueueExecutionRole (sqs:ReceiveMessage/DeleteMessage on Resource "*"), which
# SAM adds for SQS events unless the function has its own role.
ALLOWED_MANAGED_POLICIES = {
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess",
}

DATA_SERVICES = ("dynamodb", "s3", "sqs", "secretsmanager", "kms")

TABLE = "JobsTable.Arn"
ACTIVE_INDEX = "${JobsTable.Arn}/index/active-index"
VIDEOS = "${VideoBucket.Arn}/videos/*"
QUEUE = "TransferQueue.Arn"
SECRET = "AppSecret"
INBOX = "${VideoBucket.Arn}/inbox/*"
OUTBOX = "${VideoBucket.Arn}/outbox/*"
STREAM = "JobsTable.StreamArn"
NOTIFY_QUEUE = "NotifyQueue.Arn"
SUBMIT_QUEUE = "SubmitQueue.Arn"

# The whole permission set of each function, rendered as (action, resource). Adding a
# permission means adding it here too: that is the point.
EXPECTED_PERMISSIONS: dict[str, set[tuple[str, str]]] = {
    "ApiFunction": {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:ConditionCheckItem", TABLE),
        ("secretsmanager:GetSecretValue", SECRET),
        ("s3:GetObject", VIDEOS),
        ("s3:GetObjectVersion", VIDEOS),
        ("s3:GetObject", "${VideoBucket.Arn}/inputs/*"),
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::${Buckets}/*"),
        ("sqs:SendMessage", SUBMIT_QUEUE),
        # GET /v1/providers, limited to the governance items (test below).
        ("dynamodb:BatchGetItem", TABLE),
        # GET /v1/jobs: the owner-index only.
        ("dynamodb:Query", "${JobsTable.Arn}/index/owner-index"),
    },
    # Moves existing jobs on: never creates an item. A failed task of an "any" job is queued
    # on its next route.
    "CallbackFunction": {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("sqs:SendMessage", QUEUE),
        ("sqs:SendMessage", SUBMIT_QUEUE),
        ("secretsmanager:GetSecretValue", SECRET),
    },
    "TransferFunction": {
        ("sqs:ReceiveMessage", QUEUE),
        ("sqs:DeleteMessage", QUEUE),
        ("sqs:GetQueueAttributes", QUEUE),
        ("s3:PutObject", VIDEOS),
        ("s3:AbortMultipartUpload", VIDEOS),
        ("s3:ListMultipartUploadParts", VIDEOS),
        ("s3:GetObject", VIDEOS),
        ("s3:GetObjectVersion", VIDEOS),
        ("s3:DeleteObject", VIDEOS),
        ("s3:DeleteObjectVersion", VIDEOS),
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
    },
    # Finds due jobs and queues their checks; sweeps in-flight places that finished jobs hold.
    "PollerFunction": {
        ("dynamodb:Query", ACTIVE_INDEX),
        ("sqs:SendMessage", "PollQueue.Arn"),
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:BatchGetItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
    },
    "PollWorkerFunction": {
        ("sqs:ReceiveMessage", "PollQueue.Arn"),
        ("sqs:DeleteMessage", "PollQueue.Arn"),
        ("sqs:GetQueueAttributes", "PollQueue.Arn"),
        ("sqs:SendMessage", "PollQueue.Arn"),
        ("dynamodb:UpdateItem", TABLE),
        # The circuit of a failed task's next route, limited to the governance items (test below).
        ("dynamodb:GetItem", TABLE),
        ("sqs:SendMessage", QUEUE),
        ("sqs:SendMessage", SUBMIT_QUEUE),
        ("secretsmanager:GetSecretValue", SECRET),
        # Re-publishes a terminal job whose notifier record was lost.
        ("sqs:SendMessage", NOTIFY_QUEUE),
        ("events:PutEvents", "EventBus.Arn"),
        ("s3:PutObject", OUTBOX),
    },
    # Sends queued jobs: reads and claims them, takes governance items in the same table,
    # presigns s3:// inputs, and puts waiting jobs back on its own queue.
    "SubmitFunction": {
        ("sqs:ReceiveMessage", SUBMIT_QUEUE),
        ("sqs:DeleteMessage", SUBMIT_QUEUE),
        ("sqs:GetQueueAttributes", SUBMIT_QUEUE),
        ("sqs:SendMessage", SUBMIT_QUEUE),
        ("dynamodb:GetItem", TABLE),
        # The jobs of a batch, read at once.
        ("dynamodb:BatchGetItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("secretsmanager:GetSecretValue", SECRET),
        ("s3:GetObject", "${VideoBucket.Arn}/inputs/*"),
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::${Buckets}/*"),
    },
    # Submits like the API (same table, secret and s3:// input grants), reads manifests,
    # writes and clears error documents; its DLQ grant comes from SAM's DeadLetterQueue.
    "InboxFunction": {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:ConditionCheckItem", TABLE),
        ("secretsmanager:GetSecretValue", SECRET),
        ("s3:GetObject", INBOX),
        ("s3:PutObject", OUTBOX),
        ("s3:DeleteObject", OUTBOX),
        ("s3:GetObject", "${VideoBucket.Arn}/inputs/*"),
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::${Buckets}/*"),
        ("sqs:SendMessage", "InboxDLQ.Arn"),
        ("sqs:SendMessage", SUBMIT_QUEUE),
    },
    # Reads the stream (the images carry the job); writes only the record that an event was published.
    "NotifierFunction": {
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:DescribeStream", STREAM),
        ("dynamodb:GetRecords", STREAM),
        ("dynamodb:GetShardIterator", STREAM),
        ("dynamodb:ListStreams", "${JobsTable.Arn}/stream/*"),
        ("sqs:SendMessage", "NotifierFailureQueue.Arn"),
        ("s3:PutObject", OUTBOX),
        ("events:PutEvents", "EventBus.Arn"),
        ("sqs:SendMessage", NOTIFY_QUEUE),
    },
    "NotifyFunction": {
        ("sqs:ReceiveMessage", NOTIFY_QUEUE),
        ("sqs:DeleteMessage", NOTIFY_QUEUE),
        ("sqs:GetQueueAttributes", NOTIFY_QUEUE),
        ("sqs:SendMessage", NOTIFY_QUEUE),
        ("dynamodb:UpdateItem", TABLE),
        ("secretsmanager:GetSecretValue", "NotifySigningSecret"),
        ("s3:GetObject", VIDEOS),
        ("s3:GetObjectVersion", VIDEOS),
    },
}

EXPECTED_ROUTES = {
    ("POST", "/v1/jobs"): "ApiFunction",
    ("GET", "/v1/jobs"): "ApiFunction",
    ("GET", "/v1/jobs/{id}"): "ApiFunction",
    ("POST", "/v1/jobs/{id}/cancel"): "ApiFunction",
    ("GET", "/v1/models"): "ApiFunction",
    ("GET", "/v1/providers"): "ApiFunction",
    ("GET", "/v1/openapi.json"): "ApiFunction",
    ("POST", "/v1/callbacks/{provider}/{job_id}"): "CallbackFunction",
}

EXPECTED_ENV = {
    "ROUTING_PROVIDER_ORDER",
    "ROUTING_FAILOVER",
    "REFUSALS_BEFORE_FAILOVER",
    "CIRCUIT_FAILURE_THRESHOLD",
    "CIRCUIT_COOLDOWN_SECONDS",
    "JOBS_TABLE",
    "VIDEO_BUCKET",
    "OUTPUT_PREFIX",
    "TRANSFER_QUEUE_URL",
    "SUBMIT_QUEUE_URL",
    "POLL_QUEUE_URL",
    "INPUT_BUCKETS",
    "SECRET_ID",
    "CALLBACK_BASE_URL",
    "FREEPIK_BASE_URL",
    "FREEPIK_API_KEY_HEADER",
    "FREEPIK_KLING_ENDPOINT",
    "FREEPIK_WEBHOOK_SECRET_ENCODING",
    "UNIALL_BASE_URL",
    "AIHUBMAX_BASE_URL",
    "AIHUBMAX_CALLBACKS",
    "AIHUBMAX_FIELD_NAMES",
    "AIHUBMAX_CREATE_PATH",
    "AIHUBMAX_STATUS_PATH",
    "RECONCILE_AFTER_SECONDS",
    "QUEUED_MAX_AGE_SECONDS",
    "RUNNING_MAX_AGE_SECONDS",
    "TASK_MISSING_POLLS",
    "EVENT_REPUBLISH_AFTER_SECONDS",
    "POLLER_PERIOD_SECONDS",
    "FREEPIK_REQUESTS_PER_SECOND",
    "FREEPIK_MAX_IN_FLIGHT",
    "UNIALL_REQUESTS_PER_SECOND",
    "UNIALL_MAX_IN_FLIGHT",
    "AIHUBMAX_REQUESTS_PER_SECOND",
    "AIHUBMAX_MAX_IN_FLIGHT",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    "LOG_LEVEL",
}


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(template)


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def render(value: Any) -> str:
    """An IAM Resource as text: Ref X -> "X", GetAtt [X, Arn] -> "X.Arn", Sub -> its string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return str(arg)
        if fn == "Fn::GetAtt":
            return ".".join(arg) if isinstance(arg, list) else str(arg)
        if fn == "Fn::Sub" and isinstance(arg, str):
            return arg
        if fn == "Fn::Sub" and isinstance(arg, list):
            return str(arg[0])
        if fn == "Fn::Split":  # a list of ARNs built from a parameter: its pattern stands for all
            return render(arg[1])
    raise AssertionError(f"unexpected IAM resource form: {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(transformed: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner logical id, statement) for every IAM policy statement in the output."""
    for name, resource in transformed["Resources"].items():
        p = resource.get("Properties", {})
        documents: list[Any] = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in p.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            documents = [p["PolicyDocument"]]
        for document in documents:
            for statement in as_list(document["Statement"]):
                if "Fn::If" in statement:  # a conditional statement: check the branch that grants
                    for branch in statement["Fn::If"][1:]:
                        if isinstance(branch, dict) and "Effect" in branch:
                            yield name, branch
                    continue
                yield name, statement


def role_of(transformed: dict[str, Any], function: str) -> str:
    role = transformed["Resources"][function]["Properties"]["Role"]
    assert "Fn::GetAtt" in role, role
    return str(role["Fn::GetAtt"][0])


# ---------------------------------------------------------------------------- parsing


def test_loader_reads_the_template_as_cfn_lint_does(template: dict[str, Any]) -> None:
    from cfnlint.decode import cfn_yaml

    theirs = json.loads(json.dumps(cfn_yaml.loads(TEMPLATE_PATH.read_text())))
    assert template == theirs
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


def test_transform_runs_offline(transformed: dict[str, Any]) -> None:
    functions = resources_of(transformed, "AWS::Lambda::Function")
    assert set(functions) == set(EXPECTED_PERMISSIONS)
    layers = resources_of(transformed, "AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    (layer_id,) = layers
    for name, fn in functions.items():
        p = fn["Properties"]
        assert p["Runtime"] == "python3.12", name
        assert p["Handler"] == "app.handler", name
        assert p["Layers"] == [{"Ref": layer_id}], name
        assert p["Architectures"] == layers[layer_id]["Properties"]["CompatibleArchitectures"], name


def test_function_sizes_and_timeouts(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    fns = {name: r["Properties"] for name, r in resources_of(transformed, "AWS::Lambda::Function").items()}
    assert (fns["CallbackFunction"]["MemorySize"], fns["CallbackFunction"]["Timeout"]) == (256, 10)
    assert (fns["TransferFunction"]["MemorySize"], fns["TransferFunction"]["Timeout"]) == (512, 900)
    assert fns["PollerFunction"]["Timeout"] == 60  # dispatches once a minute; the workers check
    # API Gateway gives an integration 30 s at most.
    assert fns["ApiFunction"]["Timeout"] < 30
    layer = template["Resources"]["ReelhookLayer"]
    # layers/reelhook/Makefile builds it: the python3.12 method would ship no bytecode.
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "layers/reelhook/"
    assert "build-ReelhookLayer:" in (ROOT / "layers" / "reelhook" / "Makefile").read_text()


# ---------------------------------------------------------------------------- cfn-lint


def _lint(text: str) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    matches = lint(text, config=ManualArgs(regions=[REGION]))
    return [str(m) for m in matches if m.rule.id not in IGNORED_CFN_LINT_RULES]


def test_cfn_lint_sam_template_is_clean() -> None:
    assert _lint(TEMPLATE_PATH.read_text()) == []


def test_cfn_lint_transformed_template_is_clean(transformed: dict[str, Any]) -> None:
    assert _lint(json.dumps(transformed)) == []


def test_cfn_lint_does_catch_errors() -> None:
    """Guards the two tests above against a lint setup that silently checks nothing."""
    broken = TEMPLATE_PATH.read_text().replace("VisibilityTimeout: 5400", "VisibilityTimeout: 99999")
    assert any("E3034" in m for m in _lint(broken))


# ---------------------------------------------------------------------------- IAM


def test_no_wildcards_on_data_services(transformed: dict[str, Any]) -> None:
    checked = 0
    for owner, statement in policy_statements(transformed):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a for a in as_list(statement.get("Action", [])) if a.split(":")[0] in DATA_SERVICES]
        if not actions:
            continue
        assert "NotAction" not in statement and "NotResource" not in statement, owner
        for action in actions:
            assert "*" not in action, f"{owner}: wildcard action {action}"
        for resource in as_list(statement["Resource"]):
            text = render(resource)
            assert text != "*", f"{owner}: {actions} on every resource"
            # The only wildcards allowed are object keys under a granted prefix or bucket, and
            # the jobs table's streams (ListStreams).
            for granted in ("/videos/*", "/inputs/*", "/inbox/*", "/outbox/*", "${Buckets}/*",
                            "${JobsTable.Arn}/stream/*"):
                text = text.removesuffix(granted)
            assert "*" not in text, f"{owner}: wildcard resource {text}"
            checked += 1
    assert checked > 10


def test_managed_policies_are_allowlisted(transformed: dict[str, Any]) -> None:
    for name, role in resources_of(transformed, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = arn if isinstance(arn, str) else render(arn)
            assert text.replace("arn:aws:", "arn:${AWS::Partition}:") in ALLOWED_MANAGED_POLICIES, (name, text)


@pytest.mark.parametrize("function", sorted(EXPECTED_PERMISSIONS))
def test_function_permissions_are_exactly_the_designed_ones(transformed: dict[str, Any], function: str) -> None:
    role = role_of(transformed, function)
    granted: set[tuple[str, str]] = set()
    for owner, statement in policy_statements(transformed):
        if owner != role or statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                granted.add((action, render(resource)))
    assert granted == EXPECTED_PERMISSIONS[function]


def test_s3_grants_match_the_prefixes_the_code_uses(template: dict[str, Any]) -> None:
    from reelhook.services.media import INPUT_PREFIX
    from reelhook.services.outbox_paths import INBOX_PREFIX, OUTBOX_PREFIX

    prefix = template["Globals"]["Function"]["Environment"]["Variables"]["OUTPUT_PREFIX"]
    own_bucket = {f"${{VideoBucket.Arn}}/{p}*" for p in (prefix, INPUT_PREFIX, INBOX_PREFIX, OUTBOX_PREFIX)}
    for permissions in EXPECTED_PERMISSIONS.values():
        for action, resource in permissions:
            if action.startswith("s3:") and resource.startswith("${VideoBucket"):
                assert resource in own_bucket


# ---------------------------------------------------------------------------- API


def test_routes(transformed: dict[str, Any]) -> None:
    body = props(transformed, "HttpApi")["Body"]
    found = {}
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            found[(method.upper(), path)] = re.search(r"\$\{(\w+)\.Arn\}", uri).group(1)  # type: ignore[union-attr]
    assert found == EXPECTED_ROUTES


def test_client_routes_refuse_unsigned_calls_and_callbacks_stay_open(transformed: dict[str, Any]) -> None:
    """IAM on every client route (an unsigned call gets 403 from API Gateway), none on callbacks."""
    body = props(transformed, "HttpApi")["Body"]
    for (method, path), function in EXPECTED_ROUTES.items():
        security = body["paths"][path][method.lower()].get("security", [])
        if function == "CallbackFunction":
            assert {"AWS_IAM": []} not in security
        else:
            assert security == [{"AWS_IAM": []}]


def test_cors_only_for_the_console_origins_named(template: dict[str, Any]) -> None:
    """No origin by default (no CORS at all); named origins get the console's methods and headers."""
    parameter = template["Parameters"]["ConsoleOrigins"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    for allowed in ("", "https://console.example.com", "https://a.example.com:8443,http://localhost:8000"):
        assert pattern.fullmatch(allowed), allowed
    for refused in ("*", "https://*.example.com", "http://console.example.com", "https://example.com/console",
                    "null", "https://a.example.com,"):
        assert not pattern.fullmatch(refused), refused
    assert template["Conditions"]["HasConsoleOrigins"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ConsoleOrigins"}, ""]}]}
    origins = "https://console.example.com,http://localhost:8000"
    deployed = sam_transform(template, {"ConsoleOrigins": origins})
    cors = props(deployed, "HttpApi")["Body"]["x-amazon-apigateway-cors"]
    condition, configured, otherwise = cors["Fn::If"]
    assert condition == "HasConsoleOrigins" and otherwise == {"Ref": "AWS::NoValue"}
    assert configured == {
        "allowOrigins": {"Fn::Split": [",", origins]},
        "allowMethods": ["GET", "POST"],
        "allowHeaders": ["authorization", "content-type", "idempotency-key", "x-amz-date", "x-amz-security-token"],
        "maxAge": 600,
    }
    assert "allowCredentials" not in configured  # tokens travel in a header, never in cookies


def test_api_access_logs(transformed: dict[str, Any]) -> None:
    (stage,) = resources_of(transformed, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(settings["Format"])
    assert {"requestId", "status", "routeKey"} <= set(fields)
    assert "RetentionInDays" in props(transformed, "ApiAccessLogGroup")


def test_every_function_logs_to_its_own_group_with_retention(transformed: dict[str, Any]) -> None:
    groups = set()
    for name, fn in resources_of(transformed, "AWS::Lambda::Function").items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert transformed["Resources"][group]["Type"] == "AWS::Logs::LogGroup", name
        assert props(transformed, group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        groups.add(group)
    assert len(groups) == len(EXPECTED_PERMISSIONS)


# ---------------------------------------------------------------------------- state


def test_jobs_table(template: dict[str, Any]) -> None:
    p = props(template, "JobsTable")
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert p["SSESpecification"]["SSEEnabled"] is True
    indexes = {gsi["IndexName"]: gsi for gsi in p["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"active-index", "owner-index"}
    assert indexes["active-index"]["KeySchema"] == [
        {"AttributeName": "active_shard", "KeyType": "HASH"},
        {"AttributeName": "next_check_at", "KeyType": "RANGE"},
    ]
    # GET /v1/jobs: one owner's jobs by creation time, newest first, without a Scan.
    assert indexes["owner-index"]["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert all(gsi["Projection"] == {"ProjectionType": "ALL"} for gsi in indexes.values())
    types = {a["AttributeName"]: a["AttributeType"] for a in p["AttributeDefinitions"]}
    assert types == {"pk": "S", "active_shard": "S", "next_check_at": "N", "owner": "S", "created_at": "S"}


def test_active_index_name_matches_the_code() -> None:
    source = (ROOT / "layers/reelhook/reelhook/adapters/jobs_table.py").read_text()
    assert re.search(r'^ACTIVE_INDEX = "active-index"$', source, re.M)


def test_video_bucket(template: dict[str, Any]) -> None:
    p = props(template, "VideoBucket")
    assert p["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert p["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (rule,) = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    lifecycle = p["LifecycleConfiguration"]["Rules"]
    assert any(
        r["Status"] == "Enabled"
        and r.get("Prefix", "") == ""
        and r["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
        for r in lifecycle
    )
    assert template["Resources"]["VideoBucket"]["DeletionPolicy"] == "Retain"


def test_video_bucket_keeps_replaced_videos_for_a_while(template: dict[str, Any]) -> None:
    # Retried copies write the same key and a rejected attempt's object is deleted: versions
    # keep a good video from being lost to either, and expire once replaced.
    p = props(template, "VideoBucket")
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    expiring = [r for r in p["LifecycleConfiguration"]["Rules"] if "NoncurrentVersionExpiration" in r]
    assert expiring and all(r["Status"] == "Enabled" and 1 <= r["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 30
                            for r in expiring)
    skipped = {s["id"]: s["comment"] for s in template["Resources"]["VideoBucket"]["Metadata"]["checkov"]["skip"]}
    assert "CKV_AWS_21" not in skipped  # versioning is on, so its check needs no excuse
    assert "CloudTrail" in skipped["CKV_AWS_18"] and "creates no" in skipped["CKV_AWS_18"]


def test_video_bucket_refuses_plain_http(template: dict[str, Any]) -> None:
    p = props(template, "VideoBucketPolicy")
    assert p["Bucket"] == {"Ref": "VideoBucket"}
    (statement,) = p["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {render(r) for r in statement["Resource"]} == {"VideoBucket.Arn", "${VideoBucket.Arn}/*"}


def test_transfer_queue_and_dead_letters(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    queue, dlq = props(template, "TransferQueue"), props(template, "TransferDLQ")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["TransferDLQ", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["VisibilityTimeout"] == 6 * props(template, "TransferFunction")["Timeout"]
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # Moved messages keep their first enqueue time: the DLQ must outlive the queue.
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    (mapping,) = [m for m in resources_of(transformed, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["TransferQueue", "Arn"]}]
    assert mapping["Properties"]["BatchSize"] == 1
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_max_receive_count_matches_the_transfer_handler(template: dict[str, Any]) -> None:
    tree = ast.parse((ROOT / "functions/transfer/app.py").read_text())
    values = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "MAX_RECEIVES" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert values == [props(template, "TransferQueue")["RedrivePolicy"]["maxReceiveCount"]]


def test_dead_letter_alarm(template: dict[str, Any]) -> None:
    p = props(template, "TransferDLQAlarm")
    assert p["Namespace"] == "AWS/SQS"
    assert p["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert p["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["TransferDLQ", "QueueName"]}}]
    assert (p["ComparisonOperator"], p["Threshold"]) == ("GreaterThanThreshold", 0)
    assert p["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def test_poller_runs_every_minute(transformed: dict[str, Any]) -> None:
    (rule,) = [r for r in resources_of(transformed, "AWS::Events::Rule").values()
               if "ScheduleExpression" in r["Properties"]]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["PollerFunction", "Arn"]}


def test_the_code_is_told_the_pollers_period(template: dict[str, Any]) -> None:
    # Each pass queues the checks due before the next one: the period the code is told must be
    # the schedule's, or checks are queued many times over (shorter) or late (longer).
    (event,) = props(template, "PollerFunction")["Events"].values()
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours)\)", event["Properties"]["Schedule"])
    assert rate
    seconds = int(rate[1]) * (60 if rate[2].startswith("minute") else 3600)
    assert template["Globals"]["Function"]["Environment"]["Variables"]["POLLER_PERIOD_SECONDS"] == str(seconds)


# ---------------------------------------------------------------------------- secrets, parameters


def test_no_secret_parameters(template: dict[str, Any]) -> None:
    for name, spec in template["Parameters"].items():
        if re.search(r"(key|secret|token|password)$", name, re.I):
            assert spec.get("Default", "") == "", f"{name} looks secret and has a default"
        # No parameter carries a secret, so none needs NoEcho; one that does is a design change.
        assert "NoEcho" not in spec, name


def test_app_secret_shape(template: dict[str, Any]) -> None:
    generate = props(template, "AppSecret")["GenerateSecretString"]
    assert json.loads(generate["SecretStringTemplate"]) == {
        "freepik_api_key": "",
        "freepik_webhook_secret": "",
        "uniall_api_key": "",
        "aihubmax_api_key": "",
    }
    assert generate["GenerateStringKey"] == "callback_token_key"
    assert generate["PasswordLength"] == 48 and generate["ExcludePunctuation"] is True


def test_outputs(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) == {
        "ApiUrl",
        "DashboardName",
        "VideoBucketName",
        "JobsTableName",
        "TransferQueueUrl",
        "TransferDLQUrl",
        "SubmitQueueUrl",
        "SubmitDLQUrl",
        "PollDLQUrl",
        "SecretArn",
        "EventBusName",
        "NotifySigningSecretArn",
        "NotifyDLQUrl",
        "InboxDLQUrl",
        "NotifierFailureQueueUrl",
    }


def test_samconfig_overrides_declared_parameters(template: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env in config.values():
        if not isinstance(env, dict):
            continue
        overrides = env.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
        for pair in overrides.split():
            assert pair.split("=", 1)[0] in template["Parameters"], pair


def test_layer_requirements() -> None:
    lines = (ROOT / "layers/reelhook/requirements.txt").read_text().splitlines()
    names = {re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower() for line in lines if line and line[0] != "#"}
    assert names == {"certifi", "pydantic", "aws-lambda-powertools"}


def test_no_deployed_module_imports_httpx() -> None:
    # The layer no longer ships it: an import would fail on Lambda, not in the tests.
    import ast

    sources = [*(ROOT / "layers/reelhook/reelhook").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    importers = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "httpx" for name in names):
                importers.append(str(path.relative_to(ROOT)))
    assert sources and not importers, importers


# ---------------------------------------------------------------------------- environment


def test_governance_only_reads_are_limited_to_the_governance_items(transformed: dict[str, Any]) -> None:
    found = {}
    for _owner, statement in policy_statements(transformed):
        if statement.get("Sid") in {"ProviderHealth", "ProviderCircuits"}:
            found[statement["Sid"]] = statement["Condition"]
    governance_only = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["gov#*"]}}
    assert found == {"ProviderHealth": governance_only, "ProviderCircuits": governance_only}


def test_globals_environment(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert set(variables) == EXPECTED_ENV


def test_the_code_reads_every_variable_the_template_sets(template: dict[str, Any]) -> None:
    from reelhook.providers import get_provider, provider_names

    source = "\n".join(p.read_text() for p in (ROOT / "layers/reelhook/reelhook").rglob("*.py"))
    # Provider settings are read as {NAME}_BASE_URL, {NAME}_API_KEY_HEADER and {NAME}_<EXTRA>.
    provider_vars = set()
    for name in provider_names():
        prefix = name.upper()
        provider_vars |= {f"{prefix}_BASE_URL", f"{prefix}_API_KEY_HEADER", f"{prefix}_DOWNLOAD_HOSTS",
                          f"{prefix}_REQUESTS_PER_SECOND", f"{prefix}_BURST", f"{prefix}_MAX_IN_FLIGHT"}
        provider_vars |= {f"{prefix}_{extra.upper()}" for extra in get_provider(name).defaults.extras}
    for name in template["Globals"]["Function"]["Environment"]["Variables"]:
        if name.startswith("POWERTOOLS_") or name == "LOG_LEVEL":
            continue  # read by Powertools
        assert f'"{name}"' in source or name in provider_vars, f"{name} is set by the template but read nowhere"


def test_poller_gets_the_api_url_unless_a_callback_url_is_given(transformed: dict[str, Any]) -> None:
    env = props(transformed, "PollerFunction")["Environment"]["Variables"]
    assert env["CALLBACK_BASE_URL"] == {
        "Fn::If": [
            "HasCallbackBaseUrl",
            {"Ref": "CallbackBaseUrl"},
            {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"},
        ]
    }
    # The functions behind the API cannot reference it: theirs is the parameter.
    for name in ("ApiFunction", "CallbackFunction"):
        assert props(transformed, name)["Environment"]["Variables"]["CALLBACK_BASE_URL"] == {"Ref": "CallbackBaseUrl"}


# ---------------------------------------------------------------------------- builder (moto)


@pytest.fixture
def moto_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def test_builder_creates_the_template_resources(moto_session: boto3.session.Session) -> None:
    built = create_stack_resources(moto_session, prefix="t1", secret_values={"freepik_api_key": "fp-key"})
    assert built.table_name == "t1-jobs" and built.bucket_name == "t1-videos"

    ddb = moto_session.client("dynamodb")
    table = ddb.describe_table(TableName=built.table_name)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {gsi["IndexName"]: gsi for gsi in table["GlobalSecondaryIndexes"]}
    assert [k["AttributeName"] for k in indexes["active-index"]["KeySchema"]] == ["active_shard", "next_check_at"]
    assert [k["AttributeName"] for k in indexes["owner-index"]["KeySchema"]] == ["owner", "created_at"]
    assert all(gsi["Projection"]["ProjectionType"] == "ALL" for gsi in indexes.values())
    ttl = ddb.describe_time_to_live(TableName=built.table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    sqs = moto_session.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=built.queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=built.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) == 5
    assert attrs["VisibilityTimeout"] == "5400"
    dlq_attrs = sqs.get_queue_attributes(QueueUrl=built.dlq_url, AttributeNames=["All"])["Attributes"]
    assert dlq_attrs["MessageRetentionPeriod"] == "1209600"

    s3 = moto_session.client("s3")
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=built.bucket_name)["Rules"]}
    rule = rules["abort-incomplete-multipart-uploads"]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rule["Status"] == "Enabled"
    assert rules["expire-replaced-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    block = s3.get_public_access_block(Bucket=built.bucket_name)["PublicAccessBlockConfiguration"]
    assert all(block.values())

    secret = json.loads(
        moto_session.client("secretsmanager").get_secret_value(SecretId=built.secret_id)["SecretString"]
    )
    assert secret["freepik_api_key"] == "fp-key"
    assert secret["uniall_api_key"] == ""
    assert re.fullmatch(r"[A-Za-z0-9]{48}", secret["callback_token_key"])


def test_redrive_moves_a_failing_message_to_the_dlq(moto_session: boto3.session.Session) -> None:
    built = create_stack_resources(moto_session, prefix="t2", secret_values={}, visibility_timeout=0)
    sqs = moto_session.client("sqs")
    sqs.send_message(QueueUrl=built.queue_url, MessageBody='{"job_id": "j1"}')
    for _ in range(5):
        assert sqs.receive_message(QueueUrl=built.queue_url, MaxNumberOfMessages=1).get("Messages")
    assert not sqs.receive_message(QueueUrl=built.queue_url).get("Messages")
    (moved,) = sqs.receive_message(QueueUrl=built.dlq_url)["Messages"]
    assert moved["Body"] == '{"job_id": "j1"}'


def test_builder_is_idempotent_and_keeps_the_generated_key(moto_session: boto3.session.Session) -> None:
    first = create_stack_resources(moto_session, prefix="t3", secret_values={}, visibility_timeout=30)
    sm = moto_session.client("secretsmanager")
    key = json.loads(sm.get_secret_value(SecretId=first.secret_id)["SecretString"])["callback_token_key"]
    again = create_stack_resources(
        moto_session, prefix="t3", secret_values={"uniall_api_key": "u"}, visibility_timeout=7
    )
    assert again == first
    secret = json.loads(sm.get_secret_value(SecretId=first.secret_id)["SecretString"])
    assert secret["callback_token_key"] == key and secret["uniall_api_key"] == "u"
    attrs = moto_session.client("sqs").get_queue_attributes(
        QueueUrl=first.queue_url, AttributeNames=["VisibilityTimeout"]
    )
    assert attrs["Attributes"]["VisibilityTimeout"] == "7"


def test_builder_accepts_a_client_factory(moto_session: boto3.session.Session) -> None:
    made: list[str] = []

    def make_client(service: str) -> Any:
        made.append(service)
        return moto_session.client(service)

    create_stack_resources(make_client, prefix="t4", secret_values={})
    assert set(made) == {"dynamodb", "s3", "sqs", "secretsmanager", "events"}


def test_builder_refuses_secret_keys_the_template_lacks(moto_session: boto3.session.Session) -> None:
    with pytest.raises(ValueError, match="freepik_apikey"):
        create_stack_resources(moto_session, prefix="t5", secret_values={"freepik_apikey": "typo"})


def test_template_env() -> None:
    built = StackResources("tbl", "bkt", "https://q/transfer", "https://q/dlq", "arn:secret")
    env = template_env(built)
    assert set(env) == EXPECTED_ENV
    assert env["JOBS_TABLE"] == "tbl"
    assert env["VIDEO_BUCKET"] == "bkt"
    assert env["TRANSFER_QUEUE_URL"] == "https://q/transfer"
    assert env["SECRET_ID"] == "arn:secret"
    assert env["CALLBACK_BASE_URL"] == ""
    assert env["FREEPIK_BASE_URL"] == "https://api.freepik.com"
    assert env["FREEPIK_API_KEY_HEADER"] == "x-freepik-api-key"
    assert env["FREEPIK_KLING_ENDPOINT"] == "video-reference"
    assert env["FREEPIK_WEBHOOK_SECRET_ENCODING"] == "raw"
    assert env["UNIALL_BASE_URL"] == "https://api.uniall.ai"
    assert env["AIHUBMAX_BASE_URL"] == "https://api.aihubmax.com"
    assert env["AIHUBMAX_CALLBACKS"] == "false"
    assert env["AIHUBMAX_FIELD_NAMES"] == ""
    assert env["AIHUBMAX_CREATE_PATH"] == "/v1/videos/generations"
    assert env["AIHUBMAX_STATUS_PATH"] == "/v1/tasks/{task_id}"
    assert env["RECONCILE_AFTER_SECONDS"] == "900"
    assert env["OUTPUT_PREFIX"] == "videos/"

    overridden = template_env(built, parameters={"FreepikKlingEndpoint": "reference-to-video"})
    assert overridden["FREEPIK_KLING_ENDPOINT"] == "reference-to-video"
    with pytest.raises(ValueError, match="NoSuchParameter"):
        template_env(built, parameters={"NoSuchParameter": "x"})


def test_template_env_for_the_poller() -> None:
    built = StackResources("tbl", "bkt", "https://q/transfer", "https://q/dlq", "arn:secret")
    env = template_env(built, function="PollerFunction", parameters={"CallbackBaseUrl": "https://hooks.example"})
    assert env["CALLBACK_BASE_URL"] == "https://hooks.example"
    # Without the parameter the poller would use the HttpApi URL, which only a deployment knows.
    with pytest.raises(UnresolvedError, match="CALLBACK_BASE_URL"):
        template_env(built, function="PollerFunction")


# ---------------------------------------------------------------------------- S3 inbox, notifications


def _stream_record(status: str, old_status: str | None, *, pk: str = "job#job_1", origin: bool = False,
                   event_name: str = "MODIFY") -> dict[str, Any]:
    new: dict[str, Any] = {"pk": {"S": pk}, "status": {"S": status}}
    if origin:
        new["origin"] = {"M": {"kind": {"S": "s3_inbox"}, "bucket": {"S": "b"}, "key": {"S": "inbox/a.json"}}}
    data: dict[str, Any] = {"Keys": {"pk": {"S": pk}}, "NewImage": new, "SequenceNumber": "1"}
    if old_status is not None:
        data["OldImage"] = {"pk": {"S": pk}, "status": {"S": old_status}}
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": data}


def test_notifier_follows_the_jobs_stream(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    from reelhook.services.outbox_paths import ORIGIN_KIND
    from reelhook_local.front import event_matches

    assert props(template, "JobsTable")["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    (mapping,) = [m["Properties"] for m in resources_of(transformed, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["FunctionName"] == {"Ref": "NotifierFunction"}]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["JobsTable", "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < mapping["MaximumRetryAttempts"] <= 10
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["NotifierFailureQueue", "Arn"]}}}
    filters = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]

    def passes(record: dict[str, Any]) -> bool:
        return any(event_matches(f, record) for f in filters)

    # Terminal transitions, and every change of a job from the inbox (its outbox document).
    assert passes(_stream_record("succeeded", "storing"))
    assert passes(_stream_record("failed", "queued"))
    # Every terminal status, a cancel included, from every status that is not one.
    from reelhook.states import TERMINAL, Status

    for end in TERMINAL:
        assert all(passes(_stream_record(end.value, start.value)) for start in set(Status) - TERMINAL), end
        assert not passes(_stream_record(end.value, end.value)), end  # bookkeeping on a finished job
    assert passes(_stream_record("queued", None, origin=True, event_name="INSERT"))
    assert passes(_stream_record("running", "submitted", origin=True))
    # Not: other changes of API jobs, bookkeeping on finished jobs, other items, TTL removals.
    assert not passes(_stream_record("running", "submitted"))
    assert not passes(_stream_record("queued", None, event_name="INSERT"))
    assert not passes(_stream_record("succeeded", "succeeded"))
    assert not passes(_stream_record("succeeded", "storing", pk="idem#abc"))
    assert not passes(_stream_record("failed", "running", event_name="REMOVE"))
    assert ORIGIN_KIND in mapping["FilterCriteria"]["Filters"][1]["Pattern"]


def test_notify_queue_and_dead_letters(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    queue, dlq = props(template, "NotifyQueue"), props(template, "NotifyDLQ")
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["NotifyDLQ", "Arn"]}, "maxReceiveCount": 5}
    assert queue["VisibilityTimeout"] == 6 * props(template, "NotifyFunction")["Timeout"]
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    for name in ("NotifyQueue", "NotifyDLQ", "NotifierFailureQueue", "InboxDLQ"):
        assert props(template, name)["SqsManagedSseEnabled"] is True, name
    (mapping,) = [m["Properties"] for m in resources_of(transformed, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["NotifyQueue", "Arn"]}]
    assert mapping["FunctionName"] == {"Ref": "NotifyFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Every attempt may wait for a slow receiver; a batch must fit the function's timeout.
    from reelhook.adapters.notify_http import TIMEOUT

    # Connect, send the body (under the connect timeout), read the answer.
    per_attempt = 2 * TIMEOUT.connect_timeout + TIMEOUT.read_timeout
    assert mapping["BatchSize"] * per_attempt < props(template, "NotifyFunction")["Timeout"]


def test_inbox_is_fed_by_s3_through_eventbridge(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    from reelhook.services.outbox_paths import INBOX_PREFIX

    bucket = props(template, "VideoBucket")
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    (rule,) = [r["Properties"] for r in resources_of(transformed, "AWS::Events::Rule").values()
               if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["InboxFunction", "Arn"]}]
    assert "EventBusName" not in rule  # S3 events arrive on the default bus
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [{"Ref": "VideoBucket"}]}, "object": {"key": [{"prefix": INBOX_PREFIX}]}},
    }
    fn = props(transformed, "InboxFunction")
    assert fn["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": ["InboxDLQ", "Arn"]}}
    # Not behind the API, so it may name it: webhook URLs of inbox jobs point at the API.
    assert fn["Environment"]["Variables"]["CALLBACK_BASE_URL"] == props(
        transformed, "PollerFunction")["Environment"]["Variables"]["CALLBACK_BASE_URL"]
    # No S3 -> Lambda permission (that notification style would tie the bucket to the function).
    for permission in resources_of(transformed, "AWS::Lambda::Permission").values():
        assert permission["Properties"]["Principal"] != "s3.amazonaws.com"


def test_event_bus_and_notify_signing_secret(template: dict[str, Any]) -> None:
    from reelhook.adapters.event_bus import SOURCE
    from reelhook.adapters.notify_secret import MIN_KEY_BYTES
    from reelhook.services.notifier import DETAIL_TYPES

    assert props(template, "EventBus")["Name"] == {"Fn::Sub": "${AWS::StackName}-jobs"}
    assert SOURCE == "reelhook" and set(DETAIL_TYPES.values()) == {
        "Video Job Succeeded", "Video Job Failed", "Video Job Cancelled"}
    generate = props(template, "NotifySigningSecret")["GenerateSecretString"]
    assert json.loads(generate["SecretStringTemplate"]) == {}
    assert generate["GenerateStringKey"] == "signing_key"
    source = (ROOT / "layers/reelhook/reelhook/adapters/notify_secret.py").read_text()
    assert '"signing_key"' in source
    # Standard Webhooks wants 24-64 random bytes; 48 alphanumerics carry about 285 bits.
    assert MIN_KEY_BYTES <= generate["PasswordLength"] <= 64 and generate["ExcludePunctuation"] is True


def test_integration_functions_have_their_own_variables_and_the_code_reads_them(template: dict[str, Any]) -> None:
    own = {name: set(props(template, name).get("Environment", {}).get("Variables", {}))
           for name in ("InboxFunction", "NotifierFunction", "NotifyFunction")}
    assert own == {
        "InboxFunction": {"CALLBACK_BASE_URL"},
        "NotifierFunction": {"EVENT_BUS_NAME", "NOTIFY_QUEUE_URL"},
        "NotifyFunction": {"NOTIFY_QUEUE_URL", "NOTIFY_SECRET_ID"},
    }
    source = "\n".join(p.read_text() for p in (ROOT / "layers/reelhook/reelhook").rglob("*.py"))
    for name in set().union(*own.values()):
        assert f'"{name}"' in source, f"{name} is set by the template but read nowhere"


def test_every_function_has_an_errors_alarm_and_every_dead_letter_queue_an_alarm(template: dict[str, Any]) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm").values()
    alarmed_functions = {d["Value"]["Ref"] for a in alarms if a["Properties"].get("MetricName") == "Errors"
                         for d in a["Properties"]["Dimensions"]}
    assert alarmed_functions == set(EXPECTED_PERMISSIONS)
    watched = set()
    for alarm in alarms:
        for metric in [*alarm["Properties"].get("Metrics", []), alarm["Properties"]]:
            stat = metric.get("MetricStat", {}).get("Metric", metric)
            if stat.get("MetricName") == "ApproximateNumberOfMessagesVisible":
                watched |= {d["Value"]["Fn::GetAtt"][0] for d in stat["Dimensions"]}
    assert watched == {"TransferDLQ", "NotifyDLQ", "NotifierFailureQueue", "InboxDLQ", "SubmitDLQ", "PollDLQ"}


def assert_alarms_on_any(template: dict[str, Any], alarm_id: str, metric: str) -> None:
    """``alarm_id`` fires, and notifies, on a single count of the service's ``metric``."""
    alarm = props(template, alarm_id)
    assert alarm["Namespace"] == "reelhook" and alarm["MetricName"] == metric
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "reelhook"}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    assert "AlarmActions" in alarm


def test_deadline_failures_raise_an_alarm(template: dict[str, Any]) -> None:
    from reelhook.services.polling import OUTCOME_METRICS

    assert_alarms_on_any(template, "JobsPastDeadlineAlarm", "JobsPastDeadline")
    # The metric is the one the poll worker publishes for both deadline failures.
    assert OUTCOME_METRICS["failed_deadline_exceeded"] == OUTCOME_METRICS["failed_task_missing"] == "JobsPastDeadline"


def test_a_missing_freepik_webhook_secret_raises_an_alarm(template: dict[str, Any]) -> None:
    assert_alarms_on_any(template, "WebhookSecretMissingAlarm", "WebhookSecretMissing")
    # The metric is the one the callback publishes.
    assert 'name="WebhookSecretMissing"' in (ROOT / "functions/callback/app.py").read_text()


def test_deadlines_are_parameters_the_functions_receive(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for variable, parameter, default in (("QUEUED_MAX_AGE_SECONDS", "QueuedMaxAgeSeconds", 86400),
                                         ("RUNNING_MAX_AGE_SECONDS", "RunningMaxAgeSeconds", 21600),
                                         ("TASK_MISSING_POLLS", "TaskMissingPolls", 5),
                                         ("EVENT_REPUBLISH_AFTER_SECONDS", "EventRepublishAfterSeconds", 300)):
        assert variables[variable] == {"Ref": parameter}
        assert template["Parameters"][parameter]["Default"] == default
    worker = props(template, "PollWorkerFunction")["Environment"]["Variables"]
    assert worker == {"EVENT_BUS_NAME": {"Ref": "EventBus"}, "NOTIFY_QUEUE_URL": {"Ref": "NotifyQueue"}}


def test_builder_creates_the_integration_resources(moto_session: boto3.session.Session) -> None:
    built = create_stack_resources(moto_session, prefix="t6", secret_values={}, visibility_timeout=9)
    table = moto_session.client("dynamodb").describe_table(TableName=built.table_name)["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    sqs = moto_session.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=built.notify_queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=built.notify_dlq_url, AttributeNames=["QueueArn"])["Attributes"]
    assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": 5}
    assert attrs["VisibilityTimeout"] == "9"
    for url in (built.notifier_failure_queue_url, built.inbox_dlq_url):
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])[
            "Attributes"]["MessageRetentionPeriod"] == "1209600"
    assert moto_session.client("events").describe_event_bus(Name=built.event_bus_name)["Name"] == "t6-jobs"
    sm = moto_session.client("secretsmanager")
    key = json.loads(sm.get_secret_value(SecretId=built.notify_secret_id)["SecretString"])["signing_key"]
    assert re.fullmatch(r"[A-Za-z0-9]{48}", key)
    # A rerun keeps the key receivers were given.
    again = create_stack_resources(moto_session, prefix="t6", secret_values={}, visibility_timeout=9)
    assert again == built
    assert json.loads(sm.get_secret_value(SecretId=built.notify_secret_id)["SecretString"])["signing_key"] == key


def test_template_env_for_the_integration_functions() -> None:
    built = StackResources("tbl", "bkt", "https://q/transfer", "https://q/dlq", "arn:secret",
                           event_bus_name="bus", notify_queue_url="https://q/notify",
                           notify_secret_id="arn:notify-secret")
    env = template_env(built, function="NotifierFunction")
    assert (env["EVENT_BUS_NAME"], env["NOTIFY_QUEUE_URL"]) == ("bus", "https://q/notify")
    assert template_env(built, function="NotifyFunction")["NOTIFY_SECRET_ID"] == "arn:notify-secret"
    inbox = template_env(built, function="InboxFunction", parameters={"CallbackBaseUrl": "https://hooks.example"})
    assert inbox["CALLBACK_BASE_URL"] == "https://hooks.example"
    bare = StackResources("tbl", "bkt", "https://q/transfer", "https://q/dlq", "arn:secret")
    with pytest.raises(UnresolvedError, match="EVENT_BUS_NAME"):
        template_env(bare, function="NotifierFunction")


def test_dashboard_shows_the_metrics_the_code_publishes(template: dict[str, Any]) -> None:
    from reelhook.services.polling import OUTCOME_METRICS

    body = props(template, "Dashboard")["DashboardBody"]["Fn::Sub"][0]
    published = set(OUTCOME_METRICS.values()) | {"WebhooksApplied", "WebhooksIgnored", "WebhooksRejected",
                                                   "VideosStored", "TransferAttemptsFailed", "TransfersNotStored", "JobsChecked"}
    published |= {"SubmitMessagesReceived", "SubmitAttemptsFailed"}
    shown = set(re.findall(r'"(Jobs\w+|Webhooks\w+|Videos\w+|Transfer\w+|Submit\w+|InFlight\w+|Checks\w+|'
                           r'ProviderUnavailable)"', body))
    assert shown and shown <= published  # every metric on the dashboard is one the code emits


def test_dashboard_shows_every_functions_errors_and_every_dead_letter_queue(template: dict[str, Any]) -> None:
    body, names = props(template, "Dashboard")["DashboardBody"]["Fn::Sub"]
    functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == set(re.findall(r'"\$\{(\w+Function)\}"', body))
    dead_letter = {name for name, r in template["Resources"].items()
                   if r["Type"] == "AWS::SQS::Queue" and ("DLQ" in name or "Failure" in name)}
    assert dead_letter == {value["Fn::GetAtt"][0] for key, value in names.items() if key.removesuffix("Name") in
                           dead_letter}
    assert {"SubmitQueue", "PollQueue"} <= {value["Fn::GetAtt"][0] for value in names.values()}


def test_the_poller_writes_only_in_flight_items(transformed: dict[str, Any]) -> None:
    role = props(transformed, "PollerFunctionRole")
    statements = [st for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]]
    writes = [st for st in statements if "dynamodb:UpdateItem" in str(st["Action"])]
    only_in_flight = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["gov#*#in-flight"]}}
    assert writes and all(st.get("Condition") == only_in_flight for st in writes)


def test_the_webhook_route_has_a_throttle_of_its_own(transformed: dict[str, Any]) -> None:
    [stage] = [r["Properties"] for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    route = "POST /v1/callbacks/{provider}/{job_id}"
    assert stage["RouteSettings"][route] == {"ThrottlingBurstLimit": {"Ref": "CallbackBurstLimit"},
                                             "ThrottlingRateLimit": {"Ref": "CallbackRateLimit"}}
    body = json.dumps(transformed["Resources"]["HttpApi"]["Properties"]["Body"]["paths"])
    assert "/v1/callbacks/{provider}/{job_id}" in body
