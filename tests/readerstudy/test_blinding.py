"""Blinding is a security property: nothing a reader can reach tells real from synthetic, or which run.

Each test states one claim of the issue and checks it over HTTP as the reader's browser sees it.
"""

import json
import re

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inference.models import CaseOutput
from readerstudy import blinding
from readerstudy.models import Assignment, ImageSource, StudyImage
from readerstudy.services import reading, studies
from tests.support.study_data import make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def turing(client):
    reader = make_reader()
    task, runs = make_study_task(n_cases=12, n_runs=2)
    study = make_study(task, runs, readers=[reader], items_per_model=4, attention_checks=1, repeated_items=2)
    client.force_login(reader)
    return study, reader, runs, client


def _assignments(study, reader):
    return list(Assignment.objects.filter(session__study=study, session__reader=reader).select_related("item"))


def _secrets(study, runs):
    """Strings that would give an item away: run and model names, case ids, source words, pks."""
    words = {"real", "synthetic", "attention", "reference", "output", "Model A", "Model B"}
    words |= {run.name for run in runs} | {str(run.uid) for run in runs}
    words |= set(study.images.values_list("case__case_id", flat=True))
    return words


def _leaks(text, secrets):
    return sorted(word for word in secrets if re.search(rf"(?<![A-Za-z0-9_-]){re.escape(word)}(?![A-Za-z0-9_-])", text))


def _get_current(client, study):
    return client.get(f"/api/read/{study.uid}/state/").json()


def _answer(client, study, token, key, answer=None):
    body = {"item": token, "answer": answer or {"call": "real", "confidence": 3}, "key": key}
    return client.post(f"/api/read/{study.uid}/answers/", json.dumps(body), content_type="application/json")


