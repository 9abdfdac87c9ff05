"""readerstudy.stats against published MRMC outputs and reference libraries.

MRMC reference outputs for the Van Dyke et al. (1993) study (tests/data/vandyke_roc.csv, RJafroc's dataset02):
- OR-DBM MRMC 2.51 (Build 20181028), jackknife covariance, trapezoidal AUC: the program's own printout stored in
  RJafroc, https://github.com/dpc10ster/RJafroc/blob/master/tests/testthat/goodValues361/Iowa/VanDyke.txt
- MRMCaov (R), jackknife: the README's ``summary(mrmc(empirical_auc(truth, rating), treatment, reader, case,
  data = VanDyke))``, https://github.com/brian-j-smith/MRMCaov (README.md, package version 0.1.5);
  the same numbers with more digits in RJafroc's ``StSignificanceTesting(dataset02, FOM = "Wilcoxon", method = "OR")``
  printout in the RJafroc book chapter "Illustrations of the OR method" (github.com/dpc10ster/RJafrocBook).
- MRMCaov, DeLong covariance: ``summary(mrmc(..., cov = DeLong))`` printed in the package's JSS manuscript,
  https://github.com/brian-j-smith/MRMCaov/blob/master/docs/jss/MRMCaov.tex
Each value is compared to the digits printed there (half a unit in the last printed place).
"""

import csv
import itertools
import math
from decimal import Decimal
from pathlib import Path

import choix
import numpy as np
import pandas as pd
import pingouin
import pytest
import statsmodels.api as sm
from scipy import special
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, roc_auc_score
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from readerstudy.stats import agreement, marks, mrmc, pairwise, turing

VANDYKE = Path(__file__).resolve().parents[1] / "data" / "vandyke_roc.csv"  # a copy of shared/data/vandyke_roc.csv


def printed(value, text):
    """True when value rounds to the printed number ``text`` (within half a unit of its last printed digit)."""
    exponent = Decimal(text).as_tuple().exponent
    return abs(value - float(text)) <= 0.5 * 10.0**exponent + 1e-15


def assert_printed(value, text):
    assert printed(value, text), f"{value!r} does not print as {text}"


@pytest.fixture(scope="module")
def vandyke():
    with VANDYKE.open() as fh:
        return [
            (int(r["reader"]), int(r["treatment"]), int(r["case"]), int(r["truth"]), float(r["rating"]))
            for r in csv.DictReader(fh)
        ]


# ---------------------------------------------------------------------------------------------------------- MRMC


def test_reader_aucs_match_or_dbm_mrmc_printout(vandyke):
    result = mrmc.obuchowski_rockette(vandyke)
    # OR-DBM MRMC 2.51 "TREATMENT x READER AUC ESTIMATES" (rows = readers 1-5, columns = treatments 1, 2).
    published = [
        ("0.91964573", "0.94782609"),
        ("0.85877617", "0.90531401"),
        ("0.90386473", "0.92173913"),
        ("0.97310789", "0.99935588"),
        ("0.82979066", "0.92995169"),
    ]
    assert result.modalities == (0, 1) and result.readers == (0, 1, 2, 3, 4)
    for reader, row in enumerate(published):
        for treatment, text in enumerate(row):
            assert_printed(result.reader_auc[treatment][reader], text)
            assert_printed(result.auc_table[treatment, reader], text)
    assert_printed(result.modality_auc[0], "0.89703704")
    assert_printed(result.modality_auc[1], "0.94083736")
    assert_printed(result.difference, "-0.04380032")  # "1 - 2": the first modality minus the second
    assert (result.n_positive, result.n_negative) == (45, 69)


def test_jackknife_analysis_matches_or_dbm_mrmc_printout(vandyke):
    r = mrmc.obuchowski_rockette(vandyke, covariance="jackknife")
    # ANOVA, variance components and error covariances.
    assert_printed(r.ms_t, "0.00479617")
    assert_printed(r.ms_r, "0.00383620")
    assert_printed(r.ms_tr, "0.00055103")
    assert_printed(r.var_r, "0.00153500")
    assert_printed(r.var_tr, "0.00020040")
    assert_printed(r.cov1, "0.00034661")
    assert_printed(r.cov2, "0.00034407")
    assert_printed(r.cov3, "0.00023903")
    assert_printed(r.var_error, "0.00080229")
    assert_printed(r.cov1 / r.var_error, "0.43203138")
    assert_printed(r.cov2 / r.var_error, "0.42886683")
    assert_printed(r.cov3 / r.var_error, "0.29793328")
    # Analysis 1 (random readers, random cases): (a) F test, (b) difference CI, (c) single-treatment CIs.
    assert_printed(r.f_stat, "4.46")
    assert_printed(r.p_value, "0.0517")
    assert_printed(r.df_denom, "15.26")
    assert r.df_num == 1
    assert_printed(r.ms_tr + 5 * max(r.cov2 - r.cov3, 0), "0.00107626")  # the "Error term"
    assert_printed(r.se, "0.02075")
    assert_printed(r.difference_ci[0], "-0.08796")
    assert_printed(r.difference_ci[1], "0.00036")
    (diff,) = r.differences
    assert (diff.a, diff.b) == (0, 1)
    assert_printed(diff.t, "-2.11")
    assert_printed(diff.p_value, "0.0517")
    for modality, auc, se, df, lo, hi, cov2, ms_r in [
        (0, "0.89703704", "0.03317360", "12.74", "0.82522360", "0.96885048", "0.00048396", "0.00308263"),
        (1, "0.94083736", "0.02156637", "12.71", "0.89413783", "0.98753689", "0.00020419", "0.00130460"),
    ]:
        single = r.single_modality[modality]
        assert_printed(single.auc, auc)
        assert_printed(single.se, se)
        assert_printed(single.df, df)
        assert_printed(single.ci[0], lo)
        assert_printed(single.ci[1], hi)
        assert_printed(single.cov2, cov2)
        assert_printed(single.ms_r, ms_r)
    # Fixed-reader part (c) of the printout: per-treatment Var(Error).
    assert_printed(r.single_modality[0].var_error, "0.00101410")
    assert_printed(r.single_modality[1].var_error, "0.00059047")


