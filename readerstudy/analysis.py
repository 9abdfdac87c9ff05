"""A study's analysis: its answers (with the hidden truth) put through the pure statistics in `stats/`.

Which answers enter what:

* regular items feed every per-model statistic; repeated items only the intra-reader agreement
  (weighted κ between a reader's first and second reading); attention checks only the
  attention table (readers who fail one are flagged, not dropped: the editor decides);
* statistics that need a fully crossed design (Obuchowski–Rockette, Fleiss' κ, ICC) use the
  readers who answered every regular item, and say how many that is; means and Bradley–Terry
  use every answer given.

The result is a plain dict (see `as_json` for its JSON form); `per_run` holds the values that
publishing writes to the leaderboard.
"""

import dataclasses
import math
from collections import defaultdict

import numpy as np

from inference.models import Run

from . import probe_reading, selectors, stats
from .answers import passes_attention
from .models import Design, ItemKind

#: A model whose reader AUC CI lies inside 0.5 ± this margin is reported as indistinguishable from real.
EQUIVALENCE_MARGIN = 0.05
BOOTSTRAP_SEED = 0
N_BOOT = 2000
#: Intra-reader κ from fewer repeated pairs is not shown: from one pair it is 0 with a zero-width CI
#: (or undefined), which reads as a finding.
MIN_KAPPA_PAIRS = 5


def _pairs(records):
    """{reader: [(first answer, repeat answer), …]} for repeated items."""
    by_item = {(r["reader"], r["item"]): r for r in records}
    pairs = defaultdict(list)
    for record in records:
        if record["item_kind"] == ItemKind.REPEAT:
            original = by_item.get((record["reader"], record["repeat_of"]))
            if original is not None:
                pairs[record["reader"]].append((original["answer"], record["answer"]))
    return pairs


def _group_names(study):
    names = {str(run.pk): str(run) for run in study.runs.all()}
    if study.probe_mode:  # the images are the main runs' probe runs'
        for run in Run.objects.filter(study_images__study=study).select_related("probe_of").distinct():
            names[str(run.pk)] = f"{run.probe_of} (probes)"
    names["real"] = "Real images"
    return names


def _complete_readers(regular, n_regular_items):
    counts = defaultdict(int)
    for record in regular:
        counts[record["reader"]] += 1
    return sorted(reader for reader, count in counts.items() if count == n_regular_items)


def _attention(study, records):
    rows = defaultdict(lambda: {"passed": 0, "failed": 0})
    for record in records:
        if record["item_kind"] != ItemKind.ATTENTION:
            continue
        ok = passes_attention(study.design, record["answer"], record["expected"], record["swapped"])
        rows[record["reader"]]["passed" if ok else "failed"] += 1
    return dict(sorted(rows.items()))


def _safe(fn, *args, **kwargs):
    """(result, None) or (None, the reason the statistic is not available)."""
    try:
        return fn(*args, **kwargs), None
    except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
        return None, str(exc)


def analyse(study):
    records = selectors.answer_records(study)
    regular = [r for r in records if r["item_kind"] == ItemKind.REGULAR]
    n_regular = study.items.filter(kind=ItemKind.REGULAR).count()
    complete = _complete_readers(regular, n_regular)
    result = {
        "design": study.design,
        "n_answers": len(records),
        "n_readers": len({r["reader"] for r in records}),
        "n_complete_readers": len(complete),
        "complete_readers": complete,
        "n_regular_items": n_regular,
        "groups": _group_names(study),
        "attention": _attention(study, records),
        "per_run": {},
        "notes": [],
        "margin": EQUIVALENCE_MARGIN,
    }
    if study.paired_cases and study.design != Design.PAIRWISE:
        result["notes"].append(PAIRED_NOTE)
    if not regular:
        result["notes"].append("No answers yet.")
        return result
    analyse_design = {
        Design.TURING: _turing,
        Design.LIKERT: _likert,
        Design.PAIRWISE: _pairwise,
        Design.HALLUCINATION: _hallucination,
    }[study.design]
    analyse_design(study, records, regular, complete, result)
    return result


