"""Weights files of the standard formats, generated so tests and benchmarks need no download."""

import torch

from evaluation.metrics.inception import FIDInceptionV3


def random_fid_inception(seed=0):
    """Our FID Inception-v3 with seeded random weights and BN statistics calibrated so activations stay O(1)."""
    torch.manual_seed(seed)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.normal_(module.bias, 0.0, 0.1)
            module.momentum = None  # running stats := the calibration batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8))
    model.eval()
    for module in model.modules():  # positive, not exactly the batch's: the eval path differs from training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.mul_(torch.empty_like(module.running_var).uniform_(0.8, 1.25))
    return model


def random_lpips_backbone(net, seed=0, *, classifier=False):
    """A torchvision-layout state dict for LPIPS's trunk `net` ("alex", "vgg", "squeeze"), seeded random.

    Built from the test-only stand-in of torchvision's model (not from the product's network), so the
    keys are torchvision's own. ``classifier=False`` keeps only ``features.*`` (the classifiers of AlexNet
    and VGG16 are 58 M and 124 M parameters, which LPIPS never uses).
    """
    from tests.support.torchvision_standin import BUILDERS

    torch.manual_seed(seed)
    state = BUILDERS[net]().state_dict()
    return {k: v for k, v in state.items() if classifier or k.startswith("features.")}


LPIPS_HEAD_CHANNELS = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}


def random_lpips_heads(net, seed=0):
    """Heads in the lpips wheel's format: ``lin{l}.model.1.weight`` (1, C_l, 1, 1), non-negative as trained."""
    generator = torch.Generator().manual_seed(seed)
    return {
        f"lin{i}.model.1.weight": torch.rand((1, c, 1, 1), generator=generator) * 0.2
        for i, c in enumerate(LPIPS_HEAD_CHANNELS[net])
    }
