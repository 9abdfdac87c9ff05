"""Signals other apps listen to, so inference never imports them."""

from django.dispatch import Signal

# Sent after the transaction that moved a run to succeeded has committed; kwargs: run_id.
run_succeeded = Signal()