def test_items_reach_the_browser_only_as_random_tokens(turing):
    study, reader, runs, client = turing
    state = _get_current(client, study)
    item = state["item"]
    assert set(state) == {"total", "done", "finished", "item", "next"}
    assert set(item) == {"token", "images", "draft"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", item["token"])
    # The next item (for prefetching) is as blind: a token and its images' headers, no draft.
    assert set(state["next"]) == {"token", "images"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", state["next"]["token"]) and state["next"]["token"] != item["token"]
    assert set(state["next"]["images"][0]) == {"header_url", "header"}
    [image] = item["images"]
    assert image["header_url"] == f"/api/read/items/{item['token']}/images/0/"
    # The header comes inline too (one request fewer per item), exactly as the header endpoint serves it.
    assert image["header"] == client.get(image["header_url"]).json()
    assert image["header"]["data_url"] == f"/api/read/items/{item['token']}/images/0/data/"
    # A token is per reader and position: the same item has another token for another reader.
    other = make_reader("reader2")
    studies.invite(study, readers=[other])
    tokens = {a.item_id: a.token for a in _assignments(study, reader)}
    other_tokens = {a.item_id: a.token for a in _assignments(study, other)}
    assert not set(tokens.values()) & set(other_tokens.values())
    # A repeated item is a new token too, so a reader cannot recognise a repeat by its address.
    repeats = study.items.filter(kind="repeat")
    assert repeats.count() == 2
    for repeat in repeats:
        assert tokens[repeat.pk] != tokens[repeat.repeat_of_id]


def test_page_state_and_headers_name_no_run_case_or_source(turing):
    study, reader, runs, client = turing
    secrets = _secrets(study, runs)
    page = client.get(f"/read/{study.uid}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert _leaks(html, secrets - {"real", "synthetic"}) == []  # the question itself says "real or synthetic"
    for _ in range(study.items.count()):
        state = _get_current(client, study)
        if state["finished"]:
            break
        text = json.dumps(state)
        assert _leaks(text, secrets) == []
        header_response = client.get(state["item"]["images"][0]["header_url"])
        header = header_response.json()
        assert _leaks(json.dumps(header), secrets) == []
        data = client.get(header["data_url"])
        for response in (header_response, data):
            assert response["Cache-Control"] == "private, no-store"
            assert "Content-Disposition" not in response and "Last-Modified" not in response
            assert "ETag" not in response
            assert _leaks(" ".join(f"{k}: {v}" for k, v in response.items()), secrets) == []
        assert _answer(client, study, state["item"]["token"], f"k-{state['done']}").status_code == 200


def test_real_and_synthetic_images_share_format_grid_and_size(turing):
    study, reader, runs, client = turing
    headers, payloads = {}, {}
    for assignment in _assignments(study, reader):
        image = assignment.item.image
        # Reach every image as the reader would: answer up to it.
        state = _get_current(client, study)
        while state["item"]["token"] != assignment.token:
            _answer(client, study, state["item"]["token"], f"k-{state['done']}")
            state = _get_current(client, study)
        header = client.get(f"/api/read/items/{assignment.token}/images/0/").json()
        data = client.get(header["data_url"]).content
        headers.setdefault(image.source, []).append(header)
        payloads.setdefault(image.source, []).append(data)
    assert {ImageSource.REAL, ImageSource.SYNTHETIC} <= set(headers)

    def shape_of_header(header):
        return {k: (type(v).__name__ if k in ("window", "presets", "range") else v) for k, v in header.items()
                if k != "data_url"}  # fmt: skip

    # Same keys and the same non-numeric values (kind, display, dtype, shape, spacing, channels, bytes).
    real_forms = {json.dumps(shape_of_header(h), sort_keys=True) for h in headers[ImageSource.REAL]}
    synthetic_forms = {json.dumps(shape_of_header(h), sort_keys=True) for h in headers[ImageSource.SYNTHETIC]}
    assert real_forms == synthetic_forms and len(real_forms) == 1
    # The same value grid: every value a multiple of 1/4095 in [0, 1], the full range used, whatever the source.
    for source in (ImageSource.REAL, ImageSource.SYNTHETIC):
        for data in payloads[source]:
            values = np.frombuffer(data, dtype="<f4")
            assert len(data) == 24 * 24 * 4
            steps = values * blinding.LEVELS
            np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
            assert values.min() == 0 and values.max() == 1
    # The stored originals do differ (integer-valued references, continuous outputs): blinding removed that.
    output = CaseOutput.objects.filter(run=runs[0]).first().load()
    assert not np.allclose(output, np.round(output))


def test_image_files_are_stored_under_random_names():
    task, runs = make_study_task(n_cases=8, n_runs=1)
    study = make_study(task, runs, items_per_model=3)
    names = list(StudyImage.objects.filter(study=study).values_list("array", flat=True))
    assert len(names) == 6
    for name in names:
        assert re.fullmatch(rf"readerstudies/{study.uid}/[0-9a-f]{{32}}\.npy", name)


def test_order_is_a_seeded_shuffle_stored_per_reader(turing):
    study, reader, runs, client = turing
    other = make_reader("reader2")
    studies.invite(study, readers=[other])
    order = [a.item_id for a in _assignments(study, reader)]
    other_order = [a.item_id for a in _assignments(study, other)]
    assert sorted(order) == sorted(other_order) == sorted(study.items.values_list("pk", flat=True))
    assert order != other_order
    # The build order groups items by source; no reader sees it.
    build_order = list(study.items.order_by("index").values_list("pk", flat=True))
    assert order != build_order and other_order != build_order
    # Stored: opening the session again changes nothing.
    session = reading.open_session(study, reader=reader)
    assert [a.item_id for a in session.assignments.order_by("position")] == order
    # Repeats come after their originals.
    position = {item: p for p, item in enumerate(order)}
    for repeat in study.items.filter(kind="repeat"):
        assert position[repeat.pk] > position[repeat.repeat_of_id]


def test_image_requests_take_the_same_path_for_either_source(turing):
    """A real and a synthetic image are served by the same code path: the same SQL queries (in number and,
    but for the ids, in text), the same response headers and the same number of bytes.

    (How long they take is measured in bench/bench_blinding.py, quiet and under load: timings in a test
    would depend on the machine.)"""
    study, reader, runs, client = turing
    by_source = {}
    state = _get_current(client, study)
    for assignment in _assignments(study, reader):
        if assignment.item.kind == "regular":
            by_source.setdefault(assignment.item.image.source, assignment)
    assert set(by_source) == {ImageSource.REAL, ImageSource.SYNTHETIC}
    # Let the reader reach both items (images of answered items stay readable while the study runs).
    last = max(a.position for a in by_source.values())
    while state["done"] <= last:
        _answer(client, study, state["item"]["token"], f"t-{state['done']}")
        state = _get_current(client, study)
    seen = {}
    for source, assignment in by_source.items():
        url = f"/api/read/items/{assignment.token}/images/0/"
        client.get(url)  # anything cached on a first request is cached for both
        with CaptureQueriesContext(connection) as header_queries:
            header_response = client.get(url)
        header = header_response.json()
        with CaptureQueriesContext(connection) as data_queries:
            data_response = client.get(header["data_url"])
        assert header_response.status_code == data_response.status_code == 200
        seen[source] = (
            [re.sub(r"\b\d+\b|'[^']*'", "?", q["sql"]) for q in header_queries.captured_queries],
            [re.sub(r"\b\d+\b|'[^']*'", "?", q["sql"]) for q in data_queries.captured_queries],
            sorted(header_response.headers), sorted(data_response.headers), len(data_response.content),
            sorted(header),
        )  # fmt: skip
    real, synthetic = seen[ImageSource.REAL], seen[ImageSource.SYNTHETIC]
    assert real[0] and real[1], "no queries seen: the comparison would be empty"
    assert len(real[0]) == len(synthetic[0]) and len(real[1]) == len(synthetic[1])
    assert real == synthetic
