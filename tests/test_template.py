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
        ("s3:GetObject", "${VideoBucket.Arn}/inputs/*"),
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::${Buckets}/*"),
    },
    "CallbackFunction": {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("sqs:SendMessage", QUEUE),
        ("secretsmanager:GetSecretValue", SECRET),
    },
    "TransferFunction": {
        ("sqs:ReceiveMessage", QUEUE),
        ("sqs:DeleteMessage", QUEUE),
        ("sqs:GetQueueAttributes", QUEUE),
        ("s3:PutObject", VIDEOS),
        ("s3:AbortMultipartUpload", VIDEOS),
        ("s3:ListMultipartUploadParts", VIDEOS),
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
    },
    "PollerFunction": {
        ("dynamodb:Query", ACTIVE_INDEX),
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("sqs:SendMessage", QUEUE),
        ("secretsmanager:GetSecretValue", SECRET),
    },
}

EXPECTED_ROUTES = {
    ("POST", "/v1/jobs"): "ApiFunction",
    ("GET", "/v1/jobs/{id}"): "ApiFunction",
    ("GET", "/v1/models"): "ApiFunction",
    ("GET", "/v1/openapi.json"): "ApiFunction",
    ("POST", "/v1/callbacks/{provider}/{job_id}"): "CallbackFunction",
}

EXPECTED_ENV = {
    "JOBS_TABLE",
    "VIDEO_BUCKET",
    "OUTPUT_PREFIX",
    "TRANSFER_QUEUE_URL",
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
    "RECONCILE_AFTER_SECONDS",
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
    assert fns["PollerFunction"]["Timeout"] == 300
    # API Gateway gives an integration 30 s at most.
    assert fns["ApiFunction"]["Timeout"] < 30
    layer = template["Resources"]["ReelhookLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert layer["Properties"]["ContentUri"] == "layers/reelhook/"


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
            # The only wildcards allowed are object keys under a granted prefix or bucket.
            for granted in ("/videos/*", "/inputs/*", "${Buckets}/*"):
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

    prefix = template["Globals"]["Function"]["Environment"]["Variables"]["OUTPUT_PREFIX"]
    own_bucket = {f"${{VideoBucket.Arn}}/{prefix}*", f"${{VideoBucket.Arn}}/{INPUT_PREFIX}*"}
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
    (gsi,) = p["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "active-index"
    assert gsi["KeySchema"] == [
        {"AttributeName": "active_shard", "KeyType": "HASH"},
        {"AttributeName": "next_check_at", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    types = {a["AttributeName"]: a["AttributeType"] for a in p["AttributeDefinitions"]}
    assert types == {"pk": "S", "active_shard": "S", "next_check_at": "N"}


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
    (mapping,) = resources_of(transformed, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["TransferQueue", "Arn"]}
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
    (rule,) = resources_of(transformed, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["PollerFunction", "Arn"]}


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
        "VideoBucketName",
        "JobsTableName",
        "TransferQueueUrl",
        "TransferDLQUrl",
        "SecretArn",
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
    assert names == {"httpx", "pydantic", "aws-lambda-powertools"}


# ---------------------------------------------------------------------------- environment


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
        provider_vars |= {f"{prefix}_BASE_URL", f"{prefix}_API_KEY_HEADER", f"{prefix}_DOWNLOAD_HOSTS"}
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
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "active-index"
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["active_shard", "next_check_at"]
    assert gsi["Projection"]["ProjectionType"] == "ALL"
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
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=built.bucket_name)["Rules"]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rule["Status"] == "Enabled"
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
    assert set(made) == {"dynamodb", "s3", "sqs", "secretsmanager"}


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
