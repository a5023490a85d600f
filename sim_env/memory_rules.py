"""The runtime's two memory rules a command can switch, shared by `genworld eval` and `bench world`.

``reference_collisions`` (the collision rule also reads the pinned reference's depth) and
``pinned_margin`` (the pinned reference's priority in the memory's z-test) are
`GenerativeRuntime` arguments; a command leaves unset ones to the runtime's defaults and
reports the values the world actually used.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_memory_rule_arguments(parser: argparse.ArgumentParser) -> None:
    """``--[no-]reference-collisions`` and ``--pinned-margin``, both defaulting to the runtime's."""
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


def memory_rule_options(reference_collisions: bool | None, pinned_margin: float | None) -> dict[str, Any]:
    """The `GenerativeRuntime` keyword arguments of the rules that were set (None = default)."""
    given = {"reference_collisions": reference_collisions, "pinned_margin": pinned_margin}
    return {name: value for name, value in given.items() if value is not None}


def memory_rules_of(world: Any) -> dict[str, Any]:
    """The rules a `GenerativeRuntime` runs with (for reports)."""
    return {"pinned_margin": world.pinned_margin, "reference_collisions": world.reference_collisions}
