"""Helpers the apps' selectors share; ``built_once`` is the speed layer's
(``tradingsite.fast``)."""

from tradingsite.fast import built_once

__all__ = ["built_once"]
