"""Shadow mode: a ground-truth World driven to the env's poses and hand states in lockstep.

Each step the shadow World is teleported to the exact camera poses the env produced (nav) or
given the same hand actions (hands), then rendered; the env puts the ground-truth frames and
per-step fidelity (PSNR of RGB, mean absolute depth error) into `info`. For the generative world
this is the side-by-side evaluation of ARCHITECTURE.md §2; with world="mujoco" it is a
consistency check (PSNR is infinite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bridge.types import Action, Observation
from bridge.worlds import make_world
from sim_env.envs.config import EnvConfig


def psnr(generated: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (inf when identical)."""
    mse = float(np.mean((generated.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def depth_error(generated: np.ndarray, truth: np.ndarray, far: float) -> float:
    """Mean absolute depth difference in metres, both clipped to [0, far] (+inf = far)."""
    g = np.clip(np.nan_to_num(np.asarray(generated, np.float64).squeeze(), posinf=far), 0.0, far)
    t = np.clip(np.nan_to_num(np.asarray(truth, np.float64).squeeze(), posinf=far), 0.0, far)
    return float(np.mean(np.abs(g - t)))


class Shadow:
    """A ground-truth World mirroring the env's agents.

    Args:
        spec: "mujoco" or "grpc://HOST:PORT".
        cfg: the env's configuration (scene, resolution).
        num_agents: agents of the env's world.
    """

    def __init__(self, spec: str, cfg: EnvConfig, num_agents: int = 1) -> None:
        height, width = cfg.resolution
        kwargs = {"scene": cfg.scene, "height": height, "width": width, "num_agents": num_agents}
        self.world = make_world(spec, **kwargs) if spec == "mujoco" else make_world(spec)
        self.agent_ids = tuple(self.world.handshake().agent_ids)[:num_agents]
        self.far = cfg.depth_far
        self.latest: list[Observation] = []

    def reset(self, seed: int) -> list[Observation]:
        """Resets the shadow to the env's scene seed (the scene the generative references come from)."""
        frames = self.world.reset(seed=int(seed))
        self.latest = [frames[a] for a in self.agent_ids]
        return self.latest

    def sync(self, poses: np.ndarray, hand_actions: np.ndarray | None = None) -> list[Observation]:
        """Drives every agent to ``poses`` (A, 4, 4), applying ``hand_actions`` (A, 14) first if given."""
        if hand_actions is not None:
            self.world.step(
                {
                    a: Action.from_hand(np.clip(h, [-1] * 6 + [0] + [-1] * 6 + [0], 1))
                    for a, h in zip(self.agent_ids, hand_actions, strict=True)
                }
            )
        self.latest = [self.world.set_pose(a, _rigid(p)) for a, p in zip(self.agent_ids, poses, strict=True)]
        return self.latest

    def metrics(self, rgb: Sequence[np.ndarray], depth: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Per-agent fidelity of generated frames against the latest ground truth."""
        return {
            "psnr": np.array([psnr(g, t.rgb) for g, t in zip(rgb, self.latest, strict=True)]),
            "depth_error": np.array(
                [depth_error(g, t.depth, self.far) for g, t in zip(depth, self.latest, strict=True)]
            ),
        }

    def close(self) -> None:
        """Closes the shadow World."""
        self.world.close()


def _rigid(pose: np.ndarray) -> np.ndarray:
    """Re-orthonormalises a float32-rounded pose so the World's rigidity check accepts it."""
    pose = np.asarray(pose, np.float64)
    u, _, vt = np.linalg.svd(pose[:3, :3])
    out = np.eye(4)
    out[:3, :3] = u @ vt
    out[:3, 3] = pose[:3, 3]
    return out
