"""readerstudy.stats.froc against RJafroc (Chakraborty) and Windows JAFROC, plus hand-computable cases.

Data: RJafroc's FROC datasets dataset01, dataset04 (Zanca "FED") and dataset05 (Thompson "JT"), converted to CSV
under tests/data/rjafroc/ (see its README). Expected values are RJafroc's own stored outputs, the goodValues361
RDS fixtures of its test suite (github.com/dpc10ster/RJafroc, tests/testthat/goodValues361/, RJafroc 2.1.x),
quoted here to 7 significant digits, as R prints them; each test is held to those digits (half a unit in the
last one). The HrAuc variance components are those printed by Windows JAFROC 1.3.1 for inst/extdata/Froc.xlsx
(= dataset04, modalities 4 and 5), as quoted in RJafroc's tests/testthat/test-St-Compare2JAFROC.R.
Windows JAFROC 4.2.1's printed DBM analysis of FedRoc (dataset04 reduced to highest ratings) checks HrAuc's
F, ddf, p and every CI; the RJafrocFrocBook's 9-case example checks AFROC and wAFROC by its printed operating points.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from readerstudy.stats import froc

DATA = Path(__file__).resolve().parents[1] / "data" / "rjafroc"


def load(name):
    with open(DATA / f"{name}_cases.csv") as fh:
        cases = [int(r["case"]) for r in csv.DictReader(fh)]
    with open(DATA / f"{name}_lesions.csv") as fh:
        lesions = [(int(r["case"]), int(r["lesion"]), float(r["weight"])) for r in csv.DictReader(fh)]
    with open(DATA / f"{name}_marks.csv") as fh:
        marks = [
            (r["reader"], r["modality"], int(r["case"]), int(r["lesion"]) if r["lesion"] else None, float(r["rating"]))
            for r in csv.DictReader(fh)
        ]
    return marks, lesions, cases


def assert_digits(value, printed: str, single_precision: bool = False):
    """value agrees with the printed number to its last printed digit (half a unit in that place). single_precision:
    for Windows JAFROC, which computes in float32 and prints 8 decimals: at least 6 significant digits (relative
    1e-6; its standard errors carry float32 noise from sums over thousands of pseudovalues in the 7th digit)."""
    mantissa, _, exponent = printed.lower().partition("e")
    decimals = len(mantissa.partition(".")[2]) - (int(exponent) if exponent else 0)
    tolerance = 0.5 * 10.0**-decimals * (1 + 1e-9)
    if single_precision:
        tolerance = max(tolerance, 1e-6 * abs(float(printed)))
    assert abs(value - float(printed)) <= tolerance, (value, printed)


# RJafroc goodValues361: UtilOutputReport/dataset04-OR-wAFROC.rds = St(dataset04, FOM = "wAFROC", method = "OR")
D04_FOMS = {
    "trt1": ["0.7792667", "0.7248917", "0.7036250", "0.8050917"],
    "trt2": ["0.7870000", "0.7269000", "0.7226167", "0.8037833"],
    "trt3": ["0.7296917", "0.7157583", "0.6723083", "0.7726583"],
    "trt4": ["0.8101333", "0.7431167", "0.6943583", "0.8294083"],
    "trt5": ["0.7488000", "0.6822750", "0.6551750", "0.7712500"],
}
D04_VARCOM = {
    "VarR": "0.002208646",
    "VarTR": "-0.0003045998",
    "Cov1": "0.0004220360",
    "Cov2": "0.0003361556",
    "Cov3": "0.0003043112",
    "Var": "0.0009280837",
}
D04_TRANOVA_MS = {"T": "0.002316541", "R": "0.01180146", "TR": "0.0001696035"}
D04_FTEST = ["7.800300", "36.79334", "0.0001171050"]
D04_DIFFS = {
    "trt1-trt2": ["-0.006856250", "0.01218567", "36.79334", "-0.5626486", "0.5770867", "-0.03155144", "0.01783894"],
    "trt1-trt3": ["0.03061458", "0.01218567", "36.79334", "2.512343", "0.01650929", "0.005919389", "0.05530978"],
    "trt1-trt4": ["-0.01603542", "0.01218567", "36.79334", "-1.315924", "0.1963399", "-0.04073061", "0.008659777"],
    "trt1-trt5": ["0.03884375", "0.01218567", "36.79334", "3.187658", "0.002924646", "0.01414856", "0.06353894"],
    "trt2-trt3": ["0.03747083", "0.01218567", "36.79334", "3.074992", "0.003955745", "0.01277564", "0.06216603"],
    "trt2-trt4": ["-0.009179167", "0.01218567", "36.79334", "-0.7532755", "0.4560777", "-0.03387436", "0.01551603"],
    "trt2-trt5": ["0.04570000", "0.01218567", "36.79334", "3.750307", "0.0006069711", "0.02100481", "0.07039519"],
    "trt3-trt4": ["-0.04665000", "0.01218567", "36.79334", "-3.828267", "0.0004845954", "-0.07134519", "-0.02195481"],
    "trt3-trt5": ["0.008229167", "0.01218567", "36.79334", "0.6753151", "0.5036979", "-0.01646603", "0.03292436"],
    "trt4-trt5": ["0.05487917", "0.01218567", "36.79334", "4.503582", "6.522814e-05", "0.03018397", "0.07957436"],
}
D04_EACH = {
    "trt1": ["0.7532187", "0.02976245", "7.708447", "0.6841319", "0.8223056"],
    "trt2": ["0.7600750", "0.02843396", "10.69208", "0.6972717", "0.8228783"],
    "trt3": ["0.7226042", "0.02692445", "8.619176", "0.6612841", "0.7839242"],
    "trt4": ["0.7692542", "0.03571966", "5.242424", "0.6786964", "0.8598120"],
    "trt5": ["0.7143750", "0.03325104", "6.585418", "0.6347341", "0.7940159"],
}
# RJafroc goodValues361: SigTest/OR/dataset01.rds
# = St(dataset01, FOM = "wAFROC", method = "OR", analysisOption = "RRRC")
D01_FOMS = {
    "trtBT": ["0.7602704", "0.8406191", "0.8171524", "0.8153090", "0.8278324"],
    "trtDM": ["0.6425854", "0.7049977", "0.7518434", "0.7724426", "0.6836962"],
}
D01_VARCOM = {
    "VarR": "0.0008130525",
    "VarTR": "0.0004867615",
    "Cov1": "0.0002992351",
    "Cov2": "0.0005718211",
    "Cov3": "0.0002751342",
    "Var": "0.001108043",
}
D01_TRANOVA_MS = {"T": "0.02556495", "R": "0.002673190", "TR": "0.0009988829"}
D01_FTEST = ["10.29883", "24.70276", "0.003668578"]
D01_DIFFS = {
    "trtBT-trtDM": ["0.1011236", "0.03151074", "24.70276", "3.209178", "0.003668578", "0.03618638", "0.1660608"]
}
D01_EACH = {
    "trtBT": ["0.8122367", "0.02698434", "59.28149", "0.7582465", "0.8662268"],
    "trtDM": ["0.7111131", "0.03391021", "17.78930", "0.6398098", "0.7824163"],
}
# RJafroc goodValues361: FOM/UtilFigureOfMeritFROC-HrAuc.rds = UtilFigureOfMerit(dataset01, FOM = "HrAuc")
HRAUC01 = {
    "trtBT": ["0.7959972", "0.8652271", "0.8411751", "0.8311096", "0.8465590"],
    "trtDM": ["0.6689490", "0.7211493", "0.7841175", "0.7979284", "0.7061096"],
}
# RJafroc goodValues361: Utils/PseudoValues-AFROC.rds and -wAFROC.rds = UtilPseudoValues(dataset05, FOM): the FOMs
# (mean of jkPseudoValues, which RJafroc centres on the FOM) and jkFomValues[modality, reader, case] (0-based)
AFROC_FOM05 = [
    [
        "0.7301318",
        "0.8843691",
        "0.8141243",
        "0.6248588",
        "0.5789077",
        "0.8506591",
        "0.8960452",
        "0.8073446",
        "0.7676083",
    ],
    [
        "0.7892655",
        "0.9629002",
        "0.8512241",
        "0.7384181",
        "0.7197740",
        "0.8670433",
        "0.9306968",
        "0.8996234",
        "0.8077213",
    ],
]
AFROC_JK05 = {
    (0, 0, 0): "0.7342065",
    (0, 0, 44): "0.7326656",
    (0, 0, 45): "0.7287356",
    (0, 0, 91): "0.7392720",
    (0, 8, 0): "0.7700308",
    (0, 8, 44): "0.7783128",
    (0, 8, 45): "0.7747126",
    (0, 8, 91): "0.7747126",
    (1, 0, 0): "0.7898690",
    (1, 0, 44): "0.7898690",
    (1, 0, 45): "0.7856322",
    (1, 0, 91): "0.7856322",
    (1, 8, 0): "0.8097072",
    (1, 8, 44): "0.8097072",
    (1, 8, 45): "0.8082375",
    (1, 8, 91): "0.8082375",
}
WAFROC_FOM05 = [
    [
        "0.7244681",
        "0.8809693",
        "0.8095745",
        "0.6133176",
        "0.5773050",
        "0.8493302",
        "0.8927896",
        "0.8026005",
        "0.7639874",
    ],
    [
        "0.8023641",
        "0.9685579",
        "0.8459811",
        "0.7514184",
        "0.7209220",
        "0.8718676",
        "0.9369582",
        "0.8994878",
        "0.8190307",
    ],
]
WAFROC_JK05 = {
    (0, 0, 0): "0.7285622",
    (0, 0, 44): "0.7272324",
    (0, 0, 45): "0.7225845",
    (0, 0, 91): "0.7358696",
    (0, 8, 0): "0.7666022",
    (0, 8, 44): "0.7747824",
    (0, 8, 45): "0.7728663",
    (0, 8, 91): "0.7728663",
    (1, 0, 0): "0.8029497",
    (1, 0, 44): "0.8029497",
    (1, 0, 45): "0.7980676",
    (1, 0, 91): "0.7980676",
    (1, 8, 0): "0.8208414",
    (1, 8, 44): "0.8208414",
    (1, 8, 45): "0.8199275",
    (1, 8, 91): "0.8199275",
}
# Windows JAFROC 1.3.1, HrAuc OR variance components for Froc.xlsx (RJafroc test-St-Compare2JAFROC.R)
JAFROC_HRAUC_VARCOM = {
    "var_r": "0.00182911",
    "var_tr": "-0.000240099",
    "cov1": "0.000337545",
    "cov2": "0.000221216",
    "cov3": "0.000217371",
    "var_error": "0.000804072",
}
VARCOM_FIELDS = {"VarR": "var_r", "VarTR": "var_tr", "Cov1": "cov1", "Cov2": "cov2", "Cov3": "cov3", "Var": "var_error"}


# Windows JAFROC 4.2.1, weighted JAFROC FOM, DBM-MRMC analysis of FedRoc.xlsx, printed in RJafroc's
# inst/JAFROC/FedRoc.txt. FedRoc is DfFroc2Roc(dataset04) (RJafroc R/StORAnalysis.R: "DfFroc2Roc(dataset04), i.e.,
# ... FedRoc"): the highest rating per case, one "lesion" per abnormal case, so its weighted JAFROC FOM is
# dataset04's HrAuc. Run 5/15/2020. JAFROC computes in single precision (0.90425003 is 0.90425).
# DBM on jackknife pseudovalues with Hillis's ddf is the OR analysis with jackknife covariance (Hillis 2005), so
# F, ddf, p and the CIs are the same numbers.
FEDROC_FOMS = {  # reader -> modalities 1..5
    "1": ["0.90425003", "0.86425000", "0.81295002", "0.90235001", "0.84140003"],
    "3": ["0.79820001", "0.84469998", "0.81634998", "0.83149999", "0.77300000"],
    "4": ["0.81174999", "0.82050002", "0.75274998", "0.78864998", "0.77114999"],
    "5": ["0.86645001", "0.87159997", "0.85729998", "0.87980002", "0.84799999"],
}
FEDROC_VARCOM = {
    "var_r": "0.00128372",
    "var_tr": "-0.00001092",
    "cov1": "0.00029480",
    "cov2": "0.00023331",
    "cov3": "0.00021213",
    "var_error": "0.00078912",
}
FEDROC_FTEST = ["3.47", "16.80", "0.0305"]
FEDROC_DIFFS = {  # estimate, StdErr, DF, t, Pr > t, 95 % CI
    "1 - 2": ["-0.00510", "0.01654", "16.80", "-0.31", "0.7616", "-0.04002", "0.02982"],
    "1 - 3": ["0.03532", "0.01654", "16.80", "2.14", "0.0477", "0.00040", "0.07025"],
    "1 - 4": ["-0.00541", "0.01654", "16.80", "-0.33", "0.7475", "-0.04033", "0.02951"],
    "1 - 5": ["0.03678", "0.01654", "16.80", "2.22", "0.0402", "0.00185", "0.07170"],
    "2 - 3": ["0.04042", "0.01654", "16.80", "2.44", "0.0258", "0.00550", "0.07535"],
    "2 - 4": ["-0.00031", "0.01654", "16.80", "-0.02", "0.9851", "-0.03523", "0.03461"],
    "2 - 5": ["0.04187", "0.01654", "16.80", "2.53", "0.0216", "0.00695", "0.07680"],
    "3 - 4": ["-0.04074", "0.01654", "16.80", "-2.46", "0.0249", "-0.07566", "-0.00582"],
    "3 - 5": ["0.00145", "0.01654", "16.80", "0.09", "0.9312", "-0.03347", "0.03637"],
    "4 - 5": ["0.04219", "0.01654", "16.80", "2.55", "0.0208", "0.00727", "0.07711"],
}
FEDROC_EACH = {  # Area, Std Error, DF, 95 % CI
    "1": ["0.84516250", "0.02857825", "5.46", "0.77351390", "0.91681110"],
    "2": ["0.85026249", "0.01992816", "27.72", "0.80942310", "0.89110188"],
    "3": ["0.80983751", "0.02664787", "7.04", "0.74689263", "0.87278239"],
    "4": ["0.85057499", "0.02940869", "5.40", "0.77664336", "0.92450661"],
    "5": ["0.80838750", "0.02575833", "6.78", "0.74706749", "0.86970751"],
}


@pytest.fixture(scope="module")
def dataset04():
    return load("dataset04")


@pytest.fixture(scope="module")
def dataset01():
    return load("dataset01")


@pytest.fixture(scope="module")
def dataset05():
    return load("dataset05")


def check_or(result, foms, varcom, tr_ms, ftest, diffs, each):
    for i, (modality, row) in enumerate(foms.items()):
        assert result.modalities[i] == modality.removeprefix("trt")
        for j, printed in enumerate(row):
            assert_digits(result.auc_table[i, j], printed)
    for name, printed in varcom.items():
        assert_digits(getattr(result, VARCOM_FIELDS[name]), printed)
    assert_digits(result.ms_t, tr_ms["T"])
    assert_digits(result.ms_r, tr_ms["R"])
    assert_digits(result.ms_tr, tr_ms["TR"])
    f_stat, ddf, p = ftest
    assert result.df_num == len(foms) - 1
    assert_digits(result.f_stat, f_stat)
    assert_digits(result.df_denom, ddf)
    assert_digits(result.p_value, p)
    assert len(result.differences) == len(diffs)
    for d, (label, (est, se, df, t, p_d, lo, hi)) in zip(result.differences, diffs.items(), strict=True):
        assert f"trt{d.a}-trt{d.b}" == label
        for value, printed in zip(
            (d.estimate, d.se, d.df, d.t, d.p_value, *d.ci), (est, se, df, t, p_d, lo, hi), strict=True
        ):
            assert_digits(value, printed)
    for label, (est, se, df, lo, hi) in each.items():
        m = result.single_modality[label.removeprefix("trt")]
        for value, printed in zip((m.auc, m.se, m.df, *m.ci), (est, se, df, lo, hi), strict=True):
            assert_digits(value, printed)


def test_dataset04_wafroc_foms_match_rjafroc(dataset04):
    foms = froc.figure_of_merit(*dataset04, fom="wAFROC")
    readers = ("1", "3", "4", "5")
    assert len(foms) == 20
    for modality, row in D04_FOMS.items():
        for reader, printed in zip(readers, row, strict=True):
            assert_digits(foms[(modality.removeprefix("trt"), reader)], printed)


def test_dataset04_wafroc_significance_matches_rjafroc(dataset04):
    result = froc.significance(*dataset04, fom="wAFROC")
    assert result.readers == ("1", "3", "4", "5")
    assert (result.n_negative, result.n_positive) == (100, 100)
    check_or(result, D04_FOMS, D04_VARCOM, D04_TRANOVA_MS, D04_FTEST, D04_DIFFS, D04_EACH)


def test_dataset01_wafroc_significance_matches_rjafroc(dataset01):
    result = froc.significance(*dataset01, fom="wAFROC")
    check_or(result, D01_FOMS, D01_VARCOM, D01_TRANOVA_MS, D01_FTEST, D01_DIFFS, D01_EACH)
    # two modalities: the single difference is also on the result, as obuchowski_rockette gives it
    assert result.difference == result.differences[0].estimate


def test_dataset01_hrauc_matches_rjafroc(dataset01):
    foms = froc.figure_of_merit(*dataset01, fom="HrAuc")
    for modality, row in HRAUC01.items():
        for reader, printed in enumerate(row, start=1):
            assert_digits(foms[(modality.removeprefix("trt"), str(reader))], printed)


def test_hrauc_variance_components_match_windows_jafroc(dataset04):
    marks, lesions, cases = dataset04
    subset = [m for m in marks if m[1] in ("4", "5")]  # Froc.xlsx is dataset04's modalities 4 and 5
    result = froc.significance(subset, lesions, cases, fom="HrAuc")
    assert result.modalities == ("4", "5")
    for field, printed in JAFROC_HRAUC_VARCOM.items():
        assert_digits(getattr(result, field), printed)


def test_dataset04_hrauc_significance_matches_windows_jafroc_printout(dataset04):
    result = froc.significance(*dataset04, fom="HrAuc")
    for j, (reader, row) in enumerate(FEDROC_FOMS.items()):
        assert result.readers[j] == reader
        for i, printed in enumerate(row):
            assert_digits(result.auc_table[i, j], printed, single_precision=True)
    for field, printed in FEDROC_VARCOM.items():
        if field == "var_tr":
            # JAFROC's Var(T*R) = [MS(TR) − MS(TRC)] / K, a difference of two nearly equal single-precision mean
            # squares of pseudovalues (0.09244135 and 0.09462619): its last printed digit is float32 noise. Ours,
            # −1.09252e-05, is RJafroc's formula (checked to 7 digits on dataset04 wAFROC above); 1e-8 apart.
            assert getattr(result, field) == pytest.approx(float(printed), abs=1e-8)
        else:
            assert_digits(getattr(result, field), printed)
    f_stat, ddf, p = FEDROC_FTEST
    assert_digits(result.f_stat, f_stat)
    assert_digits(result.df_denom, ddf)
    assert_digits(result.p_value, p)
    for d, (label, row) in zip(result.differences, FEDROC_DIFFS.items(), strict=True):
        assert f"{d.a} - {d.b}" == label
        for value, printed in zip((d.estimate, d.se, d.df, d.t, d.p_value, *d.ci), row, strict=True):
            assert_digits(value, printed, single_precision=True)
    for modality, row in FEDROC_EACH.items():
        m = result.single_modality[modality]
        for value, printed in zip((m.auc, m.se, m.df, *m.ci), row, strict=True):
            assert_digits(value, printed, single_precision=True)


@pytest.mark.parametrize(
    ("fom", "expected_foms", "expected_jk"),
    [
        ("AFROC", AFROC_FOM05, AFROC_JK05),
        ("wAFROC", WAFROC_FOM05, WAFROC_JK05),
    ],
)
def test_dataset05_foms_and_jackknife_match_rjafroc(dataset05, fom, expected_foms, expected_jk):
    jk = froc.jackknife(*dataset05, fom=fom)
    assert jk.modalities == ("1", "2")
    assert jk.readers == tuple(str(r) for r in range(1, 10))
    assert jk.cases == tuple(range(1, 93))  # 45 normal cases first, then 47 abnormal, as RJafroc orders them
    assert jk.values.shape == (2, 9, 92)
    for i, row in enumerate(expected_foms):
        for j, printed in enumerate(row):
            assert_digits(jk.full[i, j], printed)
    for (i, j, k), printed in expected_jk.items():
        assert_digits(jk.values[i, j, k], printed)
    foms = froc.figure_of_merit(*dataset05, fom=fom)
    assert foms[("2", "9")] == pytest.approx(jk.full[1, 8], abs=1e-15)


# ---- hand-computable cases ------------------------------------------------------------------------------------
# Two normal cases (n1, n2); abnormal a1 with lesions L1 (weight 0.75) and L2 (0.25), abnormal a2 with one lesion.
CASES = ["n1", "n2", "a1", "a2"]
LESIONS = [("a1", "L1", 0.75), ("a1", "L2", 0.25), ("a2", "L1", 1.0)]


def one_reader(marks, fom, lesions=LESIONS):
    rows = [("R", "M", case, lesion, rating) for case, lesion, rating in marks]
    return froc.figure_of_merit(rows, lesions, CASES, fom, readers=["R"], modalities=["M"])[("M", "R")]


def test_perfect_reader_scores_one():
    marks = [("a1", "L1", 5), ("a1", "L2", 4), ("a2", "L1", 5), ("n1", None, 1)]  # n2 unmarked
    for fom in froc.FOMS:
        assert one_reader(marks, fom) == 1.0


def test_reader_who_marks_nothing_scores_one_half_and_one_who_finds_nothing_zero():
    # RJafroc: unmarked is −∞ and −∞ ties −∞ (½), so marking nothing gives the chance line, 0.5 (not 0).
    for fom in froc.FOMS:
        assert one_reader([], fom) == 0.5
    # Lesions all missed but every normal case carries a NL mark: every lesion loses to every normal case.
    marks = [("n1", None, 2), ("n2", None, 1)]
    assert one_reader(marks, "AFROC") == 0.0
    assert one_reader(marks, "wAFROC") == 0.0
    assert one_reader(marks, "HrAuc") == 0.0


def test_hand_computed_values_and_weights():
    # FP ratings: n1 = 3, n2 = −∞. Lesions: a1/L1 = 4, a1/L2 unmarked (−∞), a2/L1 = 2; a NL on a1 rated 5.
    marks = [("n1", None, 3), ("a1", "L1", 4), ("a2", "L1", 2), ("a1", None, 5)]
    # ψ rows (n1, n2): L1@a1: (1, 1); L2@a1: (0, ½); L1@a2: (0, 1)
    assert one_reader(marks, "AFROC") == pytest.approx((2 + 0.5 + 1) / (2 * 3))
    assert one_reader(marks, "wAFROC") == pytest.approx((0.75 * 2 + 0.25 * 0.5 + 1.0 * 1) / (2 * 2))
    # HrAuc: normals (3, −∞) vs abnormals (max(4, 5) = 5, 2): 1 + 1 + 0 + 1 over 4
    assert one_reader(marks, "HrAuc") == pytest.approx(3 / 4)
    # weights None = equal weights per case
    equal = [("a1", "L1", None), ("a1", "L2", None), ("a2", "L1", None)]
    assert one_reader(marks, "wAFROC", equal) == pytest.approx((0.5 * 2 + 0.5 * 0.5 + 1.0) / 4)


def test_two_marks_on_one_lesion_count_once_at_the_higher_rating():
    base = [("n1", None, 3), ("a2", "L1", 4)]
    once = base + [("a1", "L1", 5)]
    for twice in (base + [("a1", "L1", 2), ("a1", "L1", 5)], base + [("a1", "L1", 5), ("a1", "L1", 2)]):
        for fom in froc.FOMS:
            assert one_reader(twice, fom) == one_reader(once, fom)
    assert one_reader(twice, "AFROC") == pytest.approx((1 + 1 + 0 + 0.5 + 1 + 1) / 6)


def test_nl_marks_on_abnormal_cases_do_not_change_wafroc():
    base = [("n1", None, 3), ("a1", "L1", 4), ("a2", "L1", 2)]
    assert one_reader(base + [("a2", None, 5)], "wAFROC") == one_reader(base, "wAFROC")
    assert one_reader(base + [("a2", None, 5)], "HrAuc") > one_reader(base, "HrAuc")


@pytest.mark.parametrize(
    ("marks", "lesions", "cases", "message"),
    [
        ([("R", "M", "x", None, 1)], LESIONS, CASES, "not in cases"),
        ([("R", "M", "n1", "L1", 1)], LESIONS, CASES, "truth does not have"),
        ([("R", "M", "a1", "L9", 1)], LESIONS, CASES, "truth does not have"),
        ([("R", "M", "a1", "L1", math.nan)], LESIONS, CASES, "finite"),
        ([("R", "M", "a1", "L1", "high")], LESIONS, CASES, "not a number"),
        ([("R", "M", "a1", "L1")], LESIONS, CASES, "each mark"),
        ([], [("a1", "L1", 0.5), ("a1", "L2", 0.25), ("a2", "L1", 1.0)], CASES, "sum to"),
        ([], [("a1", "L1", 0.5), ("a1", "L2", None), ("a2", "L1", 1.0)], CASES, "None for others"),
        ([], [("a1", "L1", 1.0), ("a1", "L1", 1.0)], CASES, "more than once"),
        ([], [("zz", "L1", 1.0)], CASES, "not in cases"),
        ([], LESIONS, ["a1", "a2"], "normal and abnormal"),
        ([], LESIONS, CASES + ["n1"], "more than once"),
    ],
)
def test_bad_input_is_refused_with_a_message(marks, lesions, cases, message):
    with pytest.raises(ValueError, match=message):
        froc.figure_of_merit(marks, lesions, cases, readers=["R"], modalities=["M"])


def test_unknown_fom_and_too_small_designs_are_refused(dataset05):
    with pytest.raises(ValueError, match="fom must be one of"):
        froc.figure_of_merit([], LESIONS, CASES, "Wilcoxon", readers=["R"], modalities=["M"])
    marks, lesions, cases = dataset05
    with pytest.raises(ValueError, match="at least 2 readers"):
        froc.significance([m for m in marks if m[0] == "1"], lesions, cases)
    with pytest.raises(ValueError, match="not among the readers"):
        froc.figure_of_merit(marks, lesions, cases, readers=["1"])


def test_book_nine_case_example():
    """RJafrocFrocBook (Chakraborty), chapter "Empirical plots from FROC data", section "AFROC vs. wAFROC": 4 normal
    and 5 abnormal cases. The book prints the empirical operating points, AFROC (0, 0), (0, 0.7777778),
    (0.5, 0.7777778), (0.5, 0.8888889), (0.75, 0.8888889), (1, 1) and wAFROC (0, 0), (0, 0.62), (0.5, 0.62),
    (0.5, 0.82), (0.75, 0.82), (1, 1), and takes the areas under them (trapezoids) as the AUCs."""
    cases = [f"n{k}" for k in range(1, 5)] + [f"d{k}" for k in range(1, 6)]
    nl = {"n2": [0.5], "n3": [0.7, 0.6], "n4": [-0.3], "d1": [1.5]}  # n1 unmarked
    ll = {"d1": [0.9], "d2": [-0.2], "d3": [1.6, None], "d4": [3, 2], "d5": [1, 2.5, 1]}  # None: unmarked
    weights = {"d1": [1.0], "d2": [1.0], "d3": [0.1, 0.9], "d4": [0.9, 0.1], "d5": [0.3, 0.4, 0.3]}
    lesions = [(c, k, w) for c, ws in weights.items() for k, w in enumerate(ws)]
    marks = [("R", "M", c, None, z) for c, zs in nl.items() for z in zs]
    marks += [("R", "M", c, k, z) for c, zs in ll.items() for k, z in enumerate(zs) if z is not None]

    def trapezoids(points):
        return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True))

    afroc = [(0, 0), (0, 0.7777778), (0.5, 0.7777778), (0.5, 0.8888889), (0.75, 0.8888889), (1, 1)]
    wafroc = [(0, 0), (0, 0.62), (0.5, 0.62), (0.5, 0.82), (0.75, 0.82), (1, 1)]
    foms = {fom: froc.figure_of_merit(marks, lesions, cases, fom)[("M", "R")] for fom in ("AFROC", "wAFROC")}
    assert foms["AFROC"] == pytest.approx(trapezoids(afroc), abs=1e-7)  # 0.8472222
    assert foms["wAFROC"] == pytest.approx(trapezoids(wafroc), abs=1e-12)  # 0.7425


def brute_force(marks, lesions, cases, fom):
    """The definitions written out literally (RJafroc's src/MyFOM.cpp loops), one modality × reader."""
    lesion_w = {(c, k): w for c, k, w in lesions}
    abnormal = sorted({c for c, _, _ in lesions})
    normal = sorted(set(cases) - set(abnormal))
    best = {}
    for _, _, case, lesion, z in marks:
        best[(case, lesion)] = max(best.get((case, lesion), -math.inf), z)
    fp = [max([z for (c, k), z in best.items() if c == n], default=-math.inf) for n in normal]
    ll = [(c, lesion_w[(c, k)], best.get((c, k), -math.inf)) for c, k, _ in lesions]

    def psi(x, y):
        return 1.0 if y > x else 0.5 if y == x else 0.0

    if fom == "HrAuc":
        tp = [max([z for (c, _), z in best.items() if c == a], default=-math.inf) for a in abnormal]
        return sum(psi(x, y) for x in fp for y in tp) / (len(fp) * len(tp))
    if fom == "AFROC":
        return sum(psi(x, y) for x in fp for _, _, y in ll) / (len(fp) * len(ll))
    return sum(w * psi(x, y) for x in fp for _, w, y in ll) / (len(fp) * len(abnormal))


@pytest.mark.parametrize("fom", froc.FOMS)
def test_fast_figures_of_merit_and_jackknife_equal_the_literal_definitions(fom):
    rng = np.random.default_rng(7)
    cases = [f"c{k}" for k in range(14)]
    lesions = []
    for case in cases[6:]:  # 6 normal, 8 abnormal with 1–3 lesions
        n = int(rng.integers(1, 4))
        raw = rng.random(n) + 0.1
        lesions += [(case, k, float(w)) for k, w in enumerate(raw / raw.sum())]
    marks = []
    for case in cases:
        for _ in range(int(rng.integers(0, 3))):
            marks.append(("R", "M", case, None, float(rng.integers(1, 4))))  # coarse ratings: ties
    for case, k, _ in lesions:
        for _ in range(int(rng.integers(0, 3))):
            marks.append(("R", "M", case, k, float(rng.integers(1, 4))))
    jk = froc.jackknife(marks, lesions, cases, fom)
    assert jk.full[0, 0] == pytest.approx(brute_force(marks, lesions, cases, fom), abs=1e-12)
    for index, left_out in enumerate(jk.cases):
        kept_cases = [c for c in cases if c != left_out]
        kept_lesions = [row for row in lesions if row[0] != left_out]
        kept_marks = [m for m in marks if m[2] != left_out]
        expected = brute_force(kept_marks, kept_lesions, kept_cases, fom)
        assert jk.values[0, 0, index] == pytest.approx(expected, abs=1e-12)
