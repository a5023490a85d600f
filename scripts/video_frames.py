"""Stack chosen frames of a video into one PNG (the demo-frames figure of docs/model.md).

python scripts/video_frames.py demo.mp4 --frames 5,30,60,90,115 --out docs/img/demo_frames.png
"""

from __future__ import annotations

import argparse

import imageio.v3 as iio
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", help="an .mp4 or .gif written by genworld demo / eval")
    parser.add_argument("--frames", default="5,30,60,90,115", help="comma-separated frame indices")
    parser.add_argument("--gap", type=int, default=4, help="white rows between frames")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args()
    wanted = [int(i) for i in args.frames.split(",")]
    frames = iio.imread(args.video, index=None)  # (T, H, W, 3)
    missing = [i for i in wanted if not 0 <= i < len(frames)]
    if missing:
        parser.error(f"--frames {missing} outside the video's {len(frames)} frames")
    rows = []
    for i in wanted:
        rows.append(np.asarray(frames[i])[..., :3])
        rows.append(np.full((args.gap, *rows[-1].shape[1:]), 255, np.uint8))
    iio.imwrite(args.out, np.concatenate(rows[:-1]))
    print(f"{args.out}: frames {wanted} of {args.video}")


if __name__ == "__main__":
    main()
