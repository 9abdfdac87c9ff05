"""Opening a registered model in the sandbox for a job, with the limits from the settings."""

import contextlib
import os

from django.conf import settings

from core.threads import THREAD_ENV_VARS

from .. import runner
from ..sandbox.host import Limits, Sandbox
from ..storage import local_copy


def limits():
    """The sandbox's limits; its threads are the worker process's own (set by core.threads) unless configured."""
    threads = settings.MEDGEN_SANDBOX_THREADS or int(os.environ.get(THREAD_ENV_VARS[0]) or 1)
    return Limits(
        memory_bytes=settings.MEDGEN_SANDBOX_MEMORY_BYTES,
        seconds=settings.MEDGEN_SANDBOX_SECONDS,
        threads=threads,
        user=settings.MEDGEN_SANDBOX_USER or None,
    )


@contextlib.contextmanager
def open_model(model, *, log, device=None, sampling=None):
    """The model loaded in a new sandbox process (a `runner.LoadedModel` look-alike), closed on exit.

    For a noise predictor, `sampling` (an `inference.sampling.Sampling`) is the loop the child runs
    around it on each `predict`. What the sandbox could confine goes to the job log, also when the
    model is refused.
    """
    local = local_copy(model.artifact)
    device = device or runner.preferred_device()
    sandbox = Sandbox(local.path, model.format, limits=limits(), device=device, sampling=sampling)
    try:
        try:
            sandbox.start()  # the child has read the artifact once this returns
        finally:
            if local.is_temporary:
                local.path.unlink(missing_ok=True)
            if sandbox.confinement:
                log("sandbox: " + "; ".join(sandbox.confinement))
        yield sandbox
    finally:
        sandbox.close()
