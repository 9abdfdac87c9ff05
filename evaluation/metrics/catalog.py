"""Every metric the product shows, declared once: name, tier, direction, unit, definition, version and,
for the metrics the evaluation job computes, the function that computes it (as MONAI's metric classes
bundle a metric's settings with its computation).

The leaderboard, the run page and the API read direction and definitions from here; the evaluation
job reads the functions. A metric's version changes whenever its math or settings change (bump it
here, beside the settings); stored results with another version are shown as stale until
re-evaluated. Two signatures, generated first, reference second:

* pixel metrics: ``compute(generated, reference, *, data_range)`` on ``(N, C, *spatial)`` arrays
  returns the ``(N,)`` float64 values (see ``pixel``; MSE, MAE and NMSE ignore ``data_range``);
* feature metrics: ``compute(generated, reference)`` on ``(n_gen, d)`` and ``(n_ref, d)`` feature
  arrays returns ``(value, extra)``: the set-level value and what the result keeps beside it (the
  settings it used, KID's spread over its subsets);
* per-case deep metrics (``PER_CASE_FEATURE_METRICS``: LPIPS), feature-tier metrics of image pairs:
  ``compute(generated, reference, *, window, network)`` on ``(N, C, *spatial)`` arrays returns the
  ``(N,)`` float64 values (see ``lpips``); their per-run mean gets a bootstrap CI like a pixel metric's.

Clinical metrics come from the downstream recipe (``evaluation.segmentation``) and from reader
studies; they have no ``compute`` here. A pure module: the metric library, no Django.
"""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from . import clip_metrics, feature, lpips, pixel
from .extractors import REGISTRY

PIXEL = "pixel"
FEATURE = "feature"
CLINICAL = "clinical"
HIGHER = "higher"
LOWER = "lower"
# Best at a target value, worse the farther from it on either side (a Turing-test AUC: 0.5 = chance).
TARGET = "target"


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: str
    tier: str
    direction: str
    unit: str
    definition: str
    version: str
    compute: Callable | None = None
    target: float | None = None  # the best value, for direction TARGET

    def __post_init__(self):
        if (self.direction == TARGET) != (self.target is not None):
            raise ValueError(f"{self.key}: a target value goes with direction '{TARGET}', and only with it")

    @property
    def higher_is_better(self):
        return self.direction == HIGHER

    @property
    def better_text(self):
        """'higher', 'lower' or 'closest to 0.5', for "… is better"."""
        return f"closest to {self.target:g}" if self.direction == TARGET else self.direction


def _without_range(function):
    """MSE, MAE and NMSE need no intensity range: the pixel signature, with `data_range` unused."""

    @functools.wraps(function)
    def compute(generated, reference, *, data_range=None):
        return function(generated, reference)

    return compute


# The feature tier's settings: part of each metric's definition, so a change here bumps its version.
KID_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000
KID_SEED = 0
PRC_NEIGHBOURS = 3  # k of improved precision and recall; each set needs more than k samples

# Radiomics features left out of the FRD: the coefficient of variation and the quartile
# coefficient of dispersion of LoG responses divide by a mean (or quartile sum) that is
# close to zero for a band-pass filtered image, so they jump by orders of magnitude between
# similar images and, once z-scored, swamp every other feature. They are still computed.
FRD_EXCLUDED_FEATURES = re.compile(r"log_sigma_\d+mm_firstorder_(cov|qcod)$")
FRD_SELECTION_VERSION = "1"  # bump with FRD_EXCLUDED_FEATURES

# Radiomics features are z-scored against the reference set (the FRD authors' normalisation), then
# clipped to ±FRD_ZSCORE_CLIP reference standard deviations before FRD, KID and precision/recall.
# A feature whose reference spread is tiny (the image minimum over a noise-free background: std
# 1.5e-4 on the demo) otherwise puts an output's value at ~10³ standard deviations, which alone
# made the demo's FRD 1.8e6 and KID 1e11 and emptied every precision/recall ball. The reference's
# own values are never clipped while n_ref ≤ 101 (|z| ≤ √(n − 1)); the authors define no floor
# (frd-score v1 only drops columns whose z-score is NaN/inf), so with no value beyond ±10 the FRD
# equals theirs. Bump FRD_STANDARDISATION_VERSION with it.
FRD_ZSCORE_CLIP = 10.0
FRD_STANDARDISATION_VERSION = "2"  # 1: z-score only; 2: z-score clipped to ±FRD_ZSCORE_CLIP

