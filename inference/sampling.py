"""Diffusion sampling run by the platform around an uploaded noise predictor (no Django).

A diffusion model is uploaded as a noise predictor ε(x_t, t) — a TorchScript module called as
`module(x, t)` or an ONNX graph with inputs (x, t) — plus a declared scheduler (`SchedulerSpec`).
The loop is ours (`sample_batch`, run inside the sandbox child): MONAI's `DDPMScheduler` or
`DDIMScheduler` (`monai.networks.schedulers`, MONAI 1.5) steps x_t → x_{t−1}; the artifact only
predicts. Shapes: x_t is (B, C_out, *spatial) float32; the predictor receives x_t and the
condition concatenated along channels, (B, C_out + C_cond, *spatial), and t as a (B,) int64
tensor of training timesteps; it returns (B, C_out, *spatial).

The condition is the case input (translation, enhancement: e.g. the T1 image), or for a
reconstruction task the zero-filled image of the case's 2-channel (real, imaginary) k-space;
there a data-consistency step (`data_consistency`) after every scheduler step puts the measured
k-space lines back. Noise: each batch item has its own `torch.Generator` seeded with
`seeds[j]` (on the predictor's device), drawn first for x_T and then by the scheduler's steps,
so an item's sample does not depend on what else is in its batch.
"""

from dataclasses import asdict, dataclass

from .sandbox.errors import ModelArtifactError

SCHEDULERS = ("ddpm", "ddim")
BETA_SCHEDULES = ("linear_beta", "scaled_linear_beta", "sigmoid_beta", "cosine")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
MAX_TRAIN_TIMESTEPS = 10_000
VALIDATION_STEPS = 2  # the dry run of a diffusion model samples with this many DDIM steps


class NonFiniteStep(ModelArtifactError):
    """The predictor returned NaN or Inf at a sampling step (the message names it)."""


@dataclass(frozen=True)
class SchedulerSpec:
    """The scheduler a noise predictor was trained with, as declared at upload (stored with the model)."""

    kind: str  # "ddpm" | "ddim": the model's default sampler
    num_train_timesteps: int
    schedule: str = "linear_beta"
    beta_start: float = 1e-4
    beta_end: float = 2e-2
    prediction_type: str = "epsilon"
    clip_sample: bool = True
    clip_min: float = -1.0
    clip_max: float = 1.0

    @classmethod
    def from_dict(cls, data):
        """The spec from its stored or uploaded form; ValueError with a message for the user."""
        if not isinstance(data, dict):
            raise ValueError('Declare the scheduler as an object, e.g. {"kind": "ddim", "num_train_timesteps": 1000}.')
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown scheduler field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        if "kind" not in data or "num_train_timesteps" not in data:
            raise ValueError("The scheduler needs `kind` (ddpm or ddim) and `num_train_timesteps`.")
        spec = cls(**data)
        spec.check()
        return spec

    def check(self):
        if self.kind not in SCHEDULERS:
            raise ValueError(f"Scheduler kind {self.kind!r} is not one of {', '.join(SCHEDULERS)}.")
        steps = self.num_train_timesteps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_TRAIN_TIMESTEPS:
            raise ValueError(f"num_train_timesteps is a whole number from 1 to {MAX_TRAIN_TIMESTEPS}.")
        if self.schedule not in BETA_SCHEDULES:
            raise ValueError(f"β schedule {self.schedule!r} is not one of {', '.join(BETA_SCHEDULES)}.")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type {self.prediction_type!r} is not one of {', '.join(PREDICTION_TYPES)}.")
        for name in ("beta_start", "beta_end", "clip_min", "clip_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{name} is a number.")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError("The β schedule needs 0 < beta_start < beta_end < 1.")
        if not isinstance(self.clip_sample, bool):
            raise ValueError("clip_sample is true or false.")
        if self.clip_sample and not self.clip_min < self.clip_max:
            raise ValueError("clip_min must be below clip_max.")

    def as_dict(self):
        return asdict(self)

    def default_steps(self, kind=None):
        """DDPM samples every training step; DDIM 50 (or fewer when trained with fewer)."""
        return self.num_train_timesteps if (kind or self.kind) == "ddpm" else min(50, self.num_train_timesteps)

    def check_steps(self, steps, kind=None):
        """ValueError unless `steps` sampling steps are possible with the sampler `kind`."""
        kind = kind or self.kind
        if kind not in SCHEDULERS:
            raise ValueError(f"Scheduler {kind!r} is not one of {', '.join(SCHEDULERS)}.")
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.num_train_timesteps:
            raise ValueError(
                f"Sampling steps are a whole number from 1 to {self.num_train_timesteps} (training steps)."
            )
        if kind == "ddpm" and steps != self.num_train_timesteps:
            # MONAI's DDPMScheduler.step goes from t to t−1 whatever the spacing of its timesteps.
            raise ValueError(f"DDPM samples all {self.num_train_timesteps} training steps; use DDIM for {steps} steps.")


