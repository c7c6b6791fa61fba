"""Pagination: page numbers for the small tables, cursors for the ones that grow without end.

A cursor page costs the same at the millionth row as at the first (no OFFSET, no COUNT); each
cursor class orders by columns an index covers (seek on the first, the id breaks ties).
"""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class _Cursor(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class NewestFirstCursorPagination(_Cursor):
    """Decisions and orders: ``created_at`` is indexed on both tables."""

    ordering = ("-created_at", "-id")


class NewestIdFirstCursorPagination(_Cursor):
    """Executions: their id grows with their creation and is the primary key."""

    ordering = ("-id",)


class TimelineCursorPagination(_Cursor):
    """A conversation in the order it was spoken (index on execution, timestamp)."""

    ordering = ("timestamp", "id")
