"""One copy into S3, in a fresh process so its memory high-water mark is its own.

    python -m bench._copy_worker METHOD SIZE URL ENDPOINT BUCKET KEY LOCAL_FILE

METHOD is ``reelhook`` (``reelhook.services.transfer.copy_output``: SSRF check, http.client
streaming, ``stream_to_s3``), ``boto3`` (``upload_fileobj`` of LOCAL_FILE, default
TransferConfig) or ``naive`` (download URL to a file in /tmp, then upload it part by part,
one part at a time). Prints one JSON line: seconds, baseline RSS, peak RSS.

Peak RSS: after every import and client creation the kernel's high-water mark is reset
(``echo 5 > /proc/self/clear_refs``), so ``VmHWM`` afterwards is the peak during the copy; a
thread sampling ``VmRSS`` every 5 ms cross-checks it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

PART = 8 * 1024 * 1024


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.005):
            self.peak = max(self.peak, status_kib("VmRSS"))


def reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main() -> None:
    method, size, url, endpoint, bucket, key, local_file = sys.argv[1:8]
    expected = int(size)
    os.environ.update({
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "VIDEO_BUCKET": bucket,
        "OUTPUT_PREFIX": "bench/", "REELHOOK_ALLOW_INSECURE_FETCH": "true", "FREEPIK_DOWNLOAD_HOSTS": "",
        "MAX_DOWNLOAD_BYTES": str(8 * 1024**3),
    })
    import boto3
    import httpx

    from reelhook.adapters.aws import client
    from reelhook.services import transfer

    s3: Any = client("s3") if method == "reelhook" else boto3.session.Session().client("s3")
    s3.list_objects_v2(Bucket=bucket, MaxKeys=1)  # connection and credentials warmed up
    extra: dict[str, Any] = {}
    baseline = status_kib("VmRSS")
    clean = reset_high_water_mark()
    sampler = Sampler()
    sampler.start()
    started = time.perf_counter()
    if method == "reelhook":
        stored = transfer.copy_output(url, provider="freepik", job_id=key, index=0)
        copied = stored.bytes
    elif method == "boto3":
        with open(local_file, "rb") as source:
            s3.upload_fileobj(source, bucket, key)
        copied = expected
    elif method == "naive":
        spool = Path("/tmp") / f"reelhook-bench-naive-{os.getpid()}.bin"
        try:
            with httpx.stream("GET", url, timeout=60) as response, spool.open("wb") as sink:
                response.raise_for_status()
                for chunk in response.iter_bytes(1024 * 1024):
                    sink.write(chunk)
            extra["download_s"] = time.perf_counter() - started
            copied = spool.stat().st_size
            upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            parts = []
            with spool.open("rb") as source:
                number = 1
                while True:
                    body = source.read(PART)
                    if not body:
                        break
                    etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                          Body=body)["ETag"]
                    parts.append({"PartNumber": number, "ETag": etag})
                    number += 1
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
        finally:
            spool.unlink(missing_ok=True)
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - started
    sampler.stopping.set()
    sampler.join()
    hwm = status_kib("VmHWM")
    if copied != expected:
        raise SystemExit(f"copied {copied} bytes, expected {expected}")
    print(json.dumps({
        "seconds": seconds, "baseline_kib": baseline, "hwm_kib": hwm, "sampled_peak_kib": sampler.peak,
        "hwm_clean": clean, **extra,
    }))


if __name__ == "__main__":
    main()
