"""Stored files follow their rows: a deleted row's files are deleted once the deletion commits, and
`purge_orphan_media` removes files no row refers to.

Every model with a `FileField` is covered, whatever deletes the row (the admin, a queryset's
`delete()`, a cascade from a task or a run): `connect_file_cleanup` connects one `post_delete`
receiver per such model when the apps are ready. A deletion that rolls back keeps its files. A name
that a row of the same field refers to again when the deletion commits (a job that replaced a row
and wrote the same deterministic name in that transaction) is kept.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path, PurePosixPath

from django.apps import apps
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models.signals import post_delete

log = logging.getLogger(__name__)


def file_fields(model):
    return [field for field in model._meta.get_fields() if isinstance(field, models.FileField)]


def models_with_files():
    return [model for model in apps.get_models() if file_fields(model)]


def _still_referenced(model, field_name, name):
    return model._default_manager.filter(**{field_name: name}).exists()


def _delete_stored(model, names):
    for field_name, name in names:
        if _still_referenced(model, field_name, name):
            continue
        try:
            if default_storage.exists(name):
                default_storage.delete(name)
        except OSError:
            log.warning("could not delete %s after its row was deleted", name, exc_info=True)
            continue
        _remove_empty_folders(name)


def _remove_empty_folders(name):
    """Local storage: the folders a deleted file leaves empty (a run's `runs/<uid>/`), up to the media root."""
    try:
        path = default_storage.path(name)
    except NotImplementedError:  # remote storage has no folders
        return
    root = Path(default_storage.location).resolve()
    folder = Path(path).resolve().parent
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()  # only an empty folder
        except OSError:
            return
        folder = folder.parent


def delete_files_on_commit(sender, instance, **kwargs):
    """`post_delete` receiver: the row's stored files, deleted when the transaction commits."""
    names = [(field.name, getattr(instance, field.attname).name) for field in file_fields(sender)]
    names = [(field_name, name) for field_name, name in names if name]
    if names:
        transaction.on_commit(lambda: _delete_stored(sender, names), robust=True)


def connect_file_cleanup():
    for model in models_with_files():
        post_delete.connect(delete_files_on_commit, sender=model, dispatch_uid=f"core.media.{model._meta.label}")


def referenced_names():
    """Every stored file name a row refers to."""
    names = set()
    for model in models_with_files():
        for field in file_fields(model):
            names.update(
                model._default_manager.exclude(**{field.name: ""}).values_list(field.name, flat=True).iterator()
            )
    return names


def stored_names(folder=""):
    """Every file in the default storage under `folder`, as storage names ("runs/<uid>/3_s0.npy")."""
    try:
        folders, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield str(PurePosixPath(folder, name)) if folder else name
    for child in folders:
        yield from stored_names(str(PurePosixPath(folder, child)) if folder else child)


def orphan_files(*, min_age_s: float = 3600.0):
    """Stored files no row refers to, older than `min_age_s` (a file written by a transaction still
    open has no committed row yet: a recent file is left alone)."""
    kept = referenced_names()
    now = time.time()
    for name in stored_names():
        if name in kept:
            continue
        try:
            modified = default_storage.get_modified_time(name).timestamp()
        except (OSError, NotImplementedError):
            modified = now
        if now - modified >= min_age_s:
            yield name


def purge_orphans(*, min_age_s: float = 3600.0, dry_run: bool = False) -> tuple[list[str], int]:
    """(the orphaned files, their total bytes); deleted unless `dry_run`."""
    names, total = [], 0
    for name in orphan_files(min_age_s=min_age_s):
        try:
            total += default_storage.size(name)
        except OSError:
            pass
        names.append(name)
        if not dry_run:
            default_storage.delete(name)
            _remove_empty_folders(name)
    return names, total
