"""What media inspection costs the transfer function (part of the cold start benchmark).

The transfer function proves each stored result a video with ``media_check.inspect`` (PyAV:
the container parsed, the first frame decoded, a poster JPEG cut). ``av`` is imported on first
use, so the cost lands on the first copy a fresh instance makes, not on its init. Measured:

- **cold start**: fresh processes, CPU time (user + system of the child, from the kernel),
  interleaved and shuffled per round like the rest of the cold start benchmark: the transfer
  function's init and first clients; the same plus ``import av``; the same plus a whole first
  inspection of the sandbox's small MP4. The differences are what the first copy pays.
- **per output**: in one warm process, ``inspect`` of a real small MP4 (the sandbox's sample,
  320x180) and of a real 10 MiB one (1080p H.264, encoded here with PyAV), read from a local
  file; medians of wall and CPU ms, and how many bytes inspection read (in the function each
  read of the stored object is a ranged S3 GET, not counted here).

PyAV ships only with the transfer function (``functions/transfer/requirements.txt``), so this
runs in the dev venv, whose interpreter has it; the Lambda-like environment does not.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import LOAD_APP, ROOT, median, progress, rnd, table

SAMPLE = ROOT / "local" / "reelhook_local" / "sandbox" / "sample.mp4"
BIG_BYTES = 10 * 1024 * 1024
LAYER = str(ROOT / "layers" / "reelhook")

# The transfer function's init and first clients (as the cold start benchmark's probe), then
# optionally what its first copy adds: ``import av`` alone, or a whole inspection.
PROBE = r"""
import importlib.util, json, sys, time
t0 = time.process_time()
""" + LOAD_APP + r"""
from reelhook.adapters.aws import client
for name in ("dynamodb", "s3"):
    client(name)
t1 = time.process_time()
if sys.argv[2] == "import_av":
    import av
elif sys.argv[2] == "inspect":
    from reelhook.services import media_check
    with open(sys.argv[3], "rb") as source:
        media_check.inspect(source)
t2 = time.process_time()
print(json.dumps({"init_ms": (t1 - t0) * 1000, "media_ms": (t2 - t1) * 1000}))
"""
VARIANTS = ("none", "import_av", "inspect")
# And, without the function around it: the interpreter alone, and the interpreter importing av.
BARE = {"python": "pass", "python_import_av": "import av"}

# Warm inspections of each file: the first one (import included) is left out.
PER_OUTPUT = r"""
import io, json, sys, time
from reelhook.services import media_check

class Counting(io.FileIO):
    reads = 0
    read_bytes = 0
    def read(self, size=-1):
        data = super().read(size)
        Counting.reads += 1
        Counting.read_bytes += len(data)
        return data
    def readinto(self, buffer):
        count = super().readinto(buffer)
        Counting.reads += 1
        Counting.read_bytes += count or 0
        return count

