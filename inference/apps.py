from django.apps import AppConfig


class InferenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inference"
    verbose_name = "Datasets, models and runs"

    def ready(self):
        from . import hooks  # hooks need the models loaded: AppConfig.ready is where Django allows that

        hooks.register()
