from django.apps import AppConfig


class ReaderstudyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "readerstudy"
    verbose_name = "Reader studies"
