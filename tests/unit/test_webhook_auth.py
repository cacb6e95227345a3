import pytest

from reelhook.webhook_auth import (
    SignatureError,
    job_token,
    secret_bytes,
    sign_standard,
    verify_job_token,
    verify_standard,
)

# Published Standard Webhooks test vector (base64 "whsec_" secret).
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# Raw-secret vector, computed independently with:
#   printf 'msg_1.1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret -binary | base64
RAW_SIG = "v1,Q5nZ7DiOGwijBBqvBVAK6c0zDr2JLkXI7TaV4f+Q2vY="


def headers(msg_id=SW_ID, ts=SW_TS, sig=SW_SIG):
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def test_known_answer_standard_webhooks_vector():
    assert sign_standard(secret_bytes(SW_SECRET, "base64"), SW_ID, SW_TS, SW_BODY) == SW_SIG
    assert verify_standard([secret_bytes(SW_SECRET, "base64")], headers(), SW_BODY, now=SW_TS) == SW_ID


def test_known_answer_raw_secret_vector():
    assert sign_standard(secret_bytes("secret", "raw"), "msg_1", 1700000000, b'{"a":1}') == RAW_SIG
    assert verify_standard([b"secret"], headers("msg_1", 1700000000, RAW_SIG), b'{"a":1}', now=1700000000)


def test_any_entry_of_a_rotated_signature_list_matches():
    sig = f"v1,bm90IGl0 v2,ignored {RAW_SIG}"
    assert verify_standard([b"old", b"secret"], headers("msg_1", 1700000000, sig), b'{"a":1}', now=1700000000)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"body": b'{"a":2}'}, "no webhook-signature entry matches"),
        ({"msg_id": "msg_2"}, "no webhook-signature entry matches"),
        ({"now": 1700000000 + 301}, "tolerance"),
        ({"now": 1700000000 - 301}, "tolerance"),
        ({"sig": "v1,"}, "no v1 signature"),
        ({"sig": ""}, "missing"),
        ({"ts": "soon"}, "not an integer"),
        ({"secret": b"other"}, "no webhook-signature entry matches"),
    ],
)
def test_rejections(change, why):
    args = {"body": b'{"a":1}', "msg_id": "msg_1", "ts": 1700000000, "sig": RAW_SIG, "now": 1700000000,
            "secret": b"secret"} | change
    with pytest.raises(SignatureError, match=why):
        verify_standard([args["secret"]], headers(args["msg_id"], args["ts"], args["sig"]), args["body"],
                        now=args["now"])


def test_edges_of_tolerance_are_accepted():
    for now in (1700000000 - 300, 1700000000 + 300):
        assert verify_standard([b"secret"], headers("msg_1", 1700000000, RAW_SIG), b'{"a":1}', now=now)


def test_job_token_is_bound_to_key_provider_and_job():
    token = job_token(b"k" * 32, "freepik", "job_1")
    assert verify_job_token(b"k" * 32, "freepik", "job_1", token)
    assert not verify_job_token(b"k" * 32, "freepik", "job_2", token)
    assert not verify_job_token(b"k" * 32, "uniall", "job_1", token)
    assert not verify_job_token(b"j" * 32, "freepik", "job_1", token)
    assert not verify_job_token(b"k" * 32, "freepik", "job_1", None)
    assert not verify_job_token(b"k" * 32, "freepik", "job_1", token[:-1])
    assert len(token) >= 43  # 256 bits
