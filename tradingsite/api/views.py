"""What the apps' viewsets share."""


class ShapedMixin:
    """Answers a write with the object as a read shows it."""

    def _shaped(self, obj):
        """``obj`` read again through the view's queryset (its selector's annotations, e.g. an
        order's symbol and strategy_id), after a service wrote it."""
        return self.get_queryset().get(pk=obj.pk)


class ValuesListMixin:
    """A listing reads its rows with ``.values()`` when its serializer can show them from it.

    See ``tradingsite.api.serializers.ModelSerializer.values_of``: a dict per row instead of
    a model instance, the same body. The cursor's ordering columns are read too, as the cursor
    pagination takes the next page's position from the last row.
    """

    def paginate_queryset(self, queryset):
        values_of = getattr(self.get_serializer_class(), "values_of", None)
        if self.action == "list" and values_of is not None:
            ordering = getattr(self.paginator, "ordering", None) or ()
            if isinstance(ordering, str):
                ordering = (ordering,)
            queryset = values_of(queryset, also=[name.lstrip("-") for name in ordering])
        return super().paginate_queryset(queryset)
