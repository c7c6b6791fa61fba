"""A drf-spectacular postprocessing hook: every operation documents the errors it can return.

The bodies are the exception handler's (tradingsite.api.exceptions): ``detail`` always,
``errors`` on a 400, ``broker`` on a 503.
"""

from drf_spectacular.utils import OpenApiResponse

ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {},
            "description": "Each refused field and its reasons (a list, or a mapping of "
            "sub-fields to lists for a compound field).",
        },
        "broker": {
            "type": "object",
            "properties": {"host": {"type": "string"}, "port": {"type": "integer"}},
        },
    },
    "required": ["detail"],
}

DESCRIPTIONS = {
    "400": "Refused: `errors` names each field and the reason.",
    "401": "No credentials: send `Authorization: Token <key>` or sign in.",
    "403": "Not allowed: only staff users write (or the CSRF token is missing).",
    "404": "No such object (or no such page: an out-of-range `page`).",
    "429": "Too many requests: wait `Retry-After` seconds.",
    "502": "The IB gateway refused or did not answer in time.",
    "503": "The IB gateway cannot be reached; `broker` names its host and port.",
}

WRITES = {"post", "put", "patch", "delete"}

#: ``responses`` entries of an operation that talks to the IB gateway while the client waits
BROKER_ERRORS = {
    502: OpenApiResponse(description=DESCRIPTIONS["502"]),
    503: OpenApiResponse(description=DESCRIPTIONS["503"]),
}


def _error_response(code):
    return {
        "description": DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            parameters = operation.get("parameters", [])
            where = {parameter["in"] for parameter in parameters}
            names = {parameter["name"] for parameter in parameters}
            codes = ["401", "403", "429"]
            if "requestBody" in operation or "query" in where or method in WRITES:
                codes.append("400")
            if "path" in where or "page" in names:
                codes.append("404")
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, _error_response(code))
            for code in ("502", "503"):
                if code in responses:
                    responses[code] = _error_response(code)
    return result
