"""Reader-study pages (editors' list, form, detail, invitation links, analysis, export; the reader's
"Your reading", workspace and joining by a link) and the reader's JSON endpoints.

Reader endpoints answer JSON and know an item only by its token:

    GET  /api/read/<study uid>/state/                     progress and the current item
    POST /api/read/<study uid>/answers/                   {"item", "answer", "key"} → the next state
    POST /api/read/<study uid>/draft/                     {"item", "answer"} autosave (204)
    GET  /api/read/items/<token>/images/<slot>/           viewer header of the item's image (0 left, 1 right)
    GET  /api/read/items/<token>/images/<slot>/data/      its float32 bytes (?slice=k)

They are DRF views (`core.endpoints`: token or session, and in the OpenAPI schema); posting needs a login
(the policy action `readerstudy.read`), the study's services decide whose reading it is.
Anything a reader may not reach is a 404 that says only "Not found." (`errors.NotReadable`: a 403 would
confirm that the thing exists).
"""

import csv
import functools
import json

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import policy
from core.endpoints import endpoint
from core.errors import DomainError, InvalidInput, NotAuthenticated, NotFound
from core.pages import report
from core.responses import json_errors
from inference.models import Task
from inference.viewer import open_field, plane_response

from . import analysis, api_schema, probe_analysis, selectors
from .errors import AnswerConflict, StudyError
from .forms import InvitationForm, InviteForm, JoinForm, StudyForm
from .models import Design, ReaderStudy, StudyStatus
from .services import build, invitations, publishing, reading, studies

#: Nothing a reader fetches may be kept by a shared cache or reused after the study.
NO_STORE = "private, no-store"


# --- Reader endpoints --------------------------------------------------------------------


def reader_api(view):
    """A reader's JSON endpoint: 401 JSON for anonymous users (no login redirect), the platform's errors as
    JSON (`json_errors`), and every answer marked for no cache to keep."""

    @json_errors
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            raise NotAuthenticated("Log in to read.")
        return view(request, *args, **kwargs)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = guarded(request, *args, **kwargs)
        response["Cache-Control"] = NO_STORE
        return response

    return wrapper


def _json_body(request, *fields):
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    for field in fields:
        if not isinstance(body.get(field), str) or not body[field]:
            raise InvalidInput(f"'{field}' must be a non-empty string.")
    return body


@endpoint(["GET"], tags=["reading"], **api_schema.READ_STATE)
@reader_api
def read_state(request, uid):
    return JsonResponse(reading.state(reading.reader_session(uid, request.user)))


@endpoint(["POST"], policy_actions={"POST": "readerstudy.read"}, tags=["reading"], **api_schema.READ_ANSWER)
@reader_api
def read_answer(request, uid):
    body = _json_body(request, "item", "key")
    try:
        data = reading.submit_as(
            uid, reader=request.user, token=body["item"], value=body.get("answer"), key=body["key"]
        )
    except AnswerConflict as exc:  # the client gets the state it is out of step with
        session = reading.reader_session(uid, request.user)
        return JsonResponse({"detail": exc.detail, "state": reading.state(session)}, status=exc.status_code)
    return JsonResponse(data)


@endpoint(["POST"], policy_actions={"POST": "readerstudy.read"}, tags=["reading"], **api_schema.READ_DRAFT)
@reader_api
def read_draft(request, uid):
    body = _json_body(request, "item")
    session = reading.reader_session(uid, request.user)
    reading.save_draft(session, token=body["item"], value=body.get("answer"))
    return HttpResponse(status=204)


@endpoint(["GET"], tags=["reading"], **api_schema.READ_IMAGE)
@reader_api
def read_image(request, token, slot):
    image = reading.reader_image(request.user, token, slot)
    return JsonResponse(reading.image_header(token, slot, image))


@endpoint(["GET"], tags=["reading"], **api_schema.READ_IMAGE_DATA)
@reader_api
def read_image_data(request, token, slot):
    image = reading.reader_image(request.user, token, slot)
    return plane_response(open_field(image.array), request.GET.get("slice"))


@login_required
def workspace(request, uid):
    study = reading.reader_session(uid, request.user).study  # NotReadable: the error page's bare 404
    config = {
        "stateUrl": reverse("read-state", args=[uid]),
        "answerUrl": reverse("read-answer", args=[uid]),
        "draftUrl": reverse("read-draft", args=[uid]),
        "design": study.design,
        "scales": study.scales if study.design == Design.LIKERT else [],
        "allowNoPreference": study.allow_no_preference,
        "ratings": study.probe_mode,  # probe studies: every mark rated 1–5 (study-wide: says nothing of an item)
        "studiesUrl": reverse("study-list"),
    }
    response = render(request, "readerstudy/workspace.html", {"study": study, "config": config})
    response["Cache-Control"] = NO_STORE
    return response


