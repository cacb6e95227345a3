"""moto's server in a process of its own, as AWS is a service apart from the functions.

In the stack's own process moto shares one GIL with the front, the handlers, the drivers and
the sandbox, and took about half of it under a burst. A child process gives it a core of its
own. The child runs the same ``AtomicMotoServer`` (its locks and long polls included), says
its port on stdout, and exits when its stdin closes, so it never outlives the stack, even
when the parent is killed. The stack runs two: DynamoDB (and its streams), whose one lock
serialises its writes, and everything else, which hands any DynamoDB request it gets on to
the first, so one endpoint still serves every service.

    python -m reelhook_local.moto_process --port 0 [--dynamodb-at 127.0.0.1:PORT]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from typing import IO

READY = "moto listening on port "


class MotoProcess:
    """Start and stop the child; ``address`` as ``AtomicMotoServer`` gives it."""

    def __init__(self, port: int = 0, *, dynamodb_at: tuple[str, int] | None = None,
                 start_timeout: float = 60.0) -> None:
        self._port = port
        self._dynamodb_at = dynamodb_at
        self._start_timeout = start_timeout
        self._child: subprocess.Popen[str] | None = None
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("moto's process is not running")
        return self._address

    def start(self) -> None:
        command = [sys.executable, "-m", "reelhook_local.moto_process", "--port", str(self._port)]
        if self._dynamodb_at:
            command += ["--dynamodb-at", "{}:{}".format(*self._dynamodb_at)]
        child = subprocess.Popen(  # noqa: S603 - this interpreter, this module
            command,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ),
        )
        self._child = child
        line = _read_line(child.stdout, self._start_timeout)
        if not line.startswith(READY):
            self.stop()
            raise RuntimeError(f"moto's process did not start: {line!r}")
        self._address = ("127.0.0.1", int(line.removeprefix(READY)))

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin:
            child.stdin.close()  # the child's signal to shut down
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout:
            child.stdout.close()


def _read_line(stream: IO[str] | None, timeout: float) -> str:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline() if stream else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0].strip() if found else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reelhook_local.moto_process")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dynamodb-at", metavar="HOST:PORT", help="hand DynamoDB requests on to this server")
    args = parser.parse_args(argv)
    import logging

    from reelhook_local.stack import AtomicMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    dynamodb_at = None
    if args.dynamodb_at:
        host, _, port = args.dynamodb_at.rpartition(":")
        dynamodb_at = (host, int(port))
    server = AtomicMotoServer(port=args.port, dynamodb_at=dynamodb_at)
    server.start()
    print(f"{READY}{server.address[1]}", flush=True)
    sys.stdin.read()  # until the parent closes it (or dies)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
