"""``reelhook doctor``: is a deployed (or local) stack ready to take jobs?

It reads the stack's outputs and parameters (CloudFormation), the provider secret, and then
asks the outside world: one cheap authenticated request per provider (what that request is
and how to read its answer belongs to each provider module, ``reelhook.providers.<name>``),
one unsigned request to the callback route, and the alarm topic's subscriptions. It creates
nothing and changes nothing.

It needs the ``reelhook`` package (the project itself: ``pip install -e .`` at the repository
root, which brings boto3 too); without it the command says so instead of failing.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import click

from reelhook_cli.errors import EXIT_FAILED, EXIT_USAGE, CliError, want_json_errors

if TYPE_CHECKING:
    from reelhook.providers.base import Provider

Status = Literal["ok", "warn", "fail"]
DEFAULT_STACK = "reelhook"  # samconfig.toml's stack_name
DEFAULT_TIMEOUT = 10.0
REQUIRED_OUTPUTS = ("ApiUrl", "SecretArn")
# A job id of the right shape that no job has: the callback route refuses it without a lookup.
PROBE_JOB_ID = "job_" + "0" * 32
USER_AGENT = "reelhook-doctor"
MAX_ANSWER_BYTES = 64 * 1024
TEMPLATE_PARAMETER = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*\Z")
NEEDS = (("reelhook", "the reelhook package (the project itself)"), ("boto3", "boto3"),
         ("urllib3", "urllib3"))


@dataclass
class Check:
    name: str
    status: Status
    message: str
    fix: str = ""


@dataclass
class Target:
    """Where the stack's pieces are, however they were found."""

    label: str
    secret_id: str | None = None
    callback_base_url: str | None = None
    alarm_topic_arn: str | None = None
    # The stack's parameters by their template names (FreepikBaseUrl, AihubmaxStatusPath, ...).
    parameters: dict[str, str] = field(default_factory=dict)
    # http:// and loopback probes: only for a local stack the user pointed at (--env-file).
    allow_insecure: bool = False
    aws: dict[str, str] = field(default_factory=dict)  # region, endpoint and credentials, when given


# -- finding the stack ---------------------------------------------------------------------------


def parameter_env_names(parameters: Mapping[str, str]) -> dict[str, str]:
    """Template parameters under the environment names the functions read them by
    (FreepikApiKeyHeader -> FREEPIK_API_KEY_HEADER), so provider settings resolve as deployed."""
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper(): value for name, value in parameters.items()}


