"""A named list of crafted hostile requests against every HTTP route, through the Lambda handlers.

Each case is an API Gateway HTTP API (v2) event sent to the function the template routes it
to, against moto and the provider sandbox. For every case:

- the answer is below 500 (an exception escaping the handler counts as a 500);
- a refused (4xx) request changes nothing: the table's items, the bucket's object versions,
  every queue's depth and the provider tasks are the same before and after;
- an error answer is small JSON naming an error code.

Cases for routes the template does not have yet (``GET /v1/jobs``, ``POST /v1/jobs/{id}/cancel``)
are skipped until those routes land, then run like the rest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from reelhook_local.aws_resources import StackResources
from reelhook_local.sandbox import ProviderSandbox, SandboxConfig
from reelhook_local.template import functions
from tests.conftest import Context, moto_stack

MAX_ERROR_BYTES = 64 * 1024
MIN_CASES = 200
ROUTES: dict[str, str] = {f"{r.method} {r.path}": fid.removesuffix("Function").lower()
                          for fid, fn in functions().items() for r in fn.routes}
CALLBACK = "POST /v1/callbacks/{provider}/{job_id}"
FUTURE_ROUTES = {"GET /v1/jobs", "POST /v1/jobs/{id}/cancel"}  # another change adds these


# ---------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One crafted request. ``@FP_JOB@``-style markers (see ``Targets``) are filled in at run time.

    ``body``: text is sent as is; bytes are sent base64-encoded (``isBase64Encoded``), as API
    Gateway does for binary bodies. ``raw_base64`` puts a string in the body with the flag set,
    whether or not it is base64. ``token``: ``"valid"`` is the right callback token for the
    path's provider and job. ``sign``: a Freepik signature over the body, ``"valid"`` with the
    sandbox's secret, ``"forged"`` with another, ``"stale"``/``"future"`` a valid one an hour off.
    """

    name: str
    route: str
    path: str
    body: str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] | None = None
    raw_query: str | None = None
    path_params: dict[str, str] | None = None
    no_path_params: bool = False
    raw_base64: str | None = None
    token: str | None = None
    sign: str | None = None
    expect: frozenset[int] | None = None  # None: any status below 500


def case(name: str, route: str, path: str, *, expect: int | set[int] | None = None, **kw: Any) -> Case:
    wanted = None if expect is None else frozenset({expect} if isinstance(expect, int) else expect)
    return Case(name, route, path, expect=wanted, **kw)


VEO: dict[str, Any] = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "a cat on a skateboard",
                       "reference_images": ["https://example.com/cat.png"], "resolution": "720p"}
WAN = "freepik/wan-2-7-reference-to-video"
DEEP = 10_000


def veo(**changes: Any) -> str:
    return json.dumps(VEO | changes)


def with_raw(field_name: str, raw: str) -> str:
    """VEO with one field's value spliced in as raw text (for what json.dumps cannot write)."""
    return veo(**{field_name: "@RAW@"}).replace('"@RAW@"', raw)


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def unknown_fields(total_bytes: int) -> str:
    parts, size, i = [], 0, 0
    while size < total_bytes:
        part = f'"unknown_field_{i:07d}":1'
        parts.append(part)
        size += len(part) + 1
        i += 1
    return '{"model":"freepik/veo-3-1-reference-to-video","prompt":"p",' + ",".join(parts) + "}"


