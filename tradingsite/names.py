"""Names the site makes from other names."""

COPY_SUFFIX = " (Copy)"


def copy_name(name, *, max_length, taken=()):
    """``NAME (Copy)``, the name of a clone, cut to fit a column of ``max_length`` characters:
    a name that already fills its column ends in "…" before the suffix, so the copy is still
    named after it and still says it is one. A name in ``taken`` is skipped for "NAME (Copy 2)",
    "NAME (Copy 3)"... (names that must be unique)."""
    number = 1
    while True:
        suffix = COPY_SUFFIX if number == 1 else f" (Copy {number})"
        copy = f"{name}{suffix}"
        if len(copy) > max_length:
            copy = f"{name[: max_length - len(suffix) - 1].rstrip()}…{suffix}"
        if copy not in taken:
            return copy
        number += 1