@dataclass(frozen=True)
class Sampling:
    """What one run samples with: the declared spec, the sampler and its steps, the conditioning."""

    spec: SchedulerSpec
    kind: str
    steps: int
    out_channels: int = 1
    reconstruction: bool = False  # condition on the zero-filled image, data consistency after each step
    eta: float = 0.0  # DDIM only: 0 is deterministic given x_T

    def as_dict(self):
        return {**asdict(self), "spec": self.spec.as_dict()}

    @classmethod
    def from_dict(cls, data):
        return cls(**{**data, "spec": SchedulerSpec.from_dict(data["spec"])})


def build_scheduler(sampling):
    """MONAI's scheduler for `sampling`, its timesteps set."""
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler  # noqa: PLC0415 - slow to import

    spec = sampling.spec
    common = {
        "num_train_timesteps": spec.num_train_timesteps,
        "schedule": spec.schedule,
        "prediction_type": spec.prediction_type,
        "clip_sample": spec.clip_sample,
        "clip_sample_min": spec.clip_min,
        "clip_sample_max": spec.clip_max,
    }
    if spec.schedule != "cosine":
        common.update(beta_start=spec.beta_start, beta_end=spec.beta_end)
    scheduler = DDPMScheduler(**common) if sampling.kind == "ddpm" else DDIMScheduler(**common)
    scheduler.set_timesteps(sampling.steps)
    return scheduler


# --------------------------------------------------------------------------- k-space (pure torch)


def fft2c(image):
    """Centred orthonormal 2D FFT over the last two axes (complex tensor), as `demo.phantom.fft2c`."""
    import torch  # noqa: PLC0415

    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(image, dim=dims), norm="ortho"), dim=dims)


def ifft2c(kspace):
    import torch  # noqa: PLC0415

    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(kspace, dim=dims), norm="ortho"), dim=dims)


def measured_kspace(kspace2ch):
    """(B, 2, H, W) real/imaginary k-space as stored for reconstruction tasks → (complex (B, 1, H, W), mask).

    A location is measured where the stored k-space is not exactly zero (unmeasured lines are stored as zeros)."""
    import torch  # noqa: PLC0415

    measured = torch.complex(kspace2ch[:, 0:1].double(), kspace2ch[:, 1:2].double())
    return measured, measured != 0


def zero_filled(kspace2ch):
    """(B, 2, H, W) k-space → (B, 1, H, W) float32 magnitude of its inverse FFT (the reconstruction condition)."""
    measured, _ = measured_kspace(kspace2ch)
    return ifft2c(measured).abs().float()


def data_consistency(image, measured, mask):
    """Replace the measured k-space locations of a real image by the measurements.

    image: (B, 1, H, W) real; measured: (B, 1, H, W) complex k-space; mask: (B, 1, H, W) bool.
    Returns the complex image (B, 1, H, W) whose centred FFT equals `measured` where `mask` and the
    image's own FFT elsewhere. The sampler continues with its real part (the predictor works on real
    images); the imaginary part it drops is what the measurement and the real image disagree on.
    """
    import torch  # noqa: PLC0415

    kspace = fft2c(image.to(torch.complex128))
    return ifft2c(torch.where(mask, measured.to(torch.complex128), kspace))


