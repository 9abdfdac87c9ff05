"""The downstream-task tier's computation: train a segmentation network, score it with Dice and HD95.

Plain torch / MONAI / numpy — nothing here imports Django. The question it answers is the
"train on synthetic, test on real" one (e.g. Shin et al., "Medical image synthesis for data
augmentation and anonymization using generative adversarial networks", SASHIMI 2018; the
review this product follows asks for such task-level evidence): a MONAI U-Net is trained on a
model's outputs paired with the real label masks, then segments the *real* reference images
of held-out test cases. Trained on real images instead, the same recipe gives the real→real
reference; the ratio of the two Dice values is the utility ratio.

Shapes: images are float arrays ``(N, C, *spatial)`` (spatial ``(H, W)`` or ``(D, H, W)``),
labels and masks ``(N, 1, *spatial)``; a label voxel > 0.5 is foreground (binary
segmentation). Distances (HD95) are in mm, from the voxel spacing.

Repeatable: each seed fixes the network's initial weights (``torch.manual_seed``) and every
random draw of the training loop (one ``torch.Generator``); data are batched in the main
process (no loader workers) and training runs with ``torch.use_deterministic_algorithms``
on a fixed number of threads, so the same inputs, configuration and seed give the same
weights and the same Dice on the same machine. On CUDA, cuDNN's deterministic mode is on and
TF32 is off, but kernels still differ between cards and driver versions: numbers are then
repeatable on one card, and close (not equal) across cards and to the CPU.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import bootstrap

__all__ = [
    "DEMO_CONFIG",
    "DEFAULT_CONFIG",
    "NonFiniteLoss",
    "SegmentationConfig",
    "TrainResult",
    "build_network",
    "dice_per_case",
    "hd95_per_case",
    "normalise",
    "predict",
    "summarise",
    "train_segmenter",
    "utility_ratio",
]


@dataclass(frozen=True)
class SegmentationConfig:
    """A fixed, documented recipe; its `name` identifies it (results and the real→real reference are per name).

    Network: ``monai.networks.nets.UNet`` with ``channels`` per level, stride 2 between levels,
    ``num_res_units`` residual units, batch norm, ``in_channels`` = the images' channels,
    2 output channels (background, foreground) and an argmax at inference.
    Loss: ``monai.losses.DiceCELoss`` (softmax, one-hot labels, Dice over the whole batch).
    Optimiser: Adam at ``learning_rate`` with a cosine decay to 5 % over the training.
    Batches: ``batch_size`` random crops of ``crop`` voxels per axis (whole images when smaller);
    a share ``positive_fraction`` of them centred on a random foreground voxel (MONAI's
    RandCropByPosNegLabel idea, so small lesions are seen). One epoch is ceil(n_train / batch_size)
    steps. Augmentation: a random flip along each spatial axis (p = 0.5 each).
    Intensities: each image z-scored on its own (mean 0, SD 1), so a global scale or offset of a
    model's outputs does not matter; their structure and contrast do.
    """

    name: str = "unet-8-16-32-e60"
    channels: tuple[int, ...] = (8, 16, 32)
    num_res_units: int = 1
    epochs: int = 60
    batch_size: int = 8
    crop: int = 64
    positive_fraction: float = 0.5
    learning_rate: float = 1e-2
    flip: bool = True
    threads: int = 1

    def as_dict(self):
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data):
        known = {f for f in cls.__dataclass_fields__}
        values = {key: value for key, value in (data or {}).items() if key in known}
        if "channels" in values:
            values["channels"] = tuple(int(c) for c in values["channels"])
        return cls(**values)

    @property
    def steps_multiple(self):
        """Spatial sizes must be multiples of this (one stride-2 per level); inputs are padded to it."""
        return 2 ** (len(self.channels) - 1)


DEFAULT_CONFIG = SegmentationConfig()
# The demo's: the same network, fewer epochs, so a run's three seeds take ~10 s on 2 CPU cores.
DEMO_CONFIG = SegmentationConfig(name="unet-8-16-32-e40-demo", epochs=40)


class NonFiniteLoss(ArithmeticError):
    """The training loss became NaN or infinite; the message says when."""


@dataclass
class TrainResult:
    network: torch.nn.Module
    losses: list[float] = field(default_factory=list)  # mean loss per epoch
    seconds: float = 0.0


# -------------------------------------------------------------------------------- split


def split_cases(case_ids, labelled, *, test_fraction=0.5, seed=0):
    """(train ids, test ids): a seeded split in which only cases with foreground can be test cases.

    Dice and HD95 are undefined on an empty label, so test cases are drawn (round(test_fraction ·
    n), at least 1, leaving at least 1 for training) from the cases whose label has foreground;
    the rest of those, and every case with an empty label (a useful negative), are for training.
    Both lists come back sorted; the same ids, flags, fraction and seed give the same split.
    """
    case_ids = [str(c) for c in case_ids]
    labelled = [bool(flag) for flag in labelled]
    if len(case_ids) != len(labelled) or len(set(case_ids)) != len(case_ids):
        raise ValueError("case ids must be unique and paired with one labelled flag each")
    positives = sorted(c for c, flag in zip(case_ids, labelled, strict=True) if flag)
    if len(positives) < 2:
        raise ValueError(
            f"A downstream split needs at least two cases whose label has foreground; found {len(positives)}."
        )
    n_test = min(max(1, round(test_fraction * len(positives))), len(positives) - 1)
    order = np.random.default_rng(seed).permutation(len(positives))
    test = sorted(positives[i] for i in order[:n_test])
    train = sorted(set(case_ids) - set(test))
    return train, test


# ------------------------------------------------------------------------------ helpers


def normalise(images):
    """Per-image, per-channel z-score: (N, C, *spatial) → float32 tensor of the same shape."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    dims = tuple(range(2, x.ndim))
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True)
    return (x - mean) / torch.where(std > 0, std, torch.ones_like(std))


