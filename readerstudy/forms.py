"""Forms of the editors' pages (a study's settings, inviting readers, invitation links) and of joining by a link."""

import json

from django import forms
from django.contrib.auth import get_user_model

from core import policy
from core.accounts import USERNAME_MAX
from core.models import JobStatus
from inference.models import Run, Task

from . import permissions, selectors
from .models import DEFAULT_SCALES, Design, ReaderStudy
from .services.invitations import MAX_DAYS


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


class RunCheckboxes(forms.CheckboxSelectMultiple):
    """The runs as checkboxes, each carrying its task (`data-task`): static/js/study_form.js shows only the
    chosen task's runs (the form refuses another task's on submit as well)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex=subindex, attrs=attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-task"] = str(instance.task_id)
        return option


class StudyForm(forms.ModelForm):
    """A draft's settings: the runs (succeeded, of the task, visible to the user), readers (no staff rights)
    who neither edit nor created the study, and the design's options."""

    scales = ScalesField(required=False, help_text="Likert only: each scale's key, label and anchors for 1 to 5.")

    class Meta:
        model = ReaderStudy
        fields = list(ReaderStudy.SETTINGS)
        widgets = {
            "runs": RunCheckboxes(attrs={"class": "checkbox-list"}),
            "readers": forms.CheckboxSelectMultiple(attrs={"class": "checkbox-list"}),
            "editors": forms.CheckboxSelectMultiple(attrs={"class": "checkbox-list"}),
            "instructions": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        tasks = permissions.study_tasks(user)
        if self.instance.pk:  # an editor keeps the study's task, whoever may create studies
            tasks = tasks | policy.visible(user, Task).filter(pk=self.instance.task_id)
        self.fields["task"].queryset = tasks
        # Main runs only: a probe-mode study reads their probe runs itself.
        runs = policy.visible(user, Run).filter(status=JobStatus.SUCCEEDED, probe_of__isnull=True)
        self.fields["runs"].queryset = runs.select_related("task").order_by("task__name", "name")
        self.fields["runs"].label_from_instance = lambda run: f"{run.task.name}: {run}"
        self.fields["runs"].help_text = "Succeeded runs of the chosen task."
        creator = self.instance.created_by if self.instance.pk else user
        readers = selectors.reader_accounts()
        if policy.is_authenticated(creator):  # the creator edits the study: never offered as its reader
            readers = readers.exclude(pk=creator.pk)
        self.fields["readers"].queryset = readers
        self.fields["readers"].help_text = "Reader accounts (no staff rights)."
        self.fields["editors"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        self.fields["editors"].required = False
        self.fields["readers"].required = False
        for name in ("acceptance", "acceptance_radius_px"):  # probe mode only: left out, they keep their defaults
            self.fields[name].required = False
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
        if data.get("design") != Design.HALLUCINATION:
            data["probe_mode"] = False  # its fields are shown for hallucination marking only
        for name in ("acceptance", "acceptance_radius_px"):
            if data.get(name) in (None, ""):
                data[name] = ReaderStudy._meta.get_field(name).get_default()
        return data

    def members(self):
        """The study's runs, readers and editors as cleaned (the services' keyword arguments)."""
        return {name: self.cleaned_data.get(name) or [] for name in ("runs", "readers", "editors")}


class InviteForm(forms.Form):
    """Reader accounts not yet invited to `study`."""

    readers = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), widget=forms.CheckboxSelectMultiple(attrs={"class": "checkbox-list"})
    )

    def __init__(self, *args, study=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["readers"].queryset = selectors.reader_accounts().exclude(pk__in=study.readers.all())


class InvitationForm(forms.Form):
    """An editor's new invitation link: where to e-mail it (optional) and for how many days it works."""

    email = forms.EmailField(required=False, help_text="Optional: the link is e-mailed there when e-mail is set up.")
    days = forms.IntegerField(min_value=1, max_value=MAX_DAYS, initial=14, label="Valid for (days)")


class JoinForm(forms.Form):
    """A new reader's account, made through an invitation link."""

    username = forms.CharField(max_length=USERNAME_MAX)
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, max_length=512)
    password_again = forms.CharField(widget=forms.PasswordInput, max_length=512, label="Password (again)")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return cleaned
