"""How the reader studies plug into the platform, registered once from `AppConfig.ready`: their
permissions, among them the blinding restrictions on the lower apps' tasks and datasets."""

from . import permissions


def register():
    permissions.register()
