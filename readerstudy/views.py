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

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core import policy
from core.models import IllegalTransition, JobStatus
from evaluation import formatting
from inference import arrays
from inference.models import Run, Task
from inference.viewer import open_field, plane_response

from . import analysis, blinding, selectors
from .answers import InvalidAnswer
from .errors import AnswerConflict, NotReadable, StudyError
from .models import DEFAULT_SCALES, Design, ReaderStudy, StudyStatus
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


class ScalesField(forms.CharField):
    """Likert scales as JSON text: [{"key", "label", "anchors": [five texts]}]."""

    widget = forms.Textarea(attrs={"rows": 12, "class": "mono"})

    def prepare_value(self, value):
        return value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False)

    def to_python(self, value):
        if not value:
            return []
        try:
            return json.loads(value)
        except RecursionError:
            raise forms.ValidationError("Not valid JSON: nested too deeply.") from None
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None


class StudyForm(forms.ModelForm):
    scales = ScalesField(required=False, help_text="Likert only: each scale's key, label and anchors for 1 to 5.")

    class Meta:
        model = ReaderStudy
        fields = [
            "title",
            "instructions",
            "task",
            "design",
            "runs",
            "items_per_model",
            "real_pool",
            "real_ratio",
            "scales",
            "allow_no_preference",
            "repeated_items",
            "attention_checks",
            "readers",
            "editors",
            "seed",
        ]
        widgets = {"runs": forms.SelectMultiple(attrs={"size": 8}), "instructions": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["task"].queryset = policy.visible(user, Task)
        runs = policy.visible(user, Run).filter(status=JobStatus.SUCCEEDED)
        self.fields["runs"].queryset = runs.select_related("task").order_by("task__name", "name")
        self.fields["runs"].label_from_instance = lambda run: f"{run.task.name}: {run}"
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        self.fields["readers"].queryset = users.filter(is_staff=False, is_superuser=False)
        self.fields["readers"].help_text = "Reader accounts (no staff rights)."
        self.fields["editors"].queryset = users
        self.fields["editors"].required = False
        self.fields["readers"].required = False
        if not self.initial.get("scales") and not (self.instance and self.instance.scales):
            self.initial["scales"] = DEFAULT_SCALES

    def clean(self):
        data = super().clean()
        task, runs = data.get("task"), data.get("runs")
        if task and runs:
            foreign = [str(run) for run in runs if run.task_id != task.pk]
            if foreign:
                self.add_error("runs", f"Runs of another task: {', '.join(foreign)}.")
        creator = self.instance.created_by if self.instance.pk else self.user
        both = set(data.get("readers") or []) & (set(data.get("editors") or []) | {creator})
        if both:
            self.add_error("readers", f"A reader cannot also edit the study: {', '.join(sorted(map(str, both)))}.")
        if data.get("design") != Design.LIKERT:
            data["scales"] = []
        return data


def _form_page(request, form, study=None):
    return render(request, "readerstudy/study_form.html", {"form": form, "study": study})


@login_required
def study_create(request):
    if not policy.can(request.user, "readerstudy.create_study"):
        raise Http404("Not found.")
    initial = {}
    if request.GET.get("task"):
        initial["task"] = request.GET["task"]
    form = StudyForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        study = form.save(commit=False)
        study.created_by = request.user
        study.save()
        form.save_m2m()
        messages.success(request, "Study created as a draft. Start it when its settings are right.")
        return redirect(study)
    return _form_page(request, form)


@login_required
def study_edit(request, pk):
    study = _editable(request, pk)
    with transaction.atomic():
        if request.method == "POST":  # lock: another editor may be starting the study right now
            study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
        if study.is_frozen:
            messages.error(request, "The study has started: its settings and items are frozen.")
            return redirect(study)
        form = StudyForm(request.POST or None, instance=study, user=request.user)
        if request.method == "POST" and form.is_valid():
            if not ReaderStudy.objects.filter(pk=study.pk, status=StudyStatus.DRAFT).exists():
                messages.error(request, "The study has started: its settings and items are frozen.")
                return redirect(study)
            edited = form.save(commit=False)
            many = {field.name for field in ReaderStudy._meta.many_to_many}
            edited.save(update_fields=[name for name in form.Meta.fields if name not in many])  # never the status
            form.save_m2m()
            messages.success(request, "Saved.")
            return redirect(study)
    return _form_page(request, form, study)


class InviteForm(forms.Form):
    readers = forms.ModelMultipleChoiceField(queryset=get_user_model().objects.none())

    def __init__(self, *args, study=None, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True, is_staff=False, is_superuser=False)
        self.fields["readers"].queryset = users.exclude(pk__in=study.readers.all()).order_by("username")


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