def test_jackknife_analysis_matches_mrmcaov_to_its_printed_digits(vandyke):
    r = mrmc.obuchowski_rockette(vandyke)
    # MRMCaov README summary(): variance components and the global test.
    assert_printed(r.var_r, "0.0015349993")
    assert_printed(r.var_tr, "0.0002004025")
    assert_printed(r.var_error, "0.0008022883")
    assert_printed(r.cov1, "0.0003466137")
    assert_printed(r.cov2, "0.0003440748")
    assert_printed(r.cov3, "0.0002390284")
    assert_printed(r.ms_t, "0.004796171")
    assert_printed(r.ms_tr, "0.0005510306")
    assert_printed(r.f_stat, "4.456319")
    assert_printed(r.df_denom, "15.25967")
    assert_printed(r.p_value, "0.05166569")
    assert_printed(r.difference, "-0.04380032")
    assert_printed(r.se, "0.02074862")
    assert_printed(r.difference_ci[0], "-0.0879594986")
    assert_printed(r.difference_ci[1], "0.0003588544")
    assert_printed(r.differences[0].t, "-2.110999")
    # RJafroc StSignificanceTesting() RRRC printout (8 significant digits).
    assert_printed(r.f_stat, "4.4563187")
    assert_printed(r.df_denom, "15.259675")
    assert_printed(r.p_value, "0.051665686")
    assert_printed(r.se, "0.020748618")
    assert_printed(r.difference_ci[0], "-0.087959499")
    assert_printed(r.difference_ci[1], "0.00035885444")
    assert_printed(r.single_modality[0].se, "0.033173597")
    assert_printed(r.single_modality[0].df, "12.744648")
    assert_printed(r.single_modality[1].se, "0.021566368")
    assert_printed(r.single_modality[1].df, "12.710190")


def test_delong_analysis_matches_mrmcaov_jss_printout(vandyke):
    r = mrmc.obuchowski_rockette(vandyke, covariance="delong")
    assert r.covariance_method == "delong"
    assert_printed(r.var_r, "0.0015364254")
    assert_printed(r.var_tr, "0.0002045840")
    assert_printed(r.var_error, "0.0007921325")
    assert_printed(r.cov1, "0.0003420090")
    assert_printed(r.cov2, "0.0003395265")
    assert_printed(r.cov3, "0.0002358497")
    assert_printed(r.f_stat, "4.484854")
    assert_printed(r.df_denom, "15.06611")
    assert_printed(r.p_value, "0.05123303")
    assert_printed(r.se, "0.0206825")
    assert_printed(r.difference_ci[0], "-0.0878671960")
    assert_printed(r.difference_ci[1], "0.0002665519")
    assert_printed(r.differences[0].t, "-2.117747")
    for modality, se, df, lo, hi, cov2 in [
        (0, "0.03307642", "12.59597", "0.8253461", "0.9687280", "0.0004775239"),
        (1, "0.02150464", "12.56530", "0.8942155", "0.9874592", "0.0002015292"),
    ]:
        single = r.single_modality[modality]
        assert_printed(single.se, se)
        assert_printed(single.df, df)
        assert_printed(single.ci[0], lo)
        assert_printed(single.ci[1], hi)
        assert_printed(single.cov2, cov2)


def test_delong_covariances_are_close_to_the_jackknife(vandyke):
    jack = mrmc.obuchowski_rockette(vandyke, covariance="jackknife")
    delong = mrmc.obuchowski_rockette(vandyke, covariance="delong")
    np.testing.assert_allclose(delong.covariance, jack.covariance, rtol=0.1, atol=2e-5)
    assert abs(delong.p_value - jack.p_value) < 0.002
    assert np.array_equal(delong.auc_table, jack.auc_table)


