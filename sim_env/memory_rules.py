"""The runtime's memory rules a command can switch, shared by `genworld eval` and `bench world`.

``reference_collisions`` (the collision rule also reads the pinned reference's depth),
``pinned_margin`` (the pinned reference's priority in the memory's z-test),
``footprint_occlusion`` (every voxel hides what lies behind its projected square),
``reference_passthrough`` (the pinned reference is copied where it lands, gaps of its splat
included, hands' boxes excepted),
``reference_surfels`` (the passthrough also copies the reference drawn as surfels),
``carve_free_space`` (generated points in the reference's empty space stay out of the memory),
``background_free`` (a reference pixel that saw the background makes its whole ray free) and
``sample_footprints`` (with footprint occlusion, a reference voxel also hides the pixels between
its view's samples) are
`GenerativeRuntime` arguments; a command leaves unset ones to the runtime's defaults and
reports the values the world actually used.
"""

from __future__ import annotations

import argparse
from typing import Any

MEMORY_RULES = (
    "reference_collisions",
    "pinned_margin",
    "footprint_occlusion",
    "reference_passthrough",
    "reference_surfels",
    "carve_free_space",
    "background_free",
    "sample_footprints",
)


def add_memory_rule_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per rule of `MEMORY_RULES`.

    ``--[no-]reference-collisions``, ``--pinned-margin``, ``--[no-]footprint-occlusion``,
    ``--[no-]reference-passthrough``, ``--[no-]reference-surfels``, ``--[no-]carve-free-space``,
    ``--[no-]background-free`` and ``--[no-]sample-footprints``. Each defaults to None, which
    leaves the runtime's default in place.
    """
    parser.add_argument(
        "--reference-collisions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the collision rule also reads the pinned reference's depth (default: the runtime's)",
    )
    parser.add_argument(
        "--pinned-margin",
        type=float,
        default=None,
        help="priority of the pinned reference in the memory's z-test (default: the runtime's)",
    )
    parser.add_argument(
        "--footprint-occlusion",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every voxel of the memory hides what lies behind its projected square, so nothing "
        "shows through the gaps of a near surface's splat (default: the runtime's, off)",
    )
    parser.add_argument(
        "--reference-passthrough",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="copy the pinned reference wherever it lands and into the gaps of its splat "
        "(default: the runtime's, on)",
    )
    parser.add_argument(
        "--reference-surfels",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with the passthrough, also copy the reference drawn as surfels of its voxels' "
        "projected size, so surfaces seen nearer than the reference have no gaps "
        "(default: the runtime's, on)",
    )
    parser.add_argument(
        "--carve-free-space",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep generated points in the reference's empty space out of the memory "
        "(default: the runtime's, on)",
    )
    parser.add_argument(
        "--background-free",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a reference pixel that saw the background (infinite depth) makes its whole ray free "
        "space for carving (default: the runtime's, off)",
    )
    parser.add_argument(
        "--sample-footprints",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --footprint-occlusion, a reference voxel also hides what lies between its view's "
        "samples, not just behind its cube (default: the runtime's, off)",
    )


def memory_rule_options(chosen: Any) -> dict[str, Any]:
    """The `GenerativeRuntime` keyword arguments of the rules set on ``chosen`` (None = default).

    Args:
        chosen: anything with the rules as attributes (parsed arguments, evaluation settings).
    """
    given = {name: getattr(chosen, name, None) for name in MEMORY_RULES}
    return {name: value for name, value in given.items() if value is not None}


def memory_rules_of(world: Any) -> dict[str, Any]:
    """The rules a `GenerativeRuntime` runs with (for reports)."""
    return {name: getattr(world, name) for name in MEMORY_RULES}
