"""Probe sets built before `Dataset.private_to` existed become private to their task (its organisers only)."""

from django.db import migrations


def mark_private(apps, schema_editor):
    ProbeSet = apps.get_model("evaluation", "ProbeSet")
    Dataset = apps.get_model("inference", "Dataset")
    for probe_set in ProbeSet.objects.exclude(dataset=None).only("dataset_id", "task_id"):
        Dataset.objects.filter(pk=probe_set.dataset_id).update(private_to_id=probe_set.task_id, is_public=False)


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0007_probe_uncertainty"),
        ("inference", "0010_dataset_private_to"),
    ]

    operations = [migrations.RunPython(mark_private, migrations.RunPython.noop)]
