"""What the Python tests of engram-server share (stdlib only): check/fail/skip, and a live server on a free
loopback port whose stderr is drained (kept when asked) so that it never blocks on a full pipe."""
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(what, cond, detail=""):
    if not cond:
        fail(what + (": " + str(detail) if detail else ""))
    print("ok: " + what)


def skip(why):
    """Exits 77, which ctest reports as skipped (SKIP_RETURN_CODE)."""
    print("SKIPPED: " + why)
    sys.exit(77)


class Server:
    """engram-server on 127.0.0.1 and a free port, over `data`, with more flags in `extra`. `key` is sent as
    `Authorization: Token KEY` by call() unless a call names another (or None)."""

    def __init__(self, binary, data, extra=(), key=None):
        self.key = key
        self.proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0", "--data", data] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            fail("engram-server did not start: " + line + self.proc.stderr.read())
        self.base = line.split("listening on ")[1].split()[0]
        self._err = []
        self._reader = threading.Thread(target=lambda: self._err.append(self.proc.stderr.read()), daemon=True)
        self._reader.start()

    def call(self, method, path, body=None, key="default", headers=None, raw=None):
        """(status, headers, text) of one request; `raw` bytes are sent as they are."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        h = {"Content-Type": "application/json"}
        key = self.key if key == "default" else key
        if key:
            h["Authorization"] = "Token " + key
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method.upper(), headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def stop(self):
        """Stops the server (SIGTERM) and returns what it wrote to stderr."""
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        return "".join(self._err)
