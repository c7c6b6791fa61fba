"""The workflow engine: a registry of small steps, their validation, and the runner."""

from .params import effective_params, fill_placeholders, required_params
from .validation import StepError, param_value_errors, params_errors, workflow_errors

__all__ = [
    "StepError",
    "effective_params",
    "fill_placeholders",
    "param_value_errors",
    "params_errors",
    "required_params",
    "workflow_errors",
]
