"""Decode an uploaded video from memory with PyAV, within hard caps.

A file is accepted by decoding it, never by its name: the container must be one of the formats we
offer (MP4/MOV, WebM/Matroska, AVI, GIF) and hold a video stream that yields at least one frame.
Frames are shrunk as they are decoded, so a long or large video never sits in memory at full size.

Decoding costs about frames x width x height, whatever the file's size (a 23 KB GIF can declare a
4096x2160 canvas and 1000 frames), so that product is bounded *before* decoding: the frame count
comes from the container (its packets are counted without decoding them) and the size from the
stream header. :class:`DecodePool` runs decodes on a bounded number of threads and refuses uploads
beyond a bounded number and size waiting, so neither the CPU nor memory is one client's.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import av
import numpy as np

MAX_BYTES = 32 * 1024 * 1024
MAX_DURATION_S = 30.0
MAX_FRAMES = 1000
MAX_SIDE = 4096
MAX_PIXELS = 4096 * 2160
# frames x width x height at the source size: ~10 s of 1080p at 30 fps; about a second of decoding on one core
MAX_DECODED_PIXELS = 640_000_000
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


def _count_frames(data: bytes) -> int:
    """Video frames in the container, from its packets (demuxed, not decoded): cheap, and true to
    what the decoder will be given, unlike a header's frame count, which may be absent or wrong."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def _check_cost(frames: int, width: int, height: int) -> None:
    if frames > MAX_FRAMES:
        raise VideoError(f"the video has {frames} frames; at most {MAX_FRAMES} are accepted")
    if frames * width * height > MAX_DECODED_PIXELS:
        raise VideoError(
            f"the video has {frames} frames of {width}x{height}, {frames * width * height:,} pixels to decode; "
            f"at most {MAX_DECODED_PIXELS:,} are accepted: send a shorter or smaller video"
        )


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
            _check_cost(max(stream.frames, _count_frames(data)), width, height)
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 25.0
            frames: list[np.ndarray] = []
            for frame in container.decode(stream):
                if frame.width != width or frame.height != height:
                    raise VideoError("the frame size changes inside the video")
                _check_cost(len(frames) + 1, width, height)  # a container that under-declares is stopped too
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


class DecoderBusy(Exception):
    """Too many uploads are waiting to be decoded (in number or bytes); the client should retry later."""

    def __init__(self, detail: str, retry_after_s: int = 5):
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s


class DecodePool:
    """Decodes uploads on ``workers`` threads; at most ``max_waiting`` more wait, holding at most
    ``max_waiting_bytes`` together (the decoding ones included). An upload beyond either cap is
    refused before it is read into memory, so waiting uploads cannot fill the server's memory.

    Admission is counted on the event loop that calls :meth:`decode`; the decoding runs off it.
    """

    def __init__(self, workers: int = 1, max_waiting: int = 4, max_waiting_bytes: int = 2 * MAX_BYTES):
        if workers < 1 or max_waiting < 0 or max_waiting_bytes < 1:
            raise ValueError("a decode pool needs at least one worker and non-negative caps")
        self.workers = workers
        self.max_waiting = max_waiting
        self.max_waiting_bytes = max_waiting_bytes
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="stlens-decode")
        self._admitted = 0
        self._admitted_bytes = 0

    @property
    def admitted(self) -> tuple[int, int]:
        """(uploads, bytes) waiting or being decoded now."""
        return self._admitted, self._admitted_bytes

    def _admit(self, size: int) -> None:
        if self._admitted >= self.workers + self.max_waiting:
            raise DecoderBusy(f"{self._admitted} uploads are being decoded or waiting; try again in a few seconds")
        if self._admitted and self._admitted_bytes + size > self.max_waiting_bytes:
            raise DecoderBusy(
                f"uploads of {self._admitted_bytes} bytes are being decoded or waiting (at most "
                f"{self.max_waiting_bytes} together); try again in a few seconds"
            )
        self._admitted += 1
        self._admitted_bytes += size

    async def decode(self, size: int, read: Callable[[], Awaitable[bytes]]) -> Video:
        """Admit an upload of ``size`` bytes (DecoderBusy if it does not fit), then ``read`` it and
        decode it in the pool (VideoError if it is not a video we accept)."""
        self._admit(size)
        try:
            data = await read()
            return await asyncio.get_running_loop().run_in_executor(self._executor, decode_video, data)
        finally:
            self._admitted -= 1
            self._admitted_bytes -= size
