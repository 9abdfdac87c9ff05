"""Model families and diffusion sweeps on the leaderboard: each row's family and sampling settings in the
table, the JSON and the CSV; the family filter; a sweep drawn as one connected curve per model (browser)."""

import csv
import io

import numpy as np
import pytest
from django.urls import reverse

from inference.models import GenerativeModel
from tests.support.browser import chromium_page
from tests.support.factories import make_task
from tests.support.leaderboard_data import add_scored_run

SCHEDULER = {"kind": "ddim", "num_train_timesteps": 50}


def model_of(task, name, family, scheduler=None):
    return GenerativeModel.objects.create(
        name=name, task=task, format="torchscript", artifact=f"models/{name}.pt", sha256=name.ljust(64, "0"),
        size_bytes=1, spatial_shape=[16, 16], family=family, scheduler=scheduler, status="valid",
    )  # fmt: skip


def sweep_board(n_cases=6):
    """A U-Net, a GAN and a diffusion model's sweep of 5, 10 and 25 steps (quality rising with the steps)."""
    task = make_task(n_cases=n_cases, primary_metric="ssim", metrics=["psnr", "ssim"])
    rng = np.random.default_rng(1)
    for name, family, quality, latency in (("unet", "regression", 0.8, 2.0), ("pix2pix", "gan", 0.75, 3.0)):
        run = add_scored_run(task, name, {"ssim": quality + 0.01 * rng.standard_normal(n_cases)}, latency_ms=latency)
        run.model = model_of(task, name, family)
        run.save()
    diffusion = model_of(task, "ddim", "diffusion", SCHEDULER)
    for steps, quality, latency in ((25, 0.86, 250.0), (5, 0.6, 50.0), (10, 0.78, 100.0)):
        run = add_scored_run(
            task, f"ddim {steps}", {"ssim": quality + 0.01 * rng.standard_normal(n_cases)}, latency_ms=latency
        )
        run.model, run.sampling_steps, run.scheduler, run.samples_per_case, run.sweep = diffusion, steps, "ddim", 2, "s"
        run.save()
    return task


@pytest.mark.django_db
def test_rows_carry_family_and_sampling_settings_in_json_csv_and_the_table(client):
    task = sweep_board()
    url = reverse("api-task-leaderboard", args=[task.slug])
    rows = {row["run"]["name"]: row for row in client.get(url, {"format": "json"}).json()["rows"]}
    assert rows["unet"]["model"]["family"] == "regression" and rows["unet"]["sampling"] is None
    assert rows["pix2pix"]["model"]["family"] == "gan"
    assert rows["ddim 10"]["model"]["family"] == "diffusion"
    assert rows["ddim 10"]["sampling"] == {
        "scheduler": "ddim", "sampling_steps": 10, "samples_per_case": 2, "seed": 0, "sweep": "s"
    }  # fmt: skip
    table = {r["run"]: r for r in csv.DictReader(io.StringIO(client.get(url, {"format": "csv"}).content.decode()))}
    assert (table["ddim 25"]["family"], table["ddim 25"]["sampling_steps"], table["ddim 25"]["scheduler"]) == (
        "diffusion", "25", "ddim"
    )  # fmt: skip
    assert table["unet"]["family"] == "regression" and table["unet"]["sampling_steps"] == ""
    page = client.get(reverse("task-leaderboard", args=[task.slug]), {"family": "gan"}).content.decode()
    assert '<select name="family" id="family-filter">' in page
    assert '<option value="gan" selected>GAN (Pix2Pix, CycleGAN, …)</option>' in page
    assert page.count('data-family="diffusion"') == 3 and page.count('data-family="gan"') == 1
    assert "ddim 10 steps</span>" in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_family_filter_hides_rows_and_a_sweep_is_one_curve(site):
    task = sweep_board()
    with chromium_page(viewport={"width": 1400, "height": 1000}) as page:
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{site.url}/tasks/{task.slug}/leaderboard/")
        visible = page.locator("#leaderboard tbody tr:not([hidden]) a.run-link")
        assert len(visible.all_inner_texts()) == 5
        page.select_option("#family-filter", "diffusion")
        assert sorted(visible.all_inner_texts()) == ["ddim 10", "ddim 25", "ddim 5"]
        page.select_option("#family-filter", "")
        assert len(visible.all_inner_texts()) == 5

        page.wait_for_selector('#plots[data-ready*="leaderboard"]', timeout=30_000)
        # single runs, the sweep's curve, the Pareto front
        assert page.locator("#plot-pareto .scatterlayer .trace").count() == 3
        curve = page.evaluate(
            """() => document.getElementById('plot-pareto').data
                 .filter((t) => t.name === 'ddim (s)').map((t) => ({x: t.x, text: t.text, mode: t.mode}))"""
        )
        assert curve == [
            {"x": [50, 100, 250], "text": ["5 steps", "10 steps", "25 steps"], "mode": "lines+markers+text"}
        ]
        assert errors == []
