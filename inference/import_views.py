"""Organisers' pages for importing a dataset from the site: the upload form, the job's page (progress bar,
then the dataset or every problem, each naming its file) and the JSON the page's progress bar polls."""

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render

from core import policy
from core.errors import DomainError

from .forms import DatasetImportForm
from .models import DatasetImport
from .services.dataset_imports import start_import


def dataset_import(request):
    policy.require(request.user, "inference.import_dataset")
    form = DatasetImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = start_import(
                name=data["name"],
                upload=data["file"],
                description=data["description"],
                is_public=data["is_public"],
                user=request.user,
            )
        except DomainError as exc:
            for error in getattr(exc, "errors", None) or [str(exc)]:
                form.add_error(getattr(exc, "field", None), error)
        else:
            messages.success(request, f"Import of '{job.name}' queued.")
            return redirect(job)
    recent = policy.visible(request.user, DatasetImport).select_related("dataset")[:10]
    return render(
        request,
        "inference/dataset_import.html",
        {"form": form, "recent": recent},
        status=400 if form.errors else 200,
    )


def dataset_import_detail(request, uid):
    job = policy.get_visible(request.user, DatasetImport, uid=uid)
    return render(request, "inference/dataset_import_detail.html", {"job": job})


def dataset_import_status(request, uid):
    """What static/js/job_progress.js reads: the job's status, progress and error, and whether it is over."""
    job = policy.get_visible(request.user, DatasetImport, uid=uid)
    return JsonResponse(
        {
            "status": job.status,
            "phase": job.phase,
            "progress_done": job.progress_done,
            "progress_total": job.progress_total,
            "progress_percent": job.progress_percent,
            "error": job.error,
            "errors": job.errors,
            "is_final": job.is_final,
            "dataset": job.dataset.get_absolute_url() if job.dataset_id else None,
        }
    )
