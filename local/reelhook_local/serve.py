"""``make serve``: keep the local stack running for manual use (curl, the CLI).

As deployed, the client routes want SigV4 (IAM) signatures; here they are made with the
local stack's credentials (access key ``local``, secret ``local``, region us-east-1).
``--no-iam`` leaves every route open.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LOCAL_CREDENTIALS, LocalStack, StackOptions


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=3000, help="API port")
    parser.add_argument("--aws-port", type=int, default=5055, help="moto server port")
    parser.add_argument("--sandbox-port", type=int, default=8089, help="provider sandbox port")
    parser.add_argument("--step-seconds", type=float, default=2.0, help="sandbox time per task status")
    parser.add_argument("--no-iam", dest="enforce_iam", action="store_false",
                        help="do not check SigV4 signatures on the client routes")
    args = parser.parse_args()
    options = StackOptions(sandbox=SandboxConfig(step_seconds=args.step_seconds, port=args.sandbox_port),
                           front_port=args.port, moto_port=args.aws_port, enforce_iam=args.enforce_iam,
                           settings_from_environment=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with LocalStack(options) as stack:
        print(f"reelhook API      {stack.api_url}")
        print(f"AWS (moto server) {stack.aws_endpoint}")
        print(f"provider sandbox  {stack.sandbox.root_url}")
        print()
        print("\n".join(how_to_call(stack.api_url, args.enforce_iam)))
        print()
        print("Ctrl-C stops everything.")
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()


if __name__ == "__main__":
    main()
