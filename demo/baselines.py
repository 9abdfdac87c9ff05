"""Baseline generative models for the demo, exported as TorchScript files.

Every builder writes one ``torch.jit.save`` file and returns nothing, except the trained builders, which return their
final training loss. Every model maps a float32 ``(B, C_in, H, W)`` tensor to a float32 ``(B, C_out, H, W)`` tensor:

* T1->T2 synthesis (``C_in = C_out = 1``): identity, intensity remap, U-Net, stochastic U-Net.
* Reconstruction (``C_in = 2`` real/imaginary centred k-space as ``phantom.undersample``, ``C_out = 1``):
  zero-filled inverse FFT, zero-filled followed by a residual denoising U-Net.

The U-Nets are fully convolutional with two 2x poolings, so H and W must be divisible by 4. Training is seeded
(initialisation, batch order, crops, flips); with a wall-clock budget only the stopping step varies between runs, and
``max_steps`` makes a run fully reproducible.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

# Two intra-op threads suit an idle 2-core machine; on a busy one pass threads=1 (two spinning OpenMP threads
# competing with other processes can be several times slower than one).
TRAIN_THREADS = 2
CROP_SIZE = 64  # training on crops is ~4x cheaper per sample; the net is fully convolutional, so it transfers


def _save_scripted(module: nn.Module, path) -> None:
    module.eval()
    with warnings.catch_warnings():
        # torch.jit.script is deprecated in recent torch but still the portable format the platform loads.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit.*")
        scripted = torch.jit.script(module)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(path))


def _as_batch(images) -> torch.Tensor:
    """(N, H, W) or (N, C, H, W) array/tensor -> float32 (N, C, H, W) tensor."""
    tensor = torch.as_tensor(np.asarray(images, dtype=np.float32))
    return tensor.unsqueeze(1) if tensor.ndim == 3 else tensor


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def build_identity(path) -> None:
    """T1->T2 identity baseline: returns its input unchanged (the floor any synthesis model must beat)."""
    _save_scripted(_Identity(), path)


class _IntensityRemap(nn.Module):
    """Piecewise-linear lookup between bin centres; inputs outside the fitted range take the end values."""

    def __init__(self, centres: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.register_buffer("centres", centres)
        self.register_buffer("values", values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_bins = self.centres.shape[0]
        upper = torch.bucketize(x, self.centres).clamp(1, n_bins - 1)
        lower = upper - 1
        x0, x1 = self.centres[lower], self.centres[upper]
        y0, y1 = self.values[lower], self.values[upper]
        weight = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
        return y0 + weight * (y1 - y0)


def build_intensity_remap(path, t1_images, t2_images, bins: int = 64) -> None:
    """T1->T2 intensity remap baseline: T2 ~ f(T1), a per-voxel lookup that ignores spatial context.

    ``f`` is fitted on training pairs as the mean T2 per equal-width T1 bin (no monotonicity constraint, so it can
    map dark CSF and dark bone to their average); empty bins are linearly interpolated from their neighbours.
    """
    t1 = np.asarray(t1_images, dtype=np.float64).ravel()
    t2 = np.asarray(t2_images, dtype=np.float64).ravel()
    # The top 0.1 % are noise/bias outliers that would stretch the bins over an almost empty range.
    low, high = float(t1.min()), float(np.quantile(t1, 0.999))
    edges = np.linspace(low, high, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2.0
    bin_index = np.clip(np.digitize(t1, edges) - 1, 0, bins - 1)
    counts = np.bincount(bin_index, minlength=bins)
    sums = np.bincount(bin_index, weights=t2, minlength=bins)
    filled = counts > 0
    values = np.interp(centres, centres[filled], sums[filled] / counts[filled])
    module = _IntensityRemap(
        torch.as_tensor(centres, dtype=torch.float32), torch.as_tensor(values, dtype=torch.float32)
    )
    _save_scripted(module, path)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    # Batch norm makes the short CPU training converge several times faster; unlike instance/group norm it keeps
    # absolute intensities (fixed running statistics at inference), which the T1->T2 mapping relies on.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1),
    )


class TinyUNet(nn.Module):
    """Two-level 2D U-Net (widths w, 2w, 4w), optionally with Gaussian noise injected at the bottleneck.

    ``noise_scale > 0`` adds ``noise_scale * std(channel) * N(0, 1)`` to each bottleneck channel at every call
    (training or not), so repeated calls sample different outputs; ``torch.manual_seed`` makes them repeatable.
    ``residual=True`` adds the first input channel to the output (the net then predicts a correction).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        width: int = 16,
        noise_scale: float = 0.0,
        residual: bool = False,
    ):
        super().__init__()
        self.noise_scale = noise_scale
        self.residual = residual
        self.encoder1 = _conv_block(in_channels, width)
        self.encoder2 = _conv_block(width, 2 * width)
        self.bottleneck = _conv_block(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.decoder2 = _conv_block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decoder1 = _conv_block(2 * width, width)
        self.head = nn.Conv2d(width, out_channels, 1)
        self.pool = nn.MaxPool2d(2)
        if residual:
            # Start as the identity so that even a briefly trained correction never makes the input worse.
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip1 = self.encoder1(x)
        skip2 = self.encoder2(self.pool(skip1))
        bottom = self.bottleneck(self.pool(skip2))
        if self.noise_scale > 0.0:
            channel_std = bottom.std(dim=(2, 3), keepdim=True)
            bottom = bottom + self.noise_scale * channel_std * torch.randn_like(bottom)
        up = self.decoder2(torch.cat([self.up2(bottom), skip2], dim=1))
        up = self.decoder1(torch.cat([self.up1(up), skip1], dim=1))
        out = self.head(up)
        if self.residual:
            out = out + x[:, :1]
        return out


class _ThreadLimit:
    """Trains on the intended number of cores and restores the caller's setting afterwards."""

    def __init__(self, threads: int):
        self.threads = threads

    def __enter__(self):
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc):
        torch.set_num_threads(self.previous)


