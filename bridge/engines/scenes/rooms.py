"""Family `rooms`: a few furnished rooms and corridors on a grid, with windows and a skylight.

Layout: the building is a grid of cells (columns x rows) with random widths; a narrow
column reads as a corridor. Walls run along every grid line. A random spanning tree of
the cells gets doorways so every room is reachable, a few extra interior walls get one
too, outer walls get windows, and one room has an opening in its ceiling so the sky is
visible from inside (depth +inf there). Floors are per cell so materials vary by room.

Every wall with an opening is split into solid boxes around the hole (left, right, below,
above). Boxes never overlap with coplanar faces, which would z-fight and make the
rendered colour depend on the viewpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bridge.conventions import rot_x, rot_z, se3
from bridge.engines.scenes import SceneSpec
from bridge.engines.scenes.mjcf import MjcfBuilder, light_colour, random_colour, sun_direction

# Grid and room sizes (metres).
MIN_COLUMNS, MAX_COLUMNS = 1, 3
MIN_ROWS, MAX_ROWS = 1, 2
ROOM_SIZE_RANGE = (3.5, 6.0)
CORRIDOR_WIDTH_RANGE = (1.8, 2.3)
CORRIDOR_PROBABILITY = 0.35  # chance that an inner column of a 3-column grid is a corridor
WALL_HEIGHT_RANGE = (2.6, 3.2)
WALL_THICKNESS = 0.15
SLAB_THICKNESS = 0.2  # floor and ceiling boxes

# Openings.
DOOR_WIDTH_RANGE = (0.9, 1.3)
DOOR_HEIGHT = 2.1
EXTRA_DOOR_PROBABILITY = 0.3
WINDOW_PROBABILITY = 0.5
WINDOW_WIDTH_RANGE = (0.8, 2.0)
WINDOW_SILL_RANGE = (0.7, 1.0)
WINDOW_TOP_RANGE = (1.9, 2.3)
MIN_PIECE_LENGTH = 1e-6  # wall pieces shorter than this (an opening at a segment end) are skipped
OPENING_END_MARGIN = 0.35  # solid wall kept at each end of a segment
SKYLIGHT_FRACTION_RANGE = (0.35, 0.6)  # hole size relative to the room

# Furniture.
MAX_FURNITURE_PER_ROOM = 4
FURNITURE_GAP = 0.35  # between pieces, and around doorways
DOOR_CLEARANCE_DEPTH = 1.0  # keep this much floor free on both sides of a doorway
FURNITURE_TRIES = 30
CORRIDOR_MAX_FURNITURE = 1
# Half-extent ranges (x, y, z) per furniture kind; cylinders use x as the radius.
FURNITURE_HALF_RANGES = {
    "table": ((0.3, 0.8), (0.25, 0.5), (0.35, 0.4)),
    "cabinet": ((0.2, 0.6), (0.15, 0.3), (0.45, 1.0)),
    "cylinder": ((0.15, 0.4), (0.0, 0.0), (0.2, 0.6)),
}
FURNITURE_WALL_GAP = 0.05
FURNITURE_TEXTURE_REPEAT = (2.0, 6.0)  # per metre: furniture patterns are finer than walls
WALL_TEXTURE_REPEAT = (0.5, 2.0)
FLOOR_TEXTURE_REPEAT = 2.0
SHARED_WALL_MATERIAL_PROBABILITY = 0.5

# Agents.
CAMERA_HEIGHT = 1.5
AGENT_RADIUS = 0.2
START_CLEARANCE = 0.15  # extra free space around a start position
START_CANDIDATES = 64
START_YAW_SPREAD = math.radians(75.0)  # start headings scatter around "towards the room centre"

# Lighting.
MAX_POINT_LIGHTS = 3
LAMP_BELOW_CEILING = 0.3
LAMP_ATTENUATION = (1.0, 0.05, 0.02)
SUN_ELEVATION_RANGE_DEG = (35.0, 75.0)
SUN_INTENSITY_RANGE = (0.35, 0.6)
LAMP_INTENSITY_RANGE = (0.3, 0.55)

CameraPose = NDArray[np.float64]


@dataclass(frozen=True)
class _Rect:
    """An axis-aligned floor rectangle."""

    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def centre(self) -> tuple[float, float]:
        return 0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1)


@dataclass(frozen=True)
class _Obstacle:
    """A furniture footprint as a bounding circle (for placement only)."""

    x: float
    y: float
    radius: float


def _edges(sizes: list[float]) -> list[float]:
    return [0.0, *np.cumsum(sizes).tolist()]


def _column_widths(rng: np.random.Generator, n: int) -> list[float]:
    widths = [float(rng.uniform(*ROOM_SIZE_RANGE)) for _ in range(n)]
    if n == MAX_COLUMNS and rng.random() < CORRIDOR_PROBABILITY:
        widths[1] = float(rng.uniform(*CORRIDOR_WIDTH_RANGE))
    return widths


def _spanning_tree(rng: np.random.Generator, cols: int, rows: int) -> set[frozenset[tuple[int, int]]]:
    """Random-DFS spanning tree over grid cells: the doorways that connect everything."""
    start = (int(rng.integers(cols)), int(rng.integers(rows)))
    visited, stack, edges = {start}, [start], set()
    while stack:
        i, j = stack[-1]
        nbrs = [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        nbrs = [c for c in nbrs if 0 <= c[0] < cols and 0 <= c[1] < rows and c not in visited]
        if not nbrs:
            stack.pop()
            continue
        nxt = nbrs[int(rng.integers(len(nbrs)))]
        edges.add(frozenset({(i, j), nxt}))
        visited.add(nxt)
        stack.append(nxt)
    return edges


def _wall(
    b: MjcfBuilder,
    name: str,
    axis: str,
    fixed: float,
    a: float,
    c: float,
    height: float,
    material: str,
    openings: list[tuple[float, float, float, float]],
) -> None:
    """One straight wall from a to c along `axis` at the fixed coordinate, split around openings.

    Openings are (start, end, bottom, top) along the wall; each leaves a hole with solid
    boxes below and above it.
    """
    pieces: list[tuple[float, float, float, float]] = []  # (s0, s1, z0, z1)
    cursor = a
    for s0, s1, z0, z1 in sorted(openings):
        pieces.append((cursor, s0, 0.0, height))
        if z0 > 0.0:
            pieces.append((s0, s1, 0.0, z0))
        if z1 < height:
            pieces.append((s0, s1, z1, height))
        cursor = s1
    pieces.append((cursor, c, 0.0, height))
    half_t = WALL_THICKNESS / 2
    for k, (s0, s1, z0, z1) in enumerate(o for o in openings if o[2] > 0.0):
        # Windows get invisible glass so the camera cannot leave the building through them.
        mid, half, zc, hz = 0.5 * (s0 + s1), 0.5 * (s1 - s0), 0.5 * (z0 + z1), 0.5 * (z1 - z0)
        centre = (mid, fixed, zc) if axis == "x" else (fixed, mid, zc)
        size = (half, half_t, hz) if axis == "x" else (half_t, half, hz)
        b.invisible_box(f"{name}_glass{k}", centre, size)
    for k, (s0, s1, z0, z1) in enumerate(p for p in pieces if p[1] - p[0] > MIN_PIECE_LENGTH):
        mid, half = 0.5 * (s0 + s1), 0.5 * (s1 - s0)
        centre = (mid, fixed, 0.5 * (z0 + z1)) if axis == "x" else (fixed, mid, 0.5 * (z0 + z1))
        size = (half, half_t, 0.5 * (z1 - z0)) if axis == "x" else (half_t, half, 0.5 * (z1 - z0))
        b.box(f"{name}_{k}", centre, size, material)


def _opening_span(
    rng: np.random.Generator, a: float, c: float, width_range: tuple[float, float]
) -> tuple[float, float] | None:
    """A random (start, end) of an opening inside [a, c], or None if the wall is too short."""
    room = c - a - 2 * OPENING_END_MARGIN
    width = min(float(rng.uniform(*width_range)), room)
    if width < width_range[0]:
        return None
    s0 = a + OPENING_END_MARGIN + float(rng.uniform(0.0, room - width))
    return s0, s0 + width


def build_rooms(
    rng: np.random.Generator, num_agents: int, fov_deg: float, offscreen_size: tuple[int, int]
) -> SceneSpec:
    """Generates a `rooms` scene (see the module docstring)."""
    b = MjcfBuilder("rooms", offscreen_size)
    b.skybox(rng)
    cols = int(rng.integers(MIN_COLUMNS, MAX_COLUMNS + 1))
    rows = int(rng.integers(MIN_ROWS, MAX_ROWS + 1))
    if cols * rows == 1:
        cols = 2  # "a few rooms": at least two
    xs = _edges(_column_widths(rng, cols))
    ys = _edges([float(rng.uniform(*ROOM_SIZE_RANGE)) for _ in range(rows)])
    height = float(rng.uniform(*WALL_HEIGHT_RANGE))
    cells = {(i, j): _Rect(xs[i], xs[i + 1], ys[j], ys[j + 1]) for i in range(cols) for j in range(rows)}
    is_corridor = {(i, j): (xs[i + 1] - xs[i]) < ROOM_SIZE_RANGE[0] for (i, j) in cells}
    doors = _spanning_tree(rng, cols, rows)
    door_zones: list[_Rect] = []
    wall_material = b.material(rng, repeat_per_m=float(rng.uniform(*WALL_TEXTURE_REPEAT)))

    def add_wall(name: str, axis: str, fixed: float, a: float, c: float, between: frozenset | None) -> None:
        openings = []
        inner = between is not None
        if inner and (between in doors or rng.random() < EXTRA_DOOR_PROBABILITY):
            span = _opening_span(rng, a, c, DOOR_WIDTH_RANGE)
            if span is not None:
                openings.append((*span, 0.0, DOOR_HEIGHT))
                lo, hi = fixed - DOOR_CLEARANCE_DEPTH, fixed + DOOR_CLEARANCE_DEPTH
                s0, s1 = span[0] - FURNITURE_GAP, span[1] + FURNITURE_GAP
                door_zones.append(_Rect(s0, s1, lo, hi) if axis == "x" else _Rect(lo, hi, s0, s1))
        elif not inner and rng.random() < WINDOW_PROBABILITY:
            span = _opening_span(rng, a, c, WINDOW_WIDTH_RANGE)
            if span is not None:
                sill, top = float(rng.uniform(*WINDOW_SILL_RANGE)), float(rng.uniform(*WINDOW_TOP_RANGE))
                openings.append((*span, sill, top))
        shared = rng.random() < SHARED_WALL_MATERIAL_PROBABILITY
        material = wall_material if shared else b.material(rng, float(rng.uniform(*WALL_TEXTURE_REPEAT)))
        _wall(b, name, axis, fixed, a, c, height, material, openings)

    half_t = WALL_THICKNESS / 2
    for i, x in enumerate(xs):  # walls of constant x run along y and own the corners
        for j in range(rows):
            between = frozenset({(i - 1, j), (i, j)}) if 0 < i < cols else None
            add_wall(f"wall_x{i}_{j}", "y", x, ys[j] - half_t, ys[j + 1] + half_t, between)
    for j, y in enumerate(ys):  # walls of constant y butt against them
        for i in range(cols):
            between = frozenset({(i, j - 1), (i, j)}) if 0 < j < rows else None
            add_wall(f"wall_y{j}_{i}", "x", y, xs[i] + half_t, xs[i + 1] - half_t, between)

    rooms = [c for c in cells if not is_corridor[c]] or list(cells)
    skylight_cell = rooms[int(rng.integers(len(rooms)))]
    skylight = _slabs(b, rng, cells, height, skylight_cell)
    obstacles = _furnish(b, rng, cells, is_corridor, door_zones)
    _light(b, rng, cells, height)
    for k in range(num_agents):
        b.camera(f"agent_{k}", fov_deg)
    starts = _start_candidates(rng, cells, is_corridor, obstacles)
    return SceneSpec(
        family="rooms",
        xml=b.to_xml(),
        start_candidates=tuple(starts),
        agent_radius=AGENT_RADIUS,
        has_hands=False,
        dynamic=False,
        metadata={
            "ceiling_height": height,
            "skylight_centre": skylight.centre,
            "skylight_rect": (skylight.x0, skylight.x1, skylight.y0, skylight.y1),
            "bounds": (xs[0], xs[-1], ys[0], ys[-1]),
        },
    )


def _slabs(
    b: MjcfBuilder, rng: np.random.Generator, cells: dict, height: float, skylight_cell: tuple[int, int]
) -> _Rect:
    """Floors and ceilings per cell; the skylight cell's ceiling gets a hole. Returns the hole."""
    ceiling_material = b.material(rng, 1.0, builtin="flat", colour=random_colour(rng, 0.6, 0.95))
    hole = _Rect(0.0, 0.0, 0.0, 0.0)
    for (i, j), r in cells.items():
        cx, cy = r.centre
        hx, hy = 0.5 * (r.x1 - r.x0), 0.5 * (r.y1 - r.y0)
        b.box(
            f"floor_{i}_{j}",
            (cx, cy, -SLAB_THICKNESS / 2),
            (hx, hy, SLAB_THICKNESS / 2),
            b.material(rng, FLOOR_TEXTURE_REPEAT),
        )
        z = height + SLAB_THICKNESS / 2
        if (i, j) != skylight_cell:
            b.box(f"ceiling_{i}_{j}", (cx, cy, z), (hx, hy, SLAB_THICKNESS / 2), ceiling_material)
            continue
        fx, fy = (float(rng.uniform(*SKYLIGHT_FRACTION_RANGE)) for _ in range(2))
        hole = _Rect(cx - fx * hx, cx + fx * hx, cy - fy * hy, cy + fy * hy)
        parts = [  # four boxes framing the hole: two full-width strips, two between them
            _Rect(r.x0, r.x1, r.y0, hole.y0),
            _Rect(r.x0, r.x1, hole.y1, r.y1),
            _Rect(r.x0, hole.x0, hole.y0, hole.y1),
            _Rect(hole.x1, r.x1, hole.y0, hole.y1),
        ]
        for k, p in enumerate([*parts, hole]):
            pcx, pcy = p.centre
            size = (0.5 * (p.x1 - p.x0), 0.5 * (p.y1 - p.y0), SLAB_THICKNESS / 2)
            if p is hole:  # invisible glass: the sky shows, the camera stays inside
                b.invisible_box(f"skylight_{i}_{j}", (pcx, pcy, z), size)
            else:
                b.box(f"ceiling_{i}_{j}_{k}", (pcx, pcy, z), size, ceiling_material)
    return hole


