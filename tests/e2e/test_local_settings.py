"""Settings set in the environment reach the handlers of `make serve`'s stack, as the
README's Configuration section says; the stack's own wiring stays its own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reelhook_local.stack import STACK_OWNED, user_settings
from reelhook_local.template import environment_variables, resource_wired

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = sorted(environment_variables())
WIRED = resource_wired()


def test_the_wiring_is_the_template_pointing_at_its_own_resources():
    assert {"JOBS_TABLE", "VIDEO_BUCKET", "SECRET_ID", "SUBMIT_QUEUE_URL", "POLL_QUEUE_URL"} <= WIRED
    assert not WIRED & {"RECONCILE_AFTER_SECONDS", "FREEPIK_KLING_ENDPOINT", "FREEPIK_WEBHOOK_SECRET_ENCODING"}


@pytest.mark.parametrize("name", VARIABLES)
def test_every_template_variable_set_in_the_environment_is_used_unless_it_is_wiring(name):
    stack_value = "the stack's value"
    chosen = user_settings({name: stack_value}, {name: "set by the person"})[name]
    if name in WIRED or name in STACK_OWNED:
        assert chosen == stack_value
    else:
        assert chosen == "set by the person"


def test_unset_settings_keep_the_stack_values():
    env = {"RECONCILE_AFTER_SECONDS": "60", "POLL_BASE_SECONDS": "1"}
    assert user_settings(env, {"UNRELATED": "x"}) == env


def test_serve_settings_reach_the_handlers(monkeypatch):
    from reelhook import config
    from reelhook_local.stack import LocalStack, StackOptions

    monkeypatch.setenv("RECONCILE_AFTER_SECONDS", "777")
    monkeypatch.setenv("FREEPIK_KLING_ENDPOINT", "reference-to-video")
    monkeypatch.setenv("FREEPIK_WEBHOOK_SECRET_ENCODING", "base64")
    monkeypatch.setenv("POLL_BASE_SECONDS", "33")
    monkeypatch.setenv("JOBS_TABLE", "not-the-stacks-table")
    with LocalStack(StackOptions(settings_from_environment=True)) as stack:
        conf = config.settings()
        assert conf.reconcile_after_seconds == 777
        assert conf.poll_base_seconds == 33
        extras = conf.provider("freepik").extras
        assert extras["kling_endpoint"] == "reference-to-video"
        assert extras["webhook_secret_encoding"] == "base64"
        assert conf.jobs_table == stack.resources.table_name  # wiring is the stack's
    # Tests and benchmarks keep their own values whatever the shell says.
    with LocalStack(StackOptions(reconcile_after_seconds=61)):
        assert config.settings().reconcile_after_seconds == 61


def test_make_serve_takes_its_ports():
    make = shutil.which("make")
    assert make, "make is needed for the README's commands"
    dry = subprocess.run([make, "-n", "serve", "PORT=3100", "AWS_PORT=5155", "SANDBOX_PORT=8189"],  # noqa: S603
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "reelhook_local.serve --port 3100 --aws-port 5155 --sandbox-port 8189" in dry