# feature.frechet_distance_from_features, which FID and FRD share.
FRECHET_VERSION = "1"


def _frechet(generated, reference):
    return feature.frechet_distance_from_features(generated, reference), {}


def _kid(generated, reference):
    subset_size = min(KID_MAX_SUBSET_SIZE, len(generated), len(reference))
    mean, std = feature.kid(generated, reference, subsets=KID_SUBSETS, subset_size=subset_size, seed=KID_SEED)
    return float(mean), {"std_over_subsets": float(std), "subsets": KID_SUBSETS, "subset_size": subset_size}


# Precision and recall each make their own k-NN pass over both sets: a small fraction of the
# Fréchet distance's bootstrap (200 distances), for one function per metric.
# Each keeps the distances behind it (the reference balls' median radius, the outputs' median distance
# to their nearest reference), so that a 0 can say why.
def _precision(generated, reference):
    precision, _, details = feature.precision_recall(generated, reference, k=PRC_NEIGHBOURS, details=True)
    return float(precision), {"k": PRC_NEIGHBOURS, **details}


def _recall(generated, reference):
    _, recall, details = feature.precision_recall(generated, reference, k=PRC_NEIGHBOURS, details=True)
    return float(recall), {"k": PRC_NEIGHBOURS, **details}


PIXEL_METRICS = {
    "psnr": MetricInfo(
        "psnr",
        "PSNR",
        PIXEL,
        HIGHER,
        "dB",
        "Peak signal-to-noise ratio, 10·log10(data_range² / MSE); +∞ for an output identical to the reference.",
        version="1",
        compute=pixel.psnr,
    ),
    "ssim": MetricInfo(
        "ssim",
        "SSIM",
        PIXEL,
        HIGHER,
        "",
        "Structural similarity (Wang et al. 2004): Gaussian window σ = 1.5, 11 taps, K1 = 0.01, K2 = 0.03, "
        "borders excluded, float64; equal to scikit-image's gaussian_weights=True, use_sample_covariance=False.",
        version="1",
        compute=pixel.ssim,
    ),
    "ms_ssim": MetricInfo(
        "ms_ssim",
        "MS-SSIM",
        PIXEL,
        HIGHER,
        "",
        "Multi-scale SSIM (Wang et al. 2003) with weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333, "
        "as MONAI computes it.",
        version="1",
        compute=pixel.ms_ssim,
    ),
    "mse": MetricInfo(
        "mse",
        "MSE",
        PIXEL,
        LOWER,
        "intensity²",
        "Mean squared error over voxels.",
        version="1",
        compute=_without_range(pixel.mse),
    ),
    "mae": MetricInfo(
        "mae",
        "MAE",
        PIXEL,
        LOWER,
        "intensity",
        "Mean absolute error over voxels.",
        version="1",
        compute=_without_range(pixel.mae),
    ),
    "nmse": MetricInfo(
        "nmse",
        "NMSE",
        PIXEL,
        LOWER,
        "",
        "Normalised MSE: ‖output − reference‖² / ‖reference‖² per case.",
        version="1",
        compute=_without_range(pixel.nmse),
    ),
}

DEFAULT_PIXEL_METRICS = ("psnr", "ssim", "ms_ssim", "nmse", "mae", "mse")

