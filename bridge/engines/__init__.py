"""Ground-truth engines that implement the World protocol in-process."""

__all__ = ["MujocoWorld"]


def __getattr__(name: str):  # lazy: importing bridge.engines must not load MuJoCo/OpenGL
    if name == "MujocoWorld":
        from bridge.engines.mujoco_world import MujocoWorld

        return MujocoWorld
    raise AttributeError(f"module 'bridge.engines' has no attribute {name!r}")
