"""Offscreen RGB + planar depth from one MuJoCo render pass.

`mujoco.Renderer` renders twice for RGB and depth (its depth pass switches to
segmentation colours). Here one `mjr_render` fills both buffers and one `mjr_readPixels`
reads them, which halves the cost on software GL. Depth comes out of OpenGL's z-buffer,
i.e. it is PLANAR (distance along the optical axis), which is exactly the GenWorld
convention; tests compare it against ray-cast planar depth to keep it honest.

The GL context outlives models: a new episode only rebinds the MuJoCo render context
(textures, buffers), which on OSMesa is ~10x cheaper than a fresh GL context. Owners
must call `close()` (or register it with `weakref.finalize`) before the interpreter
shuts down: freeing an OSMesa/EGL context during module teardown prints errors.
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
_NO_CONTEXT_HINT = (
    "cannot create an OpenGL context (MUJOCO_GL is {backend!r} now; what counts is its value when "
    "mujoco was first imported); on a headless machine set MUJOCO_GL=egl (or osmesa) before "
    "anything imports mujoco"
)


def gl_backend() -> str:
    """The MuJoCo OpenGL backend in use (MUJOCO_GL: egl, osmesa, glfw ...)."""
    return os.environ.get("MUJOCO_GL", "glfw") or "glfw"


class OffscreenRenderer:
    """Renders fixed cameras into (rgb uint8, planar depth float32 with +inf for no hit).

    Args:
        height: image rows.
        width: image columns; every bound model's <visual><global> offscreen size must
            cover (width, height).
    """

    def __init__(self, height: int, width: int) -> None:
        from mujoco import gl_context  # imported late: picks the backend from MUJOCO_GL

        self._height, self._width = height, width
        self._context: mujoco.MjrContext | None = None
        self._model: mujoco.MjModel | None = None
        try:
            self._gl = gl_context.GLContext(width, height)
            with self._gl.as_current():  # fail here, with the hint, if the backend is unusable
                pass
        except Exception as exc:  # backend libraries missing or no display: say what to do
            raise RuntimeError(_NO_CONTEXT_HINT.format(backend=gl_backend())) from exc
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._rgb = np.empty((height, width, 3), dtype=np.uint8)
        self._zbuffer = np.empty((height, width), dtype=np.float32)
        self._ray_lengths_by_fovy: dict[float, NDArray[np.float64]] = {}

    def _bind(self, model: mujoco.MjModel) -> None:
        """Uploads a model's textures and allocates its buffers (once per model)."""
        if model is self._model:
            return
        if self._width > model.vis.global_.offwidth or self._height > model.vis.global_.offheight:
            raise ValueError(f"{self._width}x{self._height} exceeds the model's offscreen buffer")
        self._free_context()
        try:
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
        except mujoco.FatalError as exc:  # e.g. GLFW chosen on a headless machine
            raise RuntimeError(_NO_CONTEXT_HINT.format(backend=gl_backend())) from exc
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=MAX_SCENE_GEOMS)
        self._model = model
        near = np.float32(model.vis.map.znear * model.stat.extent)
        far = np.float32(model.vis.map.zfar * model.stat.extent)
        # Reverse-Z (mjDEPTH_ZEROFAR) z-buffer b in [0, 1] maps to metric planar depth
        # z = D / (b + C), the inverse of glFrustum's depth mapping (as mujoco.Renderer does).
        self._depth_c = float(near / (far - near))
        self._depth_d = float(far * near / (far - near))
        self._far = float(far)

    def render(
        self, model: mujoco.MjModel, data: mujoco.MjData, camera_id: int
    ) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        """(rgb (H, W, 3) uint8, depth (H, W) float32 planar metres, +inf = no hit) of one camera."""
        if self._gl is None:
            raise RuntimeError("render called after close")
        # The context is current only while GL work runs, then released: a World may be
        # driven from any thread (a gRPC server runs each call on a pool thread), one call
        # at a time, and a context left current on another thread crashes OSMesa and EGL.
        with self._gl.as_current():
            self._bind(model)
            self._camera.fixedcamid = camera_id
            mujoco.mjv_updateScene(
                model, data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL.value, self._scene
            )
            mujoco.mjr_render(self._rect, self._scene, self._context)
            mujoco.mjr_readPixels(self._rgb, self._zbuffer, self._rect, self._context)
        rgb = np.ascontiguousarray(self._rgb[::-1])  # OpenGL rows run bottom-up
        depth = (self._depth_d / (self._zbuffer[::-1].astype(np.float64) + self._depth_c)).astype(np.float32)
        sky = depth * self._ray_lengths(float(model.cam_fovy[camera_id])) >= SKY_DISTANCE_FRACTION * self._far
        depth[sky] = np.inf
        return rgb, depth

    def _ray_lengths(self, fovy_deg: float) -> NDArray[np.float64]:
        """Per-pixel ray length per metre of planar depth, sqrt(1 + x_n^2 + y_n^2).

        From the camera's actual frustum: MuJoCo fits the vertical fov and keeps pixels
        square, with pixel centres at integer coordinates as in `intrinsics_from_fov`.
        """
        if fovy_deg not in self._ray_lengths_by_fovy:
            focal = 0.5 * self._height / math.tan(math.radians(fovy_deg) / 2.0)
            v, u = np.mgrid[0 : self._height, 0 : self._width].astype(np.float64)
            x = (u - (self._width - 1) / 2.0) / focal
            y = (v - (self._height - 1) / 2.0) / focal
            self._ray_lengths_by_fovy[fovy_deg] = np.sqrt(1.0 + x * x + y * y)
        return self._ray_lengths_by_fovy[fovy_deg]

    def _free_context(self) -> None:
        if self._context is not None:
            with self._gl.as_current():
                self._context.free()
            self._context = None
            self._model = None

    def close(self) -> None:
        """Frees the MuJoCo render context and the GL context; idempotent."""
        if self._gl is not None:
            self._free_context()
            self._gl.free()
            self._gl = None
