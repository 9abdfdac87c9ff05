"""How metric values travel and show (plain Python, no Django): JSON has no infinity, pages
show ∞ and a fixed number of significant figures, sorting and CSV want plain numbers.

One place for it, used by the models, the API, the leaderboard and the template filters.
"""

import math


def encode_value(value):
    """A float for JSON: ±inf as the strings "inf"/"-inf", NaN as None."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def decode_value(value):
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return value


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(value, digits=4):
    """∞ for infinite values, an em dash for missing (or NaN) ones, else `digits` significant figures."""
    value = decode_value(value)
    if _missing(value):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -3 or magnitude >= 7:
        return f"{value:.{max(0, int(digits) - 1)}e}"
    decimals = max(0, int(digits) - 1 - magnitude)
    return f"{value:.{decimals}f}"


def sort_number(value):
    """A plain number for client-side numeric sorting (never a string: '10th' must not sort before
    '1st'); ±inf as ±1e308, blank when missing."""
    value = decode_value(value)
    if _missing(value):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "1e308" if value > 0 else "-1e308"
    return repr(float(value))


def csv_number(value):
    """A CSV cell: the full-precision number, "inf"/"-inf", blank when missing."""
    encoded = encode_value(decode_value(value))
    if encoded is None:
        return ""
    return encoded if isinstance(encoded, str) else repr(encoded)


def spreadsheet_safe(cell):
    """A text cell that a spreadsheet would run as a formula (`=HYPERLINK(…)` as a run's name) gets a
    leading apostrophe; numbers, including "-inf" and "-0.5", are left alone."""
    if not isinstance(cell, str) or not cell or cell[0] not in "=+-@\t\r":
        return cell
    try:
        float(cell)
    except ValueError:
        return "'" + cell
    return cell


def interval_decimals(value, low, high, digits=4):
    """Decimal places shared by a value and its CI: those that show `value` with `digits` significant
    figures, or more where that would round the CI's width to nothing (at most 12); None where the
    value is missing, infinite or shown in scientific notation."""
    value = decode_value(value)
    if _missing(value) or math.isinf(value):
        return None
    decimals = 0
    if value != 0:
        magnitude = math.floor(math.log10(abs(value)))
        if magnitude < -3 or magnitude >= 7:
            return None
        decimals = max(0, int(digits) - 1 - magnitude)
    low, high = decode_value(low), decode_value(high)
    if not (_missing(low) or _missing(high)) and math.isfinite(low) and math.isfinite(high) and high > low:
        width_magnitude = math.floor(math.log10(high - low))
        decimals = max(decimals, min(12, 1 - width_magnitude))  # the width with two significant figures
    return decimals


def format_interval(value, low, high, digits=4):
    """(value, low, high) as text rounded alike: the same decimal places for all three (see
    `interval_decimals`), so "179.6 [180, 180]" cannot happen; ∞/— as `format_value`."""
    decimals = interval_decimals(value, low, high, digits)
    if decimals is None:
        return format_value(value, digits), format_value(low, digits), format_value(high, digits)

    def text(number):
        number = decode_value(number)
        if _missing(number) or math.isinf(number):
            return format_value(number, digits)
        return f"{number:.{decimals}f}"

    return text(value), text(low), text(high)


def feature_note(metric, extra, n_cases):
    """A sentence for the run page that says what a feature-tier number rests on, or "" (plain text):
    why precision or recall is (near) 0 when the outputs sit outside every reference ball, and (on FRD) how
    many radiomics values were clipped to ±`zscore_clip` reference standard deviations."""
    extra = extra or {}
    notes = []
    radius, nearest = extra.get("median_reference_radius"), extra.get("median_nearest_reference")
    if metric in ("precision", "recall") and radius is not None and nearest is not None and nearest > radius:
        dim = f" in {extra['features_kept']} standardised features" if extra.get("features_kept") else ""
        notes.append(
            f"The outputs lie a median {format_value(nearest, 3)} from their nearest reference{dim}, beyond the "
            f"median radius {format_value(radius, 3)} of the references' k = {extra.get('k', 3)} neighbourhoods "
            f"({n_cases} cases): most outputs fall outside the real images' manifold, so a value near 0 is a "
            "finding, not a failure to compute. With few cases in many dimensions the neighbourhoods are small; "
            "FRD and KID grade distances that precision and recall only count."
        )
    if metric == "frd" and extra.get("values_clipped"):  # once per extractor: KID and precision/recall share it
        notes.append(
            f"{extra['values_clipped']} output values in {extra['features_clipped']} radiomics features lay more "
            f"than {extra['zscore_clip']:g} reference standard deviations from the references' mean and were "
            "clipped to it (for FRD, KID, precision and recall)."
        )
    return " ".join(notes)
