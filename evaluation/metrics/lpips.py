"""LPIPS (Zhang et al. 2018) per case on medical images, from local weights files only.

A paired metric, generated first, reference second, lower is better (0 for identical images).
The network is ``lpips_networks.LPIPSNetwork``: the lpips package's ``LPIPS(net, version="0.1")``
(its default net is ``"alex"``) in plain torch. Two files make it, both declared below with the
name, size and sha256 that torchvision and the lpips wheel pin, checked before
``torch.load(weights_only=True)``; nothing is ever downloaded:

* the **backbone**, torchvision's ImageNet file (``alexnet-owt-7be5be79.pth`` for the default
  net), path in ``MEDGEN_LPIPS_WEIGHTS``;
* the **heads** (the linear layers calibrated on human judgements, BSD-2), the lpips wheel's
  ``lpips/weights/v0.1/<net>.pth``: read from the installed ``lpips`` distribution (located through
  its metadata, without importing the package, which imports torchvision), or from the path in
  ``MEDGEN_LPIPS_HEADS``.

``MEDGEN_LPIPS_NET`` chooses ``alex`` (default), ``vgg`` or ``squeeze``.

Medical images to the network's input (:func:`to_network_input`):

* intensities are mapped linearly from the task's window (lo, hi) (hi − lo is its data_range) to
  [−1, 1], clipped (as ``lpips.im2tensor`` maps 0..255 to [−1, 1]);
* a grey channel is repeated to the three input channels; several channels (C > 1) are each
  scored as their own grey image and their distances averaged;
* a 3-D volume (C, D, H, W) is scored slice by slice along its first spatial axis D and the
  slices' distances averaged, so each case still has one value.

:func:`lpips_distance` takes (N, C, H, W) or (N, C, D, H, W) arrays and returns (N,) float64.
This module imports torch only when a network is built or run.
"""

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .extractors import ExtractorUnavailable, _device, _load_state_dict, _weights_file

NET_SETTING = "MEDGEN_LPIPS_NET"
BACKBONE_SETTING = "MEDGEN_LPIPS_WEIGHTS"
HEADS_SETTING = "MEDGEN_LPIPS_HEADS"
DEFAULT_NET = "alex"
LPIPS_DISTRIBUTION = "lpips"
LPIPS_VERSION = "0.1.4"  # the wheel whose heads are pinned below (requirements-refs.txt)
HEADS_VERSION = "0.1"


@dataclass(frozen=True)
class WeightsFile:
    """One weights file: the attributes `extractors`' file checks read (label, setting, name, sha256, bytes)."""

    label: str
    weights_setting: str
    weights_filename: str
    weights_sha256: str
    weights_bytes: int
    source: str  # where the standard file comes from, for people


@dataclass(frozen=True)
class LpipsNet:
    name: str
    label: str
    backbone: WeightsFile
    heads: WeightsFile
    min_size: int  # the smallest H and W the backbone's last tap accepts


# Sizes and sha256s: torchvision names each file with the first 8 hex digits of its sha256 (checked by
# torch.hub) and lists its size in MiB (AlexNet_Weights.IMAGENET1K_V1 "_file_size": 233.087 …); the
# full digests and byte counts are those published for the same files (FIELD-NOTES: "LPIPS weights").
# The heads are the lpips 0.1.4 wheel's files, measured from the installed distribution.
NETS = {
    "alex": LpipsNet(
        "alex",
        "LPIPS (AlexNet)",
        WeightsFile(
            "LPIPS AlexNet backbone",
            BACKBONE_SETTING,
            "alexnet-owt-7be5be79.pth",
            "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
            244_408_911,
            "torchvision AlexNet_Weights.IMAGENET1K_V1",
        ),
        WeightsFile(
            "LPIPS AlexNet heads",
            HEADS_SETTING,
            "alex.pth",
            "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            6_009,
            "lpips 0.1.4 wheel, lpips/weights/v0.1/alex.pth",
        ),
        min_size=31,
    ),
    "vgg": LpipsNet(
        "vgg",
        "LPIPS (VGG16)",
        WeightsFile(
            "LPIPS VGG16 backbone",
            BACKBONE_SETTING,
            "vgg16-397923af.pth",
            "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
            553_433_881,
            "torchvision VGG16_Weights.IMAGENET1K_V1",
        ),
        WeightsFile(
            "LPIPS VGG16 heads",
            HEADS_SETTING,
            "vgg.pth",
            "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            7_289,
            "lpips 0.1.4 wheel, lpips/weights/v0.1/vgg.pth",
        ),
        min_size=16,
    ),
    "squeeze": LpipsNet(
        "squeeze",
        "LPIPS (SqueezeNet 1.1)",
        WeightsFile(
            "LPIPS SqueezeNet 1.1 backbone",
            BACKBONE_SETTING,
            "squeezenet1_1-b8a52dc0.pth",
            "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b",
            4_958_839,
            "torchvision SqueezeNet1_1_Weights.IMAGENET1K_V1",
        ),
        WeightsFile(
            "LPIPS SqueezeNet 1.1 heads",
            HEADS_SETTING,
            "squeeze.pth",
            "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
            10_811,
            "lpips 0.1.4 wheel, lpips/weights/v0.1/squeeze.pth",
        ),
        min_size=17,
    ),
}


