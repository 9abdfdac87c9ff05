"""An organiser's whole path through the site in Chromium (1440×900), with a real worker and never the
Django admin: import a dataset (a zip of .npy cases with label masks; a broken one first, its per-file
errors listed), create a task on it with a downstream evaluation, upload a TorchScript model and wait
for it to be valid, start a run, see it evaluated (and its segmenter trained) and on the task's
leaderboard, then create a reader study on the task and start it, so that its reader finds it under
"Your reading".

The organiser organises one task already (what makes them an organiser: `participation.add_organiser`,
a staff decision); everything after that is done on the site's pages."""

import numpy as np
import pytest

from inference.services import participation
from tests.support.browser import chromium_page
from tests.support.factories import Scale, make_task, save_torchscript
from tests.support.files import float32_npy, npy_bytes, write_zip
from tests.support.study_data import make_reader

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SLOW = 90_000  # ms: a job on a shared two-core machine


def _cases(tmp_path, n=4):
    """The archive, and the mean PSNR of the x2 model over its cases (numpy, float64: the reference)."""
    rng = np.random.default_rng(3)
    entries, pairs = {}, []
    for i in range(n):
        reference = rng.random((1, 16, 16)).astype(np.float32)
        image = (reference * 0.5 + 0.1 * rng.random((1, 16, 16))).astype(np.float32)
        label = np.zeros((1, 16, 16), dtype=np.uint8)
        label[0, 4 + i : 10 + i, 4:10] = 1
        entries[f"case{i}/input.npy"] = float32_npy(image)
        entries[f"case{i}/reference.npy"] = float32_npy(reference)
        entries[f"case{i}/label.npy"] = npy_bytes(label)
        pairs.append((2.0 * image.astype(np.float64), reference.astype(np.float64)))
    references = np.stack([reference for _, reference in pairs])
    data_range = references.max() - references.min()  # the task leaves data_range empty
    psnr = np.mean([10 * np.log10(data_range**2 / np.mean((out - ref) ** 2)) for out, ref in pairs])
    return write_zip(tmp_path / "cases.zip", entries), psnr


