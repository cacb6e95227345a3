"""reelhook_client against the local stack, real HTTP and SigV4 all the way: run, submit, wait,
get, download with its hash check, errors, the served OpenAPI document, and the README's examples."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reelhook_client import (
    AsyncClient,
    AuthError,
    Client,
    IntegrityError,
    Job,
    JobFailed,
    NotFound,
    SigV4Auth,
    ValidationFailed,
)
from reelhook_client.models import ProviderList
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LOCAL_CREDENTIALS, LocalStack, StackOptions
from reelhook_local.template import functions
from tests.openapi_drift import model_drift
from tests.unit.test_client_openapi import PENDING

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
IMG = "https://example.com/ref.png"
LIFECYCLE = ["queued", "submitted", "running", "storing", "succeeded"]
CREDENTIALS = {name: LOCAL_CREDENTIALS[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}


@pytest.fixture(scope="module")
def stack():
    # IAM enforced, as deployed: every request below is signed by the client.
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.1), enforce_iam=True, schedule_seconds=0.3,
                           reconcile_after_seconds=2)
    with LocalStack(options) as running:
        yield running


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def client(stack, aws_env):
    with Client(stack.api_url, auth="iam") as api:
        yield api


@pytest.fixture
def freepik_model(client: Client) -> str:
    """Freepik's Veo reference-to-video model, as the catalogue lists it."""
    [model] = [m for m in client.models() if m.id == "freepik/veo-3-1-reference-to-video"]
    assert model.provider == "freepik" and model.defaults["audio"].value is True
    return model.id


def test_run_gives_the_finished_job_with_its_stored_output(client: Client, stack, freepik_model: str) -> None:
    job = client.run(freepik_model, prompt="a walk through a neon city", reference_images=[IMG], resolution="1080p",
                     client_reference="client-run", poll_interval=0.2, timeout=60)
    assert job.succeeded and job.model == freepik_model and job.client_reference == "client-run"
    [output] = job.outputs
    assert output.sha256 == stack.sandbox.sha256_for(job.provider_task_id)
    assert output.media is not None and output.media.width > 0 and output.download_url
    assert job.effective and job.effective["resolution"] == "1080p"
    statuses = [e.status for e in job.events]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and statuses == sorted(statuses, key=LIFECYCLE.index)


def test_submit_wait_get_and_a_checked_download(client: Client, stack, freepik_model: str, tmp_path: Path) -> None:
    submitted = client.submit(freepik_model, idempotency_key="client-e2e-1", prompt="follow me",
                              reference_images=[IMG])
    assert submitted.status in {"queued", "submitted"}
    seen: list[str] = []
    done = client.wait(submitted, poll_interval=0.1, timeout=60, on_update=lambda job: seen.append(job.status))
    assert seen[0] == submitted.status and seen[-1] == "succeeded"
    assert seen == sorted(seen, key=LIFECYCLE.index)  # every change, in the order they happen
    read = client.get(done.id)
    assert read.status == "succeeded" and read.outputs[0].sha256 == done.outputs[0].sha256

    progress: list[tuple[int, int | None]] = []
    path = client.download(read, tmp_path, on_progress=lambda got, total: progress.append((got, total)))
    data = path.read_bytes()
    assert path == tmp_path / f"{done.id}.mp4" and hashlib.sha256(data).hexdigest() == done.outputs[0].sha256
    assert progress[-1] == (len(data), len(data)) and list(tmp_path.iterdir()) == [path]

    # A job whose recorded hash is not what the link serves: nothing written.
    wrong = read.model_copy(update={"outputs": [read.outputs[0].model_copy(update={"sha256": "0" * 64})]})
    with pytest.raises(IntegrityError):
        client.download(wrong, tmp_path / "other.mp4")
    assert list(tmp_path.iterdir()) == [path]
    # The same key and body again: the same job, not a second one.
    again = client.submit(freepik_model, idempotency_key="client-e2e-1", prompt="follow me", reference_images=[IMG])
    assert again.id == submitted.id


