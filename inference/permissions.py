"""Who may see and do what with inference's models, registered with `core.policy`.

Non-staff users see the public tasks, the datasets those tasks use (and public datasets), and
everything that hangs off them; apps above may narrow this further (a running reader study
hides its task from its readers). Every write is staff-only for now.
"""

from django.db.models import Q

from core import policy

from .models import Case, CaseImage, CaseOutput, Dataset, GenerativeModel, ModelValidation, Run, Task

ACTIONS = (
    "inference.manage_task",
    "inference.import_dataset",
    "inference.upload_model",
    "inference.start_run",
    "inference.cancel_run",
    "inference.submit",
)


def _datasets(user):
    return Dataset.objects.filter(Q(is_public=True) | Q(tasks__in=policy.visible(user, Task))).distinct()


def register():
    policy.register_scope(Task, lambda user: Task.objects.filter(is_public=True))
    policy.register_scope(Dataset, _datasets)
    policy.register_scope(Case, lambda user: Case.objects.filter(dataset__in=policy.visible(user, Dataset)))
    policy.register_scope(CaseImage, lambda user: CaseImage.objects.filter(case__in=policy.visible(user, Case)))
    policy.register_scope(
        GenerativeModel, lambda user: GenerativeModel.objects.filter(task__in=policy.visible(user, Task))
    )
    policy.register_scope(
        ModelValidation, lambda user: ModelValidation.objects.filter(model__in=policy.visible(user, GenerativeModel))
    )
    policy.register_scope(Run, lambda user: Run.objects.filter(task__in=policy.visible(user, Task)))
    policy.register_scope(CaseOutput, lambda user: CaseOutput.objects.filter(run__in=policy.visible(user, Run)))
    for action in ACTIONS:
        policy.register_rule(action, policy.staff_only)
