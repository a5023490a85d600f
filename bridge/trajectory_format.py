"""Names, codecs and readers of the `genworld-trajectories` on-disk format.

The layout is documented in `bridge.recorder` (which writes it) and docs/dataset.md.
This module is what readers share: `bridge.dataset`, `bridge.export` and anything else
that loads recordings import it without pulling in worlds, policies or torch.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import zstandard
from numpy.typing import NDArray

from bridge.actions import key_to_nav
from bridge.types import HAND_DIM, NAV_DIM, Action

FORMAT_NAME = "genworld-trajectories"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
EPISODES_DIR = "episodes"
META_NAME = "meta.json"
EPISODE_NAME_DIGITS = 6
ZSTD_SUFFIX = ".zst"

# Action rows: [kind, key, nav x6, hand x14] (see `encode_action`).
ACTION_KIND_NONE, ACTION_KIND_KEY, ACTION_KIND_NAV, ACTION_KIND_HAND = range(4)
_KIND_CODES = {"key": ACTION_KIND_KEY, "nav": ACTION_KIND_NAV, "hand": ACTION_KIND_HAND}
ACTION_COL_KIND = 0
ACTION_COL_KEY = 1
ACTION_NAV = slice(2, 2 + NAV_DIM)
ACTION_HAND = slice(2 + NAV_DIM, 2 + NAV_DIM + HAND_DIM)
ACTION_DIM = 2 + NAV_DIM + HAND_DIM
NO_KEY = -1


# --------------------------------------------------------------------------- actions
def encode_action(action: Action | None) -> NDArray[np.float32]:
    """Fixed-width numeric row of an action (None = no action led here)."""
    row = np.zeros(ACTION_DIM, dtype=np.float32)
    row[ACTION_COL_KEY] = NO_KEY
    if action is None:
        return row
    kind = action.kind
    row[ACTION_COL_KIND] = _KIND_CODES[kind]
    if kind == "key":
        row[ACTION_COL_KEY] = action.key
        row[ACTION_NAV] = key_to_nav(action.key)
    elif kind == "nav":
        row[ACTION_NAV] = action.nav_vector
    else:
        row[ACTION_HAND] = action.hand_vector
    return row


def decode_action(row: NDArray[np.floating]) -> Action | None:
    """Inverse of `encode_action` (continuous values come back at float32 precision)."""
    kind = int(row[ACTION_COL_KIND])
    if kind == ACTION_KIND_NONE:
        return None
    if kind == ACTION_KIND_KEY:
        return Action.from_key(int(row[ACTION_COL_KEY]))
    if kind == ACTION_KIND_NAV:
        return Action.from_nav(np.asarray(row[ACTION_NAV], dtype=np.float64))
    if kind == ACTION_KIND_HAND:
        return Action.from_hand(np.asarray(row[ACTION_HAND], dtype=np.float64))
    raise ValueError(f"unknown action kind code {kind}")


# --------------------------------------------------------------------------- reading
def episode_name(index: int) -> str:
    """Directory name of episode `index` (ep_000000)."""
    return f"ep_{index:0{EPISODE_NAME_DIGITS}d}"


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a dataset directory; raises if it is missing or of another format."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {root} is not a recorded dataset")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is format {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    if manifest.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} is version {manifest['version']}, this reader knows {FORMAT_VERSION}")
    return manifest


def load_field(root: str | os.PathLike[str], episode: str, field: str, mmap: bool = True) -> np.ndarray:
    """One field of one finished episode; memory-mapped unless it is zstd-compressed."""
    base = Path(root) / EPISODES_DIR / episode / f"{field}.npy"
    if base.is_file():
        return np.load(base, mmap_mode="r" if mmap else None)
    compressed = base.with_name(base.name + ZSTD_SUFFIX)
    if compressed.is_file():
        with open(compressed, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
            return np.load(io.BytesIO(reader.read()))  # np.load needs a seekable file
    raise FileNotFoundError(f"episode {episode} has no field {field!r} under {base.parent}")