def _inside(r: _Rect, x: float, y: float) -> bool:
    return r.x0 <= x <= r.x1 and r.y0 <= y <= r.y1


def _grown(r: _Rect, margin: float) -> _Rect:
    return _Rect(r.x0 - margin, r.x1 + margin, r.y0 - margin, r.y1 + margin)


def _furnish(
    b: MjcfBuilder, rng: np.random.Generator, cells: dict, is_corridor: dict, door_zones: list[_Rect]
) -> list[_Obstacle]:
    """Tables, cabinets and columns per room, away from doorways and each other."""
    obstacles: list[_Obstacle] = []
    for (i, j), r in cells.items():
        most = CORRIDOR_MAX_FURNITURE if is_corridor[(i, j)] else MAX_FURNITURE_PER_ROOM
        least = 0 if is_corridor[(i, j)] else 1
        for n in range(int(rng.integers(least, most + 1))):
            kind = str(rng.choice(list(FURNITURE_HALF_RANGES)))
            half = tuple(float(rng.uniform(lo, hi)) for lo, hi in FURNITURE_HALF_RANGES[kind])
            if kind == "cylinder":
                half = (half[0], half[0], half[2])
            footprint = math.hypot(half[0], half[1])
            margin = footprint + WALL_THICKNESS / 2 + FURNITURE_WALL_GAP
            if r.x1 - r.x0 < 2 * margin or r.y1 - r.y0 < 2 * margin:
                continue
            for _ in range(FURNITURE_TRIES):
                x = float(rng.uniform(r.x0 + margin, r.x1 - margin))
                y = float(rng.uniform(r.y0 + margin, r.y1 - margin))
                near_door = any(_inside(_grown(z, footprint), x, y) for z in door_zones)
                crowded = any(
                    math.hypot(x - o.x, y - o.y) < o.radius + footprint + FURNITURE_GAP for o in obstacles
                )
                if not near_door and not crowded:
                    break
            else:
                continue
            material = b.material(rng, float(rng.uniform(*FURNITURE_TEXTURE_REPEAT)))
            name = f"furniture_{i}_{j}_{n}"
            if kind == "cylinder":
                b.cylinder(name, (x, y, half[2]), half[0], half[2], material)
            else:
                b.box(name, (x, y, half[2]), half, material, yaw=float(rng.uniform(0.0, math.pi)))
            obstacles.append(_Obstacle(x, y, footprint))
    return obstacles


