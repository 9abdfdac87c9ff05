"""Reader-study pages (editors' list, form, detail, analysis, export; the reader's workspace) and the
reader's JSON endpoints.

Reader endpoints answer JSON and know an item only by its token:

    GET  /api/read/<study uid>/state/                     progress and the current item
    POST /api/read/<study uid>/answers/                   {"item", "answer", "key"} → the next state
    POST /api/read/<study uid>/draft/                     {"item", "answer"} autosave (204)
    GET  /api/read/items/<token>/images/<slot>/           viewer header of the item's image (0 left, 1 right)
    GET  /api/read/items/<token>/images/<slot>/data/      its float32 bytes (?slice=k)

Anything a reader may not reach is a 404 that says only "Not found." (`errors.NotReadable`: a 403 would
confirm that the thing exists).
"""

import csv
import functools
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core import policy
from core.errors import DomainError, InvalidInput, NotAuthenticated
from core.pages import report
from core.responses import json_errors
from inference.viewer import open_field, plane_response

from . import analysis, selectors
from .errors import AnswerConflict, StudyError
from .forms import InviteForm, StudyForm
from .models import Design, ReaderStudy
from .services import build, publishing, reading, studies

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


@require_GET
@reader_api
def read_state(request, uid):
    return JsonResponse(reading.state(reading.reader_session(uid, request.user)))


@require_POST
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


@require_POST
@reader_api
def read_draft(request, uid):
    body = _json_body(request, "item")
    session = reading.reader_session(uid, request.user)
    reading.save_draft(session, token=body["item"], value=body.get("answer"))
    return HttpResponse(status=204)


@require_GET
@reader_api
def read_image(request, token, slot):
    image = reading.reader_image(request.user, token, slot)
    return JsonResponse(reading.image_header(token, slot, image))


@require_GET
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
        "studiesUrl": reverse("study-list"),
    }
    response = render(request, "readerstudy/workspace.html", {"study": study, "config": config})
    response["Cache-Control"] = NO_STORE
    return response


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