def api_cases() -> list[Case]:
    post = "POST /v1/jobs"
    out: list[Case] = []

    def add(name: str, body: str | bytes | None, expect: int | set[int] | None = None, **kw: Any) -> None:
        out.append(case(f"jobs-post/{name}", post, "/v1/jobs", body=body, expect=expect, **kw))

    # Structure, depth and size: limits apply before parsing.
    add("deep-arrays", "[" * DEEP + "]" * DEEP, 400)
    add("deep-objects", nested(DEEP), 400)
    add("deep-unclosed", "[" * 100_000, 400)
    add("deep-in-options", veo(options="@X@").replace('"@X@"', nested(40)), 400)
    add("deep-in-prompt-string-is-text", veo(prompt="[" * 5000 + "{" * 5000))
    add("escaped-quote-then-brackets", veo(prompt='\\"' + "[" * 3000))
    add("1.4mb-unknown-fields", unknown_fields(1_400_000), 413)
    add("250kb-unknown-fields", unknown_fields(250_000), 422)
    add("300kb-prompt", veo(prompt="x" * 300_000), 413)
    add("200kb-prompt", veo(prompt="x" * 200_000), 422)
    add("200kb-field-name", json.dumps(VEO | {"k" * 200_000: 1}), 422)
    add("50k-reference-images", veo(reference_images=["https://example.com/a.png"] * 5_000), 422)
    add("empty-body", "", 400)
    add("no-body", None, 400)
    add("whitespace-body", " \n\t ", 400)
    for literal in ("null", "true", "false", "0", '"a string"', "[]", "[{}]", json.dumps([VEO])):
        add(f"top-level-{hashlib.sha1(literal.encode()).hexdigest()[:6]}-not-object", literal, 400)  # noqa: S324
    add("trailing-garbage", veo() + "garbage", 400)
    add("two-documents", veo() + veo(), 400)
    add("truncated", veo()[:-5], 400)
    add("nul-outside-strings", veo()[:1] + "\x00" + veo()[1:], 400)
    add("comments", "/* c */" + veo(), 400)
    add("single-quotes", "{'model': 'x'}", 400)
    add("trailing-comma", veo()[:-1] + ",}", 400)
    add("unquoted-key", "{model: 1}", 400)

    # Numbers: DynamoDB's range and digits, and what is not JSON at all.
    for name, raw in [("1e-300", "1e-300"), ("1e400", "1e400"), ("-1e400", "-1e400"), ("1e126", "1e126"),
                      ("-1e-131", "-1e-131"), ("45-digits", "1" * 45), ("10000-digits", "9" * 10_000),
                      ("39-significant-decimal", "1." + "1" * 38)]:
        add(f"seed-{name}", with_raw("seed", raw), 422)
        add(f"options-{name}", with_raw("options", '{"x": ' + raw + "}"), 422)
    for name in ("NaN", "Infinity", "-Infinity"):
        add(f"seed-{name}", with_raw("seed", name), 400)
        add(f"deep-field-{name}", with_raw("options", '{"a": [' + name + "]}"), 400)
    add("seed-1e38-float", with_raw("seed", "1e38"), 422)
    add("seed-half", with_raw("seed", "0.5"), 422)
    add("seed-negative", with_raw("seed", "-1"), 422)
    add("seed-2^64", with_raw("seed", str(2**64)), 422)
    add("seed-bool", with_raw("seed", "true"), 422)
    add("seed-string", with_raw("seed", '"3"'), 422)
    add("seed-minus-zero", with_raw("seed", "-0"))
    add("duration-superscript", json.dumps(VEO | {"model": WAN, "duration": "²"}), 422)
    add("duration-arabic-indic", json.dumps(VEO | {"model": WAN, "duration": "٣"}), 422)
    add("duration-fullwidth", json.dumps(VEO | {"model": WAN, "duration": "\uff15"}), 422)
    add("duration-1e-300", json.dumps(VEO | {"model": WAN}).replace("}", ', "duration": 1e-300}'), 422)
    add("prompt-number", veo(prompt=12), 422)

    # Duplicate keys, encodings, BOMs.
    add("duplicate-model-key", veo().replace("{", '{"model": "nope", ', 1))
    add("duplicate-model-last-bad", veo()[:-1] + ', "model": "nope"}', 422)
    add("utf8-bom-bytes", b"\xef\xbb\xbf" + veo().encode(), 400)
    add("utf8-bom-text", "\ufeff" + veo(), 400)
    add("invalid-utf8", b'{"model": "\xff\xfe", "prompt": "p"}', 400)
    add("overlong-utf8", b'{"model": "\xc0\xaf"}', 400)
    add("utf16", veo().encode("utf-16"), 400, headers={"content-type": "application/json; charset=utf-16"})
    add("latin1-prompt", json.dumps(VEO | {"prompt": "café"}, ensure_ascii=False).encode("latin-1"), 400)
    add("lone-surrogate-prompt", with_raw("prompt", '"\\ud800"'), 422)
    add("lone-surrogate-key", veo()[:-1] + ', "\\udfff": 1}', 422)
    add("lone-surrogate-url", with_raw("reference_images", '["https://example.com/\\ud800.png"]'), 422)
    add("lone-surrogate-host", with_raw("reference_images", '["https://ex\\ud800ample.com/a.png"]'), 422)
    add("nul-in-prompt", veo(prompt="a\u0000b"))
    add("emoji-rtl-zero-width-prompt", veo(prompt="🐈\u202e\u200b\u2066 cat"))
    add("prompt-over-limit", veo(prompt="x" * 20_001), 422)

    # Wrong types where objects or lists are expected, and odd models.
    add("model-100kb", veo(model="m" * 100_000), 422)
    add("model-lookalike-cyrillic", veo(model="freepik/ve\u043e-3-1-reference-to-video"), 422)
    for name, value in [("null", None), ("number", 1), ("list", ["x"]), ("object", {"id": "x"})]:
        add(f"model-{name}", veo(model=value), 422)
    add("options-list", veo(options=[]), 422)
    add("options-string", veo(options="x"), 422)
    add("routing-list", veo(model="veo-3.1/reference-to-video", routing=[]), 422)
    add("routing-hostile", veo(model="veo-3.1/reference-to-video", routing={"order": ["x" * 1000] * 100}), 422)
    add("reference-images-object", veo(reference_images={"url": "https://example.com/a.png"}))
    add("reference-images-string", veo(reference_images="https://example.com/a.png"))
    for name, value in [("empty-object", [{}]), ("nested-list", [["https://example.com/a.png"]]),
                        ("null", [None]), ("number", [1]), ("voice-object", [{"url": 1, "voice_url": []}])]:
        add(f"reference-images-{name}", veo(reference_images=value), 422)

    # URLs that do not parse, are not public, or are built to trip parsers.
    for name, url in [
        ("port-out-of-range", "https://example.com:99999/a.png"),
        ("port-not-number", "https://example.com:abc/a.png"),
        ("unclosed-ipv6", "https://[::1/a.png"),
        ("bad-ipv6", "https://[zz::1]/a.png"),
        ("ipv6-zone", "https://[fe80::1%25eth0]/a.png"),
        ("userinfo", "https://user:pass@example.com/a.png"),
        ("space-in-host", "https://exa mple.com/a.png"),
        ("label-over-63", "https://" + "a" * 64 + ".com/a.png"),
        ("host-over-253", "https://" + ".".join(["a" * 60] * 5) + "/a.png"),
        ("empty-label", "https://a..b/a.png"),
        ("idn-invalid", "https://xn--/a.png"),
        ("idn-bad-punycode", "https://xn--zz-ÿ.com/a.png"),
        ("no-host", "https:///a.png"),
        ("scheme-only", "https://"),
        ("javascript", "javascript:alert(1)"),
        ("file", "file:///etc/passwd"),
        ("metadata", "https://169.254.169.254/latest/meta-data/"),
        ("decimal-ip", "https://2852039166/a.png"),
        ("octal-ip", "https://0251.0376.0251.0376/a.png"),
        ("zero-ip", "https://0/a.png"),
        ("crlf", "https://example.com/a.png\r\nX-Injected: 1"),
        ("nul", "https://example.com/a\u0000.png"),
        ("10kb-url", "https://example.com/" + "a" * 10_000 + ".png"),
        ("backslash", "https://example.com\\@169.254.169.254/a.png"),
        ("s3-traversal", "s3://reelhook-videos/inputs/../../secret"),
        ("s3-no-key", "s3://"),
        ("s3-long-key", "s3://@BUCKET@/inputs/" + "k" * 2_000),
        ("s3-nul-key", "s3://@BUCKET@/inputs/a\u0000b"),
        ("s3-bad-bucket", "s3://Not_A..Bucket/inputs/a.png"),
    ]:
        add(f"url-{name}", veo(reference_images=[url]), 422)
    for name, url in [("metadata", "https://169.254.169.254/"), ("port-out-of-range", "https://example.com:0/"),
                      ("unclosed-ipv6", "https://[::1/"), ("label-over-63", "https://" + "b" * 64 + ".com/"),
                      ("ftp", "ftp://example.com/"), ("number", 1), ("list", ["https://example.com/"])]:
        add(f"notify-url-{name}", json.dumps(VEO | {"notify_url": url}), 422)

    # Content types: only JSON is taken (415 otherwise).
    for name, value in [("text-plain", "text/plain"), ("form", "application/x-www-form-urlencoded"),
                        ("multipart", "multipart/form-data; boundary=x"), ("xml", "application/xml"),
                        ("jsonp", "application/jsonp"), ("empty", ""), ("semicolon-only", ";"),
                        ("10kb", "application/" + "x" * 10_000), ("unicode", "application/jsön"),
                        ("json-in-parameter", "text/plain; x=application/json")]:
        add(f"content-type-{name}", veo(), 415, headers={"content-type": value})
    add("content-type-upper-case", veo(), None, headers={"content-type": "APPLICATION/JSON"})
    add("content-type-vendor-json", veo(), None, headers={"content-type": "application/vnd.x+json"})

    # Idempotency-Key oddities and hostile headers.
    for name, key in [("empty", ""), ("256-chars", "k" * 256), ("10kb", "k" * 10_000), ("unicode", "clé"),
                      ("nul", "a\x00b"), ("space", "a b"), ("tab", "a\tb"), ("newline", "a\nb"), ("trailing-newline", "key\n"),
                      ("del", "a\x7fb")]:
        add(f"idempotency-key-{name}", veo(), 400, headers={"idempotency-key": key})
    add("idempotency-key-hash-namespace", veo(prompt="ns"), None, headers={"idempotency-key": "inbox#x/y.json"})
    add("idempotency-key-joined-duplicates", veo(prompt="dup"), None, headers={"idempotency-key": "k1,k2"})
    add("header-32kb", veo(prompt="big header"), None, headers={"x-junk": "j" * 32_000})
    add("500-headers", veo(prompt="many headers"), None, headers={f"x-h{i}": "v" for i in range(500)})
    add("header-unicode", veo(prompt="unicode header"), None, headers={"x-name": "\u202e\U0001f408"})

    # Base64-encoded bodies.
    add("base64-not-base64", None, 400, raw_base64="!!! not base64 !!!")
    add("base64-bad-padding", None, 400, raw_base64=base64.b64encode(veo().encode()).decode()[:-3])
    add("base64-invalid-utf8", b"\xff\xfe\xfd", 400)
    add("base64-deep", ("[" * DEEP).encode(), 400)
    add("base64-empty", None, 400, raw_base64="")
    add("base64-valid-json", veo(prompt="sent as base64").encode(), 202)
    add("query-string-on-post", veo(prompt="query"), None, query={"model": "nope", "x": "y" * 5000})
    return out


