"""MJCF of the articulated hand, generated from the kinematic model in `bridge.hands`.

Each hand is a free wrist body welded to a mocap body (the engine moves the mocap; the
weld drags the wrist along physically, so the palm is stopped by the table instead of
passing through it). Every finger is the kinematic model's planar chain: one body per
bone, a hinge at its proximal keypoint about `FingerFrame.axis`, and a position actuator
driving it to grip × max flexion. Sites sit exactly at the model's 21 keypoints, so the
engine reads keypoints where the kinematic model puts them whenever nothing obstructs
the fingers. Hand bodies are gravity compensated: the weld holds a pose, not a weight.
"""

from __future__ import annotations

import numpy as np

from bridge.engines.scenes.mjcf import HAND_BITS, SCENERY_BITS, MjcfBuilder, fmt
from bridge.hands import HAND_SIDES, JOINTS_PER_FINGER, finger_frames
from bridge.types import HAND_KEYPOINTS

# Geometry of the collision/visual shapes (metres).
PALM_HALF_THICKNESS = 0.012
PALM_RADIAL_PADDING = 0.008  # palm box reaches a little past the outer knuckles
PALM_PROXIMAL_START = 0.01  # palm box starts this far distal of the wrist keypoint
WRIST_RADIUS = 0.022
BONE_RADII = (0.0095, 0.0085, 0.0075)  # proximal, middle, distal capsules

# Finger drive: stiff enough to close against a small object within one 0.1 s step,
# damped near-critically; armature keeps the light phalanges numerically stable.
FINGER_KP = 1.0  # N m / rad
FINGER_KV = 0.05  # N m s / rad
FINGER_ARMATURE = 1e-3  # kg m^2
FINGER_DAMPING = 0.01  # N m s / rad, passive
HAND_FRICTION = (1.5, 0.01, 0.001)
HAND_DENSITY = 1000.0  # kg / m^3, close to tissue
# Weld softness (time constant s, damping ratio): the wrist follows a 3 cm mocap jump in
# a few substeps yet yields to contacts instead of exploding.
WELD_SOLREF = (0.01, 1.0)
# Keypoint sites live in a geom group the renderer does not draw (MuJoCo shows 0-2).
SITE_GROUP = 4
SITE_ATTRS = f'size="0.004" group="{SITE_GROUP}"'


def hand_names(prefix: str, side: int) -> dict[str, object]:
    """Names of one hand's MuJoCo elements (prefix is the agent id)."""
    base = f"{prefix}_{HAND_SIDES[side]}"
    return {
        "mocap": f"{base}_mocap",
        "wrist": f"{base}_wrist",
        "sites": [f"{base}_kp{k}" for k in range(HAND_KEYPOINTS)],
        "actuators": [f"{base}_f{f}_j{j}" for f in range(5) for j in range(JOINTS_PER_FINGER)],
        "body_prefix": base,
    }


def add_hand(b: MjcfBuilder, prefix: str, side: int, material: str) -> None:
    """Appends one hand (mocap, wrist, fingers, sites, weld, actuators) at the origin.

    The engine places the hand at reset by writing the mocap pose and the wrist's free
    joint; the weld's relative pose is the identity, so wrist and mocap coincide at rest.
    """
    names = hand_names(prefix, side)
    fingers = finger_frames(side)
    outer = max(abs(f.base[1]) for f in fingers[1:]) + PALM_RADIAL_PADDING
    knuckles = min(f.base[0] for f in fingers[1:])
    palm_half = ((knuckles - PALM_PROXIMAL_START) / 2, outer, PALM_HALF_THICKNESS)
    palm_centre = (PALM_PROXIMAL_START + palm_half[0], 0.0, 0.0)
    geom_class = (
        f'contype="{HAND_BITS}" conaffinity="{SCENERY_BITS}" friction="{fmt(HAND_FRICTION)}" '
        f'density="{HAND_DENSITY:.9g}" material="{material}"'
    )
    lines = [
        f'<body name="{names["mocap"]}" mocap="true" pos="0 0 0"/>',
        f'<body name="{names["wrist"]}" pos="0 0 0" gravcomp="1">',
        f'  <freejoint name="{names["wrist"]}_free"/>',
        f'  <geom type="box" pos="{fmt(palm_centre)}" size="{fmt(palm_half)}" {geom_class}/>',
        f'  <geom type="sphere" size="{WRIST_RADIUS:.9g}" {geom_class}/>',
        f'  <site name="{names["sites"][0]}" pos="0 0 0" {SITE_ATTRS}/>',
    ]
    for f, finger in enumerate(fingers):
        lines += _finger_lines(names, f, finger, geom_class)
    lines.append("</body>")
    b.worldbody.extend(lines)
    b.equalities.append(
        f'<weld body1="{names["mocap"]}" body2="{names["wrist"]}" relpose="0 0 0 1 0 0 0" '
        f'solref="{fmt(WELD_SOLREF)}"/>'
    )


def _finger_lines(names: dict, f: int, finger, geom_class: str) -> list[str]:
    """Nested bodies of one finger: bone j's body sits at keypoint j with its hinge there."""
    lines: list[str] = []
    indent = "  "
    pos = finger.base
    for j in range(JOINTS_PER_FINGER):
        body = f"{names['body_prefix']}_f{f}_b{j}"
        bone = finger.bone_lengths[j] * finger.direction
        max_flex = finger.max_flexion[j]
        joint = names["actuators"][JOINTS_PER_FINGER * f + j]
        lines += [
            f'{indent}<body name="{body}" pos="{fmt(pos)}" gravcomp="1">',
            f'{indent}  <joint name="{joint}" type="hinge" axis="{fmt(finger.axis)}" '
            f'range="0 {max_flex:.9g}" damping="{FINGER_DAMPING:.9g}" armature="{FINGER_ARMATURE:.9g}"/>',
            f'{indent}  <geom type="capsule" fromto="0 0 0 {fmt(bone)}" size="{BONE_RADII[j]:.9g}" '
            f"{geom_class}/>",
            f'{indent}  <site name="{names["sites"][1 + 4 * f + j]}" pos="0 0 0" {SITE_ATTRS}/>',
        ]
        indent += "  "
        pos = bone
    lines.append(f'{indent}<site name="{names["sites"][4 + 4 * f]}" pos="{fmt(pos)}" {SITE_ATTRS}/>')
    for _ in range(JOINTS_PER_FINGER):
        indent = indent[:-2]
        lines.append(f"{indent}</body>")
    return lines


def add_hand_actuators(b: MjcfBuilder, prefix: str, side: int) -> None:
    """Position actuators driving each finger joint to its control (radians)."""
    fingers = finger_frames(side)
    names = hand_names(prefix, side)
    for f, finger in enumerate(fingers):
        for j in range(JOINTS_PER_FINGER):
            joint = names["actuators"][JOINTS_PER_FINGER * f + j]
            b.actuators.append(
                f'<position name="{joint}" joint="{joint}" kp="{FINGER_KP:.9g}" kv="{FINGER_KV:.9g}" '
                f'ctrlrange="0 {finger.max_flexion[j]:.9g}"/>'
            )


def max_flexions(side: int) -> np.ndarray:
    """Per-actuator max flexion (radians) in actuator order, for grip -> ctrl."""
    return np.array([f.max_flexion[j] for f in finger_frames(side) for j in range(JOINTS_PER_FINGER)])
