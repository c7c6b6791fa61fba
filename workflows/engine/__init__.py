"""The workflow engine: a registry of small steps, their validation, and the runner."""

from .params import effective_params, fill_placeholders, required_params
from .validation import (
    StepError,
    error_name,
    param_value_errors,
    params_errors,
    params_step_errors,
    workflow_errors,
)

__all__ = [
    "StepError",
    "error_name",
    "effective_params",
    "fill_placeholders",
    "param_value_errors",
    "params_errors",
    "params_step_errors",
    "required_params",
    "workflow_errors",
]
