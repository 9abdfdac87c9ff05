"""Feature extractors for the feature tier, behind a small registry.

Each extractor declares an :class:`ExtractorSpec`: its name, input size, how images are
normalised for it, and the weights file it needs (the setting that names the file, the
standard file name and its sha256). Nothing is ever downloaded: weights come from a local
file the admin configures (``MEDGEN_INCEPTION_WEIGHTS`` for Inception-v3). Without one,
:func:`availability` says why the extractor is unavailable and :func:`get_extractor` raises
:class:`ExtractorUnavailable` with a message meant for the page.

Loading weights (``get_extractor``): the file is read once into memory, its sha256 is
compared with the declared one (unless the caller passes ``verify_sha256=False``, e.g. tests
with generated weights), and only then is it parsed with
``torch.load(..., map_location="cpu", weights_only=True)``, PyTorch's restricted loader that
accepts tensors and plain containers and never runs code from the file. The result must be a
mapping of parameter names to tensors that loads into the network with ``strict=True``.

Extractors:

``radiomics`` (default, no weights)
    IBSI radiomics features from ``radiomics.radiomics_features`` on native intensities
    (``data_range`` is not used: the radiomics module discretises grey levels itself).
    2D images (N, C, H, W) are passed as (N, H, W) per channel; 3D volumes (N, C, D, H, W) are
    passed whole as (N, D, H, W), which the radiomics module handles as volumes. ``spacing``
    (mm) is passed through; None leaves the radiomics default (1 mm). With several channels
    the per-channel features are concatenated (names prefixed ``c0_``, ``c1_`` …).

``inception_v3`` (FID; needs the ``pt_inception-2015-12-05`` weights file)
    Intensities mapped linearly from ``data_range`` = (lo, hi) to 0..255 with clipping and
    rounded to 8 bits (as an image saved to 8-bit PNG and fed to torch-fidelity or the
    original TensorFlow FID); grey replicated to RGB; then torch-fidelity's preprocessing
    (TensorFlow 1.x bilinear resize to 299×299, (x − 128) / 128) and the 2048-d pool3
    features. Three channels are taken as RGB; any other channel count C > 1 gives each
    channel its own grey image and concatenates the features (2048·C). 3D volumes
    (N, C, D, H, W) are cut into axial slices along D, each slice goes through the network,
    and a volume's feature vector is the mean of its slices' features, so each row is still
    one case (which case-resampling bootstraps need).

``clip`` (CLIP similarity, CMMD, FD_CLIP; needs OpenAI's ``ViT-B-32.pt``) and ``dinov2``
(FD_DINOv2; needs ``dinov2_vitb14_pretrain.pth``)
    512-d CLIP ViT-B/32 image embeddings and 768-d DINOv2 ViT-B/14 CLS features; intensity
    mapping, channels, volumes and preprocessing in ``embedding`` (its docstring). The CLIP file is
    a TorchScript archive whose tensors are read without running it (``clip``); the DINOv2 file is
    a state dict for the safe loader. OpenAI pins the CLIP file's sha256 (in its download URL);
    facebookresearch/dinov2 publishes none, so the DINOv2 file is loaded only once the admin pins
    its sha256 (``MEDGEN_DINOV2_WEIGHTS_SHA256``). Neither reference publishes a file size.

Every ``extract`` returns an (N, d) float64 array, one row per image or volume.
"""

import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The standard FID Inception weights; inception.py holds the same constants (a test checks),
# repeated here so importing the registry does not import torch.
INCEPTION_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_WEIGHTS_BYTES = 95_628_359
INCEPTION_WEIGHTS_SETTING = "MEDGEN_INCEPTION_WEIGHTS"

# CLIP ViT-B/32 and DINOv2 ViT-B/14; clip.py and dinov2.py hold the same constants (a test checks).
CLIP_WEIGHTS_FILENAME = "ViT-B-32.pt"
CLIP_WEIGHTS_SHA256 = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
CLIP_WEIGHTS_SETTING = "MEDGEN_CLIP_WEIGHTS"
DINOV2_WEIGHTS_FILENAME = "dinov2_vitb14_pretrain.pth"
DINOV2_WEIGHTS_SETTING = "MEDGEN_DINOV2_WEIGHTS"
DINOV2_WEIGHTS_SHA256_SETTING = "MEDGEN_DINOV2_WEIGHTS_SHA256"

# Refuse to read a weights file larger than this when its exact size is not checked.
MAX_WEIGHTS_BYTES = 1 << 30


