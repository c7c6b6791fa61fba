"""What changed between two versions of a workflow's steps, step by step, as a person reads it."""

import json
from dataclasses import dataclass, field
from difflib import SequenceMatcher


@dataclass
class StepChange:
    kind: str  # "same", "added", "removed" or "changed"
    old_number: int | None
    new_number: int | None
    step_type: str
    details: list = field(default_factory=list)  # for "changed": "config.bar: '1 day' -> '1 week'"


def _type(step):
    return step.get("type", "?") if isinstance(step, dict) else "?"


def _canonical(step):
    return json.dumps(step, sort_keys=True, default=str)


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _details(old, new):
    old_flat = _flatten(old if isinstance(old, dict) else {"step": old})
    new_flat = _flatten(new if isinstance(new, dict) else {"step": new})
    lines = []
    for key in sorted(old_flat.keys() | new_flat.keys()):
        if key not in new_flat:
            lines.append(f"{key}: {old_flat[key]!r} removed")
        elif key not in old_flat:
            lines.append(f"{key}: {new_flat[key]!r} added")
        elif old_flat[key] != new_flat[key]:
            lines.append(f"{key}: {old_flat[key]!r} -> {new_flat[key]!r}")
    return lines


def steps_diff(old_steps, new_steps):
    """A list of StepChange from ``old_steps`` to ``new_steps`` (numbers 1-based).

    Steps are matched whole (a moved or edited step is not the same step); within a replaced
    block, steps of the same type at the same position are shown as one changed step.
    """
    old_steps = old_steps if isinstance(old_steps, list) else []
    new_steps = new_steps if isinstance(new_steps, list) else []
    matcher = SequenceMatcher(
        a=[_canonical(s) for s in old_steps], b=[_canonical(s) for s in new_steps], autojunk=False
    )
    changes = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            changes += [
                StepChange("same", i + 1, j + 1, _type(old_steps[i]))
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            ]
            continue
        olds, news = list(range(i1, i2)), list(range(j1, j2))
        while olds and news and _type(old_steps[olds[0]]) == _type(new_steps[news[0]]):
            i, j = olds.pop(0), news.pop(0)
            changes.append(
                StepChange("changed", i + 1, j + 1, _type(new_steps[j]),
                           _details(old_steps[i], new_steps[j]))
            )  # fmt: skip
        changes += [StepChange("removed", i + 1, None, _type(old_steps[i])) for i in olds]
        changes += [StepChange("added", None, j + 1, _type(new_steps[j])) for j in news]
    return changes


def diff_summary(changes):
    """``"1 changed, 1 removed"``, or ``"no change"``."""
    counts = {}
    for change in changes:
        if change.kind != "same":
            counts[change.kind] = counts.get(change.kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no change"