def get_job_cases() -> list[Case]:
    route = "GET /v1/jobs/{id}"
    out: list[Case] = []
    for name, job_id in [
        ("unknown-well-formed", "@MISSING_JOB@"), ("upper-case-hex", "@FP_JOB_UPPER@"),
        ("trailing-newline", "@FP_JOB@\n"), ("trailing-nul", "@FP_JOB@\x00"), ("10kb", "job_" + "a" * 10_000),
        ("traversal", "..%2F..%2Fetc%2Fpasswd"), ("dot-dot", ".."), ("encoded-dots", "%2e%2e"),
        ("fullwidth-digits", "job_" + "\uff10" * 32), ("arabic-digits", "job_" + "٣" * 32), ("emoji", "job_🐈"),
        ("hash-key", "job#job_x"), ("proto", "__proto__"), ("sql", "' OR 1=1 --"), ("space", "job_ x"),
        ("one-char", "j"), ("lone-surrogate", "job_\ud800"), ("percent-encoded-nul", "job_%00"),
    ]:
        out.append(case(f"jobs-get/{name}", route, f"/v1/jobs/{job_id}", path_params={"id": job_id},
                        expect={200, 404} if name == "trailing-newline" else 404))
    out.append(case("jobs-get/body-on-get", route, "/v1/jobs/@FP_JOB@", body=nested(DEEP), expect=200))
    out.append(case("jobs-get/invalid-base64-body", route, "/v1/jobs/@FP_JOB@", raw_base64="!!!", expect=200))
    out.append(case("jobs-get/query-hostile", route, "/v1/jobs/@FP_JOB@",
                    query={"fields": "[" * 5000, "\x00": "\ud800"}, expect=200))
    out.append(case("jobs-get/header-32kb", route, "/v1/jobs/@FP_JOB@", headers={"x-junk": "j" * 32_000},
                    expect=200))
    out.append(case("jobs-get/content-type-text", route, "/v1/jobs/@FP_JOB@", headers={"content-type": "text/html"},
                    expect=200))
    out.append(case("jobs-get/extra-segment", route, "/v1/jobs/@FP_JOB@/extra", no_path_params=True, expect=404))
    out.append(case("jobs-get/no-path-params", route, "/v1/jobs/", no_path_params=True, expect=404))
    return out


