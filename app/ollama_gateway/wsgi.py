"""The WSGI entry point: ``gunicorn -c deploy/gunicorn.conf.py ollama_gateway.wsgi:app``.

Library code never imports this module: importing it builds the app.
"""
from .extension import create_app

app = create_app()
