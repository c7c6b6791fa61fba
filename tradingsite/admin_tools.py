"""Shared pieces of the admin: a paginator that never counts a big table in full, links between
related rows, read-only admins for rows the broker or a run owns, and buttons on a change page
that run the same code as the list's actions."""

from datetime import datetime, timedelta

from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.core.paginator import Paginator
from django.db.models import DateTimeField, Max, Min
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from tradingsite import money
from tradingsite.exceptions import ApplicationError

COUNT_LIMIT = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most ``COUNT_LIMIT`` rows (``SELECT count(*) FROM (... LIMIT n)``), so a page of a
    table with millions of rows costs the same as one of a small table. Past the cap the page
    says "more than 10,000" and the filters and date drill-down narrow the list."""

    count_limit = COUNT_LIMIT

    @cached_property
    def count(self):
        rows = self.object_list.order_by().values("pk")[: self.count_limit + 1].count()
        self.capped = rows > self.count_limit
        return min(rows, self.count_limit)

    capped = False


def change_url(obj_or_model, pk=None):
    opts = obj_or_model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk or obj_or_model.pk])


def changelist_url(model, **filters):
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    if filters:
        url += "?" + "&".join(f"{name}={value}" for name, value in filters.items())
    return url


def link(url, text):
    return format_html('<a href="{}">{}</a>', url, text)


def short_link(url, text):
    """A link whose long text is cut with an ellipsis in a table and shown whole as a tooltip."""
    return format_html('<a href="{}" class="truncate" title="{}">{}</a>', url, text, text)


class LargeTableAdmin(admin.ModelAdmin):
    """A change list that stays fast on millions of rows: no full count, capped page count."""

    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50


class ReadOnlyAdmin(LargeTableAdmin):
    """Rows the broker or a workflow run owns: shown, linked, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ObjectActionsMixin:
    """Buttons at the top of a change page that run one of the admin's actions on that object.

    ``object_actions`` names action methods; ``object_action_allowed(request, obj, name)``
    hides the ones that do not apply (resume on an active strategy, cancel on a finished run).
    An action may return a response (a redirect to the run it started); otherwise the change
    page is shown again with the action's messages.
    """

    object_actions = ()
    object_action_confirms = {}  # action name -> the question the browser asks first
    change_form_template = "admin/change_form_with_actions.html"

    def object_action_allowed(self, request, obj, name):
        return True

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/do/<str:name>/",
                self.admin_site.admin_view(self.object_action_view),
                name=f"{opts.app_label}_{opts.model_name}_object_action",
            ),
            *super().get_urls(),
        ]

    def object_action_view(self, request, object_id, name):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None:  # no such row, or an id that is not one ("abc")
            raise Http404(f"No {self.model._meta.verbose_name} {object_id!r}.")
        action = self.get_actions(request).get(name)
        if name not in self.object_actions or action is None:  # or not this user's to run
            # The action's own services refuse what does not apply to the row as it is now.
            raise Http404(f"No action {name!r} on this {self.model._meta.verbose_name}.")
        func = action[0]
        queryset = self.get_queryset(request).filter(pk=obj.pk)
        response = func(self, request, queryset)
        return response or HttpResponseRedirect(change_url(obj))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        buttons = []
        if obj is not None:
            actions = self.get_actions(request)
            opts = self.model._meta
            for name in self.object_actions:
                if name in actions and self.object_action_allowed(request, obj, name):
                    buttons.append({
                        "name": name,
                        "label": actions[name][2],
                        "confirm": self.object_action_confirms.get(name, ""),
                        "url": reverse(
                            f"admin:{opts.app_label}_{opts.model_name}_object_action",
                            args=[obj.pk, name],
                        ),
                    })  # fmt: skip
        context["object_actions"] = buttons
        return super().render_change_form(request, context, add, change, form_url, obj)


class ServiceDeleteMixin:
    """Deletes, one or many, go through the app's service (``delete_service(obj)``), which
    refuses a row that has history; a refusal is shown as an error message and that row is
    kept, the others are deleted."""

    def delete_service(self, obj):
        raise NotImplementedError

    def delete_model(self, request, obj):
        try:
            self.delete_service(obj)
        except ApplicationError as refused:
            self.message_user(request, str(refused), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


def open_if_one(made):
    """An action that made or started exactly one object opens its change page."""
    return HttpResponseRedirect(change_url(made[0])) if len(made) == 1 else None


def report(modeladmin, request, done, refused, *, verb):
    """One success message listing what was done, one error message per refusal."""
    if done:
        modeladmin.message_user(request, format_html("{} {}.", verb, ", ".join(done)))
    for name, error in refused:
        modeladmin.message_user(request, f"{name}: {error}", messages.ERROR)


def each(queryset, service, **kwargs):
    """Run ``service(obj)`` for every object; returns (done, refused) for ``report``."""
    done, refused = [], []
    for obj in queryset:
        try:
            service(obj, **kwargs)
        except ApplicationError as error:
            refused.append((str(obj), error))
        else:
            done.append(str(obj))
    return done, refused


def _bounds(year=None, month=None, day=None):
    """The [start, end) of a year, a month or a day in the current time zone."""
    tz = timezone.get_current_timezone()
    if day:
        start = datetime(year, month, day, tzinfo=tz)
        return start, start + timedelta(days=1)
    if month:
        start = datetime(year, month, 1, tzinfo=tz)
        return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)