def catalog_cases() -> list[Case]:
    out: list[Case] = []
    for route, path in [("GET /v1/models", "/v1/models"), ("GET /v1/providers", "/v1/providers"),
                        ("GET /v1/openapi.json", "/v1/openapi.json")]:
        short = path.rsplit("/", 1)[1]
        for name, kw in [
            ("query-hostile", {"query": {"model": "[" * 10_000, "limit": "1e400", "x": "\ud800"}}),
            ("raw-query-10kb", {"raw_query": "a=" + "%00" * 3_000 + "&a=b&&&=&%zz"}),
            ("header-32kb", {"headers": {"x-junk": "j" * 32_000}}),
            ("accept-html", {"headers": {"accept": "text/html", "accept-encoding": "br;q=1e400"}}),
            ("body-deep", {"body": nested(DEEP)}),
            ("invalid-base64-body", {"raw_base64": "!!!"}),
            ("content-type-text", {"headers": {"content-type": "text/plain"}, "body": "hello"}),
            ("if-none-match-junk", {"headers": {"if-none-match": '"' * 1000, "range": "bytes=-1-"}}),
        ]:
            out.append(case(f"{short}/{name}", route, path, expect=200, **kw))
    return out


def signed(body: str | bytes, **kw: Any) -> dict[str, Any]:
    return {"body": body, "token": "valid", "sign": "valid"} | kw


def fp_status(status: str = "IN_PROGRESS", **extra: Any) -> str:
    return json.dumps({"task_id": "@FP_TASK@", "status": status} | extra)


