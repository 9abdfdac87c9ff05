"""Tasks on the demo's brain phantoms and runs whose outputs are written directly, for the evaluation tests."""

import numpy as np

from core.models import JobStatus
from demo.phantom import make_brain_slice
from evaluation import segmentation
from inference.models import Case, ImageRole, Run, RunKind
from inference.services.runs import store_output
from tests.support.factories import TaskFactory, add_image

# A segmentation recipe small enough that a downstream job takes a second or two.
TINY = segmentation.SegmentationConfig(name="tiny-test", channels=(4, 8), epochs=3, batch_size=4, crop=32)


def phantom_task(n_cases=8, *, size=48, seed=100, data_range=None, labels=False):
    """A task on demo brain phantoms (seeded `seed + i`): T1 input, T2 reference and, with `labels`,
    the lesion mask as the label. 48 px is big enough for SSIM's 11-tap window and radiomics."""
    task = TaskFactory(data_range=data_range)
    for i in range(n_cases):
        images = make_brain_slice(np.random.default_rng(seed + i), size=size)
        case = Case.objects.create(dataset=task.dataset, case_id=f"case{i:03d}")
        add_image(case, ImageRole.INPUT, images["t1"][None])
        add_image(case, ImageRole.REFERENCE, images["t2"][None])
        if labels:
            add_image(case, ImageRole.LABEL, images["lesion_mask"][None])
    return task


def downstream_task(n_cases=8, *, size=64, seed=200):
    """A phantom task with lesion labels, for the downstream-task tier."""
    return phantom_task(n_cases, size=size, seed=seed, labels=True)


def succeeded_run(task, make_output, *, samples=1, name="test run"):
    """A run whose outputs are `make_output(case_id, reference, sample)`, marked succeeded without the signal."""
    run = Run.objects.create(task=task, kind=RunKind.SUBMISSION, status=JobStatus.SUCCEEDED, name=name)
    for case in task.dataset.cases.order_by("case_id"):
        reference = case.images.get(role=ImageRole.REFERENCE).load()
        for sample in range(samples):
            store_output(run, case, sample, make_output(case.case_id, reference, sample))
    return run


def noisy(sigma, seed=0):
    """An output maker: the reference plus Gaussian noise of SD `sigma`, seeded per case and sample."""

    def make(case_id, reference, sample):
        rng = np.random.default_rng([seed, int(case_id[-3:]), sample])
        return reference + rng.normal(0, sigma, reference.shape).astype(np.float32)

    return make


def near_reference(case_id, reference, sample=0):
    """The reference plus noise of SD 0.02, seeded by the case."""
    rng = np.random.default_rng(int(case_id[-3:]))
    return reference + rng.normal(0, 0.02, reference.shape).astype(np.float32)