PAIRED_NOTE = (
    "Paired cases (the editor's choice): every run showed the same cases, and real images could come from "
    "them too, so readers may have met one anatomy in several images and compared them; that makes "
    "synthetic images easier to spot than in a study where each case is shown once."
)


def _repeat_kappa(first, second, **kwargs):
    """(κ, None) between first and repeat readings, or (None, why it is not given)."""
    if not first:
        return None, "No repeated items answered."
    if len(first) < MIN_KAPPA_PAIRS:
        return None, (
            f"not computed from {len(first)} repeated pair{'s' if len(first) != 1 else ''}: "
            f"it needs at least {MIN_KAPPA_PAIRS}"
        )
    return _safe(stats.weighted_kappa, first, second, weights="linear", **kwargs)


def _turing_per_run(answers):
    """Each run's images against the real pool, per reader (every answer given): accuracy, sensitivity,
    specificity and AUC, shown with or without a between-reader analysis."""
    runs = sorted({a[1] for a in answers if a[1] is not None})
    return {run: stats.reader_accuracy([a for a in answers if a[1] in (None, run)]) for run in runs}


def _published(result, run_id, metric, value, ci, n, extractor_suffix="", scale_label=None):
    entry = {"metric": metric, "value": value, "ci_low": ci[0], "ci_high": ci[1], "n": n, "suffix": extractor_suffix}
    if scale_label:
        entry["scale_label"] = scale_label
    result["per_run"].setdefault(int(run_id), []).append(entry)


def _turing(study, records, regular, complete, result):
    answers = [
        (r["reader"], r["run"], r["case"] if r["run"] else r["image"], r["answer"]["call"], r["answer"]["confidence"])
        for r in regular
    ]
    result["readers"] = stats.reader_accuracy(answers)
    correct = sum(a.n_correct for a in result["readers"].values())
    total = sum(a.n for a in result["readers"].values())
    result["overall_accuracy"] = (correct / total, stats.wilson_interval(correct, total)) if total else None
    result["turing_per_run"] = _turing_per_run(answers)
    crossed = [a for a in answers if a[0] in complete]
    result["fleiss_kappa"], result["fleiss_kappa_note"] = _safe(stats.calls_fleiss_kappa, crossed)
    result["mrmc"], result["turing_models"] = None, {}
    if len(complete) < 2:
        result["mrmc_note"] = "The Obuchowski–Rockette analysis needs at least two readers who answered every item."
    elif study.paired_cases or study.runs.count() == 1:
        # Every run showed the same cases: one joint analysis, paired over readers and cases.
        built, note = _safe(stats.per_model_or, crossed)
        joint, note = _safe(stats.obuchowski_rockette, built.records) if built else (None, note)
        result["mrmc"], result["mrmc_note"] = joint, note
        for model, estimate in (joint.single_modality if joint else {}).items():
            result["turing_models"][model] = {"estimate": estimate, "reader_auc": joint.reader_auc[model]}
    else:
        # Each run showed cases of its own: each is analysed against the shared real pool on its own; a
        # test between runs would need the same cases for every run (the study's "paired cases").
        result["mrmc_note"] = "Runs were shown different cases, so they are not tested against each other."
        for model in sorted({a[1] for a in crossed if a[1] is not None}):
            built, note = _safe(stats.per_model_or, [a for a in crossed if a[1] in (None, model)])
            single, note = _safe(stats.obuchowski_rockette, built.records) if built else (None, note)
            if single is None:
                result["mrmc_note"] = note
                continue
            estimate = single.single_modality[model]
            result["turing_models"][model] = {"estimate": estimate, "reader_auc": single.reader_auc[model]}
    result["equivalence"] = {
        model: stats.equivalence_to_chance(entry["estimate"], EQUIVALENCE_MARGIN)
        for model, entry in result["turing_models"].items()
    }
    for model, entry in result["turing_models"].items():
        # The logit-scale CI (inside [0, 1]); the symmetric OR interval stays with the analysis and TOST.
        _published(result, model, "reader_auc", entry["estimate"].auc, entry["estimate"].ci_bounded, len(complete))
    pairs = _pairs(records)
    first = [stats.synthetic_rating(a["call"], a["confidence"]) for reader in pairs for a, _ in pairs[reader]]
    second = [stats.synthetic_rating(b["call"], b["confidence"]) for reader in pairs for _, b in pairs[reader]]
    result["repeat_kappa"], result["repeat_kappa_note"] = _repeat_kappa(first, second, categories=range(1, 11))


