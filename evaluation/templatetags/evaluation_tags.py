"""Template filters for metric values (formatting lives in `evaluation.formatting`)."""

from django import template

from .. import formatting

register = template.Library()


@register.filter
def metric_value(value, digits=4):
    """∞ for infinite values, an em dash for missing ones, else `digits` significant figures."""
    return formatting.format_value(value, digits)


@register.filter
def case_value(result, key):
    return result.values.get(key)


@register.filter
def get_item(mapping, key):
    return mapping.get(key)


@register.filter
def sort_number(value):
    """A plain number for data-value attributes (client-side numeric sorting); blank when missing."""
    return formatting.sort_number(value)


@register.filter
def percent(value):
    return "—" if value is None else f"{100 * float(value):.0f}%"


@register.simple_tag
def metric_with_ci(value, low, high, digits=4):
    """'0.812 [0.790, 0.833]': a value and its CI rounded alike (`formatting.format_interval`); the value
    alone where there is no CI."""
    shown, low_text, high_text = formatting.format_interval(value, low, high, digits)
    if decode_missing(low) or decode_missing(high):
        return shown
    return f"{shown} [{low_text}, {high_text}]"


@register.simple_tag
def ci_text(value, low, high, digits=4):
    """'[0.790, 0.833]' rounded as `value` is shown (see `metric_with_ci`); '—' where there is no CI."""
    _, low_text, high_text = formatting.format_interval(value, low, high, digits)
    if decode_missing(low) or decode_missing(high):
        return "—"
    return f"[{low_text}, {high_text}]"


@register.simple_tag
def value_text(value, low, high, digits=4):
    """The value rounded alike with its CI (see `metric_with_ci`)."""
    return formatting.format_interval(value, low, high, digits)[0]


def decode_missing(value):
    return formatting.format_value(value) == "—"
