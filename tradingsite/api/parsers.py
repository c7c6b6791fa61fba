"""The API's JSON parser: DRF's, refusing JSON nested deeper than the site stores.

Python's json reads nesting by recursion: a body nested 2,000 deep raised ``RecursionError``
(a 500) in the parser, and one nested 900 deep would have been stored and broken whatever
reads it back recursively. No strategy parameter or workflow step needs more than a few
levels; ``JSON_DEPTH_LIMIT`` leaves plenty.
"""

import codecs
import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

JSON_DEPTH_LIMIT = 64

# A JSON string (one left open runs to the end: each is scanned once), or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


def json_depth_refusal(text, limit=JSON_DEPTH_LIMIT):
    """Why the JSON ``text`` is refused for its nesting (arrays and objects inside one
    another more than ``limit`` deep), or None; read before parsing it, which would recurse.

    The API's parser, its JSON fields sent as form fields, and the admin's JSON fields ask
    here. Brackets inside strings do not count; malformed JSON is left to the parser to name.
    """
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for token in _TOKENS.findall(text):
        if token == "[" or token == "{":
            depth += 1
            if depth > limit:
                return f"JSON nested deeper than {limit} levels (arrays and objects)."
        elif token == "]" or token == "}":
            depth -= 1
    return None


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser (the same reading, strictness and messages), with the depth check."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
            refusal = json_depth_refusal(text)
            if refusal:
                raise ParseError(refusal)
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
