"""Reader-study pages (editors' list, form, detail, analysis, export; the reader's workspace) and the
reader's JSON endpoints.

Reader endpoints answer JSON and know an item only by its token:

    GET  /api/read/<study uid>/state/                     progress and the current item
    POST /api/read/<study uid>/answers/                   {"item", "answer", "key"} → the next state
    POST /api/read/<study uid>/draft/                     {"item", "answer"} autosave (204)
    GET  /api/read/items/<token>/images/<slot>/           viewer header of the item's image (0 left, 1 right)
    GET  /api/read/items/<token>/images/<slot>/data/      its float32 bytes (?slice=k)

Anything a reader may not reach is a 404 that says only "Not found." (a 403 would confirm
that the thing exists).
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
from core.models import IllegalTransition
from core.pages import report
from evaluation import formatting
from inference import arrays
from inference.viewer import open_field, plane_response

from . import analysis, blinding, selectors
from .answers import InvalidAnswer
from .errors import AnswerConflict, NotReadable, StudyError
from .forms import InviteForm, StudyForm
from .models import Design, ReaderStudy, StudyStatus
from .services import build, publishing, reading, studies

#: Nothing a reader fetches may be kept by a shared cache or reused after the study.
NO_STORE = "private, no-store"


# --- Reader endpoints --------------------------------------------------------------------


def _reader_json(view):
    """Login required (401 JSON), and the services' errors as JSON 4xx."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"detail": "Log in to read."}, status=401)
        try:
            response = view(request, *args, **kwargs)
        except NotReadable:
            response = JsonResponse({"detail": "Not found."}, status=404)
        except AnswerConflict as exc:
            response = JsonResponse({"detail": str(exc)}, status=409)
        except (InvalidAnswer, StudyError) as exc:
            response = JsonResponse({"detail": str(exc)}, status=400)
        except arrays.TooLarge as exc:
            response = JsonResponse({"detail": str(exc)}, status=413)
        except arrays.BadRequest as exc:
            response = JsonResponse({"detail": str(exc)}, status=400)
        response["Cache-Control"] = NO_STORE
        return response

    return wrapper


