from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "evaluation"
    verbose_name = "Evaluation: metrics and leaderboards"

    def ready(self):
        from . import hooks  # hooks need the models loaded: AppConfig.ready is where Django allows that

        hooks.register()
