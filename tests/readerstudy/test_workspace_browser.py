"""The reader's workspace in headless Chromium: keyboard answering, drafts across reloads, resuming, marks,
and the error state (a study or images that fail to load) with its retry.

Chromium runs with SwiftShader (software WebGL). The page's own state is read from the data-*
attributes it keeps: <body data-reader-state>, #rw-progress[data-done/data-total],
#workspace[data-item] (the item's token), the viewer's data-ready and data-marks.
"""

import pytest
from django.contrib.auth import get_user_model

from readerstudy.models import Answer, Assignment
from tests.support.browser import chromium_page
from tests.support.study_data import make_reader, make_study, make_study_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "reader-pass-123"
#: What must never reach a reader's browser: the run names and case ids of tests/study_data.py.
SECRETS = ("Model A", "Model B", "case0")
VIEWPORT = {"width": 1280, "height": 900}


def log_in(page, site, username, password=PASSWORD):
    page.goto(f"{site.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("form button[type=submit]")


def reader_state(page):
    return page.evaluate(
        """() => ({state: document.body.dataset.readerState,
                   item: document.getElementById('workspace').dataset.item,
                   done: Number(document.getElementById('rw-progress').dataset.done),
                   total: Number(document.getElementById('rw-progress').dataset.total)})"""
    )


def wait_ready(page, previous=None):
    """Until an item (other than `previous`) is shown and its images are on screen, or the study is finished."""
    page.wait_for_function(
        """(previous) => {
            const state = document.body.dataset.readerState;
            const item = document.getElementById('workspace').dataset.item;
            if (state === 'finished') return true;
            return state === 'ready' && item && item !== previous
                && document.querySelector('.cs-viewer')?.dataset.ready === '1';
        }""",
        arg=previous,
        timeout=30_000,
    )
    return reader_state(page)


def open_workspace(page, site, study):
    page.goto(f"{site.url}/read/{study.uid}/")
    return wait_ready(page)


def watch_errors(page):
    """Uncaught exceptions and console errors of the page, collected as they happen."""
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Chromium logs the connection the retry test drops ("Failed to load resource"): that one is expected.
    page.on(
        "console",
        lambda message: message.type == "error"
        and not message.text.startswith("Failed to load resource")
        and errors.append(message.text),
    )
    return errors


def assert_blind(page):
    """Neither the page nor the JSON the reader's browser gets names a run or a case."""
    texts = [page.content()]
    texts += page.evaluate(
        """async () => {
            const config = JSON.parse(document.getElementById('workspace-config').textContent);
            const state = await (await fetch(config.stateUrl)).text();
            const item = JSON.parse(state).item;
            const urls = item ? item.images.map((image) => image.header_url) : [];
            return [state, ...await Promise.all(urls.map(async (url) => (await fetch(url)).text()))];
        }"""
    )
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} reached the reader's browser"


def wait_draft_saved(page):
    page.wait_for_function("() => document.getElementById('workspace').dataset.draft === 'saved'")


def answers_of(study, reader):
    """{token: answer value} for the reader's answered assignments, and the assignments' answer counts."""
    assignments = Assignment.objects.filter(session__study=study, session__reader=reader)
    counts = {a.token: Answer.objects.filter(assignment=a).count() for a in assignments}
    values = {a.assignment.token: a.value for a in Answer.objects.filter(assignment__in=assignments)}
    return values, counts


