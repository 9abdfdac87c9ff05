"""Every main page, as each role that uses it, at 1440×900 and 1280×720: the page never scrolls sideways
(the leaderboard's table scrolls inside its own box), no text in the header, navigation or a form overlaps
other text, and no text is cut off by a box with overflow hidden. The checker (tests/support/layout.py)
is a JS function evaluated in the page; it is first shown to catch each defect on a page made of them.

One browser for everything, one data set: a public task with a scored leaderboard, runs with outputs
(the viewer and the compare view), a model, a participant's submission, and a running Turing study
with a reader."""

import pytest

from core.models import JobStatus
from inference.models import Case, DatasetImport, ModelStatus
from inference.services import participation
from inference.services.artifacts import register_model
from tests.evaluation.test_probe_viewer_browser import probe_world
from tests.support.browser import chromium_page
from tests.support.factories import Scale, make_task, save_torchscript
from tests.support.layout import CLEAN_PAGE, DEFECTS_PAGE, LAYOUT_CHECK
from tests.support.leaderboard_data import populate
from tests.support.study_data import add_output_run, make_reader, make_study, make_study_task

pytestmark = [pytest.mark.browser]

SIZES = [(1440, 900), (1280, 720)]
PASSWORD = "layout-pass-123"


def test_the_checker_catches_each_defect_and_passes_a_clean_page():
    with chromium_page(viewport={"width": 1280, "height": 720}) as page:
        page.set_content(DEFECTS_PAGE)
        found = {(problem["kind"], problem["where"]) for problem in page.evaluate(LAYOUT_CHECK)}
        assert ("page-scroll", "div#wide") in found, found
        assert ("overlap", "a#first × a#second") in found, found
        assert ("cut-off", "p#cut") in found, found
        assert len(found) == 3, found  # the table scrolling in its own box is not a defect
        page.set_content(CLEAN_PAGE)
        assert page.evaluate(LAYOUT_CHECK) == []


def _world(django_user_model, tmp_path):
    """The pages to visit per role: {role: [path…]}, with the users made."""
    users = {
        role: django_user_model.objects.create_user(role, password=PASSWORD, is_staff=role == "staff")
        for role in ("participant", "organiser", "staff")
    }
    users["reader"] = make_reader("reader", password=PASSWORD)
    task = make_task(n_cases=6, slug="brain-t1-t2", name="Brain T1 → T2 translation with a long name")
    populate(task, 4, 6)
    long_name = "U-Net baseline (ResNet-34 encoder, 200 epochs, L1 + SSIM loss)"
    run_a = add_output_run(task, long_name, lambda ref, rng: ref + rng.normal(0, 0.05, ref.shape))
    run_b = add_output_run(task, "Pix2Pix", lambda ref, rng: 0.9 * ref)
    participation.add_organiser(task, user=users["organiser"])
    participation.join_task(task, user=users["participant"])
    run_b.requested_by = users["participant"]
    run_b.save(update_fields=["requested_by"])
    model = register_model(
        save_torchscript(Scale(), tmp_path / "m.pt"),
        name="Scale ×2, a TorchScript regression model with a long name",
        task=task,
        spatial_shape=[16, 16],
    )
    model.status = ModelStatus.VALID
    model.save(update_fields=["status"])
    failed_import = DatasetImport.objects.create(
        name="Knees from the scanner",
        requested_by=users["organiser"],
        status=JobStatus.FAILED,
        error="2 problems with the archive; nothing was stored.",
        errors=[
            "knee_cohort_2024_site_A/subject_000123_visit_02_sagittal_PD_fat_saturated/reference.npy: "
            "shape (1, 320, 320) differs from its input's (1, 256, 256)",
            "knee_cohort_2024_site_A/subject_000124/label.npy: a label mask holds 0 and 1 only, found 2.0",
        ],
    )
    case = Case.objects.filter(dataset=task.dataset).order_by("case_id").first()
    study_task, study_runs = make_study_task(n_cases=8, shape=(1, 16, 16), n_runs=2)
    study = make_study(study_task, study_runs, readers=[users["reader"]], items_per_model=2)
    study.title = "Visual Turing test of synthetic T2-weighted brain MRI, radiologists, round one"
    study.save(update_fields=["title"])
    assert run_a.status == JobStatus.SUCCEEDED
    probe_run, probe_case = probe_world(users["organiser"])  # a probe set: its task's organisers' only

    public = [
        "/",
        f"/tasks/{task.slug}/",
        f"/tasks/{task.slug}/leaderboard/",
        f"/datasets/{task.dataset_id}/",
        f"/cases/{case.pk}/",
        f"/runs/{run_a.pk}/cases/{case.pk}/",
        f"/cases/{case.pk}/compare/?a={run_a.pk}&b={run_b.pk}",
        "/models/",
        f"/models/{model.pk}/",
        f"/runs/{run_a.pk}/",
        "/api/docs/",
        "/no-such-page/",
    ]
    return {
        "anonymous": [*public, "/api/redoc/", "/accounts/login/", "/accounts/signup/", "/accounts/password_reset/"],
        "participant": [
            "/",
            f"/tasks/{task.slug}/",
            f"/tasks/{task.slug}/leaderboard/",
            "/submissions/mine/",
            f"/runs/{run_b.pk}/",
            "/reading/",
            "/tasks/new/",  # 403
        ],
        "reader": ["/reading/", f"/read/{study.uid}/", "/studies/"],
        "organiser": [
            f"/tasks/{task.slug}/",
            f"/tasks/{task.slug}/settings/",
            "/tasks/new/",
            "/datasets/import/",
            f"/datasets/imports/{failed_import.uid}/",
            "/models/new/",
            f"/models/{model.pk}/",
            "/studies/",
            f"/studies/new/?task={task.pk}",
            f"/runs/{probe_run.pk}/",
            f"/runs/{probe_run.pk}/probes/{probe_case.pk}/",
        ],
        "staff": [
            *public[:3],  # staff see moderation and settings controls on these
            f"/models/{model.pk}/",
            f"/runs/{run_a.pk}/",
            "/studies/",
            f"/studies/{study.pk}/",
            f"/studies/{study.pk}/analysis/",
            "/submissions/mine/",
        ],
    }


