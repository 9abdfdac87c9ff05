"""What a task may choose from the evaluation app: its metrics and primary metric from the catalogue, the
profile its pixel tier scores by, and the region it scores inside. Registered as an inference task check
(`inference.extensions.add_task_check`), so `Task.clean` (the admin, every task form) and the API refuse an
unknown name with the known ones, and a combination that cannot be scored before any run is evaluated.
"""

from inference.models import CaseImage, EvaluationRegion, ImageRole

from .metrics import catalog, profiles

#: Regions that need a mask, and the profiles that cannot take one (they score every voxel by definition).
MASKED_REGIONS = (EvaluationRegion.CASE_MASK, EvaluationRegion.REFERENCE_THRESHOLD)
WHOLE_IMAGE_PROFILES = {"fastmri": "fastMRI's evaluate.py scores every voxel of the volume"}


def selectable_metrics():
    """Every metric a task may list: per-case pixel metrics (ours and the profiles') and feature metrics."""
    return {**catalog.PER_CASE_METRICS, **catalog.FEATURE_METRICS}


def pixel_metrics_of(profile):
    """The pixel metrics a profile computes, in board order (the default when a task lists none)."""
    return list(catalog.PROFILE_KEYS[profile])


def check_task_settings(settings_of_task):
    """{field: message} for what the task cannot be evaluated with; see the module docstring."""
    errors = {}
    profile = settings_of_task.get("profile") or profiles.DEFAULT_PROFILE
    if profile not in profiles.PROFILES:
        errors["profile"] = f"Unknown profile '{profile}'. Known: {', '.join(profiles.PROFILES)}."
        profile = None
    known = selectable_metrics()
    metrics = settings_of_task.get("metrics") or []
    unknown = [key for key in metrics if key not in known]
    if unknown:
        errors["metrics"] = f"Unknown metric(s) {', '.join(unknown)}. Known: {', '.join(known)}."
    elif profile:
        foreign = [key for key in metrics if key in catalog.PER_CASE_METRICS and catalog.profile_of(key) != profile]
        if foreign:
            errors["metrics"] = _foreign(foreign, profile)
    primary = settings_of_task.get("primary_metric") or ""
    if primary and primary not in catalog.METRICS:
        errors["primary_metric"] = f"Unknown metric '{primary}'. Known: {', '.join(catalog.METRICS)}."
    elif primary in catalog.PER_CASE_METRICS and profile and catalog.profile_of(primary) != profile:
        errors["primary_metric"] = _foreign([primary], profile)
    elif primary in catalog.PER_CASE_METRICS and metrics and primary not in metrics:
        errors["primary_metric"] = f"'{primary}' is not among the task's metrics ({', '.join(metrics)})."
    errors.update(_check_region(settings_of_task, profile))
    if profile and "profile" not in errors:
        problem = _profile_against_dataset(profile, settings_of_task.get("dataset"))
        if problem:
            errors["profile"] = problem
    return errors


def _foreign(keys, profile):
    label = catalog.PROFILE_LABELS[profile]
    return (
        f"{', '.join(keys)}: not of the task's profile {label} ({profile}), whose pixel metrics are "
        f"{', '.join(pixel_metrics_of(profile))}. Choose those, or another profile."
    )


def _check_region(settings_of_task, profile):
    region = settings_of_task.get("region") or EvaluationRegion.WHOLE
    threshold = settings_of_task.get("region_threshold")
    if region not in EvaluationRegion.values:
        return {"region": f"Unknown region '{region}'. Known: {', '.join(EvaluationRegion.values)}."}
    if region in MASKED_REGIONS and profile in WHOLE_IMAGE_PROFILES:
        return {
            "region": f"The {catalog.PROFILE_LABELS[profile]} profile takes no region: "
            f"{WHOLE_IMAGE_PROFILES[profile]}. Choose region '{EvaluationRegion.WHOLE}' or another profile."
        }
    if region == EvaluationRegion.REFERENCE_THRESHOLD and threshold is None:
        return {"region_threshold": "A region computed from the reference needs its threshold (reference units)."}
    if region != EvaluationRegion.REFERENCE_THRESHOLD and threshold is not None:
        return {
            "region_threshold": f"The threshold is used only with region '{EvaluationRegion.REFERENCE_THRESHOLD}'; "
            "leave it empty."
        }
    return {}


def _profile_against_dataset(profile, dataset):
    """Why the dataset's references cannot be scored under `profile` (SynthRAD2025 is single-channel 3-D only)."""
    if profile != "synthrad2025" or dataset is None:
        return ""
    shapes = CaseImage.objects.filter(case__dataset=dataset, role=ImageRole.REFERENCE).values_list("shape", flat=True)
    shapes = {tuple(shape) for shape in shapes[:1000]}
    planar = sorted(shape for shape in shapes if len(shape) != 4 or shape[0] != 1)
    if planar:
        return (
            f"The SynthRAD2025 profile scores single-channel 3-D volumes (1, D, H, W); the test dataset's "
            f"references include shape {list(planar[0])}. Choose another profile."
        )
    return ""


def region_name(task):
    """The task's region as stored with its pixel results and named on the board, e.g. "whole image",
    "each case's ROI/body mask", "reference > -500 (largest component, holes filled)"."""
    if task.region == EvaluationRegion.CASE_MASK:
        return "each case's ROI/body mask"
    if task.region == EvaluationRegion.REFERENCE_THRESHOLD:
        return f"reference > {task.region_threshold:g} (largest component, holes filled)"
    return WHOLE_IMAGE


#: The region of a pixel result stored before regions existed (blank): they were all computed on the whole image.
WHOLE_IMAGE = "whole image"


def computed_in(result_region):
    return result_region or WHOLE_IMAGE
