"""The generative world model: causal DiT, its configs, 3D RoPE, Plücker camera and ST-cache."""

from sim_env.model.config import CONFIGS, DiTConfig, decode_depth, encode_depth, get_config
from sim_env.model.dit import CausalDiT, count_parameters
from sim_env.model.plucker import PluckerEmbedding, plucker_rays
from sim_env.model.st_cache import DROP, AdmitPolicy, STCache, drop_policy

__all__ = [
    "CONFIGS",
    "DROP",
    "AdmitPolicy",
    "CausalDiT",
    "DiTConfig",
    "PluckerEmbedding",
    "STCache",
    "count_parameters",
    "decode_depth",
    "drop_policy",
    "encode_depth",
    "get_config",
    "plucker_rays",
]
