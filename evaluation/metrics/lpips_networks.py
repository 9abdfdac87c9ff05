"""LPIPS networks in plain torch: torchvision's AlexNet, VGG16 and SqueezeNet 1.1 ``features``, and the heads.

torchvision's wheel does not load beside the pinned torch, so the three backbones are written here
with torchvision's module layout: ``features`` is an ``nn.Sequential`` whose indices are torchvision's,
so the standard ImageNet files (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``,
``squeezenet1_1-b8a52dc0.pth``) load by their own key names (``features.0.weight`` …). Their
``classifier.*`` tensors are checked for torchvision's shapes and not used.

LPIPS (Zhang et al. 2018, v0.1, the ``lpips`` package's ``LPIPS(net=…, version="0.1")``) of two
(M, 3, H, W) float32 batches in [−1, 1]:

1. ``(x − shift) / scale`` with shift (−0.030, −0.088, −0.188), scale (0.458, 0.448, 0.450);
2. the backbone's activations at its tap points (after the ReLUs ``lpips.pretrained_networks``
   slices at: AlexNet 5, VGG16 5, SqueezeNet 7 layers), each (M, C_l, H_l, W_l);
3. each unit-normalised over channels, ``f / (‖f‖₂ + 1e-10)``; squared differences;
4. a 1 × 1 convolution without bias to one channel (the head ``lin{l}``), the spatial mean;
5. the sum over layers: (M,) distances, float32.

The heads' file (``lpips/weights/v0.1/<net>.pth`` of the lpips wheel) holds ``lin{l}.model.1.weight``
of shape (1, C_l, 1, 1). This module builds networks and nothing else: ``lpips.py`` reads and
checks the files.
"""

import torch
from torch import nn

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10


class Fire(nn.Module):
    """SqueezeNet's fire module, torchvision's names (squeeze, expand1x1, expand3x3)."""

    def __init__(self, inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


def _alexnet_features():
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _vgg16_features():
    layers, channels = [], 3
    for width in _VGG16:
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    return nn.Sequential(*layers)


def _squeezenet1_1_features():
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(64, 16, 64, 64),
        Fire(128, 16, 64, 64),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(128, 32, 128, 128),
        Fire(256, 32, 128, 128),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(256, 48, 192, 192),
        Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256),
        Fire(512, 64, 256, 256),
    )


#: net → (features builder, the index of the last module of each slice, the channels at each tap,
#: torchvision's classifier tensors {key: shape}, which the standard file holds beside ``features``).
BACKBONES = {
    "alex": (
        _alexnet_features,
        (1, 4, 7, 9, 11),
        (64, 192, 384, 256, 256),
        {
            "classifier.1.weight": (4096, 9216),
            "classifier.1.bias": (4096,),
            "classifier.4.weight": (4096, 4096),
            "classifier.4.bias": (4096,),
            "classifier.6.weight": (1000, 4096),
            "classifier.6.bias": (1000,),
        },
    ),
    "vgg": (
        _vgg16_features,
        (3, 8, 15, 22, 29),
        (64, 128, 256, 512, 512),
        {
            "classifier.0.weight": (4096, 25088),
            "classifier.0.bias": (4096,),
            "classifier.3.weight": (4096, 4096),
            "classifier.3.bias": (4096,),
            "classifier.6.weight": (1000, 4096),
            "classifier.6.bias": (1000,),
        },
    ),
    "squeeze": (
        _squeezenet1_1_features,
        (1, 4, 7, 9, 10, 11, 12),
        (64, 128, 256, 384, 384, 512, 512),
        {"classifier.1.weight": (1000, 512, 1, 1), "classifier.1.bias": (1000,)},
    ),
}


class Backbone(nn.Module):
    """torchvision's ``features`` of one net; ``forward`` returns the activations at LPIPS's taps."""

    def __init__(self, net):
        super().__init__()
        build, taps, _, _ = BACKBONES[net]
        self.features = build()
        self.taps = taps

    def forward(self, x):
        out, last = [], self.taps[-1]
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.taps:
                out.append(x)
            if index == last:
                break
        return out


class LPIPSNetwork(nn.Module):
    """LPIPS v0.1 of one backbone: ``forward(x0, x1)`` on (M, 3, H, W) in [−1, 1] → (M,) distances."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.backbone = Backbone(net)
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in BACKBONES[net][2])
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])

    @staticmethod
    def head_keys(net):
        """{key in the heads' file: shape}."""
        return {f"lin{i}.model.1.weight": (1, c, 1, 1) for i, c in enumerate(BACKBONES[net][2])}

    def load_heads(self, state):
        with torch.no_grad():
            for i, head in enumerate(self.heads):
                head.weight.copy_(state[f"lin{i}.model.1.weight"])

    def forward(self, x0, x1):
        # One pass per side, as the lpips package does (one batch of both is slower for VGG16 on a CPU: its
        # activations at 2M images no longer fit the caches).
        features0 = self.backbone((x0 - self.shift) / self.scale)
        features1 = self.backbone((x1 - self.shift) / self.scale)
        total = 0
        for f0, f1, head in zip(features0, features1, self.heads, strict=True):
            f0 = f0 / (torch.sqrt(torch.sum(f0**2, dim=1, keepdim=True)) + EPS)
            f1 = f1 / (torch.sqrt(torch.sum(f1**2, dim=1, keepdim=True)) + EPS)
            total = total + head((f0 - f1) ** 2).mean([2, 3], keepdim=True)
        return total.reshape(x0.shape[0])
