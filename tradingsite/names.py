"""Names the site makes from other names."""

COPY_SUFFIX = " (Copy)"


def copy_name(name, *, max_length):
    """``NAME (Copy)``, the name of a clone, cut to fit a column of ``max_length`` characters:
    a name that already fills its column ends in "…" before the suffix, so the copy is still
    named after it and still says it is one."""
    copy = f"{name}{COPY_SUFFIX}"
    if len(copy) <= max_length:
        return copy
    return f"{name[: max_length - len(COPY_SUFFIX) - 1].rstrip()}…{COPY_SUFFIX}"
