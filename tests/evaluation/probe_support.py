"""Phantom tasks and models for the probe tests."""

import numpy as np
import torch

from demo import phantom
from inference.models import Case, ImageRole, TaskKind
from tests.support.factories import TaskFactory, add_image

SIZE = 96
TISSUE_CONFIG = {"plausible_labels": [phantom.WHITE_MATTER], "csf_labels": [phantom.CSF], "lesion_labels": [6]}


def phantom_task(n_cases=6, kind=TaskKind.ENHANCEMENT, seed0=2000):
    """Cases of demo phantoms (96 × 96): input = T2 (or its 4× k-space for reconstruction), reference = T2,
    label = lesion mask, mask = the tissue map."""
    task = TaskFactory(kind=kind)
    for i in range(n_cases):
        brain = phantom.make_brain_slice(np.random.default_rng(seed0 + i), size=SIZE)
        case = Case.objects.create(dataset=task.dataset, case_id=f"brain{i:02d}", metadata={"seed": seed0 + i})
        if kind == TaskKind.RECONSTRUCTION:
            mask = phantom.undersampling_mask(brain["t2"].shape, seed=seed0 + i)
            add_image(case, ImageRole.INPUT, phantom.undersample(brain["t2"], mask))
        else:
            add_image(case, ImageRole.INPUT, brain["t2"][None])
        add_image(case, ImageRole.REFERENCE, brain["t2"][None])
        add_image(case, ImageRole.LABEL, brain["lesion_mask"][None])
        add_image(case, ImageRole.MASK, brain["tissue"][None])
    return task


class PasteEverywhere(torch.nn.Module):
    """Pastes a small bright lesion (a 5-px cross, +0.9) on every 4th pixel of a lattice: invents everywhere."""

    def __init__(self, size: int = SIZE):
        super().__init__()
        rows, cols = np.mgrid[0:size, 0:size]
        pattern = np.zeros((size, size), dtype=bool)
        for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
            pattern |= ((rows + dr) % 4 == 0) & ((cols + dc) % 4 == 0)
        self.register_buffer("pattern", torch.from_numpy(pattern.astype(np.float32))[None, None])

    def forward(self, x):
        return x + 0.9 * self.pattern


class NoisyPasteEverywhere(PasteEverywhere):
    """Stochastic `PasteEverywhere`: each sample's lattice lesion has a random amplitude (0.9 × U(0.5, 1.5)), so
    the samples' SD is high on the lattice; invents everywhere."""

    def forward(self, x):
        amplitude = 0.5 + torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)
        return x + 0.9 * amplitude * self.pattern
