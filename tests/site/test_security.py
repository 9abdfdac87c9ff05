"""The security baseline: login throttling, secrets, transport headers, Server-Timing for staff only."""

import os
import stat
import subprocess
import sys

import pytest
from django.core import mail
from django.test import Client

from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-123"


@pytest.fixture
def victim(django_user_model):
    return django_user_model.objects.create_user("victim", password=PASSWORD, is_staff=True)


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_the_right_password_is_refused_after_repeated_wrong_ones(url, victim, settings):
    settings.AXES_FAILURE_LIMIT = 5
    client = Client()
    for attempt in range(4):
        response = client.post(url, {"username": "victim", "password": f"wrong-{attempt}"})
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert client.post(url, {"username": "victim", "password": "wrong-4"}).status_code == 429  # the fifth
    response = client.post(url, {"username": "victim", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    other_address = Client(REMOTE_ADDR="10.9.8.7")  # the lockout is per username and address
    assert other_address.post(url, {"username": "victim", "password": PASSWORD}).status_code == 302


def test_a_success_before_the_limit_resets_the_count(victim, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "victim", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "victim", "password": PASSWORD}).status_code == 302
    client.logout()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "victim", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "victim", "password": PASSWORD}).status_code == 302


def test_server_timing_goes_to_staff_only(client, staff_user, reader_user):
    assert "Server-Timing" not in client.get("/")
    client.force_login(reader_user)
    assert "Server-Timing" not in client.get("/")
    client.force_login(staff_user)
    timing = client.get("/")["Server-Timing"]
    assert timing.startswith("app;dur=") and "queries" in timing


def test_pages_carry_the_baseline_security_headers(client):
    response = client.get("/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def settings_in_subprocess(env, expression):
    """Evaluate `expression` on django.conf.settings in a fresh process with exactly `env` (plus PATH)."""
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    environment = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "medgen_site.settings", **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)


def test_a_configured_deployment_without_a_secret_key_refuses_to_start(tmp_path):
    result = settings_in_subprocess(
        {"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "MEDGEN_DATA_DIR": str(tmp_path)}, "1"
    )
    assert result.returncode != 0
    assert "no SECRET_KEY: set SECRET_KEY (or SECRET_KEY_FILE)" in result.stderr


def test_the_embedded_default_generates_its_own_key_once_and_keeps_it(tmp_path):
    first = settings_in_subprocess({"MEDGEN_DATA_DIR": str(tmp_path)}, "settings.SECRET_KEY")
    second = settings_in_subprocess({"MEDGEN_DATA_DIR": str(tmp_path)}, "settings.SECRET_KEY")
    other = settings_in_subprocess({"MEDGEN_DATA_DIR": str(tmp_path / "other")}, "settings.SECRET_KEY")
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50 and key == second.stdout.strip() and key != other.stdout.strip()
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_https_deployments_get_hsts_secure_cookies_and_a_redirect(tmp_path):
    result = settings_in_subprocess(
        {"MEDGEN_DATA_DIR": str(tmp_path), "MEDGEN_HTTPS": "1"},
        "settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
        "settings.SECURE_SSL_REDIRECT",
    )
    assert result.stdout.strip() == "31536000 True True True", result.stderr


def test_password_reset_says_to_ask_an_admin_where_no_email_is_configured(client, settings, django_user_model):
    django_user_model.objects.create_user("forgetful", email="f@example.org", password="a-long-password-1")
    settings.MEDGEN_EMAIL = False
    page = client.get("/accounts/password_reset/")
    assert page.status_code == 200 and 'id="reset-unavailable"' in page.content.decode()
    assert client.post("/accounts/password_reset/", {"email": "f@example.org"}).status_code == 200
    assert not mail.outbox  # nothing pretended to be sent
    settings.MEDGEN_EMAIL = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert client.post("/accounts/password_reset/", {"email": "f@example.org"}).status_code == 302
    assert [message.to for message in mail.outbox] == [["f@example.org"]]
