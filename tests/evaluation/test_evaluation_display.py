"""How metric values are written on the pages."""

import math

import pytest

from evaluation.templatetags.evaluation_tags import metric_value


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [
        (math.inf, 4, "∞"),
        ("inf", 4, "∞"),
        (-math.inf, 4, "−∞"),
        (None, 4, "—"),
        (0.0, 4, "0"),
        (31.4159, 4, "31.42"),
        (0.93061, 4, "0.9306"),
        (0.007718, 4, "0.007718"),
        (1.4e-14, 2, "1.4e-14"),
        (88329228.5, 4, "8.833e+07"),
        (1575.2, 4, "1575"),
    ],
)
def test_metric_values_keep_four_significant_figures_and_show_infinity(value, digits, shown):
    assert metric_value(value, digits) == shown
