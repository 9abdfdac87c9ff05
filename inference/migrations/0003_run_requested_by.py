from django.db import migrations


class Migration(migrations.Migration):
    """Runs became a kind of core.models.Job: who asked for a job is `requested_by` on every kind."""

    dependencies = [("inference", "0002_model_validation_requested_at")]

    operations = [migrations.RenameField("run", "created_by", "requested_by")]
