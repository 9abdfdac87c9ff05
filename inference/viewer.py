"""The image viewer: array endpoints (JSON header + raw float32 bytes) and the case / compare pages.

Endpoints (GET; same visibility as the PNG previews, 404 for what the user may not see; DRF views through
`core.endpoints`, so an API token reaches them and the OpenAPI schema describes them):

    /api/arrays/case-images/<pk>/                  header of a case image (input, reference, label)
    /api/arrays/outputs/<pk>/                      header of a run output (one sample)
    /api/arrays/outputs/<pk>/difference/           header of ‖output − reference‖ (channel norm)
    /api/arrays/case-results/<pk>/uncertainty/     header of a stochastic run's per-voxel SD map
    …/data/?slice=k                                slice k (H × W), little-endian float32
    …/data/                                        the whole array (H × W or D × H × W); 413 with a
                                                   JSON message when its float32 bytes (the header's
                                                   `whole_bytes`) exceed MEDGEN_VIEWER_MAX_ARRAY_BYTES

Apps above add sources of their own (`extensions.add_array_source`: the evaluation's SD maps)
with their own URL patterns over `array_header` / `array_data`, and the pages that mount
`static/viewer/viewer.js` (Cornerstone3D, see frontend/) over these endpoints: the evaluation's run
case and compare pages (they show metrics) and its probe viewer, from `viewport`, `image_viewports`,
`output_viewports` and `label_overlay`.
"""

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import path, reverse

from core import policy
from core.endpoints import endpoint
from core.responses import json_errors

from . import api_schema, arrays, extensions, selectors
from .models import CaseImage, CaseOutput, ImageRole

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


def spacing_of(case):
    image = case.image(ImageRole.REFERENCE) or case.images.order_by("role", "index").first()
    return image.spacing if image else None


def case_image_source(request, pk):
    image = policy.get_visible(request.user, CaseImage, pk=pk)
    kind = "label" if image.role in (ImageRole.LABEL, ImageRole.MASK) else "image"
    return ArraySource(open_field(image.array), image.spacing, kind)


def output_source(request, pk):
    output = policy.get_visible(request.user, CaseOutput, pk=pk)
    return ArraySource(open_field(output.array), spacing_of(output.case))


def difference_source(request, pk):
    output = policy.get_visible(request.user, CaseOutput, pk=pk)
    reference = selectors.case_image(request.user, output.case, ImageRole.REFERENCE)
    if reference is None:  # none, or a hidden test set's: the difference would give it away
        raise Http404("This case has no reference image you may see.")
    array, ref = open_field(output.array), open_field(reference.array)
    if array.shape != ref.shape:
        raise Http404(f"The output's shape {tuple(array.shape)} differs from the reference's {tuple(ref.shape)}.")
    return ArraySource(array, reference.spacing, "difference", reference=ref)


@endpoint(["GET"], tags=["arrays"], **api_schema.ARRAY_HEADER)
@json_errors
def array_header(request, source, pk):
    data = extensions.array_source(source)(request, pk).header()
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


@endpoint(["GET"], tags=["arrays"], **api_schema.ARRAY_DATA)
@json_errors
def array_data(request, source, pk):
    array_source = extensions.array_source(source)(request, pk)
    response = plane_response(array_source.array, request.GET.get("slice"), lambda _, i: array_source.plane(i))
    response["Cache-Control"] = CACHE_CONTROL
    return response


def array_routes(route, source):
    """The two URL patterns of an array source: its header at `route` ("array-<source>") and its data at
    `route` + "data/" ("array-<source>-data"); `route` ends with a slash and holds `<int:pk>`."""
    return [
        path(route, array_header, {"source": source}, name=f"array-{source}"),
        path(f"{route}data/", array_data, {"source": source}, name=f"array-{source}-data"),
    ]


# --- Pages ----------------------------------------------------------------------------


def viewport(label, source, pk, group, leader=False):
    """One viewport of `mountViewers`: viewports of a `group` share (and synchronise) their window,
    starting from the leader's default (the reference's, so outputs are seen in its intensities)."""
    spec = {"label": label, "headerUrl": reverse(f"array-{source}", args=[pk]), "voiGroup": group}
    if leader:
        spec["windowLeader"] = True
    return spec


def image_viewports(case, user, *, input_label="Input"):
    """Input(s) of a case, each with its own window, and its reference image (or None) as `user` may see them."""
    images = list(selectors.visible_images(user).filter(case=case))
    inputs = [im for im in images if im.role == ImageRole.INPUT]
    reference = next((im for im in images if im.role == ImageRole.REFERENCE), None)
    viewports = []
    for im in inputs:
        label = input_label + (f" {im.index}" if len(inputs) > 1 else "")
        # An input is another contrast (or k-space, shown as log magnitude): its window is its own.
        viewports.append(viewport(label, "case-image", im.pk, f"input-{im.index}"))
    return viewports, reference


def pick_sample(outputs, wanted):
    """The output of sample `wanted` (a `?sample=` value) among a case's `outputs` (by sample), else the first;
    None when there are none."""
    try:
        number = int(wanted)
    except (TypeError, ValueError):
        number = None
    return next((o for o in outputs if o.sample == number), outputs[0] if outputs else None)


def output_viewports(case, user, outputs, output, *, input_label="Input", reference_label="Reference"):
    """A run's case as `user` may see it: the input(s), the shown `output` (one of `outputs`, labelled with its
    sample when there are several), the reference (the window leader) and |output − reference| where their shapes
    agree. Returns (viewports, the reference image or None)."""
    viewports, reference = image_viewports(case, user, input_label=input_label)
    if output is not None:
        label = "Output" + (f" (sample {output.sample})" if len(outputs) > 1 else "")
        viewports.append(viewport(label, "output", output.pk, "image"))
    if reference is not None:
        viewports.append(viewport(reference_label, "case-image", reference.pk, "image", leader=True))
        if output is not None and list(output.shape) == list(reference.shape):
            label = f"|Output − {reference_label[0].lower()}{reference_label[1:]}|"
            viewports.append(viewport(label, "difference", output.pk, "difference"))
    return viewports, reference


def label_overlay(case, user):
    """The viewer's `overlay` option for a case's label (else mask) image `user` may see, or None: the
    label drawn in colour over the images of its shape instead of a grey tile of its own."""
    images = selectors.visible_images(user).filter(case=case, role__in=(ImageRole.LABEL, ImageRole.MASK))
    image = images.order_by("role", "index").first()
    if image is None:
        return None
    return {"headerUrl": reverse("array-case-image", args=[image.pk]), "label": image.get_role_display()}
