"""Self-signed certificates made at test time with the ``openssl`` CLI, and TLS servers.

Without the binary a test skips locally and fails under CI (``CI=true``),
naming the Debian package to install.
"""
import os
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest

#: The Debian package that provides the binary.
PACKAGE = "openssl"


class CertPair(NamedTuple):
    """A PEM certificate (its own CA) and its private key."""

    cert: Path
    key: Path


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def openssl_binary() -> str:
    """Return the path of ``openssl``; skips the test (fails it under CI) if absent."""
    found = shutil.which("openssl")
    if not found:
        _missing("openssl is not installed (apt-get install %s); the TLS tests need it" % PACKAGE)
    return found or ""


def make_cert(directory: Path, name: str, san: str = "IP:127.0.0.1") -> CertPair:
    """Return a fresh self-signed server certificate for ``san`` (an ``IP:``/``DNS:`` list)."""
    pair = CertPair(directory / (name + ".pem"), directory / (name + ".key"))
    # An EC key: fast to make. CA:TRUE and keyUsage keep strict verifiers
    # (VERIFY_X509_STRICT) happy with a certificate that is its own CA.
    subprocess.run([openssl_binary(), "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=ollama-gateway test %s" % name,
                    "-addext", "subjectAltName=" + san,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
                    "-addext", "extendedKeyUsage=serverAuth",
                    "-keyout", str(pair.key), "-out", str(pair.cert)],
                   check=True, capture_output=True, timeout=30)
    return pair


def server_context(pair: CertPair) -> ssl.SSLContext:
    """Return a server-side context presenting ``pair``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pair.cert), str(pair.key))
    return context


def serve_tls(emulator: Any, pair: CertPair) -> str:
    """Make a started ``OllamaEmulator`` speak TLS; return its ``https://`` base URL.

    Call it before anything connects. The listening socket keeps its file
    descriptor (the one serve_forever polls); the handshake runs in each
    handler thread, on the first read, so a client that aborts it cannot
    stall the accept loop.
    """
    server = emulator._server
    server.socket = server_context(pair).wrap_socket(server.socket, server_side=True,
                                                     do_handshake_on_connect=False)
    return "https://127.0.0.1:%d" % emulator.port
