"""The image viewer: array endpoints (JSON header + raw float32 bytes) and the case / compare pages.

Endpoints (GET; same visibility as the PNG previews, 404 for what the user may not see):

    /api/arrays/case-images/<pk>/                  header of a case image (input, reference, label)
    /api/arrays/outputs/<pk>/                      header of a run output (one sample)
    /api/arrays/outputs/<pk>/difference/           header of ‖output − reference‖ (channel norm)
    /api/arrays/case-results/<pk>/uncertainty/     header of a stochastic run's per-voxel SD map
    …/data/?slice=k                                slice k (H × W), little-endian float32
    …/data/                                        the whole array (H × W or D × H × W); 413 with a
                                                   JSON message when its float32 bytes (the header's
                                                   `whole_bytes`) exceed MEDGEN_VIEWER_MAX_ARRAY_BYTES

The pages mount `static/viewer/viewer.js` (Cornerstone3D, see frontend/) over these endpoints.
"""

import functools

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import access, arrays
from .models import CaseImage, ImageRole

#: Arrays are replaced in place when a run resumes or a run is re-evaluated: keep browser copies short-lived.
CACHE_CONTROL = "private, max-age=300"


def open_field(field):
    """A FileField's `.npy`: memory-mapped when the storage has a local path, else read into memory."""
    try:
        path = field.storage.path(field.name)
    except NotImplementedError:  # S3 and other remote storages
        with field.storage.open(field.name, "rb") as handle:
            return arrays.open_npy(data=handle.read())
    return arrays.open_npy(path=path)


class ArraySource:
    """What an endpoint serves: a header and per-slice planes of one (derived) array."""

    def __init__(self, array, spacing, kind="image", reference=None):
        self.array = array
        self.spacing = spacing
        self.kind = kind
        self.reference = reference  # for kind "difference"

    def header(self):
        sample = None
        if self.kind == "difference":
            sample = arrays.difference_sample(self.array, self.reference)
        return arrays.header(self.array, self.spacing, kind=self.kind, sample=sample)

    def plane(self, index):
        if self.kind == "difference":
            return arrays.difference_plane(self.array, self.reference, index)
        return arrays.display_plane(self.array, index, kind=self.kind)


def _spacing(case):
    image = case.image(ImageRole.REFERENCE) or case.images.order_by("role", "index").first()
    return image.spacing if image else None


def case_image_source(request, pk):
    image = get_object_or_404(CaseImage.objects.filter(case__in=access.visible_cases(request.user)), pk=pk)
    kind = "label" if image.role == ImageRole.LABEL else "image"
    return ArraySource(open_field(image.array), image.spacing, kind)


def output_source(request, pk):
    output = get_object_or_404(access.visible_outputs(request.user).select_related("case"), pk=pk)
    return ArraySource(open_field(output.array), _spacing(output.case))


def difference_source(request, pk):
    output = get_object_or_404(access.visible_outputs(request.user).select_related("case"), pk=pk)
    reference = output.case.image(ImageRole.REFERENCE)
    if reference is None:
        raise Http404("This case has no reference image.")
    array, ref = open_field(output.array), open_field(reference.array)
    if array.shape != ref.shape:
        raise Http404(f"The output's shape {tuple(array.shape)} differs from the reference's {tuple(ref.shape)}.")
    return ArraySource(array, reference.spacing, "difference", reference=ref)


def uncertainty_source(request, pk):
    from evaluation.models import CaseResult

    results = CaseResult.objects.filter(run__in=access.visible_runs(request.user)).exclude(uncertainty_map="")
    result = get_object_or_404(results.select_related("case"), pk=pk)
    return ArraySource(open_field(result.uncertainty_map), _spacing(result.case), "uncertainty")


SOURCES = {
    "case-image": case_image_source,
    "output": output_source,
    "difference": difference_source,
    "uncertainty": uncertainty_source,
}


