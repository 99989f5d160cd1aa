#!/usr/bin/env python3
"""engram-server stops on SIGTERM and SIGINT whenever the signal comes, even at once after its banner (before
its accept loop runs), exits 0 and says so; what was added before the signal is there after a restart.

usage: test_stop.py ENGRAM_SERVER_BIN   (stdlib only; exits 1 on the first failure)

Two busy processes run beside the starts so that the signal lands early on a loaded machine, as in CI.
"""
import os
import signal
import subprocess
import sys
import tempfile

from live_server import Server, check, fail

ROUNDS = 40


def stopped_at_once(binary, work, sig):
    """Starts and signals the server ROUNDS times; @returns how many did not stop within 10 s."""
    hung = 0
    for i in range(ROUNDS):
        srv = Server(binary, os.path.join(work, "d%d" % i), ["--log-format", "off"])
        srv.proc.send_signal(sig)
        try:
            code = srv.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hung += 1
            srv.proc.kill()
            srv.proc.wait()
            continue
        srv._reader.join(timeout=10)
        err = "".join(srv._err)
        if code != 0 or "engram-server: stopped" not in err:
            fail("signal %d at once: exit %d, stderr %r" % (sig, code, err))
    return hung


def main():
    if len(sys.argv) != 2:
        fail("usage: test_stop.py ENGRAM_SERVER_BIN")
    binary = sys.argv[1]
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        with tempfile.TemporaryDirectory() as work:
            for sig in (signal.SIGTERM, signal.SIGINT):
                hung = stopped_at_once(binary, work, sig)
                check("signal %d right after the banner stops the server, %d of %d times" % (sig, ROUNDS - hung, ROUNDS),
                      hung == 0)
            data = os.path.join(work, "kept")
            srv = Server(binary, data, ["--log-format", "off"])
            status, _, body = srv.call("POST", "/v1/memories/", {"messages": [{"role": "user", "content": "I keep bees"}],
                                                                 "user_id": "ann", "infer": False})
            check("an add before the signal", status == 200, body)
            err = srv.stop()
            check("a graceful stop says so", srv.proc.returncode == 0 and "stopping (signal" in err and
                  "engram-server: stopped" in err, err)
            srv = Server(binary, data, ["--log-format", "off"])
            status, _, body = srv.call("GET", "/memories?user_id=ann")
            srv.stop()
            check("and it is there after a restart", status == 200 and "I keep bees" in body, body)
    finally:
        for p in busy:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
