"""Family `tabletop`: an egocentric view down onto a table with loose objects and two hands.

The table stands at the origin. Agent k sits on a circle around it (agent 0 on the -x
side facing +x) with its eye EYE_ABOVE_TABLE above the top, looking down at
LOOK_DOWN_DEG. Boxes, cylinders and spheres with free joints rest on the table in front
of agent 0, where its hands can reach them; each agent owns a left and a right hand
(`hand_mjcf`). A floor, a couple of backdrop walls and an open sky surround the table.
"""

from __future__ import annotations

import math

import numpy as np

from bridge.engines.scenes import SceneSpec
from bridge.engines.scenes.hand_mjcf import add_hand, add_hand_actuators
from bridge.engines.scenes.mjcf import MjcfBuilder, fmt, light_colour, random_colour, sun_direction
from bridge.engines.scenes.rooms import level_camera
from bridge.hands import HAND_BONES, LEFT, RIGHT, default_wrist_poses_cam, hand_keypoints

# Table (metres): top surface at TABLE_TOP, centred on the origin.
TABLE_TOP = 0.75
TABLE_HALF_SIZE = (0.45, 0.6, 0.02)
TABLE_LEG_HALF = 0.03
TABLE_LEG_INSET = 0.06

# Egocentric cameras.
CAMERA_RING_RADIUS = 0.5  # horizontal distance from the table centre
EYE_ABOVE_TABLE = 0.45
LOOK_DOWN_DEG = 55.0
AGENT_RADIUS = 0.1  # the head's collision radius for nav moves

# Objects.
MIN_OBJECTS, MAX_OBJECTS = 3, 6
OBJECT_HALF_RANGE = (0.025, 0.045)
OBJECT_DENSITY_RANGE = (300.0, 800.0)  # kg / m^3: light enough to push with a finger
OBJECT_FRICTION = (1.0, 0.01, 0.001)
OBJECT_REGION_HALF = (0.14, 0.22)  # placement rectangle (along view, across) around the gaze point
OBJECT_GAP = 0.02
HAND_CLEARANCE = 0.035  # object edge to the nearest point of a resting hand, horizontally
HAND_OUTLINE_SAMPLES_PER_BONE = 4
PLACEMENT_TRIES = 40

# Surroundings.
FLOOR_HALF = 4.0
BACKDROP_WALLS = 2
BACKDROP_DISTANCE_RANGE = (1.5, 2.5)
BACKDROP_HALF_WIDTH = 2.0
BACKDROP_HEIGHT = 2.5
SUN_ELEVATION_RANGE_DEG = (45.0, 80.0)
SUN_INTENSITY_RANGE = (0.45, 0.65)
FLOOR_HALF_THICKNESS = 0.05
FLOOR_TEXTURE_REPEAT = (1.0, 3.0)
TABLE_TEXTURE_REPEAT = (2.0, 8.0)
OBJECT_TEXTURE_REPEAT = (20.0, 60.0)  # small objects need dense patterns to show any
BACKDROP_TEXTURE_REPEAT = (0.5, 2.0)
BACKDROP_HALF_THICKNESS = 0.05
LEG_COLOUR_RANGE = (0.1, 0.6)
SHADOW_RADIUS = 1.2  # the sun's shadow map covers the table and its surroundings

LIGHT_SKIN, DARK_SKIN = (0.94, 0.78, 0.66), (0.36, 0.22, 0.14)  # skin tones are mixed between these

PHYSICS_TIMESTEP = 0.002  # s; small enough for finger-object contact to stay stable
SETTLE_TIME = 0.5  # s of physics before frame 0: objects come to rest, hands reach targets


def build_tabletop(
    rng: np.random.Generator, num_agents: int, fov_deg: float, offscreen_size: tuple[int, int]
) -> SceneSpec:
    """Generates a `tabletop` scene (see the module docstring)."""
    b = MjcfBuilder(
        "tabletop",
        offscreen_size,
        timestep=PHYSICS_TIMESTEP,
        centre=(0.0, 0.0, TABLE_TOP),
        shadow_radius=SHADOW_RADIUS,
    )
    b.skybox(rng)
    floor = b.material(rng, float(rng.uniform(*FLOOR_TEXTURE_REPEAT)))
    b.box("floor", (0.0, 0.0, -FLOOR_HALF_THICKNESS), (FLOOR_HALF, FLOOR_HALF, FLOOR_HALF_THICKNESS), floor)
    _backdrop(b, rng)
    _table(b, rng)
    poses = [_agent_camera(k, num_agents) for k in range(num_agents)]
    gaze = _gaze_point(poses[0])
    hands_xy = np.concatenate([_hand_outline_xy(p) for p in poses])
    _objects(b, rng, gaze, math.atan2(poses[0][1, 2], poses[0][0, 2]), hands_xy)
    b.directional_light(
        sun_direction(rng, SUN_ELEVATION_RANGE_DEG), light_colour(rng, SUN_INTENSITY_RANGE), True
    )
    for k in range(num_agents):
        skin = b.plain_material(_skin_tone(rng))
        for side in (LEFT, RIGHT):
            add_hand(b, f"agent_{k}", side, skin)
            add_hand_actuators(b, f"agent_{k}", side)
        b.camera(f"agent_{k}", fov_deg)
    return SceneSpec(
        family="tabletop",
        xml=b.to_xml(),
        start_candidates=tuple(poses),
        agent_radius=AGENT_RADIUS,
        has_hands=True,
        dynamic=True,
        settle_time=SETTLE_TIME,
        metadata={"table_top": TABLE_TOP, "gaze_point": tuple(gaze)},
    )