def test_turing_by_keyboard_resumes_after_reload_and_reaches_the_editors_pages(site):
    task, runs = make_study_task(n_cases=8)
    reader = make_reader()
    get_user_model().objects.create_user("editor", password=PASSWORD, is_staff=True)
    study = make_study(
        task, runs, design="turing", readers=[reader], items_per_model=2
    )  # 4 synthetic (2 cases per run), 4 real (other cases)
    typed = {}
    keys = []

    def lose_first_response(route):
        """The server stores the answer but the browser never hears back (a dropped connection)."""
        keys.append(route.request.post_data_json["key"])
        if len(keys) == 1:
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        errors = watch_errors(page)
        log_in(page, site, reader.username)
        state = open_workspace(page, site, study)
        assert (state["done"], state["total"]) == (0, 8)
        assert page.locator(".cs-viewport").get_attribute("data-label") == "Image"
        assert_blind(page)

        for i in range(state["total"]):
            if i == 3:  # mid-study: a reload comes back to the same item and progress
                page.reload()
                assert wait_ready(page) == state
            call, confidence = ("synthetic", "s") if i % 2 else ("real", "r"), (i % 5) + 1
            page.keyboard.press(call[1].upper() if i % 3 == 0 else call[1])
            page.keyboard.press(str(confidence))
            page.wait_for_function("() => document.getElementById('workspace').dataset.complete === '1'")
            typed[state["item"]] = {"call": call[0], "confidence": confidence}
            if i == 5:
                page.route("**/api/read/*/answers/", lose_first_response)
            page.keyboard.press("Enter")
            state = wait_ready(page, previous=state["item"])
            assert state["done"] == i + 1
            if i == 5:
                page.unroute("**/api/read/*/answers/")
                assert len(keys) == 2 and keys[0] == keys[1]  # retried with the same idempotency key

        assert state["state"] == "finished" and state["item"] == ""
        finished = page.locator("#rw-finished")
        assert finished.is_visible() and "Finished — thank you" in finished.inner_text()
        assert page.locator("#rw-back").get_attribute("href") == "/studies/"
        assert not page.locator(".cs-viewer").count()  # the viewer is gone
        assert_blind(page)

        editor = page.context.browser.new_page(viewport=VIEWPORT)
        editor_errors = []
        editor.on("pageerror", lambda error: editor_errors.append(str(error)))
        log_in(editor, site, "editor")
        editor.goto(f"{site.url}/studies/{study.pk}/")
        row = editor.locator(f'#progress tr[data-reader="{reader.username}"]')
        assert "8 / 8" in row.inner_text()
        response = editor.goto(f"{site.url}/studies/{study.pk}/analysis/")
        analysis_status = response.status
        assert editor_errors == []  # study_analysis.js ran (one reader: no AUC analysis, so no plot)
        answer_count = editor.locator("#answer-count").all_inner_texts()
        reader_row = editor.locator(f'#turing-readers tr[data-reader="{reader.username}"] td').all_inner_texts()
        assert not errors, errors

    values, counts = answers_of(study, reader)
    assert set(counts.values()) == {1}  # every assignment: exactly one answer
    assert values == typed
    # The analysis page counts the reader's answers.
    assert analysis_status == 200
    assert answer_count == ["8 answers"]
    assert reader_row[:2] == [reader.username, "8"]


def test_likert_by_keyboard_restores_a_draft_rating_after_reload(site):
    task, runs = make_study_task(n_cases=4, n_runs=1)
    reader = make_reader()
    study = make_study(task, runs, design="likert", readers=[reader], items_per_model=1)

    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        errors = watch_errors(page)
        log_in(page, site, reader.username)
        state = open_workspace(page, site, study)
        scales = page.locator(".rw-scale")
        assert scales.count() == 2
        assert "rw-active" in scales.nth(0).get_attribute("class")
        # Each scale shows its five anchors.
        assert "Indistinguishable from a real acquisition" in scales.nth(0).inner_text()

        page.keyboard.press("4")  # rates "realism" and moves on to the next scale
        assert "rw-active" in scales.nth(1).get_attribute("class")
        wait_draft_saved(page)

        page.reload()
        assert wait_ready(page) == state
        checked = page.locator('.rw-scale[data-scale="realism"] [aria-checked="true"]')
        assert checked.get_attribute("data-value") == "4"
        assert "rw-active" in scales.nth(1).get_attribute("class")  # the first open scale

        page.keyboard.press("Enter")  # incomplete: nothing is sent
        assert page.locator("#rw-message").is_visible()
        page.keyboard.press("ArrowUp")
        page.keyboard.press("5")  # re-rates realism, then diagnostic quality has the focus
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        after = wait_ready(page, previous=state["item"])
        assert after["done"] == 1
        assert not errors, errors

    values, _ = answers_of(study, reader)
    assert values == {state["item"]: {"scores": {"realism": 5, "diagnostic_quality": 2}}}


def test_pairwise_by_arrow_keys(site):
    task, runs = make_study_task(n_cases=4)
    reader = make_reader()
    study = make_study(task, runs, design="pairwise", readers=[reader], items_per_model=3, allow_no_preference=True)
    chosen = {}

    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        errors = watch_errors(page)
        log_in(page, site, reader.username)
        state = open_workspace(page, site, study)
        labels = page.evaluate("[...document.querySelectorAll('.cs-viewport')].map(e => e.dataset.label)")
        assert labels == ["Left", "Right"]
        assert_blind(page)
        for key, choice in [("ArrowLeft", "left"), ("ArrowRight", "right"), ("0", "none")]:
            page.keyboard.press(key)
            chosen[state["item"]] = {"choice": choice}
            page.keyboard.press("Enter")
            state = wait_ready(page, previous=state["item"])
        assert state["state"] == "finished"
        assert not errors, errors

    values, _ = answers_of(study, reader)
    assert values == chosen


