"""Who may see and do what with the evaluation's models, registered with `core.policy`: results are
visible with their run, a probe (its truth region) with its case (a probe set is private to its task's organisers:
`Dataset.private_to`); requesting or cancelling evaluation and downstream jobs is staff-only for now."""

from django.db.models import Q

from core import policy
from inference.models import Case, Run, Task

from .models import CaseResult, DownstreamJob, DownstreamSetup, Evaluation, MetricResult, ProbeCase

ACTIONS = ("evaluation.request_evaluation", "evaluation.request_downstream", "evaluation.cancel_downstream")


def register():
    def of_visible_runs(model):
        return lambda user: model.objects.filter(run__in=policy.visible(user, Run))

    for model in (Evaluation, CaseResult, MetricResult):
        policy.register_scope(model, of_visible_runs(model))
    policy.register_scope(
        DownstreamSetup, lambda user: DownstreamSetup.objects.filter(task__in=policy.visible(user, Task))
    )
    policy.register_scope(
        DownstreamJob,
        lambda user: DownstreamJob.objects.filter(
            Q(run__in=policy.visible(user, Run)) | Q(run__isnull=True, setup__task__in=policy.visible(user, Task))
        ),
    )
    policy.register_scope(ProbeCase, lambda user: ProbeCase.objects.filter(case__in=policy.visible(user, Case)))
    for action in ACTIONS:
        policy.register_rule(action, policy.staff_only)
