"""Pages: tasks, datasets and cases, models, runs. Thin: reads come from `selectors` and `policy`,
writes from the same services the API calls, forms from `forms`."""

import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core import policy
from core.errors import DomainError
from core.pages import report

from . import extensions, selectors
from .forms import ModelUploadForm, SubmissionForm
from .models import (
    Case,
    CaseOutput,
    Dataset,
    GenerativeModel,
    ImageRole,
    MemberRole,
    MemberStatus,
    ModelStatus,
    Run,
    Task,
)
from .preview import render_png
from .services import participation
from .services.artifacts import delete_invalid_model, register_upload
from .services.runs import cancel_run, create_run


def home(request):
    # can_organise (the "New task" and "Import a dataset" buttons): inference.context_processors.organising.
    return render(request, "inference/home.html", {"tasks": selectors.task_rows(request.user)})


def task_detail(request, slug):
    task, models, runs, case_count = selectors.task_page(request.user, slug)
    return render(
        request,
        "inference/task_detail.html",
        {
            "task": task,
            "models": models,
            "runs": runs,
            "case_count": case_count,
            "standing": selectors.participation(request.user, task),
            "submission_form": SubmissionForm(),
        },
    )


@require_POST
def task_join(request, slug):
    task = policy.get_visible(request.user, Task, slug=slug)
    policy.require(request.user, "inference.join", task)
    membership = participation.join_task(task, user=request.user)
    if membership.status == MemberStatus.ACCEPTED:
        messages.success(request, f"You take part in '{task.name}': download the inputs and submit your outputs.")
    else:
        messages.success(request, "Your request to take part waits for an organiser's approval.")
    return redirect(task)


@require_POST
def member_decide(request, slug, member_id):
    task = policy.get_visible(request.user, Task, slug=slug)
    policy.require(request.user, "inference.manage_members", task)
    membership = task.memberships.filter(pk=member_id, role=MemberRole.PARTICIPANT).first()
    if membership is None:
        raise Http404("No such participant.")
    accept = request.POST.get("decision") == "accept"
    participation.decide_membership(membership, accept=accept, by=request.user)
    messages.success(request, f"{membership.user}: {'accepted' if accept else 'rejected'}.")
    return redirect(task)


@login_required
def my_submissions(request):
    return render(request, "inference/my_submissions.html", {"runs": selectors.my_runs(request.user)})


@require_POST
def run_hide(request, pk):
    run = policy.get_visible(request.user, Run, pk=pk)
    policy.require(request.user, "inference.moderate_run", run)
    try:
        if request.POST.get("action") == "unhide":
            participation.unhide_run(run, by=request.user)
            messages.success(request, "The run is on the leaderboard again.")
        else:
            participation.hide_run(run, reason=request.POST.get("reason", ""), by=request.user)
            messages.success(request, "The run is hidden from the leaderboard; it is kept.")
    except DomainError as exc:
        report(request, exc)
    return redirect(run)


def dataset_detail(request, pk):
    dataset = policy.get_visible(request.user, Dataset, pk=pk)
    page = Paginator(selectors.cases_with_images(request.user, dataset.cases.all()), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "inference/dataset_detail.html", {"dataset": dataset, "page": page})


def case_detail(request, pk):
    case = policy.get_visible(request.user, Case, pk=pk)
    outputs = policy.visible(request.user, CaseOutput).filter(case=case).select_related("run", "run__model")
    images = selectors.visible_images(request.user).filter(case=case)
    return render(
        request,
        "inference/case_detail.html",
        {
            "case": case,
            "images": images,
            "hidden_images": case.images.count() - images.count(),
            "metadata_rows": selectors.metadata_rows(case.metadata),
            "outputs": outputs.order_by("run_id", "sample"),
        },
    )


def case_image_png(request, pk, role, index):
    case = policy.get_visible(request.user, Case, pk=pk)
    if role not in ImageRole.values:
        raise Http404
    image = selectors.case_image(request.user, case, role, index)
    if image is None:
        raise Http404
    return png_response(image.load(), label=role in (ImageRole.LABEL, ImageRole.MASK))