# --------------------------------------------------------------------------- the loop


def sample_batch(predict, batch, sampling, seeds, *, device="cpu"):
    """Sample one output per batch item.

    predict(x (B, C_out + C_cond, *spatial) float32 tensor, t (B,) int64 tensor) → (B, C_out, *spatial)
    tensor: the predictor. batch: (B, C_in, *spatial) float32 numpy, the (normalised) case inputs; for a
    reconstruction, the 2-channel k-space. seeds: one int per item. Returns (B, C_out, *spatial) float32
    numpy. Raises `NonFiniteStep` naming the step when the predictor (or the step) gives NaN or Inf.
    """
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
    if sampling.reconstruction:
        if inputs.shape[1] != 2 or inputs.ndim != 4:
            raise ModelArtifactError(
                f"A reconstruction sampler takes (B, 2, H, W) k-space (real, imaginary), got {tuple(inputs.shape)}."
            )
        measured, mask = measured_kspace(inputs)
        condition = ifft2c(measured).abs().float()
    else:
        condition = inputs
    size = len(seeds)
    if size != inputs.shape[0]:
        raise ValueError(f"{size} seeds for a batch of {inputs.shape[0]}")
    shape = (sampling.out_channels, *inputs.shape[2:])
    generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
    x = torch.stack([torch.randn(shape, generator=g, device=device) for g in generators])
    scheduler = build_scheduler(sampling)
    total = len(scheduler.timesteps)
    with torch.inference_mode():
        for step, t in enumerate(scheduler.timesteps, start=1):
            t = int(t)
            timesteps = torch.full((size,), t, dtype=torch.long, device=device)
            eps = predict(torch.cat([x, condition], dim=1), timesteps)
            if tuple(eps.shape) != tuple(x.shape):
                raise ModelArtifactError(
                    f"The noise predictor returned shape {tuple(eps.shape)} at sampling step {step} of {total}, "
                    f"expected {tuple(x.shape)}."
                )
            if not bool(torch.isfinite(eps).all()):
                raise NonFiniteStep(
                    f"The noise predictor returned NaN or Inf at sampling step {step} of {total} (t={t})."
                )
            eps = eps.float()
            parts = []
            for j in range(size):
                if sampling.kind == "ddim":
                    prev, _ = scheduler.step(eps[j : j + 1], t, x[j : j + 1], eta=sampling.eta, generator=generators[j])
                else:
                    prev, _ = scheduler.step(eps[j : j + 1], t, x[j : j + 1], generator=generators[j])
                parts.append(prev)
            x = torch.cat(parts).float()
            if sampling.reconstruction:
                x = data_consistency(x, measured, mask).real.float()
            if not bool(torch.isfinite(x).all()):
                raise NonFiniteStep(f"Sampling gave NaN or Inf at sampling step {step} of {total} (t={t}).")
    return x.cpu().numpy().astype(np.float32, copy=False)


class Sampler:
    """A loaded noise predictor behind the `runner.LoadedModel` interface: `predict(batch, seed, seeds)` runs
    the whole sampling loop. `seeds` gives each item's seed (`runner.predict_cases` passes those of the
    cases' positions, so a case's sample is the same however the run was batched or resumed); without
    it item j is seeded `seed + j`."""

    def __init__(self, model, sampling):
        self.model = model
        self.sampling = sampling
        self.format = model.format

    @property
    def device(self):
        return self.model.device

    @property
    def parameter_count(self):
        return self.model.parameter_count

    def synchronize(self):
        self.model.synchronize()

    def predict(self, batch, seed=None, seeds=None):
        if seeds is None:
            base = 0 if seed is None else int(seed)
            seeds = [(base + j) % (2**63) for j in range(len(batch))]
        elif len(seeds) != len(batch):
            raise ValueError(f"{len(seeds)} seeds for a batch of {len(batch)}")
        return sample_batch(self.model.predict_noise, batch, self.sampling, seeds, device=self.model.device)