def _login(page, url, username, password):
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_an_organiser_runs_a_benchmark_and_a_study_from_the_site(site, worker_factory, django_user_model, tmp_path):
    olga = django_user_model.objects.create_user("olga", password="olga-pass-123")
    participation.add_organiser(make_task(n_cases=1, slug="earlier", is_public=False), user=olga)
    make_reader("rita")
    archive, expected_psnr = _cases(tmp_path)
    broken = write_zip(
        tmp_path / "broken.zip",
        {
            "case0/input.npy": float32_npy(np.zeros((1, 16, 16))),
            "case0/reference.npy": float32_npy(np.ones((1, 16, 16))),
            "case1/input.npy": float32_npy(np.zeros((1, 16, 16))),
            "case1/reference.npy": float32_npy(np.ones((1, 8, 8))),  # not the input's shape
        },
    )
    model_file = save_torchscript(Scale(2.0), tmp_path / "scale.pt")
    url = site.url
    worker_factory(queues=("metrics",))  # imports and evaluations; the inference queue's worker comes later
    visited = []

    with chromium_page(viewport={"width": 1440, "height": 900}) as page:
        page.on("request", lambda request: visited.append(request.url))
        _login(page, url, "olga", "olga-pass-123")

        # 1. Import the dataset. A broken archive first: the page lists each file's problem, nothing is stored.
        page.goto(f"{url}/datasets/import/")
        page.fill("#id_name", "Broken knees")
        page.set_input_files("#id_file", str(broken))
        page.click("#dataset-import-form button[type=submit]")
        page.wait_for_url("**/datasets/imports/*/")
        page.wait_for_selector("#import-errors", timeout=SLOW)
        assert page.locator("#import-status").inner_text() == "failed"
        listed = page.locator("#import-errors li").all_inner_texts()
        assert any(line.startswith("case1/reference.npy") for line in listed), listed
        # Then the good one: the progress page follows the job and ends on the dataset.
        page.goto(f"{url}/datasets/import/")
        page.fill("#id_name", "Knees T1-T2")
        page.set_input_files("#id_file", str(archive))
        page.click("#dataset-import-form button[type=submit]")
        page.wait_for_url("**/datasets/imports/*/")
        page.wait_for_selector("#import-done", timeout=SLOW)
        assert page.locator("#import-status").inner_text() == "succeeded"
        assert "(4 cases)" in page.locator("#import-done").inner_text()
        assert page.locator("#import-bar").evaluate("bar => bar.style.width") == "100%"

        # 2. Create a task on it (the import's "Create a task on it" link preselects the dataset).
        page.click("text=Create a task on it")
        page.wait_for_url("**/tasks/new/?dataset=*")
        assert page.locator("#id_dataset option:checked").inner_text() == "Knees T1-T2"
        page.fill("#id_name", "Knee translation")
        page.fill("#id_slug", "knee-translation")
        page.select_option("#id_kind", "translation")
        page.check("input[name=metrics][value=psnr]")
        page.check("input[name=metrics][value=ssim]")
        page.select_option("#id_primary_metric", "psnr")
        page.check("#id_downstream")  # the demo recipe, one seed: a few seconds of training on a CPU
        page.select_option("#id_downstream_recipe", "unet-8-16-32-e40-demo")
        page.fill("#id_downstream_seeds", "0")
        page.click("#task-form button[type=submit]")
        page.wait_for_url("**/tasks/knee-translation/settings/")
        assert "Task 'Knee translation' created." in page.inner_text("body")

        # 3. Upload the model; the page follows its validation and offers a run once it is valid.
        page.goto(f"{url}/models/new/")
        page.fill("#id_name", "Scale x2")
        page.select_option("#id_task", "knee-translation")
        page.set_input_files("#id_file", str(model_file))
        page.fill("#id_spatial_shape", "16, 16")
        page.click("#model-upload-form button[type=submit]")
        page.wait_for_url("**/models/*/")
        start = page.get_by_role("button", name="Start a run on Knee translation")
        # No worker on the inference queue yet: the validation is queued, the page polls, no run is offered.
        assert page.locator("#validation-status").inner_text() == "queued"
        page.wait_for_selector("#validation-live[data-job-polling='1']")
        assert start.count() == 0  # never before the model is valid
        worker_factory(queues=("inference",))  # validation, the run and the downstream training
        page.wait_for_selector("p.ok-box >> text=Validated", timeout=SLOW)  # the polling page reloads
        assert start.count() == 1
        assert page.locator("#validation-error").count() == 0

        # 4. Start a run and follow it and its evaluation to the end.
        start.click()
        page.wait_for_url("**/runs/*/")
        run_url = page.url
        page.wait_for_function(
            "() => /succeeded/.test(document.querySelector('#run-status, .status')?.textContent || '')",
            timeout=SLOW,
        )
        for _ in range(90):  # the evaluation is queued once the run succeeds; its section polls, then reloads
            page.goto(run_url)
            if page.locator('#evaluation-live[data-final="1"]').count():
                break
            page.wait_for_timeout(1000)
        assert page.locator("#evaluation-status").inner_text() == "succeeded", page.inner_text("#evaluation")
        for _ in range(120):  # the downstream training: the segmenter trained on the run's outputs, tested on real
            if page.locator('#downstream-live[data-final="1"]').count():
                break
            page.wait_for_timeout(1000)
            page.goto(run_url)
        assert page.locator("#downstream-status").inner_text() == "succeeded", page.inner_text("#downstream")
        # 5. The run is on the task's leaderboard (no publish step for platform runs), with its PSNR.
        page.goto(f"{url}/tasks/knee-translation/leaderboard/")
        page.wait_for_selector('#leaderboard[data-ready="true"]')
        rows = page.locator("#leaderboard tbody tr")
        assert rows.count() == 1, page.locator("#leaderboard").inner_text()
        cell = rows.first.locator('td[data-column="psnr"]').inner_text()
        shown = float(cell.split()[0].replace("−", "-"))
        assert shown == pytest.approx(expected_psnr, abs=0.01), (cell, expected_psnr)

        # 6. A reader study on the task, from the task's settings page, started.
        page.goto(f"{url}/tasks/knee-translation/settings/")
        page.click("#new-study-link")
        page.wait_for_url("**/studies/new/?task=*")
        page.fill("#id_title", "Knee realism")
        page.select_option("#id_design", "turing")
        page.locator("#id_runs input[name=runs]:visible").first.check()
        offered = page.locator("#id_readers label").all_inner_texts()
        assert [name.strip() for name in offered] == ["rita"]  # not the organiser, who edits the study
        page.locator("#id_readers label", has_text="rita").locator("input").check()
        page.fill("#id_items_per_model", "2")
        page.click("#study-form button[type=submit]")
        page.wait_for_load_state()
        assert page.locator(".errorlist").count() == 0, page.locator("#study-form").inner_text()
        page.wait_for_url("**/studies/*/")
        page.click("#start-study")
        page.wait_for_load_state()
        assert "Started" in page.inner_text("body"), page.inner_text("body")[:2000]

        # 7. The reader finds it under "Your reading".
        page.context.clear_cookies()
        _login(page, url, "rita", "reader-pass-123")
        page.goto(f"{url}/reading/")
        assert "Knee realism" in page.inner_text("body")
        page.get_by_role("link", name="Start").click()  # and opens its workspace on the first item
        page.wait_for_url("**/read/*/")
        page.wait_for_function("() => document.getElementById('rw-progress')?.dataset.total > 0", timeout=20_000)

    assert not [u for u in visited if "/admin/" in u]
