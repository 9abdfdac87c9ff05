"""Taking part in a benchmark: joining a task, its organisers' decisions, submitting within a phase's
limits, and hiding a run from the leaderboard (kept, with the reason)."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core import policy
from core.errors import Conflict, InvalidInput, PermissionDenied, RateLimited

from ..models import JoinPolicy, MemberRole, Membership, MemberStatus, Phase, Run, Task
from ..selectors import counted_runs
from .submissions import create_submission


def join_task(task: Task, *, user) -> Membership:
    """The user's participation in `task`: accepted at once, or pending an organiser's approval."""
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            task=task, user=user, defaults={"role": MemberRole.PARTICIPANT}
        )
        if not created:
            return membership
        if task.join_policy == JoinPolicy.AUTO:
            membership.status = MemberStatus.ACCEPTED
            membership.decided_at = timezone.now()
            membership.save(update_fields=["status", "decided_at"])
    return membership


def decide_membership(membership: Membership, *, accept: bool, by) -> Membership:
    """An organiser accepts or rejects a pending (or earlier decided) participant."""
    membership.status = MemberStatus.ACCEPTED if accept else MemberStatus.REJECTED
    membership.decided_at = timezone.now()
    membership.decided_by = by
    membership.save(update_fields=["status", "decided_at", "decided_by"])
    return membership


def add_organiser(task: Task, *, user, by=None) -> Membership:
    """Make `user` an organiser of `task` (staff do this; an organiser is not site staff)."""
    membership, _ = Membership.objects.update_or_create(
        task=task,
        user=user,
        defaults={
            "role": MemberRole.ORGANISER,
            "status": MemberStatus.ACCEPTED,
            "decided_at": timezone.now(),
            "decided_by": by,
        },
    )
    return membership


def open_phase(task: Task, *, now=None):
    """The phase of `task` open now (the latest started one if several overlap), or None."""
    now = now or timezone.now()
    phases = [phase for phase in task.phases.order_by("-starts_at") if phase.is_open(now)]
    return phases[0] if phases else None


def check_quota(task: Task, *, user, phase: Phase, now=None):
    """Raise `RateLimited` (429, with when the next submission is allowed) if the user has used the phase's
    limits; the caller holds the user's membership row locked so two submissions cannot both pass."""
    now = now or timezone.now()
    counted = counted_runs(task, user, phase)
    if phase.limit_total is not None and counted.count() >= phase.limit_total:
        raise RateLimited(
            f"You have used all {phase.limit_total} submissions of the phase '{phase.name}'; no more are allowed."
        )
    if phase.limit_per_period is None:
        return
    window = timedelta(hours=phase.period_hours)
    recent = list(
        counted.filter(created_at__gt=now - window).order_by("created_at").values_list("created_at", flat=True)
    )
    if len(recent) >= phase.limit_per_period:
        allowed_at = recent[len(recent) - phase.limit_per_period] + window
        wait = max(1, int((allowed_at - now).total_seconds()) + 1)
        raise RateLimited(
            f"You have used {len(recent)} of {phase.limit_per_period} submissions in the last {phase.period_hours} h "
            f"of the phase '{phase.name}'; the next is allowed at {allowed_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(in {wait} s).",
            headers={"Retry-After": str(wait)},
        )


def submit(task: Task, source, *, name: str, user, original_name: str = "") -> Run:
    """A submission of precomputed outputs. Organisers (and staff) submit at any time, outside the
    limits; a participant submits while a phase is open and within its limits, the run recorded in it."""
    if policy.is_staff(user) or _organises(task, user):
        return create_submission(task, source, name=name, user=user, original_name=original_name)
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update()
            .filter(task=task, user=user, role=MemberRole.PARTICIPANT, status=MemberStatus.ACCEPTED)
            .first()
        )
        if membership is None:
            raise PermissionDenied(f"Join the task '{task.name}' (and be accepted) before submitting.")
        phase = open_phase(task)
        if phase is None:
            raise PermissionDenied(f"The task '{task.name}' has no phase open for submissions now.")
        check_quota(task, user=user, phase=phase)
        return create_submission(task, source, name=name, user=user, original_name=original_name, phase=phase)


def _organises(task, user):
    return Membership.objects.filter(
        task=task, user=user, role=MemberRole.ORGANISER, status=MemberStatus.ACCEPTED
    ).exists()


def hide_run(run: Run, *, reason: str, by) -> Run:
    """Take a run off the leaderboard with a reason; the run and its results are kept."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the run is hidden: participants see the reason.")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.hidden_at is not None:
            raise Conflict("The run is already hidden from the leaderboard.")
        run.hidden_at, run.hidden_reason, run.hidden_by = timezone.now(), reason, by
        run.save(update_fields=["hidden_at", "hidden_reason", "hidden_by"])
        run.append_log(f"hidden from the leaderboard by {by}: {reason}")
    return run


def unhide_run(run: Run, *, by) -> Run:
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.hidden_at is None:
            raise Conflict("The run is not hidden.")
        run.hidden_at, run.hidden_reason, run.hidden_by = None, "", None
        run.save(update_fields=["hidden_at", "hidden_reason", "hidden_by"])
        run.append_log(f"shown on the leaderboard again by {by}")
    return run