def test_sign_convention_follows_sorted_modality_labels(vandyke):
    names = {0: "b-cine", 1: "a-spin-echo"}
    relabelled = [(f"r{rd}", names[m], f"c{c}", t, x) for rd, m, c, t, x in vandyke]
    r = mrmc.obuchowski_rockette(relabelled)
    assert r.modalities == ("a-spin-echo", "b-cine")
    assert_printed(r.difference, "0.04380032")  # spin-echo − cine now
    assert_printed(r.difference_ci[0], "-0.00036")
    assert_printed(r.difference_ci[1], "0.08796")
    assert_printed(r.reader_auc["b-cine"]["r2"], "0.90386473")


def _auc_loop(neg, pos):
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))


def test_auc_matches_sklearn_and_pairwise_counting_with_ties():
    rng = np.random.default_rng(3)
    neg = rng.integers(1, 6, size=(2, 3, 17)).astype(float)
    pos = rng.integers(2, 7, size=(2, 3, 11)).astype(float)
    got = mrmc.auc(neg, pos)
    assert got.shape == (2, 3)
    for i, j in itertools.product(range(2), range(3)):
        y = np.r_[np.zeros(17), np.ones(11)]
        assert got[i, j] == pytest.approx(roc_auc_score(y, np.r_[neg[i, j], pos[i, j]]), abs=1e-12)
        assert got[i, j] == pytest.approx(_auc_loop(neg[i, j], pos[i, j]), abs=1e-12)
    assert mrmc.auc([1, 2], [2, 3]) == pytest.approx(0.875)
    assert mrmc.auc(neg[0, 0], pos[:, :, :]).shape == (2, 3)  # leading dimensions broadcast


def brute_force_or(ratings, truth, covariance, alpha=0.05):
    """Loop implementation of the OR–Hillis formulas in docs/FIELD-NOTES.md, for a few cases only."""
    t, r, k = ratings.shape

    def aucs(keep):
        return np.array(
            [
                [_auc_loop(ratings[i, j, keep & (truth == 0)], ratings[i, j, keep & (truth == 1)]) for j in range(r)]
                for i in range(t)
            ]
        ).ravel()

    theta = aucs(np.ones(k, dtype=bool))
    if covariance == "jackknife":
        loo = np.array([aucs(np.arange(k) != c) for c in range(k)])
        dev = loo - loo.mean(axis=0)
        cov = (k - 1) / k * sum(np.outer(d, d) for d in dev)
    else:
        pos, neg = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
        v10 = np.array(
            [[[_auc_loop(ratings[i, j, neg], [ratings[i, j, p]]) for p in pos] for j in range(r)] for i in range(t)]
        )
        v01 = np.array(
            [[[_auc_loop([ratings[i, j, n]], ratings[i, j, pos]) for n in neg] for j in range(r)] for i in range(t)]
        )
        s10 = np.cov(v10.reshape(t * r, -1))
        s01 = np.cov(v01.reshape(t * r, -1))
        cov = s10 / pos.size + s01 / neg.size
    cells = [(i, j) for i in range(t) for j in range(r)]
    groups = {"var": [], "cov1": [], "cov2": [], "cov3": []}
    for (a, (i, j)), (b, (i2, j2)) in itertools.product(enumerate(cells), repeat=2):
        key = {(True, True): "var", (False, True): "cov1", (True, False): "cov2", (False, False): "cov3"}
        groups[key[(i == i2, j == j2)]].append(cov[a, b])
    cov2, cov3 = np.mean(groups["cov2"]), np.mean(groups["cov3"])
    table = theta.reshape(t, r)
    mt, mr, g = table.mean(1), table.mean(0), table.mean()
    ms_t = r * sum((m - g) ** 2 for m in mt) / (t - 1)
    ms_tr = sum((table[i, j] - mt[i] - mr[j] + g) ** 2 for i in range(t) for j in range(r)) / ((t - 1) * (r - 1))
    den = ms_tr + r * max(cov2 - cov3, 0)
    ddf = den**2 / (ms_tr**2 / ((t - 1) * (r - 1)))
    f = ms_t / den
    se = math.sqrt(2 / r * den)
    q = sps.t.ppf(1 - alpha / 2, ddf)
    diffs = {
        (a, b): (mt[a] - mt[b], (mt[a] - mt[b] - q * se, mt[a] - mt[b] + q * se))
        for a in range(t)
        for b in range(a + 1, t)
    }
    return {
        "table": table,
        "cov": cov,
        "var": np.mean(groups["var"]),
        "cov1": np.mean(groups["cov1"]),
        "cov2": cov2,
        "cov3": cov3,
        "f": f,
        "ddf": ddf,
        "p": sps.f.sf(f, t - 1, ddf),
        "se": se,
        "diffs": diffs,
    }