def _json_body(request, *fields):
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidAnswer("The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise InvalidAnswer("The request body must be a JSON object.")
    for field in fields:
        if not isinstance(body.get(field), str) or not body[field]:
            raise InvalidAnswer(f"'{field}' must be a non-empty string.")
    return body


@require_GET
@_reader_json
def read_state(request, uid):
    session = reading.reader_session(uid, request.user)
    return JsonResponse(reading.state(session))


@require_POST
@_reader_json
def read_answer(request, uid):
    body = _json_body(request, "item", "key")
    try:
        data = reading.submit_as(
            uid, reader=request.user, token=body["item"], value=body.get("answer"), key=body["key"]
        )
    except AnswerConflict as exc:
        session = reading.reader_session(uid, request.user)
        return JsonResponse({"detail": str(exc), "state": reading.state(session)}, status=409)
    return JsonResponse(data)


@require_POST
@_reader_json
def read_draft(request, uid):
    body = _json_body(request, "item")
    session = reading.reader_session(uid, request.user)
    reading.save_draft(session, token=body["item"], value=body.get("answer"))
    return HttpResponse(status=204)


@require_GET
@_reader_json
def read_image(request, token, slot):
    return JsonResponse(reading.image_header(token, slot, reading.reader_image(request.user, token, slot)))


@require_GET
@_reader_json
def read_image_data(request, token, slot):
    image = reading.reader_image(request.user, token, slot)
    return plane_response(open_field(image.array), request.GET.get("slice"))


@login_required
def workspace(request, uid):
    try:
        session = reading.reader_session(uid, request.user)
    except NotReadable:
        raise Http404("Not found.") from None
    study = session.study
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
    study = policy.get_visible(request.user, ReaderStudy, pk=pk)
    return study


@login_required
def study_list(request):
    studies = policy.visible(request.user, ReaderStudy).select_related("task")
    sessions = {s.study_id: s for s in request.user.reader_sessions.select_related("study").all()}
    reading = []
    for study in request.user.reader_studies.filter(status=StudyStatus.RUNNING).order_by("title"):
        session = sessions.get(study.pk)
        reading.append({"study": study, "session": session})
    return render(
        request,
        "readerstudy/study_list.html",
        {"studies": studies, "reading": reading, "can_create": policy.can(request.user, "readerstudy.create_study")},
    )


def _form_page(request, form, study=None):
    return render(request, "readerstudy/study_form.html", {"form": form, "study": study})


@login_required
def study_create(request):
    if not policy.can(request.user, "readerstudy.create_study"):
        raise Http404("Not found.")
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
    invite_form = InviteForm(study=study)
    return render(
        request,
        "readerstudy/study_detail.html",
        {
            "study": study,
            "runs": study.runs.select_related("model").order_by("pk"),
            "progress": selectors.progress(study),
            "invite_form": invite_form,
            "item_counts": selectors.item_counts(study),
        },
    )


@login_required
@require_POST
def study_action(request, pk, action):
    study = _editable(request, pk)
    try:
        if action == "start":
            build.freeze(study)
            messages.success(request, "Started: the items are frozen and the readers can begin.")
        elif action == "close":
            studies.close(study)
            messages.success(request, "Closed: readers can no longer answer.")
        elif action == "reopen":
            studies.reopen(study)
            messages.success(request, "Reopened.")
        elif action == "publish":
            publishing.publish(study)
            messages.success(request, "Published: the results fill the clinical tier of the task's leaderboard.")
        elif action == "unpublish":
            publishing.unpublish(study)
            messages.success(request, "Withdrawn from the leaderboard.")
        elif action == "invite":
            form = InviteForm(request.POST, study=study)
            if not form.is_valid():
                raise StudyError("Pick reader accounts to invite.")
            studies.invite(study, readers=list(form.cleaned_data["readers"]))
            messages.success(request, f"Invited {len(form.cleaned_data['readers'])} reader(s).")
        else:
            raise Http404("Not found.")
    except (StudyError, IllegalTransition) as exc:
        messages.error(request, str(exc))
    except blinding.NotShowable as exc:
        messages.error(request, f"An image could not be prepared: {exc}")
    return redirect(study)


def _analysable(request, pk):
    """The study if the user may read its analysis: its editors always; once published, anyone who can
    see the task, except its own readers while it runs. Else 404."""
    study = get_object_or_404(ReaderStudy.objects.select_related("task"), pk=pk)
    if not policy.can(request.user, "readerstudy.read_analysis", study):
        raise Http404("Not found.")
    return study, study.is_editor(request.user)


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


def study_analysis_json(request, pk):
    _study, result, _editor = _analysis_for(request, pk)
    return JsonResponse(analysis.as_json(result), json_dumps_params={"allow_nan": False})


EXPORT_COLUMNS = [
    "reader",
    "position",
    "item",
    "item_kind",
    "repeat_of",
    "case",
    "source",
    "run",
    "run_name",
    "image",
    "source_b",
    "run_b",
    "run_b_name",
    "image_b",
    "swapped",
    "answer",
    "duration_ms",
    "answered_at",
    "expected",
]


@login_required
def study_export(request, pk):
    """Every answer with the item's hidden truth (editors only): one row per answer."""
    study = _editable(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-answers.csv"'
    writer = csv.writer(response)
    writer.writerow(EXPORT_COLUMNS)
    for record in selectors.answer_records(study):
        row = []
        for column in EXPORT_COLUMNS:
            value = record[column]
            if isinstance(value, dict | list):
                value = json.dumps(value, sort_keys=True)
            elif value is None:
                value = ""
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            row.append(formatting.spreadsheet_safe(value))
        writer.writerow(row)
    return response
