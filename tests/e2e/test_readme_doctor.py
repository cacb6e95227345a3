"""The README's "Is my stack ready?" commands, run as written in a fresh shell: against the local
stack through the env file `make serve` writes, and against a CloudFormation stack named
reelhook (in the local stack's moto server, so nothing leaves this machine)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reelhook_local.serve import local_env, write_env_file
from reelhook_local.stack import LOCAL_CREDENTIALS, LocalStack, StackOptions

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REELHOOK = Path(sys.executable).parent / "reelhook"  # the README's .venv/bin/reelhook


def doctor_commands() -> list[str]:
    text = ROOT.joinpath("README.md").read_text()
    section = text[text.index("### Is my stack ready? `reelhook doctor`"):text.index("\n## Running it locally")]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert command.startswith(".venv/bin/reelhook doctor "), command
    command = command.replace(".venv/bin/reelhook", str(REELHOOK), 1)
    # A fresh shell with nothing of this process's environment but what is given.
    return subprocess.run(["bash", "-c", command], cwd=cwd, env={"PATH": "/usr/bin:/bin"} | env,  # noqa: S603, S607
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_readme_shows_the_deployed_and_the_local_form():
    commands = doctor_commands()
    assert sum("--stack-name reelhook" in c for c in commands) == 2
    assert sum("--env-file .reelhook/local.env" in c for c in commands) == 1
    assert ".reelhook/local.env" in ROOT.joinpath("local", "reelhook_local", "serve.py").read_text()


def test_every_doctor_command_of_the_readme_runs(tmp_path):
    with LocalStack(StackOptions(enforce_iam=True)) as stack:
        assert stack.resources is not None
        write_env_file(tmp_path / ".reelhook" / "local.env", local_env(stack, enforce_iam=True))
        # A stack named reelhook whose URLs are under .invalid, which never resolves: each probe is
        # refused by the SSRF guard before any connection.
        parameters = {"CallbackBaseUrl": "https://callbacks.invalid", "FreepikBaseUrl": "https://freepik.invalid",
                      "UniallBaseUrl": "https://uniall.invalid", "AihubmaxBaseUrl": "https://aihubmax.invalid",
                      "AlarmTopicArn": "", "SecretArnForTest": stack.resources.secret_id}
        stack.client("cloudformation").create_stack(StackName="reelhook", TemplateBody=json.dumps({
            "Parameters": {name: {"Type": "String", "Default": ""} for name in parameters},
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {"ApiUrl": {"Value": "https://api.invalid"}, "SecretArn": {"Value": {"Ref": "SecretArnForTest"}}},
        }), Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
        aws = LOCAL_CREDENTIALS | {"AWS_ENDPOINT_URL": stack.aws_endpoint}
        ran = 0
        for command in doctor_commands():
            if "--env-file" in command:
                run = shell(command, tmp_path, {})  # the env file alone says where everything is
                assert run.returncode == 0, (command, run.stdout, run.stderr)
                lines = run.stdout.splitlines()
                assert lines[0].startswith("reelhook doctor: local stack (.reelhook/local.env)")
                assert all(re.match(r"^(ok|warn|fail) ", line) or line.startswith(" ") for line in lines[1:]), lines
                assert [line.split()[0] for line in lines[1:] if not line.startswith(" ")].count("ok") == 8, lines
            else:
                run = shell(command, tmp_path, aws)
                assert run.returncode == 1, (command, run.stdout, run.stderr)  # the .invalid URLs
                if "--json" in command:
                    checks = {c["name"]: c for c in json.loads(run.stdout)["checks"]}
                    assert checks["stack"]["status"] == "ok"
                    assert {n for n in checks if n.endswith(" key")} == {"freepik key"}  # --provider freepik
                    assert "does not resolve" in checks["freepik key"]["message"]
                    assert checks["callback route"]["status"] == "fail"
                else:
                    assert run.stdout.startswith("reelhook doctor: stack reelhook (us-east-1)"), run.stdout
                    assert "uniall key" in run.stdout and "aihubmax key" in run.stdout
            ran += 1
    assert ran == 3
