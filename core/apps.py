from django.apps import AppConfig

from . import media, threads


class CoreConfig(AppConfig):
    """The base every domain app builds on: background jobs, the permission layer, API errors."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Platform core: jobs and permissions"

    def ready(self):
        threads.connect_worker_signals()
        media.connect_file_cleanup()