def callback_cases() -> list[Case]:
    out: list[Case] = []

    def add(name: str, provider: str, job: str, expect: int | set[int] | None = None, **kw: Any) -> None:
        params = {"provider": provider, "job_id": job}
        out.append(case(f"callback/{name}", CALLBACK, f"/v1/callbacks/{provider}/{job}", path_params=params,
                        expect=expect, **kw))

    completed = fp_status("COMPLETED", generated=["https://cdn.example.com/v.mp4"])
    # Forged or unauthenticated callbacks for each provider's real job: refused, nothing changes.
    for provider, job, task in [("freepik", "@FP_JOB@", "@FP_TASK@"), ("aihubmax", "@AH_JOB@", "@AH_TASK@"),
                                ("uniall", "@UA_JOB@", "@UA_TASK@")]:
        done = json.dumps({"task_id": task, "id": task, "status": "COMPLETED", "generated": ["https://x.example/v.mp4"],
                           "results": ["https://x.example/v.mp4"], "video_url": "https://x.example/v.mp4"})
        for name, token in [("no-token", None), ("wrong-token", "AAAA"), ("empty-token", ""),
                            ("10kb-token", "t" * 10_000), ("unicode-token", "tökén\u202e"),
                            ("other-jobs-token", "@TOKEN_OTHER_JOB@"), ("other-providers-token", "@TOKEN_OTHER_PROVIDER@"),
                            ("joined-tokens", "@TOKEN_VALID@,AAAA")]:
            add(f"{provider}/{name}", provider, job, {401, 404}, body=done, token=token)
        add(f"{provider}/1.4mb-body", provider, job, 413, body=unknown_fields(1_400_000), token="valid")
        add(f"{provider}/300kb-body-no-token", provider, job, 413, body="x" * 300_000)
        add(f"{provider}/invalid-base64", provider, job, {400, 401, 404}, raw_base64="!!! not base64", token="valid")
        add(f"{provider}/unicode-job-id", provider, "job_🐈", {401, 404}, body=done, token="valid", sign="valid")
        add(f"{provider}/2kb-job-id", provider, "job_" + "a" * 2_100, {401, 404}, body=done, token="valid", sign="valid")
        add(f"{provider}/traversal-job-id", provider, "../../jobs/@FP_JOB@", {401, 404}, body=done, token="valid", sign="valid")
        add(f"{provider}/unknown-job", provider, "@MISSING_JOB@", {401, 404}, body=done, token="valid", sign="valid")
        add(f"{provider}/empty-job-id", provider, "", {401, 404}, body=done, token="valid", sign="valid")
        add(f"{provider}/upper-case-job-id", provider, "@FP_JOB_UPPER@", {401, 404}, body=done, token="valid", sign="valid")

    # Unknown or disguised providers.
    for name, provider in [("upper-case", "FREEPIK"), ("trailing-space", "freepik "), ("encoded", "free%70ik"),
                           ("traversal", "../freepik"), ("empty", ""), ("homoglyph", "fr\u0435epik"),
                           ("10kb", "p" * 10_000), ("module-name", "_common"), ("base-module", "base"),
                           ("dunder", "__init__"), ("nul", "freepik\x00")]:
        add(f"provider-{name}", provider, "@FP_JOB@", 404, body=completed, token="valid", sign="valid")
    out.append(case("callback/no-path-parameters", CALLBACK, "/v1/callbacks", no_path_params=True, body=completed,
                    expect=404))

    # Freepik: signatures that are missing, forged, stale or malformed.
    for name, kw in [
        ("unsigned", {"sign": None}),
        ("forged-signature", {"sign": "forged"}),
        ("stale-signature", {"sign": "stale"}),
        ("future-signature", {"sign": "future"}),
        ("signature-empty-v1", {"headers": {"webhook-signature": "v1,"}}),
        ("signature-other-version", {"headers": {"webhook-signature": "v2,abc"}}),
        ("signature-not-base64", {"headers": {"webhook-signature": "v1,!!!"}}),
        ("signature-10000-entries", {"headers": {"webhook-signature": " ".join(["v1,AAAA"] * 10_000)}}),
        ("signature-100kb", {"headers": {"webhook-signature": "v1," + "A" * 100_000}}),
        ("timestamp-superscript", {"headers": {"webhook-timestamp": "¹⁷⁰⁰⁰⁰⁰⁰⁰⁰"}}),
        ("timestamp-fullwidth", {"headers": {"webhook-timestamp": "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10"}}),
        ("timestamp-5000-digits", {"headers": {"webhook-timestamp": "9" * 5_000}}),
        ("timestamp-float", {"headers": {"webhook-timestamp": "1.7e9"}}),
        ("timestamp-negative", {"headers": {"webhook-timestamp": "-1"}}),
        ("timestamp-empty", {"headers": {"webhook-timestamp": ""}}),
        ("webhook-id-empty", {"headers": {"webhook-id": ""}}),
        ("webhook-id-100kb", {"headers": {"webhook-id": "m" * 100_000}}),
    ]:
        add(f"freepik/{name}", "freepik", "@FP_JOB@", 401, **({"body": completed, "token": "valid", "sign": "valid"}
                                                               | kw))
    add("freepik/signed-for-another-body", "freepik", "@FP_JOB@", 401, body=completed, token="valid",
        sign="other-body")

    # Freepik: authentic (signed) bodies that are hostile. Refused by the parser, not the signature.
    for name, body in [
        ("deep-arrays", "[" * DEEP + "]" * DEEP), ("deep-objects", nested(DEEP)), ("deep-unclosed", "{" * 100_000),
        ("deep-in-generated", fp_status("COMPLETED").replace("}", ', "generated": ' + "[" * 100 + "]" * 100 + "}")),
        ("nan-progress", fp_status().replace("}", ', "progress": NaN}')),
        ("infinity-progress", fp_status().replace("}", ', "progress": Infinity}')),
        ("utf8-bom", b"\xef\xbb\xbf" + fp_status().encode()), ("invalid-utf8", b'{"task_id": "\xff", "status": 1}'),
        ("utf16", fp_status().encode("utf-16")), ("empty", ""), ("null", "null"), ("array", "[" + fp_status() + "]"),
        ("string", '"COMPLETED"'), ("number", "1e400"), ("no-task-id", json.dumps({"status": "COMPLETED"})),
        ("task-id-number", json.dumps({"task_id": 1, "status": "IN_PROGRESS"})),
        ("task-id-object", json.dumps({"task_id": {"$ne": ""}, "status": "IN_PROGRESS"})),
        ("status-unknown", fp_status("HACKED")), ("status-number", fp_status().replace('"IN_PROGRESS"', "1")),
        ("generated-object", fp_status("COMPLETED", generated={"a": 1})),
        ("generated-numbers", fp_status("COMPLETED", generated=[1, 2])),
        ("generated-empty-strings", fp_status("COMPLETED", generated=["", " "])),
        ("truncated", fp_status()[:-3]), ("trailing-garbage", fp_status() + "x"),
    ]:
        add(f"freepik/signed-{name}", "freepik", "@FP_JOB@", 400, **signed(body))
    add("freepik/signed-other-task", "freepik", "@FP_JOB@", {200, 400},
        **signed(json.dumps({"task_id": "some-other-task", "status": "COMPLETED",
                             "generated": ["https://cdn.example.com/v.mp4"]})))
    add("freepik/signed-duplicate-task-id", "freepik", "@FP_JOB@", {200, 400},
        **signed('{"task_id": "@FP_TASK@", "status": "COMPLETED", "generated": ["https://cdn.example.com/v.mp4"], '
                 '"task_id": "some-other-task"}'))
    add("freepik/signed-for-an-aihubmax-job", "freepik", "@AH_JOB@", {200, 400, 404},
        **signed(json.dumps({"task_id": "@AH_TASK@", "status": "COMPLETED",
                             "generated": ["https://cdn.example.com/v.mp4"]})))
    add("freepik/signed-progress-1e-300", "freepik", "@FP_JOB@", {200, 400},
        **signed(fp_status().replace("}", ', "progress": 1e-300}')))
    add("freepik/signed-progress-45-digits", "freepik", "@FP_JOB@", {200, 400},
        **signed(fp_status().replace("}", ', "progress": ' + "1" * 45 + "}")))
    add("freepik/signed-error-1e400", "freepik", "@FP_JOB@", {200, 400},
        **signed(fp_status("FAILED").replace("}", ', "error": 1e400}')))
    add("freepik/signed-text-plain", "freepik", "@FP_JOB@", 400,
        **signed(nested(DEEP), headers={"content-type": "text/plain"}))
    add("freepik/forged-text-plain", "freepik", "@FP_JOB@", 401, body=completed, token="valid", sign="forged",
        headers={"content-type": "text/plain"})
    add("freepik/forged-base64-body", "freepik", "@FP_JOB@", 401, body=completed.encode(), token="valid",
        sign="forged")
    add("freepik/forged-huge-headers", "freepik", "@FP_JOB@", 401, body=completed, token="valid", sign="forged",
        headers={f"x-h{i}": "v" * 100 for i in range(300)})
    add("freepik/forged-query-flood", "freepik", "@FP_JOB@", 401, body=completed, sign="forged",
        raw_query="token=@TOKEN_VALID@&" + "&".join(f"p{i}=v" for i in range(2_000)))

    # AIHubMax: unsigned by design, so the token and a GET decide; hostile bodies end at the parser.
    for name, body in [
        ("deep-arrays", "[" * DEEP + "]" * DEEP), ("deep-objects", nested(DEEP)),
        ("nan", '{"id": "@AH_TASK@", "status": NaN}'), ("bom", b"\xef\xbb\xbf{}"), ("invalid-utf8", b"\xff"),
        ("array", "[]"), ("null", "null"), ("status-unknown", '{"id": "@AH_TASK@", "status": "HACKED"}'),
        ("no-task-id", '{"status": "completed", "results": ["https://x.example/v.mp4"]}'),
    ]:
        add(f"aihubmax/{name}", "aihubmax", "@AH_JOB@", 400, body=body, token="valid")
    add("aihubmax/other-task", "aihubmax", "@AH_JOB@", 400, token="valid",
        body='{"id": "some-other-task", "status": "completed", "results": ["https://x.example/v.mp4"]}')
    add("aihubmax/for-a-freepik-job", "aihubmax", "@FP_JOB@", {400, 404}, token="valid",
        body='{"id": "@FP_TASK@", "status": "completed", "results": ["https://x.example/v.mp4"]}')

    # UniAll sends no webhooks: every delivery is refused, however it is dressed.
    for name, kw in [("signed-deep", signed(nested(DEEP))), ("valid-token-completed", {"token": "valid",
                      "body": '{"id": "@UA_TASK@", "status": "completed", "video_url": "https://x.example/v.mp4"}'}),
                     ("valid-token-base64", {"token": "valid", "body": b"\xff\xfe"})]:
        add(f"uniall/{name}", "uniall", "@UA_JOB@", 404, **kw)
    return out


