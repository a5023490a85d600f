"""Tiny-VAE with the TAEHV architecture for Wan2.1 latents: parallel and constant-memory streaming.

InSpatio-World (§3.4) swaps the Wan-VAE decoder for a Tiny-VAE (TAEHV, madebyollin/taehv) to
decode in real time. This is an independent implementation of that architecture, laid out so that
public TAEHV weights (``taew2_1.pth``) load by key name (see :func:`load_taehv_state_dict`).

Architecture (decoder, ``nn.Sequential`` indices = checkpoint key prefixes ``decoder.N``)::

    0 Clamp  1 conv3x3(16→256)  2 ReLU
    3–5   MemBlock(256)  6  Upsample×2  7  TGrow(256, ×1)  8  conv3x3(256→128, no bias)
    9–11  MemBlock(128)  12 Upsample×2  13 TGrow(128, ×2)  14 conv3x3(128→64, no bias)
    15–17 MemBlock(64)   18 Upsample×2  19 TGrow(64, ×2)   20 conv3x3(64→64, no bias)
    21 ReLU  22 conv3x3(64→3)

Every layer is a per-frame 2D op except two kinds of temporal layers:

- ``MemBlock`` sees its own input from the *previous* frame (zeros before the first frame); this
  is the only temporal receptive field, which makes the network causal and streamable.
- ``TGrow`` (decoder) emits ``stride`` frames per input frame from a 1×1 conv; ``TPool``
  (encoder) folds ``stride`` consecutive frames into one by a 1×1 conv over their stacked channels.

So T latent frames decode to 4·T frames at 8× the resolution; like the Wan-VAE's causal first
latent (which encodes a single frame), the first ``t_upscale − 1 = 3`` decoded frames are dropped,
giving ``1 + 4·(T − 1)`` frames.

Streaming: since a MemBlock only needs the previous frame's input, the whole temporal state is one
tensor per MemBlock (the last frame that entered it), of fixed shape. Within one latent step the
sub-frames produced by a TGrow are processed *together* (the memory for sub-frame k is simply the
input of sub-frame k − 1), so the parallel and streaming modes share one code path
(:func:`_run_blocks`) and agree to float rounding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

#: Wan2.1 VAE latent channels.
WAN21_LATENT_CHANNELS = 16
#: RGB.
IMAGE_CHANNELS = 3
#: Decoder inputs are soft-clamped to ±CLAMP_LIMIT by ``tanh(x / L)·L``.
CLAMP_LIMIT = 3.0
#: Spatial upsampling factor of each decoder stage that upsamples.
STAGE_SPACE_FACTOR = 2
#: Temporal growth / pooling factor of each decoder / encoder stage that has one enabled.
STAGE_TIME_FACTOR = 2
#: MemBlocks per stage.
MEMBLOCKS_PER_STAGE = 3

State = tuple[torch.Tensor, ...]
"""Streaming state: for each MemBlock in order, the (B, C, H, W) input of the previous frame."""


@dataclass(frozen=True)
class TAEHVConfig:
    """Hyper-parameters of the TAEHV layout.

    Attributes:
        latent_channels: latent channels (16 for Wan2.1).
        image_channels: output channels per pixel (3, RGB).
        patch_size: pixel-(un)shuffle patch at the image end (1 for Wan2.1).
        decoder_widths: channel widths of the three decoder stages and the final projection.
        encoder_width: channel width of the encoder.
        decoder_time_upscale: per decoder stage, whether its TGrow doubles the frame count.
        decoder_space_upscale: per decoder stage, whether it upsamples 2× spatially.
        encoder_time_downscale: per encoder stage, whether its TPool halves the frame count.
        with_encoder: build the encoder too (``encoder.N`` keys); the runtime only decodes.
    """

    latent_channels: int = WAN21_LATENT_CHANNELS
    image_channels: int = IMAGE_CHANNELS
    patch_size: int = 1
    decoder_widths: tuple[int, int, int, int] = (256, 128, 64, 64)
    encoder_width: int = 64
    decoder_time_upscale: tuple[bool, bool, bool] = (False, True, True)
    decoder_space_upscale: tuple[bool, bool, bool] = (True, True, True)
    encoder_time_downscale: tuple[bool, bool, bool] = (True, True, False)
    with_encoder: bool = True

    @property
    def t_upscale(self) -> int:
        """Decoded frames per latent frame (4 for Wan2.1)."""
        return STAGE_TIME_FACTOR ** sum(self.decoder_time_upscale)

    @property
    def t_downscale(self) -> int:
        """Input frames per latent frame in the encoder (4 for Wan2.1)."""
        return STAGE_TIME_FACTOR ** sum(self.encoder_time_downscale)

    @property
    def space_upscale(self) -> int:
        """Pixels per latent along H and W (8 for Wan2.1)."""
        return STAGE_SPACE_FACTOR ** sum(self.decoder_space_upscale) * self.patch_size

    @property
    def frames_to_trim(self) -> int:
        """Leading decoded frames dropped so T latents give ``1 + t_upscale·(T − 1)`` frames."""
        return self.t_upscale - 1


#: The public ``taew2_1.pth`` layout (Wan2.1 latents, 16 channels).
TAEW2_1 = TAEHVConfig()
#: Same topology at a few channels, for fast CPU tests.
TAEHV_TINY_TEST = replace(TAEW2_1, decoder_widths=(16, 8, 8, 8), encoder_width=8)
#: Layouts by the names that ``DiTConfig.vae`` uses.
TAEHV_CONFIGS: dict[str, TAEHVConfig] = {"taew2_1": TAEW2_1, "taehv-tiny-test": TAEHV_TINY_TEST}


def get_taehv_config(name: str) -> TAEHVConfig:
    """Named TAEHV layout; raises KeyError listing the known names."""
    try:
        return TAEHV_CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown TAEHV layout {name!r}; known: {sorted(TAEHV_CONFIGS)}") from None


def _conv3(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, kernel_size=3, stride=stride, padding=1, bias=bias)


class Clamp(nn.Module):
    """Soft clamp ``tanh(x / L)·L``: keeps out-of-distribution latents from blowing up the decoder."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the soft clamp elementwise."""
        return torch.tanh(x / CLAMP_LIMIT) * CLAMP_LIMIT


