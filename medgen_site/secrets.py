"""The SECRET_KEY: from the environment, a file, or (embedded default only) generated once and kept."""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

KEY_FILE_NAME = "secret_key"


def read_secret_key(data_dir, *, configured):
    """SECRET_KEY, else the contents of SECRET_KEY_FILE; for a configured deployment without either,
    refuse to start; for the embedded default, the key in `data_dir/secret_key`, made on first use."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    if path := os.environ.get("SECRET_KEY_FILE"):
        return Path(path).read_text().strip()
    if configured:
        raise ImproperlyConfigured(
            "This deployment has DATABASE_URL or CELERY_BROKER_URL set but no SECRET_KEY: set SECRET_KEY (or "
            "SECRET_KEY_FILE) to a long random value shared by the web servers and workers."
        )
    path = Path(data_dir) / KEY_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()