def future_route_cases() -> list[Case]:
    """``GET /v1/jobs`` and ``POST /v1/jobs/{id}/cancel``: skipped until the template routes them."""
    out: list[Case] = []
    for name, query in [
        ("limit-negative", {"limit": "-1"}), ("limit-zero", {"limit": "0"}), ("limit-huge", {"limit": "9" * 5_000}),
        ("limit-1e400", {"limit": "1e400"}), ("limit-superscript", {"limit": "²"}), ("limit-fullwidth", {"limit": "\uff15"}),
        ("limit-float", {"limit": "1.5"}), ("limit-joined", {"limit": "1,2"}), ("limit-nan", {"limit": "NaN"}),
        ("cursor-garbage", {"cursor": "!!!"}), ("cursor-base64-json", {"cursor": base64.urlsafe_b64encode(
            json.dumps({"pk": {"S": "gov#freepik#rate"}, "sk": {"S": "x"}}).encode()).decode()}),
        ("cursor-base64-deep", {"cursor": base64.urlsafe_b64encode(("[" * DEEP).encode()).decode()}),
        ("cursor-10kb", {"cursor": "c" * 10_000}), ("cursor-invalid-utf8", {"cursor": base64.urlsafe_b64encode(
            b"\xff\xfe").decode()}),
        ("status-unknown", {"status": "hacked"}), ("status-10kb", {"status": "s" * 10_000}),
        ("status-nul", {"status": "queued\x00"}), ("model-hostile", {"model": "\ud800"}),
        ("unknown-params", {f"p{i}": "v" for i in range(500)}),
    ]:
        out.append(case(f"jobs-list/{name}", "GET /v1/jobs", "/v1/jobs", query=query, expect={200, 400, 422}))
    out.append(case("jobs-list/raw-query-garbage", "GET /v1/jobs", "/v1/jobs", raw_query="%zz&&=&limit=%00",
                    expect={200, 400, 422}))
    cancel = "POST /v1/jobs/{id}/cancel"
    for name, job_id in [("unknown", "@MISSING_JOB@"), ("malformed", "job_x"), ("10kb", "job_" + "a" * 10_000),
                         ("upper-case", "@FP_JOB_UPPER@"), ("traversal", "..%2F..%2Fx"), ("unicode", "job_🐈"),
                         ("lone-surrogate", "job_\ud800"), ("hash-key", "gov#freepik#rate")]:
        out.append(case(f"jobs-cancel/{name}", cancel, f"/v1/jobs/{job_id}/cancel", path_params={"id": job_id},
                        expect=404))
    for name, kw in [("deep-body", {"body": nested(DEEP)}), ("1.4mb-body", {"body": unknown_fields(1_400_000)}),
                     ("invalid-base64", {"raw_base64": "!!!"}), ("invalid-utf8", {"body": b"\xff"}),
                     ("text-plain", {"body": "x", "headers": {"content-type": "text/plain"}}),
                     ("idempotency-key-10kb", {"headers": {"idempotency-key": "k" * 10_000}})]:
        out.append(case(f"jobs-cancel/{name}", cancel, "/v1/jobs/@MISSING_JOB@/cancel",
                        path_params={"id": "@MISSING_JOB@"}, expect=None, **kw))
    return out


