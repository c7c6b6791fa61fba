"""Token authentication: DRF's, with the speed layer's query compiled once
(``tradingsite.fast.FastTokenMixin``)."""

from rest_framework import authentication

from tradingsite.fast import FastTokenMixin


class TokenAuthentication(FastTokenMixin, authentication.TokenAuthentication):
    """``Authorization: Token <key>``: DRF's token authentication, the same query, instances,
    refusals and messages."""