@dataclass(frozen=True)
class ExtractorSpec:
    name: str
    label: str
    version: str
    input_size: tuple[int, ...] | None  # None = native size
    normalisation: str  # how images are mapped to the extractor's input, for people
    weights_setting: str | None  # the Django setting / environment variable naming the weights file
    weights_filename: str | None  # the standard file name
    weights_sha256: str | None  # sha256 of the standard file
    feature_dim: int | None
    description: str
    weights_bytes: int | None = None  # size of the standard file, checked without reading it
    # Where no reference publishes a sha256: the setting in which the admin pins the file's hash.
    weights_sha256_setting: str | None = None

    @property
    def needs_weights(self):
        return self.weights_setting is not None


class ExtractorUnavailable(Exception):
    """The extractor cannot run here; ``str(exc)`` is shown to users."""


class FeatureExtractor:
    """Base class: ``extract`` maps a batch of images or volumes to an (N, d) float64 array."""

    spec: ExtractorSpec
    feature_names: list[str] | None = None  # names of the last extraction's columns, where known

    @property
    def name(self):
        return self.spec.name

    @property
    def version(self):
        return self.spec.version

    def extract(self, images, *, data_range: tuple[float, float], spacing=None) -> np.ndarray:
        """images: (N, C, H, W) or (N, C, D, H, W) float; returns (N, d) float64."""
        raise NotImplementedError


