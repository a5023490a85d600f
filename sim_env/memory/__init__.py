"""Explicit geometric memory and ST-cache memory-pool policy of the generative world.

- `point_cloud.PointCloudMemory`: batched, bounded, voxelized global point cloud.
- `splat.splat`: z-buffered nearest-pixel splatting (torch; fused CuPy on CUDA).
- `pool_policy.MemoryPoolPolicy`: view-guided selection, MDL-style dedup, FPS pruning.
"""

from sim_env.memory.point_cloud import PointCloudMemory
from sim_env.memory.pool_policy import MemoryPoolPolicy
from sim_env.memory.splat import splat

__all__ = ["MemoryPoolPolicy", "PointCloudMemory", "splat"]
