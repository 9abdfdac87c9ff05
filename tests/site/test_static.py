"""Static files as the site serves them outside DEBUG: collectstatic with the manifest storage, hashed names in
the pages and in the scripts' module imports, whitenoise's year-long immutable caching for them, and the small
plotly bundle, deferred."""

import re
from urllib.parse import urljoin

import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.test import Client, override_settings

from core.staticfiles import HashedModulesStorage
from tests.support.factories import make_task
from tests.support.leaderboard_data import populate

pytestmark = pytest.mark.django_db

MANIFEST = {"BACKEND": "core.staticfiles.HashedModulesStorage"}
HASHED = re.compile(r"\.[0-9a-f]{12}\.(js|css)$")


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


def test_the_storage_rewrites_module_imports_dynamic_imports_and_the_worker_address(tmp_path):
    source = tmp_path / "src"
    (source / "js").mkdir(parents=True)
    (source / "js" / "x.js").write_text("export const a = 1;\n")
    (source / "js" / "w.js").write_text("self.onmessage = () => {};\n")
    (source / "js" / "page.js").write_text(
        'import {a} from "./x.js";\nimport * as all from "./x.js";\nexport { a as b } from "./x.js";\n'
        'const later = import("./x.js");\nconst name = "./x.js";\nimport(name);\n'
        'new Worker(new URL("./w.js",import.meta.url), {type: "module"});\n'
    )
    storage = HashedModulesStorage(location=tmp_path / "out", base_url="/static/")
    files = FileSystemStorage(location=source)
    names = ["js/x.js", "js/w.js", "js/page.js"]
    for name in names:
        with files.open(name) as f:
            storage._save(name, f)
    processed = list(storage.post_process({name: (files, name) for name in names}))
    assert not [error for *_, error in processed if isinstance(error, Exception)]
    x, w = storage.stored_name("js/x.js").split("/")[1], storage.stored_name("js/w.js").split("/")[1]
    assert re.fullmatch(r"x\.[0-9a-f]{12}\.js", x) and re.fullmatch(r"w\.[0-9a-f]{12}\.js", w)
    page = (tmp_path / "out" / storage.stored_name("js/page.js")).read_text()
    assert page.count(f'"./{x}"') == 4  # import {a}, import * as, export … from, import("…")
    assert f'new URL("./{w}", import.meta.url)' in page
    assert 'const name = "./x.js";' in page and "import(name);" in page  # not an import: left alone


MODULE_REFERENCES = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new\s+URL\(\s*)["'](\.{1,2}/[^"']+?\.js)["']"""
)


def served_immutable(client, url):
    """The file's bytes, checked served with year-long immutable caching. Read to the end: the test client
    then ends the request without closing the test's database connection (a close() would)."""
    response = client.get(url)
    assert response.status_code == 200, url
    assert response["Cache-Control"] == "max-age=315360000, public, immutable", (url, response["Cache-Control"])
    return b"".join(response.streaming_content)


def referenced(client, page_url):
    """The static URLs a page loads: scripts, stylesheets and the viewer bundle its data-viewer-src names."""
    html = client.get(page_url).content.decode()
    urls = re.findall(r'<script[^>]*\ssrc="(/static/[^"]+)"', html)
    urls += re.findall(r'<link[^>]*\shref="(/static/[^"]+)"', html)
    urls += re.findall(r'data-viewer-src="(/static/[^"]+)"', html)
    return html, urls


def test_every_script_and_module_import_of_the_leaderboard_and_viewer_is_hashed_and_immutable(collected):
    task = make_task(n_cases=4)
    populate(task, n_runs=2, n_cases=4)
    case = task.dataset.cases.order_by("case_id").first()
    client = Client()
    seen = set()
    for page_url in [f"/tasks/{task.slug}/leaderboard/", f"/cases/{case.pk}/"]:
        html, urls = referenced(client, page_url)
        assert any(url.endswith(".js") for url in urls) and any(url.endswith(".css") for url in urls), page_url
        pending = list(urls)
        while pending:
            url = pending.pop()
            if url in seen:
                continue
            seen.add(url)
            assert HASHED.search(url), f"{page_url} loads {url} by a plain name"
            body = served_immutable(client, url)
            if url.endswith(".js"):
                # Every relative module reference (import, export … from, import("…"), the worker's URL).
                pending += [urljoin(url, ref) for ref in MODULE_REFERENCES.findall(body.decode())]
    assert any("/viewer/workers/computeWorker." in url for url in seen)  # the bundle's worker, hashed
    assert any("/js/dom." in url for url in seen)  # the page scripts' shared module, hashed

    leaderboard = client.get(f"/tasks/{task.slug}/leaderboard/").content.decode()
    plotly = re.search(r'<script([^>]*)src="/static/vendor/plotly/plotly\.min\.[0-9a-f]{12}\.js"', leaderboard)
    assert plotly and " defer" in plotly.group(1)  # not parser-blocking: the page shows before plotly runs
