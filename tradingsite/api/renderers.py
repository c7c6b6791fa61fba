"""The API's JSON renderer: DRF's output, written by orjson.

DRF's ``JSONRenderer`` runs ``json.dumps`` with an encoder class whose ``default`` is called
for every date-time, and then scans the text twice for U+2028/U+2029. orjson (C) writes the
same bytes in a fraction of the time: compact separators, UTF-8 rather than ``\\u`` escapes
(DRF's ``UNICODE_JSON``), UTC date-times as ISO 8601 with ``Z`` and their microseconds when
they have some, as DRF's encoder writes them; anything else orjson does not know (Decimal,
lazy strings, UUID, timedelta ...) goes through DRF's own encoder's ``default``.

Pretty-printing (``Accept: application/json; indent=4``, the browsable API) and non-default
JSON settings are left to DRF's renderer, and so is what orjson refuses (an integer beyond 64
bits, which a JSON column can hold). One difference: a float NaN or infinity becomes
``null``, where DRF's strict JSON raised an error (a 500).
"""

import orjson
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class JSONRenderer(DRFJSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        plain = self.compact and not self.ensure_ascii and self.strict
        if not plain or self.get_indent(accepted_media_type, renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=self.encoder_class().default, option=_OPTIONS)
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits in a JSON column
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80" in body:  # kept a strict subset of JavaScript, as DRF does
            for raw, escaped in _LINE_SEPARATORS:
                body = body.replace(raw, escaped)
        return body
