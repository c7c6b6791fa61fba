"""Pagination: page numbers for the small tables, cursors for the ones that grow without end.

A cursor page costs the same at the millionth row as at the first (no OFFSET, no COUNT); each
cursor class orders by columns an index covers (seek on the first, the id breaks ties).
"""

from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination

from tradingsite.database import offset_storable


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class _Cursor(CursorPagination):
    """DRF's cursor pagination, where a cursor the site did not make is a 400 naming ``cursor``.

    DRF checks a cursor's encoding (a 404) but hands its position to the query as it is: a
    position that is not a value of the ordering column (``p=abc`` on an id) raised in the
    ORM, and a date-time with an offset PostgreSQL does not take (``-17:25``; Python takes up
    to a day) reached the database. The site writes its cursors' positions in UTC; here a
    position is read as its column reads it, and a date-time whose offset PostgreSQL refuses
    or whose UTC moment is past the calendar is refused too.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self._invalid() from None
        if cursor is None or cursor.position is None:
            return cursor
        column = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            position = column.to_python(cursor.position)
            if isinstance(position, datetime):
                if not offset_storable(position):
                    raise ValueError("an offset PostgreSQL refuses")
                position = position.replace(tzinfo=position.tzinfo or UTC).astimezone(UTC)
        except (DjangoValidationError, ValueError, OverflowError):
            raise self._invalid() from None
        return cursor._replace(position=str(position))

    def _invalid(self):
        return ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})


class NewestFirstCursorPagination(_Cursor):
    """Decisions and orders: ``created_at`` is indexed on both tables."""

    ordering = ("-created_at", "-id")


class NewestIdFirstCursorPagination(_Cursor):
    """Executions: their id grows with their creation and is the primary key."""

    ordering = ("-id",)


class TimelineCursorPagination(_Cursor):
    """A conversation in the order it was spoken (index on execution, timestamp)."""

    ordering = ("timestamp", "id")