CASES: list[Case] = api_cases() + get_job_cases() + catalog_cases() + callback_cases() + future_route_cases()


# ---------------------------------------------------------------------------------- the stack


@dataclass
class Targets:
    """The real jobs hostile callbacks aim at, one per provider, and what the markers stand for."""

    resources: StackResources
    sandbox: ProviderSandbox
    markers: dict[str, str]


def dynamodb_limits(params: dict[str, Any], model: Any, **_: Any) -> None:
    """What real DynamoDB refuses and moto lets through on reads and updates: a partition key
    over 2048 bytes, a number outside 1E-130..1E126 or beyond 38 digits (a ValidationException)."""
    from botocore.exceptions import ClientError

    def refuse(message: str) -> None:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": message}}, model.name)

    for key in [params.get("Key"), params.get("Item"),
                *(op.get("Key") or op.get("Item") for item in params.get("TransactItems", []) for op in item.values())]:
        pk = (key or {}).get("pk", {}).get("S")
        if pk is not None and len(pk.encode("utf-8", "surrogatepass")) > 2048:
            refuse("One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit "
                   "of 2048 bytes")
    stack: list[Any] = [params]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("N"), str):
                from decimal import Decimal

                number = Decimal(value["N"])
                if len(number.as_tuple().digits) > 38 or (number and not Decimal("1E-130") <= abs(number) <
                                                           Decimal("1E126")):
                    refuse(f"Number {value['N'][:50]} is out of the supported range")
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _call(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])


@pytest.fixture(scope="module")
def targets(handlers: dict[str, Any]) -> Iterator[Targets]:
    with pytest.MonkeyPatch.context() as mp, ProviderSandbox(SandboxConfig(step_seconds=None)) as sandbox, \
            moto_stack(mp, sandbox) as resources:
        from reelhook.adapters.aws import client

        client("dynamodb").meta.events.register("provide-client-params.dynamodb", dynamodb_limits)
        jobs: dict[str, dict[str, Any]] = {}
        for short, body in [("FP", VEO), ("AH", {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "wave",
                                                 "reference_images": ["https://example.com/a.png"]}),
                            ("UA", {"model": "uniall/veo3.1-video-720p", "prompt": "a quiet lake"})]:
            status, job = _call(handlers["api"], build_event(
                case("setup", "POST /v1/jobs", "/v1/jobs", body=json.dumps(body)), {}, b""))
            assert status == 202 and job["provider_task_id"], job
            jobs[short] = job
        markers = {"@BUCKET@": resources.bucket_name, "@MISSING_JOB@": "job_" + "0" * 32}
        for short, job in jobs.items():
            markers |= {f"@{short}_JOB@": job["id"], f"@{short}_TASK@": job["provider_task_id"]}
        markers["@FP_JOB_UPPER@"] = jobs["FP"]["id"].upper()
        yield Targets(resources, sandbox, markers)


def fill(value: str, markers: dict[str, str]) -> str:
    for marker, real in markers.items():
        value = value.replace(marker, real)
    return value


def fill_bytes(value: bytes, markers: dict[str, str]) -> bytes:
    for marker, real in markers.items():
        value = value.replace(marker.encode(), real.encode())
    return value


def freepik_signature(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def build_event(c: Case, markers: dict[str, str], token_key: bytes, secret: str = "") -> dict[str, Any]:
    """The API Gateway HTTP API v2 event for ``c``, as the route's function receives it."""
    from reelhook.webhook_auth import job_token

    path = fill(c.path, markers)
    params = None if c.no_path_params else {k: fill(v, markers) for k, v in (c.path_params or {}).items()} or None
    body_bytes = fill_bytes(c.body, markers) if isinstance(c.body, bytes) else \
        fill(c.body, markers).encode("utf-8", "surrogatepass") if isinstance(c.body, str) else b""
    headers = {"content-type": "application/json", "host": "api.example.com", "user-agent": "hostile"}
    query = {k: fill(v, markers) for k, v in c.query.items()} if c.query is not None else None
    if c.route == CALLBACK:
        provider, job_id = (params or {}).get("provider", ""), (params or {}).get("job_id", "")
        tokens = {"@TOKEN_VALID@": job_token(token_key, provider, job_id),
                  "@TOKEN_OTHER_JOB@": job_token(token_key, provider, markers.get("@MISSING_JOB@", "")),
                  "@TOKEN_OTHER_PROVIDER@": job_token(token_key, "uniall" if provider != "uniall" else "freepik",
                                                      job_id)}
        token = tokens["@TOKEN_VALID@"] if c.token == "valid" else fill(c.token, tokens) if c.token else c.token
        if token is not None:
            query = (query or {}) | {"token": token}
        if c.sign:
            now = int(time.time())
            ts = now - 3600 if c.sign == "stale" else now + 3600 if c.sign == "future" else now
            key = "not-the-secret" if c.sign == "forged" else secret
            signed_body = body_bytes + b" " if c.sign == "other-body" else body_bytes
            msg_id = "msg_" + hashlib.sha256(body_bytes + c.name.encode()).hexdigest()[:24]
            headers |= {"webhook-id": msg_id, "webhook-timestamp": str(ts),
                        "webhook-signature": freepik_signature(key, msg_id, ts, signed_body)}
        markers = markers | tokens
    headers |= {k.lower(): fill(v, markers) for k, v in c.headers.items()}
    raw_query = fill(c.raw_query, markers) if c.raw_query is not None else \
        "&".join(f"{k}={v}" for k, v in (query or {}).items())
    if c.raw_query is not None:
        query = dict(part.partition("=")[::2] for part in raw_query.split("&") if part)
    if c.raw_base64 is not None:
        body, is_b64 = c.raw_base64, True
    elif isinstance(c.body, bytes):
        body, is_b64 = base64.b64encode(body_bytes).decode(), True
    elif c.body is None:
        body, is_b64 = None, False
    else:
        body, is_b64 = fill(c.body, markers), False
    method = c.route.split(" ", 1)[0]
    route_key = c.route if c.route in ROUTES else f"{method} {path}"
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": raw_query,
        "headers": headers, "queryStringParameters": query or None, "pathParameters": params,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9",
                     "userAgent": "hostile"},
            "requestId": "hostile", "routeKey": route_key, "stage": "$default",
            "time": "07/Dec/2026:00:00:00 +0000", "timeEpoch": 0,
        },
        "isBase64Encoded": is_b64,
    }
    if body is not None:
        event["body"] = body
    return event


