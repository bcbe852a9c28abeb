"""Pure translation between OpenAI shapes and Ollama's native API, by endpoint.

Dicts in, dicts out: no Flask, no requests, no clock, no randomness; ids and
timestamps are arguments. Imports only ``..errors`` and the standard library.

- :mod:`.chat`: ``/v1/chat/completions`` <-> ``/api/chat``; :mod:`.chat_stream` its stream
- :mod:`.completions`: ``/v1/completions`` <-> ``/api/generate``
- :mod:`.embeddings`: ``/v1/embeddings`` <-> ``/api/embed``
- :mod:`.models`: model names (aliases, allow-list, hosts) and ``/v1/models``
"""
from .chat import (chat_ignored_params, finish_reason,
                   ollama_chat_to_openai, ollama_logprobs_to_openai, ollama_tool_call_to_openai,
                   openai_chat_to_ollama, openai_messages_to_ollama)
from .chat_stream import ChatStream
from .common import SYSTEM_FINGERPRINT, merge_choices
from .completions import (CompletionStream, completion_echo, completion_finish_reason,
                          completion_ignored_params,
                          ollama_completion_to_openai, ollama_logprobs_to_legacy,
                          openai_completion_to_ollama)
from .embeddings import (embedding_inputs, embeddings_ignored_params, float32_base64,
                         ollama_embeddings_to_openai, openai_embeddings_to_ollama)
from .models import (ModelMap, canonical_model, ollama_model_to_openai, ollama_time_to_unix,
                     owned_by)

__all__ = [
    "SYSTEM_FINGERPRINT", "merge_choices",
    # chat
    "ChatStream", "chat_ignored_params", "finish_reason",
    "ollama_chat_to_openai", "ollama_logprobs_to_openai", "ollama_tool_call_to_openai",
    "openai_chat_to_ollama", "openai_messages_to_ollama",
    # completions
    "CompletionStream", "completion_echo", "completion_finish_reason",
    "completion_ignored_params", "ollama_completion_to_openai",
    "ollama_logprobs_to_legacy", "openai_completion_to_ollama",
    # embeddings
    "embedding_inputs", "embeddings_ignored_params", "float32_base64",
    "ollama_embeddings_to_openai", "openai_embeddings_to_ollama",
    # models
    "ModelMap", "canonical_model", "ollama_model_to_openai", "ollama_time_to_unix", "owned_by",
]
