"""The CLIP and DINOv2 feature extractors: loading their weights files and embedding images.

Medical images are single-channel with an arbitrary intensity range. Both extractors map them
the same way before each model's own preprocessing:

1. intensities mapped linearly from ``data_range`` = (lo, hi) to [0, 1] with clipping, then to
   0..255 rounded to 8 bits (as an image saved to 8-bit PNG and read by the reference pipelines:
   OpenAI's ``clip`` preprocess, dgm-eval and cmmd all read 8-bit files);
2. grey replicated to three channels (RGB); three channels are taken as RGB; any other count
   C > 1 gives each channel its own grey image and concatenates the features (d · C);
3. the model's preprocessing (``clip.preprocess``: shorter side to 224, centre crop, CLIP
   mean/std; ``dinov2.preprocess``: 224 × 224, ImageNet mean/std), PIL bicubic resizing;
4. 3-D volumes (N, C, D, H, W): every axial slice along D is embedded and a volume's feature is
   the mean of its slices' features, so each row is one case (as the Inception extractor does).

Weights: CLIP from OpenAI's TorchScript ``ViT-B-32.pt``, whose tensors are read without running
the archive (``clip.read_torchscript_tensors``); DINOv2 from ``dinov2_vitb14_pretrain.pth`` with
``torch.load(weights_only=True)`` (``extractors._load_state_dict``). The file's sha256 is checked
before either is parsed.
"""

import dataclasses
import hashlib

import numpy as np
import torch

from . import clip, dinov2
from .extractors import (
    ExtractorUnavailable,
    FeatureExtractor,
    _as_images,
    _as_range,
    _device,
    _key_problems,
    _load_state_dict,
    _unpinned_message,
    _weights_file,
)


def to_uint8(images, data_range):
    """Linear map of ``data_range`` to 0..255, clipped and rounded to 8 bits."""
    lo, hi = _as_range(data_range)
    scaled = np.clip((_as_images(images) - lo) / (hi - lo), 0.0, 1.0) * 255.0
    return np.rint(scaled).astype(np.uint8)


class EmbeddingExtractor(FeatureExtractor):
    """Per-image embeddings of a ViT (see the module docstring for the intensity mapping)."""

    def __init__(self, spec, model, device, preprocess, *, batch_size=16):
        self.spec = spec
        self.model = model
        self.device = device
        self.preprocess = preprocess
        self.batch_size = batch_size

    def _embed(self, grey):
        """(M, H, W) uint8 → (M, d) float64, in batches."""
        out = []
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            for start in range(0, grey.shape[0], self.batch_size):
                batch = self.preprocess(grey[start : start + self.batch_size])
                out.append(self.model(batch.to(self.device)).float().cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float64)

    def extract(self, images, *, data_range, spacing=None):
        pixels = to_uint8(images, data_range)
        n, channels = pixels.shape[:2]
        volumes = pixels.ndim == 5
        depth = pixels.shape[2] if volumes else 1
        if volumes:  # axial slices: (N, C, D, H, W) → (N·D, C, H, W)
            pixels = pixels.transpose(0, 2, 1, 3, 4).reshape(n * depth, channels, *pixels.shape[3:])
        if channels == 3:  # RGB: the models see the three channels as they are
            blocks = [self._embed_rgb(pixels)]
        else:
            blocks = [self._embed(pixels[:, c]) for c in range(channels)]
        features = np.concatenate(blocks, axis=1)
        if volumes:
            features = features.reshape(n, depth, -1).mean(axis=1)
        dim = blocks[0].shape[1]
        prefix = self.spec.name
        self.feature_names = [
            f"{prefix}_{i}" if len(blocks) == 1 else f"c{c}_{prefix}_{i}"
            for c in range(len(blocks))
            for i in range(dim)
        ]
        return features

    def _embed_rgb(self, rgb):
        """(M, 3, H, W) uint8: each channel preprocessed as grey, then stacked back as RGB."""
        out = []
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            for start in range(0, rgb.shape[0], self.batch_size):
                chunk = rgb[start : start + self.batch_size]
                per_channel = [self.preprocess(chunk[:, c])[:, c] for c in range(3)]
                batch = torch.stack(per_channel, dim=1)
                out.append(self.model(batch.to(self.device)).float().cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float64)


def _check_sha256(spec, path, data, expected):
    if expected is None:
        return
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ExtractorUnavailable(
            f"{spec.label} weights file {path} has sha256 {digest}, but the pinned {spec.weights_filename} "
            f"has {expected}: wrong or damaged file."
        )


def _load_into(spec, path, model, state):
    problems = _key_problems(model.state_dict(), state)
    if problems:
        raise ExtractorUnavailable(
            f"{spec.label} weights file {path} is not the {spec.weights_filename} network's weights: {problems}."
        )
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:400]
        raise ExtractorUnavailable(f"{spec.label} weights file {path} does not load: {detail}") from None
    model.requires_grad_(False)
    model.eval()
    return model


def make_clip(spec, weights_path, device, verify_sha256):
    """The CLIP ViT image encoder from OpenAI's TorchScript file, read as tensors (never executed)."""
    path, _ = _weights_file(spec, weights_path, verify_sha256)
    device = _device(device)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExtractorUnavailable(f"{spec.label} weights file cannot be read: {path}: {exc.strerror}.") from None
    _check_sha256(spec, path, data, spec.weights_sha256 if verify_sha256 else None)
    try:
        tensors = clip.read_torchscript_tensors(data)
    except clip.TorchScriptArchiveError as exc:
        raise ExtractorUnavailable(
            f"{spec.label} weights file {path} is not OpenAI's TorchScript CLIP archive: {exc}."
        ) from None
    visual = {k.removeprefix("visual."): v for k, v in tensors.items() if k.startswith("visual.")}
    try:
        config = clip.CLIPVisionTransformer.config_from_state_dict(visual, prefix="")
    except ValueError as exc:
        raise ExtractorUnavailable(f"{spec.label} weights file {path}: {exc}.") from None
    model = _load_into(spec, path, clip.CLIPVisionTransformer(**config), visual)
    return EmbeddingExtractor(spec, model.to(device), device, clip.preprocess)


def make_dinov2(spec, weights_path, device, verify_sha256, weights_sha256):
    """DINOv2 ViT-B/14 from its .pth state dict (the safe loader), sha256 as pinned by the admin."""
    path, _ = _weights_file(spec, weights_path, verify_sha256)
    device = _device(device)
    expected = spec.weights_sha256 or weights_sha256
    if verify_sha256 and not expected:
        raise ExtractorUnavailable(_unpinned_message(spec))
    pinned = dataclasses.replace(spec, weights_sha256=expected if verify_sha256 else None)
    state = _load_state_dict(pinned, path, verify_sha256)
    try:
        config = dinov2.DinoVisionTransformer.config_from_state_dict(state)
    except ValueError as exc:
        raise ExtractorUnavailable(f"{spec.label} weights file {path}: {exc}.") from None
    model = _load_into(spec, path, dinov2.DinoVisionTransformer(**config), state)
    return EmbeddingExtractor(spec, model.to(device), device, dinov2.preprocess)