def output_png(request, pk, output_pk):
    output = policy.get_visible(request.user, CaseOutput, run_id=pk, pk=output_pk)
    return png_response(output.load())


def png_response(array, label=False):
    buffer = io.BytesIO()
    render_png(array, label=label).save(buffer, format="PNG")
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def model_list(request):
    show_invalid = request.GET.get("invalid") == "1"
    models, hidden_invalid = selectors.listed_models(request.user, show_invalid=show_invalid)
    return render(
        request,
        "inference/model_list.html",
        {"models": models, "hidden_invalid": hidden_invalid, "show_invalid": show_invalid},
    )


def model_detail(request, pk):
    model = policy.get_visible(request.user, GenerativeModel, pk=pk)
    return render(
        request,
        "inference/model_detail.html",
        {
            "model": model,
            "runs": model.runs.all(),
            # Only a valid model is offered a run (one started by the API before waits for the validation).
            "can_run": model.status == ModelStatus.VALID and policy.can(request.user, "inference.start_run", model),
            "can_delete": model.status == ModelStatus.INVALID
            and policy.can(request.user, "inference.delete_model", model),
        },
    )


def model_upload(request):
    policy.require(request.user, "inference.upload_model")
    form = ModelUploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            model = register_upload(form.cleaned_data, user=request.user)
        except DomainError as exc:
            form.add_error("file", str(exc))
        else:
            messages.success(request, f"Model '{model.name}' uploaded; validation is queued.")
            return redirect(model)
    return render(request, "inference/model_upload.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
def model_delete(request, pk):
    model = policy.get_visible(request.user, GenerativeModel, pk=pk)
    policy.require(request.user, "inference.delete_model", model)
    name = delete_invalid_model(model, user=request.user)
    messages.success(request, f"Model '{name}' deleted, with its failed runs and files.")
    return redirect("model-list")


@require_POST
def model_start_run(request, pk):
    model = policy.get_visible(request.user, GenerativeModel, pk=pk)
    policy.require(request.user, "inference.start_run", model)
    try:
        run = create_run(model, user=request.user, name=request.POST.get("name", ""))
    except DomainError as exc:
        report(request, exc)
        return redirect(model)
    messages.success(request, f"Run {run.pk} created.")
    return redirect(run)


def run_detail(request, pk):
    run = policy.get_visible(request.user, Run, pk=pk)
    outputs = policy.visible(request.user, CaseOutput).filter(run=run).select_related("case")
    outputs = outputs.order_by("case__case_id", "sample")
    page = Paginator(outputs, 50).get_page(request.GET.get("page"))
    sections = extensions.run_sections(request, run)
    return render(
        request,
        "inference/run_detail.html",
        {
            "run": run,
            "page": page,
            "sections": sections,
            "section_scripts": list(dict.fromkeys(script for section in sections for script in section.scripts)),
            "can_cancel": not run.is_final and policy.can(request.user, "inference.cancel_run", run),
            "can_moderate": policy.can(request.user, "inference.moderate_run", run),
        },
    )


@require_POST
def run_cancel(request, pk):
    run = policy.get_visible(request.user, Run, pk=pk)
    policy.require(request.user, "inference.cancel_run", run)
    try:
        cancel_run(run.pk)
    except DomainError as exc:
        report(request, exc)
    else:
        messages.success(request, "Run cancelled.")
    return redirect(run)


@require_POST
def task_submit(request, slug):
    task = policy.get_visible(request.user, Task, slug=slug)
    policy.require(request.user, "inference.submit", task)
    form = SubmissionForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "The submission form is incomplete: " + form.errors.as_text())
        return redirect(task)
    upload = form.cleaned_data["file"]
    try:
        run = participation.submit(
            task, upload, name=form.cleaned_data["name"], user=request.user, original_name=upload.name
        )
    except DomainError as exc:
        report(request, exc)
        return redirect(task)
    messages.success(request, "Submission uploaded; validation is queued.")
    return redirect(run)