def _likert(study, records, regular, complete, result):
    scales = study.scales
    result["scales"] = scales
    result["mos"], result["icc"], result["repeat_kappa"] = {}, {}, {}
    pairs = _pairs(records)
    for scale in scales:
        key = scale["key"]
        # The bootstrap resamples source cases (real controls are their own case).
        rows = [(r["reader"], r["run"] or "real", r["case"], r["answer"]["scores"][key]) for r in regular]
        mos, note = _safe(stats.mean_opinion_score, rows, n_boot=N_BOOT, seed=BOOTSTRAP_SEED)
        result["mos"][key] = mos or {}
        for group, score in (mos or {}).items():
            if group != "real":
                _published(result, group, "reader_mos", score.mean, score.ci, score.n_scores, f":{key}", scale["label"])
        matrix_rows = defaultdict(dict)
        for r in regular:
            if r["reader"] in complete:
                matrix_rows[r["image"]][r["reader"]] = r["answer"]["scores"][key]
        matrix = [[row[reader] for reader in complete] for row in matrix_rows.values()]
        result["icc"][key] = _safe(stats.icc, matrix) if len(complete) >= 2 else (
            None, "ICC needs at least two readers who answered every item.")  # fmt: skip
        first = [a["scores"][key] for reader in pairs for a, _ in pairs[reader]]
        second = [b["scores"][key] for reader in pairs for _, b in pairs[reader]]
        result["repeat_kappa"][key] = _repeat_kappa(first, second)


def _pairwise(study, records, regular, complete, result):
    runs = sorted({r["run"] for r in regular} | {r["run_b"] for r in regular})
    index = {run: i for i, run in enumerate(runs)}
    rows, wins = [], np.zeros((len(runs), len(runs)))
    no_preference = 0
    for r in regular:
        a, b = index[r["run"]], index[r["run_b"]]
        choice = r["answer"]["choice"]
        if choice == "none":
            score, no_preference = 0.5, no_preference + 1
        else:
            # The reader saw image A on the left unless the pair was swapped.
            chose_a = (choice == "left") != r["swapped"]
            score = 1.0 if chose_a else 0.0
        rows.append((r["reader"], r["case"], a, b, score))
        wins[a, b] += score
        wins[b, a] += 1 - score
    result["runs"] = [str(run) for run in runs]
    result["wins"] = wins
    result["no_preference"] = no_preference
    comparisons = [(a, b) if s == 1 else (b, a) for _, _, a, b, s in rows if s != 0.5]
    ties = [(a, b) for _, _, a, b, s in rows if s == 0.5]
    fit, note = _safe(stats.bradley_terry, comparisons, len(runs), ties=ties)
    boot, boot_note = _safe(stats.bradley_terry_bootstrap, rows, len(runs), n_boot=N_BOOT, seed=BOOTSTRAP_SEED)
    result["bradley_terry"], result["bradley_terry_note"] = fit, note
    result["bradley_terry_bootstrap"], result["bootstrap_note"] = boot, boot_note
    if fit is not None:
        for run, i in index.items():
            if boot is not None:
                ci = (_expit(boot.ci_low[i]), _expit(boot.ci_high[i]))
            else:
                ci = (float(fit.p_beat_average_ci[0][i]), float(fit.p_beat_average_ci[1][i]))
            _published(result, run, "reader_preference", float(fit.p_beat_average[i]), ci, len(rows))


def _expit(value):
    return float(1 / (1 + math.exp(-value)))