def test_hallucination_point_by_mouse_survives_a_reload_and_none_by_keyboard(site):
    task, runs = make_study_task(n_cases=4, n_runs=1)
    reader = make_reader()
    study = make_study(task, runs, design="hallucination", readers=[reader], items_per_model=1)  # 1 synthetic, 1 real

    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        errors = watch_errors(page)
        log_in(page, site, reader.username)
        first = open_workspace(page, site, study)
        assert_blind(page)
        page.keyboard.press("p")
        assert page.locator(".cs-viewer").get_attribute("data-mark-tool") == "point"

        viewport = page.locator(".cs-viewport")
        box = viewport.bounding_box()
        # The 24 × 24 image is fitted into the viewport, centred: the screen pixels per image pixel.
        scale = min(box["width"], box["height"]) / 24
        dx, dy = 5 * scale, -3 * scale  # 5 pixels right of the centre, 3 up
        page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)
        page.wait_for_function("() => document.querySelector('.cs-viewer').dataset.marks === '1'")
        assert page.locator("#rw-mark-count").inner_text() == "1 mark"
        wait_draft_saved(page)

        page.reload()
        assert wait_ready(page) == first
        assert page.locator(".cs-viewer").get_attribute("data-marks") == "1"  # the draft's mark is back
        assert page.locator("#rw-restored").is_visible()
        page.keyboard.press("Enter")
        second = wait_ready(page, previous=first["item"])

        page.keyboard.press("n")
        assert page.locator(".rw-none").get_attribute("aria-pressed") == "true"
        page.keyboard.press("Enter")
        assert wait_ready(page, previous=second["item"])["state"] == "finished"
        assert not errors, errors

    values, _ = answers_of(study, reader)
    assert values[second["item"]] == {"none": True}
    marks = values[first["item"]]["marks"]
    assert len(marks) == 1 and marks[0]["type"] == "point" and marks[0]["slice"] == 0
    [[x, y]] = marks[0]["points"]
    assert abs(x - 17) < 1 and abs(y - 9) < 1, (x, y)  # the centre (12, 12) + (5, -3), in image pixels


def test_a_study_or_images_that_fail_to_load_show_the_error_and_come_back_on_retry(site):
    task, runs = make_study_task(n_cases=4, n_runs=1)
    reader = make_reader()
    study = make_study(task, runs, design="turing", readers=[reader], items_per_model=1)
    failing = {"state": True, "images": True}
    image_requests = []

    def state(route):
        if failing["state"]:
            route.fulfill(status=500, json={"detail": "The database is restarting."})
        else:
            route.continue_()

    def images(route):
        image_requests.append(route.request.url)
        if failing["images"]:
            route.abort("connectionreset")
        else:
            route.continue_()

    def wait_state(value):
        page.wait_for_function("(value) => document.body.dataset.readerState === value", arg=value, timeout=30_000)

    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        uncaught = []
        page.on("pageerror", lambda error: uncaught.append(str(error)))
        log_in(page, site, reader.username)
        page.route("**/api/read/*/state/", state)
        page.route(lambda url: "/api/read/items/" in url and "/data/" in url, images)
        page.goto(f"{site.url}/read/{study.uid}/")

        wait_state("error")  # a 500 is not retried by itself: it is said, with a way to try again
        box = page.locator("#rw-viewer .error-box")
        assert box.inner_text().startswith("The study could not be loaded: The database is restarting.")
        assert reader_state(page)["item"] == ""
        failing["state"] = False
        page.keyboard.press("Enter")

        wait_state("error")  # the state came; its images did not
        assert box.inner_text().startswith("The images could not be shown")
        item = reader_state(page)["item"]
        assert item and image_requests
        page.keyboard.press("r")  # the question can be answered meanwhile
        tries = len(image_requests)
        box.locator("button", has_text="Try again").click()
        while len(image_requests) <= tries:  # it tries again (and fails again)
            page.wait_for_timeout(50)
        wait_state("error")
        assert box.inner_text().startswith("The images could not be shown")

        failing["images"] = False
        page.keyboard.press("Enter")
        assert wait_ready(page)["item"] == item
        assert page.locator("[data-action=call][data-value=real]").get_attribute("aria-checked") == "true"
        page.keyboard.press("4")
        page.keyboard.press("Enter")
        assert wait_ready(page, previous=item)["done"] == 1
        assert uncaught == []

    values, _ = answers_of(study, reader)
    assert values == {item: {"call": "real", "confidence": 4}}
