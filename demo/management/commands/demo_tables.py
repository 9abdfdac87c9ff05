"""Print the demo's two leaderboards as the Markdown tables the README reports: the numbers the boards show
(`evaluation.leaderboard.cache.build`, the organisers' view), one row per run, a column per tier.

Run it after `make run` has filled every tier: ``python manage.py demo_tables``. A cell the board has not
filled yet prints "–", and the command says which tiers are still empty, so a table is never taken early
by mistake.
"""

from django.core.management.base import BaseCommand, CommandError

from evaluation.leaderboard import cache
from inference.models import Task

from .seed_demo import RECONSTRUCTION_SLUG, TRANSLATION_SLUG

#: (column key or key prefix, header) per task, in the order printed; a prefix ends with ":".
COLUMNS = {
    TRANSLATION_SLUG: (
        ("ssim", "SSIM"),
        ("psnr", "PSNR (dB)"),
        ("frd:radiomics", "FRD (radiomics)"),
        ("downstream_dice", "Downstream Dice"),
        ("reader_auc:", "Reader AUC"),
        ("latency_p50", "Latency p50 (ms)"),
    ),
    RECONSTRUCTION_SLUG: (
        ("psnr", "PSNR (dB)"),
        ("ssim", "SSIM"),
        ("frd:radiomics", "FRD (radiomics)"),
        ("latency_p50", "Latency p50 (ms)"),
    ),
}


def cell_text(cell) -> str:
    if cell is None or cell.value is None:
        return "–"
    return f"{cell.text} {cell.ci_text}".strip()


def resolve(board, key: str):
    """The board's column for `key`, or for the first key starting with the prefix `key` (e.g. the study's AUC)."""
    for column in board.columns:
        if column.key == key or (key.endswith(":") and column.key.startswith(key)):
            return column
    return None


#: Columns that only some runs have (the reader study reads five of the translation runs).
SOME_RUNS = ("reader_auc:",)


def table(board, spec) -> tuple[list[str], list[str]]:
    """(Markdown lines, "header (filled/runs runs)" of each column that is not filled yet: a run without a value,
    or for a column of `SOME_RUNS` no run with one)."""
    columns = [(resolve(board, key), key, header) for key, header in spec]
    headers = ["rank", "run", "family", "steps", *(header for _column, _key, header in columns)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    filled = {header: 0 for _column, _key, header in columns}
    for row in board.rows:
        steps = (row.sampling or {}).get("sampling_steps")
        cells = []
        for column, _key, header in columns:
            cell = row.cells.get(column.key) if column else None
            filled[header] += cell is not None and cell.value is not None
            cells.append(cell_text(cell))
        rank = "–" if row.rank is None else str(row.rank)
        lines.append("| " + " | ".join([rank, row.run_name, row.family or "–", str(steps or "–"), *cells]) + " |")
    runs = len(board.rows)
    empty = [
        f"{header} ({filled[header]}/{runs} runs)"
        for _column, key, header in columns
        if filled[header] == 0 or (key not in SOME_RUNS and filled[header] < runs)
    ]
    return lines, empty


class Command(BaseCommand):
    help = "Print the demo leaderboards as Markdown tables (README), with CIs; says which tiers are still empty."

    def handle(self, *args, **options):
        incomplete = []
        for slug, spec in COLUMNS.items():
            task = Task.objects.filter(slug=slug).first()
            if task is None:
                raise CommandError(f"No task '{slug}': seed the demo first (make run, or manage.py seed_demo).")
            board = cache.build(task, private=True)
            lines, empty = table(board, spec)
            self.stdout.write(f"\n**{task.name}** ({len(board.rows)} runs. {board.ranking_text})\n")
            self.stdout.write("\n".join(lines) + "\n")
            incomplete += [f"{slug}: {header}" for header in empty]
        if incomplete:
            self.stderr.write("Not filled yet: " + ", ".join(incomplete))
