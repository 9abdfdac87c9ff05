"""CPU threads per worker process, set deliberately.

On a small shared machine two OpenMP threads that wait on each other whenever one core is
busy make torch several times slower than one thread (FIELD-NOTES: "torch threads"), so each
Celery pool process takes `MEDGEN_WORKER_THREADS` threads, or the machine's cores divided by
the worker's concurrency (at least one). The count also goes into the environment variables
that OpenMP, MKL and OpenBLAS read, so subprocesses (the model sandbox) inherit it.
"""

import logging
import os

from celery import signals
from django.conf import settings

log = logging.getLogger(__name__)

CONCURRENCY_ENV = "MEDGEN_WORKER_CONCURRENCY"
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def threads_for(concurrency, cores=None, configured=None):
    """Threads per pool process: the configured count, else cores ÷ concurrency (≥ 1)."""
    if configured:
        return max(1, int(configured))
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, int(concurrency or 1)))


def apply(threads):
    """Set torch's intra-op threads and the OpenMP/BLAS variables for this process and its children."""
    import torch  # torch is heavy; only worker processes pay for it here

    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)
    return threads


def _remember_concurrency(sender=None, **kwargs):
    concurrency = getattr(sender, "concurrency", None)
    if concurrency:
        os.environ[CONCURRENCY_ENV] = str(concurrency)


def _configure_pool_process(**kwargs):
    threads = apply(threads_for(os.environ.get(CONCURRENCY_ENV, 1), configured=settings.MEDGEN_WORKER_THREADS))
    log.info("worker process %s: %d CPU thread(s) for torch, OpenMP and BLAS", os.getpid(), threads)


def connect_worker_signals():
    # worker_init runs in the main worker process (it knows the concurrency); pool processes are
    # forked from it afterwards and inherit the environment.
    signals.worker_init.connect(_remember_concurrency, dispatch_uid="core.threads.concurrency")
    signals.worker_process_init.connect(_configure_pool_process, dispatch_uid="core.threads.pool")
