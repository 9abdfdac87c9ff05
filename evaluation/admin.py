from django.contrib import admin, messages

from . import services
from .models import CaseResult, Evaluation, FeatureSet, MetricResult


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["run", "status", "phase", "progress_done", "progress_total", "attempts", "seconds", "finished_at"]
    list_filter = ["status"]
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
