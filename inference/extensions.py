"""Hooks through which apps above inference add to its pages and endpoints without inference
importing them (they register from their `AppConfig.ready`).

* Run page sections: `add_run_section(section)`, where `section(request, run)` returns a
  `Section` (rendered HTML and the scripts it needs) or None. The evaluation app adds the
  metrics and downstream blocks this way.
* Task settings checks: `add_task_check(check)`, where `check(settings)` gets the task's
  `metrics`, `primary_metric`, `ranking`, `profile`, `region`, `region_threshold` and `dataset` (None
  when not chosen yet) and returns {field: message} for what is wrong (the evaluation app knows the
  metric catalogue and the profiles). `Task.clean` runs them, so the admin and every model form do.
* Array sources for the viewer's endpoints: `add_array_source(name, source)`, where
  `source(request, pk)` returns an `ArraySource` the user may see (or raises a 404); the URL
  patterns that serve it belong to the registering app.
"""

from dataclasses import dataclass, field

_run_sections = []
_array_sources = {}
_task_checks = []


@dataclass(frozen=True)
class Script:
    src: str  # a static path
    module: bool = True  # an ES module (ours), or a classic script (vendored plotly)


@dataclass(frozen=True)
class Section:
    html: str
    scripts: list = field(default_factory=list)  # the Scripts the section needs, in order


def add_run_section(section):
    _run_sections.append(section)


def run_sections(request, run):
    return [part for part in (section(request, run) for section in _run_sections) if part is not None]


def add_array_source(name, source):
    _array_sources[name] = source


def array_source(name):
    return _array_sources[name]


def add_task_check(check):
    _task_checks.append(check)


def check_task_settings(settings):
    errors = {}
    for check in _task_checks:
        errors.update(check(settings))
    return errors
