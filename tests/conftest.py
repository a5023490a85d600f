"""Suite-wide settings: headless MuJoCo and the bridge package on the path."""

import os

# osmesa renders on any CPU machine; GPU machines export MUJOCO_GL=egl themselves.
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