def snapshot(t: Targets) -> dict[str, Any]:
    """Everything a request could write: items, object versions, queue depths, provider tasks."""
    res = t.resources
    ddb, s3, sqs = boto3.client("dynamodb"), boto3.client("s3"), boto3.client("sqs")
    items: list[str] = []
    for page in ddb.get_paginator("scan").paginate(TableName=res.table_name, ConsistentRead=True):
        items.extend(json.dumps(i, sort_keys=True) for i in page["Items"])
    versions = s3.list_object_versions(Bucket=res.bucket_name)
    objects = sorted((v["Key"], v["VersionId"]) for v in versions.get("Versions", []) + versions.get(
        "DeleteMarkers", []))
    queues = {}
    for url in (res.queue_url, res.dlq_url, res.notify_queue_url, res.notify_dlq_url, res.notifier_failure_queue_url,
                res.inbox_dlq_url, res.submit_queue_url, res.submit_dlq_url, res.poll_queue_url, res.poll_dlq_url):
        if url:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            queues[url.rsplit("/", 1)[1]] = attrs
    return {"items": sorted(items), "objects": objects, "queues": queues,
            "tasks": sorted((k, v.phase.value, len(v.history)) for k, v in t.sandbox.tasks.items())}


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for part in before:
        if before[part] != after[part]:
            if part == "items":
                gone, new = set(before[part]) - set(after[part]), set(after[part]) - set(before[part])
                out.append(f"items: -{[g[:300] for g in gone]} +{[n[:300] for n in new]}")
            else:
                out.append(f"{part}: {before[part]} -> {after[part]}")
    return out


OUTCOMES: Counter[str] = Counter()


def _param(c: Case) -> Any:
    marks = []
    if c.route not in ROUTES:
        marks.append(pytest.mark.skip(reason=f"{c.route} is not in template.yaml yet"))
    return pytest.param(c, id=c.name, marks=marks)


def test_the_suite_has_at_least_200_requests_across_every_route() -> None:
    by_route = Counter(c.route for c in CASES)
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"
    active = sum(n for route, n in by_route.items() if route in ROUTES)
    print(f"\nhostile requests: {len(CASES)} ({active} on routes the template has); by route: {dict(by_route)}")
    assert active >= MIN_CASES, by_route
    assert set(ROUTES) <= set(by_route), f"routes without hostile cases: {set(ROUTES) - set(by_route)}"
    assert set(by_route) >= FUTURE_ROUTES
    providers = {c.path_params["provider"] for c in CASES if c.route == CALLBACK and c.path_params}
    from reelhook.providers import provider_names

    assert set(provider_names()) <= providers


@pytest.mark.parametrize("c", [_param(c) for c in CASES])
def test_hostile_request_gets_no_5xx_and_a_refusal_writes_nothing(
        targets: Targets, handlers: dict[str, Any], c: Case) -> None:
    from reelhook.adapters.secrets import callback_token_key

    event = build_event(c, targets.markers, callback_token_key(), targets.sandbox.config.freepik_webhook_secret)
    before = snapshot(targets)
    try:
        answer = handlers[ROUTES[c.route]](event, Context())
    except Exception:  # what escapes a Lambda handler is a 500 from API Gateway
        OUTCOMES["5xx"] += 1
        pytest.fail(f"{c.name}: the handler raised (a 500):\n{traceback.format_exc(limit=-6)}")
    status, raw = answer["statusCode"], answer.get("body") or ""
    OUTCOMES[f"{status // 100}xx"] += 1
    assert status < 500, f"{c.name}: {status} {raw[:2000]}"
    content_type = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}.get("content-type", "")
    assert content_type.startswith("application/json"), answer.get("headers")
    body = json.loads(raw)
    if status >= 400:
        assert len(raw.encode()) < MAX_ERROR_BYTES, f"{c.name}: a {len(raw)}-byte error answer"
        assert isinstance(body.get("error"), dict) and re.fullmatch(r"[a-z_]+", body["error"].get("code", "")), body
        assert changes(before, snapshot(targets)) == [], f"{c.name}: refused with {status} but wrote"
    if c.expect is not None:
        assert status in c.expect, f"{c.name}: {status} {raw[:500]}"