@pytest.mark.parametrize("covariance", ["jackknife", "delong"])
@pytest.mark.parametrize("n_modalities", [2, 3])
def test_small_study_matches_brute_force_loops(covariance, n_modalities):
    rng = np.random.default_rng(7 + n_modalities)
    t, r, k = n_modalities, 3, 9
    truth = np.array([0, 1, 0, 0, 1, 1, 0, 1, 0])
    ratings = rng.integers(1, 6, size=(t, r, k)) + truth * np.array([0, 1, 2])[:t, None, None]
    records = [
        (f"R{j}", f"M{i}", f"case{c}", int(truth[c]), float(ratings[i, j, c])) for i, j, c in np.ndindex(t, r, k)
    ]
    got = mrmc.obuchowski_rockette(records, covariance=covariance)
    ref = brute_force_or(ratings.astype(float), truth, covariance)
    # Case labels sort as strings ("case0" … "case8"), matching the array order here.
    np.testing.assert_allclose(got.auc_table, ref["table"], atol=1e-12)
    np.testing.assert_allclose(got.covariance, ref["cov"], atol=1e-12)
    for name in ("var", "cov1", "cov2", "cov3"):
        assert getattr(got, "var_error" if name == "var" else name) == pytest.approx(ref[name], abs=1e-12)
    assert got.f_stat == pytest.approx(ref["f"], rel=1e-9)
    assert got.df_denom == pytest.approx(ref["ddf"], rel=1e-9)
    assert got.p_value == pytest.approx(ref["p"], rel=1e-9)
    assert got.df_num == t - 1
    assert len(got.differences) == t * (t - 1) // 2
    for d in got.differences:
        a, b = int(d.a[1:]), int(d.b[1:])
        estimate, ci = ref["diffs"][(a, b)]
        assert d.estimate == pytest.approx(estimate, abs=1e-12)
        assert d.se == pytest.approx(ref["se"], rel=1e-9)
        assert d.ci == pytest.approx(ci, rel=1e-9)
    if t == 2:
        assert got.difference == pytest.approx(ref["diffs"][(0, 1)][0], abs=1e-12)
    else:
        assert got.difference is None and got.difference_ci is None and got.se is None


def test_design_errors_are_reported(vandyke):
    with pytest.raises(ValueError, match="not fully crossed.*reader 4, modality 1, case 114"):
        mrmc.obuchowski_rockette(vandyke[:-1])
    with pytest.raises(ValueError, match="more than once"):
        mrmc.obuchowski_rockette(vandyke + vandyke[:1])
    with pytest.raises(ValueError, match="at least 2 readers"):
        mrmc.obuchowski_rockette([rec for rec in vandyke if rec[0] == 0])
    with pytest.raises(ValueError, match="2 positive and 2 negative"):
        mrmc.obuchowski_rockette([rec for rec in vandyke if rec[3] == 0])
    with pytest.raises(ValueError, match="both truth 0 and 1"):
        mrmc.obuchowski_rockette([vandyke[0][:3] + (1, 2.0)] + vandyke[1:])
    with pytest.raises(ValueError, match="covariance must be one of"):
        mrmc.obuchowski_rockette(vandyke, covariance="bootstrap")
    with pytest.raises(ValueError, match="no records"):
        mrmc.obuchowski_rockette([])


def test_single_modality_study_gives_only_the_single_modality_estimate(vandyke):
    r = mrmc.obuchowski_rockette([rec for rec in vandyke if rec[1] == 0])
    assert r.modalities == (0,) and r.differences == () and math.isnan(r.f_stat)
    # Cases, readers and the treatment's own covariances are unchanged, so part (c) of the printout still holds.
    assert_printed(r.single_modality[0].se, "0.03317360")
    assert_printed(r.single_modality[0].ci[0], "0.82522360")


def test_equivalence_to_chance_verdicts():
    def estimate(lo, hi):
        return mrmc.ModalityEstimate("m", (lo + hi) / 2, 0.01, 20.0, (lo, hi), 0.001, 0.0, 0.001)

    assert mrmc.equivalence_to_chance(estimate(0.47, 0.53)).verdict is mrmc.Verdict.INDISTINGUISHABLE
    assert mrmc.equivalence_to_chance(estimate(0.56, 0.70)).verdict is mrmc.Verdict.DETECTED
    assert mrmc.equivalence_to_chance(estimate(0.30, 0.45)).verdict is mrmc.Verdict.REVERSED
    assert mrmc.equivalence_to_chance(estimate(0.46, 0.58)).verdict is mrmc.Verdict.INCONCLUSIVE
    assert mrmc.equivalence_to_chance(estimate(0.46, 0.58), margin=0.1).verdict is mrmc.Verdict.INDISTINGUISHABLE
    verdict = mrmc.equivalence_to_chance(estimate(0.47, 0.53))
    assert verdict.text.startswith("indistinguishable from real: AUC 0.500 (CI 0.470 to 0.530)")


# ---------------------------------------------------------------------------------------------------- Turing test


def test_synthetic_rating_maps_calls_to_a_ten_point_scale():
    assert [turing.synthetic_rating("real", c) for c in (5, 4, 3, 2, 1)] == [1, 2, 3, 4, 5]
    assert [turing.synthetic_rating("synthetic", c) for c in (1, 2, 3, 4, 5)] == [6, 7, 8, 9, 10]
    assert list(turing.synthetic_rating(["real", "synthetic"], [5, 5])) == [1, 10]
    with pytest.raises(ValueError):
        turing.synthetic_rating("fake", 3)
    with pytest.raises(ValueError):
        turing.synthetic_rating("real", 6)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (59, 100), (40, 40), (1, 1)])
