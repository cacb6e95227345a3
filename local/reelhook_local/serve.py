"""``make serve``: keep the local stack running for manual use (curl, the CLI).

As deployed, the client routes want SigV4 (IAM) signatures; here they are made with the
local stack's credentials (access key ``local``, secret ``local``, region us-east-1).
``--no-iam`` leaves every route open.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import threading
import warnings
from pathlib import Path

from rich.console import Console

from reelhook_local.emf import METRICS_FILE
from reelhook_local.front import CONSOLE_PATH
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LOCAL_CREDENTIALS, PROVIDERS, LocalStack, StackOptions
from reelhook_local.startup import StartSteps


def how_to_call(api_url: str, enforce_iam: bool) -> list[str]:
    if not enforce_iam:
        return ["IAM auth is off (--no-iam): call it unsigned, e.g.",
                f"  curl -s {api_url}/v1/models",
                f"  REELHOOK_API_URL={api_url} .venv/bin/reelhook models"]
    key = LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    secret = LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    region = LOCAL_CREDENTIALS["AWS_REGION"]
    return [
        f"Client routes want SigV4 (IAM) signatures made with access key {key!r}, secret {secret!r}, "
        f"region {region} (--no-iam turns this off); callbacks are open.",
        f'  curl --aws-sigv4 "aws:amz:{region}:execute-api" --user {key}:{secret} {api_url}/v1/models',
        f"  REELHOOK_API_URL={api_url} REELHOOK_AUTH=iam AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret} "
        f"AWS_DEFAULT_REGION={region} .venv/bin/reelhook models",
    ]


def console_url(api_url: str) -> str:
    return f"{api_url}{CONSOLE_PATH}/"


ENV_FILE = Path(".reelhook/local.env")


def local_env(stack: LocalStack, enforce_iam: bool) -> dict[str, str]:
    """What the README's examples need to run against this stack, under the names they use."""
    assert stack.resources is not None
    resources = stack.resources
    return {
        "REELHOOK_API_URL": stack.api_url,
        "REELHOOK_AUTH": "iam" if enforce_iam else "none",
        "AWS_ENDPOINT_URL": stack.aws_endpoint,  # every service, the aws CLI and boto3 included
        **LOCAL_CREDENTIALS,
        "BUCKET": resources.bucket_name,
        "BUS": resources.event_bus_name,
        "SECRET_ARN": resources.secret_id,
        "NOTIFY_SECRET_ARN": resources.notify_secret_id,
        "JOBS_TABLE": resources.table_name,
        # Under the template's parameter names, which nothing reads from the environment, so a
        # shell that sources this file still sends the functions and tests to the real providers;
        # `reelhook doctor --env-file` reads them to check this stack as it would a deployed one.
        "CallbackBaseUrl": stack.api_url,
        **{f"{provider.capitalize()}BaseUrl": stack.provider_base_url(provider) for provider in PROVIDERS},
    }


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Written by `make serve` for this run: `source` it and the README's examples run as written."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=3000, help="API port")
    parser.add_argument("--aws-port", type=int, default=5055, help="moto server port")
    parser.add_argument("--sandbox-port", type=int, default=8089, help="provider sandbox port")
    parser.add_argument("--step-seconds", type=float, default=2.0, help="sandbox time per task status")
    parser.add_argument("--no-iam", dest="enforce_iam", action="store_false",
                        help="do not check SigV4 signatures on the client routes")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE, help="where to write the settings to source")
    args = parser.parse_args()
    # Powertools' warning that a pass published no metric (an idle poller's) is no news here.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    options = StackOptions(sandbox=SandboxConfig(step_seconds=args.step_seconds, port=args.sandbox_port),
                           front_port=args.port, moto_port=args.aws_port, enforce_iam=args.enforce_iam,
                           settings_from_environment=True, metrics_file=METRICS_FILE)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print("Starting the local stack:", flush=True)
    steps = StartSteps(Console(highlight=False))
    stack = LocalStack(options, steps=steps)
    try:
        stack.start()
    finally:
        began = steps.close()
    try:
        print(f"Up in {began:.1f} s.", flush=True)
        values = local_env(stack, args.enforce_iam)
        write_env_file(args.env_file, values)
        print(f"reelhook API      {stack.api_url}")
        print(f"web console       {console_url(stack.api_url)}")
        print(f"AWS (moto server) {stack.aws_endpoint}")
        print(f"provider sandbox  {stack.sandbox.root_url}")
        for label, name in (("bucket", "BUCKET"), ("event bus", "BUS"), ("app secret", "SECRET_ARN"),
                            ("notify secret", "NOTIFY_SECRET_ARN"), ("jobs table", "JOBS_TABLE")):
            print(f"{label:<17} {values[name]}")
        print()
        print(f"source {args.env_file}   # sets these (and the AWS endpoint) for the README's examples")
        print()
        print("\n".join(how_to_call(stack.api_url, args.enforce_iam)))
        print()
        print(f"metric lines (EMF; on with POWERTOOLS_METRICS_DISABLED=false) go to {METRICS_FILE}, not here")
        print()
        print("Ctrl-C stops everything.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