def date_range_hierarchy(cl):
    """Django's date drill-down, listing the years, months or days between the first and the
    last row of the table (two index look-ups) instead of ``SELECT DISTINCT date_trunc(...)``,
    which reads every row: a listed day may have no row. The range is the whole table's within
    the chosen period, so it does not follow the other filters."""
    field = cl.date_hierarchy
    params = {
        part: cl.params.get(f"{field}__{part}") for part in ("year", "month", "day")
    }  # fmt: skip
    try:
        year, month, day = (int(params[p]) if params[p] else None for p in ("year", "month", "day"))
    except (TypeError, ValueError):
        return {"show": False}

    def link(filters):
        return cl.get_query_string(filters, [f"{field}__"])

    with_time = isinstance(get_fields_from_path(cl.model, field)[-1], DateTimeField)
    rows = cl.root_queryset
    if year:
        start, end = _bounds(year, month, day)
        if not with_time:
            start, end = start.date(), end.date()
        rows = rows.filter(**{f"{field}__gte": start, f"{field}__lt": end})
    span = rows.aggregate(first=Min(field), last=Max(field))
    first, last = span["first"], span["last"]
    if first is None:
        return {"show": bool(year), "back": {"link": link({}), "title": "All dates"},
                "choices": []}  # fmt: skip
    if with_time:
        first, last = timezone.localtime(first), timezone.localtime(last)
    names = {f"{field}__year": year, f"{field}__month": month}
    if year and month and day:
        return {
            "show": True,
            "back": {"link": link({f"{field}__year": year, f"{field}__month": month}),
                     "title": f"{first:%B %Y}"},
            "choices": [{"title": f"{first:%B} {day}"}],
        }  # fmt: skip
    if year and month:
        return {
            "show": True,
            "back": {"link": link({f"{field}__year": year}), "title": str(year)},
            "choices": [
                {"link": link({**names, f"{field}__day": d}), "title": f"{first:%B} {d}"}
                for d in range(first.day, last.day + 1)
            ],
        }
    if year:
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {"link": link({f"{field}__year": year, f"{field}__month": m}),
                 "title": f"{datetime(year, m, 1):%B %Y}"}
                for m in range(first.month, last.month + 1)
            ],
        }  # fmt: skip
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({f"{field}__year": y}), "title": str(y)}
            for y in range(first.year, last.year + 1)
        ],
    }


def _number_display(name, kind, description):
    shown = {
        "price": lambda row: money.price_text(getattr(row, name)),
        "quantity": lambda row: money.quantity_text(getattr(row, name)),
        "money": lambda row: money.money_text(getattr(row, name)),
        "pnl": lambda row: money.pnl_html(getattr(row, name)),
        "percent": lambda row: money.percent_text(getattr(row, name)),
        "reward_risk": money.decision_r_text,
    }[kind]

    def display(row):
        return shown(row)

    display.__name__ = f"{name}_shown"
    return admin.display(description=description, ordering=name)(display)


class FormattedNumbersMixin:
    """Decimal columns as a trader reads them (``tradingsite.money``), in the change list and
    on the change page: ``number_formats`` maps a field to its kind (price, quantity, money,
    pnl, percent, reward_risk); ``list_display`` and ``fields`` keep naming the field.
    ``number_labels`` gives a column a shorter heading than its field's name, where a list
    must fit a laptop's screen."""

    number_formats = {}
    number_labels = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, kind in self.number_formats.items():
            description = self.number_labels.get(name) or (
                "reward / risk" if kind == "reward_risk"
                else self.model._meta.get_field(name).verbose_name
            )  # fmt: skip
            setattr(self, f"{name}_shown", _number_display(name, kind, description))

    def _shown(self, names):
        return [f"{n}_shown" if n in self.number_formats else n for n in names]

    def get_list_display(self, request):
        return self._shown(super().get_list_display(request))

    def get_fields(self, request, obj=None):
        return self._shown(super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly + [f"{n}_shown" for n in self.number_formats]