def _hallucination(study, records, regular, complete, result):
    rows = [(r["reader"], r["run"] or "real", r["image"], len(r["answer"].get("marks", []))) for r in regular]
    summary, note = _safe(stats.hallucination_marks, rows, n_boot=N_BOOT, seed=BOOTSTRAP_SEED)
    result["marks"], result["marks_note"] = summary or {}, note
    main_of = dict(study.images.filter(run__isnull=False).values_list("run_id", "run__probe_of_id").distinct())
    for group, mark_summary in (summary or {}).items():
        if group != "real":
            run = (main_of.get(int(group)) or group) if study.probe_mode else group  # a main run's row
            _published(result, run, "reader_marks", mark_summary.marks_per_image, mark_summary.marks_per_image_ci,
                       mark_summary.n_reads)  # fmt: skip
    marked = defaultdict(lambda: {"marks": [], "readers": set()})
    for r in regular:
        for mark in r["answer"].get("marks", []):
            entry = marked[r["image"]]
            entry.update(case=r["case"], case_pk=r["case_pk"], run=r["run"], run_name=r["run_name"] or "Real image")
            entry["marks"].append({"reader": r["reader"], **mark})
            entry["readers"].add(r["reader"])
    result["marked_images"] = [
        {**entry, "image": image, "readers": sorted(entry["readers"])}
        for image, entry in sorted(marked.items(), key=lambda item: -len(item[1]["marks"]))
    ]
    if study.probe_mode:
        result["probe"] = probe_reading.analyse(study, records, complete)


# --- JSON ----------------------------------------------------------------------------------


