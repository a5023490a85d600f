"""Ground-truth engines that implement the World protocol in-process.

MuJoCo picks its OpenGL backend from MUJOCO_GL when `mujoco` is first imported. On a
headless Linux machine (no DISPLAY) with MUJOCO_GL unset, its default (GLFW) cannot
create a context, so this package picks one: EGL on machines with an NVIDIA device
(hardware rendering), OSMesa where it is installed (the software rasteriser CPU
machines and CI use), EGL otherwise (Mesa's EGL also renders in software). Set
MUJOCO_GL (egl, osmesa, glfw) before importing anything to choose explicitly.
"""

import ctypes.util
import os
import sys


def _headless_gl_backend() -> str:
    if os.path.exists("/dev/nvidiactl"):
        return "egl"
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    return "egl"


if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = _headless_gl_backend()
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

__all__ = ["MujocoWorld"]


def __getattr__(name: str):  # lazy: importing bridge.engines must not load MuJoCo/OpenGL
    if name == "MujocoWorld":
        from bridge.engines.mujoco_world import MujocoWorld

        return MujocoWorld
    raise AttributeError(f"module 'bridge.engines' has no attribute {name!r}")
