"""Reads of strategies and decisions, shaped so that a page costs the same queries at any size."""

from django.db.models import F, Prefetch

from marketdata.models import Code
from tradingsite.querysets import built_once

from .models import Decision, Strategy


@built_once
def strategies_list():
    return Strategy.objects.prefetch_related(
        Prefetch("codes", queryset=Code.objects.only("id").order_by("id"))
    ).order_by("name", "id")


@built_once
def decisions_list():
    """Newest first, the order of the ``decision.created_at`` index; ``reward_risk`` is
    ``-r_coefficient`` (positive for a sound trade, see ``tradingsite.money.reward_risk``)."""
    return Decision.objects.annotate(reward_risk=-F("r_coefficient")).order_by("-created_at", "-id")
