"""Create reelhook's stateful AWS resources from ``template.yaml``'s own Properties.

Tests and the local stack build the jobs table (with its stream), the video bucket, the
transfer and notify queues with their dead-letter queues, the job event bus, and the two
secrets from the template itself, so the local schema cannot drift from the deployed one.
The same goes for the Lambda environment: :func:`template_env` reads it from the template's
``Globals``.

Clients come from either a ``boto3.session.Session`` (``session.client(name)`` is used, so
``AWS_ENDPOINT_URL`` or moto's in-process ``mock_aws`` decide where calls go) or any
callable ``make_client(service_name) -> client``, e.g. for a moto server::

    create_stack_resources(
        lambda name: session.client(name, endpoint_url="http://127.0.0.1:5000"),
        secret_values={"freepik_api_key": "sandbox"},
        visibility_timeout=30,
    )

Creation is idempotent: against a server that already has the resources, they are
updated in place (queue attributes, secret value) or left alone (table, bucket).

Properties this module does not know how to map raise ``NotImplementedError`` rather
than being dropped, so a template change that local runs cannot mirror is noticed.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from boto3.session import Session

__all__ = [
    "TEMPLATE_PATH",
    "ClientFactory",
    "StackResources",
    "create_stack_resources",
    "load_template",
    "resolve_value",
    "template_env",
]

# local/reelhook_local/aws_resources.py -> repository root.
TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

TABLE = "JobsTable"
BUCKET = "VideoBucket"
QUEUE = "TransferQueue"
DLQ = "TransferDLQ"
SECRET = "AppSecret"
EVENT_BUS = "EventBus"
NOTIFY_QUEUE = "NotifyQueue"
NOTIFY_DLQ = "NotifyDLQ"
NOTIFIER_FAILURES = "NotifierFailureQueue"
INBOX_DLQ = "InboxDLQ"
NOTIFY_SECRET = "NotifySigningSecret"
SUBMIT_QUEUE = "SubmitQueue"
SUBMIT_DLQ = "SubmitDLQ"
POLL_QUEUE = "PollQueue"
POLL_DLQ = "PollDLQ"

ClientFactory = Callable[[str], Any]


# ---------------------------------------------------------------------------- template


class _CfnLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's short-form tags (``!Ref``, ``!Sub``...).

    cfn-lint ships an equivalent loader, but importing cfn-lint takes about 3 s; this one
    costs nothing, and tests/test_template.py checks that both read the template alike.
    """


def _construct_cfn_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    return {name: value}


def _construct_timestamp_as_string(loader: _CfnLoader, node: yaml.Node) -> str:
    # CloudFormation keeps `AWSTemplateFormatVersion: 2010-09-09` a string, not a date.
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _construct_cfn_tag)
_CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_string)


def load_template(path: Path | None = None) -> dict[str, Any]:
    """The template as plain dicts and lists, short-form tags expanded (``{"Ref": ...}``)."""
    path = path or TEMPLATE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass template_path= (the SAM template.yaml)")
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - safe loader subclass
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return loaded


def _properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    try:
        return dict(template["Resources"][logical_id].get("Properties", {}))
    except KeyError:
        raise KeyError(f"template has no resource {logical_id!r}") from None


# ---------------------------------------------------------------------------- intrinsics


class UnresolvedError(ValueError):
    """An intrinsic function refers to something only a real deployment knows."""


_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _resolve(value: Any, refs: Mapping[str, str], conditions: Mapping[str, Any]) -> Any:
    """Evaluate the few intrinsic functions reelhook's template uses, against known values.

    ``refs`` maps ``Ref`` targets (``"JobsTable"``, ``"AWS::Region"``, parameter names) and
    ``GetAtt`` targets (``"TransferDLQ.Arn"``) to values.
    """
    if isinstance(value, list):
        return [_resolve(item, refs, conditions) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {key: _resolve(item, refs, conditions) for key, item in value.items()}
    ((fn, arg),) = value.items()
    if fn == "Ref":
        return _lookup(arg, refs)
    if fn == "Fn::GetAtt":
        target = ".".join(arg) if isinstance(arg, list) else str(arg)
        return _lookup(target, refs)
    if fn == "Fn::Sub":
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], _resolve(arg[1], refs, conditions))
        scope = {**refs, **{k: _scalar(v) for k, v in local.items()}}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            return "${" + name[1:] + "}" if name.startswith("!") else _lookup(name, scope)

        return _SUB_VARIABLE.sub(substitute, text)
    if fn == "Fn::Join":
        separator, items = arg
        return separator.join(_scalar(item) for item in _resolve(items, refs, conditions))
    if fn == "Fn::If":
        condition, when_true, when_false = arg
        return _resolve(when_true if _condition(condition, refs, conditions) else when_false, refs, conditions)
    if fn in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"):
        return _evaluate(value, refs, conditions)
    return {fn: _resolve(arg, refs, conditions)}


