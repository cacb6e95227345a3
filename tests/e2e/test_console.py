"""The web console at /console, in real headless Chromium against the local stack.

The front checks SigV4 as deployed (``enforce_iam``), so every call the page makes is signed
in the browser. The provider sandbox has no clock: the test moves each task on itself, so
the job to cancel stays in flight for as long as the test needs. Chromium is Debian's
(``make chromium``), driven by playwright; ``make test`` installs it when missing.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials

from reelhook_client.auth import SigV4Auth
from reelhook_local.front import CONSOLE_DIR
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LOCAL_CREDENTIALS, LocalStack, StackOptions

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000  # generous: two shared cores, a stack and a browser
MODEL = "uniall/veo3.1-video-720p"
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> a cat on a piano'


def chromium_path() -> str:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make chromium` (`make test` does), which installs "
                    "Debian's package with apt-get", pytrace=False)
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    options = StackOptions(sandbox=SandboxConfig(step_seconds=None), schedule_seconds=0.3, enforce_iam=True)
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    auth = SigV4Auth(LOCAL_CREDENTIALS["AWS_REGION"], ReadOnlyCredentials(
        LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], None))
    with httpx.Client(base_url=stack.api_url, auth=auth, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, stack: LocalStack) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors


def wait_job(api: httpx.Client, job_id: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if check(job):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job_id}: {job.get('status')}")
        time.sleep(0.1)


def create(api: httpx.Client, prompt: str, reference: str) -> dict[str, Any]:
    answer = api.post("/v1/jobs", json={"model": MODEL, "prompt": prompt, "duration": 4, "client_reference": reference})
    assert answer.status_code == 202, answer.text
    return answer.json()


def job_id_from(page: Any) -> str:
    page.wait_for_url(re.compile(r"#/jobs/job_[0-9a-f]{32}$"))
    return page.url.rsplit("/", 1)[1]


def without_signature(url: str) -> tuple[str, str]:
    """A presigned URL's object (the signature and its date change with each read)."""
    parts = urlsplit(url)
    version = [q for q in parts.query.split("&") if q.startswith("versionId=")]
    return parts.netloc + parts.path, "".join(version)


def test_the_console_is_served_with_its_policy_and_the_front_says_how_to_sign(stack):
    index = httpx.get(f"{stack.api_url}/console/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert httpx.get(f"{stack.api_url}/console").headers["location"] == "/console/"
    config = httpx.get(f"{stack.api_url}/console/config.json").json()
    assert config == {"api_url": "", "auth": "iam", "iam": {"access_key": "local", "secret_key": "local",
                                                             "region": "us-east-1"}}
    assert httpx.get(f"{stack.api_url}/console/../template.yaml").status_code == 404
    assert httpx.get(f"{stack.api_url}/console/nothing.js").status_code == 404
    assert httpx.post(f"{stack.api_url}/console/").status_code == 405
    # The API stays behind IAM: the console's files do not open it.
    assert httpx.get(f"{stack.api_url}/v1/models").status_code == 403


def test_make_serve_prints_the_console_url(tmp_path):
    command = [sys.executable, "-u", "-m", "reelhook_local.serve", "--port", "0", "--aws-port", "0",
               "--sandbox-port", "0", "--env-file", str(tmp_path / "local.env")]
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # noqa: S603
    try:
        assert serve.stdout is not None
        lines = [serve.stdout.readline()]
        while lines[0] and not lines[0].startswith("reelhook API"):  # past the start steps
            lines = [serve.stdout.readline()]
        lines.append(serve.stdout.readline())
        api_url = lines[0].split()[-1]
        assert lines[1].split() == ["web", "console", f"{api_url}/console/"]
        page = httpx.get(f"{api_url}/console/", timeout=30)
        assert page.status_code == 200 and "console.js" in page.text
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)