# The published conventions' pixel metrics (``profiles``: fastMRI, SynthRAD2025), keyed "<profile>:<metric>" so
# that they never mix with ours. They are computed per case by ``profiles.evaluate`` (hence no ``compute``);
# written out here because ``profiles`` builds on this module: tests/evaluation/test_regions_profiles.py checks
# them against ``profiles.PROFILES`` (keys, directions, version, definition_url).
PROFILE_LABELS = {"medgen": "MedGen Eval", "fastmri": "fastMRI", "synthrad2025": "SynthRAD2025"}
PROFILE_URLS = {
    "fastmri": "https://github.com/facebookresearch/fastMRI/blob/91f2df4711adbb6d643df1810f234e4abcf5881b/"
    "fastmri/evaluate.py",
    "synthrad2025": "https://github.com/SynthRAD2025/evaluation/blob/17cac47b6288fcb66c5818c9d50eb9534d613fa2/"
    "image_metrics.py",
}
_PROFILE_ROWS = (
    # profile, metric, label, direction, unit, definition (the profile's version is the metric's)
    ("fastmri", "nmse", "NMSE", LOWER, "", "‖reference − output‖² / ‖reference‖² over the volume."),
    ("fastmri", "psnr", "PSNR", HIGHER, "dB", "10·log10(reference.max()² / MSE) over the volume."),
    ("fastmri", "ssim", "SSIM", HIGHER, "", "scikit-image's default SSIM (7 × 7 uniform window, sample "
     "covariance) per slice with data_range = reference.max() of the volume, averaged over slices."),
    ("synthrad2025", "mae", "MAE", LOWER, "HU", "Mean |reference − output| over the voxels inside the mask."),
    ("synthrad2025", "psnr", "PSNR", HIGHER, "dB", "Both clipped to [−1024, 3071] HU; 10·log10(4095² / MSE) "
     "with the MSE over the voxels inside the mask."),
    ("synthrad2025", "ms_ssim", "MS-SSIM", HIGHER, "", "Masked 3-D MS-SSIM (7-voxel uniform window, five scales) "
     "on images clipped to [−1024, 3071] HU whose outside-mask voxels are set to −1024."),
)  # fmt: skip
PROFILE_VERSIONS = {"fastmri": "1", "synthrad2025": "1"}
PROFILE_METRICS = {
    f"{profile}:{metric}": MetricInfo(
        f"{profile}:{metric}",
        f"{label} ({PROFILE_LABELS[profile]})",
        PIXEL,
        direction,
        unit,
        f"{PROFILE_LABELS[profile]}'s convention: {definition} Defined by {PROFILE_URLS[profile]}",
        version=PROFILE_VERSIONS[profile],
    )
    for profile, metric, label, direction, unit, definition in _PROFILE_ROWS
}
#: The pixel metrics each profile computes, in the order the leaderboard shows them.
PROFILE_KEYS = {"medgen": DEFAULT_PIXEL_METRICS} | {
    profile: tuple(f"{profile}:{metric}" for p, metric, *_ in _PROFILE_ROWS if p == profile) for profile in PROFILE_URLS
}


#: Every pixel metric a task can choose, with per-case values: ours and the published conventions'.
PER_CASE_METRICS = {**PIXEL_METRICS, **PROFILE_METRICS}


def profile_of(key):
    """The profile whose convention a pixel metric follows: "fastmri" for "fastmri:ssim", else "medgen"."""
    prefix, _, rest = key.partition(":")
    return prefix if rest and prefix in PROFILE_URLS else "medgen"


FEATURE_METRICS = {
    "frd": MetricInfo(
        "frd",
        "FRD",
        FEATURE,
        LOWER,
        "",
        "Fréchet Radiomics Distance (Konz et al. 2024): Fréchet distance between the outputs' and the references' "
        "IBSI radiomics features, each feature z-scored by the reference set and clipped to ±10 reference "
        "standard deviations (so that a feature with a tiny reference spread cannot outweigh the others). "
        "Shown as the squared distance d² and, as the authors' v1 code reports it, log(d²).",
        # The Fréchet distance's version, the standardisation's, the feature selection's.
        version=f"{FRECHET_VERSION}.{FRD_STANDARDISATION_VERSION}.s{FRD_SELECTION_VERSION}",
        compute=_frechet,
    ),
    "fid": MetricInfo(
        "fid",
        "FID",
        FEATURE,
        LOWER,
        "",
        "Fréchet Inception Distance (Heusel et al. 2017) on Inception-v3 pool3 features (pt_inception-2015-12-05).",
        version=FRECHET_VERSION,
        compute=_frechet,
    ),
    "kid": MetricInfo(
        "kid",
        "KID",
        FEATURE,
        LOWER,
        "",
        "Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel, "
        "mean over random subsets. On radiomics, of the clipped z-scored features (as FRD).",
        version="2",  # 2: radiomics features clipped to ±FRD_ZSCORE_CLIP
        compute=_kid,
    ),
    "precision": MetricInfo(
        "precision",
        "Precision",
        FEATURE,
        HIGHER,
        "",
        "Improved precision (Kynkäänniemi et al. 2019, k = 3): share of outputs inside the references' manifold "
        "(the union of each reference's ball reaching its 3rd nearest reference). On radiomics, of the clipped "
        "z-scored features (as FRD).",
        version="2",  # 2: radiomics features clipped; the median ball radius and nearest distance kept
        compute=_precision,
    ),
    "recall": MetricInfo(
        "recall",
        "Recall",
        FEATURE,
        HIGHER,
        "",
        "Improved recall (Kynkäänniemi et al. 2019, k = 3): share of references inside the outputs' manifold. "
        "On radiomics, of the clipped z-scored features (as FRD).",
        version="2",  # 2: as precision
        compute=_recall,
    ),
    "lpips": MetricInfo(
        "lpips",
        "LPIPS",
        FEATURE,
        LOWER,
        "",
        "Learned Perceptual Image Patch Similarity (Zhang et al. 2018) v0.1, AlexNet trunk unless "
        "MEDGEN_LPIPS_NET says otherwise (the net is stored with the result); per case, as the lpips package "
        "computes it, on grey images mapped from the task's intensity window to [−1, 1] (clipped) and repeated "
        "to three channels; volumes slice by slice along the first axis, channels and slices averaged.",
        version="1",
        compute=lpips.lpips_distance,
    ),
}
# Feature-tier metrics computed per case (stored in each case's values, as pixel metrics are).
PER_CASE_FEATURE_METRICS = ("lpips",)


