"""The README's API section, run as written (curl with SigV4) against a local stack that checks
signatures as API Gateway does. Only the address changes: the stack listens on a free port."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CURL = shutil.which("curl")
README_URL = "http://127.0.0.1:3000"


def api_commands() -> list[str]:
    """Each command of the shell blocks between "## The API" and "## Models", continuations joined."""
    text = ROOT.joinpath("README.md").read_text()
    section = text[text.index("## The API"):text.index("\n## Models")]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        current = ""
        for line in joined.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            current = f"{current}\n{line}" if current else line
            if current.count("'") % 2 == 0:  # a quoted body may span lines
                commands.append(current)
                current = ""
    return commands


def test_the_readme_names_the_api_calls_this_test_runs():
    commands = api_commands()
    assert len(commands) >= 6
    assert all(command.startswith("curl ") for command in commands)
    assert any("veo-3.1/reference-to-video" in command for command in commands)
    assert any(command.endswith("/v1/providers") for command in commands)
    assert any("/v1/jobs?" in command for command in commands) and any(c.endswith("/cancel") for c in commands)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_every_curl_call_of_the_api_section_answers_as_described():
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.1), enforce_iam=True)
    with LocalStack(options) as stack:
        job_id = None
        for command in api_commands():
            command = command.replace(README_URL, stack.api_url)
            if "/v1/jobs/job_..." in command:
                assert job_id, "the README reads a job before creating one"
                command = command.replace("job_...", job_id)
            # The README is this repository's own text.
            run = subprocess.run(["bash", "-c", command], capture_output=True, text=True,  # noqa: S603, S607
                                 timeout=60, check=False)
            assert run.returncode == 0, (command, run.stderr)
            if "| " in command:  # piped through a formatter (and cut short by head): JSON came out
                assert run.stdout.startswith("{") and '"models"' in run.stdout, (command, run.stdout[:200])
                continue
            answer = json.loads(run.stdout)
            assert "error" not in answer and answer.get("message") != "Forbidden", (command, answer)
            if command.endswith("/cancel"):
                assert answer["status"] == "cancelled" and answer["id"] == job_id, answer
            elif "-X POST" in command and "/v1/jobs" in command:
                assert answer["status"] in {"queued", "submitted"}, answer
                job_id = job_id or answer["id"]