def _light(b: MjcfBuilder, rng: np.random.Generator, cells: dict, height: float) -> None:
    """A sun through the openings plus a few coloured lamps under the ceiling."""
    b.directional_light(
        sun_direction(rng, SUN_ELEVATION_RANGE_DEG), light_colour(rng, SUN_INTENSITY_RANGE), False
    )
    keys = list(cells)
    for k in rng.permutation(len(keys))[:MAX_POINT_LIGHTS]:
        r = cells[keys[int(k)]]
        cx, cy = r.centre
        b.point_light(
            (cx, cy, height - LAMP_BELOW_CEILING), light_colour(rng, LAMP_INTENSITY_RANGE), LAMP_ATTENUATION
        )


def _start_candidates(
    rng: np.random.Generator, cells: dict, is_corridor: dict, obstacles: list[_Obstacle]
) -> list[CameraPose]:
    """Level cameras at eye height, away from walls and furniture, facing random ways."""
    keys = [c for c in cells if not is_corridor[c]] or list(cells)
    margin = WALL_THICKNESS / 2 + AGENT_RADIUS + START_CLEARANCE
    out: list[CameraPose] = []
    for _ in range(START_CANDIDATES):
        r = cells[keys[int(rng.integers(len(keys)))]]
        x = float(rng.uniform(r.x0 + margin, r.x1 - margin))
        y = float(rng.uniform(r.y0 + margin, r.y1 - margin))
        cx, cy = r.centre
        yaw = math.atan2(cy - y, cx - x) + float(rng.uniform(-START_YAW_SPREAD, START_YAW_SPREAD))
        if any(math.hypot(x - o.x, y - o.y) < o.radius + AGENT_RADIUS + START_CLEARANCE for o in obstacles):
            continue
        out.append(level_camera((x, y, CAMERA_HEIGHT), yaw))
    return out


def level_camera(position: tuple[float, float, float], yaw: float, pitch: float = 0.0) -> CameraPose:
    """OpenCV camera-to-world pose looking along heading `yaw` (from +x, CCW), pitched up by `pitch`."""
    # Yaw 0 looks along +x: optical axis z_cam = +x, image right x_cam = -y, image down y_cam = -z.
    facing_x = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    return se3(rot_z(yaw) @ facing_x @ rot_x(pitch), position)
