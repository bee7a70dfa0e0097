"""Decode an uploaded video from memory with PyAV, within hard caps.

A file is accepted by decoding it, never by its name: the container must be one of the formats we
offer (MP4/MOV, WebM/Matroska, AVI, GIF) and hold a video stream that yields at least one frame.
Frames are shrunk as they are decoded, so a long or large video never sits in memory at full size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

MAX_BYTES = 32 * 1024 * 1024
MAX_DURATION_S = 30.0
MAX_FRAMES = 1000
MAX_SIDE = 4096
MAX_PIXELS = 4096 * 2160
MIN_SIDE = 8
WORK_SIDE = 128  # decoded frames are kept with their shorter side at most this long
ACCEPTED_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "gif"})


class VideoError(ValueError):
    """The upload is not a video we accept; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class Video:
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB, shorter side <= WORK_SIDE
    fps: float
    source_size: tuple[int, int]  # (width, height) as stored in the file
    format: str


def _work_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, WORK_SIDE / min(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_size(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise VideoError(f"the video is {width}x{height}; each side must be at least {MIN_SIDE} pixels")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise VideoError(f"the video is {width}x{height}; at most {MAX_SIDE} pixels a side and {MAX_PIXELS} in all")


def decode_video(data: bytes) -> Video:
    """Decode every frame of ``data`` (an encoded file) to RGB, shrunk to the working size."""
    if not data:
        raise VideoError("the file is empty")
    if len(data) > MAX_BYTES:
        raise VideoError(f"the file has {len(data)} bytes; at most {MAX_BYTES} are accepted")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            names = set(container.format.name.split(","))
            if not names & ACCEPTED_FORMATS:
                raise VideoError(f"{container.format.long_name} files are not accepted; send MP4, WebM, AVI or GIF")
            if not container.streams.video:
                raise VideoError("the file has no video stream")
            if container.duration is not None and container.duration / av.time_base > MAX_DURATION_S:
                raise VideoError(f"the video is longer than {MAX_DURATION_S:g} seconds")
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise VideoError("the video stream has no decoder (unknown or damaged codec)")
            width, height = stream.codec_context.width, stream.codec_context.height
            _check_size(width, height)
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 25.0
            frames = []
            for frame in container.decode(stream):
                if frame.width != width or frame.height != height:
                    raise VideoError("the frame size changes inside the video")
                if len(frames) >= MAX_FRAMES:
                    raise VideoError(f"the video has more than {MAX_FRAMES} frames")
                if frame.time is not None and frame.time > MAX_DURATION_S:
                    raise VideoError(f"the video is longer than {MAX_DURATION_S:g} seconds")
                w, h = _work_size(width, height)
                frames.append(frame.reformat(width=w, height=h, format="rgb24").to_ndarray())
    except VideoError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(f"the file could not be decoded as a video ({type(exc).__name__})") from None
    if not frames:
        raise VideoError("the video has no frames that could be decoded")
    return Video(frames=np.stack(frames), fps=fps, source_size=(width, height), format=container.format.name)
