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