def _net(name):
    if name not in NETS:
        raise ExtractorUnavailable(f"{NET_SETTING}={name!r} is not an LPIPS network. Known: {', '.join(NETS)}.")
    return NETS[name]


def _setting(name, settings, environ):
    value = getattr(settings, name, None) if settings is not None else None
    if not value:
        value = (os.environ if environ is None else environ).get(name)
    return os.fspath(value) if value else None


def installed_heads_path(net):
    """The heads file of the installed lpips distribution (found from its metadata, nothing imported), or None."""
    try:
        distribution = importlib.metadata.distribution(LPIPS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(distribution.locate_file(f"lpips/weights/v{HEADS_VERSION}/{_net(net).heads.weights_filename}"))
    return path if path.is_file() else None


@dataclass(frozen=True)
class Configuration:
    net: str
    backbone_path: str | None
    heads_path: str | None
    heads_source: str  # "MEDGEN_LPIPS_HEADS", "the installed lpips distribution" or ""


def configuration(settings=None, environ=None):
    """The network, backbone file and heads file configured (settings first, then the environment)."""
    net = _setting(NET_SETTING, settings, environ) or DEFAULT_NET
    backbone = _setting(BACKBONE_SETTING, settings, environ)
    heads = _setting(HEADS_SETTING, settings, environ)
    if heads:
        return Configuration(net, backbone, heads, HEADS_SETTING)
    installed = installed_heads_path(net) if net in NETS else None
    if installed:
        return Configuration(net, backbone, str(installed), f"the installed {LPIPS_DISTRIBUTION} distribution")
    return Configuration(net, backbone, None, "")


def _check_files(config, verify_sha256):
    spec = _net(config.net)
    if not config.heads_path:
        raise ExtractorUnavailable(
            f"{spec.heads.label} not found: install {LPIPS_DISTRIBUTION}=={LPIPS_VERSION} (pip install --no-deps) "
            f"or set {HEADS_SETTING} to the path of its lpips/weights/v{HEADS_VERSION}/{spec.heads.weights_filename} "
            f"(sha256 {spec.heads.weights_sha256[:8]}…). Nothing is downloaded."
        )
    backbone = _weights_file(spec.backbone, config.backbone_path, verify_sha256)[0]
    heads = _weights_file(spec.heads, config.heads_path, verify_sha256)[0]
    return spec, backbone, heads


def availability(config, *, verify_sha256=True):
    """(available, reason for the page), without reading the files (their sha256 is checked at load)."""
    try:
        spec, backbone, heads = _check_files(config, verify_sha256)
    except ExtractorUnavailable as exc:
        return False, str(exc)
    return True, f"{spec.label}: backbone {backbone}, heads {heads} (from {config.heads_source})."


def _exact_keys(label, path, state, expected):
    """Refuse a state dict whose keys or shapes differ from `expected` ({key: shape})."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k]))
    problems = [
        f"{what} {len(keys)} ({', '.join(keys[:3])}{' …' if len(keys) > 3 else ''})"
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape for", shapes))
        if keys
    ]
    if problems:
        raise ExtractorUnavailable(f"{label} file {path} is not the standard file's state dict: {'; '.join(problems)}.")


def load(config, *, device=None, verify_sha256=True):
    """The ready LPIPS network (eval mode, no gradients), or ExtractorUnavailable with a message for the page.

    The backbone file must hold torchvision's ``features.*`` tensors; its ``classifier.*`` tensors, which the
    standard file holds too, must have torchvision's shapes where present and are not used.
    ``verify_sha256=False`` skips the sha256 and exact-size checks (for generated test weights).
    """
    from .lpips_networks import BACKBONES, LPIPSNetwork  # lazy: torch

    spec, backbone_path, heads_path = _check_files(config, verify_sha256)
    device = _device(device)
    network = LPIPSNetwork(spec.name)
    backbone = _load_state_dict(spec.backbone, backbone_path, verify_sha256)
    features = {f"backbone.{k}": v for k, v in network.backbone.state_dict().items()}
    expected = {k.removeprefix("backbone."): tuple(v.shape) for k, v in features.items()}
    classifier = BACKBONES[spec.name][3]
    present = {k: v for k, v in classifier.items() if k in backbone}
    _exact_keys(spec.backbone.label, backbone_path, backbone, {**expected, **present})
    heads = _load_state_dict(spec.heads, heads_path, verify_sha256)
    _exact_keys(spec.heads.label, heads_path, heads, LPIPSNetwork.head_keys(spec.name))
    network.backbone.load_state_dict({k: backbone[k] for k in expected}, strict=True)
    network.load_heads(heads)
    network.requires_grad_(False)
    network.eval()
    return network.to(device)


def _window(window):
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"window must be a pair (lo, hi), got {window!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"window must be finite with hi > lo, got ({lo}, {hi})")
    return lo, hi


def to_network_input(images, window):
    """(N, C, H, W) or (N, C, D, H, W) intensities → (N·C·D, H, W) float32 grey slices in [−1, 1] (D = 1 for 2-D).

    Slices are ordered case, then channel, then depth, so ``.reshape(N, C·D)`` groups them by case.
    """
    array = np.asarray(images)
    if array.ndim not in (4, 5) or 0 in array.shape:
        raise ValueError(f"expected images (N, C, H, W) or volumes (N, C, D, H, W), got shape {array.shape}")
    lo, hi = _window(window)
    grey = array.reshape(-1, *array.shape[-2:]).astype(np.float64)
    scaled = np.clip((grey - lo) / (hi - lo), 0.0, 1.0) * 2.0 - 1.0
    return scaled.astype(np.float32)


def lpips_distance(generated, reference, *, window, network, batch_size=16):
    """LPIPS per case of (N, C, H, W) or (N, C, D, H, W) arrays → (N,) float64.

    ``window`` = (lo, hi) in the images' intensity units; ``network`` from :func:`load`. A case's value
    is the mean over its channels and slices. ValueError for mismatched shapes, NaN/Inf, or images
    smaller than the backbone accepts.
    """
    import torch  # lazy

    generated, reference = np.asarray(generated), np.asarray(reference)
    if generated.shape != reference.shape:
        raise ValueError(f"generated {generated.shape} and reference {reference.shape} differ in shape")
    if not (np.isfinite(generated).all() and np.isfinite(reference).all()):
        raise ValueError("images contain NaN or infinite values")
    height, width = generated.shape[-2:]
    minimum = NETS[network.net].min_size if network.net in NETS else 1
    if min(height, width) < minimum:
        raise ValueError(
            f"LPIPS ({network.net}) needs images of at least {minimum} × {minimum} px, got {height} × {width}"
        )
    x0, x1 = to_network_input(generated, window), to_network_input(reference, window)
    device = next(network.parameters()).device
    out = []
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for start in range(0, len(x0), batch_size):
            a = torch.from_numpy(x0[start : start + batch_size])[:, None].expand(-1, 3, -1, -1)
            b = torch.from_numpy(x1[start : start + batch_size])[:, None].expand(-1, 3, -1, -1)
            out.append(network(a.to(device), b.to(device)).double().cpu().numpy())
    per_slice = np.concatenate(out)
    return per_slice.reshape(generated.shape[0], -1).mean(axis=1)
