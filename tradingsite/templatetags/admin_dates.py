"""The admin's date drill-down without a DISTINCT over the whole table (see admin_tools)."""

from django import template

from tradingsite.admin_tools import date_range_hierarchy

register = template.Library()
register.inclusion_tag("admin/date_hierarchy.html")(date_range_hierarchy)
