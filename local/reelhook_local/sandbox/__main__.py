"""Run the provider sandbox on its own: ``python -m reelhook_local.sandbox --port 8765``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from pathlib import Path
from typing import get_args

from .config import SandboxConfig, UniallResultShape
from .server import PROVIDERS, ProviderSandbox


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = SandboxConfig()
    parser = argparse.ArgumentParser(
        prog="python -m reelhook_local.sandbox",
        description="Serve local doubles of the Freepik, UniAll and AIHubMax video APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (default: 8765)")
    parser.add_argument("--public-url", help="base for the result links handed out (default: http://host:port)")
    parser.add_argument("--step-seconds", type=float, default=defaults.step_seconds,
                        help="seconds between status steps (default: %(default)s)")
    parser.add_argument("--link-ttl", type=float, default=defaults.link_ttl_seconds,
                        help="seconds a result link works after completion (default: %(default)s)")
    parser.add_argument("--freepik-key", default=defaults.freepik_api_key)
    parser.add_argument("--uniall-key", default=defaults.uniall_api_key)
    parser.add_argument("--aihubmax-key", default=defaults.aihubmax_api_key)
    parser.add_argument("--webhook-secret", default=defaults.freepik_webhook_secret,
                        help="Freepik webhook signing secret")
    parser.add_argument("--video", type=Path, help="MP4 file to serve as every result (default: the sample)")
    parser.add_argument("--distinct-videos", action="store_true",
                        help="give every task its own file (the video plus a 'free' box naming the task)")
    parser.add_argument("--video-size", type=int, metavar="BYTES",
                        help="pad every result file to this size (streamed; for download benchmarks)")
    parser.add_argument("--allow-http-inputs", action="store_true", help="accept http:// media input URLs")
    parser.add_argument("--freepik-generated-objects", action="store_true",
                        help='Freepik "generated" items as {"url": ...} objects')
    parser.add_argument("--uniall-result-shape", choices=get_args(UniallResultShape),
                        default=defaults.uniall_result_shape)
    parser.add_argument("--aihubmax-result-objects", action="store_true",
                        help='AIHubMax "results" items as {"url": ...} objects')
    parser.add_argument("--aihubmax-early-completed", action="store_true",
                        help='AIHubMax reports "completed" with empty results once first')
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        step_seconds=args.step_seconds,
        link_ttl_seconds=args.link_ttl,
        freepik_api_key=args.freepik_key,
        uniall_api_key=args.uniall_key,
        aihubmax_api_key=args.aihubmax_key,
        freepik_webhook_secret=args.webhook_secret,
        allow_http_inputs=args.allow_http_inputs,
        freepik_generated_objects=args.freepik_generated_objects,
        uniall_result_shape=args.uniall_result_shape,
        aihubmax_result_objects=args.aihubmax_result_objects,
        aihubmax_early_completed=args.aihubmax_early_completed,
        distinct_videos=args.distinct_videos,
        video_size_bytes=args.video_size,
        log_requests=args.verbose,
    )
    if args.video:
        config.video_bytes = args.video.read_bytes()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with ProviderSandbox(config) as sandbox:
        keys = {"freepik": config.freepik_api_key, "uniall": config.uniall_api_key,
                "aihubmax": config.aihubmax_api_key}
        for provider in PROVIDERS:
            print(f"{provider:9} {sandbox.base_url(provider)}  (key: {keys[provider]})")
        print(f"freepik webhook secret: {config.freepik_webhook_secret}")
        if config.distinct_videos or config.video_size_bytes:
            print("served video sha256:    per task (ProviderSandbox.sha256_for)")
        else:
            print(f"served video sha256:    {sandbox.served_sha256}")
        print("Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()


if __name__ == "__main__":
    main()