#: After a resize: two frames, and half a second where Plotly's responsive plots redraw (debounced).
SETTLE = """async () => {
  const frame = () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  await frame();
  if (document.querySelector(".js-plotly-plot")) await new Promise((done) => setTimeout(done, 500));
  await frame();
}"""


#: Pages that draw with data they fetch (tables, plots, viewers, the API docs): checked once the network
#: is idle. The others are complete at their load event.
FETCHING = ("/leaderboard/", "/cases/", "/read/", "/api/", "/analysis/", "/runs/", "/studies/new/")


def _settle_network(page):
    if not any(part in page.url for part in FETCHING):
        return
    try:
        page.wait_for_load_state("networkidle", timeout=4000)
    except Exception:  # noqa: BLE001 - a page that keeps polling is checked as it stands
        pass


def _check(page, label):
    page.evaluate(SETTLE)
    return [f"{label} {p['kind']} {p['where']}: {p['detail']}" for p in page.evaluate(LAYOUT_CHECK)]


#: Forms sent empty (their error messages shown), per role: (path, form selector).
SENT_EMPTY = {
    "anonymous": [("/accounts/signup/", "#signup-form")],
    "organiser": [
        ("/tasks/new/", "#task-form"),
        ("/datasets/import/", "#dataset-import-form"),
        ("/models/new/", "#model-upload-form"),
        ("/studies/new/", "#study-form"),
    ],
}

EXPECTED_ERRORS = {"/no-such-page/": 404, "/tasks/new/": 403}


@pytest.mark.django_db(transaction=True)
def test_every_page_at_both_sizes_has_no_layout_defect(site, django_user_model, tmp_path):
    pages = _world(django_user_model, tmp_path)
    problems, statuses = [], []
    with chromium_page(webgl=True, viewport={"width": SIZES[0][0], "height": SIZES[0][1]}) as first:
        browser = first.context.browser
        for role, paths in pages.items():
            context = browser.new_context(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
            page = context.new_page()
            if role != "anonymous":
                page.goto(f"{site.url}/accounts/login/")
                page.fill("#id_username", role)
                page.fill("#id_password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state()
            for path in paths:
                response = page.goto(f"{site.url}{path}")
                expected = EXPECTED_ERRORS.get(path, 200) if role != "organiser" else 200
                landed = page.url[len(site.url) :]
                moved = "" if landed == path else f"landed on {landed}"
                statuses.append((role, path, response.status, expected, moved))
                _settle_network(page)
                for index, (width, height) in enumerate(SIZES):
                    if index:  # loaded again at this size: scripts that measure at load see this width
                        page.set_viewport_size({"width": width, "height": height})
                        page.reload()
                        _settle_network(page)
                    problems += _check(page, f"{role} {path} {width}×{height}")
                page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
            for path, form in SENT_EMPTY.get(role, []):  # a form's errors above its fields, at both sizes
                page.goto(f"{site.url}{path}")
                page.locator(form).evaluate("form => { form.noValidate = true; }")  # the server's messages
                page.click(f"{form} button[type=submit]")
                page.wait_for_selector(f"{form} .errorlist")
                for width, height in SIZES:
                    page.set_viewport_size({"width": width, "height": height})
                    problems += _check(page, f"{role} {path} sent empty {width}×{height}")
                page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
            context.close()
    wrong = [s for s in statuses if s[2] != s[3] or s[4]]
    assert not wrong, wrong
    assert not problems, "\n".join(problems)
