"""Pure translation between OpenAI shapes and Ollama's native API, by endpoint.

Dicts in, dicts out: no Flask, no requests, no clock, no randomness; ids and
timestamps are arguments. Imports only ``..errors`` and the standard library.

- :mod:`.chat`: ``/v1/chat/completions`` <-> ``/api/chat``; :mod:`.chat_stream` its stream
- :mod:`.forced`: forced tool choices as constrained output (``format``), any endpoint
- :mod:`.completions`: ``/v1/completions`` <-> ``/api/generate``
- :mod:`.embeddings`: ``/v1/embeddings`` <-> ``/api/embed``
- :mod:`.responses`: ``/v1/responses`` -> ``/api/chat``; :mod:`.responses_stream` its
  output items and events
- :mod:`.models`: model names (aliases, allow-list, hosts) and ``/v1/models``
"""
from .chat import (chat_forced_tool, chat_ignored_params, chat_output_schemas, finish_reason,
                   ollama_chat_to_openai, ollama_logprobs_to_openai, ollama_tool_call_to_openai,
                   openai_chat_to_ollama, openai_messages_to_ollama)
from .chat_stream import ChatStream
from .common import SYSTEM_FINGERPRINT, clip, merge_choices
from .completions import (CompletionStream, completion_echo, completion_finish_reason,
                          completion_ignored_params,
                          ollama_completion_to_openai, ollama_logprobs_to_legacy,
                          openai_completion_to_ollama)
from .embeddings import (embedding_inputs, embeddings_ignored_params, float32_base64,
                         ollama_embeddings_to_openai, openai_embeddings_to_ollama)
from .forced import (ForcedTool, allowed_tool_names, forced_reply_to_call, forced_tool,
                     with_instruction)
from .responses import (ResponsesRequest, ToolRef, input_items_page,
                        openai_responses_to_ollama, response_skeleton)
from .responses_stream import ResponsesStream, event_frame
from .models import (ModelMap, canonical_model, ollama_model_to_openai, ollama_time_to_unix,
                     owned_by)

__all__ = [
    "SYSTEM_FINGERPRINT", "clip", "merge_choices",
    # chat
    "ChatStream", "chat_forced_tool", "chat_ignored_params", "chat_output_schemas",
    "finish_reason",
    "ollama_chat_to_openai", "ollama_logprobs_to_openai", "ollama_tool_call_to_openai",
    "openai_chat_to_ollama", "openai_messages_to_ollama",
    # completions
    "CompletionStream", "completion_echo", "completion_finish_reason",
    "completion_ignored_params", "ollama_completion_to_openai",
    "ollama_logprobs_to_legacy", "openai_completion_to_ollama",
    # forced tool choices
    "ForcedTool", "allowed_tool_names", "forced_reply_to_call", "forced_tool",
    "with_instruction",
    # embeddings
    "embedding_inputs", "embeddings_ignored_params", "float32_base64",
    "ollama_embeddings_to_openai", "openai_embeddings_to_ollama",
    # responses
    "ResponsesRequest", "ResponsesStream", "ToolRef", "event_frame", "input_items_page",
    "openai_responses_to_ollama", "response_skeleton",
    # models
    "ModelMap", "canonical_model", "ollama_model_to_openai", "ollama_time_to_unix", "owned_by",
]