def test_wilson_interval_matches_statsmodels(k, n):
    assert turing.wilson_interval(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-12)
    assert turing.wilson_interval(k, n, 0.9) == pytest.approx(
        proportion_confint(k, n, alpha=0.1, method="wilson"), abs=1e-12
    )


def simulated_turing_study(seed=0, n_readers=5, n_real=40, n_source=40, detectability=None, missing=()):
    """Answers (reader, model, case, call, confidence): a latent "looks synthetic" score per read, cut into 10 bins."""
    rng = np.random.default_rng(seed)
    detectability = detectability or {"good": 0.0, "poor": 1.5}
    answers = []
    for reader in range(n_readers):
        bias = rng.normal(0, 0.3)
        images = [(None, f"real{c:03d}", 0.0) for c in range(n_real)]
        images += [
            (model, f"src{c:03d}", shift)
            for model, shift in detectability.items()
            for c in range(n_source)
            if (model, f"src{c:03d}") not in missing
        ]
        for model, case, shift in images:
            score = rng.normal(shift + bias, 1.0)
            rating = int(np.clip(np.floor(score * 1.5 + 5.5), 0, 9)) + 1  # 1..10
            call, conf = ("synthetic", rating - 5) if rating >= 6 else ("real", 6 - rating)
            answers.append((f"reader{reader}", model, case, call, conf))
    return answers


def test_reader_accuracy_matches_sklearn_and_statsmodels():
    answers = simulated_turing_study()
    result = turing.reader_accuracy(answers)
    assert list(result) == [f"reader{i}" for i in range(5)]
    frame = pd.DataFrame(answers, columns=["reader", "model", "case", "call", "conf"])
    frame["synthetic"] = frame.model.notna()
    frame["rating"] = turing.synthetic_rating(frame.call.to_numpy(), frame.conf.to_numpy())
    for reader, rows in frame.groupby("reader"):
        got = result[reader]
        correct = int(((rows.call == "synthetic") == rows.synthetic).sum())
        assert (got.n, got.n_correct) == (len(rows), correct)
        assert got.accuracy_ci == pytest.approx(proportion_confint(correct, len(rows), method="wilson"), abs=1e-12)
        assert got.auc == pytest.approx(roc_auc_score(rows.synthetic, rows.rating), abs=1e-12)
        assert got.sensitivity == pytest.approx((rows[rows.synthetic].call == "synthetic").mean())
        assert got.specificity == pytest.approx((rows[~rows.synthetic].call == "real").mean())


def test_per_model_or_pairs_models_on_the_real_pool_and_common_source_cases():
    answers = simulated_turing_study(missing={("poor", "src003"), ("good", "src010")})
    built = turing.per_model_or(answers)
    assert built.models == ("good", "poor")
    assert built.dropped_source_cases == ("src003", "src010")
    assert len(built.source_cases) == 38 and len(built.real_images) == 40
    result = mrmc.obuchowski_rockette(built.records)
    frame = pd.DataFrame(answers, columns=["reader", "model", "case", "call", "conf"])
    frame["rating"] = turing.synthetic_rating(frame.call.to_numpy(), frame.conf.to_numpy())
    for model in built.models:
        for reader, rows in frame.groupby("reader"):
            real = rows[rows.model.isna()].rating
            syn = rows[(rows.model == model) & rows.case.isin(built.source_cases)].rating
            expected = roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(syn))], np.r_[real, syn])
            assert result.reader_auc[model][reader] == pytest.approx(expected, abs=1e-12)
    # Model "poor" is easy to spot, "good" is not: the difference good − poor is negative and significant.
    assert result.difference < 0 and result.difference_ci[1] < 0
    assert mrmc.equivalence_to_chance(result.single_modality["poor"]).verdict is mrmc.Verdict.DETECTED


def test_a_model_readers_cannot_spot_is_judged_indistinguishable():
    answers = simulated_turing_study(seed=5, n_readers=10, n_real=200, n_source=200, detectability={"good": 0.0})
    result = mrmc.obuchowski_rockette(turing.per_model_or(answers).records)
    verdict = mrmc.equivalence_to_chance(result.single_modality["good"], margin=0.05)
    assert verdict.verdict is mrmc.Verdict.INDISTINGUISHABLE, verdict.text
    small = simulated_turing_study(seed=5, n_readers=3, n_real=15, n_source=15, detectability={"good": 0.0})
    verdict = mrmc.equivalence_to_chance(
        mrmc.obuchowski_rockette(turing.per_model_or(small).records).single_modality["good"]
    )
    assert verdict.verdict is mrmc.Verdict.INCONCLUSIVE  # too small a study to claim realism


def test_fleiss_kappa_matches_the_published_example_and_statsmodels():
    # Fleiss' kappa worked example (14 raters, 10 items, 5 categories): P̄ = 0.378, P̄e = 0.213, κ = 0.210
    # (https://en.wikipedia.org/wiki/Fleiss%27_kappa#Worked_example).
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert_printed(turing.fleiss_kappa(table), "0.210")
    assert turing.fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(table, method="fleiss"), abs=1e-12)
    random_table = np.random.default_rng(2).multinomial(6, [0.6, 0.4], size=50)
    assert turing.fleiss_kappa(random_table) == pytest.approx(sm_fleiss_kappa(random_table), abs=1e-12)


