"""Celery application: two queues, `inference` (GPU-capable workers) and `metrics` (CPU)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medgen_site.settings")

app = Celery("medgen_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
