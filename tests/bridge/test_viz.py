"""Video writing: MP4 where imageio-ffmpeg exists, a GIF (and its path returned) where not."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np

from bridge import viz


def _frames(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(33, 47, 3), dtype=np.uint8) for _ in range(n)]


def test_gif_keeps_every_frame_cropped_to_even_sizes(tmp_path) -> None:
    path = viz.write_video(tmp_path / "clip.gif", _frames(), fps=5)
    frames = imageio.mimread(path)
    assert len(frames) == 4 and frames[0].shape[:2] == (32, 46)


def test_mp4_without_ffmpeg_falls_back_to_gif(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(viz, "_has_ffmpeg", lambda: False)
    path = viz.write_video(tmp_path / "clip.mp4", _frames(3))
    assert path == tmp_path / "clip.gif" and path.exists() and not (tmp_path / "clip.mp4").exists()
    assert len(imageio.mimread(path)) == 3


def test_mp4_with_ffmpeg(tmp_path) -> None:
    assert viz._has_ffmpeg()  # a dev install has imageio-ffmpeg
    path = viz.write_video(tmp_path / "clip.mp4", _frames(3))
    assert path.suffix == ".mp4" and path.stat().st_size > 0
