"""``{% if user|may_view_dashboard %}``: the dashboard's own permission check, for its link."""

from django import template

from tradingsite.dashboard import may_view

register = template.Library()


@register.filter
def may_view_dashboard(user):
    return may_view(user)
