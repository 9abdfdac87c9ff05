"""The pages' wording and states that confused people: escaped help text, numbers with separators,
metadata as a table, invalid models out of the way, a queued run page that says "queued"."""

import re

import pytest

from tests.support.factories import make_task

pytestmark = pytest.mark.django_db


def test_submission_help_text_shows_the_case_id_placeholder(staff_client):
    task = make_task(n_cases=1)
    response = staff_client.get(f"/tasks/{task.slug}/")
    assert response.status_code == 200
    html = response.content.decode()
    form = html[html.index('id="submission-form"') :]
    form = form[: form.index("</form>")]
    helptext = re.search(r'<span class="helptext"[^>]*>(.*?)</span>', form, re.S).group(1)
    # The placeholder is text on the page, not an unknown HTML tag the browser swallows.
    assert "&lt;case_id&gt;.nii.gz" in helptext
    assert "<case_id>" not in helptext