def read_env_file(path: Path) -> dict[str, str]:
    """``export NAME=value`` lines, as ``make serve`` writes them (values shell-quoted)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, raw = line.removeprefix("export ").partition("=")
        if sep:
            words = shlex.split(raw)
            values[name.strip()] = words[0] if words else ""
    return values


def local_target(path: Path) -> Target:
    try:
        env = read_env_file(path)
    except OSError as exc:
        raise CliError(f"cannot read --env-file {path}: {exc.strerror}", exit_code=EXIT_USAGE,
                       details=["`make serve` writes .reelhook/local.env when the local stack starts"]) from None
    aws = {"endpoint_url": env.get("AWS_ENDPOINT_URL", ""),
           "region_name": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", ""),
           "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID", ""),
           "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY", "")}
    return Target(label=f"local stack ({path})", secret_id=env.get("SECRET_ARN") or None,
                  callback_base_url=env.get("CallbackBaseUrl") or env.get("REELHOOK_API_URL") or None,
                  alarm_topic_arn=env.get("AlarmTopicArn") or None, allow_insecure=True,
                  # The stack's settings are the lines under template parameter names (FreepikBaseUrl).
                  parameters={k: v for k, v in env.items() if TEMPLATE_PARAMETER.match(k)},
                  aws={k: v for k, v in aws.items() if v})


def stack_target(session: Any, endpoint: str | None, name: str) -> tuple[Target | None, Check]:
    from botocore.exceptions import BotoCoreError, ClientError

    region = session.region_name or "(no region)"
    try:
        stacks = session.client("cloudformation", endpoint_url=endpoint).describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        return None, Check("stack", "fail", f"stack {name} in {region}: {message}",
                           "check --stack-name and --region (or AWS_REGION); `make deploy` creates the stack")
    except BotoCoreError as exc:
        return None, Check("stack", "fail", f"cannot ask CloudFormation about {name}: {exc}",
                           "set AWS credentials and a region (--region, AWS_REGION or the profile's)")
    stack = stacks[0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ResolvedValue") or p.get("ParameterValue", "")
                  for p in stack.get("Parameters", [])}
    target = Target(label=f"stack {name} ({region})", secret_id=outputs.get("SecretArn"),
                    callback_base_url=parameters.get("CallbackBaseUrl") or outputs.get("ApiUrl"),
                    alarm_topic_arn=parameters.get("AlarmTopicArn") or None, parameters=parameters)
    status = str(stack.get("StackStatus", "?"))
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        return target, Check("stack", "fail", f"{status}, but without the outputs {', '.join(missing)}",
                             "deploy this repository's template.yaml (`make deploy`)")
    if status.endswith("_FAILED") or status in {"ROLLBACK_COMPLETE", "DELETE_COMPLETE"}:
        return target, Check("stack", "fail", f"{status}: the stack is not usable",
                             "read the stack's events (aws cloudformation describe-stack-events), fix, deploy again")
    if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
        return target, Check("stack", "warn", f"{status}: the stack is changing or was rolled back",
                             "run the doctor again once the stack is *_COMPLETE")
    return target, Check("stack", "ok", f"{status}; API {outputs['ApiUrl']}")


# -- outbound requests, through the SSRF guard ---------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: no answer came
    body: Any  # parsed JSON, else text; why no answer came when status is None


def fetch(method: str, url: str, headers: Mapping[str, str], *, body: bytes | None, allow_insecure: bool,
          timeout: float) -> Answer:
    """One request to the address ``reelhook.ssrf.check_url`` approved (pinned, as the functions'
    own outbound calls are), no redirects, no retries. Raises ``UnsafeUrl`` before connecting."""
    import urllib3
    from urllib3.exceptions import HTTPError

    from reelhook.ssrf import check_url

    target = check_url(url, allow_insecure=allow_insecure)
    parts = urlsplit(url)
    https = parts.scheme == "https"
    tls = {"server_hostname": target.host, "assert_hostname": target.host} if https else None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        import certifi

        ca_certs: str | None = certifi.where()
    except ImportError:
        ca_certs = None
    pool = urllib3.PoolManager(retries=False, ca_certs=ca_certs)
    try:
        connection = pool.connection_from_host(target.address, port=parts.port or (443 if https else 80),
                                               scheme=parts.scheme, pool_kwargs=tls)
        response = connection.urlopen(method, path, body=body, redirect=False, retries=False,
                                      assert_same_host=False, timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                      headers={**headers, "host": parts.netloc, "user-agent": USER_AGENT},
                                      preload_content=False)
        data = response.read(MAX_ANSWER_BYTES)  # an answer is a few hundred bytes: never read a flood
        response.close()
    except HTTPError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}")
    finally:
        pool.clear()
    try:
        return Answer(response.status, json.loads(data))
    except ValueError:
        return Answer(response.status, data[:300].decode("utf-8", "replace"))


# -- the checks ----------------------------------------------------------------------------------


def read_secret(session: Any, endpoint: str | None, secret_id: str | None) -> tuple[dict[str, str] | None, Check]:
    from botocore.exceptions import BotoCoreError, ClientError

    if not secret_id:
        return None, Check("secret", "fail", "no provider secret is known",
                           "pass --secret-arn, or --stack-name of a stack with the SecretArn output")
    try:
        raw = session.client("secretsmanager", endpoint_url=endpoint).get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as exc:
        return None, Check("secret", "fail", f"cannot read {secret_id}: {exc}",
                           "your credentials need secretsmanager:GetSecretValue on it")
    try:
        values = json.loads(raw.get("SecretString") or "")
    except ValueError:
        values = None
    if not isinstance(values, dict):
        return None, Check("secret", "fail", f"{secret_id} does not hold a JSON object",
                           "put the fields back as README \"Fill the secret\" shows")
    return {str(k): str(v) for k, v in values.items()}, Check("secret", "ok", f"{secret_id}: {len(values)} fields")


def callback_key_check(secret: Mapping[str, str]) -> Check:
    from reelhook.adapters.secrets import CALLBACK_TOKEN_FIELD, MIN_CALLBACK_TOKEN_KEY

    if len(secret.get(CALLBACK_TOKEN_FIELD, "")) < MIN_CALLBACK_TOKEN_KEY:
        return Check(f"secret {CALLBACK_TOKEN_FIELD}", "fail",
                     f"missing or shorter than {MIN_CALLBACK_TOKEN_KEY} characters: every webhook is refused",
                     "CloudFormation generated it: restore it from the previous version "
                     "(get-secret-value --version-stage AWSPREVIOUS) or set 48 random letters and digits")
    return Check(f"secret {CALLBACK_TOKEN_FIELD}", "ok", "set")


def provider_checks(name: str, provider: Provider, secret: Mapping[str, str], target: Target,
                    timeout: float) -> list[Check]:
    from reelhook.adapters.provider_http import api_key_field, auth_headers
    from reelhook.providers.base import KeyVerdict, WebhookContext
    from reelhook.ssrf import UnsafeUrl

    conf = provider.defaults.from_env(name, parameter_env_names(target.parameters))
    checks: list[Check] = []
    key_field = api_key_field(name)
    label = f"{name} key"
    if not secret.get(key_field, "").strip():
        checks.append(Check(label, "fail", f"secret field {key_field} is empty",
                            f"put your {name} API key in it (README \"Fill the secret\"), "
                            f"or check only the providers you use with --provider"))
    else:
        call = provider.key_probe_call(conf.extras)
        url = conf.base_url + call.path
        try:
            answer = fetch(call.method, url, auth_headers(name, secret, conf) | {"accept": "application/json"},
                           body=None, allow_insecure=target.allow_insecure, timeout=timeout)
        except UnsafeUrl as exc:
            checks.append(Check(label, "fail", f"{conf.base_url} is refused: {exc}",
                                f"{name}'s base URL must be a public https address (the stack's "
                                f"{name.capitalize()}BaseUrl parameter)"))
        else:
            probe = provider.read_key_probe(answer.status, answer.body)
            where = f"{call.method} {url}"
            checks.append({
                KeyVerdict.WORKS: Check(label, "ok", f"accepted ({probe.detail} for {where})"),
                KeyVerdict.BAD_KEY: Check(label, "fail", f"refused ({probe.detail})",
                                          f"replace {key_field} in the secret with a key {name} accepts"),
                KeyVerdict.NO_CREDIT: Check(label, "warn", f"accepted, but the account cannot pay ({probe.detail})",
                                            f"add credit to the {name} account"),
                KeyVerdict.UNAVAILABLE: Check(label, "warn", f"{name} is unavailable, so the key could not be "
                                              f"checked ({probe.detail})", "try again later"),
            }.get(probe.verdict, Check(label, "warn", f"unexpected answer to {where} ({probe.detail})",
                                       f"check {name.capitalize()}BaseUrl and the key")))
    if provider.webhook_secret_fields and provider.sends_webhooks(conf.extras):
        fields = ", ".join(provider.webhook_secret_fields)
        ctx = WebhookContext(headers={}, raw_body=b"", secrets=secret, now=time.time(), extras=conf.extras)
        if provider.webhook_secret_missing(ctx):
            checks.append(Check(f"{name} webhook secret", "warn",
                                f"{fields} is empty: {name}'s webhooks are only hints, each confirmed by a "
                                "status GET (and counted by the WebhookSecretMissing alarm)",
                                f"copy the webhook secret from the {name} dashboard into {fields}"))
        else:
            checks.append(Check(f"{name} webhook secret", "ok", f"{fields} set"))
    return checks


def callback_check(target: Target, provider_name: str, timeout: float) -> Check:
    from reelhook.ssrf import UnsafeUrl

    if not target.callback_base_url:
        return Check("callback route", "fail", "no callback URL is known",
                     "pass --callback-url, or --stack-name of a stack with the ApiUrl output")
    url = f"{target.callback_base_url.rstrip('/')}/v1/callbacks/{provider_name}/{PROBE_JOB_ID}"
    try:
        # Unsigned and without a token: the route must refuse it before looking anything up.
        answer = fetch("POST", url, {"content-type": "application/json"}, body=b"{}",
                       allow_insecure=target.allow_insecure, timeout=timeout)
    except UnsafeUrl as exc:
        return Check("callback route", "fail", f"{url} is refused: {exc}",
                     "providers need a public https address: CallbackBaseUrl or the API's own URL")
    if answer.status is None:
        return Check("callback route", "fail", f"POST {url}: no answer ({answer.body})",
                     "providers cannot reach it either: check the URL, DNS and the API's stage")
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    said = f"POST {url}: HTTP {answer.status}"
    if 400 <= answer.status < 500 and isinstance(error, dict) and error.get("code") == "webhook_rejected":
        return Check("callback route", "ok", f"{said} (an unsigned request is refused, as it should be)")
    if answer.status >= 500:
        return Check("callback route", "fail", f"{said}: the callback function fails",
                     "read the callback function's log group (/aws/lambda/<stack>/callback)")
    if 400 <= answer.status < 500:
        return Check("callback route", "fail", f"{said}, but not from reelhook's callback function "
                     f"({str(answer.body)[:120]})", "the route must be public and reach the callback function: "
                     "is CallbackBaseUrl pointing elsewhere, or an authorizer in front of it?")
    return Check("callback route", "fail", f"{said}: an unsigned, tokenless callback was not refused",
                 "deploy this repository's callback function")


def alarm_check(session: Any, endpoint: str | None, topic_arn: str | None) -> Check:
    from botocore.exceptions import BotoCoreError, ClientError

    if not topic_arn:
        return Check("alarm topic", "warn", "no AlarmTopicArn: the alarms notify nobody",
                     "deploy with AlarmTopicArn=<an SNS topic ARN> and subscribe to the topic")
    parts = topic_arn.split(":")
    region = parts[3] if len(parts) > 5 and parts[3] else None
    sns = session.client("sns", endpoint_url=endpoint, **({"region_name": region} if region else {}))
    try:
        sns.get_topic_attributes(TopicArn=topic_arn)
        subscriptions: list[dict[str, Any]] = []
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            subscriptions += page.get("Subscriptions", [])
    except ClientError as exc:
        return Check("alarm topic", "fail", f"{topic_arn}: {exc.response.get('Error', {}).get('Message', exc)}",
                     "create the topic, or deploy with the AlarmTopicArn of one that exists")
    except BotoCoreError as exc:
        return Check("alarm topic", "fail", f"cannot ask SNS about {topic_arn}: {exc}", "check AWS credentials")
    confirmed = [s for s in subscriptions if s.get("SubscriptionArn", "").startswith("arn:")]
    if not confirmed:
        pending = len(subscriptions) - len(confirmed)
        return Check("alarm topic", "warn",
                     f"{topic_arn} has no confirmed subscription{f' ({pending} pending)' if pending else ''}: "
                     "alarms reach nobody",
                     "aws sns subscribe --topic-arn <arn> --protocol email --notification-endpoint you@example.com "
                     "(and confirm the email)")
    return Check("alarm topic", "ok", f"{topic_arn}: {len(confirmed)} subscription(s)")


def run_checks(target: Target, target_check: Check | None, session: Any, providers: Sequence[str],
               timeout: float) -> list[Check]:
    from reelhook.providers import get_provider

    endpoint = target.aws.get("endpoint_url")
    checks = [target_check] if target_check else []
    secret, secret_check = read_secret(session, endpoint, target.secret_id)
    checks.append(secret_check)
    if secret is not None:
        checks.append(callback_key_check(secret))
        for name in providers:
            checks += provider_checks(name, get_provider(name), secret, target, timeout)
    webhook_senders = [n for n in providers if get_provider(n).webhook_secret_fields] or list(providers)
    checks.append(callback_check(target, webhook_senders[0], timeout))
    checks.append(alarm_check(session, endpoint, target.alarm_topic_arn))
    return checks


# -- the command ---------------------------------------------------------------------------------


def require_project() -> None:
    missing = [what for module, what in NEEDS if importlib.util.find_spec(module) is None]
    if missing:
        raise CliError(f"reelhook doctor needs {' and '.join(missing)}, which are not installed",
                       details=["install the project from the root of the reelhook repository: "
                                "pip install -e . (it brings reelhook and boto3)"],
                       exit_code=EXIT_USAGE, code="missing_dependency")


COLORS = {"ok": "green", "warn": "yellow", "fail": "red"}


def print_report(label: str, checks: Sequence[Check]) -> None:
    click.echo(f"reelhook doctor: {label}")
    width = max(len(check.name) for check in checks)
    for check in checks:
        tag = click.style(f"{check.status:<4}", fg=COLORS[check.status], bold=True)
        click.echo(f"{tag}  {check.name:<{width}}  {check.message}")
        if check.fix and check.status != "ok":
            click.echo(f"      {'':<{width}}  fix: {check.fix}")


@click.command(epilog="Exit codes: 0 nothing failed (warnings allowed unless --strict); 1 a check failed; "
                      "2 bad usage or a missing dependency.")
@click.option("--stack-name", metavar="NAME", help=f"The deployed stack [default: {DEFAULT_STACK}].")
@click.option("--region", "doctor_region", metavar="REGION", help="AWS region [default: the usual chain].")
@click.option("--env-file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Check the local stack `make serve` wrote this file for (.reelhook/local.env).")
@click.option("--secret-arn", metavar="ARN", help="The provider secret (instead of the stack's SecretArn).")
@click.option("--callback-url", metavar="URL", help="Where providers send webhooks (instead of the stack's).")
@click.option("--alarm-topic-arn", metavar="ARN", help="The alarms' SNS topic (instead of the stack's).")
@click.option("--provider", "only", multiple=True, metavar="NAME",
              help="Check only this provider (repeatable) [default: every provider].")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds each outside request may take.")
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors, help="Print the checks as JSON.")
@click.pass_context
def doctor(ctx: click.Context, stack_name: str | None, doctor_region: str | None, env_file: Path | None,
           secret_arn: str | None, callback_url: str | None, alarm_topic_arn: str | None, only: tuple[str, ...],
           timeout: float, strict: bool, as_json: bool) -> None:
    """Is the stack ready? Its outputs, the secret, each provider key, the callback route, the alarms."""
    require_project()
    import boto3

    from reelhook.providers import provider_names

    unknown = sorted(set(only) - set(provider_names()))
    if unknown:
        raise CliError(f"--provider: no provider {', '.join(unknown)} (known: {', '.join(provider_names())})",
                       exit_code=EXIT_USAGE)
    if env_file is not None and stack_name:
        raise CliError("--env-file and --stack-name name two different stacks: give one", exit_code=EXIT_USAGE)
    region = doctor_region or getattr(ctx.find_root().obj, "region", None)  # or `reelhook --region`
    target_check: Check | None = None
    if env_file is not None:
        target = local_target(env_file)
        target_check = Check("stack", "ok", f"the local stack's settings from {env_file}")
    elif stack_name or not (secret_arn or callback_url):
        session = boto3.session.Session(region_name=region)
        found, target_check = stack_target(session, None, stack_name or DEFAULT_STACK)
        target = found or Target(label=f"stack {stack_name or DEFAULT_STACK}")
    else:
        target = Target(label="the given settings")
    if region and "region_name" not in target.aws:
        target.aws["region_name"] = region
    target.secret_id = secret_arn or target.secret_id
    target.callback_base_url = callback_url or target.callback_base_url
    target.alarm_topic_arn = alarm_topic_arn or target.alarm_topic_arn
    session = boto3.session.Session(**{k: v for k, v in target.aws.items() if k != "endpoint_url"})
    providers = list(only) or list(provider_names())
    if target_check is not None and target_check.status == "fail" and not (secret_arn or callback_url):
        checks = [target_check]  # nothing else is known
    else:
        checks = run_checks(target, target_check, session, providers, timeout)
    failed = any(c.status == "fail" or (strict and c.status == "warn") for c in checks)
    if as_json:
        click.echo(json.dumps({"target": target.label, "ok": not failed,
                               "checks": [asdict(check) for check in checks]}, indent=2, ensure_ascii=False))
    else:
        print_report(target.label, checks)
    if failed:
        ctx.exit(EXIT_FAILED)