def test_fleiss_kappa_of_turing_calls_matches_statsmodels():
    answers = simulated_turing_study()
    images, table = turing.call_table(answers)
    assert table.shape == (40 + 80, 2) and set(table.sum(axis=1)) == {5}
    frame = pd.DataFrame(answers, columns=["reader", "model", "case", "call", "conf"]).fillna({"model": "<real>"})
    counts = pd.crosstab([frame.model, frame.case], frame.call).to_numpy()
    assert turing.calls_fleiss_kappa(answers) == pytest.approx(sm_fleiss_kappa(counts), abs=1e-12)
    with pytest.raises(ValueError, match="same number of readers"):
        turing.calls_fleiss_kappa(answers[1:])


# ------------------------------------------------------------------------------------------------------ Likert


@pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")  # pingouin 0.7 on pandas 3.1
def test_icc_matches_shrout_fleiss_table_and_pingouin():
    # Shrout & Fleiss (1979), Table 2 (6 targets × 4 judges): ICC(2,1) = .29, ICC(2,4) = .62 (their Table 4).
    table2 = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    got = agreement.icc(table2)
    assert_printed(got.icc_single, "0.29")
    assert_printed(got.icc_average, "0.62")
    rng = np.random.default_rng(1)
    scores = np.clip(np.round(rng.normal(3, 1, (25, 1)) + rng.normal(0, 0.7, (25, 4)) + [0, 0.3, -0.2, 0.5]), 1, 5)
    for matrix in (table2, scores):
        long = pd.DataFrame([(i, j, matrix[i, j]) for i, j in np.ndindex(matrix.shape)], columns=["t", "r", "s"])
        ref = pingouin.intraclass_corr(long, targets="t", raters="r", ratings="s").set_index("Type")
        got = agreement.icc(matrix)
        # pingouin 0.7 names ICC2 / ICC2k "ICC(A,1)" / "ICC(A,k)" (absolute agreement); it rounds CI95 to 2 places.
        single, average = ref.loc["ICC(A,1)"], ref.loc["ICC(A,k)"]
        assert got.icc_single == pytest.approx(single.ICC, abs=1e-12)
        assert got.icc_average == pytest.approx(average.ICC, abs=1e-12)
        assert (got.f, got.df1, got.df2) == (pytest.approx(single.F, rel=1e-12), single.df1, single.df2)
        assert got.p_value == pytest.approx(single.pval, rel=1e-9)
        for value, text in zip(got.icc_single_ci + got.icc_average_ci, [*single.CI95, *average.CI95], strict=True):
            assert_printed(value, f"{text:.2f}")


@pytest.mark.parametrize("weights", ["linear", "quadratic", "none"])
def test_weighted_kappa_matches_statsmodels_and_sklearn(weights):
    rng = np.random.default_rng(4)
    first = rng.integers(1, 5, 80)  # category 5 is never used: it must still count in the weights
    second = np.clip(first + rng.integers(-1, 2, 80), 1, 5)
    got = agreement.weighted_kappa(first, second, weights=weights)
    table = pd.crosstab(pd.Categorical(first, range(1, 6)), pd.Categorical(second, range(1, 6)), dropna=False)
    ref = cohens_kappa(table.to_numpy(), wt=None if weights == "none" else weights)
    assert got.kappa == pytest.approx(ref.kappa, abs=1e-12)
    assert got.se == pytest.approx(ref.std_kappa, abs=1e-12)
    assert got.ci == pytest.approx((ref.kappa_low, ref.kappa_upp), abs=1e-12)
    sk = cohen_kappa_score(first, second, weights=None if weights == "none" else weights, labels=[1, 2, 3, 4, 5])
    assert got.kappa == pytest.approx(sk, abs=1e-12)


def likert_records(seed=0, n_readers=6, n_cases=30, models=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    reader_bias = rng.normal(0, 0.5, n_readers)
    case_effect = rng.normal(0, 0.7, n_cases)
    quality = dict(zip(models, (3.8, 3.2, 2.5), strict=False))
    return [
        (
            f"r{j}",
            m,
            f"case{c:02d}",
            int(np.clip(np.round(quality[m] + reader_bias[j] + case_effect[c] + rng.normal(0, 0.5)), 1, 5)),
        )
        for m in models
        for j in range(n_readers)
        for c in range(n_cases)
    ]


def test_mean_opinion_score_equals_the_mean_and_its_bootstrap_matches_explicit_resampling():
    records = likert_records()
    got = agreement.mean_opinion_score(records, n_boot=300, seed=11)
    frame = pd.DataFrame(records, columns=["reader", "model", "case", "score"])
    for model, score in frame.groupby("model").score.mean().items():
        assert got[model].mean == pytest.approx(score, abs=1e-12)
        assert (got[model].n_scores, got[model].n_readers, got[model].n_cases) == (180, 6, 30)
    # The same draws, resampled the slow way: build each resampled reader × case table and average it.
    rng = np.random.default_rng(11)
    reader_draws = rng.integers(0, 6, size=(300, 6))
    case_draws = rng.integers(0, 30, size=(300, 30))
    for model in ("a", "b", "c"):
        table = frame[frame.model == model].pivot(index="reader", columns="case", values="score").to_numpy()
        means = [table[np.ix_(rd, cd)].mean() for rd, cd in zip(reader_draws, case_draws, strict=True)]
        assert got[model].ci == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-12)
    assert agreement.mean_opinion_score(records, n_boot=300, seed=11) == got  # seeded