class MemBlock(nn.Module):
    """Residual 3-conv block whose first conv also sees the previous frame's input.

    Keys: ``conv.{0,2,4}.{weight,bias}`` and, only when widths differ, ``skip.weight``.
    """

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.n_in = n_in
        self.conv = nn.Sequential(
            _conv3(2 * n_in, n_out), nn.ReLU(), _conv3(n_out, n_out), nn.ReLU(), _conv3(n_out, n_out)
        )
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        """x, past: (N, C, H, W); ``past`` is this block's input one frame earlier."""
        return self.act(self.conv(torch.cat([x, past], 1)) + self.skip(x))


class TGrow(nn.Module):
    """Temporal upsampling: one frame → ``stride`` frames from a 1×1 conv (key ``conv.weight``)."""

    def __init__(self, n_f: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(n_f, n_f * stride, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) → (B, T·stride, C, H, W); channel group k becomes sub-frame k."""
        b, t, c, h, w = x.shape
        y = self.conv(x.reshape(b * t, c, h, w))
        return y.reshape(b, t * self.stride, c, h, w)


class TPool(nn.Module):
    """Temporal downsampling: ``stride`` frames → one by a 1×1 conv over their stacked channels."""

    def __init__(self, n_f: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(n_f * stride, n_f, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) → (B, T / stride, C, H, W); T must be a multiple of ``stride``."""
        b, t, c, h, w = x.shape
        y = self.conv(x.reshape(b * t // self.stride, self.stride * c, h, w))
        return y.reshape(b, t // self.stride, c, h, w)


def _run_blocks(
    blocks: nn.Sequential, x: torch.Tensor, memory: Sequence[torch.Tensor] | None
) -> tuple[torch.Tensor, State]:
    """Run a TAEHV block sequence over (B, T, C, H, W) frames, given each MemBlock's past input.

    Args:
        blocks: the encoder or decoder sequence.
        x: the T frames of this call, in time order.
        memory: per MemBlock, the (B, C, H, W) input of the frame before ``x``; None = zeros
            (start of a clip).

    Returns:
        The output frames and the new memory (per MemBlock, the input of its last frame here).
    """
    new_memory: list[torch.Tensor] = []
    mem_index = 0
    for block in blocks:
        if isinstance(block, (TGrow, TPool)):
            x = block(x)
            continue
        b, t, c, h, w = x.shape
        if isinstance(block, MemBlock):
            first = x.new_zeros(b, 1, c, h, w) if memory is None else memory[mem_index].unsqueeze(1)
            past = torch.cat([first, x[:, :-1]], 1)
            new_memory.append(x[:, -1].clone())
            mem_index += 1
            y = block(x.reshape(b * t, c, h, w), past.reshape(b * t, c, h, w))
        else:
            y = block(x.reshape(b * t, c, h, w))
        x = y.reshape(b, t, *y.shape[1:])
    return x, tuple(new_memory)


class TAEHV(nn.Module):
    """TAEHV decoder (and optionally encoder) with parallel and streaming decoding.

    Args:
        config: the layout; :data:`TAEW2_1` matches the public ``taew2_1.pth``.
    """

    def __init__(self, config: TAEHVConfig = TAEW2_1) -> None:
        super().__init__()
        self.config = config
        if config.with_encoder:
            self.encoder = self._build_encoder(config)
        self.decoder = self._build_decoder(config)

    @staticmethod
    def _build_decoder(cfg: TAEHVConfig) -> nn.Sequential:
        n_f = cfg.decoder_widths
        layers: list[nn.Module] = [Clamp(), _conv3(cfg.latent_channels, n_f[0]), nn.ReLU()]
        for stage in range(3):
            width = n_f[stage]
            layers += [MemBlock(width, width) for _ in range(MEMBLOCKS_PER_STAGE)]
            space = STAGE_SPACE_FACTOR if cfg.decoder_space_upscale[stage] else 1
            layers.append(nn.Upsample(scale_factor=space))
            layers.append(TGrow(width, STAGE_TIME_FACTOR if cfg.decoder_time_upscale[stage] else 1))
            layers.append(_conv3(width, n_f[stage + 1], bias=False))
        layers += [nn.ReLU(), _conv3(n_f[3], cfg.image_channels * cfg.patch_size**2)]
        return nn.Sequential(*layers)

    @staticmethod
    def _build_encoder(cfg: TAEHVConfig) -> nn.Sequential:
        w = cfg.encoder_width
        layers: list[nn.Module] = [_conv3(cfg.image_channels * cfg.patch_size**2, w), nn.ReLU()]
        for stage in range(3):
            layers.append(TPool(w, STAGE_TIME_FACTOR if cfg.encoder_time_downscale[stage] else 1))
            layers.append(_conv3(w, w, stride=2, bias=False))
            layers += [MemBlock(w, w) for _ in range(MEMBLOCKS_PER_STAGE)]
        layers.append(_conv3(w, cfg.latent_channels))
        return nn.Sequential(*layers)

    # ---------------------------------------------------------------- decoding

    def _finish(self, frames: torch.Tensor) -> torch.Tensor:
        if self.config.patch_size > 1:
            b, t = frames.shape[:2]
            frames = F.pixel_shuffle(frames.flatten(0, 1), self.config.patch_size)
            frames = frames.reshape(b, t, *frames.shape[1:])
        return frames.clamp(0.0, 1.0)

    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        """Parallel mode: decode a whole clip at once (activation memory grows with T).

        Args:
            latents: (B, T, latent_channels, H, W).

        Returns:
            (B, 1 + t_upscale·(T − 1), 3, 8H, 8W) RGB in [0, 1].
        """
        frames, _ = _run_blocks(self.decoder, latents, None)
        return self._finish(frames)[:, self.config.frames_to_trim :]

    def init_decoder_state(
        self,
        batch: int,
        latent_height: int,
        latent_width: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> State:
        """Zero streaming state (= the start of a clip) for latents of the given size.

        Returns:
            Per MemBlock a zero (B, C, h, w) tensor; total size is fixed for the whole stream.
        """
        state: list[torch.Tensor] = []
        scale = 1
        for block in self.decoder:
            if isinstance(block, MemBlock):
                shape = (batch, block.n_in, latent_height * scale, latent_width * scale)
                state.append(torch.zeros(shape, device=device, dtype=dtype))
            elif isinstance(block, nn.Upsample):
                scale *= int(block.scale_factor)
        return tuple(state)

    def decode_step(self, latent: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Streaming mode: decode one latent frame given the state after the previous one.

        Fixed shapes in and out (no first-frame special case here, so the call can be captured in
        a CUDA graph); :class:`TAEHVStreamingDecoder` drops the leading frames of a stream.

        Args:
            latent: (B, latent_channels, H, W) or (B, 1, latent_channels, H, W).
            state: from :meth:`init_decoder_state` or the previous call.

        Returns:
            (B, t_upscale, 3, 8H, 8W) RGB frames in [0, 1] and the new state (same shapes).
        """
        if latent.ndim == 4:
            latent = latent.unsqueeze(1)
        frames, new_state = _run_blocks(self.decoder, latent, state)
        return self._finish(frames), new_state

    # ---------------------------------------------------------------- encoding

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """Parallel encode (B, T, 3, H, W) RGB in [0, 1] → (B, ⌈T / 4⌉, 16, H/8, W/8) latents.

        T is padded at the end to a multiple of ``t_downscale`` by repeating the last frame.
        """
        if not self.config.with_encoder:
            raise RuntimeError("this TAEHV was built without an encoder (with_encoder=False)")
        p = self.config.patch_size
        if p > 1:
            b, t = frames.shape[:2]
            packed = F.pixel_unshuffle(frames.flatten(0, 1), p)
            frames = packed.reshape(b, t, *packed.shape[1:])
        pad = -frames.shape[1] % self.config.t_downscale
        if pad:
            frames = torch.cat([frames, frames[:, -1:].expand(-1, pad, -1, -1, -1)], 1)
        latents, _ = _run_blocks(self.encoder, frames, None)
        return latents


class TAEHVStreamingDecoder:
    """Stateful convenience wrapper: feed latent frames one by one, get RGB frames back.

    The first ``frames_to_trim`` decoded frames of a stream are dropped (Wan's causal first latent
    is a single frame), so the first call returns 1 frame and later calls ``t_upscale`` frames;
    concatenated, the outputs equal :meth:`TAEHV.decode_video` on the whole clip.

    Args:
        model: the TAEHV.
    """

    def __init__(self, model: TAEHV) -> None:
        self.model = model
        self.state: State | None = None
        self._to_trim = model.config.frames_to_trim

    def reset(self) -> None:
        """Start a new stream (the state is re-created at the next latent's shape)."""
        self.state = None
        self._to_trim = self.model.config.frames_to_trim

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Decode one (B, C, H, W) latent frame → (B, n, 3, 8H, 8W), n = 1 first, then 4."""
        if self.state is None:
            b, h, w = latent.shape[0], latent.shape[-2], latent.shape[-1]
            self.state = self.model.init_decoder_state(b, h, w, latent.device, latent.dtype)
        frames, self.state = self.model.decode_step(latent, self.state)
        if self._to_trim:
            drop = min(self._to_trim, frames.shape[1])
            self._to_trim -= drop
            frames = frames[:, drop:]
        return frames


def load_taehv_state_dict(
    model: TAEHV, state_dict: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    """Load public TAEHV weights (e.g. ``taew2_1.pth``) by key name.

    Keys are ``decoder.N.*`` / ``encoder.N.*`` with N the ``nn.Sequential`` index (module
    docstring). ``encoder.*`` keys are ignored when the model has no encoder. As in the reference
    loader, a TGrow stored with more output channels than this config uses (a checkpoint trained
    with temporal upsampling, loaded with it disabled) keeps the last time step's channels.

    Args:
        model: the model to load into.
        state_dict: the checkpoint's tensors.

    Returns:
        (missing, unexpected) key lists, as from ``load_state_dict(strict=False)``.
    """
    own = model.state_dict()
    sd = dict(state_dict)
    if not model.config.with_encoder:
        sd = {k: v for k, v in sd.items() if not k.startswith("encoder.")}
    for i, block in enumerate(model.decoder):
        key = f"decoder.{i}.conv.weight"
        if isinstance(block, TGrow) and key in sd and sd[key].shape[0] > own[key].shape[0]:
            sd[key] = sd[key][-own[key].shape[0] :]
    result = model.load_state_dict(sd, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)