def _as_images(images):
    """A finite float64 (N, C, H, W) or (N, C, D, H, W) array with N, C ≥ 1."""
    if hasattr(images, "detach"):  # a torch tensor
        images = images.detach().cpu().numpy()
    array = np.asarray(images, dtype=np.float64)
    if array.ndim not in (4, 5):
        raise ValueError(f"expected images (N, C, H, W) or volumes (N, C, D, H, W), got shape {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"no images to extract features from (shape {array.shape})")
    if not np.isfinite(array).all():
        raise ValueError("images contain NaN or infinite values")
    return array


def _as_range(data_range):
    try:
        lo, hi = (float(v) for v in data_range)
    except (TypeError, ValueError):
        raise ValueError(f"data_range must be a pair (lo, hi), got {data_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"data_range must be finite with hi > lo, got ({lo}, {hi})")
    return lo, hi


class RadiomicsExtractor(FeatureExtractor):
    """IBSI radiomics features (see the module docstring for shapes and channels)."""

    def __init__(self, spec):
        self.spec = spec

    def extract(self, images, *, data_range=None, spacing=None):
        from . import radiomics  # lazy: loaded on first use, its absence reported by get_extractor

        array = _as_images(images)
        n, channels = array.shape[:2]
        blocks, names = [], []
        for c in range(channels):
            # (N, H, W) for images, (N, D, H, W) for volumes.
            features, channel_names = radiomics.radiomics_features(array[:, c], spacing=spacing)
            features = np.asarray(features, dtype=np.float64)
            if features.ndim != 2 or features.shape[0] != n:
                raise ValueError(f"radiomics_features returned shape {features.shape} for {n} images")
            blocks.append(features)
            names.extend(channel_names if channels == 1 else [f"c{c}_{name}" for name in channel_names])
        self.feature_names = names
        return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]


class InceptionV3Extractor(FeatureExtractor):
    """2048-d pool3 features of the FID Inception-v3 (see the module docstring)."""

    def __init__(self, spec, model, device, *, batch_size=16):
        self.spec = spec
        self.model = model
        self.device = device
        self.batch_size = batch_size

    @staticmethod
    def to_uint8(images, data_range):
        """Linear map of ``data_range`` to 0..255, clipped and rounded to 8 bits."""
        lo, hi = _as_range(data_range)
        scaled = np.clip((_as_images(images) - lo) / (hi - lo), 0.0, 1.0) * 255.0
        return np.rint(scaled).astype(np.uint8)

    def _pool3(self, rgb):
        """(M, 3, H, W) uint8 → (M, 2048) float64, in batches."""
        import torch  # lazy: the registry is read without torch

        out = []
        # No TF32 on GPUs: cuDNN's default reduced-precision convolutions move the features by ~1e-3 of
        # their scale (measured on an H100), which would make FID depend on the worker's hardware.
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            for start in range(0, rgb.shape[0], self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(rgb[start : start + self.batch_size]))
                out.append(self.model(batch.to(self.device)).cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float64, copy=False)

    def extract(self, images, *, data_range, spacing=None):
        pixels = self.to_uint8(images, data_range)
        n, channels = pixels.shape[:2]
        volumes = pixels.ndim == 5
        depth = pixels.shape[2] if volumes else 1
        if volumes:  # axial slices: (N, C, D, H, W) → (N·D, C, H, W)
            pixels = pixels.transpose(0, 2, 1, 3, 4).reshape(n * depth, channels, *pixels.shape[3:])
        groups = [[0, 1, 2]] if channels == 3 else [[c, c, c] for c in range(channels)]
        features = np.concatenate([self._pool3(pixels[:, group]) for group in groups], axis=1)
        if volumes:  # mean over each volume's slices
            features = features.reshape(n, depth, -1).mean(axis=1)
        self.feature_names = [
            f"pool3_{i}" if len(groups) == 1 else f"c{g}_pool3_{i}" for g in range(len(groups)) for i in range(2048)
        ]
        return features


# --- registry ---------------------------------------------------------------------------

_INCEPTION_SPEC = ExtractorSpec(
    name="inception_v3",
    label="Inception-v3 (FID)",
    version="1",
    input_size=(299, 299),
    normalisation=(
        "Intensities mapped linearly from the data range to 0–255 with clipping and rounded to 8 bits; "
        "grey replicated to RGB; resized to 299×299 with TensorFlow 1.x bilinear interpolation "
        "(as torch-fidelity); (x − 128) / 128. Volumes: axial slices, features averaged per volume."
    ),
    weights_setting=INCEPTION_WEIGHTS_SETTING,
    weights_filename=INCEPTION_WEIGHTS_FILENAME,
    weights_sha256=INCEPTION_WEIGHTS_SHA256,
    feature_dim=2048,
    description=(
        "2048-d pool3 features of the TensorFlow FID Inception-v3 (2015-12-05 weights, the network of "
        "pytorch-fid and torch-fidelity), trained on natural images."
    ),
    weights_bytes=INCEPTION_WEIGHTS_BYTES,
)

_CLIP_SPEC = ExtractorSpec(
    name="clip",
    label="CLIP ViT-B/32",
    version="1",
    input_size=(224, 224),
    normalisation=(
        "Intensities mapped linearly from the data range to 0–255 with clipping and rounded to 8 bits; grey "
        "replicated to RGB; OpenAI's CLIP preprocessing (shorter side to 224 with PIL bicubic, centre crop "
        "224×224, CLIP mean/std). Volumes: every axial slice, embeddings averaged per volume."
    ),
    weights_setting=CLIP_WEIGHTS_SETTING,
    weights_filename=CLIP_WEIGHTS_FILENAME,
    weights_sha256=CLIP_WEIGHTS_SHA256,
    feature_dim=512,
    description=(
        "512-d image embeddings of OpenAI's CLIP ViT-B/32 (the TorchScript ViT-B-32.pt of openai/CLIP, read as "
        "tensors), trained on natural image–text pairs."
    ),
)

_DINOV2_SPEC = ExtractorSpec(
    name="dinov2",
    label="DINOv2 ViT-B/14",
    version="1",
    input_size=(224, 224),
    normalisation=(
        "Intensities mapped linearly from the data range to 0–255 with clipping and rounded to 8 bits; grey "
        "replicated to RGB; dgm-eval's DINOv2 preprocessing (PIL bicubic resize to 224×224, ImageNet mean/std). "
        "Volumes: every axial slice, features averaged per volume."
    ),
    weights_setting=DINOV2_WEIGHTS_SETTING,
    weights_filename=DINOV2_WEIGHTS_FILENAME,
    weights_sha256=None,  # facebookresearch/dinov2 publishes none (its hub entry point loads it unchecked)
    feature_dim=768,
    description=(
        "768-d CLS features of DINOv2 ViT-B/14 (dinov2_vitb14_pretrain.pth, self-supervised on LVD-142M), "
        "the representation of Stein et al. 2023 (dgm-eval)."
    ),
    weights_sha256_setting=DINOV2_WEIGHTS_SHA256_SETTING,
)

_RADIOMICS_WRAPPER_VERSION = "1"


def _radiomics_spec():
    """The radiomics spec; its version includes radiomics.FEATURE_VERSION when the module loads."""
    try:
        from .radiomics import FEATURE_VERSION, feature_names
    except ImportError:
        version, dim, cacheable = f"{_RADIOMICS_WRAPPER_VERSION}.unknown", None, False
    else:
        version, dim, cacheable = f"{_RADIOMICS_WRAPPER_VERSION}.{FEATURE_VERSION}", len(feature_names()), True
    spec = ExtractorSpec(
        name="radiomics",
        label="Radiomics (IBSI)",
        version=version,
        input_size=None,
        normalisation=(
            "Native intensities at native size (no rescaling; the radiomics module discretises grey levels "
            "itself). Volumes are analysed in 3D; several channels give concatenated per-channel features."
        ),
        weights_setting=None,
        weights_filename=None,
        weights_sha256=None,
        feature_dim=dim,  # per channel
        description="IBSI radiomics features (first order, GLCM, GLRLM; original and LoG images), as used by FRD.",
    )
    return spec, cacheable


class _Registry(Mapping):
    """name → ExtractorSpec; the radiomics spec is built on first use (its module loads lazily)."""

    def __init__(self, builders):
        self._builders = builders
        self._specs = {}

    def __getitem__(self, name):
        if name not in self._specs:
            spec, cacheable = self._builders[name]()
            if not cacheable:
                return spec
            self._specs[name] = spec
        return self._specs[name]

    def __iter__(self):
        return iter(self._builders)

    def __len__(self):
        return len(self._builders)

    def __repr__(self):
        return f"REGISTRY({', '.join(self._builders)})"


REGISTRY: Mapping[str, ExtractorSpec] = _Registry(
    {
        "radiomics": _radiomics_spec,
        "inception_v3": lambda: (_INCEPTION_SPEC, True),
        "clip": lambda: (_CLIP_SPEC, True),
        "dinov2": lambda: (_DINOV2_SPEC, True),
    }
)
DEFAULT_EXTRACTOR = "radiomics"


def _spec(name):
    if name not in REGISTRY:
        raise ExtractorUnavailable(f"Unknown feature extractor '{name}'. Known: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def configured_weights_path(name, settings=None, environ=None):
    """The weights path configured for ``name``: ``settings.<weights_setting>``, else the environment variable."""
    spec = _spec(name)
    if not spec.needs_weights:
        return None
    value = _setting(spec.weights_setting, settings, environ)
    return os.fspath(value) if value else None


def configured_weights_sha256(name, settings=None, environ=None):
    """The sha256 the admin pinned for ``name``'s file (where no reference publishes one), else None."""
    spec = _spec(name)
    if not spec.weights_sha256_setting:
        return None
    value = _setting(spec.weights_sha256_setting, settings, environ)
    return value.strip().lower() if value else None


def _setting(setting, settings, environ):
    """``settings.<setting>`` when set, else the environment variable of that name."""
    value = getattr(settings, setting, None) if settings is not None else None
    return value or (os.environ if environ is None else environ).get(setting)


def _unpinned_message(spec):
    return (
        f"{spec.label}: the reference code publishes no sha256 for {spec.weights_filename}, so the file must be "
        f"pinned here: set {spec.weights_sha256_setting} to the sha256 of the file that {spec.weights_setting} "
        f"names. Nothing is downloaded."
    )


def _weights_file(spec, weights_path, verify_sha256):
    """Checks that need no reading: configured, present, a readable regular file of plausible size."""
    standard = f"{spec.weights_filename} (sha256 {spec.weights_sha256[:8]}…)" if spec.weights_sha256 else None
    if not weights_path:
        raise ExtractorUnavailable(
            f"{spec.label} needs a local weights file and none is configured: set {spec.weights_setting} "
            f"to the path of {standard or spec.weights_filename}. Nothing is downloaded."
        )
    path = Path(os.fspath(weights_path)).expanduser()
    where = f"{path} (from {spec.weights_setting})"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ExtractorUnavailable(f"{spec.label} weights file not found: {where}.") from None
    except OSError as exc:
        raise ExtractorUnavailable(f"{spec.label} weights file cannot be read: {where}: {exc.strerror}.") from None
    if not path.is_file():
        raise ExtractorUnavailable(f"{spec.label} weights path is not a regular file: {where}.")
    if info.st_size == 0:
        raise ExtractorUnavailable(f"{spec.label} weights file is empty: {where}.")
    if verify_sha256 and spec.weights_bytes and info.st_size != spec.weights_bytes:
        raise ExtractorUnavailable(
            f"{spec.label} weights file {where} is {info.st_size:,} bytes; the standard {standard} is "
            f"{spec.weights_bytes:,} bytes."
        )
    if info.st_size > MAX_WEIGHTS_BYTES:
        raise ExtractorUnavailable(f"{spec.label} weights file {where} is too large ({info.st_size:,} bytes).")
    if not os.access(path, os.R_OK):
        raise ExtractorUnavailable(f"{spec.label} weights file is not readable by this process: {where}.")
    return path, info.st_size


def availability(name, weights_path=None, *, verify_sha256=True, weights_sha256=None):
    """(available, reason for the page), without loading weights (the sha256 is checked at load).

    ``weights_sha256``: the admin's pin (:func:`configured_weights_sha256`) for files without a published one.
    """
    try:
        spec = _spec(name)
        if name == "radiomics":
            try:
                from . import radiomics  # noqa: F401
            except ImportError as exc:
                return False, f"{spec.label} is not installed: {exc}."
            return True, f"{spec.label}: built in, no weights needed."
        path, size = _weights_file(spec, weights_path, verify_sha256)
        if verify_sha256 and spec.weights_sha256_setting and not (spec.weights_sha256 or weights_sha256):
            raise ExtractorUnavailable(_unpinned_message(spec))
    except ExtractorUnavailable as exc:
        return False, str(exc)
    return True, f"{spec.label}: weights file {path} ({size / 1e6:.1f} MB); its sha256 is checked when it is loaded."


def _load_state_dict(spec, path, verify_sha256):
    """Read the file once, check its sha256, then parse it with the safe loader."""
    import torch  # lazy: the registry is read without torch

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExtractorUnavailable(f"{spec.label} weights file cannot be read: {path}: {exc.strerror}.") from None
    if verify_sha256 and spec.weights_sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.weights_sha256:
            raise ExtractorUnavailable(
                f"{spec.label} weights file {path} has sha256 {digest}, but the standard {spec.weights_filename} "
                f"has {spec.weights_sha256}: wrong or damaged file."
            )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # any parse failure means: not a plain weights file
        raise ExtractorUnavailable(
            f"{spec.label} weights file {path} is not a PyTorch state dict of tensors that the safe loader "
            f"accepts ({type(exc).__name__}); files holding other Python objects are never unpickled."
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ExtractorUnavailable(
            f"{spec.label} weights file {path} does not hold a state dict (parameter names → tensors); "
            f"it holds a {type(state).__name__}."
        )
    return state


def _key_problems(expected, state):
    """Human-readable differences between a model's state dict and a loaded one."""

    def some(keys):
        keys = sorted(keys)
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    optional = {k for k in expected if k.endswith("num_batches_tracked")}  # BatchNorm fills these in
    missing = set(expected) - set(state) - optional
    unexpected = set(state) - set(expected)
    shapes = {k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)}
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} ({some(missing)})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} ({some(unexpected)})")
    if shapes:
        problems.append(f"wrong shape for {len(shapes)} ({some(shapes)})")
    return "; ".join(problems)


