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
