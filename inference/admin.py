"""Admin: datasets are added by importing an archive; models, runs and outputs are read-only records.

Anything with a lifecycle (model validation, run status) changes only through the services,
so the admin never edits those fields.
"""

from functools import cache

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import redirect
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.admin import JOB_FIELDS, JobAdmin

from .forms import TaskForm
from .models import Case, CaseImage, CaseOutput, Dataset, DatasetImport, GenerativeModel, Run, Task
from .services.datasets import DatasetImportError, import_dataset
from .services.runs import RunError, cancel_run, create_run

IMPORT_TEMPLATE = """
{% extends "admin/base_site.html" %}
{% load admin_urls %}
{% block breadcrumbs %}
<div class="breadcrumbs">
  <a href="{% url 'admin:index' %}">Home</a>
  › <a href="{% url 'admin:app_list' app_label=opts.app_label %}">{{ opts.app_config.verbose_name }}</a>
  › <a href="{% url opts|admin_urlname:'changelist' %}">{{ opts.verbose_name_plural|capfirst }}</a>
  › Import
</div>
{% endblock %}
{% block content %}
<p>Upload a zip archive. <strong>Case layout:</strong> one folder per case holding <code>input</code>
(or <code>input_0</code>, <code>input_1</code>, …), <code>reference</code> and <code>label</code> images
(DICOM, NIfTI, PNG, TIFF, NPY or NPZ; a folder for a DICOM series) and an optional
<code>metadata.json</code>. <strong>Flat layout:</strong> one case per image file or DICOM series folder.
Nothing is stored unless every file imports.</p>
<form method="post" enctype="multipart/form-data">{% csrf_token %}
  {% if form.non_field_errors %}
  <p class="errornote">The dataset was not imported; nothing was stored.</p>
  {{ form.non_field_errors }}
  {% endif %}
  <fieldset class="module aligned">
    {% for field in form %}
    <div class="form-row">
      {{ field.errors }}{{ field.label_tag }} {{ field }}
      {% if field.help_text %}<div class="help">{{ field.help_text }}</div>{% endif %}
    </div>
    {% endfor %}
  </fieldset>
  <div class="submit-row"><input type="submit" value="Import" class="default"></div>
</form>
{% endblock %}
"""


@cache
def import_template():
    return engines["django"].from_string(IMPORT_TEMPLATE)


class DatasetImportForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    is_public = forms.BooleanField(required=False, label="Public")
    archive = forms.FileField(help_text="A zip archive of the dataset.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Dataset.objects.filter(name=name).exists():
            raise forms.ValidationError("A dataset with this name already exists.")
        return name


class CaseImageInline(admin.TabularInline):
    model = CaseImage
    fields = ("role", "index", "shape", "spacing", "source_format", "original_name", "intensity_min", "intensity_max")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "case_count", "is_public", "source", "created_by", "created_at")
    list_filter = ("is_public",)
    search_fields = ("name", "description", "source")
    readonly_fields = ("source", "created_by", "created_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(case_count=Count("cases"))

    @admin.display(ordering="case_count", description="Cases")
    def case_count(self, dataset):
        return dataset.case_count

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="inference_dataset_import"), *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        # A dataset is its cases: "Add" goes to the import form.
        return redirect("admin:inference_dataset_import")

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DatasetImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                dataset = import_dataset(
                    data["name"],
                    data["archive"],
                    description=data["description"],
                    source_label=data["archive"].name,
                    is_public=data["is_public"],
                    user=request.user,
                )
            except DatasetImportError as error:
                for problem in error.errors:
                    form.add_error(None, problem)
                count = len(error.errors)
                messages.error(request, f"{count} problem{'s' if count != 1 else ''} found; see the list below.")
            else:
                count = dataset.cases.count()
                messages.success(request, f"Imported dataset '{dataset.name}' with {count} cases.")
                return redirect(reverse("admin:inference_dataset_change", args=[dataset.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import dataset",
            "form": form,
        }
        return TemplateResponse(request, import_template(), context)


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("case_id", "dataset")
    list_filter = ("dataset",)
    search_fields = ("case_id", "dataset__name")
    list_select_related = ("dataset",)
    readonly_fields = ("dataset",)
    inlines = [CaseImageInline]

    def has_add_permission(self, request):
        return False  # cases come from dataset imports


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    form = TaskForm
    list_display = ("name", "slug", "kind", "dataset", "primary_metric", "is_public")
    list_filter = ("kind", "is_public")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("dataset",)


@admin.register(GenerativeModel)
class GenerativeModelAdmin(admin.ModelAdmin):
    list_display = ("name", "task", "family", "format", "status", "size_bytes", "created_by", "created_at")
    list_filter = ("status", "family", "format", "task")
    search_fields = ("name", "sha256", "original_name")
    list_select_related = ("task", "created_by")
    readonly_fields = (
        "artifact",
        "original_name",
        "sha256",
        "size_bytes",
        "parameter_count",
        "status",
        "validation_error",
        "validated_at",
        "created_by",
        "created_at",
    )

    actions = ["start_runs"]

    def has_add_permission(self, request):
        return False  # artifacts are hashed and validated by the upload service

    @admin.action(description="Start a run of each selected model on its task")
    def start_runs(self, request, queryset):
        for model in queryset:
            try:
                run = create_run(model, user=request.user)
            except RunError as exc:
                self.message_user(request, f"{model.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{model.name}: run {run.pk} is {run.status}.", messages.SUCCESS)


class CaseOutputInline(admin.TabularInline):
    model = CaseOutput
    fields = ("case", "sample", "shape", "latency_ms", "nonfinite_count", "array")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DatasetImport)
class DatasetImportAdmin(JobAdmin):
    """Imports started from the site's "Import a dataset" page: read-only records of the job and its problems."""

    list_display = ("name", "archive_name", "status", "progress", "requested_by", "created_at")
    search_fields = ("name", "archive_name", "uid")
    fields = ("name", "uid", "archive_name", "dataset", "errors", *JOB_FIELDS)
    readonly_fields = ("name", "uid", "archive_name", "dataset", "errors")

    def has_add_permission(self, request):
        return False


@admin.register(Run)
class RunAdmin(JobAdmin):
    list_display = ("__str__", "task", "model", "kind", "status", "progress", "attempts", "created_at")
    list_filter = ("status", "kind", "task")
    search_fields = ("name", "uid", "model__name")
    list_select_related = ("task", "model")
    fields = (
        "name",
        "uid",
        "task",
        "model",
        "kind",
        "submission_file",
        "device",
        "seed",
        "problems",
        "total_inference_seconds",
        "throughput_cases_per_s",
        "latency_ms_p50",
        "latency_ms_p95",
        *JOB_FIELDS,
    )
    readonly_fields = fields[1:13]  # only the display name is editable
    inlines = [CaseOutputInline]

    actions = ["cancel_runs"]

    def has_add_permission(self, request):
        return False  # runs are started from a model or a submission

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        for run in queryset:
            try:
                cancel_run(run.pk)
            except RunError as exc:
                self.message_user(request, f"{run}: {exc}", messages.WARNING)
            else:
                self.message_user(request, f"{run}: cancelled.", messages.SUCCESS)


@admin.register(CaseOutput)
class CaseOutputAdmin(admin.ModelAdmin):
    list_display = ("__str__", "run", "case", "sample", "latency_ms", "nonfinite_count")
    list_select_related = ("run", "case", "case__dataset")
    readonly_fields = ("run", "case", "sample", "array", "shape", "latency_ms", "nonfinite_count", "created_at")

    def has_add_permission(self, request):
        return False