def _train(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    seconds: float,
    seed: int,
    max_steps: int | None,
    batch_size: int = 8,
    learning_rate: float = 3e-3,
) -> float:
    """Adam on L1 loss over random crops (with left-right flips) until the time or step budget is spent.

    The learning rate follows a cosine decay over the budget (step fraction with ``max_steps``, else time fraction).
    With ``max_steps`` and ``seconds=math.inf`` the run is fully reproducible.
    Returns the mean loss of the last 10 steps.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    n_images, _, height, width = inputs.shape
    crop = min(CROP_SIZE, height, width)
    recent_losses: list[float] = []
    start = time.perf_counter()
    step = 0
    model.train()
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= seconds or (max_steps is not None and step >= max_steps):
            break
        # Step-based schedule when a step budget is given keeps such runs independent of machine speed.
        progress = step / max_steps if max_steps is not None else elapsed / seconds
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))
        indices = torch.randint(n_images, (batch_size,), generator=generator)
        tops = torch.randint(height - crop + 1, (batch_size,), generator=generator)
        lefts = torch.randint(width - crop + 1, (batch_size,), generator=generator)
        flips = torch.rand(batch_size, generator=generator) < 0.5
        batch_inputs, batch_targets = [], []
        for index, top, left, flip in zip(indices, tops, lefts, flips, strict=True):
            window = (slice(None), slice(int(top), int(top) + crop), slice(int(left), int(left) + crop))
            source, target = inputs[int(index)][window], targets[int(index)][window]
            if flip:
                source, target = source.flip(-1), target.flip(-1)
            batch_inputs.append(source)
            batch_targets.append(target)
        loss = nn.functional.l1_loss(model(torch.stack(batch_inputs)), torch.stack(batch_targets))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent_losses = (recent_losses + [loss.item()])[-10:]
        step += 1
    model.eval()
    return float(np.mean(recent_losses)) if recent_losses else float("nan")


def _train_unet(model, inputs, targets, seconds, seed, max_steps, threads) -> float:
    with _ThreadLimit(threads):
        return _train(model, inputs, targets, seconds, seed, max_steps)


def build_unet(
    path,
    t1_images,
    t2_images,
    seconds: float = 60.0,
    seed: int = 0,
    max_steps: int | None = None,
    width: int = 8,
    threads: int = TRAIN_THREADS,
) -> float:
    """T1->T2 U-Net baseline: a ``TinyUNet`` (8/16/32 channels, batch norm) trained with Adam on L1 for ``seconds``.

    Train it on phantoms generated from seeds disjoint from the evaluation set. Returns the final training loss.
    """
    torch.manual_seed(seed)
    model = TinyUNet(1, 1, width=width)
    loss = _train_unet(model, _as_batch(t1_images), _as_batch(t2_images), seconds, seed, max_steps, threads)
    _save_scripted(model, path)
    return loss


def _load_unet_state(unet_state_or_path) -> dict[str, torch.Tensor]:
    if isinstance(unet_state_or_path, nn.Module):
        return unet_state_or_path.state_dict()
    if isinstance(unet_state_or_path, dict):
        return unet_state_or_path
    return torch.jit.load(str(unet_state_or_path), map_location="cpu").state_dict()


def build_stochastic_unet(path, unet_state_or_path, noise_scale: float = 1.0) -> None:
    """Stochastic T1->T2 baseline: the trained U-Net with Gaussian noise injected at the bottleneck.

    ``unet_state_or_path`` is the file written by ``build_unet``, a state dict or a module. Each call samples new
    noise (``noise_scale`` times each bottleneck channel's spatial std), so repeated calls differ; calling
    ``torch.manual_seed`` first makes a call repeatable. No extra training: diversity comes at some cost in accuracy.
    """
    state = _load_unet_state(unet_state_or_path)
    width, in_channels = state["encoder1.0.weight"].shape[:2]
    model = TinyUNet(int(in_channels), int(state["head.weight"].shape[0]), width=int(width), noise_scale=noise_scale)
    model.load_state_dict(state)
    _save_scripted(model, path)


class ZeroFilled(nn.Module):
    """(B, 2, H, W) centred orthonormal k-space (real, imaginary) -> (B, 1, H, W) magnitude image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kspace = torch.complex(x[:, 0], x[:, 1])
        image = torch.fft.fftshift(
            torch.fft.ifft2(torch.fft.ifftshift(kspace, dim=(-2, -1)), norm="ortho"), dim=(-2, -1)
        )
        return image.abs().unsqueeze(1)


def build_zero_filled(path) -> None:
    """Reconstruction baseline: zero-filled inverse FFT magnitude, identical to ``phantom.zero_filled``."""
    _save_scripted(ZeroFilled(), path)


class _ZeroFilledDenoiser(nn.Module):
    def __init__(self, denoiser: TinyUNet):
        super().__init__()
        self.zero_filled = ZeroFilled()
        self.denoiser = denoiser

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.denoiser(self.zero_filled(x))


def build_denoiser(
    path,
    kspaces,
    targets,
    seconds: float = 45.0,
    seed: int = 0,
    max_steps: int | None = None,
    width: int = 8,
    threads: int = TRAIN_THREADS,
) -> float:
    """Reconstruction baseline: zero-filled image followed by a residual ``TinyUNet`` that removes aliasing.

    ``kspaces`` is (N, 2, H, W) as ``phantom.undersample`` (ideally each with its own mask), ``targets`` the fully
    sampled magnitude images (N, H, W). Trained with Adam on L1 for ``seconds``; returns the final training loss.
    """
    kspace_batch = _as_batch(kspaces)
    with torch.no_grad():
        inputs = ZeroFilled()(kspace_batch)
    torch.manual_seed(seed)
    denoiser = TinyUNet(1, 1, width=width, residual=True)
    loss = _train_unet(denoiser, inputs, _as_batch(targets), seconds, seed, max_steps, threads)
    _save_scripted(_ZeroFilledDenoiser(denoiser), path)
    return loss


BASELINE_FILES = {
    "identity": "t1_to_t2_identity.pt",
    "intensity_remap": "t1_to_t2_intensity_remap.pt",
    "unet": "t1_to_t2_unet.pt",
    "stochastic_unet": "t1_to_t2_stochastic_unet.pt",
    "zero_filled": "recon_zero_filled.pt",
    "denoiser": "recon_denoiser.pt",
}
