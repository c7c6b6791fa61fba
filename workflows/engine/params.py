"""``{{name}}`` placeholders in step configs, filled from the effective parameters."""

import re

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def is_placeholder(value):
    """True for a value that is exactly one placeholder, such as ``"{{period_1}}"``."""
    return isinstance(value, str) and PLACEHOLDER.fullmatch(value.strip()) is not None


def effective_params(*, workflow, strategy):
    """The workflow's ``default_params`` overridden by the strategy's ``param``."""
    defaults = dict(workflow.default_params or {}) if workflow is not None else {}
    return {**defaults, **(strategy.param or {})}


def required_params(steps):
    """Every placeholder name the steps use."""
    names = set()

    def walk(value):
        if isinstance(value, str):
            names.update(PLACEHOLDER.findall(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(steps)
    return names


def fill_placeholders(value, params):
    """A copy of ``value`` with placeholders replaced.

    A string that is one whole placeholder takes the parameter's own value (a number stays a
    number); placeholders inside longer text are replaced by their text. A missing name raises
    KeyError, which validation reports before any run.
    """
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole:
            return params[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), value)
    if isinstance(value, dict):
        return {key: fill_placeholders(item, params) for key, item in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(item, params) for item in value]
    return value
