"""``make serve``: keep the local stack running for manual use (curl, the CLI)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="API port")
    parser.add_argument("--aws-port", type=int, default=5055, help="moto server port")
    parser.add_argument("--sandbox-port", type=int, default=8089, help="provider sandbox port")
    parser.add_argument("--step-seconds", type=float, default=2.0, help="sandbox time per task status")
    args = parser.parse_args()
    options = StackOptions(sandbox=SandboxConfig(step_seconds=args.step_seconds, port=args.sandbox_port),
                           front_port=args.port, moto_port=args.aws_port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with LocalStack(options) as stack:
        print(f"reelhook API      {stack.api_url}")
        print(f"AWS (moto server) {stack.aws_endpoint}")
        print(f"provider sandbox  {stack.sandbox.root_url}")
        print("Ctrl-C stops everything.")
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()


if __name__ == "__main__":
    main()
