"""`reelhook jobs`, `cancel` and `providers` (and the job view's routing) against the in-memory API."""

from __future__ import annotations

import functools
import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

import reelhook_cli.main as cli_main
from reelhook_cli.main import cli
from reelhook_client import Client
from tests.client_fake import PROVIDERS, VEO, FakeApi, stamp

IMG = "https://example.com/ref.png"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    api = FakeApi()
    monkeypatch.setattr(cli_main, "Client", functools.partial(Client, transport=api.transport()))
    return api


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"REELHOOK_API_URL": "http://127.0.0.1:9", "COLUMNS": "200"},
                              catch_exceptions=False)


def make_jobs(fake: FakeApi, count: int) -> list[str]:
    with Client("http://127.0.0.1:9", auth=None, transport=fake.transport()) as client:
        return [client.submit(VEO, prompt=f"p{n}", reference_images=[IMG], client_reference=f"ref-{n}").id
                for n in range(count)]


def test_jobs_shows_a_table_of_the_matching_jobs(fake: FakeApi) -> None:
    ids = make_jobs(fake, 3)
    result = run("jobs")
    assert result.exit_code == 0, result.output
    for job_id in ids:
        assert job_id in result.stdout
    assert "queued" in result.stdout and "ref-2" in result.stdout and VEO in result.stdout
    assert "more:" not in result.stdout


def test_jobs_json_pages_on_with_the_cursor_it_prints(fake: FakeApi) -> None:
    ids = make_jobs(fake, 5)
    first = run("jobs", "--limit", "2", "--json")
    assert first.exit_code == 0, first.output
    page = json.loads(first.stdout)
    assert [j["id"] for j in page["jobs"]] == ids[:2] and page["next_cursor"] == "c2"
    assert page["jobs"][0] == fake.view(ids[0])  # each job exactly as the API gave it
    rest = json.loads(run("jobs", "--cursor", page["next_cursor"], "--limit", "10", "--json").stdout)
    assert [j["id"] for j in rest["jobs"]] == ids[2:] and rest["next_cursor"] is None
    table = run("jobs", "--limit", "2")
    assert "more: reelhook jobs --cursor c2 --limit 2" in table.stdout