@login_required
def my_reading(request):
    """'Your reading': every study the user reads, with their progress."""
    return render(request, "readerstudy/my_reading.html", {"rows": selectors.my_reading(request.user)})


@login_required
def reading_landing(request):
    """Where a login without ?next= lands (LOGIN_REDIRECT_URL): readers with a study still to read go to
    'Your reading', everyone else to the tasks."""
    return redirect("my-reading" if selectors.has_reading(request.user) else "home")


# --- Joining by an invitation link -------------------------------------------------------


def _invitation_closed(request, exc):
    return render(request, "readerstudy/invitation_closed.html", {"message": exc.detail}, status=exc.status_code)


def invitation(request, token):
    """Logged out: make an account (or log in and come back); logged in: join as this account (POST)."""
    try:
        invitation = invitations.open_invitation(token)
    except DomainError as exc:  # unknown or revoked (404), used or expired (410)
        return _invitation_closed(request, exc)
    joining = request.user.is_authenticated
    form = None if joining else JoinForm(request.POST or None)
    refusal = None
    if request.method == "POST" and (joining or form.is_valid()):
        if joining:
            account = {"user": request.user}
        else:
            account = {key: form.cleaned_data[key] for key in ("username", "password", "email")}
        try:
            session = invitations.accept_invitation(token=token, **account)
        except (invitations.InvitationClosed, NotFound) as exc:  # used, expired or revoked meanwhile
            return _invitation_closed(request, exc)
        except DomainError as exc:
            if joining:
                refusal = exc.detail
            else:
                form.add_error(None, exc.detail)
                for error in exc.errors:
                    form.add_error("password" if "password" in error.lower() else None, error)
        else:
            if not joining:
                invitation.refresh_from_db()
                login(request, invitation.used_by, backend="django.contrib.auth.backends.ModelBackend")
            study = invitation.study
            messages.success(request, f"You are a reader of {study.title}.")
            if session is not None and study.status == StudyStatus.RUNNING:
                return redirect("read-workspace", study.uid)
            return redirect("my-reading")
    context = {"invitation": invitation, "study": invitation.study, "form": form, "refusal": refusal}
    failed = refusal or (form is not None and form.errors)
    return render(request, "readerstudy/invitation.html", context, status=400 if failed else 200)


# --- Editors -----------------------------------------------------------------------------


def _editable(request, pk):
    """The study if the user edits it, else 404 (the scope of studies is their editors')."""
    study = policy.get_visible(request.user, ReaderStudy, pk=pk)
    policy.require(request.user, "readerstudy.edit_study", study, hide=True)
    return study


@login_required
def study_list(request):
    return render(
        request,
        "readerstudy/study_list.html",
        {
            "studies": selectors.edited_studies(request.user),
            "reading": selectors.reading_list(request.user),
            "can_create": policy.can(request.user, "readerstudy.create_study"),
        },
    )


def _form_page(request, form, study=None):
    return render(request, "readerstudy/study_form.html", {"form": form, "study": study})


@login_required
def study_create(request):
    policy.require(request.user, "readerstudy.create_study", hide=True)
    initial = {"task": request.GET["task"]} if request.GET.get("task") else {}
    form = StudyForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        study = studies.create_study(form.instance, created_by=request.user, **form.members())
        messages.success(request, "Study created as a draft. Start it when its settings are right.")
        return redirect(study)
    return _form_page(request, form)


