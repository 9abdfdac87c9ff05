"""`manage.py import_dataset NAME PATH`: import a zip archive or folder of medical images as a dataset."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.models import CaseImage
from inference.services.datasets import DatasetImportError, import_dataset


class Command(BaseCommand):
    help = (
        "Import a dataset from a zip archive or folder. Case layout: one folder per case holding input "
        "(or input_0, input_1, …), reference, label and an optional metadata.json. Flat layout: one case "
        "per image file or DICOM series folder. All or nothing: every problem is listed and nothing is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Name of the new dataset (unique).")
        parser.add_argument("path", type=Path, help="Zip archive, folder, or a single image file.")
        parser.add_argument("--description", default="")
        parser.add_argument("--source", default="", help="Where the files came from (defaults to the path).")
        parser.add_argument("--public", action="store_true", help="Readable without login.")

    def handle(self, *args, name, path, description, source, public, **options):
        path = path.expanduser()
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        try:
            dataset = import_dataset(
                name, path, description=description, source_label=source or str(path), is_public=public
            )
        except DatasetImportError as error:
            raise CommandError(f"Dataset '{name}' was not imported; nothing was stored.\n{error}") from error
        images = CaseImage.objects.filter(case__dataset=dataset).select_related("case")
        if options["verbosity"] > 1:
            for image in images:
                self.stdout.write(f"  {image.case.case_id} {image.role}[{image.index}] {tuple(image.shape)}")
        cases = dataset.cases.count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported dataset '{dataset.name}' (id {dataset.pk}): {cases} case{'s' if cases != 1 else ''}, "
                f"{images.count()} images."
            )
        )
