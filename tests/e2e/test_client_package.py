"""clients/python installs on its own: a fresh virtualenv gets the client with httpx and pydantic
only (none of the server project), and `reelhook` without the [cli] extra says what to install."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"

CHECK = """
import importlib.util, json
import reelhook_client
from reelhook_client import Client
Client("https://api.example.com", auth=None).close()
print(json.dumps({name: importlib.util.find_spec(name) is not None
                  for name in ("reelhook", "reelhook_local", "boto3", "botocore", "click", "rich", "moto")}))
"""


def test_the_client_installs_alone_with_only_its_own_dependencies(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # uv from the project's venv (make installs it there), as make does.
    subprocess.run([sys.executable, "-m", "uv", "pip", "install", "-q", "--python", str(python), str(CLIENT)],  # noqa: S603
                   check=True, timeout=300, capture_output=True)
    found = subprocess.run([str(python), "-c", CHECK], check=True, timeout=60, capture_output=True, text=True)  # noqa: S603
    assert found.stdout.strip() == ('{"reelhook": false, "reelhook_local": false, "boto3": false, "botocore": false, '
                                    '"click": false, "rich": false, "moto": false}')
    without_cli = subprocess.run([str(env_dir / "bin" / "reelhook"), "models"], timeout=60,  # noqa: S603
                                 capture_output=True, text=True, check=False)
    assert without_cli.returncode == 1
    assert "pip install 'reelhook-client[cli]'" in without_cli.stderr and "Traceback" not in without_cli.stderr


def test_doctor_without_the_project_names_what_to_install(tmp_path: Path) -> None:
    """`pip install 'reelhook-client[cli]'` alone: `reelhook doctor` says it needs the reelhook
    package and boto3, and how to get them, instead of failing with a traceback."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    subprocess.run([sys.executable, "-m", "uv", "pip", "install", "-q", "--python", str(env_dir / "bin" / "python"),  # noqa: S603
                    f"{CLIENT}[cli]"], check=True, timeout=300, capture_output=True)
    doctor = subprocess.run([str(env_dir / "bin" / "reelhook"), "doctor", "--stack-name", "reelhook"],  # noqa: S603
                            timeout=60, capture_output=True, text=True, check=False)
    assert doctor.returncode == 2, doctor.stderr
    assert "needs the reelhook package (the project itself) and boto3" in doctor.stderr
    assert "pip install -e ." in doctor.stderr and "Traceback" not in doctor.stderr