def _device(device):
    import torch  # lazy: the registry is read without torch

    try:
        device = torch.device(device or "cpu")
    except (RuntimeError, TypeError) as exc:
        raise ExtractorUnavailable(f"Unknown device {device!r}: {exc}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ExtractorUnavailable(f"Device {device} requested but CUDA is not available.")
    return device


def _make_inception(spec, weights_path, device, verify_sha256):
    from .inception import FIDInceptionV3  # lazy: the registry is read without torch

    path, _ = _weights_file(spec, weights_path, verify_sha256)
    device = _device(device)
    state = _load_state_dict(spec, path, verify_sha256)
    model = FIDInceptionV3()
    problems = _key_problems(model.state_dict(), state)
    if problems:
        raise ExtractorUnavailable(
            f"{spec.label} weights file {path} is not the {spec.weights_filename} network's state dict: {problems}."
        )
    # BatchNorm's step counter is unused in eval and absent from files saved before PyTorch 0.4.1.
    state = dict(state)
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:400]
        raise ExtractorUnavailable(f"{spec.label} weights file {path} does not load: {detail}") from None
    model.requires_grad_(False)
    model.eval()
    return InceptionV3Extractor(spec, model.to(device), device)


def get_extractor(name, *, weights_path=None, device=None, verify_sha256=True, weights_sha256=None) -> FeatureExtractor:
    """A ready extractor, or ExtractorUnavailable with a message for the page.

    ``weights_path``: the local weights file (see :func:`configured_weights_path`); never fetched.
    ``verify_sha256=False`` skips the sha256 and exact-size checks (for generated test weights).
    ``weights_sha256``: the admin's pin where the spec declares none (:func:`configured_weights_sha256`).
    """
    spec = _spec(name)
    if name == "radiomics":
        try:
            from . import radiomics  # noqa: F401
        except ImportError as exc:
            raise ExtractorUnavailable(f"{spec.label} is not installed: {exc}.") from None
        return RadiomicsExtractor(spec)
    if name in ("clip", "dinov2"):
        from . import embedding  # lazy: the registry is read without torch

        if name == "clip":
            return embedding.make_clip(spec, weights_path, device, verify_sha256)
        return embedding.make_dinov2(spec, weights_path, device, verify_sha256, weights_sha256)
    return _make_inception(spec, weights_path, device, verify_sha256)