# Metrics on CLIP and DINOv2 embeddings (extractors "clip" and "dinov2"; see embedding.py).
def _clip_similarity(generated, reference):
    """Paired: row i of each is case i's output and reference embedding."""
    return clip_metrics.clip_score(generated, reference), {"pairs": int(len(generated))}


def _cmmd(generated, reference):
    return clip_metrics.cmmd(generated, reference), {
        "sigma": clip_metrics.CMMD_SIGMA,
        "scale": clip_metrics.CMMD_SCALE,
    }


EMBEDDING_METRICS = {
    "clip_similarity": MetricInfo(
        "clip_similarity",
        "CLIP similarity",
        FEATURE,
        HIGHER,
        "",
        "Image–image CLIP score: torchmetrics' CLIP score (100 · cosine similarity of CLIP ViT-B/32 embeddings, "
        "mean over pairs, clamped at 0) between each case's output and its reference; bootstrap CI over cases. "
        "Needs paired references (the task's own cases).",
        version="1",
        compute=_clip_similarity,
    ),
    "cmmd": MetricInfo(
        "cmmd",
        "CMMD",
        FEATURE,
        LOWER,
        "",
        "CLIP maximum mean discrepancy (Jayasumana et al. 2024), as google-research/cmmd computes it: biased MMD² "
        "with a Gaussian RBF kernel (σ = 10) on L2-normalised CLIP image embeddings, × 1000. On ViT-B/32 "
        "embeddings (the paper uses ViT-L/14 at 336 px), so values are not comparable with published CMMD.",
        version="1",
        compute=_cmmd,
    ),
    "fd_clip": MetricInfo(
        "fd_clip",
        "FD_CLIP",
        FEATURE,
        LOWER,
        "",
        "Fréchet distance between the outputs' and the references' CLIP ViT-B/32 image embeddings (as FID, "
        "another network).",
        version=FRECHET_VERSION,
        compute=_frechet,
    ),
    "fd_dinov2": MetricInfo(
        "fd_dinov2",
        "FD_DINOv2",
        FEATURE,
        LOWER,
        "",
        "Fréchet distance on DINOv2 ViT-B/14 CLS features (Stein et al. 2023, dgm-eval's representation and "
        "preprocessing: 224×224 bicubic, ImageNet normalisation).",
        version=FRECHET_VERSION,
        compute=_frechet,
    ),
}
# The metrics each of these extractors gives (a task listing one gets its extractor run).
EMBEDDING_EXTRACTOR_METRICS = {"clip": ("fd_clip", "cmmd", "clip_similarity"), "dinov2": ("fd_dinov2",)}
PAIRED_METRICS = frozenset({"clip_similarity"})
FEATURE_METRICS.update(EMBEDDING_METRICS)

