"""Who may see and do what with inference's models, registered with `core.policy`.

Roles are per task (`Membership`): an **organiser** manages the task and sees all of it, its hidden
test set included; an accepted **participant** submits and sees the inputs, their own runs and the
leaderboard; everyone else sees public tasks. Staff see and do everything (the policy grants it).

A task with `hidden_references` keeps its test set's reference images and label masks from everyone
but its organisers — as arrays, previews, case pages, API fields, difference maps — and every other
image or output with the same pixels (by content hash), so a copy of the references in another
dataset or run does not give them away. Runs of such a task are seen by their owner and the
organisers only: a good output is close to its reference. A dataset derived from a task's test set
(`Dataset.private_to`: a probe set) is its organisers' only, with the runs on it and their outputs.
Apps above may narrow these scopes further (a running reader study hides its task from its readers).
"""

from django.db.models import Q

from core import policy

from .models import (
    Case,
    CaseImage,
    CaseOutput,
    Dataset,
    DatasetImport,
    GenerativeModel,
    ImageRole,
    MemberRole,
    Membership,
    MemberStatus,
    ModelValidation,
    Run,
    Task,
)

SECRET_ROLES = (ImageRole.REFERENCE, ImageRole.LABEL, ImageRole.MASK)


def _accepted(user, role=None):
    """Task pks where `user` is an accepted member (of `role`)."""
    if not policy.is_authenticated(user):
        return Membership.objects.none().values("task_id")
    memberships = Membership.objects.filter(user=user, status=MemberStatus.ACCEPTED)
    return (memberships.filter(role=role) if role else memberships).values("task_id")


def organised_tasks(user):
    return _accepted(user, MemberRole.ORGANISER)


def is_organiser(user, task):
    return policy.is_staff(user) or (
        policy.is_authenticated(user)
        and Membership.objects.filter(
            task=task, user=user, role=MemberRole.ORGANISER, status=MemberStatus.ACCEPTED
        ).exists()
    )


def is_participant(user, task):
    return (
        policy.is_authenticated(user)
        and Membership.objects.filter(
            task=task, user=user, role=MemberRole.PARTICIPANT, status=MemberStatus.ACCEPTED
        ).exists()
    )


def secret_images(user):
    """References and labels of hidden test sets that `user` does not organise, and of the datasets derived
    from them (`Dataset.private_to`: probe sets) (staff: none)."""
    if policy.is_staff(user):
        return CaseImage.objects.none()
    hidden = Task.objects.filter(hidden_references=True).exclude(pk__in=organised_tasks(user))
    datasets = Q(case__dataset__in=hidden.values("dataset_id")) | Q(case__dataset__private_to__in=hidden)
    return CaseImage.objects.filter(datasets, role__in=SECRET_ROLES)


def _secret_hashes(user):
    return secret_images(user).exclude(content_sha256="").values("content_sha256")


def _tasks(user):
    return Task.objects.filter(Q(is_public=True) | Q(pk__in=_accepted(user))).distinct()


def _private_elsewhere(user, field="private_to"):
    """Rows whose `field` (a dataset's `private_to`) names a task `user` does not organise: private to others."""
    return Q(**{f"{field}__isnull": False}) & ~Q(**{f"{field}__in": organised_tasks(user)})


def _datasets(user):
    tasks = policy.visible(user, Task)
    used = Q(tasks__in=tasks) | Q(reference_for_tasks__in=tasks)
    if policy.is_authenticated(user):
        used |= Q(created_by=user)  # an organiser's own import, before any task uses it
        used |= Q(private_to__in=tasks.filter(pk__in=organised_tasks(user)))  # a probe set of a task they organise
    # A private dataset is its task's organisers' only, whatever else would show it (public, or their own).
    return Dataset.objects.filter(Q(is_public=True) | used).exclude(_private_elsewhere(user)).distinct()


def _imports(user):
    if not policy.is_authenticated(user):
        return DatasetImport.objects.none()
    return DatasetImport.objects.filter(requested_by=user)


def _case_images(user):
    images = CaseImage.objects.filter(case__in=policy.visible(user, Case))
    return images.exclude(pk__in=secret_images(user)).exclude(content_sha256__in=_secret_hashes(user))


