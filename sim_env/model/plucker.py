"""Per-token Plücker ray embedding of the camera (WorldScape §2.1, WorldFM §2.4.1).

For each token, the ray through the centre of its patch is written in world coordinates as the
6-vector (o × d, d): o is the camera centre and d the unit ray direction. Unlike a raw pose, the
Plücker coordinates are per-pixel and invariant to where along the ray the origin is taken, so
the model sees the camera as a field it can align with image content. Conventions (bridge/
conventions.py): OpenCV camera (x right, y down, z forward), poses camera-to-world, K in pixels
with pixel centres at integer coordinates.
"""

from __future__ import annotations

import torch
from torch import nn

PLUCKER_CHANNELS = 6


def plucker_rays(
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    grid: tuple[int, int],
    image_size: tuple[int, int],
) -> torch.Tensor:
    """Plücker coordinates of the rays through the token-cell centres.

    Args:
        K: (..., 3, 3) intrinsics in pixels of an image of ``image_size``.
        cam_to_world: (..., 4, 4) camera-to-world poses (same leading shape as K).
        grid: token grid (h, w); each token covers an (H/h)×(W/w) pixel cell.
        image_size: (H, W) of the image K refers to.

    Returns:
        (..., h, w, 6) tensor of (o × d, d) in world coordinates, dtype of ``cam_to_world``.
    """
    h, w = grid
    img_h, img_w = image_size
    dtype, dev = cam_to_world.dtype, cam_to_world.device
    # Centre of token cell j covers pixels [j·s, (j+1)·s); with pixel centres at integers its
    # centre is at (j + 0.5)·s − 0.5.
    u = (torch.arange(w, dtype=dtype, device=dev) + 0.5) * (img_w / w) - 0.5
    v = (torch.arange(h, dtype=dtype, device=dev) + 0.5) * (img_h / h) - 0.5
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    pix = torch.stack([uu, vv, torch.ones_like(uu)], dim=-1)  # (h, w, 3)
    # inv_ex, not inv: inv checks for singular input on the host, a sync in every step.
    K_inv = torch.linalg.inv_ex(K.to(dtype)).inverse
    lead = K_inv.shape[:-2]
    rays_cam = torch.einsum("...ij,hwj->...hwi", K_inv, pix)
    R = cam_to_world[..., :3, :3]
    origin = cam_to_world[..., :3, 3]
    d = torch.einsum("...ij,...hwj->...hwi", R, rays_cam)
    d = d / d.norm(dim=-1, keepdim=True)
    o = origin.reshape(*lead, 1, 1, 3).expand_as(d)
    return torch.cat([torch.linalg.cross(o, d, dim=-1), d], dim=-1)


class PluckerEmbedding(nn.Sequential):
    """Two-layer MLP from the 6 Plücker coordinates to the model width, added to the tokens.

    The last layer starts at zero so that adding the embedding to a pretrained backbone (whose
    checkpoint has no camera weights) leaves its function unchanged at initialisation.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Linear(PLUCKER_CHANNELS, dim), nn.SiLU(), nn.Linear(dim, dim))
        nn.init.zeros_(self[2].weight)
        nn.init.zeros_(self[2].bias)
