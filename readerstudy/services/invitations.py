"""Invitation links: an editor makes a one-time link to a study; whoever opens it joins the study as a reader,
with a new account (a password they choose) or the one they are logged in with.

E-mail: the link is also sent to the address the editor gives when `settings.MEDGEN_EMAIL` is on (it is once
`EMAIL_HOST` is set); otherwise the editor sends the link themselves. Joining goes through
`studies.invite`, so whatever it refuses (staff, the study's editors…) is refused here with its message,
and the invitation stays unused.
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core import accounts
from core.errors import NotFound

from ..errors import StudyError
from ..models import Invitation, ReaderSession, ReaderStudy, StudyStatus
from .studies import invite

logger = logging.getLogger(__name__)

MAX_DAYS = 90


class InvitationClosed(StudyError):
    """A link that was used or has expired (410: it existed, and no longer works)."""

    status_code = 410


def email_configured() -> bool:
    return bool(settings.MEDGEN_EMAIL)


def invitation_link(invitation: Invitation, *, site_url: str) -> str:
    """The absolute link: `site_url` (scheme and host, e.g. request.build_absolute_uri("/")) + its path."""
    return site_url.rstrip("/") + invitation.get_absolute_url()


def _refuse_if_over(study: ReaderStudy) -> None:
    if study.status == StudyStatus.CLOSED:
        raise StudyError("The study is closed: reopen it before inviting readers.")
    if study.published_at is not None:
        raise StudyError("The study's results are published: withdraw them before inviting readers.")


def create_invitation(
    study: ReaderStudy,
    *,
    created_by: AbstractBaseUser,
    email: str = "",
    days: int = 14,
    site_url: str = "",
) -> Invitation:
    """A new link to `study`, open for `days` (1 to MAX_DAYS); e-mailed to `email` when e-mail is configured.

    The caller checks that `created_by` edits the study ("readerstudy.edit_study"). StudyError for a closed
    or published study. A mail that cannot be sent is a StudyError too, raised after the invitation is
    stored: the editor sees the link on the study page and sends it themselves.
    """
    _refuse_if_over(study)
    if not 1 <= days <= MAX_DAYS:
        raise StudyError(f"An invitation is valid for 1 to {MAX_DAYS} days.")
    email = (email or "").strip()
    invitation = Invitation.objects.create(
        study=study, email=email, created_by=created_by, expires_at=timezone.now() + timedelta(days=days)
    )
    if email and email_configured():
        _send(invitation, link=invitation_link(invitation, site_url=site_url))
    return invitation


def _send(invitation, *, link):
    inviter = invitation.created_by.get_username() if invitation.created_by else "An editor"
    body = (
        f'{inviter} invites you to read the study "{invitation.study.title}" on MedGen Eval.\n\n'
        f"Open this link to create your account (or join with the one you have) and start reading:\n\n"
        f"{link}\n\n"
        f"The link works once and until {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
    )
    try:
        send_mail(f"Reader study: {invitation.study.title}", body, None, [invitation.email])
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("invitation %s could not be e-mailed: %s", invitation.pk, exc)
        raise StudyError(
            f"The link was made, but e-mailing it to {invitation.email} failed: copy it below and send it yourself."
        ) from None


def open_invitation(token: str, *, now=None) -> Invitation:
    """The invitation of `token` if it can still be used: NotFound for an unknown (or revoked) link,
    InvitationClosed for one used or expired."""
    invitation = Invitation.objects.select_related("study", "created_by").filter(token=token).first()
    _check_open(invitation, now or timezone.now())
    return invitation


def _check_open(invitation, now):
    if invitation is None:
        raise NotFound("This invitation link is not valid: it may have been revoked. Ask the study's editor.")
    if invitation.used_at is not None:
        raise InvitationClosed("This invitation link was already used: each link works once.")
    if not invitation.is_open(now):
        raise InvitationClosed("This invitation link has expired: ask the study's editor for a new one.")


def accept_invitation(
    *,
    token: str,
    user: AbstractBaseUser | None = None,
    username: str | None = None,
    password: str | None = None,
    email: str = "",
) -> ReaderSession | None:
    """Join the invitation's study as `user`, or as a new account (`username`, `password`, `email`) when
    `user` is None. Returns the reader's session (None while the study is a draft: it opens at the start).

    All in one transaction with the invitation locked: a link is used once even when opened twice at the
    same moment, and a refusal (a bad password, a taken name, a StudyError from `studies.invite`) leaves
    neither an account nor a used invitation behind.
    """
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(token=token).first()
        _check_open(invitation, timezone.now())
        study = ReaderStudy.objects.get(pk=invitation.study_id)
        _refuse_if_over(study)
        if user is not None and study.readers.filter(pk=user.pk).exists():
            # Already a reader: the link stays open for whoever it was meant for.
            return study.sessions.filter(reader=user).first()
        if user is None:
            user = accounts.create_account(username=username or "", password=password or "", email=email)
        invite(study, readers=[user])
        invitation.used_at = timezone.now()
        invitation.used_by = user
        invitation.save(update_fields=["used_at", "used_by"])
        return study.sessions.filter(reader=user).first()


def revoke_invitation(invitation: Invitation) -> None:
    """Delete an unused invitation: its link stops working (a used one is the record of who joined)."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
        if locked is None:
            return
        if locked.used_at is not None:
            raise StudyError("This invitation was already used: it stays as the record of who joined.")
        locked.delete()