def _clean(value):
    """JSON-safe: NaN/inf → None, numpy → Python, dataclasses and tuples → dicts and lists, keys → str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "__dataclass_fields__"):
        return {name: _clean(getattr(value, name)) for name in value.__dataclass_fields__ if name != "covariance"}
    if hasattr(value, "value") and hasattr(value, "name") and isinstance(value.value, str):  # enums
        return value.value
    return value


def as_json(result):
    data = dict(result)
    mrmc = data.get("mrmc")
    if mrmc is not None:
        data["mrmc"] = {
            **_clean(mrmc),
            "reader_auc": _clean(mrmc.reader_auc),
            "modality_auc": _clean(mrmc.modality_auc),
        }
    if "equivalence" in data:
        data["equivalence"] = {k: {**_clean(v), "text": v.text} for k, v in data["equivalence"].items()}
    for key in ("icc", "repeat_kappa"):
        if isinstance(data.get(key), dict):
            data[key] = {k: {"result": _clean(v[0]), "note": v[1]} for k, v in data[key].items()}
        elif isinstance(data.get(key), tuple):
            data[key] = {"result": _clean(data[key][0]), "note": data[key][1]}
    return _clean(data)


def for_public(result):
    """The analysis as anyone but its editors sees it: readers as "Reader 1…n" (in name order), and
    no marked images (where each reader marked stays with the editors, like the export)."""
    names = sorted(
        set(result.get("complete_readers", [])) | set(result.get("readers", {})) | set(result["attention"])
        | set(result.get("probe", {}).get("readers", []))
    )  # fmt: skip
    alias = {name: f"Reader {i + 1}" for i, name in enumerate(names)}
    public = {key: value for key, value in result.items() if key != "marked_images"}
    public["complete_readers"] = [alias[name] for name in result.get("complete_readers", [])]
    public["attention"] = {alias[name]: row for name, row in result["attention"].items()}
    if "readers" in result:
        public["readers"] = {
            alias[name]: dataclasses.replace(row, reader=alias[name]) for name, row in result["readers"].items()
        }
    if "turing_models" in result:
        public["turing_models"] = {
            model: {**entry, "reader_auc": {alias[name]: auc for name, auc in entry["reader_auc"].items()}}
            for model, entry in result["turing_models"].items()
        }
    if "turing_per_run" in result:
        public["turing_per_run"] = {
            run: {alias[name]: dataclasses.replace(row, reader=alias[name]) for name, row in rows.items()}
            for run, rows in result["turing_per_run"].items()
        }
    mrmc = result.get("mrmc")
    if mrmc is not None:
        public["mrmc"] = dataclasses.replace(mrmc, readers=tuple(alias[name] for name in mrmc.readers))
    if "probe" in result:
        public["probe"] = _public_probe(result["probe"], alias)
    return public


def _public_probe(probe, alias):
    public = {**probe, "readers": [alias[name] for name in probe["readers"]]}
    public["runs"] = {
        run: {**row, "reader_fom": {alias[name]: v for name, v in row["reader_fom"].items()}}
        for run, row in probe["runs"].items()
    }
    if probe.get("significance") is not None:
        sig = probe["significance"]
        public["significance"] = dataclasses.replace(sig, readers=tuple(alias[name] for name in sig.readers))
    return public


# --- Page tables ----------------------------------------------------------------------------


def _name(result, group):
    return result["groups"].get(str(group), str(group))


def tables(result):
    """Rows for the analysis page, with group names resolved (the template only prints)."""
    out = {}
    design = result["design"]
    if design == Design.TURING and "readers" in result:
        out["readers"] = list(result["readers"].values())
        equivalence = result.get("equivalence", {})
        models = result.get("turing_models", {})
        out["mrmc_readers"] = sorted({reader for entry in models.values() for reader in entry["reader_auc"]})
        out["models"] = [
            {"name": _name(result, model), "estimate": entry["estimate"], "verdict": equivalence.get(model),
             "reader_auc": [entry["reader_auc"].get(reader) for reader in out["mrmc_readers"]]}
            for model, entry in models.items()
        ]  # fmt: skip
        out["per_run"] = [
            {"name": _name(result, run), "readers": list(rows.values())}
            for run, rows in result.get("turing_per_run", {}).items()
        ]
        mrmc = result.get("mrmc")
        if mrmc is not None:
            out["differences"] = [
                {"a": _name(result, d.a), "b": _name(result, d.b), "difference": d} for d in mrmc.differences
            ]
    if design == Design.LIKERT:
        out["scales"] = []
        for scale in result.get("scales", []):
            key = scale["key"]
            icc_result, icc_note = result["icc"].get(key, (None, None))
            kappa, kappa_note = result["repeat_kappa"].get(key, (None, None))
            out["scales"].append(
                {
                    "scale": scale,
                    "mos": [{"name": _name(result, g), "score": s} for g, s in result["mos"].get(key, {}).items()],
                    "icc": icc_result,
                    "icc_note": icc_note,
                    "kappa": kappa,
                    "kappa_note": kappa_note,
                }
            )
    if design == Design.PAIRWISE and result.get("bradley_terry") is not None:
        fit, boot = result["bradley_terry"], result.get("bradley_terry_bootstrap")
        names = [_name(result, run) for run in result["runs"]]
        out["strengths"] = [
            {
                "name": name,
                "strength": float(fit.strengths[i]),
                "fisher_ci": (float(fit.ci_low[i]), float(fit.ci_high[i])),
                "bootstrap_ci": (float(boot.ci_low[i]), float(boot.ci_high[i])) if boot is not None else None,
                "p_beat_average": float(fit.p_beat_average[i]),
            }
            for i, name in enumerate(names)
        ]
        out["wins"] = [{"name": names[i], "row": [float(v) for v in row]} for i, row in enumerate(result["wins"])]
        out["win_names"] = names
    if design == Design.HALLUCINATION:
        out["marks"] = [{"name": _name(result, g), "summary": s} for g, s in result.get("marks", {}).items()]
        if "probe" in result:
            out["probe"] = _probe_tables(result)
    return out


def _probe_tables(result):
    probe = result["probe"]
    readers = probe["readers"]
    out = {
        "readers": readers,
        "runs": [
            {
                "name": _name(result, run),
                "lesions": row["lesions"],
                "ll": row["ll"],
                "nl": row["nl"],
                "mean": row["mean_fom"],
                "why": row.get("why"),
                "reader_fom": [row["reader_fom"].get(reader) for reader in readers],
            }
            for run, row in probe["runs"].items()
        ],
    }
    sig = probe.get("significance")
    if sig is not None:
        out["differences"] = [
            {"a": _name(result, d.a), "b": _name(result, d.b), "difference": d} for d in sig.differences
        ]
        out["single"] = [{"name": _name(result, m), "estimate": e} for m, e in sig.single_modality.items()]
    return out