def _json_errors(view):
    """JSON bodies for 400 and 404, as the rest of the API answers."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except arrays.TooLarge as exc:
            return JsonResponse({"detail": str(exc)}, status=413)
        except arrays.BadRequest as exc:
            return JsonResponse({"detail": str(exc)}, status=400)
        except Http404 as exc:
            message = str(exc) if exc.args and "matches the given query" not in str(exc) else "Not found."
            return JsonResponse({"detail": message}, status=404)

    return wrapper


@require_GET
@_json_errors
def array_header(request, source, pk):
    data = SOURCES[source](request, pk).header()
    data["data_url"] = reverse(f"array-{source}-data", args=[pk])
    response = JsonResponse(data)
    response["Cache-Control"] = CACHE_CONTROL
    return response


def plane_response(array, slice_param, plane_of=arrays.display_plane):
    """Slice `?slice=k` of `array`'s shown plane, or the whole of it (refused past
    MEDGEN_VIEWER_MAX_ARRAY_BYTES, from the shape alone), as little-endian float32 bytes.

    `plane_of(array, index)` makes the shown values (a difference map computes them)."""
    index = arrays.parse_slice(slice_param, arrays.slice_count(array))
    if index is None:
        arrays.check_whole_size(array, settings.MEDGEN_VIEWER_MAX_ARRAY_BYTES)
    plane = plane_of(array, index)
    response = HttpResponse(arrays.to_bytes(plane), content_type="application/octet-stream")
    response["X-Array-Shape"] = ",".join(str(s) for s in plane.shape)
    response["X-Array-Dtype"] = "<f4"
    return response


@require_GET
@_json_errors
def array_data(request, source, pk):
    array_source = SOURCES[source](request, pk)
    response = plane_response(array_source.array, request.GET.get("slice"), lambda _, i: array_source.plane(i))
    response["Cache-Control"] = CACHE_CONTROL
    return response


# --- Pages ----------------------------------------------------------------------------


def _viewport(label, source, pk, group, leader=False):
    """One viewport of `mountViewers`: viewports of a `group` share (and synchronise) their window,
    starting from the leader's default (the reference's, so outputs are seen in its intensities)."""
    spec = {"label": label, "headerUrl": reverse(f"array-{source}", args=[pk]), "voiGroup": group}
    if leader:
        spec["windowLeader"] = True
    return spec


def _image_viewports(case):
    """Input(s) and reference of a case; the reference (if any) is returned separately too."""
    images = list(case.images.all())
    inputs = [im for im in images if im.role == ImageRole.INPUT]
    reference = next((im for im in images if im.role == ImageRole.REFERENCE), None)
    viewports = []
    for im in inputs:
        label = "Input" + (f" {im.index}" if len(inputs) > 1 else "")
        # An input is another contrast (or k-space, shown as log magnitude): its window is its own.
        viewports.append(_viewport(label, "case-image", im.pk, f"input-{im.index}"))
    return viewports, reference


def run_case(request, run_pk, case_pk):
    """Input, output (one sample), reference, |output − reference| and, for stochastic runs, the SD map."""
    from evaluation.metrics import catalog
    from evaluation.models import CaseResult

    run = get_object_or_404(access.visible_runs(request.user).select_related("task", "model"), pk=run_pk)
    case = get_object_or_404(access.visible_cases(request.user).filter(dataset=run.task.dataset), pk=case_pk)
    outputs = list(run.outputs.filter(case=case).order_by("sample"))
    try:
        sample = int(request.GET.get("sample", outputs[0].sample if outputs else 0))
    except ValueError:
        sample = 0
    output = next((o for o in outputs if o.sample == sample), outputs[0] if outputs else None)

    viewports, reference = _image_viewports(case)
    if output is not None:
        viewports.append(_viewport("Output" + (f" (sample {output.sample})" if len(outputs) > 1 else ""),
                                   "output", output.pk, "image"))  # fmt: skip
    if reference is not None:
        viewports.append(_viewport("Reference", "case-image", reference.pk, "image", leader=True))
        if output is not None and list(output.shape) == list(reference.shape):
            viewports.append(_viewport("|Output − reference|", "difference", output.pk, "difference"))
    result = CaseResult.objects.filter(run=run, case=case).first()
    if result is not None and result.uncertainty_map:
        viewports.append(_viewport(f"SD over {result.samples} samples", "uncertainty", result.pk, "uncertainty"))

    metrics = []
    if result is not None:
        for key in result.values:
            try:
                info = catalog.get(key)
            except KeyError:
                continue
            metrics.append({"info": info, "value": result.value(key)})

    case_ids = list(run.outputs.values_list("case_id", flat=True).distinct().order_by("case__case_id"))
    position = case_ids.index(case.pk) if case.pk in case_ids else None
    neighbours = {}
    if position is not None:
        if position > 0:
            neighbours["previous"] = case_ids[position - 1]
        if position + 1 < len(case_ids):
            neighbours["next"] = case_ids[position + 1]
    other_runs = _runs_with_output(request.user, case).exclude(pk=run.pk)
    return render(
        request,
        "inference/case_view.html",
        {
            "run": run,
            "case": case,
            "outputs": outputs,
            "output": output,
            "result": result,
            "metrics": metrics,
            "viewer_config": {"viewports": viewports, "sync": True, "frameOfReferenceUID": f"case-{case.pk}"},
            "neighbours": neighbours,
            "compare_with": other_runs.first(),
        },
    )


def _runs_with_output(user, case):
    return (
        access.visible_runs(user)
        .filter(task__dataset=case.dataset, outputs__case=case)
        .select_related("model")
        .distinct()
        .order_by("-created_at")
    )


def case_compare(request, case_pk):
    """Reference, run A's and run B's outputs, and both difference maps, synchronised."""
    case = get_object_or_404(access.visible_cases(request.user).select_related("dataset"), pk=case_pk)
    runs = list(_runs_with_output(request.user, case))
    by_pk = {run.pk: run for run in runs}

    def pick(name, default):
        try:
            return by_pk.get(int(request.GET.get(name, "")), default)
        except ValueError:
            return default

    run_a = pick("a", runs[0] if runs else None)
    run_b = pick("b", next((r for r in runs if r is not run_a), None))
    viewports = []
    reference = case.image(ImageRole.REFERENCE)
    if reference is not None:
        viewports.append(_viewport("Reference", "case-image", reference.pk, "image", leader=True))
    for letter, run in (("A", run_a), ("B", run_b)):
        if run is None:
            continue
        output = run.outputs.filter(case=case).order_by("sample").first()
        viewports.append(_viewport(f"{letter}: {run}", "output", output.pk, "image"))
    for letter, run in (("A", run_a), ("B", run_b)):
        if run is None or reference is None:
            continue
        output = run.outputs.filter(case=case).order_by("sample").first()
        if list(output.shape) == list(reference.shape):
            viewports.append(_viewport(f"|{letter} − reference|", "difference", output.pk, "difference"))
    return render(
        request,
        "inference/case_compare.html",
        {
            "case": case,
            "runs": runs,
            "run_a": run_a,
            "run_b": run_b,
            "viewer_config": {"viewports": viewports, "sync": True, "frameOfReferenceUID": f"case-{case.pk}"},
        },
    )
