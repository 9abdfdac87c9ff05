from django.contrib import admin, messages

from core.admin import JobAdmin
from core.models import JobStatus

from . import downstream, services
from .models import CaseResult, DownstreamJob, DownstreamSetup, Evaluation, FeatureSet, MetricResult


@admin.register(Evaluation)
class EvaluationAdmin(JobAdmin):
    list_display = ["run", "status", "phase", "progress", "attempts", "seconds", "finished_at"]
    readonly_fields = [field.name for field in Evaluation._meta.fields]
    actions = ["reevaluate"]

    @admin.action(description="Re-evaluate the selected runs")
    def reevaluate(self, request, queryset):
        queued = 0
        for evaluation in queryset.select_related("run"):
            try:
                services.request_evaluation(evaluation.run, user=request.user)
                queued += 1
            except services.EvaluationError as exc:
                self.message_user(request, f"{evaluation.run}: {exc}", messages.WARNING)
        self.message_user(request, f"{queued} evaluation(s) queued.")


@admin.register(MetricResult)
class MetricResultAdmin(admin.ModelAdmin):
    list_display = ["run", "metric", "extractor", "value", "ci_low", "ci_high", "n_cases", "version"]
    list_filter = ["metric", "extractor", "tier"]
    readonly_fields = [field.name for field in MetricResult._meta.fields]


@admin.register(CaseResult)
class CaseResultAdmin(admin.ModelAdmin):
    list_display = ["run", "case", "status", "samples", "uncertainty_mean"]
    list_filter = ["status"]
    readonly_fields = [field.name for field in CaseResult._meta.fields]


@admin.register(FeatureSet)
class FeatureSetAdmin(admin.ModelAdmin):
    list_display = ["extractor", "version", "dataset", "run", "n", "dim", "created_at"]


# --------------------------------------------------------------- downstream-task tier (clinical)


class DownstreamJobInline(admin.TabularInline):
    model = DownstreamJob
    fields = ["run", "status", "phase", "attempts", "seconds", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(DownstreamSetup)
class DownstreamSetupAdmin(admin.ModelAdmin):
    list_display = ["task", "name", "seeds", "frozen_at", "auto_run"]
    readonly_fields = ["train_case_ids", "test_case_ids", "unlabelled_case_ids", "frozen_at", "config"]
    inlines = [DownstreamJobInline]

    def get_readonly_fields(self, request, obj=None):
        # Once a result exists the split, recipe and seeds are frozen (as declare_downstream enforces).
        if obj is not None and obj.is_frozen:
            return [*self.readonly_fields, "name", "seeds", "split_seed", "test_fraction"]
        return self.readonly_fields

    actions = ["queue_all"]

    @admin.action(description="Queue the real→real reference and every succeeded run")
    def queue_all(self, request, queryset):
        queued = 0
        for setup in queryset.select_related("task"):
            requests = [lambda setup=setup: downstream.request_reference(setup.task, user=request.user)]
            requests += [
                lambda run=run: downstream.request_downstream(run, user=request.user)
                for run in setup.task.runs.filter(status=JobStatus.SUCCEEDED)
            ]
            for queue in requests:
                try:
                    queue()
                    queued += 1
                except downstream.DownstreamError as exc:
                    self.message_user(request, f"{setup.task}: {exc}", messages.WARNING)
        self.message_user(request, f"{queued} downstream job(s) queued.")


@admin.register(DownstreamJob)
class DownstreamJobAdmin(JobAdmin):
    list_display = ["__str__", "setup", "status", "phase", "progress", "attempts", "device", "seconds", "finished_at"]
    readonly_fields = [field.name for field in DownstreamJob._meta.fields]
    actions = ["cancel"]

    @admin.action(description="Cancel the selected downstream jobs")
    def cancel(self, request, queryset):
        for job in queryset:
            try:
                downstream.cancel_downstream(job.pk)
            except downstream.DownstreamError as exc:
                self.message_user(request, f"{job}: {exc}", messages.WARNING)
