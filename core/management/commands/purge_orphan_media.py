"""Delete stored files that no row refers to (left by deletions before files followed their rows, by
a crash between writing a file and committing its row, or by hand)."""

from django.core.management.base import BaseCommand
from django.template.defaultfilters import filesizeformat

from core import media


class Command(BaseCommand):
    help = "Delete media files no database row refers to (older than --min-age-hours)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List them; delete nothing.")
        parser.add_argument(
            "--min-age-hours", type=float, default=1.0,
            help="Leave newer files alone: a job may be writing them before its row commits (default 1).",
        )  # fmt: skip

    def handle(self, *args, dry_run, min_age_hours, **options):
        names, total = media.purge_orphans(min_age_s=min_age_hours * 3600, dry_run=dry_run)
        for name in names:
            self.stdout.write(name)
        verb = "would be deleted" if dry_run else "deleted"
        self.stdout.write(f"{len(names)} orphaned file(s), {filesizeformat(total)}, {verb}.")