def test_jobs_all_follows_every_page(fake: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = make_jobs(fake, 5)
    monkeypatch.setattr(cli_main, "PAGE_SIZE", 2)
    result = run("jobs", "--all", "--json")
    assert [j["id"] for j in json.loads(result.stdout)["jobs"]] == ids
    assert [p.url.params.get("cursor") for p in fake.calls("GET", "/v1/jobs")] == [None, "c2", "c4"]


def test_jobs_sends_the_filters(fake: FakeApi) -> None:
    make_jobs(fake, 3)
    result = run("jobs", "--status", "queued", "--model", VEO, "--provider", "freepik", "--client-reference", "ref-1",
                 "--created-after", "2026-03-01T12:00:01", "--created-before", stamp(9), "--json")
    assert result.exit_code == 0, result.output
    assert [j["client_reference"] for j in json.loads(result.stdout)["jobs"]] == ["ref-1"]
    [sent] = fake.calls("GET", "/v1/jobs")
    assert dict(sent.url.params) == {"status": "queued", "model": VEO, "provider": "freepik",
                                     "client_reference": "ref-1", "created_after": "2026-03-01T12:00:01.000Z",
                                     "created_before": "2026-03-01T12:00:09.000Z", "limit": "20"}
    bad = run("jobs", "--created-after", "yesterday")
    assert bad.exit_code == 2 and "ISO 8601" in bad.stderr


def test_jobs_on_an_api_without_listing_says_so(fake: FakeApi) -> None:
    # The route missing, as on a stack from before listing.
    fake.fault("/v1/jobs", httpx.Response(404, json={"message": "Not Found"}))
    result = run("jobs", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stderr)["error"]
    assert "cannot list jobs" in error["message"] and error["http_status"] == 404


def test_cancel_a_job_in_flight(fake: FakeApi) -> None:
    [job_id] = make_jobs(fake, 1)
    result = run("cancel", job_id)
    assert result.exit_code == 0, result.output
    assert f"cancelled {job_id}" in result.stdout and "may still run" in result.stdout
    shown = run("status", job_id)
    assert "cancelled" in shown.stdout and "the provider's task may still run" in shown.stdout
    waited = run("wait", job_id, "--timeout", "1")
    assert waited.exit_code == 1 and f"job {job_id} was cancelled" in waited.stderr


def test_cancel_refuses_a_finished_or_unknown_job(fake: FakeApi) -> None:
    [job_id] = make_jobs(fake, 1)
    fake.finish_all()
    refused = run("cancel", job_id, "--json")
    assert refused.exit_code == 1
    error = json.loads(refused.stderr)["error"]
    assert error["code"] == "job_finished" and error["http_status"] == 409
    plain = run("cancel", job_id)
    assert "job_finished" in plain.stderr and plain.stderr.startswith("Error: ")
    missing = run("cancel", "job_" + "9" * 32)
    assert missing.exit_code == 1 and f"no job job_{'9' * 32}" in missing.stderr


def test_status_shows_the_route_and_attempts_when_the_api_gives_them(fake: FakeApi) -> None:
    [job_id] = make_jobs(fake, 1)
    extra: dict[str, Any] = {
        "route": {"provider": "freepik", "model": VEO},
        "attempts": [{"provider": "uniall", "model": "uniall/veo3.1-video-720p", "task_id": None,
                      "outcome": "refused", "started_at": stamp(1), "ended_at": stamp(2), "reason": "busy"}],
    }
    fake.jobs[job_id] |= extra
    result = run("status", job_id)
    assert result.exit_code == 0, result.output
    assert f"freepik {VEO}" in result.stdout and "refused" in result.stdout and "busy" in result.stdout


def test_wait_rides_out_an_outage_longer_than_the_clients_retries(fake: FakeApi, monkeypatch) -> None:
    import reelhook_client.client as client_module
    from tests.unit.test_client import FakeTime

    clock = FakeTime()
    monkeypatch.setattr(client_module, "time", clock)
    monkeypatch.setattr(cli_main, "time", clock)
    [job_id] = make_jobs(fake, 1)
    run("status", job_id)  # submitted now
    refused = [httpx.ConnectError("refused")] * (cli_main.RETRIES + 1)  # one whole get(), every retry refused
    fake.fault(f"/v1/jobs/{job_id}", *refused)
    result = run("wait", job_id, "--interval", "1")
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stdout
    before = len(fake.calls("GET", f"/v1/jobs/{job_id}"))
    fake.fault(f"/v1/jobs/{job_id}", *[httpx.ConnectError("refused")] * 50)
    down = run("wait", job_id)  # the API stays down: the wait gives up after MAX_POLL_FAILURES spells
    assert down.exit_code == 3 and "not reachable" in down.stderr
    tries = cli_main.MAX_POLL_FAILURES * (cli_main.RETRIES + 1)
    assert len(fake.calls("GET", f"/v1/jobs/{job_id}")) - before == tries


LOGICAL = "veo-3.1/reference-to-video"
AIHUBMAX = "aihubmax/veo-3.1-reference-to-video"


def failed_over(fake: FakeApi, job_id: str) -> None:
    """The job as a logical-model job that Freepik refused (out of credit) and AIHubMax took."""
    fake.jobs[job_id] |= {
        "model": LOGICAL, "provider": "aihubmax", "route": {"provider": "aihubmax", "model": AIHUBMAX},
        "attempts": [
            {"provider": "freepik", "model": VEO, "task_id": None, "outcome": "rejected", "started_at": stamp(1),
             "ended_at": stamp(1), "reason": "freepik refused the submit (402): not enough credits"},
            {"provider": "aihubmax", "model": AIHUBMAX, "task_id": "task-1", "outcome": "submitted",
             "started_at": stamp(2), "ended_at": None, "reason": None}],
        "routes_skipped": [{"model": "uniall/veo3.1-video-1080p", "provider": "uniall", "reasons": [
            {"field": "reference_images", "message": "must hold 2 to 3 items, got 1"}]}],
    }


def test_wait_shows_the_route_that_served_the_job_its_attempts_and_the_skipped_routes(fake: FakeApi) -> None:
    [job_id] = make_jobs(fake, 1)
    failed_over(fake, job_id)
    result = run("wait", job_id, "--interval", "0.1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"served by aihubmax {AIHUBMAX}" in out
    lines = out.splitlines()
    [refused] = [line for line in lines if "rejected" in line]
    assert "freepik" in refused and VEO in refused and "not enough credits" in refused
    assert any("aihubmax" in line and AIHUBMAX in line and "submitted" in line for line in lines)
    [skipped] = [line for line in lines if "uniall/veo3.1-video-1080p" in line]
    assert "reference_images: must hold 2 to 3 items, got 1" in skipped
    shown = run("status", job_id)
    assert "routes skipped" in shown.stdout and "must hold 2 to 3 items" in shown.stdout
    assert "not enough credits" in shown.stdout and "task-1" in shown.stdout


def test_a_failed_waits_attempts_go_to_stderr_before_the_verdict(fake: FakeApi) -> None:
    [job_id] = make_jobs(fake, 1)
    fake.jobs[job_id]["fail"] = True
    failed_over(fake, job_id)
    result = run("wait", job_id, "--interval", "0.1")
    assert result.exit_code == 1
    assert "not enough credits" in result.stderr and "routes skipped" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith(f"Error: job {job_id} failed: provider_failed")


def test_a_job_one_route_served_first_time_shows_no_routing(fake: FakeApi) -> None:
    [job_id] = make_jobs(fake, 1)
    fake.jobs[job_id] |= {"attempts": [{"provider": "freepik", "model": VEO, "outcome": "submitted"}]}
    result = run("wait", job_id, "--interval", "0.1")
    assert result.exit_code == 0, result.output
    assert "attempts" not in result.stdout and "served by" not in result.stdout


def test_providers_shows_each_circuit_budget_and_tasks_in_flight(fake: FakeApi) -> None:
    result = run("providers")
    assert result.exit_code == 0, result.output
    [freepik] = [line for line in result.stdout.splitlines() if line.lstrip().startswith("freepik")]
    assert "open (5 failures in a row) until 2026-01-01T00:01:00.500Z" in freepik
    assert "9.5" in freepik and "0.2 s" in freepik and "3 of 50" in freepik
    [uniall] = [line for line in result.stdout.splitlines() if line.lstrip().startswith("uniall")]
    assert "closed" in uniall and "unlimited" in uniall and "0 (no cap)" in uniall
    raw = run("providers", "--json")
    assert raw.exit_code == 0 and json.loads(raw.stdout) == PROVIDERS  # as the API sent it
