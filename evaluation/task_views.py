"""The organisers' task pages: create a task and edit its settings without the Django admin (staff, and
organisers: of the task to edit it, of any task to create one), with links to its reader studies."""

from django.contrib import messages
from django.shortcuts import redirect, render

from core import policy
from inference import selectors as inference_selectors
from inference.models import Dataset, Task

from .downstream.services import DownstreamError
from .task_forms import TaskForm
from .task_setup import save_task


def task_create(request):
    policy.require(request.user, "inference.create_task")
    initial = {}
    if request.GET.get("dataset", "").isdigit():
        dataset = policy.visible(request.user, Dataset).filter(pk=int(request.GET["dataset"])).first()
        initial = {"dataset": dataset} if dataset else {}
    form = TaskForm(request.POST or None, user=request.user, initial=initial)
    return _form_page(request, form, created=True)


def task_edit(request, slug):
    task = policy.get_visible(request.user, Task, slug=slug)
    policy.require(request.user, "inference.manage_task", task)
    form = TaskForm(request.POST or None, instance=task, user=request.user)
    return _form_page(request, form, created=False)


def _form_page(request, form, *, created):
    if request.method == "POST" and form.is_valid():
        try:
            task = save_task(form.instance, downstream=form.downstream_request(), user=request.user)
        except DownstreamError as exc:
            form.add_error("downstream", str(exc))
        else:
            messages.success(request, f"Task '{task.name}' {'created' if created else 'saved'}.")
            return redirect("task-edit", slug=task.slug)
    task = form.instance if form.instance.pk else None
    if task is not None and form.errors:
        task.refresh_from_db()  # the page's title and links name the task as stored
    context = {"form": form, "task": task}
    if created:  # the menu's "Organise" page: a new task, or the settings of one the user organises
        context["organised"] = inference_selectors.organised_task_list(request.user)
    return render(request, "evaluation/task_form.html", context, status=400 if form.errors else 200)