def test_submit_shows_errors_by_their_fields_then_the_job_runs_to_a_playable_video(stack, api, page):
    page.goto(f"{stack.api_url}/console/#/new")
    page.wait_for_selector(f"#f-model option[value='{MODEL}']", state="attached")

    # A logical model's 422 names each route's objection next to the field.
    page.select_option("#f-model", "veo-3.1/reference-to-video")
    page.wait_for_selector("[data-field='routing.providers'] input[value='freepik']")
    page.fill("#f-prompt", "a lighthouse")
    page.click("#submit-job")
    errors = page.locator("[data-error-for='reference_images']")
    errors.locator("span").first.wait_for()
    assert "freepik/veo-3-1-reference-to-video: must hold 1 to 3 items" in errors.inner_text()
    assert "422 validation_error" in page.inner_text("#form-message")

    # A concrete model: an out-of-range seed is refused by the API and shown by the seed.
    page.select_option("#f-model", MODEL)
    page.wait_for_selector("#f-seed")
    assert page.locator("#f-duration option").all_inner_texts()[1:] == ["4", "6", "8"]
    page.fill("#f-prompt", XSS)
    page.select_option("#f-duration", "4")
    page.fill("#f-seed", "99999999999")
    page.fill("#f-client-reference", "console-form")
    page.click("#submit-job")
    page.locator("[data-error-for='seed'] span").wait_for()
    assert "must be between 0 and 4294967295" in page.inner_text("[data-error-for='seed']")
    assert page.locator("[data-field='seed'].invalid").count() == 1

    page.fill("#f-seed", "")
    page.click("#submit-job")
    job_id = job_id_from(page)
    job = wait_job(api, job_id, lambda j: j.get("provider_task_id"))
    assert job["request"] == {"model": MODEL, "prompt": XSS, "duration": 4, "client_reference": "console-form"}

    # The page follows the job as it moves on; the timeline grows with each event.
    page.wait_for_selector("#timeline .event[data-status='submitted']")
    stack.sandbox.force_status(job["provider_task_id"], "running")
    page.wait_for_selector("#timeline .event[data-status='running']")
    stack.sandbox.force_status(job["provider_task_id"], "completed")
    page.wait_for_selector(".bar .pill.s-succeeded")
    assert page.locator("#cancel").count() == 0  # finished: nothing to cancel
    job = api.get(f"/v1/jobs/{job_id}").json()
    statuses = page.locator("#timeline .event").evaluate_all("nodes => nodes.map(n => n.dataset.status)")
    assert statuses == [e["status"] for e in job["events"]]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    assert page.locator("#timeline .track .seg").count() == len(statuses)
    assert page.locator("#attempts tbody tr").count() == len(job["attempts"])

    # The prompt is text wherever it shows: no element was made from it, nothing ran.
    assert json.loads(page.inner_text("#request-json"))["prompt"] == XSS
    assert page.locator("img[src='x'], #view script").count() == 0
    assert page.evaluate("() => window.__xss") is None

    # The player plays the stored output; the poster is the first-frame JPEG.
    output = job["outputs"][0]
    video = page.locator("#outputs video")
    assert without_signature(video.get_attribute("src")) == without_signature(output["download_url"])
    assert without_signature(video.get_attribute("poster")) == without_signature(output["poster_url"])
    page.wait_for_function("() => document.querySelector('#outputs video').readyState >= 1")
    duration = page.evaluate("() => document.querySelector('#outputs video').duration")
    assert duration == pytest.approx(output["media"]["duration_s"], abs=0.1)
    page.evaluate("() => { const video = document.querySelector('#outputs video'); video.muted = true; return video.play(); }")
    page.wait_for_function("() => document.querySelector('#outputs video').currentTime > 0")
    page.wait_for_function("() => document.querySelector('#outputs img.poster').naturalWidth > 0")
    served = httpx.get(video.get_attribute("src"))
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    assert page.locator("#outputs a.download").get_attribute("href") == video.get_attribute("src")
    assert page.locator("#outputs a.download-poster").get_attribute("href") == video.get_attribute("poster")


