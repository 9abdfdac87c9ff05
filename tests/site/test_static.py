"""Static files as the site serves them outside DEBUG: collectstatic with the manifest storage, hashed names in
the pages, whitenoise's year-long immutable caching for them, and the small plotly bundle."""

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

from tests.support.factories import make_task

pytestmark = pytest.mark.django_db

MANIFEST = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """collectstatic (once for the module: about 20 s) into a folder of its own, with the storage settings.py
    names outside DEBUG."""
    root = tmp_path_factory.mktemp("collected") / "static"
    with override_settings(STATIC_ROOT=root, STORAGES={**settings.STORAGES, "staticfiles": MANIFEST}):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


def test_the_settings_name_the_manifest_storage_outside_debug():
    assert not settings.DEBUG
    from medgen_site import settings as site_settings

    assert site_settings.STORAGES["staticfiles"] == MANIFEST


def test_pages_name_hashed_files_that_whitenoise_serves_as_immutable(collected):
    task = make_task(n_cases=1)
    client = Client()  # a new handler: whitenoise reads the collected folder
    page = client.get(f"/tasks/{task.slug}/").content.decode()
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page)
    assert stylesheets and all(re.search(r"\.[0-9a-f]{12}\.css$", url) for url in stylesheets)
    response = client.get(stylesheets[0], HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert response["Content-Encoding"] == "gzip"
    plain = client.get(re.sub(r"\.[0-9a-f]{12}(\.css)$", r"\1", stylesheets[0]))
    assert plain.status_code == 200 and plain["Cache-Control"] == "max-age=60, public"


def test_plotly_and_the_viewer_bundle_are_hashed_and_plotly_is_the_partial_bundle(collected):
    manifest = (collected / "staticfiles.json").read_text()
    plotly = re.search(r'"vendor/plotly/plotly\.min\.js": "(vendor/plotly/plotly\.min\.[0-9a-f]{12}\.js)"', manifest)
    viewer = re.search(r'"viewer/viewer\.js": "(viewer/viewer\.[0-9a-f]{12}\.js)"', manifest)
    assert plotly and viewer
    served = collected / plotly.group(1)
    head = served.read_text()[:200]
    assert "plotly.js (cartesian - minified)" in head
    assert served.stat().st_size < 2_000_000  # the full bundle is 4.8 MB
    response = Client().get(f"/static/{viewer.group(1)}", HTTP_ACCEPT_ENCODING="gzip")
    assert "immutable" in response["Cache-Control"]
