"""An OpenAI-compatible HTTP API for Ollama, as a Flask extension and WSGI app."""
from .errors import APIError
from .extension import OllamaGateway, create_app

__all__ = ["APIError", "OllamaGateway", "create_app"]
__version__ = "0.1.0"
