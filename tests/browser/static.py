"""A static file server on its own loopback origin, for the browser page and the SDK's ESM build."""
import http.server
import mimetypes
import posixpath
import threading
from pathlib import Path
from typing import Dict
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
#: The openai package that ``npm ci`` in tests/js installs (its ESM build: ``*.mjs``).
OPENAI_PACKAGE = HERE.parent / "js" / "node_modules" / "openai"
#: URL prefix -> directory; the page's import map points ``openai`` at the second.
ROOTS = {"/node_modules/openai/": OPENAI_PACKAGE, "/": HERE}


class _Handler(http.server.SimpleHTTPRequestHandler):
    roots: Dict[str, Path] = {}
    # Module scripts need a JavaScript MIME type; Python < 3.12 guesses none for .mjs.
    extensions_map = dict(mimetypes.types_map, **{".mjs": "text/javascript",
                                                  ".js": "text/javascript", "": "text/plain"})

    def translate_path(self, path: str) -> str:
        clean = posixpath.normpath(unquote(urlsplit(path).path))
        for prefix, root in self.roots.items():
            if (clean + "/").startswith(prefix):
                rest = clean[len(prefix):].lstrip("/")
                root = root.resolve()
                target = (root / rest).resolve()
                # Nothing outside the served directories, whatever the path says.
                return str(target) if target == root or root in target.parents else ""
        return ""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


class StaticServer:
    """Serves :data:`ROOTS` on ``127.0.0.1`` at a free port until :meth:`stop`."""

    def __init__(self) -> None:
        handler = type("Handler", (_Handler,), {"roots": dict(ROOTS)})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = "http://127.0.0.1:%d" % self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
