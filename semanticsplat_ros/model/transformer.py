"""Multi-view transformer: self-attention within a view, cross-attention to all other views.

Bidirectional and symmetric in the views (no view embedding), so permuting the input views
permutes the outputs; works for any number of views v ≥ 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn


@dataclass
class TransformerConfig:
    """Size of the multi-view transformer (runs on the backbone's 1/4-resolution tokens)."""

    blocks: int = 1
    """Number of (self-attention, cross-view attention, MLP) blocks."""

    heads: int = 4
    """Attention heads; must divide the backbone's channel width."""

    mlp_ratio: float = 2.0
    """Hidden width of the MLP relative to the token width."""


def sinusoidal_position_2d(
    height: int, width: int, dim: int, device=None, dtype=torch.float32
) -> Float[Tensor, "hw dim"]:
    """Fixed 2D sine/cosine position codes (half the channels for rows, half for columns)."""
    if dim % 4:
        raise ValueError(f"position code width must be divisible by 4, got {dim}")
    quarter = dim // 4
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(quarter, device=device, dtype=dtype) / quarter
    )
    ys = torch.arange(height, device=device, dtype=dtype)[:, None] * freqs
    xs = torch.arange(width, device=device, dtype=dtype)[:, None] * freqs
    ys = torch.cat([ys.sin(), ys.cos()], dim=-1)[:, None, :].expand(height, width, 2 * quarter)
    xs = torch.cat([xs.sin(), xs.cos()], dim=-1)[None, :, :].expand(height, width, 2 * quarter)
    return torch.cat([ys, xs], dim=-1).reshape(height * width, dim)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        n, lq, c = x.shape
        lk = context.shape[1]
        h = self.heads
        q = self.q(x).reshape(n, lq, h, c // h).transpose(1, 2)
        k, v = self.kv(context).reshape(n, lk, 2, h, c // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, lq, c))


class _Block(nn.Module):
    def __init__(self, dim: int, config: TransformerConfig) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = _Attention(dim, config.heads)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.cross_attn = _Attention(dim, config.heads)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * config.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, others: Tensor) -> Tensor:
        # x: (b, v, L, c); others: (v, v-1) indices of the other views of each view.
        b, v, L, c = x.shape
        flat = x.reshape(b * v, L, c)
        y = self.norm_self(flat)
        flat = flat + self.self_attn(y, y)
        x = flat.reshape(b, v, L, c)
        kv = self.norm_kv(x)[:, others].reshape(b * v, (v - 1) * L, c)
        flat = flat + self.cross_attn(self.norm_q(flat), kv)
        flat = flat + self.mlp(self.norm_mlp(flat))
        return flat.reshape(b, v, L, c)


class MultiViewTransformer(nn.Module):
    """(b, v, c, h, w) → (b, v, c, h, w) with self- and cross-view attention."""

    def __init__(self, dim: int, config: TransformerConfig) -> None:
        super().__init__()
        if dim % config.heads:
            raise ValueError(f"heads ({config.heads}) must divide the token width ({dim})")
        self.dim = dim
        self.blocks = nn.ModuleList([_Block(dim, config) for _ in range(config.blocks)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, features: Float[Tensor, "b v c h w"]) -> Float[Tensor, "b v c h w"]:
        b, v, c, h, w = features.shape
        if v < 2:
            raise ValueError(f"the multi-view transformer needs at least 2 views, got {v}")
        others = other_view_indices(v, features.device)
        pos = sinusoidal_position_2d(h, w, c, device=features.device, dtype=features.dtype)
        x = features.flatten(3).transpose(2, 3) + pos
        for block in self.blocks:
            x = block(x, others)
        x = self.norm(x)
        return x.transpose(2, 3).reshape(b, v, c, h, w) + features


def other_view_indices(num_views: int, device=None) -> Tensor:
    """(v, v-1) long tensor: row i lists the views other than i, in increasing order."""
    idx = torch.arange(num_views, device=device)
    rows = [torch.cat([idx[:i], idx[i + 1 :]]) for i in range(num_views)]
    return torch.stack(rows)
