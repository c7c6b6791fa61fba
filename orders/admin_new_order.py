"""The admin's "New order" form: a manual order placed from the screen through the same service
and risk limits as the API's (``orders.services.order_place_manual``).

The symbol is searched as it is typed: the stored codes, then the stocks IB finds for the
letters (reqMatchingSymbols) that are not codes yet. Such a stock becomes a code, from IB's
contract details, when its order is placed (``code_resolve``), so a person can trade a symbol
nobody stored before without leaving the form; should IB not confirm it then, the form says so
at the symbol and nothing is placed. In paper mode the order goes on "Place order"; in live
mode a second screen repeats the order in words and it goes only on "Confirm". A refusal (a
risk limit, a price off IB's step, IB's own refusal) is shown on the form next to the field it
is about, and nothing is placed.
"""

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from marketdata.models import Code
from marketdata.selectors import symbol_search
from marketdata.services import SYMBOL, code_resolve
from tradingsite.admin_forms import AutocompleteSelect
from tradingsite.admin_tools import change_url
from tradingsite.broker import BrokerError, BrokerUnavailable
from tradingsite.exceptions import ApplicationError
from tradingsite.money import price_text, quantity_text

from .models import Order, OrderSide, OrderType, TimeInForce
from .services import order_check, order_place_manual

AT_IB = "ib:"  # the value of a search answer that is IB's stock, not a stored code


@dataclass(frozen=True)
class StockAtIB:
    """A stock IB's search found that is not a stored code yet: stored when it is traded."""

    symbol: str
    sec_type: str = "STK"
    currency: str = "USD"


def at_ib_text(symbol, description=""):
    named = f"{description}, " if description else ""
    return f"{symbol} (at IB: {named}not a stored code yet)"


class SymbolSelect(AutocompleteSelect):
    """The codes' select2 search, asking the order form's own search (codes and IB's)."""

    def get_url(self):
        return reverse("admin:orders_order_symbols")

    def optgroups(self, name, value, attr=None):
        groups = super().optgroups(name, value, attr)
        for chosen in (v for v in value if str(v).startswith(AT_IB)):  # shown again, chosen
            text = at_ib_text(chosen[len(AT_IB) :])
            groups.append((None, [self.create_option(name, chosen, text, True, len(groups))],
                           len(groups)))  # fmt: skip
        return groups


class SymbolField(forms.ModelChoiceField):
    """A stored code by its conid, or ``ib:SYMBOL``: a stock IB's search offered."""

    def to_python(self, value):
        if isinstance(value, str) and value.startswith(AT_IB):
            symbol = value[len(AT_IB) :].strip().upper()
            if not SYMBOL.fullmatch(symbol):
                raise forms.ValidationError(f"{symbol[:40]!r} is not a symbol.", code="invalid")
            return StockAtIB(symbol=symbol)
        return super().to_python(value)


class NewOrderForm(forms.Form):
    code = SymbolField(
        queryset=Code.objects.all(),
        to_field_name="conid",
        label="Symbol",
        help_text="Type the first letters of the symbol, or of the company's name: stored "
        "codes first, then the stocks IB knows (stored as a code when the order is placed).",
    )
    side = forms.ChoiceField(choices=OrderSide.choices, widget=forms.RadioSelect)
    quantity = forms.DecimalField(
        max_digits=18, decimal_places=4, help_text="Shares (whole shares)."
    )
    order_type = forms.ChoiceField(choices=OrderType.choices, label="Type", initial=OrderType.LMT)
    price = forms.DecimalField(
        required=False, max_digits=18, decimal_places=6,
        help_text="Limit price; required for LMT, ignored for MKT.",
    )  # fmt: skip
    tif = forms.ChoiceField(choices=TimeInForce.choices, label="TIF", initial=TimeInForce.DAY)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        code = self.fields["code"]
        code.widget = SymbolSelect(Order._meta.get_field("instrument"), admin_site)
        code.widget.choices = code.choices

    def clean(self):
        """The fields' shape is the form's; the order's rules are the service's
        (``order_check``), asked here so that a refusal shows before the confirmation screen."""
        data = super().clean()
        if not self.errors:
            try:
                data["price"] = order_check(**self.placed_fields())["price"]
            except ApplicationError as refused:
                self.refusal_show(refused)
        return data

    def placed_fields(self):
        data = self.cleaned_data
        return {name: data[name] for name in ("code", "side", "quantity", "order_type",
                                               "price", "tif")}  # fmt: skip

    def refusal_show(self, refused):
        """A service's refusal next to the fields it names, else above the form."""
        for field, reason in (refused.extra or {None: ""}).items():
            field = {"code_id": "code"}.get(field, field)
            if field in self.fields:
                self.add_error(field, reason)
            else:  # the refusal's own words, then its detail
                self.add_error(None, f"{refused} {reason}".strip())


