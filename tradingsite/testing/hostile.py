"""Values a careless client or an attacker sends, for the generated checks that no query
parameter or JSON field of the API or the admin answers them with a 500."""

#: for any query parameter: NUL, numbers past every column, dates past the calendar and an
#: offset PostgreSQL refuses, JSON nested too deep, a cursor that is not one, a long text
QUERY_VALUES = [
    "a\x00b",
    "",
    "-1",
    "1.5",
    "9" * 30,
    "0000-01-01",
    "10000-01-01",
    "2024-01-01T00:00:00-17:25",
    "9999-12-31T23:59:59-15:00",
    "[" * 2000,
    "cD1hYmM=",  # a cursor of p=abc
    "é" * 300,
]

#: for the parameters every change list has (ordering, page, ...): the shapes Django parses
SHORT_QUERY_VALUES = ["-1", "9" * 30, "x", ""]

#: for a drill-down by date (year, then month, then day), each part in turn
DATE_PARTS = ["0", "-1", "10000", "9999", "13", "32", "9" * 30, "x"]

#: for a JSON field: nested too deep, numbers PostgreSQL's jsonb or Python refuse, NUL
JSON_TEXTS = [
    "[" * 2000 + "]" * 2000,
    '{"a": ' * 100 + "1" + "}" * 100,
    '{"a": NaN}',
    '{"a": 1e999}',
    '{"a": ' + "9" * 5000 + "}",
    '{"a": "\\u0000"}',
    '{"\\u0000": 1}',
    '"' + "\\" * 3,
]
