"""The demo's shipped baselines: trained once by ``scripts/train_baselines.py`` and committed under
``demo/artifacts/`` with ``manifest.json`` (training settings, seed, steps, wall time, sha256 of each file,
the declared scheduler of the diffusion models and their measured quality on held-out phantoms).

Seeds: training phantoms are ``TRAIN_SEEDS`` (200000+), the held-out quality check uses ``HELDOUT_SEEDS``
(300000+); the demo's test cases use 1000+ (``seed_demo.TEST_SEED_OFFSET``), the start-up-trained baselines
100000+, so none of them meet.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from monai.networks.nets import diffusion_model_unet

from demo import baselines, generative, phantom
from evaluation.metrics import pixel
from inference import sampling
from inference.runner import sha256_of  # the digest the upload path pins models by

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
MANIFEST = "manifest.json"
TRAIN_SEEDS = range(200_000, 200_256)
HELDOUT_SEEDS = range(300_000, 300_008)
RECON_MASK_SEED = 7  # masks of the training k-spaces (one random 4× mask per image)
TRANSLATION, RECONSTRUCTION = "t1-to-t2", "recon-4x"
SWEEP_STEPS = (10, 25)  # DDIM steps of the diffusion models' held-out check

#: key → (file, task, name, family, settings, extra registration fields, description)
GENERATIVE = {
    "pix2pix": (
        "t1_to_t2_pix2pix.pt",
        TRANSLATION,
        "Pix2Pix (U-Net + PatchGAN)",
        "gan",
        generative.Settings(steps=250),
        {},
        "TinyUNet generator, MONAI PatchDiscriminator on (T1, T2), L1 ×100 + least-squares adversarial loss.",
    ),
    "cyclegan": (
        "t1_to_t2_cyclegan.pt",
        TRANSLATION,
        "CycleGAN (unpaired)",
        "gan",
        generative.Settings(steps=200),
        {},
        "Two TinyUNet generators, a PatchGAN per contrast, cycle-consistency ×10; trained without the pairing.",
    ),
    "cvae": (
        "t1_to_t2_cvae.pt",
        TRANSLATION,
        "Conditional VAE (4 samples)",
        "vae",
        # KL weight 0.05 per latent element against the L1 mean (β ≈ 7 in ELBO units): with 1e-3 the posterior
        # carried the T2 image itself (KL 2.3 nats per element) and samples from the prior gave SSIM 0.09.
        generative.Settings(steps=400, kl_weight=0.05),
        {"stochastic": True, "samples_per_case": 4},
        "TinyUNet decoder on T1 and a 1/4-resolution latent map z ~ N(0, I); L1 + 0.05·KL.",
    ),
    "diffusion": (
        "t1_to_t2_diffusion.pt",
        TRANSLATION,
        "Conditional diffusion (DDIM)",
        "diffusion",
        generative.Settings(steps=300),
        {},
        "MONAI DiffusionModelUNet on concat(x_t, T1), DDPM training (x0 prediction), sampled by the platform.",
    ),
    "gan_recon": (
        "recon_gan.pt",
        RECONSTRUCTION,
        "GAN reconstruction",
        "gan",
        generative.Settings(steps=250),
        {},
        "Zero-filled image → residual TinyUNet, PatchGAN on (zero-filled, image), L1 ×100 + adversarial loss.",
    ),
    "diffusion_recon": (
        "recon_diffusion.pt",
        RECONSTRUCTION,
        "Conditional diffusion reconstruction (DDIM + data consistency)",
        "diffusion",
        generative.Settings(steps=300),
        {},
        "MONAI DiffusionModelUNet on concat(x_t, zero-filled); the platform puts the measured k-space lines "
        "back after every step.",
    ),
}
CLASSIC_STEPS = 400  # the U-Net and the denoiser, trained for steps (not seconds) so that they reproduce


def tensor(images) -> torch.Tensor:
    """(N, H, W) or (N, C, H, W) array → float32 (N, C, H, W) tensor."""
    t = torch.as_tensor(np.asarray(images, dtype=np.float32))
    return t.unsqueeze(1) if t.ndim == 3 else t


def training_data(seeds=TRAIN_SEEDS, size: int = 128) -> dict[str, torch.Tensor]:
    """Training phantoms: T1, T2 (N, 1, H, W); recon: the k-spaces of both contrasts (2N, 2, H, W), each with
    its own random 4× mask, their zero-filled images and fully sampled targets (2N, 1, H, W)."""
    batch = phantom.make_slice_batch(list(seeds), size=size)
    images = np.concatenate([batch["t1"], batch["t2"]])
    kspaces, _ = phantom.make_recon_batch(images, acceleration=4, seed=RECON_MASK_SEED)
    return {
        "t1": tensor(batch["t1"]),
        "t2": tensor(batch["t2"]),
        "kspace": tensor(kspaces),
        "zero_filled": tensor(phantom.zero_filled(kspaces)),
        "recon_target": tensor(images),
    }


def train(key: str, data: dict, settings: generative.Settings, seed: int):
    """Train the generative baseline ``key``: (exportable module, last losses)."""
    if key == "pix2pix":
        return generative.train_pix2pix(data["t1"], data["t2"], settings, seed)
    if key == "cyclegan":
        return generative.train_cyclegan(data["t1"], data["t2"], settings, seed)
    if key == "cvae":
        return generative.train_cvae(data["t1"], data["t2"], settings, seed)
    if key == "diffusion":
        return generative.train_diffusion(data["t1"], data["t2"], settings, seed)
    if key == "gan_recon":
        return generative.train_gan_reconstruction(data["zero_filled"], data["recon_target"], settings, seed)
    if key == "diffusion_recon":
        return generative.train_diffusion(data["zero_filled"], data["recon_target"], settings, seed)
    raise KeyError(key)


def device_free_timestep_embedding(timesteps: torch.Tensor, embedding_dim: int, max_period: int = 10000):
    """MONAI's ``get_timestep_embedding`` (sinusoidal, Ho et al. 2020) with the frequency index built from
    ``timesteps`` itself (``ones_like`` + ``cumsum``, exact small integers) instead of ``torch.arange(device=
    timesteps.device)``: a trace records that device as a constant, so a model traced on the CPU failed on a CUDA
    worker ("found at least two devices, cuda:0 and cpu", seen on an H200). (B,) int64 → (B, embedding_dim)."""
    if timesteps.ndim != 1:
        raise ValueError("Timesteps should be a 1d-array")
    half_dim = embedding_dim // 2
    index = torch.ones_like(timesteps, dtype=torch.float32)[:1].expand(half_dim).cumsum(0) - 1.0
    freqs = torch.exp(-math.log(max_period) * index / half_dim)
    args = timesteps[:, None].float() * freqs[None, :]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if embedding_dim % 2 == 1:
        embedding = torch.nn.functional.pad(embedding, (0, 1, 0, 0))
    return embedding


def export_noise_predictor(module: generative.NoisePredictor, path) -> None:
    """TorchScript by tracing (MONAI's attention block does not script), with the device-free timestep embedding
    so the file runs on any device; checked against the eager module at another batch size, image size and
    timesteps than the trace saw."""
    module.eval()
    example = (torch.rand(2, 2, 64, 64), torch.tensor([10, 900]))
    with (
        warnings.catch_warnings(),
        torch.no_grad(),
        mock.patch.object(diffusion_model_unet, "get_timestep_embedding", device_free_timestep_embedding),
    ):
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example, check_trace=False)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(path))
    loaded = torch.jit.load(str(path))
    probe = (torch.rand(3, 2, 128, 128, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 417, 999]))
    with torch.no_grad():
        difference = (loaded(*probe) - module(*probe)).abs().max().item()
    if difference > 1e-4:
        raise RuntimeError(f"The traced noise predictor differs from the eager one by {difference}.")


def export(key: str, module, path) -> None:
    if key.startswith("diffusion"):
        export_noise_predictor(module, path)
    else:
        baselines._save_scripted(module, path)


# --------------------------------------------------------------------------- held-out quality


def heldout_cases(seeds=HELDOUT_SEEDS) -> dict[str, np.ndarray]:
    """Held-out phantoms made as the demo's test cases are (same mask rule), from seeds no one trains on."""
    batch = phantom.make_slice_batch(list(seeds))
    kspaces = np.stack(
        [
            phantom.undersample(t2, phantom.undersampling_mask(t2.shape, acceleration=4, seed=seed))
            for t2, seed in zip(batch["t2"], seeds, strict=True)
        ]
    )
    return {"t1": batch["t1"][:, None], "t2": batch["t2"][:, None], "kspace": kspaces}


def scores(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Mean SSIM and PSNR (dB) over cases, data range = the references' max − min (as the platform's default)."""
    data_range = float(reference.max() - reference.min())
    pred, ref = torch.from_numpy(prediction.astype(np.float64)), torch.from_numpy(reference.astype(np.float64))
    return {
        "ssim": round(float(pixel.ssim(pred, ref, data_range).mean()), 4),
        "psnr": round(float(pixel.psnr(pred, ref, data_range).mean()), 2),
    }


def measure(path, task: str, scheduler: dict | None, cases: dict) -> dict:
    """Quality of one exported artifact on ``cases``: direct models once (seed 0), diffusion models with the
    platform's own sampling loop (`inference.sampling.sample_batch`) at each of ``SWEEP_STEPS`` DDIM steps."""
    module = torch.jit.load(str(path))
    inputs = cases["t1"] if task == TRANSLATION else cases["kspace"]
    reference = cases["t2"]
    if scheduler is None:
        torch.manual_seed(0)
        with torch.no_grad():
            return scores(module(torch.from_numpy(inputs)).numpy(), reference)
    spec = sampling.SchedulerSpec.from_dict(scheduler)
    result = {}
    for steps in SWEEP_STEPS:
        plan = sampling.Sampling(spec=spec, kind="ddim", steps=steps, reconstruction=task == RECONSTRUCTION)
        started = time.perf_counter()
        out = sampling.sample_batch(module, inputs, plan, seeds=list(range(len(inputs))))
        result[f"ddim_{steps}"] = {
            **scores(out, reference),
            "seconds_per_case": round((time.perf_counter() - started) / len(inputs), 3),
        }
    return result


# --------------------------------------------------------------------------- the whole set


def build_classic(directory: Path, data: dict, seed: int, steps: int = CLASSIC_STEPS) -> dict[str, dict]:
    """The simple baselines and the L1 U-Nets, trained for ``steps`` steps (entries of the manifest)."""
    t1, t2 = data["t1"][:, 0].numpy(), data["t2"][:, 0].numpy()
    entries = {}

    def entry(key, file, task, name, family, started, description, **extra):
        entries[key] = {
            "file": file,
            "task": task,
            "name": name,
            "family": family,
            "description": description,
            "wall_seconds": round(time.perf_counter() - started, 1),
            **extra,
        }

    started = time.perf_counter()
    baselines.build_identity(directory / "t1_to_t2_identity.pt")
    entry(
        "identity",
        "t1_to_t2_identity.pt",
        TRANSLATION,
        "Identity (T1 as T2)",
        "baseline",
        started,
        "Returns the T1 input unchanged: the floor.",
    )
    started = time.perf_counter()
    baselines.build_intensity_remap(directory / "t1_to_t2_intensity_remap.pt", t1, t2)
    entry(
        "intensity_remap",
        "t1_to_t2_intensity_remap.pt",
        TRANSLATION,
        "Intensity remap",
        "baseline",
        started,
        "Piecewise-linear T1→T2 intensity lookup fitted on training phantoms.",
    )
    common = {"seconds": math.inf, "seed": seed, "max_steps": steps, "width": 8, "threads": 1}
    training = {
        "steps": steps,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "crop": baselines.CROP_SIZE,
        "width": 8,
        "loss": "L1",
    }
    started = time.perf_counter()
    loss = baselines.build_unet(directory / "t1_to_t2_unet.pt", t1, t2, **common)
    entry(
        "unet",
        "t1_to_t2_unet.pt",
        TRANSLATION,
        "U-Net (L1)",
        "regression",
        started,
        "Small U-Net (8/16/32 channels) trained with an L1 loss.",
        training={**training, "seed": seed},
        losses={"l1": round(loss, 5)},
    )
    started = time.perf_counter()
    baselines.build_stochastic_unet(directory / "t1_to_t2_stochastic_unet.pt", directory / "t1_to_t2_unet.pt")
    entry(
        "stochastic_unet",
        "t1_to_t2_stochastic_unet.pt",
        TRANSLATION,
        "Stochastic U-Net (4 samples)",
        "regression",
        started,
        "The U-Net with Gaussian noise injected at the bottleneck: 4 samples per case.",
        stochastic=True,
        samples_per_case=4,
    )
    started = time.perf_counter()
    baselines.build_zero_filled(directory / "recon_zero_filled.pt")
    entry(
        "zero_filled",
        "recon_zero_filled.pt",
        RECONSTRUCTION,
        "Zero-filled IFFT",
        "baseline",
        started,
        "Magnitude of the inverse FFT of the zero-filled k-space.",
    )
    started = time.perf_counter()
    loss = baselines.build_denoiser(
        directory / "recon_denoiser.pt", data["kspace"].numpy(), data["recon_target"][:, 0].numpy(), **common
    )
    entry(
        "denoiser",
        "recon_denoiser.pt",
        RECONSTRUCTION,
        "Zero-filled + CNN denoiser",
        "regression",
        started,
        "Residual CNN (8/16/32 channels) trained with an L1 loss to remove aliasing.",
        training={**training, "seed": seed},
        losses={"l1": round(loss, 5)},
    )
    return entries


def build_all(directory=ARTIFACT_DIR, *, seed: int = 0, only=None, steps=None, log=print) -> dict:
    """Train and export every baseline into ``directory``, measure each on the held-out phantoms and write the
    manifest. ``only`` (keys of ``GENERATIVE``) retrains just those and keeps the manifest's other entries;
    ``steps`` overrides every model's training steps (smoke runs). Returns the manifest."""
    torch.set_num_threads(1)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = training_data()
    cases = heldout_cases()
    log(f"{len(TRAIN_SEEDS)} training phantoms, {len(HELDOUT_SEEDS)} held-out")
    if only:  # retrain those, keep every other entry of the existing manifest
        entries = {k: v for k, v in load_manifest(directory)["models"].items() if k not in only}
        keep = set(entries)
    else:
        entries, keep = build_classic(directory, data, seed, steps or CLASSIC_STEPS), set()
    for key, (file, task, name, family, settings, extra, description) in GENERATIVE.items():
        if only and key not in only:
            continue
        if steps:
            settings = dataclasses.replace(settings, steps=steps)
        started = time.perf_counter()
        module, losses = train(key, data, settings, seed)
        export(key, module, directory / file)
        wall = round(time.perf_counter() - started, 1)
        log(f"{key}: {settings.steps} steps in {wall} s, losses {losses}")
        scheduler = generative.diffusion_scheduler(settings) if family == "diffusion" else None
        entries[key] = {
            "file": file,
            "task": task,
            "name": name,
            "family": family,
            "description": description,
            "training": {**settings.as_dict(), "seed": seed},
            "losses": {k: round(v, 5) for k, v in losses.items()},
            "wall_seconds": wall,
            **({"scheduler": scheduler} if scheduler else {}),
            **extra,
        }
    for key, entry in entries.items():
        if key in keep:
            continue
        path = directory / entry["file"]
        entry["sha256"] = sha256_of(path)
        entry["size_bytes"] = path.stat().st_size
        entry["in_channels"] = 1 if entry["task"] == TRANSLATION else 2
        entry["out_channels"] = 1
        entry["heldout"] = measure(path, entry["task"], entry.get("scheduler"), cases)
        log(f"{key}: held-out {entry['heldout']}")
    manifest = {
        "generated_by": "scripts/train_baselines.py",
        "torch": torch.__version__,
        "threads": 1,
        "seed": seed,
        "train_seeds": [TRAIN_SEEDS.start, TRAIN_SEEDS.stop],
        "heldout_seeds": [HELDOUT_SEEDS.start, HELDOUT_SEEDS.stop],
        "image_size": [128, 128],
        "models": entries,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def load_manifest(directory=ARTIFACT_DIR) -> dict:
    return json.loads((Path(directory) / MANIFEST).read_text())
