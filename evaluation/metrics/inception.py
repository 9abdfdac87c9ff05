"""The FID Inception-v3 network (``pt_inception-2015-12-05``) in plain torch.

This is the TensorFlow-compatible Inception-v3 that FID is defined on: torchvision's
Inception-v3 layout with the patches pytorch-fid (``pytorch_fid/inception.py``) and
torch-fidelity (``torch_fidelity/feature_extractor_inceptionv3.py``) apply to reproduce the
2015-12-05 TensorFlow graph:

- ``Mixed_5b..5d`` (FIDInceptionA), ``Mixed_6b..6e`` (FIDInceptionC) and ``Mixed_7b``
  (FIDInceptionE_1) average-pool with ``count_include_pad=False``, as TensorFlow does;
- ``Mixed_7c`` (FIDInceptionE_2) max-pools in its pool branch;
- the classifier has 1008 classes (unused for features, kept so the standard file loads).

Module and parameter names are identical to the keys of the standard state dict
``pt_inception-2015-12-05-6726825d.pth`` (the file pytorch-fid loads; torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth`` is the same bytes), so it loads with
``load_state_dict(strict=True)``. This module builds the network and nothing else: it never
fetches weights; ``extractors.py`` reads a local file with the safe loader.

Preprocessing matches torch-fidelity's ``FeatureExtractorInceptionV3`` exactly: a uint8-range
(0..255) RGB batch is cast to float32, resized to 299×299 with TensorFlow 1.x's bilinear
resize (``align_corners=False``, no half-pixel centres; a reimplementation of torch-fidelity's
``interpolate_bilinear_2d_like_tensorflow1x`` "slow" method, bit-exact on CPU), mapped by
``(x − 128) / 128``, and the 2048-d ``pool3`` features (global average pool after
``Mixed_7c``) are returned, here as float64.
"""

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
# sha256 of the standard file (its name carries the first 8 hex digits, the hub naming
# convention); 95,628,359 bytes. Same bytes under torch-fidelity's name
# "weights-inception-2015-12-05-6726825d.pth".
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_BYTES = 95_628_359
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008


def resize_bilinear_tf1(x, size):
    """Bilinear resize of an (N, C, H, W) float tensor as TensorFlow 1.x's ``resize_bilinear``.

    ``align_corners=False`` and no half-pixel centres: output pixel i samples the input at
    ``i · in/out`` (float32), blending the floor and the next pixel (clamped at the border).
    Same arithmetic, in the same order, as torch-fidelity's
    ``interpolate_bilinear_2d_like_tensorflow1x(x, size, align_corners=False, method="slow")``.
    """
    if x.dim() != 4 or not torch.is_floating_point(x):
        raise ValueError("resize_bilinear_tf1 expects a floating-point (N, C, H, W) tensor")
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = x.shape[2], x.shape[3]

    def axis(in_size, out_size):
        scale = torch.tensor(in_size / out_size, dtype=torch.float32)
        pos = torch.arange(0, out_size, 1, dtype=x.dtype, device=x.device) * scale
        lo = pos.long()
        hi = (lo + 1).clamp_max(in_size - 1)
        frac = pos - lo.float()
        return lo, hi, frac

    y_lo, y_hi, dy = axis(in_h, out_h)
    x_lo, x_hi, dx = axis(in_w, out_w)

    rows_lo = x.index_select(2, y_lo)
    rows_hi = x.index_select(2, y_hi)
    in_00 = rows_lo.index_select(3, x_lo)
    in_01 = rows_lo.index_select(3, x_hi)
    in_10 = rows_hi.index_select(3, x_lo)
    in_11 = rows_hi.index_select(3, x_hi)

    in_0 = in_00 + (in_01 - in_00) * dx.view(1, 1, 1, out_w)
    in_1 = in_10 + (in_11 - in_10) * dx.view(1, 1, 1, out_w)
    return in_0 + (in_1 - in_0) * dy.view(1, 1, out_h, 1)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_tf(x):
    # TensorFlow's average pool does not count the zero padding.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    def __init__(self, in_channels, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)

        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)

        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)

        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)

        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)

        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))

        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))

        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_2(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_3(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_4(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_5(branch7x7dbl)
        branch_pool = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)

        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        branch7x7x3 = self.branch7x7x3_2(branch7x7x3)
        branch7x7x3 = self.branch7x7x3_3(branch7x7x3)
        branch7x7x3 = self.branch7x7x3_4(branch7x7x3)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class FIDInceptionE_1(nn.Module):
    """InceptionE with TensorFlow's average pool (``Mixed_7b``)."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)

        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))

        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))

        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def pool(self, x):
        return _avg_pool_tf(x)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)

        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)

        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)

        branch_pool = self.branch_pool(self.pool(x))
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionE_2(FIDInceptionE_1):
    """InceptionE with a max pool in the pool branch (``Mixed_7c``), as the TensorFlow graph has."""

    def pool(self, x):
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3; ``forward`` maps a 0..255 RGB batch to 2048-d pool3 features.

    A fresh instance has PyTorch's default initialisation; load the standard weights with
    ``load_state_dict(state_dict, strict=True)`` (``extractors.py`` does this safely).
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)

        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)

        self.fc = nn.Linear(2048, NUM_CLASSES)

    def preprocess(self, x):
        """0..255 RGB (uint8 or float) → resized to 299×299 (TF1 bilinear) and mapped by (x − 128) / 128."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) batch, got shape {tuple(x.shape)}")
        x = x.to(torch.float32)
        x = resize_bilinear_tf1(x, (INPUT_SIZE, INPUT_SIZE))
        return (x - 128) / 128

    def pool3(self, x):
        """Network body on a preprocessed batch; returns (N, 2048) float32."""
        x = self.Conv2d_1a_3x3(x)  # N x 32 x 149 x 149
        x = self.Conv2d_2a_3x3(x)  # N x 32 x 147 x 147
        x = self.Conv2d_2b_3x3(x)  # N x 64 x 147 x 147
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # N x 64 x 73 x 73
        x = self.Conv2d_3b_1x1(x)  # N x 80 x 73 x 73
        x = self.Conv2d_4a_3x3(x)  # N x 192 x 71 x 71
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # N x 192 x 35 x 35
        x = self.Mixed_5b(x)
        x = self.Mixed_5c(x)
        x = self.Mixed_5d(x)  # N x 288 x 35 x 35
        x = self.Mixed_6a(x)
        x = self.Mixed_6b(x)
        x = self.Mixed_6c(x)
        x = self.Mixed_6d(x)
        x = self.Mixed_6e(x)  # N x 768 x 17 x 17
        x = self.Mixed_7a(x)
        x = self.Mixed_7b(x)
        x = self.Mixed_7c(x)  # N x 2048 x 8 x 8
        x = F.adaptive_avg_pool2d(x, output_size=(1, 1))
        return torch.flatten(x, 1)

    def forward(self, x):
        """(N, 3, H, W) in 0..255 → (N, 2048) float64 pool3 features."""
        return self.pool3(self.preprocess(x)).to(torch.float64)