def test_mean_opinion_score_with_one_reader_reduces_to_scipys_case_bootstrap():
    records = [rec for rec in likert_records(n_cases=60) if rec[0] == "r0" and rec[1] == "a"]
    got = agreement.mean_opinion_score(records, n_boot=20000, seed=1)["a"]
    scores = np.array([rec[3] for rec in records], dtype=float)
    ref = sps.bootstrap((scores,), np.mean, n_resamples=20000, method="percentile", random_state=1)
    assert got.ci == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), abs=0.01)


def test_mean_opinion_score_handles_missing_scores_and_rejects_duplicates():
    records = likert_records()
    partial = [rec for k, rec in enumerate(records) if k % 7]
    got = agreement.mean_opinion_score(partial, n_boot=200)
    frame = pd.DataFrame(partial, columns=["reader", "model", "case", "score"])
    for model, score in frame.groupby("model").score.mean().items():
        assert got[model].mean == pytest.approx(score, abs=1e-12)
        assert got[model].ci[0] < got[model].mean < got[model].ci[1]
    with pytest.raises(ValueError, match="more than once"):
        agreement.mean_opinion_score(records + records[:1])


# ------------------------------------------------------------------------------------------- Bradley–Terry


def simulated_comparisons(seed=0, n_items=5, n=400):
    rng = np.random.default_rng(seed)
    truth = np.linspace(1.0, -1.0, n_items)
    out = []
    for _ in range(n):
        i, j = rng.choice(n_items, 2, replace=False)
        out.append((i, j) if rng.random() < special.expit(truth[i] - truth[j]) else (j, i))
    return out


@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0])
def test_bradley_terry_matches_choix_mm(alpha):
    comparisons = simulated_comparisons()
    got = pairwise.bradley_terry(comparisons, 5, alpha=alpha)
    ref = choix.mm_pairwise(5, comparisons, alpha=alpha, tol=1e-13, max_iter=100_000)
    np.testing.assert_allclose(got.strengths, ref, atol=1e-8)
    assert got.strengths.sum() == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(got.p_beat_average, special.expit(ref), atol=1e-8)


def test_bradley_terry_maximum_likelihood_matches_choix_ilsr_and_opt():
    comparisons = simulated_comparisons(seed=1)
    got = pairwise.bradley_terry(comparisons, 5, alpha=0)
    np.testing.assert_allclose(got.strengths, choix.ilsr_pairwise(5, comparisons, tol=1e-13), atol=1e-8)
    np.testing.assert_allclose(got.strengths, choix.opt_pairwise(5, comparisons), atol=1e-6)


def test_bradley_terry_ties_count_as_half_a_win_each_way():
    comparisons = simulated_comparisons(seed=2, n=200)
    ties = [(0, 1), (2, 3), (0, 4), (1, 3)] * 5
    got = pairwise.bradley_terry(comparisons, 5, ties=ties, alpha=0.5)
    # choix takes whole wins only: doubling every answer turns each tie into one win each way (alpha doubles too).
    doubled = comparisons * 2 + [pair for i, j in ties for pair in ((i, j), (j, i))]
    ref = choix.mm_pairwise(5, doubled, alpha=1.0, tol=1e-13, max_iter=100_000)
    np.testing.assert_allclose(got.strengths, ref, atol=1e-8)


def test_bradley_terry_fisher_standard_errors_match_a_statsmodels_logistic_fit():
    comparisons = simulated_comparisons(seed=3)
    got = pairwise.bradley_terry(comparisons, 5, alpha=0)
    wins = pairwise.win_matrix(comparisons, 5)
    rows, share, count = [], [], []
    for i, j in itertools.combinations(range(5), 2):
        x = np.zeros(5)
        x[i], x[j] = 1, -1
        rows.append(x[1:])  # item 0 is the reference level
        share.append(wins[i, j] / (wins[i, j] + wins[j, i]))
        count.append(wins[i, j] + wins[j, i])
    fit = sm.GLM(np.array(share), np.array(rows), family=sm.families.Binomial(), var_weights=np.array(count)).fit(
        tol=1e-14
    )
    centre = np.eye(5) - 1 / 5
    to_full = np.vstack([np.zeros(4), np.eye(4)])
    np.testing.assert_allclose(got.strengths, centre @ to_full @ fit.params, atol=1e-8)
    cov = centre @ to_full @ fit.cov_params() @ to_full.T @ centre
    np.testing.assert_allclose(got.covariance, cov, atol=1e-9)
    np.testing.assert_allclose(got.se, np.sqrt(np.diag(cov)), atol=1e-9)
    z = sps.norm.ppf(0.975)
    np.testing.assert_allclose(got.ci_low, got.strengths - z * got.se, atol=1e-12)


