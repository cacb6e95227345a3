"""``make demo`` as a person runs it: piped into a file (plain progress lines) and in a terminal
(a live table), each a real process starting its own local stack.

The demo's own exit status says every video was stored and verified and that the logical-model
job failed over; these tests check what it prints says so too.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from reelhook_local.demo import DEMO_JOBS, FAILOVER_JOB, OUT_OF_CREDIT

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
MODELS = [job["model"] for job in DEMO_JOBS] + [FAILOVER_JOB["model"]]
TIMEOUT = 300
LIFECYCLE = ["queued", "submitted", "running", "storing", "succeeded"]
# Whatever the shell says about terminals and widths, the demo decides from its own stdout.
TERMINAL_HINTS = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in TERMINAL_HINTS}


@pytest.fixture(scope="module")
def piped() -> str:
    result = subprocess.run([sys.executable, "-m", "reelhook_local.demo"], cwd=ROOT, env=demo_env(),
                            capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def table_rows(text: str) -> dict[str, list[str]]:
    """The result table's rows by model: its cells, stripped."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


def test_piped_it_prints_the_result_table_once_with_whole_model_ids(piped: str) -> None:
    assert piped.count("Result") == 1 and "Jobs in progress" not in piped
    assert piped.count("┏") == 1 and piped.count("┃ served by ┃") == 1, piped  # one boxed table in all
    after_start = piped.split("\n", 1)[1]  # the first line ends "…" as it waits for the stack
    assert "…" not in after_start and "\x1b[" not in piped  # nothing cut short, no terminal control codes
    rows = table_rows(piped)
    assert sorted(rows) == sorted(MODELS), piped
    for cells in rows.values():
        assert cells[2] == "succeeded" and cells[-1] == "yes", cells


def test_piped_progress_is_a_plain_line_per_change(piped: str) -> None:
    for model in MODELS:
        lines = [line for line in piped.splitlines()
                 if re.match(rf"^\s*\d+\.\d s  {re.escape(model)}\s+\S", line)]
        statuses = [line.split()[3] for line in lines if line.split()[3] != OUT_OF_CREDIT]
        # In the order they happen (a running job may print again as its progress moves), ending stored.
        assert statuses == sorted(statuses, key=LIFECYCLE.index) and statuses[-1] == "succeeded", (model, lines)
        assert len(set(statuses)) >= 2, (model, lines)


def test_piped_each_stored_object_names_its_model(piped: str) -> None:
    stored = [line.split() for line in piped.splitlines() if "s3://" in line]
    assert len(stored) == len(MODELS), piped
    assert sorted(words[0] for words in stored) == sorted(MODELS)
    uris = [next(w for w in words if w.startswith("s3://")) for words in stored]
    assert len(set(uris)) == len(uris) and all(re.fullmatch(r"s3://\S+/videos/job_[0-9a-f]{32}/0\.mp4", u)
                                               for u in uris), uris


def test_the_logical_model_job_fails_over_past_the_provider_out_of_credit(piped: str) -> None:
    served_by = table_rows(piped)[FAILOVER_JOB["model"]][1]
    assert served_by not in ("", OUT_OF_CREDIT)
    section = piped.split("Failover:", 1)[1]
    assert f"served by {served_by} " in section
    attempts = [line.split("│") for line in section.split("routes skipped")[0].splitlines() if "│" in line]
    outcomes = [(cells[0].strip(), cells[2].strip()) for cells in attempts]
    assert outcomes == [(OUT_OF_CREDIT, "rejected"), (served_by, "succeeded")], section
    assert "402" in attempts[0][3]
    health = section.split("Providers", 1)[1]
    [freepik] = [line for line in health.splitlines() if line.split() and line.split()[0] == OUT_OF_CREDIT]
    assert "1 failure in a row" in freepik, health  # the refusal counted against its circuit
    # The progress lines told it as it happened.
    assert re.search(rf"{re.escape(FAILOVER_JOB['model'])}\s+{OUT_OF_CREDIT} rejected: .*402", piped), piped


def test_in_a_terminal_progress_is_live_and_the_result_is_printed_once() -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))  # 40 rows, 100 columns
    process = subprocess.Popen([sys.executable, "-m", "reelhook_local.demo"], cwd=ROOT,
                               env=demo_env() | {"TERM": "xterm-256color"}, stdin=follower, stdout=follower,
                               stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the demo is done
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        process.kill()
        reader.join(timeout=10)
        os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert "Jobs in progress" in text and "\x1b[" in text  # the live table, redrawn in place
    plain = ANSI.sub("", text)
    assert plain.count("Result") == 1 and plain.count("┏") > 1  # live frames, then one result
    assert not re.search(r"^\s*\d+\.\d s  ", plain, flags=re.M)  # no plain progress lines in a terminal
    assert sorted(table_rows(plain.split("Result", 1)[1])) == sorted(MODELS)


def test_piped_the_stack_start_shows_each_step_as_a_plain_line(piped: str) -> None:
    from tests.e2e.test_stack_start import assert_steps_in_order

    assert_steps_in_order(piped.split("Up in", 1)[0])
