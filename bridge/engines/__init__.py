"""Ground-truth engines that implement the World protocol in-process.

MuJoCo picks its OpenGL backend from MUJOCO_GL when `mujoco` is first imported. On a
headless Linux machine (no DISPLAY) with MUJOCO_GL unset, its default (GLFW) cannot
create a context, so this package defaults to EGL there: hardware rendering on GPU
machines, Mesa's software rasteriser elsewhere. Set MUJOCO_GL (egl, osmesa, glfw)
before importing anything to choose explicitly.
"""

import os
import sys

if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

__all__ = ["MujocoWorld"]


def __getattr__(name: str):  # lazy: importing bridge.engines must not load MuJoCo/OpenGL
    if name == "MujocoWorld":
        from bridge.engines.mujoco_world import MujocoWorld

        return MujocoWorld
    raise AttributeError(f"module 'bridge.engines' has no attribute {name!r}")
