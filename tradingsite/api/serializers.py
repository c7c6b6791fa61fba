"""The ModelSerializer the apps' API serializers derive from: DRF's, with the speed layer's
leaner read (``tradingsite.fast.FastSerializerMixin``) and its DecimalField."""

from django.db import models
from rest_framework import serializers

from tradingsite.fast import DecimalField, FastSerializerMixin

__all__ = ["DecimalField", "ModelSerializer"]


class ModelSerializer(FastSerializerMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: DecimalField,
    }
