from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo benchmark at the top of the layers: it may use every app, and none uses it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo"
    verbose_name = "Demo benchmark"