@login_required
def study_edit(request, pk):
    study = _editable(request, pk)
    if study.is_frozen:
        messages.error(request, studies.FROZEN)
        return redirect(study)
    form = StudyForm(request.POST or None, instance=study, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            studies.update_draft(form.instance, **form.members())
        except StudyError as exc:  # another editor started it meanwhile
            report(request, exc)
        else:
            messages.success(request, "Saved.")
        return redirect(study)
    return _form_page(request, form, study)


@login_required
def study_detail(request, pk):
    study = _editable(request, pk)
    return render(
        request,
        "readerstudy/study_detail.html",
        {
            "study": study,
            "runs": selectors.study_runs(study),
            "progress": selectors.progress(study),
            "invite_form": InviteForm(study=study),
            "invitation_form": InvitationForm(),
            "invitations": [
                (invitation, request.build_absolute_uri(invitation.get_absolute_url()))
                for invitation in selectors.study_invitations(study)
            ],
            "now": timezone.now(),
            "email_configured": invitations.email_configured(),
            "item_counts": selectors.item_counts(study),
        },
    )


def _invite(request, study):
    form = InviteForm(request.POST, study=study)
    if not form.is_valid():
        raise StudyError("Pick reader accounts to invite.")
    readers = list(form.cleaned_data["readers"])
    studies.invite(study, readers=readers)
    return f"Invited {len(readers)} reader(s)."


def _done(service, message):
    """An action that calls `service(study)`, then tells the editor `message`."""

    def action(request, study):
        service(study)
        return message

    return action


#: The study page's buttons: `action(request, study)` → what the editor is told once it is done.
STUDY_ACTIONS = {
    "start": _done(build.freeze, "Started: the items are frozen and the readers can begin."),
    "close": _done(studies.close, "Closed: readers can no longer answer."),
    "reopen": _done(studies.reopen, "Reopened."),
    "publish": _done(publishing.publish, "Published: the results fill the clinical tier of the task's leaderboard."),
    "unpublish": _done(publishing.unpublish, "Withdrawn from the leaderboard."),
    "invite": _invite,
}


@login_required
@require_POST
def study_action(request, pk, action):
    study = _editable(request, pk)
    if action not in STUDY_ACTIONS:
        raise Http404("Not found.")
    try:
        done = STUDY_ACTIONS[action](request, study)
    except DomainError as exc:
        report(request, exc)
    else:
        messages.success(request, done)
    return redirect(study)


@login_required
@require_POST
def invitation_create(request, pk):
    study = _editable(request, pk)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
        return redirect(study)
    site_url = request.build_absolute_uri("/")
    try:
        invitation = invitations.create_invitation(
            study, created_by=request.user, site_url=site_url, **form.cleaned_data
        )
    except StudyError as exc:
        report(request, exc)
        return redirect(study)
    link = invitations.invitation_link(invitation, site_url=site_url)
    if not invitation.email:
        messages.success(request, f"Invitation link made: {link} (copy it below and send it to the reader).")
    elif invitations.email_configured():
        messages.success(request, f"Invitation link made and e-mailed to {invitation.email}: {link}")
    else:
        messages.success(
            request, f"Invitation link made: {link}. E-mail is not set up on this site: send it to {invitation.email}."
        )
    return redirect(study)


@login_required
@require_POST
def invitation_revoke(request, pk, invitation_pk):
    study = _editable(request, pk)
    invitation = selectors.study_invitations(study).filter(pk=invitation_pk).first()
    if invitation is None:  # revoked already (a second click, another editor)
        messages.info(request, "That invitation was revoked already.")
        return redirect(study)
    try:
        invitations.revoke_invitation(invitation)
    except StudyError as exc:
        report(request, exc)
    else:
        messages.success(request, "Revoked: the link no longer works.")
    return redirect(study)


def _analysable(request, pk):
    """(study, whether the user edits it) if they may read its analysis: its editors always; once published,
    anyone who can see the task, except its own readers while it runs. Else 404."""
    study = get_object_or_404(ReaderStudy.objects.select_related("task"), pk=pk)
    policy.require(request.user, "readerstudy.read_analysis", study, hide=True)
    return study, policy.can(request.user, "readerstudy.edit_study", study)


def _analysis_for(request, pk):
    """(study, its analysis as this user may see it, whether they edit it)."""
    study, editor = _analysable(request, pk)
    result = analysis.analyse(study)
    return study, (result if editor else analysis.for_public(result)), editor


def study_analysis(request, pk):
    study, result, editor = _analysis_for(request, pk)
    return render(
        request,
        "readerstudy/study_analysis.html",
        {
            "study": study,
            "analysis": result,
            "tables": analysis.tables(result),
            "analysis_json": analysis.as_json(result),
            "editor": editor,
            "margin": analysis.EQUIVALENCE_MARGIN,
        },
    )


@endpoint(["GET"], tags=["studies"], **api_schema.STUDY_ANALYSIS)
@json_errors
def study_analysis_json(request, pk):
    _study, result, _editor = _analysis_for(request, pk)
    return JsonResponse(analysis.as_json(result), json_dumps_params={"allow_nan": False})


@login_required
def study_export(request, pk):
    """Every answer with the item's hidden truth (editors only): one row per answer."""
    study = _editable(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-answers.csv"'
    csv.writer(response).writerows(selectors.export_rows(study))
    return response


def task_probes(request, slug):
    """The task's probe analysis: per probe run of its board, the hallucination index, rates per kind, the
    detectors' FROC scores and the uncertainty checks (numbers only: no probe image)."""
    task = policy.get_visible(request.user, Task, slug=slug)
    rows = probe_analysis.probe_rows(task, request.user)
    return render(
        request,
        "readerstudy/probe_analysis.html",
        {
            "task": task,
            "rows": rows,
            "absent_kinds": probe_analysis.kind_labels(probe_analysis.ABSENT_KINDS),
            "inserted_kinds": probe_analysis.kind_labels(probe_analysis.INSERTED),
            "foms": probe_analysis.FOMS,
            "plot": probe_analysis.plot_data(rows),
            "marking_studies": probe_analysis.marking_studies(task, request.user),
        },
    )
