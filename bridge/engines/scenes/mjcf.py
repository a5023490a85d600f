"""Shared MJCF building blocks for the procedural scenes.

Scenes are generated as MJCF text from a seeded numpy Generator, so one seed always
yields the same XML and therefore the same compiled model and bit-identical frames.
Materials are deliberately matte (no specular, no reflectance) and the headlight adds
only ambient light: shading then depends on the scene and its fixed lights but not on
the viewpoint, which is what makes the engine's RGB usable as ground truth for
reprojection (a surface point keeps its colour when the camera moves).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

# The model's statistic extent fixes the clip planes: near = ZNEAR * extent and
# far = ZFAR * extent (MuJoCo's <visual><map> fractions). 10 m x (0.002, 10) gives a 2 cm
# near plane (closer than any hand or wall can come) and a 100 m far plane. MuJoCo draws
# the skybox as a shell around the camera at ~0.7 x far, so everything procedural must
# stay well inside 0.6 x far = 60 m of the camera (scenes span < 30 m).
SCENE_EXTENT = 10.0
ZNEAR_FRACTION = 0.002
ZFAR_FRACTION = 10.0
FAR_CLIP_M = SCENE_EXTENT * ZFAR_FRACTION
NEAR_CLIP_M = SCENE_EXTENT * ZNEAR_FRACTION

# Ambient-only headlight: lights every surface evenly wherever the camera is.
HEADLIGHT_AMBIENT = 0.35
SECOND_COLOUR_SPREAD = 0.35  # a texture's second colour varies the first by up to this
TEXTURE_SIZE = 128  # texels per side of each builtin 2D texture
SKYBOX_SIZE = 128
SKY_TOP_RANGE, SKY_BOTTOM_RANGE = (0.3, 0.9), (0.05, 0.6)
# Colour component range of random materials (avoid pure black and blown-out white).
COLOUR_RANGE = (0.1, 0.95)
# Directional lights are placed (for shadow maps) this far up-light from the centre.
SUN_DISTANCE = 5.0
TEXTURE_BUILTINS = ("checker", "gradient", "flat")
TEXTURE_BUILTIN_WEIGHTS = (0.45, 0.3, 0.25)  # favour patterns: they make motion visible
SHADOW_MAP_SIZE = 1024  # texels per side; the shadow pass dominates tabletop frames on osmesa
# A directional light's shadow map covers +-shadowclip x extent around the statistic
# centre; scenes with shadows pass a centre and a clip radius (metres) covering their
# shadow casters, so the map's texels stay small.
DEFAULT_SHADOW_RADIUS = 10.0
# No multisampling: with MSAA the colour is a 4-sample average but the depth read back is
# one sample taken ~0.4 px off the pixel centre, so depth and K would disagree by a
# sub-pixel shift (measured: exactly the standard 4x sample-0 offset). Ground truth
# wants depth at the pixel centre that K describes.
OFFSCREEN_SAMPLES = 0

# Collision classes (contype / conaffinity bits): scenery and objects collide with
# everything; hand geoms collide with scenery and objects but never with other hands
# (fingers of one hand may overlap without jamming the kinematic model).
SCENERY_BITS = 1
HAND_BITS = 2
# Geom groups MuJoCo draws by default are 0-2; colliders that must stay unseen go here.
INVISIBLE_GROUP = 3
VISIBLE_GEOM_GROUPS = (1, 1, 1, 0, 0, 0)  # a geomgroup mask for mj_ray that matches the renderer


def fmt(values: float | Iterable[float]) -> str:
    """Space-separated MJCF number list with enough digits to round-trip float64 closely."""
    if isinstance(values, int | float | np.floating | np.integer):
        values = [values]
    return " ".join(f"{float(v):.9g}" for v in values)


def random_colour(
    rng: np.random.Generator, lo: float = COLOUR_RANGE[0], hi: float = COLOUR_RANGE[1]
) -> NDArray[np.float64]:
    """An RGB colour with components uniform in [lo, hi]."""
    return rng.uniform(lo, hi, size=3)


# Lights are near-white: intensity per channel varies by at most this much (a tint).
LIGHT_TINT = 0.08


def light_colour(rng: np.random.Generator, intensity_range: tuple[float, float]) -> NDArray[np.float64]:
    """A slightly tinted white light of random intensity."""
    return np.clip(rng.uniform(*intensity_range) + rng.uniform(-LIGHT_TINT, LIGHT_TINT, 3), 0.0, 1.0)


def sun_direction(rng: np.random.Generator, elevation_range_deg: tuple[float, float]) -> NDArray[np.float64]:
    """Unit direction of sunlight (pointing down) from a random azimuth and elevation."""
    elevation = math.radians(float(rng.uniform(*elevation_range_deg)))
    azimuth = float(rng.uniform(0.0, 2 * math.pi))
    horizontal = math.cos(elevation)
    return -np.array([horizontal * math.cos(azimuth), horizontal * math.sin(azimuth), math.sin(elevation)])


@dataclass
class MjcfBuilder:
    """Accumulates the sections of one MJCF document.

    Attributes:
        model_name: <mujoco model=...>.
        offscreen_size: (width, height) of the offscreen framebuffer; must cover the
            render resolution (MuJoCo refuses larger renders).
        timestep: physics step in seconds.
        centre: the model's statistic centre (where directional shadows are centred).
        shadow_radius: half-size in metres of the directional-shadow map.
    """

    model_name: str
    offscreen_size: tuple[int, int]
    timestep: float = 0.002
    centre: tuple[float, float, float] = (0.0, 0.0, 1.0)
    shadow_radius: float = DEFAULT_SHADOW_RADIUS
    assets: list[str] = field(default_factory=list)
    worldbody: list[str] = field(default_factory=list)
    actuators: list[str] = field(default_factory=list)
    equalities: list[str] = field(default_factory=list)
    _material_count: int = 0

    def skybox(self, rng: np.random.Generator) -> None:
        """A random two-colour gradient sky (light horizon, darker zenith or the reverse)."""
        top, bottom = random_colour(rng, *SKY_TOP_RANGE), random_colour(rng, *SKY_BOTTOM_RANGE)
        self.assets.append(
            f'<texture name="sky" type="skybox" builtin="gradient" rgb1="{fmt(top)}" '
            f'rgb2="{fmt(bottom)}" width="{SKYBOX_SIZE}" height="{SKYBOX_SIZE}"/>'
        )

    def material(
        self,
        rng: np.random.Generator,
        repeat_per_m: float = 1.0,
        builtin: str | None = None,
        colour: ArrayLike | None = None,
    ) -> str:
        """A new matte material with a random builtin texture; returns its name.

        Args:
            rng: scene generator.
            repeat_per_m: texture repeats per metre (texuniform), i.e. pattern density.
            builtin: checker, gradient or flat; random when None.
            colour: main colour; random when None. The second colour is a random
                variation of it, so patterns stay readable but not garish.
        """
        name = f"mat{self._material_count}"
        self._material_count += 1
        kind = builtin or str(rng.choice(TEXTURE_BUILTINS, p=TEXTURE_BUILTIN_WEIGHTS))
        rgb1 = random_colour(rng) if colour is None else np.asarray(colour, dtype=np.float64)
        rgb2 = np.clip(rgb1 + rng.uniform(-SECOND_COLOUR_SPREAD, SECOND_COLOUR_SPREAD, size=3), 0.0, 1.0)
        self.assets.append(
            f'<texture name="tex_{name}" type="2d" builtin="{kind}" rgb1="{fmt(rgb1)}" rgb2="{fmt(rgb2)}" '
            f'width="{TEXTURE_SIZE}" height="{TEXTURE_SIZE}"/>'
        )
        self.assets.append(
            f'<material name="{name}" texture="tex_{name}" texrepeat="{fmt([repeat_per_m] * 2)}" '
            'texuniform="true" specular="0" shininess="0" reflectance="0"/>'
        )
        return name

    def plain_material(self, colour: ArrayLike) -> str:
        """A new untextured matte material of one colour; returns its name."""
        name = f"mat{self._material_count}"
        self._material_count += 1
        rgba = [*np.asarray(colour, dtype=np.float64)[:3], 1.0]
        self.assets.append(
            f'<material name="{name}" rgba="{fmt(rgba)}" specular="0" shininess="0" reflectance="0"/>'
        )
        return name

    def box(
        self, name: str, centre: ArrayLike, half_size: ArrayLike, material: str, yaw: float = 0.0
    ) -> None:
        """A static box in the world body (walls, floors, furniture)."""
        self.worldbody.append(
            f'<geom name="{name}" type="box" pos="{fmt(centre)}" size="{fmt(half_size)}" '
            f'euler="0 0 {yaw:.9g}" material="{material}"/>'
        )

    def invisible_box(self, name: str, centre: ArrayLike, half_size: ArrayLike) -> None:
        """A static box that blocks the camera but is never drawn (window glass, skylights).

        It lives in geom group INVISIBLE_GROUP, which MuJoCo's default visual options
        hide; ray casts that should see what the camera sees must exclude that group.
        """
        self.worldbody.append(
            f'<geom name="{name}" type="box" pos="{fmt(centre)}" size="{fmt(half_size)}" '
            f'group="{INVISIBLE_GROUP}" rgba="0 0 0 0"/>'
        )

    def cylinder(
        self, name: str, centre: ArrayLike, radius: float, half_height: float, material: str
    ) -> None:
        """A static upright cylinder in the world body."""
        self.worldbody.append(
            f'<geom name="{name}" type="cylinder" pos="{fmt(centre)}" size="{fmt([radius, half_height])}" '
            f'material="{material}"/>'
        )

    def directional_light(self, direction: ArrayLike, diffuse: ArrayLike, cast_shadow: bool) -> None:
        """A sun-like light: same direction everywhere, diffuse only (no specular)."""
        d = np.asarray(direction, dtype=np.float64)
        self.worldbody.append(
            f'<light directional="true" pos="{fmt(-SUN_DISTANCE * d)}" dir="{fmt(d)}" '
            f'diffuse="{fmt(diffuse)}" specular="0 0 0" castshadow="{str(cast_shadow).lower()}"/>'
        )

    def point_light(self, pos: ArrayLike, diffuse: ArrayLike, attenuation: ArrayLike) -> None:
        """A lamp: diffuse only, no shadow (cheap on software GL)."""
        self.worldbody.append(
            f'<light pos="{fmt(pos)}" dir="0 0 -1" diffuse="{fmt(diffuse)}" specular="0 0 0" '
            f'attenuation="{fmt(attenuation)}" cutoff="180" castshadow="false"/>'
        )

    def camera(self, name: str, fovy_deg: float) -> None:
        """A world-fixed camera; the engine moves it through model.cam_pos / cam_quat."""
        self.worldbody.append(f'<camera name="{name}" pos="0 0 0" quat="1 0 0 0" fovy="{fovy_deg:.9g}"/>')

    def to_xml(self) -> str:
        """The complete MJCF document."""
        width, height = self.offscreen_size
        ambient = fmt([HEADLIGHT_AMBIENT] * 3)
        return "\n".join(
            [
                f'<mujoco model="{self.model_name}">',
                '  <compiler angle="radian" autolimits="true"/>',
                f'  <option timestep="{self.timestep:.9g}" integrator="implicitfast"/>',
                f'  <statistic extent="{SCENE_EXTENT:.9g}" center="{fmt(self.centre)}"/>',
                "  <visual>",
                f'    <global offwidth="{width}" offheight="{height}"/>',
                f'    <map znear="{ZNEAR_FRACTION:.9g}" zfar="{ZFAR_FRACTION:.9g}" '
                f'shadowclip="{self.shadow_radius / SCENE_EXTENT:.9g}"/>',
                f'    <quality shadowsize="{SHADOW_MAP_SIZE}" offsamples="{OFFSCREEN_SAMPLES}"/>',
                f'    <headlight ambient="{ambient}" diffuse="0 0 0" specular="0 0 0"/>',
                "  </visual>",
                f'  <default><geom contype="{SCENERY_BITS}" '
                f'conaffinity="{SCENERY_BITS | HAND_BITS}"/></default>',
                "  <asset>",
                *("    " + a for a in self.assets),
                "  </asset>",
                "  <worldbody>",
                *("    " + w for w in self.worldbody),
                "  </worldbody>",
                "  <equality>",
                *("    " + e for e in self.equalities),
                "  </equality>",
                "  <actuator>",
                *("    " + a for a in self.actuators),
                "  </actuator>",
                "</mujoco>",
            ]
        )
