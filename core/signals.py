"""Signals by which a lower app tells higher ones that something happened (they never import upwards).

`job_finished` is sent, after the transaction that made a job final has committed, with the
job's model class as sender and `job_id`, `status` as keyword arguments. Receivers chain the
next job (a succeeded run is evaluated, then trained on downstream). They are called with
`send_robust`: one that raises is logged and does not keep the others from running, and the
job's `chained_at` stays empty so the reaper sends the signal again later. Receivers must
therefore be idempotent (create the next job if it does not exist; never re-run it).
"""

import logging

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

log = logging.getLogger(__name__)

job_finished = Signal()


def send_finished_on_commit(model, pk, status):
    transaction.on_commit(lambda: deliver_finished(model, pk, status))


def deliver_finished(model, pk, status):
    """Call every receiver; stamp `chained_at` when none raised. Returns True if all ran."""
    failed = []
    for receiver, result in job_finished.send_robust(sender=model, job_id=pk, status=status):
        if isinstance(result, Exception):
            failed.append(receiver)
            log.error(
                "%s %s: receiver %s of job_finished failed; the reaper will send it again",
                model.__name__,
                pk,
                getattr(receiver, "__qualname__", receiver),
                exc_info=result,
            )
    if not failed:
        model.objects.filter(pk=pk, status=status, chained_at__isnull=True).update(chained_at=timezone.now())
    return not failed
