"""``{% load money %}``: the filters of ``tradingsite.money`` for templates.

``{{ order.price|price }}``, ``{{ order.price|price:code }}``, ``{{ qty|quantity }}``,
``{{ amount|money }}``, ``{{ pnl|pnl }}`` (signed, coloured), ``{{ ratio|percent }}``,
``{{ decision|reward_risk }}`` ("2.0 R", "no target").
"""

from django import template

from tradingsite import money

register = template.Library()


@register.filter
def price(value, code=None):
    return money.price_text(value, code=code)


@register.filter
def quantity(value):
    return money.quantity_text(value)


@register.filter(name="money")
def money_filter(value):
    return money.money_text(value)


@register.filter
def pnl(value):
    return money.pnl_html(value)


@register.filter
def percent(value):
    return money.percent_text(value)


@register.filter
def reward_risk(decision):
    return money.decision_r_text(decision)
