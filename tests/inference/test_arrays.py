"""Array endpoints of the viewer (JSON header + raw float32 bytes) and the case / compare pages' viewports."""

import json
import types

import numpy as np
import pytest

from core.models import JobStatus
from evaluation.models import CaseResult
from inference import arrays
from inference.models import CaseOutput, ImageRole, Run
from inference.storage import save_array
from tests.support.factories import add_image, make_task

pytestmark = pytest.mark.django_db


def make_run(task, arrays_by_case, name="run"):
    """A succeeded run whose outputs are given directly: {case: [sample0, sample1, …]}."""
    run = Run.objects.create(task=task, name=name, status=JobStatus.SUCCEEDED)
    outputs = []
    for case, samples in arrays_by_case.items():
        for sample, array in enumerate(samples):
            output = CaseOutput(run=run, case=case, sample=sample, shape=list(array.shape))
            save_array(output.array, f"{case.case_id}_{sample}.npy", array)
            output.save()
            outputs.append(output)
    return run, outputs


def floats(response, shape):
    """The float32 plane a data response carries, after checking its headers describe it."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Array-Shape"] == ",".join(map(str, shape))
    assert response["X-Array-Dtype"] == "<f4"
    assert response["Cache-Control"] == "private, max-age=300"
    assert len(response.content) == 4 * int(np.prod(shape))
    return np.frombuffer(response.content, dtype="<f4").reshape(shape)


@pytest.fixture
def volume_case():
    """A public task whose single case is a (1, 6, 8, 10) volume with spacing 2.5 × 0.7 × 0.9 mm."""
    task = make_task(n_cases=1, shape=(1, 6, 8, 10), seed=3)
    case = task.dataset.cases.get()
    for image in case.images.all():
        image.spacing = [2.5, 0.7, 0.9]
        image.save()
    return task, case


def test_header_describes_the_shown_array_without_naming_files(client):
    task = make_task(n_cases=1, shape=(1, 12, 16), seed=1)
    image = task.dataset.cases.get().image(ImageRole.INPUT)
    stored = image.load()[0].astype(np.float64)

    response = client.get(f"/api/arrays/case-images/{image.pk}/")

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("private")
    header = response.json()
    assert header["shape"] == [12, 16] and header["rows"] == 12 and header["columns"] == 16
    assert header["channels"] == 1 and header["slices"] == 1
    assert header["dtype"] == "float32" and header["byte_order"] == "little"
    assert header["spacing"] == [1.0, 1.0]
    assert header["display"] == "channel-0"
    p1, p5, p95, p99 = np.percentile(stored, [1, 5, 95, 99])
    assert [p["name"] for p in header["presets"]] == ["1–99 %", "5–95 %", "Full range"]
    default = header["presets"][0]
    assert default["lower"] == pytest.approx(p1) and default["upper"] == pytest.approx(p99)
    assert header["window"] == {"center": pytest.approx((p1 + p99) / 2), "width": pytest.approx(p99 - p1)}
    assert header["presets"][1]["lower"] == pytest.approx(p5) and header["presets"][1]["upper"] == pytest.approx(p95)
    assert header["range"] == {"min": pytest.approx(stored.min()), "max": pytest.approx(stored.max())}
    assert header["data_url"] == f"/api/arrays/case-images/{image.pk}/data/"
    text = response.content.decode()
    for leak in (image.array.name, ".npy", "datasets/", image.case.case_id):
        assert leak not in text


def test_slice_bytes_are_the_stored_slice_and_no_slice_is_the_whole_volume(client, volume_case):
    _, case = volume_case
    image = case.image(ImageRole.REFERENCE)
    stored = image.load()
    header = client.get(f"/api/arrays/case-images/{image.pk}/").json()
    assert header["shape"] == [6, 8, 10] and header["slices"] == 6 and header["spacing"] == [2.5, 0.7, 0.9]

    for k in (0, 3, 5):
        plane = floats(client.get(f"{header['data_url']}?slice={k}"), (8, 10))
        np.testing.assert_array_equal(plane, stored[0, k])
    whole = floats(client.get(header["data_url"]), (6, 8, 10))
    np.testing.assert_array_equal(whole, stored[0])


def test_two_channel_input_is_served_as_log_magnitude(client):
    task = make_task(n_cases=1, shape=(1, 8, 8), seed=2)
    case = task.dataset.cases.get()
    rng = np.random.default_rng(5)
    kspace = (rng.standard_normal((2, 8, 8)) * 100).astype(np.float32)
    image = add_image(case, ImageRole.INPUT, kspace, index=1)

    header = client.get(f"/api/arrays/case-images/{image.pk}/").json()
    plane = floats(client.get(header["data_url"]), (8, 8))

    assert header["display"] == "log-magnitude" and header["channels"] == 2 and header["shape"] == [8, 8]
    expected = np.log(1 + np.sqrt(kspace[0].astype(np.float64) ** 2 + kspace[1].astype(np.float64) ** 2))
    np.testing.assert_allclose(plane, expected, rtol=1e-6)
    assert header["range"]["max"] == pytest.approx(expected.max(), rel=1e-6)


def test_output_and_difference_map_equal_the_stored_output_and_its_absolute_error(client, volume_case):
    task, case = volume_case
    reference = case.image(ImageRole.REFERENCE).load()
    output_array = np.random.default_rng(7).random((1, 6, 8, 10)).astype(np.float32)
    _, (output,) = make_run(task, {case: [output_array]})

    plane = floats(client.get(f"/api/arrays/outputs/{output.pk}/data/?slice=2"), (8, 10))
    np.testing.assert_array_equal(plane, output_array[0, 2])
    assert client.get(f"/api/arrays/outputs/{output.pk}/").json()["spacing"] == [2.5, 0.7, 0.9]

    header = client.get(f"/api/arrays/outputs/{output.pk}/difference/").json()
    expected = np.abs(output_array[0].astype(np.float64) - reference[0])
    assert header["kind"] == "difference" and header["data_url"].endswith("/difference/data/")
    assert [p["name"] for p in header["presets"]] == ["0 … p99", "0 … max"]
    assert header["presets"][0]["lower"] == 0 and header["presets"][0]["upper"] == pytest.approx(
        np.percentile(expected, 99), rel=1e-5
    )
    np.testing.assert_allclose(floats(client.get(f"{header['data_url']}?slice=4"), (8, 10)), expected[4], atol=1e-7)
    np.testing.assert_allclose(floats(client.get(header["data_url"]), (6, 8, 10)), expected, atol=1e-7)


def test_difference_of_multichannel_arrays_is_the_norm_over_channels():
    rng = np.random.default_rng(11)
    out, ref = rng.random((3, 4, 5)), rng.random((3, 4, 5))
    expected = np.linalg.norm(out - ref, axis=0)
    np.testing.assert_allclose(arrays.difference_plane(out, ref), expected, rtol=1e-6)


def test_uncertainty_endpoint_serves_the_sd_map(client):
    task = make_task(n_cases=1, shape=(1, 10, 12), seed=4)
    case = task.dataset.cases.get()
    samples = np.random.default_rng(9).random((4, 1, 10, 12)).astype(np.float32)
    run, _ = make_run(task, {case: list(samples)})
    sd = np.std(samples.astype(np.float64), axis=0, ddof=1).astype(np.float32)
    result = CaseResult.objects.create(run=run, case=case, samples=4)
    save_array(result.uncertainty_map, "sd.npy", sd)
    result.save()

    header = client.get(f"/api/arrays/case-results/{result.pk}/uncertainty/").json()

    assert header["kind"] == "uncertainty" and header["shape"] == [10, 12]
    assert header["presets"][1] == {
        "name": "0 … max",
        "lower": 0.0,
        "upper": pytest.approx(sd.max()),
        "center": pytest.approx(sd.max() / 2),
        "width": pytest.approx(sd.max()),
    }
    np.testing.assert_array_equal(floats(client.get(header["data_url"]), (10, 12)), sd[0])
    result_without_map = CaseResult.objects.create(run=make_run(task, {}, name="other")[0], case=case)
    assert client.get(f"/api/arrays/case-results/{result_without_map.pk}/uncertainty/").status_code == 404


@pytest.mark.parametrize(
    "value, message",
    [("6", "out of range"), ("-1", "out of range"), ("abc", "must be an integer"), ("1.5", "must be an integer")],
)
def test_bad_slice_is_a_400_with_a_message(client, volume_case, value, message):
    _, case = volume_case
    image = case.image(ImageRole.INPUT)
    response = client.get(f"/api/arrays/case-images/{image.pk}/data/?slice={value}")
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_2d_image_has_one_slice(client):
    image = make_task(n_cases=1, shape=(1, 4, 4)).dataset.cases.get().image(ImageRole.INPUT)
    plane = floats(client.get(f"/api/arrays/case-images/{image.pk}/data/?slice=0"), (4, 4))
    np.testing.assert_array_equal(plane, image.load()[0])
    np.testing.assert_array_equal(floats(client.get(f"/api/arrays/case-images/{image.pk}/data/"), (4, 4)), plane)
    refused = client.get(f"/api/arrays/case-images/{image.pk}/data/?slice=1")
    assert refused.status_code == 400 and "out of range" in refused.json()["detail"]


def test_private_task_arrays_are_404_for_anonymous_users_and_readable_by_staff(client, staff_user):
    task = make_task(n_cases=1, shape=(1, 6, 6), is_public=False)
    case = task.dataset.cases.get()
    samples = [np.ones((1, 6, 6), np.float32), np.zeros((1, 6, 6), np.float32)]
    run, (output, _) = make_run(task, {case: samples})
    result = CaseResult.objects.create(run=run, case=case, samples=2)
    save_array(result.uncertainty_map, "sd.npy", np.full((1, 6, 6), 0.7, np.float32))
    result.save()
    urls = [
        f"/api/arrays/case-images/{case.image(ImageRole.INPUT).pk}/",
        f"/api/arrays/outputs/{output.pk}/",
        f"/api/arrays/outputs/{output.pk}/difference/",
        f"/api/arrays/case-results/{result.pk}/uncertainty/",
        f"/runs/{run.pk}/cases/{case.pk}/",
        f"/cases/{case.pk}/compare/",
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
        if url.startswith("/api/"):
            assert client.get(url).json() == {"detail": "Not found."}
            assert client.get(url + "data/").status_code == 404, url
    client.force_login(staff_user)
    expected = {  # what staff get from each array endpoint: the stored arrays
        urls[0]: case.image(ImageRole.INPUT).load()[0],
        urls[1]: samples[0][0],
        urls[2]: np.abs(samples[0][0] - case.image(ImageRole.REFERENCE).load()[0]),
        urls[3]: np.full((6, 6), 0.7, np.float32),
    }
    for url, plane in expected.items():
        header = client.get(url).json()
        assert header["shape"] == [6, 6] and header["data_url"] == url + "data/", url
        np.testing.assert_allclose(floats(client.get(url + "data/"), (6, 6)), plane, atol=1e-6, err_msg=url)
    for url in urls[4:]:
        page = client.get(url)
        assert page.status_code == 200 and "viewer-config" in page.content.decode(), url


def test_memory_mapped_slices_read_only_the_picked_slices(tmp_path):
    volume = np.arange(10 * 4 * 4, dtype=np.float32).reshape(1, 10, 4, 4)
    np.save(tmp_path / "v.npy", volume)
    mapped = arrays.open_npy(path=tmp_path / "v.npy")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(arrays.display_plane(mapped, 7), volume[0, 7])
    # A budget of 48 voxels (3 slices of 16) picks every 4th slice: 0, 4, 8.
    np.testing.assert_array_equal(arrays.window_sample(mapped, max_voxels=48), volume[:, [0, 4, 8]])


def test_constant_image_gets_a_unit_window():
    presets, value_range = arrays.window_presets(np.full((4, 4), 3.0))
    assert value_range == {"min": 3.0, "max": 3.0}
    assert all(p["width"] == 1.0 and p["lower"] == 2.5 for p in presets)


def viewer_config(response):
    content = response.content.decode()
    start = content.index('<script id="viewer-config" type="application/json">') + len(
        '<script id="viewer-config" type="application/json">'
    )
    return json.loads(content[start : content.index("</script>", start)])


def test_case_view_of_a_stochastic_run_shows_input_output_reference_difference_and_sd(client):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    case = task.dataset.cases.order_by("case_id").first()
    samples = [np.full((1, 8, 8), v, np.float32) for v in (0.1, 0.3)]
    run, outputs = make_run(task, {c: samples for c in task.dataset.cases.all()})
    result = CaseResult.objects.create(run=run, case=case, samples=2, values={"psnr": 21.5, "ssim": 0.75})
    save_array(result.uncertainty_map, "sd.npy", np.full((1, 8, 8), 0.14, np.float32))
    result.save()
    second = next(o for o in outputs if o.case_id == case.pk and o.sample == 1)

    response = client.get(f"/runs/{run.pk}/cases/{case.pk}/?sample=1")

    assert response.status_code == 200
    config = viewer_config(response)
    assert [v["label"] for v in config["viewports"]] == [
        "Input",
        "Output (sample 1)",
        "Reference",
        "|Output − reference|",
        "SD over 2 samples",
    ]
    urls = [v["headerUrl"] for v in config["viewports"]]
    assert urls[1] == f"/api/arrays/outputs/{second.pk}/" and urls[3] == f"/api/arrays/outputs/{second.pk}/difference/"
    assert urls[4] == f"/api/arrays/case-results/{result.pk}/uncertainty/"
    groups = [v["voiGroup"] for v in config["viewports"]]
    assert groups[1] == groups[2] == "image" and config["viewports"][2]["windowLeader"] is True
    assert len(set(groups)) == 4  # input, image (output + reference), difference, uncertainty
    reference = case.image(ImageRole.REFERENCE).load()[0]
    shown = [case.image(ImageRole.INPUT).load()[0], samples[1][0], reference, np.abs(samples[1][0] - reference)]
    shown.append(np.full((8, 8), 0.14, np.float32))
    for url, plane in zip(urls, shown, strict=True):
        header = client.get(url).json()
        assert header["shape"] == [8, 8], url
        np.testing.assert_allclose(floats(client.get(header["data_url"]), (8, 8)), plane, atol=1e-6, err_msg=url)
    content = response.content.decode()
    assert 'data-metric="psnr"' in content and "21.50" in content and 'id="next-case"' in content


def test_compare_view_shows_reference_both_outputs_and_both_difference_maps(client):
    task = make_task(n_cases=1, shape=(1, 8, 8))
    case = task.dataset.cases.get()
    run_a, (out_a,) = make_run(task, {case: [np.zeros((1, 8, 8), np.float32)]}, name="A")
    run_b, (out_b,) = make_run(task, {case: [np.ones((1, 8, 8), np.float32)]}, name="B")

    response = client.get(f"/cases/{case.pk}/compare/?a={run_a.pk}&b={run_b.pk}")

    urls = [v["headerUrl"] for v in viewer_config(response)["viewports"]]
    assert urls == [
        f"/api/arrays/case-images/{case.image(ImageRole.REFERENCE).pk}/",
        f"/api/arrays/outputs/{out_a.pk}/",
        f"/api/arrays/outputs/{out_b.pk}/",
        f"/api/arrays/outputs/{out_a.pk}/difference/",
        f"/api/arrays/outputs/{out_b.pk}/difference/",
    ]
    swapped = viewer_config(client.get(f"/cases/{case.pk}/compare/?a={run_b.pk}&b={run_a.pk}"))["viewports"]
    assert swapped[1]["headerUrl"] == f"/api/arrays/outputs/{out_b.pk}/"
    assert f"/cases/{case.pk}/compare/" in client.get(f"/cases/{case.pk}/").content.decode()


def test_header_gives_the_whole_arrays_float32_bytes(client, volume_case):
    _, case = volume_case
    image = case.image(ImageRole.REFERENCE)
    kspace = add_image(case, ImageRole.INPUT, np.ones((2, 6, 8, 10), np.float32), index=1)

    assert client.get(f"/api/arrays/case-images/{image.pk}/").json()["whole_bytes"] == 6 * 8 * 10 * 4
    # Two channels are shown as one plane (the log magnitude): its bytes, not the stored ones.
    assert client.get(f"/api/arrays/case-images/{kspace.pk}/").json()["whole_bytes"] == 6 * 8 * 10 * 4
    assert arrays.whole_bytes(np.zeros((1, 12, 16), np.float32)) == 12 * 16 * 4


def test_whole_array_over_the_limit_is_a_413_but_slices_are_still_served(client, volume_case, settings):
    task, case = volume_case
    image = case.image(ImageRole.REFERENCE)
    stored = image.load()
    _, (output,) = make_run(task, {case: [np.random.default_rng(1).random((1, 6, 8, 10)).astype(np.float32)]})
    header = client.get(f"/api/arrays/case-images/{image.pk}/").json()
    settings.MEDGEN_VIEWER_MAX_ARRAY_BYTES = header["whole_bytes"] - 1

    for url in (
        header["data_url"],
        f"/api/arrays/outputs/{output.pk}/data/",
        f"/api/arrays/outputs/{output.pk}/difference/data/",
    ):
        response = client.get(url)
        assert response.status_code == 413, url
        detail = response.json()["detail"]
        assert "request slices with ?slice=k" in detail and str(header["whole_bytes"]) in detail
    for k in (0, 5):
        np.testing.assert_array_equal(floats(client.get(f"{header['data_url']}?slice={k}"), (8, 10)), stored[0, k])
    assert client.get(f"{header['data_url']}?slice=6").status_code == 400  # a bad slice is still a 400

    settings.MEDGEN_VIEWER_MAX_ARRAY_BYTES = header["whole_bytes"]  # at the limit: served
    np.testing.assert_array_equal(floats(client.get(header["data_url"]), (6, 8, 10)), stored[0])


def test_the_size_check_needs_only_the_shape():
    shape_only = types.SimpleNamespace(shape=(1, 4, 8, 8), ndim=4)  # no data to read at all
    with pytest.raises(arrays.TooLarge, match=r"request slices with \?slice=k, k in 0 … 3"):
        arrays.check_whole_size(shape_only, 4 * 8 * 8 * 4 - 1)
    arrays.check_whole_size(shape_only, 4 * 8 * 8 * 4)