def test_the_list_refreshes_by_itself_and_shows_prompts_as_text(stack, api, page):
    first = create(api, XSS, "console-list-1")
    page.goto(f"{stack.api_url}/console/")
    row = page.locator(f"tr[data-job='{first['id']}']")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[:4] == [first["id"], first["status"], MODEL, "uniall"]
    assert re.fullmatch(r"\d+ (s|min)", cells[4])
    assert cells[5] == XSS[:80] + "…"
    assert page.locator("img[src='x']").count() == 0 and page.evaluate("() => window.__xss") is None

    # A job made elsewhere appears without a reload, above the older one (newest first).
    second = create(api, "a second job", "console-list-2")
    page.locator(f"tr[data-job='{second['id']}']").wait_for()
    ids = page.locator("tr[data-job]").evaluate_all("rows => rows.map(r => r.dataset.job)")
    assert ids.index(second["id"]) < ids.index(first["id"])

    # Filters go to the API as query parameters.
    page.fill("input[name='client_reference']", "console-list-1")
    page.press("input[name='client_reference']", "Enter")
    page.wait_for_function(f"() => !document.querySelector(\"tr[data-job='{second['id']}']\")")
    assert page.locator(f"tr[data-job='{first['id']}']").count() == 1

    page.locator(f"tr[data-job='{first['id']}'] a").click()
    page.wait_for_url(re.compile(f"#/jobs/{first['id']}$"))
    page.wait_for_selector("#timeline .event")


def test_cancel_from_the_job_page(stack, api, page):
    job = create(api, "to be cancelled", "console-cancel")
    wait_job(api, job["id"], lambda j: j["status"] == "submitted")
    page.goto(f"{stack.api_url}/console/#/jobs/{job['id']}")
    page.wait_for_selector(".bar .pill.s-submitted")
    page.click("#cancel")
    page.wait_for_selector(".bar .pill.s-cancelled")
    assert page.locator("#cancel").count() == 0
    assert "provider's task may still run" in page.inner_text(".summary")
    assert api.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"


@pytest.fixture
def elsewhere() -> Iterator[str]:
    """The console's files on a plain static server of another origin, as a person would host them."""
    handler = functools.partial(QuietFiles, directory=str(CONSOLE_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_hosted_elsewhere_it_sends_a_bearer_token_kept_out_of_urls(browser, elsewhere, stack, api):
    """Against a deployed JWT stack: the API is stood in for by playwright, as API Gateway with
    CORS would answer; the token goes in the Authorization header only."""
    api_url = "https://api.reelhook.test"
    token = "eyJ.test-token.sig"
    models = api.get("/v1/models").json()
    seen: list[dict[str, Any]] = []
    cors = {"access-control-allow-origin": elsewhere, "content-type": "application/json"}

    def answer(route: Any) -> None:
        request = route.request
        seen.append({"method": request.method, "url": request.url, "headers": request.headers})
        if request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors | {"access-control-allow-headers": "authorization,content-type",
                                                      "access-control-allow-methods": "GET,POST"})
        elif urlsplit(request.url).path == "/v1/models":
            route.fulfill(status=200, headers=cors, body=json.dumps(models))
        else:
            route.fulfill(status=200, headers=cors, body=json.dumps({"jobs": [], "next_cursor": None}))

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.route(f"{api_url}/**", answer)
    try:
        page.goto(f"{elsewhere}/index.html")
        page.wait_for_selector("#settings:not([hidden])")  # no config.json there: it asks
        page.fill("#settings-form input[name='api_url']", api_url)
        page.select_option("#settings-form select[name='auth']", "bearer")
        page.fill("#settings-form input[name='token']", token)
        page.click("#settings-form button[type='submit']")
        page.wait_for_selector("tbody#jobs td.muted")  # "No jobs."
        page.goto(f"{elsewhere}/index.html#/new")  # a reload keeps the connection for the tab
        page.wait_for_selector(f"#f-model option[value='{MODEL}']", state="attached")
        calls = [s for s in seen if s["method"] != "OPTIONS"]
        assert {urlsplit(s["url"]).path for s in calls} >= {"/v1/jobs", "/v1/models"}
        assert all(s["headers"].get("authorization") == f"Bearer {token}" for s in calls)
        assert not any(token in s["url"] for s in seen) and token not in page.url
        stored = json.loads(page.evaluate("() => sessionStorage.getItem('reelhook.console.connection')"))
        assert stored["token"] == token and stored["auth"] == "bearer"
        assert page.evaluate("() => localStorage.length") == 0
    finally:
        context.close()
