from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "evaluation"
    verbose_name = "Evaluation: metrics and leaderboards"

    def ready(self):
        from inference.signals import run_succeeded

        from . import downstream, services

        run_succeeded.connect(services.on_run_succeeded, dispatch_uid="evaluation.on_run_succeeded")
        run_succeeded.connect(downstream.on_run_succeeded, dispatch_uid="evaluation.downstream.on_run_succeeded")
