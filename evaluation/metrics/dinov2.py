"""DINOv2 ViT-B/14 in plain torch (the reference code's parameter names), for FD_DINOv2.

:class:`DinoVisionTransformer` is facebookresearch/dinov2's ``vit_base`` as the DINOv2 hub entry point
``dinov2_vitb14`` builds it (img_size 518, patch 14, LayerScale, MLP FFN, no registers, unchunked
blocks, positional embeddings interpolated bicubically with offset 0.1 and no antialiasing), with
the same state-dict keys as ``dinov2_vitb14_pretrain.pth``. ``forward`` returns what the hub model
returns: the final-LayerNorm CLS token (768-d), which dgm-eval (Stein et al. 2023) uses as the
representation.

Preprocessing (:func:`preprocess`) is dgm-eval's ``DINOv2Encoder.transform`` (clean_resize off) on
8-bit grey images: PIL bicubic resize to 224 × 224 (torchvision's ``Resize((224, 224), BICUBIC)`` on
a PIL image), grey replicated to RGB, /255, ImageNet mean and std.
"""

import math

import numpy as np
import torch
from PIL import Image
from torch import nn

WEIGHTS_FILENAME = "dinov2_vitb14_pretrain.pth"
INPUT_SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).unbind(2)
        x = nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoVisionTransformer(nn.Module):
    """(N, 3, H, W) normalised images, H and W multiples of 14 → (N, dim) CLS features."""

    def __init__(self, *, img_size=518, patch_size=14, dim=768, depth=12, heads=12, interpolate_offset=0.1):
        super().__init__()
        self.patch_size = patch_size
        self.interpolate_offset = interpolate_offset
        self.patch_embed = PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // patch_size) ** 2 + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # unused at inference; in the file

    @staticmethod
    def config_from_state_dict(state):
        try:
            dim = state["cls_token"].shape[-1]
            patch = state["patch_embed.proj.weight"].shape[-1]
            grid = round((state["pos_embed"].shape[1] - 1) ** 0.5)
        except (KeyError, IndexError):
            raise ValueError("not a DINOv2 state dict (no cls_token, patch_embed.proj.weight, pos_embed)") from None
        depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
        return {"img_size": grid * patch, "patch_size": patch, "dim": dim, "depth": depth, "heads": max(dim // 64, 1)}

    def interpolate_pos_encoding(self, x, w, h):
        """The reference's interpolate_pos_encoding (bicubic, scale factor (grid + 0.1) / M, no antialias)."""
        previous_dtype = x.dtype
        npatch = x.shape[1] - 1
        n = self.pos_embed.shape[1] - 1
        if npatch == n and w == h:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        class_pos_embed = pos_embed[:, 0]
        patch_pos_embed = pos_embed[:, 1:]
        dim = x.shape[-1]
        w0, h0 = w // self.patch_size, h // self.patch_size
        m = int(math.sqrt(n))
        if self.interpolate_offset:
            kwargs = {
                "scale_factor": (float(w0 + self.interpolate_offset) / m, float(h0 + self.interpolate_offset) / m)
            }
        else:
            kwargs = {"size": (w0, h0)}
        patch_pos_embed = nn.functional.interpolate(
            patch_pos_embed.reshape(1, m, m, dim).permute(0, 3, 1, 2), mode="bicubic", antialias=False, **kwargs
        )
        if (w0, h0) != tuple(patch_pos_embed.shape[-2:]):
            raise ValueError(
                f"positional embeddings interpolated to {tuple(patch_pos_embed.shape[-2:])}, not {(w0, h0)}"
            )
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1).to(previous_dtype)

    def forward(self, x):
        _, _, w, h = x.shape
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x, w, h)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


def preprocess(grey_uint8, size=INPUT_SIZE):
    """(M, H, W) uint8 grey images → (M, 3, size, size) float32, as dgm-eval's DINOv2 transform."""
    out = np.empty((grey_uint8.shape[0], size, size), dtype=np.float32)
    for i, image in enumerate(grey_uint8):
        resized = Image.fromarray(image).resize((size, size), Image.BICUBIC)
        out[i] = np.asarray(resized).astype(np.float32) / 255.0
    x = torch.from_numpy(out)[:, None].expand(-1, 3, -1, -1)
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std
