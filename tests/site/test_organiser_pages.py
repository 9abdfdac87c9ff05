"""What an organiser (a task's organiser, not site staff) is offered on the pages the end-to-end browser
test walks through (tests/site/test_organiser_browser.py), checked here without a browser:

* the model page's "Start a run" button, once their model is valid (it was shown to staff only);
* the study form, on the tasks they organise only (it needed the Django permission "Can add reader
  study", which only the admin grants)."""

import pytest

from inference.models import ModelStatus
from inference.services import participation
from inference.services.artifacts import register_model
from tests.support.factories import Scale, make_task, save_torchscript
from tests.support.study_data import make_study_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def organiser(django_user_model):
    return django_user_model.objects.create_user("olga", password="olga-pass-123")


def test_the_model_page_offers_a_run_to_the_tasks_organiser_once_valid(client, organiser, tmp_path):
    task = make_task(n_cases=1, is_public=False)
    participation.add_organiser(task, user=organiser)
    model = register_model(save_torchscript(Scale(), tmp_path / "m.pt"), name="m", task=task, spatial_shape=[16, 16])
    client.force_login(organiser)
    assert "Start a run" not in client.get(f"/models/{model.pk}/").content.decode()  # not before it is valid
    model.status = ModelStatus.VALID
    model.save(update_fields=["status"])
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert f'action="/models/{model.pk}/run/"' in page and "Start a run" in page


def test_the_model_page_offers_no_run_to_a_visitor(client, django_user_model, tmp_path):
    task = make_task(n_cases=1, is_public=True)
    model = register_model(save_torchscript(Scale(), tmp_path / "m.pt"), name="m", task=task, spatial_shape=[16, 16])
    model.status = ModelStatus.VALID
    model.save(update_fields=["status"])
    client.force_login(django_user_model.objects.create_user("vic", password="vic-pass-123"))
    assert "Start a run" not in client.get(f"/models/{model.pk}/").content.decode()


def test_an_organiser_creates_a_study_on_their_task_only(client, organiser, django_user_model):
    mine, _ = make_study_task(n_cases=4, shape=(1, 8, 8), n_runs=1)
    theirs, _ = make_study_task(n_cases=4, shape=(1, 8, 8), n_runs=1)
    participation.add_organiser(mine, user=organiser)
    client.force_login(organiser)
    page = client.get("/studies/new/")
    assert page.status_code == 200
    choices = list(page.context["form"].fields["task"].queryset)
    assert choices == [mine], choices  # `theirs` is public but not theirs to study
    refused = client.post("/studies/new/", {"task": theirs.pk, "title": "x"})
    assert "task" in refused.context["form"].errors  # not one of the choices
    assert 'id="new-study"' in client.get("/studies/").content.decode()

    client.force_login(django_user_model.objects.create_user("pat", password="pat-pass-123"))
    assert client.get("/studies/new/").status_code == 404  # neither organiser nor permitted
