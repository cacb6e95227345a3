"""Starting the local stack says what it is doing: each step as it ends, with its seconds, as
plain lines when piped (``make serve``; ``make demo``'s are checked in test_demo.py)."""

from __future__ import annotations

import io
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from rich.console import Console

from reelhook_local.startup import NAME_WIDTH, StartSteps

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["moto's servers up", "provider sandbox up", "resources created from template.yaml", "API front up",
         "event sources running"]
STEP_LINE = re.compile(r"^  (?P<step>\S.*?)\s+(?P<seconds>\d+\.\d) s$")


def step_lines(text: str) -> list[str]:
    """The step names of the plain step lines in ``text``, in order."""
    return [match["step"] for line in text.splitlines() if (match := STEP_LINE.match(line))]


def assert_steps_in_order(text: str) -> None:
    found = step_lines(text)
    positions = [next((i for i, step in enumerate(found) if step.startswith(name)), -1) for name in STEPS]
    assert -1 not in positions and positions == sorted(positions), text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_piped_steps_are_plain_lines_with_their_seconds() -> None:
    out = io.StringIO()
    steps = StartSteps(Console(file=out, width=200))
    steps.begin("moto's servers up")
    steps.end("moto's servers up", 0.42)
    steps.close()
    assert out.getvalue().splitlines() == [f"  {'moto' + chr(39) + 's servers up':<{NAME_WIDTH}}   0.4 s"]


def test_make_serve_piped_prints_each_start_step_in_order_before_its_banner(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "reelhook_local.serve", "--port", str(_free_port()),
               "--aws-port", str(_free_port()), "--sandbox-port", str(_free_port()),
               "--env-file", str(tmp_path / "local.env")]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,  # noqa: S603 - this interpreter
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    banner_done = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops everything."):
                banner_done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert banner_done.wait(180), "\n".join(lines)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=10)
    text = "\n".join(lines)
    banner = next(i for i, line in enumerate(lines) if line.startswith("reelhook API"))
    assert_steps_in_order("\n".join(lines[:banner]))
    assert "\x1b[" not in text and "✓" not in text  # piped: no spinner, no terminal codes
    assert '"_aws"' not in text
