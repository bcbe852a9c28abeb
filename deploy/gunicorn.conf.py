"""gunicorn settings for the gateway: ``gunicorn -c deploy/gunicorn.conf.py ollama_gateway.wsgi:app``.

No ``bind`` here: gunicorn's own ``--bind`` / ``GUNICORN_CMD_ARGS`` decide it
(default 127.0.0.1:8000). Any setting below can be overridden the same way.
"""
import os

# gthread: the worker's main thread keeps notifying the arbiter while requests
# run in a thread pool, so a stream longer than `timeout` is not killed (the
# default sync worker is, mid-stream). Each open stream holds one thread.
worker_class = os.environ.get("OLLAMA_GATEWAY_WORKER_CLASS", "gthread")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("OLLAMA_GATEWAY_THREADS", "16"))

# With gthread, `timeout` only detects a hung worker process, not a long request.
timeout = 30
# On reload (HUP) or stop (TERM), in-flight streams get this long to finish.
graceful_timeout = int(os.environ.get("OLLAMA_GATEWAY_GRACEFUL_TIMEOUT", "300"))
keepalive = 5

accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
