from __future__ import annotations

import asyncio
import io

import av
import numpy as np
import pytest
from PIL import Image
from stlens.analysis import video
from stlens.analysis.clip import clip_inputs, frame_indices
from stlens.analysis.video import VideoError, decode_video
from stlens.models.builtin import small_inputs

from .conftest import SAMPLES, VIDEO_KINDS, canvas_gif, encode, moving_square


@pytest.mark.parametrize("kind", sorted(VIDEO_KINDS))
def test_decodes_each_accepted_format(kind: str) -> None:
    frames = moving_square()
    decoded = decode_video(VIDEO_KINDS[kind](frames))
    assert decoded.frames.shape == (12, 48, 64, 3)
    assert decoded.frames.dtype == np.uint8
    # the square is where it was drawn (lossy codecs: compare coarsely)
    assert abs(int(decoded.frames[5, 24, 20, 0]) - 230) < 40
    assert decoded.fps == pytest.approx(25, rel=0.05)


def test_large_frames_are_shrunk_while_decoding() -> None:
    frames = np.repeat(moving_square(4, 48, 64), 4, axis=1).repeat(4, axis=2)  # 192 x 256
    decoded = decode_video(VIDEO_KINDS["mp4"](frames))
    assert decoded.frames.shape[1:3] == (video.WORK_SIDE, round(256 * video.WORK_SIDE / 192))
    assert decoded.source_size == (256, 192)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not a video at all" * 100, "could not be decoded"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "not accepted"),
    ],
)
def test_rejects_non_videos(data: bytes, message: str) -> None:
    with pytest.raises(VideoError, match=message):
        decode_video(data)


