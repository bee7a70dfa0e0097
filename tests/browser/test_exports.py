"""Issue 6: every export link of the page downloads a file that opens (Pillow, PyAV, numpy)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from .helpers import first_layer_of, pick, wait_for_choices, wait_for_result

pytestmark = pytest.mark.browser
DOWNLOADS_PER_TAB = 4


def opens(path: Path, name: str) -> None:
    """Decode a downloaded export fully; fails if it is not what its name says."""
    if name.endswith((".gif", ".png")):
        with Image.open(path) as image:
            for frame in range(getattr(image, "n_frames", 1)):
                image.seek(frame)
                image.convert("RGB").load()
    elif name.endswith(".mp4"):
        with av.open(str(path)) as video:
            assert len(list(video.decode(video=0))) > 1
    elif name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as arrays:
            assert arrays.files and all(np.isfinite(arrays[k]).all() for k in arrays.files)
    else:
        json.loads(path.read_text())


def test_every_export_downloads_and_opens(dashboard, open_tab, tmp_path):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "fusion"), unit=6)
    page.click("#visualise")
    visualization_id = wait_for_result(page)
    names = page.locator("#exports a").all_inner_texts()
    assert {"appearance.gif", "appearance.mp4", "appearance.png", "motion.gif", "motion.mp4", "inputs.npz"} <= set(names)
    share_url = page.url
    for first in range(0, len(names), DOWNLOADS_PER_TAB):
        # Fresh tabs: Chromium holds back a tab's downloads after the first several.
        downloader = open_tab().page
        downloader.goto(share_url)
        wait_for_result(downloader)
        for name in names[first : first + DOWNLOADS_PER_TAB]:
            with downloader.expect_download() as started:
                downloader.click(f"#exports a:text-is('{name}')")
            download = started.value
            assert download.suggested_filename == f"{visualization_id}-{name}"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            opens(saved, name)
        downloader.close()