def test_bradley_terry_needs_regularisation_when_an_item_never_loses():
    comparisons = [(0, 1), (0, 2), (1, 2), (2, 1), (0, 1)]
    with pytest.raises(ValueError, match="alpha > 0"):
        pairwise.bradley_terry(comparisons, 3, alpha=0)
    got = pairwise.bradley_terry(comparisons, 3, alpha=0.1)
    np.testing.assert_allclose(
        got.strengths, choix.mm_pairwise(3, comparisons, alpha=0.1, tol=1e-13, max_iter=100_000), atol=1e-8
    )
    assert np.all(np.isfinite(got.se)) and got.strengths[0] == got.strengths.max()


def test_bradley_terry_bootstrap_resamples_readers_and_cases():
    comparisons = simulated_comparisons(seed=4, n=240)
    records = [(f"r{k % 6}", f"c{k % 40}", a, b, 1.0) for k, (a, b) in enumerate(comparisons)]
    records[0] = records[0][:4] + (0.5,)  # one "no preference"
    got = pairwise.bradley_terry_bootstrap(records, 5, alpha=0.05, n_boot=50, seed=9)
    full = pairwise.bradley_terry(comparisons[1:], 5, ties=[comparisons[0]], alpha=0.05)
    np.testing.assert_allclose(got.strengths, full.strengths, atol=1e-7)
    # Replicate the first resample by hand: duplicate each record (reader draws × case draws) times and fit with choix.
    rng = np.random.default_rng(9)
    reader_counts = np.bincount(rng.integers(0, 6, size=(50, 6))[0], minlength=6)
    case_counts = np.bincount(rng.integers(0, 40, size=(50, 40))[0], minlength=40)
    case_index = {c: k for k, c in enumerate(sorted({rec[1] for rec in records}))}  # labels are drawn in sorted order
    data = []
    for reader, case, a, b, score in records:
        times = reader_counts[int(reader[1:])] * case_counts[case_index[case]]
        data += ([(a, b)] * 2 if score == 1 else [(a, b), (b, a)]) * times  # doubled: whole wins for choix
    ref = choix.mm_pairwise(5, data, alpha=0.1, tol=1e-13, max_iter=100_000)
    np.testing.assert_allclose(got.draws[0], ref, atol=1e-6)
    assert got.draws.shape == (50, 5)
    assert np.all(got.ci_low <= got.strengths) and np.all(got.strengths <= got.ci_high)
    again = pairwise.bradley_terry_bootstrap(records, 5, alpha=0.05, n_boot=50, seed=9)
    np.testing.assert_array_equal(again.draws, got.draws)


# ------------------------------------------------------------------------------------------ hallucination marks


def test_hallucination_marks_summaries_match_pandas_and_explicit_resampling():
    rng = np.random.default_rng(6)
    records = [
        (f"r{j}", model, f"{model}-img{c}", int(rng.poisson(rate)))
        for model, rate in (("a", 0.2), ("b", 1.0))
        for j in range(4)
        for c in range(25)
    ]
    got = marks.hallucination_marks(records, n_boot=200, seed=3)
    frame = pd.DataFrame(records, columns=["reader", "model", "image", "n"])
    for model, rows in frame.groupby("model"):
        summary = got[model]
        assert summary.marks_per_image == pytest.approx(rows.n.mean(), abs=1e-12)
        assert summary.fraction_marked == pytest.approx((rows.n > 0).mean(), abs=1e-12)
        assert summary.fraction_images_any == pytest.approx(rows.groupby("image").n.max().gt(0).mean(), abs=1e-12)
        assert (summary.n_reads, summary.n_images, summary.n_readers) == (100, 25, 4)
    # Explicit resampling with the same draws (models in sorted order share one generator).
    draws = np.random.default_rng(3)
    for model in ("a", "b"):
        table = frame[frame.model == model].pivot(index="reader", columns="image", values="n").to_numpy()
        rd, cd = draws.integers(0, 4, size=(200, 4)), draws.integers(0, 25, size=(200, 25))
        means = [table[np.ix_(r, c)].mean() for r, c in zip(rd, cd, strict=True)]
        marked = [(table[np.ix_(r, c)] > 0).mean() for r, c in zip(rd, cd, strict=True)]
        assert got[model].marks_per_image_ci == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-12)
        assert got[model].fraction_marked_ci == pytest.approx(tuple(np.percentile(marked, [2.5, 97.5])), abs=1e-12)
    with pytest.raises(ValueError, match="more than one model"):
        marks.hallucination_marks(records + [("r0", "b", "a-img0", 1)])


def test_stats_package_imports_no_django():
    import subprocess
    import sys

    code = (
        "import sys, readerstudy.stats as s; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
