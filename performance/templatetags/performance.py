"""``{% strategy_performance strategy %}``: a strategy's figures and equity chart on its admin
page (the dashboard shows the same panel for each strategy)."""

from django import template

from performance.panels import strategy_panels

register = template.Library()


@register.inclusion_tag("performance/panel.html")
def strategy_performance(strategy):
    return {"panel": strategy_panels([strategy])[0], "heading": False}
