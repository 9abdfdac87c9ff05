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