def _agent_camera(k: int, num_agents: int) -> np.ndarray:
    """Agent k's egocentric camera on the ring around the table, looking down at it."""
    angle = math.pi + 2 * math.pi * k / num_agents
    eye = (
        CAMERA_RING_RADIUS * math.cos(angle),
        CAMERA_RING_RADIUS * math.sin(angle),
        TABLE_TOP + EYE_ABOVE_TABLE,
    )
    return level_camera(eye, yaw=angle + math.pi, pitch=-math.radians(LOOK_DOWN_DEG))


def _gaze_point(pose: np.ndarray) -> np.ndarray:
    """Where the optical axis meets the table top."""
    eye, axis = pose[:3, 3], pose[:3, 2]
    return eye + axis * (TABLE_TOP - eye[2]) / axis[2]


def _table(b: MjcfBuilder, rng: np.random.Generator) -> None:
    hx, hy, hz = TABLE_HALF_SIZE
    top = b.material(rng, float(rng.uniform(*TABLE_TEXTURE_REPEAT)))
    b.box("table_top", (0.0, 0.0, TABLE_TOP - hz), TABLE_HALF_SIZE, top)
    leg = b.plain_material(random_colour(rng, *LEG_COLOUR_RANGE))
    leg_half_height = (TABLE_TOP - 2 * hz) / 2
    for k, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        centre = (sx * (hx - TABLE_LEG_INSET), sy * (hy - TABLE_LEG_INSET), leg_half_height)
        b.box(f"table_leg{k}", centre, (TABLE_LEG_HALF, TABLE_LEG_HALF, leg_half_height), leg)


def _backdrop(b: MjcfBuilder, rng: np.random.Generator) -> None:
    """Two walls on random sides; the rest of the horizon is sky."""
    for k, side in enumerate(rng.permutation(4)[:BACKDROP_WALLS]):
        angle = float(side) * math.pi / 2
        d = float(rng.uniform(*BACKDROP_DISTANCE_RANGE))
        centre = (d * math.cos(angle), d * math.sin(angle), BACKDROP_HEIGHT / 2)
        half = (BACKDROP_HALF_THICKNESS, BACKDROP_HALF_WIDTH, BACKDROP_HEIGHT / 2)
        material = b.material(rng, float(rng.uniform(*BACKDROP_TEXTURE_REPEAT)))
        b.box(f"backdrop{k}", centre, half, material, yaw=angle)


def _hand_outline_xy(camera: np.ndarray) -> np.ndarray:
    """(N, 2) ground-plane points covering both open hands at their default poses."""
    wrists = camera @ default_wrist_poses_cam()
    points = [hand_keypoints(wrists[side], 0.0, side) for side in (LEFT, RIGHT)]
    outline = []
    for keypoints in points:
        for parent, child in HAND_BONES:  # sample along bones so palms count too
            for t in np.linspace(0.0, 1.0, HAND_OUTLINE_SAMPLES_PER_BONE):
                outline.append((1 - t) * keypoints[parent, :2] + t * keypoints[child, :2])
    return np.asarray(outline)


def _objects(
    b: MjcfBuilder, rng: np.random.Generator, gaze: np.ndarray, heading: float, hands_xy: np.ndarray
) -> None:
    """Loose boxes, cylinders and spheres around the gaze point.

    They touch neither each other nor the hands' starting footprint, so frame 0 shows
    open, unobstructed hands.
    """
    along = np.array([math.cos(heading), math.sin(heading)])
    across = np.array([-along[1], along[0]])
    placed: list[tuple[float, float, float]] = []
    for n in range(int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))):
        kind = str(rng.choice(["box", "cylinder", "sphere"]))
        size = rng.uniform(*OBJECT_HALF_RANGE, size=3)
        if kind == "sphere":
            geom, half_height, radius = f'type="sphere" size="{size[0]:.9g}"', size[0], size[0]
        elif kind == "cylinder":
            geom, half_height, radius = f'type="cylinder" size="{fmt(size[:2])}"', size[1], size[0]
        else:
            geom, half_height, radius = (
                f'type="box" size="{fmt(size)}"',
                size[2],
                math.hypot(size[0], size[1]),
            )
        for _ in range(PLACEMENT_TRIES):
            offset = rng.uniform(-1.0, 1.0, size=2) * OBJECT_REGION_HALF
            xy = gaze[:2] + offset[0] * along + offset[1] * across
            apart = all(math.hypot(xy[0] - x, xy[1] - y) > radius + r + OBJECT_GAP for x, y, r in placed)
            clear = np.min(np.linalg.norm(hands_xy - xy, axis=1)) > radius + HAND_CLEARANCE
            if apart and clear:
                break
        else:
            continue
        placed.append((float(xy[0]), float(xy[1]), radius))
        pos = (xy[0], xy[1], TABLE_TOP + half_height)
        yaw = float(rng.uniform(0.0, math.pi))
        density = float(rng.uniform(*OBJECT_DENSITY_RANGE))
        material = b.material(rng, float(rng.uniform(*OBJECT_TEXTURE_REPEAT)))
        b.worldbody += [
            f'<body name="object{n}" pos="{fmt(pos)}" euler="0 0 {yaw:.9g}">',
            f'  <freejoint name="object{n}_free"/>',
            f'  <geom name="object{n}" {geom} density="{density:.9g}" friction="{fmt(OBJECT_FRICTION)}" '
            f'material="{material}"/>',
            "</body>",
        ]


def _skin_tone(rng: np.random.Generator) -> np.ndarray:
    """A skin-like colour between light and dark tones."""
    t = float(rng.uniform())
    return (1 - t) * np.asarray(LIGHT_SKIN) + t * np.asarray(DARK_SKIN)