def binarise(labels):
    """Label arrays (N, 1, *spatial) → int64 tensor of 0/1 (foreground where > 0.5)."""
    return torch.as_tensor(np.asarray(labels) > 0.5).long()


def build_network(config: SegmentationConfig, in_channels: int, spatial_dims: int):
    from monai.networks.nets import UNet  # lazy: MONAI is slow to import; only the downstream job needs it

    return UNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=2,
        channels=tuple(config.channels),
        strides=(2,) * (len(config.channels) - 1),
        num_res_units=config.num_res_units,
        norm="batch",
    )


@contextlib.contextmanager
def repeatable(threads):
    """Deterministic kernels on `threads` threads; the caller's settings come back afterwards."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    previous_tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous_cudnn
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous_tf32


def _crop_starts(shape, crop, centre, generator):
    """Start index per spatial axis of a crop of size min(crop, size), centred on `centre` (clamped) or random."""
    starts = []
    for axis, size in enumerate(shape):
        width = min(crop, size)
        if centre is None:
            starts.append(int(torch.randint(size - width + 1, (1,), generator=generator)))
        else:
            starts.append(int(min(max(int(centre[axis]) - width // 2, 0), size - width)))
    return starts


def _batch(images, labels, foreground, config, generator):
    """One training batch of crops (with the positive share) and flips, drawn from `generator`."""
    n = images.shape[0]
    spatial = images.shape[2:]
    with_foreground = [i for i in range(n) if len(foreground[i])]
    xs, ys = [], []
    for _ in range(config.batch_size):
        positive = with_foreground and float(torch.rand((), generator=generator)) < config.positive_fraction
        if positive:
            index = with_foreground[int(torch.randint(len(with_foreground), (1,), generator=generator))]
            voxels = foreground[index]
            centre = voxels[int(torch.randint(len(voxels), (1,), generator=generator))].tolist()
        else:
            index = int(torch.randint(n, (1,), generator=generator))
            centre = None
        starts = _crop_starts(spatial, config.crop, centre, generator)
        window = (slice(None),) + tuple(
            slice(s, s + min(config.crop, size)) for s, size in zip(starts, spatial, strict=True)
        )
        x, y = images[index][window], labels[index][window]
        if config.flip:
            for axis in range(1, x.ndim):
                if float(torch.rand((), generator=generator)) < 0.5:
                    x, y = x.flip(axis), y.flip(axis)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def _pad_to_multiple(x, multiple):
    """Zero-pad the trailing spatial axes up to a multiple; returns (padded, original spatial shape)."""
    spatial = x.shape[2:]
    pads = []
    for size in reversed(spatial):
        pads += [0, (-size) % multiple]
    return F.pad(x, pads), spatial


# ------------------------------------------------------------------------------ training


def train_segmenter(
    images,
    labels,
    config: SegmentationConfig,
    seed: int,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
    device: str = "cpu",
) -> TrainResult:
    """Train the configured U-Net on (images, labels) with one seed.

    Args:
        images: (N, C, *spatial) training images (any intensity scale; z-scored per image here).
        labels: (N, 1, *spatial) masks (foreground > 0.5), same spatial shape.
        config: the recipe.
        seed: fixes the initial weights and every random draw of the loop.
        on_epoch: called after each epoch with (epoch number from 1, mean loss); it may raise to stop
            the training (a cancelled job).
        device: torch device.

    Raises:
        NonFiniteLoss: the loss became NaN/inf (checked every step, before the update is applied).
    """
    from monai.losses import DiceCELoss  # lazy: MONAI is slow to import; only the downstream job needs it

    started = time.monotonic()
    x = normalise(images)
    y = binarise(labels)
    if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
        raise ValueError(f"images {tuple(x.shape)} and labels {tuple(y.shape)} do not pair up")
    foreground = [torch.nonzero(y[i, 0]) for i in range(y.shape[0])]
    with repeatable(config.threads):
        torch.manual_seed(seed)
        network = build_network(config, x.shape[1], x.ndim - 2).to(device)
        generator = torch.Generator().manual_seed(seed)
        loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
        optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
        steps_per_epoch = max(1, math.ceil(x.shape[0] / config.batch_size))
        total_steps = steps_per_epoch * config.epochs
        losses = []
        step = 0
        network.train()
        for epoch in range(1, config.epochs + 1):
            epoch_losses = []
            for _ in range(steps_per_epoch):
                for group in optimiser.param_groups:
                    group["lr"] = config.learning_rate * (
                        0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / total_steps))
                    )
                batch_x, batch_y = _batch(x, y, foreground, config, generator)
                batch_x, _ = _pad_to_multiple(batch_x, config.steps_multiple)
                batch_y, _ = _pad_to_multiple(batch_y, config.steps_multiple)
                loss = loss_fn(network(batch_x.to(device)), batch_y.to(device))
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise NonFiniteLoss(
                        f"The training loss became {value} at epoch {epoch}, step {step + 1} (seed {seed})."
                    )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                epoch_losses.append(value)
                step += 1
            losses.append(float(np.mean(epoch_losses)))
            if on_epoch is not None:
                on_epoch(epoch, losses[-1])
        network.eval()
    return TrainResult(network=network, losses=losses, seconds=time.monotonic() - started)


@torch.no_grad()
def predict(network, images, config: SegmentationConfig, *, batch_size=8, device="cpu"):
    """Masks (N, 1, *spatial) uint8 (argmax of the two classes) for images (N, C, *spatial)."""
    x = normalise(images)
    masks = []
    with repeatable(config.threads):
        network.eval()
        for start in range(0, x.shape[0], batch_size):
            chunk, spatial = _pad_to_multiple(x[start : start + batch_size], config.steps_multiple)
            logits = network(chunk.to(device)).cpu()
            window = (slice(None), slice(None)) + tuple(slice(0, s) for s in spatial)
            masks.append(logits[window].argmax(dim=1, keepdim=True).to(torch.uint8))
    return torch.cat(masks).numpy()


# ------------------------------------------------------------------------------- metrics


def _one_hot(masks):
    m = torch.as_tensor(np.asarray(masks) > 0.5)
    return torch.cat([~m, m], dim=1).float()


def dice_per_case(pred, label):
    """Dice of the foreground per case, by ``monai.metrics.DiceMetric``: (N,) float64.

    pred, label: (N, 1, *spatial) masks (> 0.5 is foreground). A case with an empty label has no
    Dice (NaN, MONAI's ``ignore_empty=True``); an empty prediction on a non-empty label scores 0.
    """
    from monai.metrics import DiceMetric  # lazy: MONAI is slow to import; only the downstream job needs it

    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    return metric(_one_hot(pred), _one_hot(label))[:, 0].double().numpy()


def hd95_per_case(pred, label, spacing):
    """95th-percentile Hausdorff distance per case in mm, by ``monai.metrics.HausdorffDistanceMetric``: (N,).

    ``spacing`` is the voxel size per spatial axis (mm). MONAI gives NaN when either mask is empty;
    here a case with an empty label stays NaN (no distance is defined), while an empty prediction
    on a non-empty label scores the image's diagonal (the largest possible distance), so a
    network that finds nothing is not rewarded by being left out.
    """
    from monai.metrics import HausdorffDistanceMetric  # lazy: MONAI is slow to import; only the downstream job needs it

    pred = np.asarray(pred) > 0.5
    label = np.asarray(label) > 0.5
    spacing = [float(s) for s in spacing]
    metric = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns on every empty mask; empties are handled below
        values = metric(_one_hot(pred), _one_hot(label), spacing=spacing)[:, 0].double().numpy()
    diagonal = math.sqrt(sum(((n - 1) * s) ** 2 for n, s in zip(label.shape[2:], spacing, strict=True)))
    for i in range(len(values)):
        if not label[i].any():
            values[i] = math.nan
        elif not pred[i].any():
            values[i] = diagonal
    return values


# ------------------------------------------------------------------------------ summaries


def _two_way_statistic(values_by_group, reduce, seed):
    """A statistic for ``bootstrap.bootstrap_statistic_ci`` that resamples seeds as well as cases.

    ``values_by_group``: arrays (S_g, n) (seeds × test cases) sharing the case axis. The bootstrap
    draws the case indices; this draws, per call and per array, S_g seed indices with replacement
    from its own generator (the first call, the point estimate, uses every seed once). Calls
    come in a fixed order, so the interval is seeded and repeatable.
    """
    rng = np.random.default_rng([seed, 1])
    calls = {"n": 0}

    def statistic(case_indices):
        first = calls["n"] == 0
        calls["n"] += 1
        means = []
        for values in values_by_group:
            seeds = np.arange(values.shape[0]) if first else rng.integers(0, values.shape[0], values.shape[0])
            means.append(values[np.ix_(seeds, case_indices)].mean())
        return reduce(*means)

    return statistic


def summarise(per_seed, *, n_resamples=2000, seed=0, confidence=0.95):
    """Mean over test cases × seeds with a percentile CI resampling both.

    per_seed: (S, n) per-seed, per-case values (no NaN: cases without a value are dropped by the
    caller). Returns a ``bootstrap.BootstrapResult`` whose estimate is the plain mean.
    """
    values = np.asarray(per_seed, dtype=np.float64)
    if values.ndim != 2 or not values.size:
        raise ValueError(f"per_seed must be (seeds, cases), got shape {values.shape}")
    statistic = _two_way_statistic([values], lambda mean: mean, seed)
    return bootstrap.bootstrap_statistic_ci(
        values.shape[1], statistic, n_resamples=n_resamples, seed=seed, confidence=confidence
    )


def utility_ratio(run_per_seed, reference_per_seed, *, n_resamples=2000, seed=0, confidence=0.95):
    """Mean run Dice / mean real→real Dice, with a CI resampling the shared test cases (paired) and each side's seeds.

    Both arguments are (S, n) on the same n test cases in the same order.
    """
    run = np.asarray(run_per_seed, dtype=np.float64)
    reference = np.asarray(reference_per_seed, dtype=np.float64)
    if run.shape[1] != reference.shape[1]:
        raise ValueError("the run and the reference were not scored on the same test cases")
    if reference.mean() <= 0:
        raise ValueError("the real→real reference has a mean Dice of 0; the ratio is undefined")

    def ratio(a, b):
        return a / b if b > 0 else math.inf

    statistic = _two_way_statistic([run, reference], ratio, seed)
    return bootstrap.bootstrap_statistic_ci(
        run.shape[1], statistic, n_resamples=n_resamples, seed=seed, confidence=confidence
    )