def test_refusals_are_typed_exceptions(client: Client, stack, freepik_model: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        client.submit(freepik_model, prompt="square", reference_images=[IMG], aspect_ratio="1:1")
    exc = caught.value
    assert exc.status == 422 and exc.code == "validation_error"
    assert exc.fields == exc.body["error"]["fields"] and "aspect_ratio" in {e.field for e in exc.errors}
    with pytest.raises(NotFound):
        client.get("job_" + "0" * 32)
    with pytest.raises(JobFailed) as failed:
        client.run(freepik_model, prompt="please FAIL_ME", reference_images=[IMG], poll_interval=0.2, timeout=60)
    assert failed.value.job.status == "failed" and failed.value.job.error.code == "provider_failed"
    with Client(stack.api_url, auth=None) as unsigned, pytest.raises(AuthError) as refused:
        unsigned.models()
    assert refused.value.status == 403


def test_the_async_client_does_the_same(stack, aws_env, tmp_path: Path) -> None:
    async def main() -> tuple[list[Job], Path]:
        async with AsyncClient(stack.api_url, auth="iam") as api:
            jobs = [await api.submit("uniall/veo3.1-video-720p", prompt=f"take {n}") for n in range(3)]
            done = await asyncio.gather(*(api.wait(job, poll_interval=0.2, timeout=60) for job in jobs))
            return list(done), await api.download(done[0], tmp_path)

    done, path = asyncio.run(main())
    assert [job.status for job in done] == ["succeeded"] * 3
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done[0].outputs[0].sha256


def test_the_models_match_the_openapi_document_the_stack_serves(stack, aws_env) -> None:
    signer = SigV4Auth(CREDENTIALS["AWS_REGION"])
    served = httpx.get(f"{stack.api_url}/v1/openapi.json", auth=signer, timeout=10).raise_for_status().json()
    assert model_drift(served, "JobOut", Job, pending=PENDING) == []
    assert model_drift(served, "ProviderHealth", ProviderList) == []


def test_providers_gives_each_providers_health(client: Client) -> None:
    found = {provider.name: provider for provider in client.providers()}
    assert set(found) == {"freepik", "aihubmax", "uniall"}
    freepik = found["freepik"]
    assert freepik.circuit.state in {"closed", "open", "half_open"} and freepik.circuit.consecutive_failures >= 0
    assert freepik.rate.requests_per_second and freepik.rate.requests_per_second > 0  # Freepik's documented limits
    assert found["uniall"].rate.requests_per_second is None  # no documented limit: none applied
    assert freepik.in_flight.tasks is not None and freepik.in_flight.cap is None


CLIENT_ROUTES = {f"{route.method} {route.path}" for fn in functions().values() for route in fn.routes}


@pytest.mark.skipif("GET /v1/jobs" not in CLIENT_ROUTES or "POST /v1/jobs/{id}/cancel" not in CLIENT_ROUTES,
                    reason="the stack has no job listing and cancelling yet (template.yaml)")
def test_list_and_cancel_on_the_stack(client: Client, freepik_model: str) -> None:
    marker = f"client-list-{os.getpid()}"
    stuck = client.submit(freepik_model, prompt="NEVER_FINISH", reference_images=[IMG], client_reference=marker)
    finished = client.run(freepik_model, prompt="quick", reference_images=[IMG], client_reference=marker,
                          poll_interval=0.2, timeout=60)
    listed = list(client.list(client_reference=marker, page_size=1))
    assert {job.id for job in listed} == {stuck.id, finished.id}
    cancelled = client.cancel(stuck.id)
    assert cancelled.status == "cancelled" and cancelled.cancellation is not None
    assert [job.id for job in client.list(client_reference=marker, status="cancelled")] == [stuck.id]


# -- the README ---------------------------------------------------------------------------------------


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readmes_python_client_examples_run_as_written(stack, tmp_path: Path) -> None:
    examples = readme_examples()
    assert len(examples) >= 2, "the README's Python client section lost its examples"
    # The environment the README gives (its CLI section's export line), nothing else of AWS.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    assert "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1" in (
        ROOT / "README.md").read_text()
    for number, example in enumerate(examples):
        assert "http://127.0.0.1:3000" in example  # `make serve`'s address, replaced by this stack's
        script = tmp_path / f"example_{number}.py"
        script.write_text(example.replace("http://127.0.0.1:3000", stack.api_url))
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,  # noqa: S603
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, f"example {number}:\n{example}\n{result.stdout}\n{result.stderr}"
        assert "succeeded" in result.stdout, result.stdout
        if "client.providers()" in example:
            assert "served by" in result.stdout, result.stdout
            printed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
            assert {"freepik", "aihubmax", "uniall"} <= printed, result.stdout
    videos = list(tmp_path.glob("job_*.mp4"))
    assert videos, "the first example downloads its video into the working directory"


def readme_cli_section() -> str:
    return (ROOT / "README.md").read_text().split("\n## CLI\n", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_cli_routing_commands_run_as_written(stack, tmp_path: Path) -> None:
    section = readme_cli_section()
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    [export] = [line for block in blocks for line in block.splitlines() if line.startswith("export ")]
    [block] = [b for b in blocks if "reelhook providers" in b]
    reelhook = Path(sys.executable).with_name("reelhook")
    # The README's own lines; only the address is this stack's (the CLI's default is `make serve`'s).
    script = "set -euo pipefail\n" + export + "\n" + block.replace(".venv/bin/reelhook", str(reelhook))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REELHOOK_"))} | {
        "REELHOOK_API_URL": stack.api_url}
    stack.sandbox.config.faults.fail_submits_for["freepik"] = [402]  # out of credit: the job fails over
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,  # noqa: S603, S607
                            timeout=180, check=False)
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    out = result.stdout
    assert "served by aihubmax aihubmax/veo-3.1-reference-to-video" in out, out
    [refused] = [line for line in out.splitlines() if "rejected" in line]
    assert refused.split()[0] == "freepik" and "402" in refused
    table, raw = out.split('{\n  "providers"', 1)
    assert {"freepik", "aihubmax", "uniall"} <= {line.split()[0] for line in table.splitlines() if line.strip()}
    providers = json.loads('{"providers"' + raw)["providers"]
    freepik = next(p for p in providers if p["name"] == "freepik")
    assert freepik["circuit"]["consecutive_failures"] >= 1  # the 402 counted against Freepik
