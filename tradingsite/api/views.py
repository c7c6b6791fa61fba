"""What the apps' viewsets share."""


class ShapedMixin:
    """Answers a write with the object as a read shows it."""

    def _shaped(self, obj):
        """``obj`` read again through the view's queryset (its selector's annotations, e.g. an
        order's symbol and strategy_id), after a service wrote it."""
        return self.get_queryset().get(pk=obj.pk)
