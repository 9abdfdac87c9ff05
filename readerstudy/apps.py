from django.apps import AppConfig


class ReaderstudyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "readerstudy"
    verbose_name = "Reader studies"

    def ready(self):
        from . import hooks  # hooks need the models loaded: AppConfig.ready is where Django allows that

        hooks.register()