def _runs(user):
    tasks = policy.visible(user, Task)
    open_tasks = tasks.filter(hidden_references=False)
    runs = Q(task__in=open_tasks) | Q(task__in=tasks.filter(pk__in=organised_tasks(user)))
    if policy.is_authenticated(user):
        runs |= Q(task__in=tasks, requested_by=user)
    # A run on a private dataset (a probe set of a task they do not organise: `Dataset.private_to`) is not theirs
    # to see either: its outputs and case ids would show what the dataset hides.
    return Run.objects.filter(runs).exclude(_private_elsewhere(user, "dataset__private_to"))


def _outputs(user):
    outputs = CaseOutput.objects.filter(run__in=policy.visible(user, Run))
    return outputs.exclude(content_sha256__in=_secret_hashes(user))


# --- rules -----------------------------------------------------------------------------------------
# A rule asked without an object (the API's permission class, before the view has looked the object up)
# answers whether the user might be allowed somewhere; the view then asks again with the object.


def _on_object(rule):
    def check(user, obj=None):
        if obj is None:
            return policy.is_authenticated(user)
        return policy.is_authenticated(user) and rule(user, obj)

    return check


def organises_any(user, obj=None):
    """Creating a task and importing a dataset: staff, and whoever organises a task already (an organiser
    sets up their next benchmark; the task they create makes them its organiser)."""
    return (
        policy.is_authenticated(user)
        and Membership.objects.filter(user=user, role=MemberRole.ORGANISER, status=MemberStatus.ACCEPTED).exists()
    )


def _manage_task(user, task):
    return is_organiser(user, task)


def _upload_model(user, task):
    """Organisers, and accepted participants of tasks that take models (`task` None: of any task)."""
    if not policy.is_authenticated(user):
        return False
    if task is None:
        memberships = Membership.objects.filter(user=user, status=MemberStatus.ACCEPTED).select_related("task")
        return any(m.role == MemberRole.ORGANISER or m.task.participant_models for m in memberships)
    return is_organiser(user, task) or (task.participant_models and is_participant(user, task))


def _start_run(user, model):
    if not policy.is_authenticated(user):
        return False
    if model is None:
        return _upload_model(user, None)
    return is_organiser(user, model.task) or (model.created_by_id == user.pk and _upload_model(user, model.task))


def _cancel_run(user, run):
    return is_organiser(user, run.task) or run.requested_by_id == user.pk


def _delete_model(user, model):
    """Organisers of its task, and whoever uploaded it (the service lets only an invalid model go)."""
    return is_organiser(user, model.task) or model.created_by_id == user.pk


def _submit(user, task):
    return is_organiser(user, task) or is_participant(user, task)


def _join(user, task):
    """Anyone logged in who is not already the task's organiser (joining again answers the same membership)."""
    return not task.memberships.filter(user=user, role=MemberRole.ORGANISER).exists()


def _moderate_run(user, run):
    return is_organiser(user, run.task)


def _manage_members(user, task):
    return is_organiser(user, task)


def _download_inputs(user, task):
    if task is None:
        return True  # the view checks the task itself
    return task.is_public or is_organiser(user, task) or is_participant(user, task)


def register():
    policy.register_scope(Task, _tasks)
    policy.register_scope(Dataset, _datasets)
    policy.register_scope(Case, lambda user: Case.objects.filter(dataset__in=policy.visible(user, Dataset)))
    policy.register_scope(CaseImage, _case_images)
    policy.register_scope(
        GenerativeModel, lambda user: GenerativeModel.objects.filter(task__in=policy.visible(user, Task))
    )
    policy.register_scope(
        ModelValidation, lambda user: ModelValidation.objects.filter(model__in=policy.visible(user, GenerativeModel))
    )
    policy.register_scope(Run, _runs)
    policy.register_scope(CaseOutput, _outputs)
    policy.register_scope(DatasetImport, _imports)
    policy.register_rule("inference.create_task", organises_any)
    policy.register_rule("inference.import_dataset", organises_any)
    policy.register_rule("inference.manage_task", _on_object(_manage_task))
    policy.register_rule("inference.upload_model", _upload_model)
    policy.register_rule("inference.start_run", _start_run)
    policy.register_rule("inference.cancel_run", _on_object(_cancel_run))
    policy.register_rule("inference.delete_model", _on_object(_delete_model))
    policy.register_rule("inference.submit", _on_object(_submit))
    policy.register_rule("inference.join", _on_object(_join))
    policy.register_rule("inference.moderate_run", _on_object(_moderate_run))
    policy.register_rule("inference.manage_members", _on_object(_manage_members))
    policy.register_rule("inference.download_inputs", _download_inputs)
