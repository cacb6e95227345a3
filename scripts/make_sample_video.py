"""Write the provider sandbox's sample result: a tiny real MP4 with an H.264 video and an AAC audio track.

Run ``python scripts/make_sample_video.py`` to regenerate local/reelhook_local/sandbox/sample.mp4
(needs PyAV, a [dev] dependency). 16:9, 320x180 at 24 fps, 2 s, a moving gradient and a 440 Hz
tone: small enough to commit, real enough that reelhook's media inspection parses and decodes it.
The muxer writes the ``moov`` box at the end, as many encoders do, so inspection must read the tail.
"""

from __future__ import annotations

import argparse
import math
import struct
from fractions import Fraction
from pathlib import Path

import av

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "local" / "reelhook_local" / "sandbox" / "sample.mp4"
WIDTH, HEIGHT, FPS, SECONDS, RATE = 320, 180, 24, 2, 48000


def make(path: Path, *, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS, seconds: float = SECONDS,
         audio: bool = True) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "40", "preset": "veryslow", "g": str(fps)}
        sound = out.add_stream("aac", rate=RATE, layout="mono") if audio else None
        if sound is not None:
            sound.bit_rate = 24000
        for n in range(int(fps * seconds)):
            frame = av.VideoFrame(width, height, "rgb24")
            plane = frame.planes[0]
            row = b"".join(bytes(((x + n * 4) % 256, 80, 255 - (x + n * 4) % 256)) for x in range(width))
            plane.update(row.ljust(plane.line_size, b"\0") * height)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples, step = int(RATE * seconds), 1024
            for start in range(0, samples, step):
                count = min(step, samples - start)
                frame = av.AudioFrame(format="flt", layout="mono", samples=count)
                tone = [0.2 * math.sin(2 * math.pi * 440 * (start + i) / RATE) for i in range(count)]
                frame.planes[0].update(struct.pack(f"<{count}f", *tone).ljust(frame.planes[0].buffer_size, b"\0"))
                frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    make(parser.parse_args().out)


if __name__ == "__main__":
    main()
