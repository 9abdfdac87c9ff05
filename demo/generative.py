"""Generative baselines of the demo (Pix2Pix, CycleGAN, conditional VAE, conditional diffusion), trained on CPU.

Built from MONAI's generative components where they exist: `PatchDiscriminator` and `PatchAdversarialLoss`
(least squares) for the GANs, `DiffusionModelUNet` and `DDPMScheduler` for the diffusion models. The generators
are the demo's `TinyUNet` (demo/baselines.py). Every trainer is seeded: `torch.manual_seed(seed)` before the
networks are built (initialisation) and one `torch.Generator(seed)` for everything drawn while training (crops,
flips, unpaired indices, timesteps, noise, VAE latents), so a fixed number of steps on one thread gives the same
state dict every time on the same machine.

Data are (N, C, H, W) float32 tensors in the phantoms' intensity units (about [0, 1]); training takes random
``CROP``×``CROP`` windows (with left-right flips), the networks being (almost) fully convolutional, and the exported
models take any H, W divisible by 4 (8 for the diffusion U-Net). Each trainer returns ``(exportable module, losses)``
where losses are the means of the last 10 steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import DiffusionModelUNet, PatchDiscriminator
from monai.networks.schedulers import DDPMScheduler
from torch import nn
from torch.nn import functional as F

from demo.baselines import TinyUNet, ZeroFilled

CROP = 64


@dataclass(frozen=True)
class Settings:
    """What a trainer trains with (written to the manifest)."""

    steps: int
    batch_size: int = 8
    learning_rate: float = 1e-3
    crop: int = CROP
    width: int = 16  # generator width (TinyUNet: w, 2w, 4w)
    l1_weight: float = 100.0  # Pix2Pix / GAN reconstruction: L1 against the adversarial term (Isola et al.)
    cycle_weight: float = 10.0  # CycleGAN (Zhu et al.)
    kl_weight: float = 1e-3  # conditional VAE
    latent_channels: int = 4  # conditional VAE: a latent map at 1/4 resolution
    train_timesteps: int = 1000  # diffusion

    def as_dict(self):
        return asdict(self)


def _lr(settings: Settings, step: int) -> float:
    """Cosine decay to 5 % over the steps."""
    return settings.learning_rate * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * step / settings.steps)))


def _set_lr(optimizers, value):
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = value


def _crops(generator, tensors, indices, crop, flips=None):
    """The same random window (and flip) of each tensor in ``tensors`` at ``indices`` → list of (B, C, crop, crop)."""
    batch = len(indices)
    height, width = tensors[0].shape[-2:]
    crop = min(crop, height, width)
    tops = torch.randint(height - crop + 1, (batch,), generator=generator)
    lefts = torch.randint(width - crop + 1, (batch,), generator=generator)
    if flips is None:
        flips = torch.rand(batch, generator=generator) < 0.5
    out = [[] for _ in tensors]
    for index, top, left, flip in zip(indices.tolist(), tops.tolist(), lefts.tolist(), flips.tolist(), strict=True):
        for k, tensor in enumerate(tensors):
            window = tensor[index, :, top : top + crop, left : left + crop]
            out[k].append(window.flip(-1) if flip else window)
    return [torch.stack(parts) for parts in out]


def _paired(generator, tensors, settings):
    indices = torch.randint(len(tensors[0]), (settings.batch_size,), generator=generator)
    return _crops(generator, tensors, indices, settings.crop)


def _discriminator(in_channels: int) -> PatchDiscriminator:
    # A 3-layer PatchGAN: 16·2^k channels, 70×70-style receptive field, one logit per patch.
    return PatchDiscriminator(spatial_dims=2, num_layers_d=3, channels=16, in_channels=in_channels, out_channels=1)


def _logits(discriminator, x):
    return discriminator(x)[-1]  # MONAI's PatchDiscriminator returns every layer's output, the logits last


class _Recent:
    def __init__(self):
        self.values: dict[str, list[float]] = {}

    def add(self, **losses):
        for key, value in losses.items():
            self.values[key] = (self.values.get(key, []) + [float(value)])[-10:]

    def means(self):
        return {key: sum(v) / len(v) for key, v in self.values.items()}


def _conditional_gan(generator_net, condition, target, settings, seed, d_input):
    """Pix2Pix-style training: G(condition) vs target, a conditional PatchGAN on concat(condition, image).

    ``d_input(condition_crop)`` gives the discriminator's conditioning channels (the T1 image, or the zero-filled
    image for reconstruction). Adam (β1 = 0.5) for both, least-squares adversarial loss, L1 weighted by
    ``settings.l1_weight``.
    """
    generator = torch.Generator().manual_seed(seed)
    discriminator = _discriminator(2)
    adversarial = PatchAdversarialLoss(criterion="least_squares")
    g_opt = torch.optim.Adam(generator_net.parameters(), lr=settings.learning_rate, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=settings.learning_rate, betas=(0.5, 0.999))
    recent = _Recent()
    generator_net.train()
    discriminator.train()
    for step in range(settings.steps):
        _set_lr((g_opt, d_opt), _lr(settings, step))
        source, real = _paired(generator, (condition, target), settings)
        cond = d_input(source)
        fake = generator_net(source)
        d_loss = 0.5 * (
            adversarial(_logits(discriminator, torch.cat([cond, real], 1)), target_is_real=True, for_discriminator=True)
            + adversarial(
                _logits(discriminator, torch.cat([cond, fake.detach()], 1)),
                target_is_real=False,
                for_discriminator=True,
            )
        )
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        g_adv = adversarial(
            _logits(discriminator, torch.cat([cond, fake], 1)), target_is_real=True, for_discriminator=False
        )
        l1 = F.l1_loss(fake, real)
        g_loss = g_adv + settings.l1_weight * l1
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        recent.add(l1=l1.item(), g_adv=g_adv.item(), d=d_loss.item())
    generator_net.eval()
    return recent.means()


def train_pix2pix(t1, t2, settings: Settings, seed: int):
    """T1→T2 Pix2Pix: a TinyUNet generator, a PatchGAN discriminator on (T1, T2), L1 + adversarial loss."""
    torch.manual_seed(seed)
    net = TinyUNet(1, 1, width=settings.width)
    losses = _conditional_gan(net, t1, t2, settings, seed, d_input=lambda source: source)
    return net, losses


class _ZeroFilledThen(nn.Module):
    """(B, 2, H, W) k-space → zero-filled magnitude → a residual network."""

    def __init__(self, net: TinyUNet):
        super().__init__()
        self.zero_filled = ZeroFilled()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.zero_filled(x))


def train_gan_reconstruction(zero_filled, targets, settings: Settings, seed: int):
    """4× reconstruction GAN: a residual TinyUNet on the zero-filled image, PatchGAN on (zero-filled, image).

    ``zero_filled`` and ``targets`` are (N, 1, H, W); the exported module takes the (B, 2, H, W) k-space itself.
    """
    torch.manual_seed(seed)
    net = TinyUNet(1, 1, width=settings.width, residual=True)
    losses = _conditional_gan(net, zero_filled, targets, settings, seed, d_input=lambda source: source)
    return _ZeroFilledThen(net), losses


def train_cyclegan(t1, t2, settings: Settings, seed: int):
    """Unpaired T1→T2 CycleGAN: G: T1→T2, F: T2→T1, a PatchGAN per domain, LSGAN + cycle-consistency (L1).

    The pairing is never used: T1 crops come from the first half of the phantoms, T2 crops from the second half,
    each with its own indices and windows. Returns G.
    """
    torch.manual_seed(seed)
    g_ab = TinyUNet(1, 1, width=settings.width)
    g_ba = TinyUNet(1, 1, width=settings.width)
    d_a, d_b = _discriminator(1), _discriminator(1)
    generator = torch.Generator().manual_seed(seed)
    adversarial = PatchAdversarialLoss(criterion="least_squares")
    betas = (0.5, 0.999)
    g_opt = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], lr=settings.learning_rate, betas=betas)
    d_opt = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=settings.learning_rate, betas=betas)
    half = len(t1) // 2
    domain_a, domain_b = t1[:half], t2[half:]
    recent = _Recent()
    for module in (g_ab, g_ba, d_a, d_b):
        module.train()
    for step in range(settings.steps):
        _set_lr((g_opt, d_opt), _lr(settings, step))
        (real_a,) = _paired(generator, (domain_a,), settings)
        (real_b,) = _paired(generator, (domain_b,), settings)
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        g_adv = adversarial(_logits(d_b, fake_b), target_is_real=True, for_discriminator=False) + adversarial(
            _logits(d_a, fake_a), target_is_real=True, for_discriminator=False
        )
        cycle = F.l1_loss(g_ba(fake_b), real_a) + F.l1_loss(g_ab(fake_a), real_b)
        g_loss = g_adv + settings.cycle_weight * cycle
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        d_loss = 0.0
        for disc, real, fake in ((d_a, real_a, fake_a), (d_b, real_b, fake_b)):
            d_loss = d_loss + 0.5 * (
                adversarial(_logits(disc, real), target_is_real=True, for_discriminator=True)
                + adversarial(_logits(disc, fake.detach()), target_is_real=False, for_discriminator=True)
            )
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        recent.add(cycle=cycle.item(), g_adv=g_adv.item(), d=d_loss.item())
    g_ab.eval()
    return g_ab, recent.means()


class _PosteriorEncoder(nn.Module):
    """q(z | T1, T2): (B, 2, H, W) → mean and log-variance maps (B, latent, H/4, W/4)."""

    def __init__(self, latent: int, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2, width, 3, stride=2, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(2 * width, 2 * latent, 3, padding=1),
        )

    def forward(self, x):
        mean, log_var = self.body(x).chunk(2, dim=1)
        return mean, log_var.clamp(-8.0, 8.0)


class ConditionalVAESampler(nn.Module):
    """The cVAE's decoder as shipped: T1 (B, 1, H, W) → one T2 sample, z ~ N(0, I) drawn at every call.

    The latent map (B, latent, H/4, W/4) is upsampled (nearest) and concatenated with T1; ``torch.manual_seed``
    before a call makes it repeatable (the platform seeds each sample).
    """

    def __init__(self, decoder: TinyUNet, latent: int):
        super().__init__()
        self.decoder = decoder
        self.latent = latent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        z = torch.randn(batch, self.latent, height // 4, width // 4, dtype=x.dtype, device=x.device)
        return self.decoder(torch.cat([x, F.interpolate(z, scale_factor=4.0, mode="nearest")], dim=1))


def train_cvae(t1, t2, settings: Settings, seed: int):
    """Conditional VAE T1→T2: L1 reconstruction + ``kl_weight`` · KL(q(z | T1, T2) ‖ N(0, I)) per latent element."""
    torch.manual_seed(seed)
    latent = settings.latent_channels
    encoder = _PosteriorEncoder(latent, settings.width)
    decoder = TinyUNet(1 + latent, 1, width=settings.width)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=settings.learning_rate)
    recent = _Recent()
    encoder.train()
    decoder.train()
    for step in range(settings.steps):
        _set_lr((optimizer,), _lr(settings, step))
        source, target = _paired(generator, (t1, t2), settings)
        mean, log_var = encoder(torch.cat([source, target], 1))
        noise = torch.randn(mean.shape, generator=generator)
        z = mean + torch.exp(0.5 * log_var) * noise
        output = decoder(torch.cat([source, F.interpolate(z, scale_factor=4.0, mode="nearest")], 1))
        l1 = F.l1_loss(output, target)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).mean()
        loss = l1 + settings.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent.add(l1=l1.item(), kl=kl.item())
    decoder.eval()
    return ConditionalVAESampler(decoder, latent), recent.means()


def diffusion_scheduler(settings: Settings) -> dict:
    """The scheduler the diffusion baselines are trained with, as declared at upload (`inference.sampling`).

    x0 prediction (``prediction_type="sample"``): after a few hundred CPU steps an ε-predictor still leaves
    visible noise, an x0-predictor does not. Samples are clipped to [0, 1.5] (the phantoms lie in about [0, 1]).
    """
    return {
        "kind": "ddim",
        "num_train_timesteps": settings.train_timesteps,
        "schedule": "linear_beta",
        "beta_start": 1e-4,
        "beta_end": 2e-2,
        "prediction_type": "sample",
        "clip_sample": True,
        "clip_min": 0.0,
        "clip_max": 1.5,
    }


def diffusion_unet(in_channels: int = 2, out_channels: int = 1) -> DiffusionModelUNet:
    """MONAI's DiffusionModelUNet, small: 16/32/32 channels, one residual block per level, attention only in the
    middle block (MONAI always puts one there)."""
    return DiffusionModelUNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=(16, 32, 32),
        attention_levels=(False, False, False),
        num_res_blocks=1,
        norm_num_groups=8,
    )


class NoisePredictor(nn.Module):
    """``module(x, t)`` as the platform calls it: x = concat(x_t, condition) (B, 2, H, W), t (B,) int64."""

    def __init__(self, net: DiffusionModelUNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x, t)


def train_diffusion(condition, target, settings: Settings, seed: int):
    """Conditional DDPM training: x_t = MONAI's ``DDPMScheduler.add_noise(x0, ε, t)``, t uniform over the training
    timesteps, the network sees concat(x_t, condition) and is trained with MSE against x0 (see
    ``diffusion_scheduler``). ``condition`` is the T1 image or the zero-filled image, (N, 1, H, W)."""
    torch.manual_seed(seed)
    net = diffusion_unet()
    spec = diffusion_scheduler(settings)
    scheduler = DDPMScheduler(
        num_train_timesteps=spec["num_train_timesteps"],
        schedule=spec["schedule"],
        beta_start=spec["beta_start"],
        beta_end=spec["beta_end"],
        prediction_type=spec["prediction_type"],
    )
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    recent = _Recent()
    net.train()
    for step in range(settings.steps):
        _set_lr((optimizer,), _lr(settings, step))
        cond, x0 = _paired(generator, (condition, target), settings)
        timesteps = torch.randint(settings.train_timesteps, (len(x0),), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        x_t = scheduler.add_noise(original_samples=x0, noise=noise, timesteps=timesteps)
        loss = F.mse_loss(net(torch.cat([x_t, cond], 1), timesteps), x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent.add(mse=loss.item())
    net.eval()
    return NoisePredictor(net), recent.means()
