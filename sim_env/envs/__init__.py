"""GenWorld's Gymnasium, vector and PettingZoo environments (docs/envs.md).

Importing this package stays light: env classes are loaded by Gymnasium from entry-point strings.
"""

# MuJoCo fixes its OpenGL backend when first imported; bridge.engines picks a headless one
# (EGL/OSMesa) when MUJOCO_GL is unset. Import it before any env module imports mujoco.
import bridge.engines  # noqa: F401 - light: sets MUJOCO_GL only