def test_rejects_truncated_file() -> None:
    data = VIDEO_KINDS["mp4"](moving_square())
    with pytest.raises(VideoError):
        decode_video(data[: len(data) // 3])


def zero_frame_avi() -> bytes:
    """An AVI with its headers and a video stream but not one frame."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="avi") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        out.start_encoding()
    return buffer.getvalue()


def test_rejects_zero_frame_video() -> None:
    data = zero_frame_avi()
    assert len(data) > 1000  # a real container, not an empty file
    with pytest.raises(VideoError, match="no frames"):
        decode_video(data)


def test_rejects_a_huge_resolution_before_decoding() -> None:
    with pytest.raises(VideoError, match="4112x16"):
        decode_video(encode(np.zeros((2, 16, 4112, 3), np.uint8), "avi", "mjpeg"))


def test_a_tiny_gif_with_a_huge_canvas_and_many_frames_is_refused_before_decoding(monkeypatch) -> None:
    data = canvas_gif()
    assert len(data) < 24_000  # the attack: 23 KB to send, 8.8 G pixels to decode
    decoded: list[int] = []
    monkeypatch.setattr(av.VideoFrame, "reformat", lambda *a, **k: decoded.append(1))
    with pytest.raises(VideoError, match="1000 frames of 4096x2160, 8,847,360,000 pixels to decode"):
        decode_video(data)
    assert not decoded  # refused on the container's count, not after decoding


def test_a_4k_h264_file_over_the_pixel_budget_is_refused_before_decoding(big_h264_file: bytes) -> None:
    assert len(big_h264_file) < 64_000
    with pytest.raises(VideoError, match="80 frames of 4096x2160.*send a shorter or smaller video"):
        decode_video(big_h264_file)


def test_frames_are_counted_from_packets_when_the_header_has_no_count(monkeypatch) -> None:
    data = VIDEO_KINDS["webm"](moving_square(12))  # WebM declares no frame count
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[0].frames == 0
    monkeypatch.setattr(video, "MAX_DECODED_PIXELS", 11 * 64 * 48)
    with pytest.raises(VideoError, match="12 frames of 64x48"):
        decode_video(data)


def test_a_container_that_under_counts_is_stopped_while_decoding(monkeypatch) -> None:
    data = VIDEO_KINDS["webm"](moving_square(12))
    monkeypatch.setattr(video, "_count_frames", lambda data: 1)
    monkeypatch.setattr(video, "MAX_DECODED_PIXELS", 5 * 64 * 48)
    with pytest.raises(VideoError, match="6 frames of 64x48"):
        decode_video(data)


def test_rejects_an_image_format_not_offered() -> None:
    buffer = io.BytesIO()
    Image.fromarray(moving_square(1)[0]).save(buffer, format="PNG")
    with pytest.raises(VideoError):
        decode_video(buffer.getvalue())


def test_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    data = VIDEO_KINDS["mp4"](moving_square(12))
    monkeypatch.setattr(video, "MAX_BYTES", len(data) - 1)
    with pytest.raises(VideoError, match="bytes"):
        decode_video(data)
    monkeypatch.undo()
    monkeypatch.setattr(video, "MAX_FRAMES", 10)
    with pytest.raises(VideoError, match="has 12 frames; at most 10"):
        decode_video(data)
    monkeypatch.undo()
    monkeypatch.setattr(video, "MAX_DURATION_S", 0.2)
    with pytest.raises(VideoError, match="longer than"):
        decode_video(data)
    monkeypatch.undo()
    monkeypatch.setattr(video, "MAX_SIDE", 60)
    with pytest.raises(VideoError, match="64x48"):
        decode_video(data)


def run_pool_decodes(pool: video.DecodePool, uploads: list[tuple[int, bytes]], release_after: int) -> list:
    """Start every upload on ``pool`` with reads that wait until ``release_after`` of them are admitted
    and the rest answered; returns each one's Video or exception, in order."""

    async def main() -> list:
        gate = asyncio.Event()

        async def read(data: bytes) -> bytes:
            await gate.wait()
            return data

        tasks = [asyncio.ensure_future(pool.decode(size, lambda d=data: read(d))) for size, data in uploads]
        for _ in range(100):
            await asyncio.sleep(0)
            if sum(t.done() for t in tasks) + pool.admitted[0] == len(tasks):
                break
        assert pool.admitted[0] == release_after
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(main())


def test_the_decode_pool_caps_waiting_uploads_in_number() -> None:
    clip = VIDEO_KINDS["avi"](moving_square())
    pool = video.DecodePool(workers=1, max_waiting=2, max_waiting_bytes=10 * len(clip))
    results = run_pool_decodes(pool, [(len(clip), clip)] * 5, release_after=3)
    assert [type(r).__name__ for r in results] == ["Video"] * 3 + ["DecoderBusy"] * 2
    assert "3 uploads are being decoded or waiting" in str(results[3])
    assert pool.admitted == (0, 0)


def test_the_decode_pool_caps_waiting_uploads_in_bytes() -> None:
    clip = VIDEO_KINDS["avi"](moving_square())
    size = 31 * 1024 * 1024  # as declared by twelve 31 MiB uploads; the clip stands in for their content
    pool = video.DecodePool(workers=1, max_waiting=16, max_waiting_bytes=2 * size)
    results = run_pool_decodes(pool, [(size, clip)] * 12, release_after=2)
    assert [type(r).__name__ for r in results] == ["Video"] * 2 + ["DecoderBusy"] * 10
    assert f"at most {2 * size} together" in str(results[2])
    # one upload alone is always admitted, whatever its size: the cap bounds those waiting together
    assert type(run_pool_decodes(pool, [(3 * size, clip)], release_after=1)[0]).__name__ == "Video"


def test_the_decode_pool_frees_its_places_after_a_bad_upload() -> None:
    pool = video.DecodePool(workers=1, max_waiting=0)
    (result,) = run_pool_decodes(pool, [(10, b"not a video")], release_after=1)
    assert isinstance(result, VideoError) and pool.admitted == (0, 0)


def test_frame_indices_centre_and_stride() -> None:
    assert frame_indices(20, 5, 1.0).tolist() == [8, 9, 10, 11, 12]
    assert frame_indices(20, 3, 2.0).tolist() == [8, 10, 12]
    assert frame_indices(3, 5, 1.0).tolist() == [0, 0, 1, 2, 2]
    with pytest.raises(ValueError):
        frame_indices(20, 5, 100.0)


def test_clip_inputs_match_the_model_and_see_the_motion() -> None:
    clip = clip_inputs(moving_square(), small_inputs())
    assert clip.streams["appearance"].shape == (8, 64, 64, 3)
    assert clip.streams["motion"].shape == (8, 64, 64, 2)
    assert 0.0 <= clip.streams["appearance"].min() and clip.streams["appearance"].max() <= 1.0
    # the square moves right by 2 px a frame at 48 px height: 2 * 64 / 48 px at the model's size
    flow = clip.streams["motion"]
    assert np.percentile(flow[..., 0], 95) == pytest.approx(2 * 64 / 48, abs=0.6)
    assert flow[..., 0].min() > -0.5
    assert np.percentile(np.abs(flow[..., 1]), 95) < 0.5


@pytest.mark.skipif(not (SAMPLES / "bikes.mp4").exists(), reason="sample videos are not present (/work/shared absent)")
@pytest.mark.parametrize("name", ["bikes.mp4", "carphone_pristine.mp4", "ucf101_CricketShot_g04_c01_rgb.gif"])
def test_decodes_the_samples(name: str) -> None:
    decoded = decode_video((SAMPLES / name).read_bytes())
    assert len(decoded.frames) >= 79
    assert min(decoded.frames.shape[1:3]) <= video.WORK_SIDE


@pytest.mark.parametrize("kind", sorted(VIDEO_KINDS))
def test_damaged_files_fail_only_with_a_video_error(kind: str) -> None:
    """Seeded byte flips and cuts of a valid file: each one decodes or raises VideoError, nothing else."""
    rng = np.random.default_rng(0)
    original = np.frombuffer(VIDEO_KINDS[kind](moving_square()), np.uint8)
    for _ in range(60):
        data = original.copy()
        if rng.random() < 0.5:
            spots = rng.integers(0, len(data), rng.integers(1, 50))
            data[spots] = rng.integers(0, 256, len(spots))
        else:
            data = data[: rng.integers(1, len(data))]
        try:
            decoded = decode_video(data.tobytes())
        except VideoError:
            continue
        assert decoded.frames.ndim == 4 and len(decoded.frames) >= 1


def textured_pan(frames: int = 4, shift: int = 2, side: int = 64) -> np.ndarray:
    """A smooth random texture moving right by ``shift`` px a frame."""
    import cv2

    rng = np.random.default_rng(1)
    noise = (rng.random((side + 32, side + 32 + frames * shift, 3)) * 255).astype(np.uint8)
    texture = cv2.GaussianBlur(noise, (7, 7), 2)
    return np.stack([texture[16 : 16 + side, 16 + shift * t : 16 + shift * t + side][:, ::-1] for t in range(frames)])


@pytest.mark.parametrize("method", ["dis", "tvl1"])
def test_each_flow_estimator_measures_a_known_motion(method: str) -> None:
    from stlens.flow.estimate import estimate_flow

    reports = []
    flow = estimate_flow(textured_pan(), method, progress=lambda done, total: reports.append((done, total)))
    centre = flow[:, 16:48, 16:48]
    assert abs(centre[..., 0].mean() - 2.0) < 0.2 and abs(centre[..., 1].mean()) < 0.2  # 2 px a frame to the right
    assert reports == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(ValueError, match="unknown flow method"):
        estimate_flow(textured_pan(), "farneback")


def test_a_clips_flow_is_estimated_once_per_estimator() -> None:
    from stlens.analysis.clip import FlowCache

    cache = FlowCache()
    frames = textured_pan(frames=9)
    reports = []
    first = clip_inputs(frames, small_inputs(), flow="tvl1", progress=lambda *r: reports.append(r), cache=cache)
    again = clip_inputs(frames, small_inputs(), flow="tvl1", progress=lambda *r: reports.append(r), cache=cache)
    assert len(reports) == 8 and len(cache) == 1  # the second time: no estimation, no progress
    assert np.array_equal(first.streams["motion"], again.streams["motion"])
    again.streams["motion"][:] = 0  # a caller's copy: the cache keeps what was estimated
    kept = clip_inputs(frames, small_inputs(), flow="tvl1", cache=cache).streams["motion"]
    assert np.array_equal(kept, first.streams["motion"])
    clip_inputs(frames, small_inputs(), flow="dis", cache=cache)
    assert len(cache) == 2
    tiny = FlowCache(max_bytes=1)  # bounded: the newest clip only
    for shift in (1, 2, 3):
        clip_inputs(textured_pan(frames=9, shift=shift), small_inputs(), cache=tiny)
    assert len(tiny) == 1


def test_models_trained_on_tvl1_say_so_and_the_built_ins_stay_on_dis() -> None:
    from stlens.models.builtin import builtin_entries
    from stlens.models.zoo import zoo_entries

    assert {entry.spec.flow for entry in builtin_entries()} == {"dis"}
    zoo = {entry.spec.id: entry.spec.flow for entry in zoo_entries()}
    assert zoo["i3d-kinetics400"] == "tvl1"
