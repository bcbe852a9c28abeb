"""Headless Chromium driven over the DevTools protocol, with the standard library only.

``--remote-debugging-pipe`` speaks CDP over file descriptors 3 (commands in)
and 4 (replies and events out), each message JSON ending in a NUL byte, as
Puppeteer's ``pipe: true`` does: no websocket client, no port to find.
"""
import fcntl
import itertools
import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

#: Flags for this machine: root needs --no-sandbox; the network is closed, so
#: every background fetch (updates, sync, safe browsing) is turned off.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio")


def find_chromium() -> Optional[str]:
    """Return the path of Debian's chromium (or another Chromium/Chrome), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CDPError(RuntimeError):
    """A CDP command failed, timed out, or the browser went away."""


class Chromium:
    """One headless browser process; :meth:`call` sends a command and waits for its reply."""

    def __init__(self, executable: str, profile: Path, log_path: Path) -> None:
        # Descriptors well above 4, so the 3/4 redirections below never clobber them
        # (bash, since dash takes single-digit descriptors only).
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        child_in = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        os.close(to_child_r)
        os.close(from_child_w)
        cmd = [shutil.which("bash") or "/bin/bash", "-c", 'exec "$0" "$@" 3<&%d 4>&%d %d<&- %d>&-'
               % (child_in, child_out, child_in, child_out),
               executable] + list(FLAGS) + [
            "--user-data-dir=%s" % profile, "--remote-debugging-pipe", "about:blank"]
        self.log_path = log_path
        self._log = open(str(log_path), "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT,
                                         pass_fds=(child_in, child_out))
        finally:
            os.close(child_in)
            os.close(child_out)
        self._writer = os.fdopen(to_child_w, "wb", buffering=0)
        self._reader = os.fdopen(from_child_r, "rb", buffering=0)
        self._ids = itertools.count(1)
        self._replies = {}  # type: Dict[int, queue.Queue]
        self._lock = threading.Lock()
        self.events = queue.Queue()  # type: queue.Queue
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        pending = b""
        while True:
            chunk = self._reader.read(65536)
            if not chunk:
                break
            pending += chunk
            *messages, pending = pending.split(b"\0")
            for raw in messages:
                message = json.loads(raw.decode("utf-8"))
                with self._lock:
                    waiter = self._replies.pop(message.get("id"), None)
                if waiter is not None:
                    waiter.put(message)
                else:
                    self.events.put(message)
        # The browser is gone: wake every waiter instead of letting it run into its timeout.
        with self._lock:
            waiters, self._replies = list(self._replies.values()), {}
        for waiter in waiters:
            waiter.put({"error": {"message": "the browser closed the DevTools pipe"}})
        self.events.put(None)

    def call(self, method: str, params: Optional[Dict[str, Any]] = None,
             session: Optional[str] = None, timeout: float = 30.0) -> Dict[str, Any]:
        """Return the result of one CDP command."""
        ident = next(self._ids)
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        waiter = queue.Queue(1)  # type: queue.Queue
        with self._lock:
            self._replies[ident] = waiter
        try:
            self._writer.write(json.dumps(message).encode("utf-8") + b"\0")
        except OSError as exc:
            raise CDPError("cannot send %s: %s\n%s" % (method, exc, self.log())) from exc
        try:
            reply = waiter.get(timeout=timeout)
        except queue.Empty:
            raise CDPError("no reply to %s within %ss\n%s"
                           % (method, timeout, self.log())) from None
        if "error" in reply:
            raise CDPError("%s failed: %s\n%s" % (method, reply["error"], self.log()))
        return reply["result"]

    def wait_event(self, method: str, session: str, timeout: float,
                   seen: Optional[List[Dict[str, Any]]] = None,
                   **params: Any) -> Dict[str, Any]:
        """Return the next ``method`` event of ``session`` whose params include ``params``;
        other events go to ``seen``."""
        while True:
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                raise CDPError("no %s within %ss\n%s" % (method, timeout, self.log())) from None
            if event is None:
                raise CDPError("the browser exited while waiting for %s\n%s"
                               % (method, self.log()))
            if event.get("method") == method and event.get("sessionId") == session and all(
                    event["params"].get(key) == value for key, value in params.items()):
                return event
            if seen is not None:
                seen.append(event)

    def log(self) -> str:
        """Return the end of the browser's output, without its complaints about D-Bus
        (there is no session bus here, and it says so many times)."""
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if "dbus" not in line)[-4000:]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except CDPError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._writer.close()
        self._thread.join(5)
        self._reader.close()
        self._log.close()


def run_page(browser: Chromium, url: str, timeout: float = 60.0) -> Dict[str, Any]:
    """Return what the page at ``url`` passes to ``window.finish`` (see tests/browser/index.html),
    with the console messages and uncaught exceptions seen meanwhile under ``"_console"``."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"]
    seen = []  # type: List[Dict[str, Any]]
    for domain in ("Runtime", "Log", "Page"):
        browser.call(domain + ".enable", session=session)
    browser.call("Page.setLifecycleEventsEnabled", {"enabled": True}, session=session)
    loader = browser.call("Page.navigate", {"url": url}, session=session)["loaderId"]
    # By this document's load, the classic script that defines window.finished has run.
    try:
        browser.wait_event("Page.lifecycleEvent", session, timeout, seen, name="load",
                           loaderId=loader)
        result = browser.call("Runtime.evaluate", {
            "expression": "window.finished.then(function (out) { return JSON.stringify(out); })",
            "awaitPromise": True, "returnByValue": True,
        }, session=session, timeout=timeout)
    except CDPError as exc:
        raise CDPError("%s\npage console:\n%s" % (exc, "\n".join(_drain(browser, seen)))) from None
    dom = browser.call("Runtime.evaluate", {
        "expression": "document.getElementById('result').textContent", "returnByValue": True,
    }, session=session)["result"].get("value")
    browser.call("Target.closeTarget", {"targetId": target})
    console = _drain(browser, seen)
    if "exceptionDetails" in result:
        raise CDPError("the page's promise failed: %s\npage console:\n%s"
                       % (result["exceptionDetails"], "\n".join(console)))
    out = json.loads(result["result"]["value"])
    out["_dom"] = dom
    out["_console"] = console
    return out


def _drain(browser: Chromium, seen: List[Dict[str, Any]]) -> List[str]:
    """Return the console lines among ``seen`` and the events still queued."""
    while not browser.events.empty():
        event = browser.events.get_nowait()
        if event is not None:
            seen.append(event)
    return [_console_line(e) for e in seen if e.get("method") in (
        "Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")]


def _console_line(event: Dict[str, Any]) -> str:
    params = event.get("params", {})
    if event["method"] == "Log.entryAdded":
        return "%s: %s" % (params["entry"].get("level"), params["entry"].get("text"))
    if event["method"] == "Runtime.exceptionThrown":
        return "exception: %s" % params.get("exceptionDetails", {}).get("text")
    return "%s: %s" % (params.get("type"), " ".join(
        str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])))
