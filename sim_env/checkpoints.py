"""Model checkpoints: safetensors save/load and a tolerant loader for foreign state dicts.

Wan2.1, Self-Forcing and InSpatio-World checkpoints use the Wan2.1 parameter names, but wrapped
in training-framework prefixes: ``model.`` (Lightning / wrappers), ``module.`` (DDP),
``_orig_mod.`` (torch.compile) and ``_fsdp_wrapped_module.`` (FSDP), in any combination and
order. Self-Forcing ``.pt`` files also nest the weights under ``generator`` / ``generator_ema``.
:func:`load_compatible` strips all of that and reports what did not map.

The patch embedding of a conditioned config takes more input channels than a Wan2.1-T2V
checkpoint provides (condition | mask | hand channels are concatenated after the noisy latent);
such a weight is loaded into the first input channels and the new channels start at zero, so
the pretrained function is unchanged until finetuning (reported as ``expanded``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from sim_env.model.config import DiTConfig
from sim_env.model.dit import CausalDiT

log = logging.getLogger(__name__)

# Wrapper prefixes added by training frameworks; stripped repeatedly, in any order.
WRAPPER_PREFIXES = ("model.", "module.", "_orig_mod.", "_fsdp_wrapped_module.")
# Keys under which trainers nest the weights (Self-Forcing: generator_ema preferred).
NESTED_STATE_KEYS = ("generator_ema", "generator", "state_dict", "model", "module")
CONFIG_METADATA_KEY = "genworld.config"
# The shipped default model (`checkpoint="default"`): trained by scripts/gpu_train_default.sh,
# described in docs/model.md.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "tiny64.safetensors"
# (out, in, t, h, w): only the patch embedding is widened when conditioning channels are added.
CONV3D_WEIGHT_DIMS = 5

StateDict = dict[str, torch.Tensor]


@dataclass
class LoadReport:
    """What :func:`load_compatible` could not map one-to-one.

    Attributes:
        missing: model keys the checkpoint did not provide (left at their init values).
        unexpected: checkpoint keys the model does not have (ignored).
        mismatched: keys present on both sides with incompatible shapes (left at init).
        expanded: keys whose checkpoint tensor filled the leading input channels of a wider one.
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    expanded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every model key was loaded (nothing missing or mismatched)."""
        return not self.missing and not self.mismatched


def strip_prefixes(key: str, prefixes: tuple[str, ...] = WRAPPER_PREFIXES) -> str:
    """Remove wrapper prefixes from the front of ``key`` until none is left."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                stripped = True
    return key


def _unnest(state: Mapping) -> Mapping:
    """Descend into ``generator_ema`` / ``state_dict`` / … until the values are tensors."""
    while not any(isinstance(v, torch.Tensor) for v in state.values()):
        nested = next((state[k] for k in NESTED_STATE_KEYS if isinstance(state.get(k), Mapping)), None)
        if nested is None:
            break
        state = nested
    return state


def normalize_state_dict(state: Mapping) -> StateDict:
    """Unnest and strip wrapper prefixes; non-tensor entries are dropped."""
    out: StateDict = {}
    for key, value in _unnest(state).items():
        if isinstance(value, torch.Tensor):
            out[strip_prefixes(key)] = value
    return out


def save_checkpoint(
    model_or_state: nn.Module | Mapping, path: str | os.PathLike, config: DiTConfig | None = None
) -> None:
    """Write a safetensors file; the config (if any) goes into the metadata as JSON."""
    if isinstance(model_or_state, nn.Module):
        config = config or getattr(model_or_state, "config", None)
        state = model_or_state.state_dict()
    else:
        state = dict(model_or_state)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    metadata = {CONFIG_METADATA_KEY: config.to_json()} if config is not None else None
    save_file(tensors, os.fspath(path), metadata=metadata)


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[StateDict, DiTConfig | None]:
    """Read a checkpoint: safetensors (with optional config metadata) or a torch ``.pt``/``.pth``."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        with safe_open(path, framework="pt", device=str(device)) as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
            meta = f.metadata() or {}
        text = meta.get(CONFIG_METADATA_KEY)
        return state, DiTConfig.from_json(text) if text else None
    state = torch.load(path, map_location=device, weights_only=True)
    return normalize_state_dict(state), None


def load_compatible(model: nn.Module, source: str | os.PathLike | Mapping) -> LoadReport:
    """Load a Wan2.1 / Self-Forcing / InSpatio-World / GenWorld state dict into ``model`` by name.

    Args:
        model: the target module (e.g. :class:`~sim_env.model.dit.CausalDiT`).
        source: a checkpoint path or a (possibly nested, prefixed) state dict.

    Returns:
        A :class:`LoadReport`; ``report.ok`` means every model key was loaded.
    """
    raw = load_checkpoint(source)[0] if isinstance(source, (str, os.PathLike)) else source
    state = normalize_state_dict(raw)
    own = model.state_dict()
    report = LoadReport()
    to_load: StateDict = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
            continue
        target = own[key]
        if value.shape == target.shape:
            to_load[key] = value
        elif _is_channel_expansion(value, target):
            wide = torch.zeros_like(target, device=value.device, dtype=value.dtype)
            wide[:, : value.shape[1]] = value
            to_load[key] = wide
            report.expanded.append(key)
        else:
            report.mismatched.append(key)
    report.missing = sorted(set(own) - set(to_load) - set(report.mismatched))
    model.load_state_dict(to_load, strict=False)
    report.unexpected.sort()
    return report


def _is_channel_expansion(value: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether ``value`` is the Conv3d weight ``target`` with fewer input channels (dim 1)."""
    return (
        value.dim() == target.dim() == CONV3D_WEIGHT_DIMS
        and value.shape[0] == target.shape[0]
        and value.shape[2:] == target.shape[2:]
        and value.shape[1] < target.shape[1]
    )


def load_world_model(checkpoint: str | os.PathLike | None, config: DiTConfig, seed: int = 0) -> CausalDiT:
    """A `CausalDiT` with a checkpoint's weights (its stored config wins), or seeded random ones.

    Random weights are seeded without touching the global RNG, so building a world does not
    change the caller's random stream; partial checkpoints load what matches and say what not.
    """
    if checkpoint is None:
        log.warning("generative world: no checkpoint given - using RANDOM weights (seed %d)", seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return CausalDiT(config)
    state, stored = load_checkpoint(checkpoint)
    model = CausalDiT(stored or config)
    report = load_compatible(model, state)
    if not report.ok:
        log.warning(
            "checkpoint %s: %d missing, %d mismatched keys left at init",
            checkpoint,
            len(report.missing),
            len(report.mismatched),
        )
    return model
