"""Pages: tasks, datasets and cases, models, runs. Staff forms call the same services as the API."""

import io

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import access
from .models import ImageRole, ModelStatus, Normalisation, RunStatus
from .permissions import user_is_staff
from .preview import render_png
from .services.artifacts import ModelUploadError, register_upload
from .services.runs import RunError, cancel_run, create_run
from .services.submissions import create_submission


def home(request):
    tasks = access.visible_tasks(request.user).select_related("dataset")
    rows = []
    for task in tasks:
        runs = task.runs.all()
        rows.append(
            {
                "task": task,
                "cases": task.dataset.cases.count(),
                "models": task.models.count(),
                "runs": runs.count(),
                "succeeded": runs.filter(status=RunStatus.SUCCEEDED).count(),
            }
        )
    return render(request, "inference/home.html", {"rows": rows})


def task_detail(request, slug):
    task = get_object_or_404(access.visible_tasks(request.user).select_related("dataset"), slug=slug)
    return render(
        request,
        "inference/task_detail.html",
        {
            "task": task,
            "models": task.models.all(),
            "runs": task.runs.select_related("model"),
            "case_count": task.dataset.cases.count(),
            "submission_form": SubmissionForm() if user_is_staff(request.user) else None,
        },
    )


def dataset_detail(request, pk):
    dataset = get_object_or_404(access.visible_datasets(request.user), pk=pk)
    cases = dataset.cases.prefetch_related("images")
    page = Paginator(cases, 50).get_page(request.GET.get("page"))
    return render(request, "inference/dataset_detail.html", {"dataset": dataset, "page": page})


def case_detail(request, pk):
    case = get_object_or_404(access.visible_cases(request.user).select_related("dataset"), pk=pk)
    outputs = access.visible_outputs(request.user).filter(case=case).select_related("run", "run__model")
    return render(
        request,
        "inference/case_detail.html",
        {"case": case, "images": case.images.all(), "outputs": outputs.order_by("run_id", "sample")},
    )


def case_image_png(request, pk, role, index):
    case = get_object_or_404(access.visible_cases(request.user), pk=pk)
    if role not in ImageRole.values:
        raise Http404
    image = get_object_or_404(case.images, role=role, index=index)
    return png_response(image.load(), label=role == ImageRole.LABEL)


def output_png(request, pk, output_pk):
    output = get_object_or_404(access.visible_outputs(request.user), run_id=pk, pk=output_pk)
    return png_response(output.load())


def png_response(array, label=False):
    buffer = io.BytesIO()
    render_png(array, label=label).save(buffer, format="PNG")
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def model_list(request):
    models = access.visible_models(request.user).select_related("task")
    return render(request, "inference/model_list.html", {"models": models})


def model_detail(request, pk):
    model = get_object_or_404(access.visible_models(request.user).select_related("task"), pk=pk)
    return render(
        request,
        "inference/model_detail.html",
        {"model": model, "runs": model.runs.all(), "can_run": model.status != ModelStatus.INVALID},
    )


class ModelUploadForm(forms.Form):
    name = forms.CharField(max_length=200)
    task = forms.ModelChoiceField(queryset=None, to_field_name="slug")
    file = forms.FileField(help_text="TorchScript (.pt, torch.jit.save) or ONNX (.onnx). Pickles are refused.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    in_channels = forms.IntegerField(min_value=1, max_value=64, initial=1)
    out_channels = forms.IntegerField(min_value=1, max_value=64, initial=1)
    spatial_shape = forms.CharField(initial="128, 128", help_text="H, W or D, H, W; 'any' for a free axis.")
    normalisation = forms.ChoiceField(choices=Normalisation.choices, initial=Normalisation.NONE)
    stochastic = forms.BooleanField(required=False)
    samples_per_case = forms.IntegerField(min_value=1, max_value=64, initial=1)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task"].queryset = access.visible_tasks(user)

    def clean_spatial_shape(self):
        parts = [p.strip() for p in self.cleaned_data["spatial_shape"].replace("×", ",").replace("x", ",").split(",")]
        try:
            shape = [None if p.lower() in ("any", "none", "null", "") else int(p) for p in parts]
        except ValueError:
            raise forms.ValidationError("Give sizes like '128, 128' or '64, 64, 64'.") from None
        if len(shape) not in (2, 3) or any(s is not None and s < 1 for s in shape):
            raise forms.ValidationError("Give 2 (H, W) or 3 (D, H, W) positive sizes.")
        return shape


@staff_member_required
def model_upload(request):
    form = ModelUploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            model = register_upload(data, user=request.user)
        except ModelUploadError as exc:
            form.add_error("file", str(exc))
        else:
            messages.success(request, f"Model '{model.name}' uploaded; validation is queued.")
            return redirect(model)
    return render(request, "inference/model_upload.html", {"form": form}, status=400 if form.errors else 200)


@staff_member_required
@require_POST
def model_start_run(request, pk):
    model = get_object_or_404(access.visible_models(request.user), pk=pk)
    try:
        run = create_run(model, user=request.user, name=request.POST.get("name", ""))
    except RunError as exc:
        messages.error(request, str(exc))
        return redirect(model)
    messages.success(request, f"Run {run.pk} created.")
    return redirect(run)


def run_detail(request, pk):
    run = get_object_or_404(access.visible_runs(request.user).select_related("task", "model"), pk=pk)
    outputs = run.outputs.select_related("case").order_by("case__case_id", "sample")
    page = Paginator(outputs, 50).get_page(request.GET.get("page"))
    return render(request, "inference/run_detail.html", {"run": run, "page": page})


@staff_member_required
@require_POST
def run_cancel(request, pk):
    run = get_object_or_404(access.visible_runs(request.user), pk=pk)
    try:
        cancel_run(run.pk)
    except RunError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Run cancelled.")
    return redirect(run)


class SubmissionForm(forms.Form):
    name = forms.CharField(max_length=200)
    file = forms.FileField(help_text="A zip of outputs named by case id: <case_id>.nii.gz, .npy, .png, .dcm …")


@staff_member_required
@require_POST
def task_submit(request, slug):
    task = get_object_or_404(access.visible_tasks(request.user), slug=slug)
    form = SubmissionForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            run = create_submission(
                task,
                form.cleaned_data["file"],
                name=form.cleaned_data["name"],
                user=request.user,
                original_name=form.cleaned_data["file"].name,
            )
        except RunError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Submission uploaded; validation is queued.")
            return redirect(run)
    else:
        messages.error(request, "The submission form is incomplete: " + form.errors.as_text())
    return redirect(task)