runs = int(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    with open(path, "rb") as source:
        media = media_check.inspect(source).media
    wall, cpu = [], []
    for _ in range(runs):
        Counting.reads = Counting.read_bytes = 0
        with Counting(path, "rb") as source:
            w0, c0 = time.perf_counter(), time.process_time()
            found = media_check.inspect(source)
            wall.append((time.perf_counter() - w0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    out[path] = {"wall_ms": wall, "cpu_ms": cpu, "reads": Counting.reads, "read_bytes": Counting.read_bytes,
                 "poster_bytes": len(found.poster_jpeg or b""), "media": media}
print(json.dumps(out))
"""


def make_big_mp4(path: Path, size: int = BIG_BYTES) -> None:
    """A real 1080p H.264 MP4 of at least ``size`` bytes: a gradient with a moving band of noise
    (noise does not compress, so the file reaches the size in a few seconds of video)."""
    import av

    width, height, fps = 1920, 1080, 24
    base = bytes(x % 256 for x in range(width * 3)) * height
    band = 32
    written = 0
    rng = random.Random(7)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18", "g": str(fps)}
        n = 0
        while written < size:
            top = (n * 16) % (height - band)
            row = width * 3
            noise = rng.randbytes(row * band)
            pixels = base[: top * row] + noise + base[(top + band) * row:]
            frame = av.VideoFrame(width, height, "rgb24")
            plane = frame.planes[0]
            if plane.line_size == row:
                plane.update(pixels)
            else:
                plane.update(b"".join(pixels[y * row:(y + 1) * row].ljust(plane.line_size, b"\0")
                                      for y in range(height)))
            for packet in stream.encode(frame):
                written += packet.size
                out.mux(packet)
            n += 1
        for packet in stream.encode(None):
            out.mux(packet)


def _env() -> dict[str, str]:
    from bench.coldstart import _env as lambda_like

    return lambda_like(LAYER)


def run(quick: bool) -> dict[str, Any]:
    from bench.coldstart import _run

    python = sys.executable
    runs = 7 if quick else 15
    app = str(ROOT / "functions" / "transfer" / "app.py")
    env = _env()
    samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    order = [*VARIANTS, *BARE]

    def args(target: str) -> list[str]:
        return ["-c", BARE[target]] if target in BARE else ["-c", PROBE, app, target, str(SAMPLE)]

    rng = random.Random(11)
    for target in order:  # warm the page cache; discarded
        _run(python, args(target), env)
    with progress("media inspection: cold start (fresh processes)", runs * len(order)) as advance:
        for _ in range(runs):
            rng.shuffle(order)
            for target in order:
                wall, cpu, inner = _run(python, args(target), env)
                got = samples[target]
                got["cpu_ms"].append(cpu)
                got["wall_ms"].append(wall)
                if "media_ms" in inner:
                    got["media_ms"].append(inner["media_ms"])
                advance(1)
            # This round's differences: noise that hits a round hits both sides alike.
            for target, base in (("import_av", "none"), ("inspect", "none"), ("python_import_av", "python")):
                samples[target]["paired_extra_cpu_ms"].append(samples[target]["cpu_ms"][-1]
                                                              - samples[base]["cpu_ms"][-1])
    cold = {variant: {name: rnd(median(values), 1) for name, values in got.items()} | {
        "cpu_ms_samples": [rnd(v, 1) for v in got["cpu_ms"]]} for variant, got in samples.items()}
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.mp4"
        make_big_mp4(big)
        big_size = big.stat().st_size
        _, _, per = _run(python, ["-c", PER_OUTPUT, str(5 if quick else 15), str(SAMPLE), str(big)], env)
    files = {}
    for label, path, size in (("small", str(SAMPLE), SAMPLE.stat().st_size), ("10MiB", str(big), big_size)):
        found = per[path]
        files[label] = {"bytes": size, "media": found["media"], "wall_ms": rnd(median(found["wall_ms"]), 2),
                        "cpu_ms": rnd(median(found["cpu_ms"]), 2), "reads": found["reads"],
                        "read_bytes": found["read_bytes"], "poster_bytes": found["poster_bytes"],
                        "wall_ms_samples": [rnd(v, 2) for v in found["wall_ms"]]}
    import av

    return {
        "python": sys.version.split()[0], "pyav": av.__version__, "runs": runs,
        "loadavg": os.getloadavg(), "cold": cold, "per_output": files,
        # In-process CPU ms after init: the steadiest figure (interpreter start and init excluded).
        "import_av_cpu_ms": cold["import_av"]["media_ms"],
        "first_inspection_cpu_ms": cold["inspect"]["media_ms"],
    }


def render(result: dict[str, Any]) -> list[str]:
    cold, files = result["cold"], result["per_output"]
    base = cold["none"]["cpu_ms"]
    out = [
        "### Media inspection (the transfer function)",
        "",
        "`av` (PyAV) is imported on the first inspection, not at init. Fresh processes of the transfer function "
        "(init + dynamodb and s3 clients), then what its first copy adds; "
        f"{result['runs']} interleaved rounds, medians of the child's CPU time; dev venv (Python "
        f"{result['python']}, PyAV {result['pyav']}), since the Lambda-like environment holds only the layer. "
        f"Load average at the end: {', '.join(f'{v:.2f}' for v in result['loadavg'])}.",
        "",
        table(["process", "CPU ms", "× without", "per-round extra CPU ms", "added in-process CPU ms", "wall ms"],
              [["transfer init + first clients", cold["none"]["cpu_ms"], "1.00×", "", "", cold["none"]["wall_ms"]],
               *[[title, cold[v]["cpu_ms"], f"{cold[v]['cpu_ms'] / base:.2f}×", cold[v]["paired_extra_cpu_ms"],
                  cold[v]["media_ms"], cold[v]["wall_ms"]]
                 for v, title in (("import_av", "… then `import av`"),
                                  ("inspect", "… then a first inspection (small MP4)"))]]),
        "",
        "The whole-process figures carry the machine's noise (interpreter start and init included); the "
        "in-process column is CPU time measured inside the child after init, the steadiest estimate of what the "
        f"first copy adds. Without the function: `python -c pass` {cold['python']['cpu_ms']:.0f} ms CPU, "
        f"`python -c \"import av\"` {cold['python_import_av']['cpu_ms']:.0f} ms "
        f"(per-round extra {cold['python_import_av']['paired_extra_cpu_ms']:.0f} ms).",
        "",
        "Per output, warm (after the import), `media_check.inspect` on a local file: container parsed, first frame "
        "decoded, poster JPEG cut. In the function each read is a ranged GET of the stored object (not timed here).",
        "",
        table(["file", "size", "video", "wall ms", "CPU ms", "reads", "bytes read", "poster"],
              [[label, _size(f["bytes"]), _video(f["media"]), f["wall_ms"], f["cpu_ms"], f["reads"],
                f"{f['read_bytes'] / 1024:.0f} KiB",
                f"{f['poster_bytes'] / 1024:.0f} KiB"] for label, f in files.items()]),
        "",
    ]
    return out


def _size(count: int) -> str:
    return f"{count / 1024:.0f} KiB" if count < 1 << 20 else f"{count / (1 << 20):.1f} MiB"


def _video(media: dict[str, Any]) -> str:
    return f"{media['width']}x{media['height']} {media['video_codec']}, {media['duration_s']} s"


def summary_rows(result: dict[str, Any]) -> list[list[Any]]:
    files = result["per_output"]
    return [["media inspection (transfer)",
             f"first copy +{result['first_inspection_cpu_ms']:.0f} ms CPU "
             f"(import av +{result['import_av_cpu_ms']:.0f}); "
             f"per output {files['small']['cpu_ms']:.1f} ms CPU small, {files['10MiB']['cpu_ms']:.1f} ms 10 MiB",
             "measured", "n/a"]]


def main() -> None:  # python -m bench.media_cost: this part alone, as JSON
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))


if __name__ == "__main__":
    main()
