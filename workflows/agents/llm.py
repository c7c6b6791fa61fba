"""The one place that turns the LLM settings into an autogen model client.

Why: the workflow engine asks for "the model" and must not care whether it is OpenAI, Gemini's
OpenAI-compatible endpoint, a local Ollama, or nothing at all (the offline rules). Empty
``LLM_BASE_URL`` means offline, so a fresh checkout runs its workflows with no network and no key.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .offline import OfflineChatCompletionClient
from .recorded import RecordedRepliesClient
from .replay import replayed

# An OpenAI-compatible endpoint serves models autogen has never heard of ("llama3.1",
# "gemini-2.0-flash" under a custom base URL); autogen refuses such a name without model_info.
# The team needs plain text only, so claim nothing beyond it.
COMPATIBLE_MODEL_INFO = {
    "vision": False,
    "function_calling": False,
    "json_output": True,
    "structured_output": True,
    "family": "unknown",
}


OFFLINE_MODEL = "offline"


def model_name(model=None):
    """The name of the model ``model_client_from_settings(model=model)`` talks to, as a
    decision and the token usage record it: ``offline`` for the offline rules, the replay's
    label while recorded replies are replayed."""
    if (recording := replayed()) is not None:
        return recording.label
    if not settings.LLM_BASE_URL:
        return OFFLINE_MODEL
    return model or settings.LLM_MODEL


def model_client_from_settings(*, temperature=None, max_tokens=None, model=None):
    """The offline client when ``LLM_BASE_URL`` is empty, else an OpenAI-compatible client.

    ``temperature``, ``max_tokens`` and ``model`` (instead of ``LLM_MODEL``) go to the endpoint
    when given; the offline client is deterministic and has no use for them. While recorded
    replies are replayed (``replay.replies_replayed``), the client gives them back instead.
    """
    if (recording := replayed()) is not None:
        return RecordedRepliesClient(recording)
    if not settings.LLM_BASE_URL:
        return OfflineChatCompletionClient()
    if not (model or settings.LLM_MODEL):
        raise ImproperlyConfigured("LLM_MODEL must name a model when LLM_BASE_URL is set.")
    # Imported here: the openai SDK (and its start-up cost) is needed only with an endpoint.
    from autogen_core.models import ModelInfo
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    create_args = {}
    if temperature is not None:
        create_args["temperature"] = float(temperature)
    if max_tokens is not None:
        create_args["max_tokens"] = int(max_tokens)
    return OpenAIChatCompletionClient(
        model=model or settings.LLM_MODEL,
        base_url=settings.LLM_BASE_URL,
        # Trap: the openai SDK refuses to build a client without a key, even for a local
        # Ollama that ignores it; any non-empty placeholder will do there.
        api_key=settings.LLM_API_KEY or "unused",
        model_info=ModelInfo(**COMPATIBLE_MODEL_INFO),
        **create_args,
    )