def order_in_words(data):
    """ "BUY 10 AAPL LMT @ 190.25 DAY": what the confirmation screen asks about."""
    price = "" if data["price"] is None else f" @ {price_text(data['price'], code=data['code'])}"
    return (
        f"{data['side']} {quantity_text(data['quantity'])} {data['code'].symbol} "
        f"{data['order_type']}{price} {data['tif']}"
    )


def symbol_search_view(model_admin, request):
    """What the symbol field offers as letters are typed, in select2's shape: stored codes by
    their conid, then IB's stocks that are not codes yet (``ib:SYMBOL``)."""
    if not request.user.has_perm("orders.add_order"):
        raise PermissionDenied("Searching symbols to trade needs the permission to add orders.")
    codes, at_ib, ib_refusal = symbol_search(term=request.GET.get("term", "")[:32])
    results = [{"id": str(code.conid), "text": str(code)} for code in codes]
    results += [{"id": f"{AT_IB}{m.symbol}", "text": at_ib_text(m.symbol, m.description)}
                for m in at_ib]  # fmt: skip
    if ib_refusal:  # said, and not choosable: only the stored codes are offered
        results.append({"id": "", "text": f"IB was not searched: {ib_refusal}", "disabled": True})
    return JsonResponse({"results": results, "pagination": {"more": False}})


def _stored(code):
    """The code to trade: a stock IB's search offered becomes one now, from IB's details."""
    if not isinstance(code, StockAtIB):
        return code
    try:
        return code_resolve(symbol=code.symbol)
    except BrokerUnavailable as exc:
        raise ApplicationError("IB could not be reached.", extra={"code": str(exc)}) from None
    except ApplicationError as refused:
        raise ApplicationError(str(refused), extra={"code": refused.extra["symbol"]}) from None


def new_order_view(model_admin, request):
    if not request.user.has_perm("orders.add_order"):
        raise PermissionDenied("Placing an order needs the permission to add orders.")
    live = settings.TRADING_MODE == "live"
    form = NewOrderForm(
        request.POST or None, initial=request.GET.dict(), admin_site=model_admin.admin_site
    )
    confirming = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if live and not data["confirmed"]:
            confirming = True  # the second screen: the same form, hidden, and "Confirm"
        else:
            try:
                order = order_place_manual(
                    **{**form.placed_fields(), "code": _stored(data["code"])}
                )
            except ApplicationError as refused:
                form.refusal_show(refused)
            except BrokerError as refused:  # the row is kept, rejected with IB's reason
                form.add_error(None, f"IB did not take the order: {refused}")
            else:
                model_admin.message_user(
                    request, f"Order #{order.pk} placed: {order_in_words(data)} ({order.status})."
                )
                return HttpResponseRedirect(change_url(order))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Order._meta,
        "title": f"New order ({settings.TRADING_MODE} trading)",
        "form": form,
        "media": model_admin.media + form.media,
        "confirming": confirming,
        "in_words": order_in_words(form.cleaned_data) if confirming else "",
        "live": live,
    }
    return TemplateResponse(request, "admin/orders/order/new_order.html", context)