def _lookup(name: str, refs: Mapping[str, str]) -> str:
    try:
        return refs[name]
    except KeyError:
        raise UnresolvedError(f"cannot resolve {name!r} outside a deployment") from None


def _evaluate(expression: Any, refs: Mapping[str, str], conditions: Mapping[str, Any]) -> bool:
    ((fn, arg),) = expression.items()
    if fn == "Condition":
        return _condition(arg, refs, conditions)
    if fn == "Fn::Equals":
        left, right = (_scalar(_resolve(item, refs, conditions)) for item in arg)
        return left == right
    if fn == "Fn::Not":
        return not _evaluate(arg[0], refs, conditions)
    if fn == "Fn::And":
        return all(_evaluate(item, refs, conditions) for item in arg)
    if fn == "Fn::Or":
        return any(_evaluate(item, refs, conditions) for item in arg)
    raise NotImplementedError(f"condition function {fn}")


def _condition(name: str, refs: Mapping[str, str], conditions: Mapping[str, Any]) -> bool:
    if name not in conditions:
        raise KeyError(f"template has no condition {name!r}")
    return _evaluate(conditions[name], refs, conditions)


def _scalar(value: Any) -> str:
    """A value as CloudFormation passes it to a service: booleans lower-case, numbers as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise UnresolvedError(f"expected a scalar, got {value!r}")


def _parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str] | None) -> dict[str, str]:
    declared = template.get("Parameters", {})
    unknown = set(overrides or {}) - set(declared)
    if unknown:
        raise ValueError(f"unknown template parameters: {sorted(unknown)}")
    values = {name: _scalar(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    values.update({name: _scalar(value) for name, value in (overrides or {}).items()})
    return values


# ---------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class StackResources:
    """Physical names of the created resources (what ``!Ref`` would give in a deployment)."""

    table_name: str
    bucket_name: str
    queue_url: str
    dlq_url: str
    secret_id: str  # the secret's ARN, as `!Ref AppSecret` gives
    # Notifications and the S3 inbox (defaults keep hand-made instances short).
    event_bus_name: str = ""
    notify_queue_url: str = ""
    notify_dlq_url: str = ""
    notifier_failure_queue_url: str = ""
    inbox_dlq_url: str = ""
    notify_secret_id: str = ""  # NotifySigningSecret's ARN
    submit_queue_url: str = ""
    submit_dlq_url: str = ""
    poll_queue_url: str = ""
    poll_dlq_url: str = ""


def create_stack_resources(
    clients: Session | ClientFactory,
    *,
    prefix: str = "reelhook",
    secret_values: Mapping[str, str],
    visibility_timeout: int | None = None,
    template_path: Path | None = None,
) -> StackResources:
    """Create (or bring up to date) the table, bucket, queues, event bus and secrets from the template.

    ``clients``: a ``boto3.session.Session`` or a ``make_client(service_name)`` callable.
    ``prefix``: names are ``{prefix}-jobs``, ``{prefix}-videos`` (must be a valid bucket name
    prefix), ``{prefix}-transfer``, ``{prefix}-transfer-dlq``, ``{prefix}-notify``,
    ``{prefix}-notify-dlq``, ``{prefix}-notifier-failures``, ``{prefix}-inbox-dlq``, the bus
    ``{prefix}-jobs``, and the secrets ``{prefix}/app`` and ``{prefix}/notify-signing``.
    ``secret_values``: values for keys of the template's ``SecretStringTemplate`` (others are
    refused); keys left out stay empty, and ``callback_token_key`` is generated the way
    CloudFormation would unless given.
    ``visibility_timeout``: replaces the VisibilityTimeout of the queues functions consume,
    TransferQueue and NotifyQueue (5400 s and 540 s deployed, far too long to watch a retry
    locally).
    """
    make_client = _client_factory(clients)
    template = load_template(template_path)
    table_name = _create_table(make_client("dynamodb"), f"{prefix}-jobs", _properties(template, TABLE))
    bucket_name = _create_bucket(make_client("s3"), f"{prefix}-videos", _properties(template, BUCKET))
    sqs = make_client("sqs")
    dlq_url, dlq_arn = _create_queue(sqs, f"{prefix}-transfer-dlq", _properties(template, DLQ), {}, None)
    queue_url, _ = _create_queue(
        sqs,
        f"{prefix}-transfer",
        _properties(template, QUEUE),
        {f"{DLQ}.Arn": dlq_arn, DLQ: dlq_url},
        visibility_timeout,
    )
    notify_dlq_url, notify_dlq_arn = _create_queue(sqs, f"{prefix}-notify-dlq", _properties(template, NOTIFY_DLQ),
                                                   {}, None)
    notify_queue_url, _ = _create_queue(
        sqs,
        f"{prefix}-notify",
        _properties(template, NOTIFY_QUEUE),
        {f"{NOTIFY_DLQ}.Arn": notify_dlq_arn, NOTIFY_DLQ: notify_dlq_url},
        visibility_timeout,
    )
    failures_url, _ = _create_queue(sqs, f"{prefix}-notifier-failures", _properties(template, NOTIFIER_FAILURES),
                                    {}, None)
    inbox_dlq_url, _ = _create_queue(sqs, f"{prefix}-inbox-dlq", _properties(template, INBOX_DLQ), {}, None)
    submit_dlq_url, submit_dlq_arn = _create_queue(sqs, f"{prefix}-submit-dlq", _properties(template, SUBMIT_DLQ),
                                                   {}, None)
    submit_queue_url, _ = _create_queue(
        sqs,
        f"{prefix}-submit",
        _properties(template, SUBMIT_QUEUE),
        {f"{SUBMIT_DLQ}.Arn": submit_dlq_arn, SUBMIT_DLQ: submit_dlq_url},
        visibility_timeout,
    )
    poll_dlq_url, poll_dlq_arn = _create_queue(sqs, f"{prefix}-poll-dlq", _properties(template, POLL_DLQ), {}, None)
    poll_queue_url, _ = _create_queue(
        sqs,
        f"{prefix}-poll",
        _properties(template, POLL_QUEUE),
        {f"{POLL_DLQ}.Arn": poll_dlq_arn, POLL_DLQ: poll_dlq_url},
        visibility_timeout,
    )
    event_bus_name = _create_event_bus(make_client("events"), f"{prefix}-jobs", _properties(template, EVENT_BUS))
    secretsmanager = make_client("secretsmanager")
    secret_id = _create_secret(secretsmanager, f"{prefix}/app", _properties(template, SECRET), secret_values)
    notify_secret_id = _create_secret(secretsmanager, f"{prefix}/notify-signing", _properties(template, NOTIFY_SECRET),
                                      {}, logical_id=NOTIFY_SECRET)
    return StackResources(
        table_name=table_name, bucket_name=bucket_name, queue_url=queue_url, dlq_url=dlq_url, secret_id=secret_id,
        event_bus_name=event_bus_name, notify_queue_url=notify_queue_url, notify_dlq_url=notify_dlq_url,
        notifier_failure_queue_url=failures_url, inbox_dlq_url=inbox_dlq_url, notify_secret_id=notify_secret_id,
        submit_queue_url=submit_queue_url, submit_dlq_url=submit_dlq_url,
        poll_queue_url=poll_queue_url, poll_dlq_url=poll_dlq_url,
    )


def template_env(
    resources: StackResources,
    *,
    function: str | None = None,
    parameters: Mapping[str, str] | None = None,
    template_path: Path | None = None,
) -> dict[str, str]:
    """The environment variables a function gets when deployed, for these resources.

    Read from ``Globals.Function.Environment`` (plus ``function``'s own ``Environment``,
    given its logical id, e.g. ``"PollerFunction"``), with parameters at their defaults
    unless ``parameters`` overrides them (like ``sam deploy --parameter-overrides``).
    Raises :class:`UnresolvedError` for a value only a deployment knows, such as
    PollerFunction's HttpApi URL when ``CallbackBaseUrl`` is left empty.
    """
    template = load_template(template_path)
    variables = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    if function is not None:
        own = _properties(template, function).get("Environment", {}).get("Variables", {})
        variables.update(own)
    refs = _refs(template, resources, parameters)
    conditions = template.get("Conditions", {})
    env: dict[str, str] = {}
    for name, value in variables.items():
        try:
            env[name] = _scalar(_resolve(value, refs, conditions))
        except UnresolvedError as exc:
            raise UnresolvedError(f"{name}: {exc}") from None
    return env


def resolve_value(
    value: Any,
    resources: StackResources,
    *,
    parameters: Mapping[str, str] | None = None,
    template_path: Path | None = None,
) -> Any:
    """A template value (e.g. an event pattern naming ``!Ref VideoBucket``) with its intrinsics
    resolved against these resources, as CloudFormation would."""
    template = load_template(template_path)
    return _resolve(value, _refs(template, resources, parameters), template.get("Conditions", {}))


def _refs(template: Mapping[str, Any], resources: StackResources,
          parameters: Mapping[str, str] | None) -> dict[str, str]:
    refs = {
        **_parameter_values(template, parameters),
        TABLE: resources.table_name,
        BUCKET: resources.bucket_name,
        QUEUE: resources.queue_url,
        DLQ: resources.dlq_url,
        SECRET: resources.secret_id,
        # Every function's environment names it; a hand-made instance without one leaves it empty.
        SUBMIT_QUEUE: resources.submit_queue_url,
        POLL_QUEUE: resources.poll_queue_url,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::Partition": "aws",
    }
    optional = {
        EVENT_BUS: resources.event_bus_name,
        NOTIFY_QUEUE: resources.notify_queue_url,
        NOTIFY_DLQ: resources.notify_dlq_url,
        NOTIFIER_FAILURES: resources.notifier_failure_queue_url,
        INBOX_DLQ: resources.inbox_dlq_url,
        NOTIFY_SECRET: resources.notify_secret_id,
        SUBMIT_DLQ: resources.submit_dlq_url,
        POLL_DLQ: resources.poll_dlq_url,
    }
    # Left unset, a reference to one of these stays unresolved (and says so).
    return refs | {name: value for name, value in optional.items() if value}


def _client_factory(clients: Session | ClientFactory) -> ClientFactory:
    make = getattr(clients, "client", None)
    if callable(make):  # a boto3 Session
        return lambda service_name: make(service_name)
    if callable(clients):
        return clients
    raise TypeError("clients must be a boto3.session.Session or a make_client(service_name) callable")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _pick(source: Mapping[str, Any], known: set[str], ignored: set[str], what: str) -> dict[str, Any]:
    unknown = set(source) - known - ignored
    if unknown:
        raise NotImplementedError(f"{what}: cannot mirror {sorted(unknown)} locally; extend aws_resources.py")
    return {key: value for key, value in source.items() if key in known}


# Properties that only matter in a real account (backups, protection, encryption keys...).
_TABLE_IGNORED = {
    "PointInTimeRecoverySpecification",
    "DeletionProtectionEnabled",
    "Tags",
    "ContributorInsightsSpecification",
    "TableClass",
}


def _create_table(ddb: Any, name: str, props: Mapping[str, Any]) -> str:
    props = _pick(
        props,
        {
            "AttributeDefinitions",
            "KeySchema",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "BillingMode",
            "ProvisionedThroughput",
            "StreamSpecification",
            "SSESpecification",
            "TimeToLiveSpecification",
        },
        _TABLE_IGNORED,
        TABLE,
    )
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    index_keys = {"IndexName", "KeySchema", "Projection", "ProvisionedThroughput"}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if kind in props:
            request[kind] = [
                _pick(index, index_keys, {"ContributorInsightsSpecification"}, kind) for index in props[kind]
            ]
    if "ProvisionedThroughput" in props:
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    if "SSESpecification" in props:
        sse = props["SSESpecification"]
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled", False))}
    try:
        ddb.create_table(**request)
    except ClientError as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    return name


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    rule = _pick(
        rule,
        {"Id", "Status", "Prefix", "AbortIncompleteMultipartUpload", "ExpirationInDays", "NoncurrentVersionExpiration"},
        set(),
        f"{BUCKET} lifecycle rule",
    )
    converted: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
    return converted


def _create_bucket(s3: Any, name: str, props: Mapping[str, Any]) -> str:
    props = _pick(
        props,
        {"BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls", "LifecycleConfiguration",
         "NotificationConfiguration", "VersioningConfiguration"},
        {"Tags"},
        BUCKET,
    )
    region = s3.meta.region_name or "us-east-1"
    request: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**request)
    except ClientError as exc:
        if _error_code(exc) != "BucketAlreadyOwnedByYou":
            raise
    # VideoBucketPolicy (deny unless aws:SecureTransport) is deliberately not applied: local
    # endpoints speak plain http, and the rule would refuse every request.
    if "BucketEncryption" in props:
        rules = [
            _pick(rule, {"ServerSideEncryptionByDefault", "BucketKeyEnabled"}, set(), f"{BUCKET} encryption")
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                        **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
                    }
                    for rule in rules
                ]
            },
        )
    if "VersioningConfiguration" in props:
        # As deployed: the transfer pins each output to the version it checked.
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
            "Status": props["VersioningConfiguration"]["Status"]})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]},
        )
    if "NotificationConfiguration" in props:
        notification = _pick(props["NotificationConfiguration"], {"EventBridgeConfiguration"}, set(),
                             f"{BUCKET} notifications")
        # Set for fidelity only: locally the front's S3InboxDriver stands in for S3 -> EventBridge.
        if notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}})
    return name


def _create_event_bus(events: Any, name: str, props: Mapping[str, Any]) -> str:
    _pick(props, {"Name"}, {"Tags", "Description"}, EVENT_BUS)
    try:
        events.create_event_bus(Name=name)
    except ClientError as exc:
        if _error_code(exc) != "ResourceAlreadyExistsException":
            raise
    return name


_QUEUE_ATTRIBUTES = {
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
}


def _create_queue(
    sqs: Any,
    name: str,
    props: Mapping[str, Any],
    refs: Mapping[str, str],
    visibility_timeout: int | None,
) -> tuple[str, str]:
    """Create the queue (or find it) and set its attributes; returns (url, arn)."""
    props = _pick(props, _QUEUE_ATTRIBUTES, {"Tags"}, name)
    attributes: dict[str, str] = {}
    for key, value in props.items():
        if key == "RedrivePolicy":
            attributes[key] = json.dumps(_resolve(value, refs, {}))
        else:
            attributes[key] = _scalar(value)
    if visibility_timeout is not None:
        attributes["VisibilityTimeout"] = str(visibility_timeout)
    # Name only, then the attributes: CreateQueue refuses an existing queue whose attributes
    # differ, and this way a rerun brings an existing queue up to date instead.
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    return url, arn


def _secret_string(props: Mapping[str, Any], given: Mapping[str, str], keep: Mapping[str, str],
                   logical_id: str = SECRET) -> str:
    generate = props.get("GenerateSecretString", {})
    values: dict[str, str] = json.loads(generate.get("SecretStringTemplate", "{}"))
    generated_key = generate.get("GenerateStringKey")
    allowed = set(values) | ({generated_key} if generated_key else set())
    unknown = set(given) - allowed
    if unknown:
        raise ValueError(f"{logical_id} has no keys {sorted(unknown)}; add them to its SecretStringTemplate first")
    if generated_key:
        if keep.get(generated_key):
            values[generated_key] = keep[generated_key]
        else:
            alphabet = string.ascii_letters + string.digits
            if not generate.get("ExcludePunctuation", False):
                alphabet += string.punctuation
            length = int(generate.get("PasswordLength", 32))
            values[generated_key] = "".join(secrets.choice(alphabet) for _ in range(length))
    values.update(given)
    return json.dumps(values)


def _create_secret(secretsmanager: Any, name: str, props: Mapping[str, Any], secret_values: Mapping[str, str],
                   *, logical_id: str = SECRET) -> str:
    try:
        answer = secretsmanager.create_secret(
            Name=name, SecretString=_secret_string(props, secret_values, {}, logical_id))
        return str(answer["ARN"])
    except ClientError as exc:
        if _error_code(exc) != "ResourceExistsException":
            raise
    # Already there: keep its generated key (it signed the callback URLs or notifications handed out so far).
    current = json.loads(secretsmanager.get_secret_value(SecretId=name)["SecretString"])
    answer = secretsmanager.put_secret_value(
        SecretId=name, SecretString=_secret_string(props, secret_values, current, logical_id))
    return str(answer["ARN"])
