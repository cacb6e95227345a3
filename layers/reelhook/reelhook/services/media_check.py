"""Prove a stored result is a playable video, describe it, and cut a poster from it.

The container is parsed and the first video frame decoded with PyAV (FFmpeg's libraries),
reading a seekable file such as ``adapters.s3_objects.RangedObject``, so the video is never
held in memory. ``av`` is imported on first use only: it is the heaviest import in the
transfer function (see README, "Media inspection"), and no other path needs it.

``compare`` sets what was delivered against what the job asked for; differences are
warnings, not failures (the provider was paid, and the video is real).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, BinaryIO

from reelhook.records import record

# FFmpeg's demuxer names for the containers providers serve: MP4/MOV, and WebM (Matroska).
CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
POSTER_MAX_WIDTH = 1280  # posters are previews; a 4K frame would make a megabyte JPEG
MAX_PACKETS_FOR_FRAME = 300  # the first frame comes within the first GOP; more means broken
RESOLUTION_SHORT_SIDE = {"480p": 480, "540p": 540, "720p": 720, "1080p": 1080, "1440p": 1440, "2k": 1440,
                         "4k": 2160, "2160p": 2160}


class NotAVideo(Exception):
    """The bytes are not a video reelhook can prove playable."""


@record
class Inspection:
    media: dict[str, Any]
    poster_jpeg: bytes | None


def _rational(value: Any) -> float | None:
    if value is None:
        return None
    number = float(Fraction(value))
    return round(number, 3) if number > 0 else None


def _jpeg(frame: Any) -> bytes:
    import av

    width, height = frame.width, frame.height
    if width > POSTER_MAX_WIDTH:
        width, height = POSTER_MAX_WIDTH, max(2, round(height * POSTER_MAX_WIDTH / width / 2) * 2)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    image = frame.reformat(width=width, height=height, format="yuvj420p")
    image.pts = 0
    packets = [*encoder.encode(image), *encoder.encode(None)]
    return b"".join(bytes(packet) for packet in packets)


def inspect(source: BinaryIO) -> Inspection:
    """Parse ``source`` (seekable); decode the first video frame. Raises ``NotAVideo``."""
    import av  # lazily: tens of milliseconds of shared-library loading, on this path only

    try:
        with av.open(source, mode="r") as container:
            if container.format.name not in CONTAINERS:
                raise NotAVideo(f"the file is {container.format.name!r}, not an MP4, MOV or WebM video")
            if not container.streams.video:
                raise NotAVideo("the file has no video track")
            video = container.streams.video[0]
            codec = video.codec_context
            if not codec.width or not codec.height:
                raise NotAVideo("the video track has no picture size")
            frame = None
            for count, packet in enumerate(container.demux(video)):
                if count >= MAX_PACKETS_FOR_FRAME:
                    break
                decoded = packet.decode()
                if decoded:
                    frame = decoded[0]
                    break
            if frame is None:
                raise NotAVideo("no frame of the video track decodes")
            duration = None
            if container.duration:
                duration = round(container.duration / 1_000_000, 3)
            elif video.duration and video.time_base:
                duration = round(float(video.duration * video.time_base), 3)
            audio = None
            if container.streams.audio:
                sound = container.streams.audio[0].codec_context
                audio = {"codec": sound.name, "channels": sound.channels, "sample_rate": sound.sample_rate}
            media = {
                "container": "webm" if container.format.name.startswith("matroska") else "mp4",
                "duration_s": duration,
                "width": int(codec.width),
                "height": int(codec.height),
                "fps": _rational(video.average_rate) or _rational(video.guessed_rate),
                "video_codec": codec.name,
                "audio": audio,
            }
            return Inspection(media, _jpeg(frame))
    except NotAVideo:
        raise
    except (av.error.FFmpegError, ValueError, EOFError) as exc:
        raise NotAVideo(f"the file does not parse as a video ({type(exc).__name__}: {exc})"[:500]) from exc


def _ratio(text: str) -> float | None:
    left, sep, right = text.partition(":")
    try:
        return float(left) / float(right) if sep and float(right) > 0 else None
    except ValueError:
        return None


def compare(media: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """What differs between ``media`` (as delivered) and ``asked`` (the job's effective request)."""
    warnings: list[str] = []
    width, height = int(media["width"]), int(media["height"])
    resolution = str(asked.get("resolution") or "").lower()
    expected_side = RESOLUTION_SHORT_SIDE.get(resolution)
    # 2% slack: encoders round sizes to macroblocks (1080 is often stored as 1088).
    if expected_side is not None and abs(min(width, height) - expected_side) > 0.02 * expected_side:
        warnings.append(f"resolution: asked for {resolution}, delivered {width}x{height}")
    ratio = _ratio(str(asked.get("aspect_ratio") or ""))
    if ratio is not None and abs(width / height - ratio) > 0.02 * ratio:
        warnings.append(f"aspect_ratio: asked for {asked['aspect_ratio']}, delivered {width}x{height}")
    duration, delivered = asked.get("duration"), media.get("duration_s")
    if isinstance(duration, int | float) and not isinstance(duration, bool) and delivered is not None \
            and abs(float(delivered) - duration) > max(0.5, 0.1 * duration):
        warnings.append(f"duration: asked for {duration} s, delivered {delivered} s")
    audio = asked.get("audio")
    if audio is True and not media.get("audio"):
        warnings.append("audio: asked for audio, the video has no audio track")
    elif audio is False and media.get("audio"):
        warnings.append("audio: asked for no audio, the video has an audio track")
    return warnings
