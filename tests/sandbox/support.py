"""Shared pieces of the sandbox tests: constants, request bodies, a webhook receiver, helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

_LOCAL = Path(__file__).resolve().parents[2] / "local"
if str(_LOCAL) not in sys.path:
    sys.path.insert(0, str(_LOCAL))

from reelhook_local.sandbox import ProviderSandbox  # noqa: E402

STEP = 0.05
FREEPIK_KEY = "fp-test-key"
UNIALL_KEY = "ua-test-key"
AIHUBMAX_KEY = "ahm-test-key"
SECRET = "test-webhook-secret"
AUTH = {
    "freepik": {"x-freepik-api-key": FREEPIK_KEY},
    "uniall": {"Authorization": f"Bearer {UNIALL_KEY}"},
    "aihubmax": {"Authorization": f"Bearer {AIHUBMAX_KEY}"},
}
IMG = "https://example.com/ref-1.jpg"
IMG2 = "https://example.com/ref-2.jpg"
VID = "https://example.com/clip.mp4"

VEO_PATH = "/v1/ai/reference-to-video/veo-3-1"
WAN_PATH = "/v1/ai/reference-to-video/wan-2-7"
KLING_STATUS = "/v1/ai/reference-to-video/kling-v3-omni"
UNIALL_CREATE = "/v1/video/generations"
AIHUBMAX_CREATE = "/v1/videos/generations"

VEO_BODY = {
    "image_urls": [IMG, IMG2],
    "prompt": "The character walks through a city at night",
    "negative_prompt": "blurry",
    "resolution": "1080p",
    "aspect_ratio": "9:16",
    "generate_audio": True,
    "seed": 1,
}
WAN_BODY = {
    "prompt": "Image 1 dances while Video 1 plays guitar",
    "negative_prompt": "watermark",
    "image_urls": [{"url": IMG, "reference_voice": "https://example.com/voice.wav"}],
    "video_urls": [{"url": VID}],
    "start_image_url": IMG2,
    "aspect_ratio": "4:3",
    "resolution": "720P",
    "duration": 5,
    "seed": 2147483647,
    "additional_settings": {"prompt_extend": False},
}
KLING_BODY = {
    "prompt": "@Video1 but at sunset",
    "video_url": VID,
    "image_url": IMG,
    "duration": "15",
    "aspect_ratio": "auto",
    "cfg_scale": 0.5,
    "negative_prompt": "blur",
}
UNIALL_MINIMAL = {"model": "veo3.1-video-720p", "prompt": "a slow camera move"}
AIHUBMAX_BODY = {
    "model": "veo-3.1-reference-to-video",
    "prompt": "A woman walking through a garden",
    "reference_image_urls": [IMG],
    "duration": 8,
    "aspect_ratio": "9:16",
    "resolution": "4k",
    "generate_audio": True,
    "auto_fix_prompt": True,
    "safety_level": 3,
    "enhance_prompt": True,
    "person_generation": "allow_adult",
    "reference_image_type": "STYLE",
}

# (create path, body, status path prefix)
FREEPIK_CASES = {
    "veo": (VEO_PATH, VEO_BODY, VEO_PATH),
    "wan": (WAN_PATH, WAN_BODY, WAN_PATH),
    "kling-pro-documented": ("/v1/ai/video/kling-v3-omni-pro/video-reference", {**KLING_BODY, "cfg_scale": 2},
                             KLING_STATUS),
    "kling-pro-current": ("/v1/ai/reference-to-video/kling-v3-omni-pro", KLING_BODY, KLING_STATUS),
    "kling-std-current": ("/v1/ai/reference-to-video/kling-v3-omni-std", {"video_url": VID}, KLING_STATUS),
    "kling-std-current-full": ("/v1/ai/reference-to-video/kling-v3-omni-std", KLING_BODY, KLING_STATUS),
}


# -- a webhook receiver ---------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook endpoint that records what it gets and answers with queued statuses (then 200).

    ``respond``, if given, answers instead (status and JSON body); it runs outside the lock,
    so it may sleep to play a slow receiver.
    """

    def __init__(self, respond: Callable[[Received], tuple[int, Any]] | None = None) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []
        self.respond = respond
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver.lock:
                    receiver.received.append(hook)
                    status = receiver.answers.pop(0) if receiver.answers else 200
                answer = b""
                if receiver.respond is not None:
                    status, payload = receiver.respond(hook)
                    answer = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} webhooks, got {len(self.received)}")


# -- helpers ----------------------------------------------------------------------------------


def submit(client: httpx.Client, sandbox: ProviderSandbox, provider: str, path: str,
           body: dict[str, Any]) -> httpx.Response:
    return client.post(sandbox.base_url(provider) + path, json=body, headers=AUTH[provider])


def poll(client: httpx.Client, url: str, provider: str, done: Callable[[dict[str, Any]], bool],
         timeout: float = 5.0) -> list[dict[str, Any]]:
    """GET ``url`` until ``done(body)``; every body seen, in order."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(url, headers=AUTH[provider])
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if done(seen[-1]):
            return seen
        time.sleep(STEP / 5)
    raise AssertionError(f"never done; last body {seen[-1] if seen else None}")


def download(client: httpx.Client, url: str, sandbox: ProviderSandbox) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)
    assert hashlib.sha256(response.content).hexdigest() == sandbox.served_sha256
    return response.content


def verify_signature(secret: bytes, headers: dict[str, str], body: bytes) -> bool:
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(expected, value)
        for version, _, value in (entry.partition(",") for entry in headers["webhook-signature"].split())
    )


def freepik_done(body: dict[str, Any]) -> bool:
    return body["data"]["status"] in ("COMPLETED", "FAILED")