# The clinical tier's downstream task (evaluation/segmentation.py, evaluation/downstream/): a
# segmentation network trained on a run's outputs, tested on the real images of held-out cases.
CLINICAL_METRICS = {
    "downstream_dice": MetricInfo(
        "downstream_dice",
        "Downstream Dice",
        CLINICAL,
        HIGHER,
        "",
        "Train on synthetic, test on real: a MONAI U-Net trained on the run's outputs of the training cases "
        "(with their real label masks) segments the real reference images of the held-out test cases; "
        "foreground Dice (MONAI DiceMetric), mean over test cases and seeds, CI resampling both.",
        version="1",
    ),
    "downstream_hd95": MetricInfo(
        "downstream_hd95",
        "Downstream HD95",
        CLINICAL,
        LOWER,
        "mm",
        "95th-percentile Hausdorff distance (MONAI HausdorffDistanceMetric) of the same segmentations, in mm; "
        "an empty segmentation of a labelled case scores the image diagonal. Mean over test cases and seeds.",
        version="1",
    ),
    "utility_ratio": MetricInfo(
        "utility_ratio",
        "Utility ratio",
        CLINICAL,
        HIGHER,
        "",
        "Downstream Dice of the run divided by the real→real Dice (the same network, split and seeds trained "
        "on the real images); 1 means the synthetic images teach the task as well as real ones.",
        version="1",
    ),
}
# The clinical tier's reader studies (readerstudy/): published per-run results of blinded studies.
# The extractor field names the study ("study-7", or "study-7:realism" for one Likert scale).
READER_METRICS = {
    "reader_auc": MetricInfo(
        "reader_auc",
        "Reader AUC",
        CLINICAL,
        TARGET,
        "",
        "Visual Turing test: readers' AUC for telling the run's images from real ones, from their real/synthetic "
        "calls with confidence (10-point scale); mean over readers, CI by Obuchowski–Rockette with Hillis df, "
        "computed on the logit scale and mapped back so that it stays inside [0, 1]. 0.5 = chance: "
        "indistinguishable from real; runs rank by closeness to 0.5 (0.3 and 0.7 are equally far).",
        version="2",  # 2: logit-scale CI (was symmetric, could pass 1)
        target=0.5,
    ),
    "reader_mos": MetricInfo(
        "reader_mos",
        "Reader MOS",
        CLINICAL,
        HIGHER,
        "1–5",
        "Likert study: mean opinion score on one anchored 1–5 scale, with a CI from a bootstrap over readers "
        "and cases.",
        version="1",
    ),
    "reader_preference": MetricInfo(
        "reader_preference",
        "Reader preference",
        CLINICAL,
        HIGHER,
        "",
        "Pairwise study: Bradley–Terry probability that readers prefer the run's output to that of an average "
        "run of the study (0.5 = average), with a bootstrap CI over readers and cases.",
        version="1",
    ),
    "reader_marks": MetricInfo(
        "reader_marks",
        "Hallucination marks",
        CLINICAL,
        LOWER,
        "per image",
        "Hallucination marking: structures readers marked as not belonging, per image, mean over readers and "
        "images, with a bootstrap CI.",
        version="1",
    ),
}


METRICS = {**PIXEL_METRICS, **PROFILE_METRICS, **FEATURE_METRICS}
METRICS.update(CLINICAL_METRICS)
METRICS.update(READER_METRICS)

# The Fréchet distance is called FRD on radiomics features and FID on Inception features.
FRECHET_BY_EXTRACTOR = {"radiomics": "frd", "inception_v3": "fid", "clip": "fd_clip", "dinov2": "fd_dinov2"}


def get(key):
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"Unknown metric '{key}'. Known: {', '.join(METRICS)}") from None


def metric_version(key, extractor=""):
    """The version stored with a result: the metric's, plus the extractor's for feature metrics
    ("1+radiomics-1.3"); KeyError for an unknown metric or extractor."""
    info = get(key)
    if info.tier != FEATURE or not extractor:
        return info.version
    return f"{info.version}+{extractor}-{REGISTRY[extractor].version}"


def label(key, extractor=""):
    """'KID (radiomics)' for feature metrics that exist for several extractors."""
    info = get(key)
    if extractor and key not in ("frd", "fid") and key not in READER_METRICS and key not in EMBEDDING_METRICS:
        return f"{info.label} ({extractor.replace('_', '-')})"
    return info.label
