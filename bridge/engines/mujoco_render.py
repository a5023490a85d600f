"""Offscreen RGB + planar depth from one MuJoCo render pass.

`mujoco.Renderer` renders twice for RGB and depth (its depth pass switches to
segmentation colours). Here one `mjr_render` fills both buffers and one `mjr_readPixels`
reads them, which halves the cost on software GL. Depth comes out of OpenGL's z-buffer,
i.e. it is PLANAR (distance along the optical axis), which is exactly the GenWorld
convention; tests compare it against ray-cast planar depth to keep it honest.

The GL context is created in the constructor and freed by `close()`, which owners must
call (or register with `weakref.finalize`) before the interpreter shuts down: freeing an
OSMesa/EGL context during module teardown prints errors.
"""

from __future__ import annotations

import math
import os

import mujoco
import numpy as np
from numpy.typing import NDArray

# MuJoCo draws the skybox (with depth) as a shell centred on the camera whose distance
# is ~0.7 x far (measured >= 0.68 x far at every field of view, tessellation included).
# Pixels whose RAY distance reaches SKY_DISTANCE_FRACTION x far show the sky: "no hit".
# Scenes keep all geometry far inside that radius.
SKY_DISTANCE_FRACTION = 0.6
MAX_SCENE_GEOMS = 2000


def gl_backend() -> str:
    """The MuJoCo OpenGL backend in use (MUJOCO_GL: egl, osmesa, glfw ...)."""
    return os.environ.get("MUJOCO_GL", "glfw") or "glfw"


class OffscreenRenderer:
    """Renders fixed cameras of one model into (rgb uint8, planar depth float32 with +inf).

    Args:
        model: the compiled model; its <visual><global> offscreen size must cover (width, height).
        height: image rows.
        width: image columns.
    """

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        from mujoco import gl_context  # imported late: picks the backend from MUJOCO_GL

        self._gl = None
        self._context = None
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ValueError(f"{width}x{height} exceeds the model's offscreen buffer")
        self._model = model
        self._height, self._width = height, width
        self._gl = gl_context.GLContext(width, height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=MAX_SCENE_GEOMS)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._rgb = np.empty((height, width, 3), dtype=np.uint8)
        self._zbuffer = np.empty((height, width), dtype=np.float32)
        near = np.float32(model.vis.map.znear * model.stat.extent)
        far = np.float32(model.vis.map.zfar * model.stat.extent)
        # Reverse-Z (mjDEPTH_ZEROFAR) z-buffer b in [0, 1] maps to metric planar depth
        # z = D / (b + C), the inverse of glFrustum's depth mapping (as mujoco.Renderer does).
        self._depth_c = float(near / (far - near))
        self._depth_d = float(far * near / (far - near))
        self._far = float(far)
        # Ray length per unit planar depth at each pixel, from the camera's actual frustum
        # (MuJoCo fits the vertical fov and keeps pixels square).
        self._ray_lengths_by_fovy: dict[float, NDArray[np.float64]] = {}

    @property
    def far(self) -> float:
        """Far clip distance in metres; depth at or beyond it is reported as +inf."""
        return self._far

    def render(self, data: mujoco.MjData, camera_id: int) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        """(rgb (H, W, 3) uint8, depth (H, W) float32 planar metres, +inf = no hit) of one camera."""
        if self._context is None:
            raise RuntimeError("render called after close")
        self._gl.make_current()
        self._camera.fixedcamid = camera_id
        mujoco.mjv_updateScene(
            self._model, data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL.value, self._scene
        )
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._rgb, self._zbuffer, self._rect, self._context)
        rgb = np.ascontiguousarray(self._rgb[::-1])  # OpenGL rows run bottom-up
        depth = (self._depth_d / (self._zbuffer[::-1].astype(np.float64) + self._depth_c)).astype(np.float32)
        depth[depth * self._ray_lengths(camera_id) >= SKY_DISTANCE_FRACTION * self._far] = np.inf
        return rgb, depth

    def _ray_lengths(self, camera_id: int) -> NDArray[np.float64]:
        """Per-pixel ray length per metre of planar depth: sqrt(1 + x_n^2 + y_n^2)."""
        fovy = float(self._model.cam_fovy[camera_id])
        if fovy in self._ray_lengths_by_fovy:
            return self._ray_lengths_by_fovy[fovy]
        half_height = math.tan(math.radians(fovy) / 2.0)
        focal = 0.5 * self._height / half_height
        v, u = np.mgrid[0 : self._height, 0 : self._width].astype(np.float64)
        x = (u - (self._width - 1) / 2.0) / focal
        y = (v - (self._height - 1) / 2.0) / focal
        lengths = np.sqrt(1.0 + x * x + y * y)
        self._ray_lengths_by_fovy[fovy] = lengths
        return lengths

    def close(self) -> None:
        """Frees the MuJoCo render context and the GL context; idempotent."""
        if self._context is not None:
            if self._gl is not None:
                with self._gl.as_current():
                    self._context.free()
            else:
                self._context.free()
            self._context = None
        if self._gl is not None:
            self._gl.free()
            self._gl = None
