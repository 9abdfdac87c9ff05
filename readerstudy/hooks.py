"""How the reader studies plug into the platform, registered once from `AppConfig.ready`: their
permissions, among them the blinding restrictions on the lower apps' tasks and datasets, and their part of the
run page (the SD map's agreement with readers' marks on the run's probes)."""

from inference import extensions

from . import permissions, run_pages


def register():
    permissions.register()
    extensions.add_run_section(run_pages.reader_sd_section)
