#!/usr/bin/env python3
"""PostgreSQL stopped and started again under load, through two engram-server nodes (stdlib only).

usage: test_server_postgres_restart.py ENGRAM_SERVER_BIN POSTGRES_URL PG_CLUSTER_SCRIPT PG_DIR

While clients add and search through both nodes, the cluster is stopped (scripts/pg-cluster.sh pause: pg_ctl
stop -m fast) for a few seconds and started again (resume). Checks: while it is down every request answers
within a bound, and a failure is HTTP 503 with a {"detail": "..."} body (never a hang, a 500 or a crash;
/health answers 503 too); after the start requests succeed again on both nodes; every acknowledged add is
listed and found by both nodes, and both nodes agree on the memories (an add whose COMMIT outcome was unknown
to its node is either there on both or on neither). Restarts the cluster the other postgres tests share: run
serially. Exits non-zero with a message on the first failure.
"""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server_postgres import Node, fail, listed_all, search  # noqa: E402

RECONNECT_MS = 1000   # the nodes' reconnect_timeout_ms: how long a request keeps retrying a lost database
BOUND_S = 10.0        # no request may take longer than this, database down or not
DOWN_S = 4.0          # how long the cluster stays down


def timed_call(node, method, path, body=None):
    """(status, body, seconds); status 0 for a transport failure (which fails the test later)."""
    start = time.monotonic()
    try:
        status, parsed = node.call(method, path, body, timeout=BOUND_S + 5)
    except Exception as e:  # noqa: BLE001 - reported as a failure
        return 0, repr(e), time.monotonic() - start
    return status, parsed, time.monotonic() - start


def cluster(script, command, pg_dir):
    r = subprocess.run([script, command, pg_dir], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail("pg-cluster.sh %s failed: %s%s" % (command, r.stdout, r.stderr))


def main():
    if len(sys.argv) != 5:
        fail("usage: test_server_postgres_restart.py ENGRAM_SERVER_BIN POSTGRES_URL PG_CLUSTER_SCRIPT PG_DIR")
    binary, url, script, pg_dir = sys.argv[1:]
    url += ("&" if "?" in url else "?") + "reconnect_timeout_ms=%d" % RECONNECT_MS
    schema = "rst%d" % os.getpid()
    nodes = [Node(binary, url, schema), Node(binary, url, schema)]
    paused = False
    try:
        lock = threading.Lock()
        acknowledged, outcomes, bad = [], [], []   # outcomes: (phase the request started in, status, seconds)
        phase = ["before"]
        stop = threading.Event()

        def record(started_in, status, parsed, seconds, what):
            with lock:
                outcomes.append((started_in, status, seconds))
                if status not in (200, 503):
                    bad.append("%s answered %s after %.1fs: %s" % (what, status, seconds, parsed))
                elif status == 503 and not (isinstance(parsed, dict) and isinstance(parsed.get("detail"), str)):
                    bad.append("%s answered 503 without a {'detail': str} body: %r" % (what, parsed))
                if seconds > BOUND_S:
                    bad.append("%s took %.1fs (bound %.0fs)" % (what, seconds, BOUND_S))

        def writer(k):
            n = 0
            while not stop.is_set():
                node = nodes[(k + n) % 2]
                text = "restart fact %d-%d" % (k, n)
                n += 1
                started_in = phase[0]
                status, parsed, seconds = timed_call(node, "POST", "/memories", {
                    "messages": [{"role": "user", "content": text}], "user_id": "w%d" % k, "infer": False})
                record(started_in, status, parsed, seconds, "add through %s" % node.base)
                if status == 200:
                    with lock:
                        acknowledged.append(("w%d" % k, text))

        def searcher(k):
            while not stop.is_set():
                node = nodes[k % 2]
                started_in = phase[0]
                status, parsed, seconds = timed_call(node, "POST", "/search",
                                                     {"query": "restart fact", "user_id": "w%d" % k, "top_k": 5})
                record(started_in, status, parsed, seconds, "search through %s" % node.base)
                time.sleep(0.01)

        # daemons: a failure exits without waiting for them
        threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(4)]
        threads += [threading.Thread(target=searcher, args=(k,), daemon=True) for k in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)

        cluster(script, "pause", pg_dir)
        paused = True
        with lock:
            phase[0] = "down"
        time.sleep(DOWN_S)
        for node in nodes:  # /health reports the outage too
            status, parsed, seconds = timed_call(node, "GET", "/health")
            if status != 503 or not isinstance(parsed, dict) or "detail" not in parsed:
                fail("/health on %s answered %s while the database was down: %r" % (node.base, status, parsed))
        with lock:
            phase[0] = "restarting"
        cluster(script, "resume", pg_dir)
        paused = False

        # requests succeed again on both nodes within a bound
        deadline = time.monotonic() + BOUND_S
        for node in nodes:
            while True:
                status, _, _ = timed_call(node, "POST", "/search", {"query": "x", "user_id": "w0"})
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    fail("%s still answers %s %.0fs after the database came back" % (node.base, status, BOUND_S))
                time.sleep(0.1)
        with lock:
            phase[0] = "after"
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()

        if bad:
            fail("%d bad answers, first: %s" % (len(bad), "; ".join(bad[:3])))
        down = [o for o in outcomes if o[0] == "down"]
        down_503 = [o for o in down if o[1] == 503]
        after_ok = [o for o in outcomes if o[0] == "after" and o[1] == 200]
        after_fail = [o for o in outcomes if o[0] == "after" and o[1] != 200]
        if not down_503:
            fail("no request failed while the database was down (%d requests): the outage was not seen" % len(down))
        if not after_ok or after_fail:
            fail("after the restart: %d requests succeeded, %d failed" % (len(after_ok), len(after_fail)))
        slowest = max(o[2] for o in down)
        print("ok: database down %.0fs under load: %d requests, %d answered 503 with a detail body (slowest %.1fs),"
              " none hung or crashed a node" % (DOWN_S, len(down), len(down_503), slowest))
        print("ok: after the restart both nodes serve again (%d requests succeeded)" % len(after_ok))

        # every acknowledged add is there, on both nodes, and both nodes agree
        users = sorted({u for u, _ in acknowledged})
        for node in nodes:
            for u in users:
                want = {t for uu, t in acknowledged if uu == u}
                have = set(listed_all(node, u))
                if not want <= have:
                    fail("%s misses %d acknowledged adds of %s, e.g. %s" % (node.base, len(want - have), u,
                                                                         sorted(want - have)[:3]))
        for u in users:
            def same(u=u):
                return set(listed_all(nodes[0], u)) == set(listed_all(nodes[1], u))
            deadline = time.monotonic() + 5
            while not same():
                if time.monotonic() > deadline:
                    a, b = set(listed_all(nodes[0], u)), set(listed_all(nodes[1], u))
                    fail("the nodes disagree on %s: only on A %s, only on B %s" % (u, sorted(a - b)[:3],
                                                                                sorted(b - a)[:3]))
                time.sleep(0.05)
        last_user, last_text = acknowledged[-1]
        for node in nodes:
            if last_text not in search(node, last_user, last_text):
                fail("%s does not find the last acknowledged add by search" % node.base)
        for node in nodes:
            if node.proc.poll() is not None:
                fail("a node exited (code %s)" % node.proc.returncode)
        print("ok: all %d acknowledged adds are listed by both nodes, which agree" % len(acknowledged))
        status, _ = nodes[0].call("POST", "/reset")
        if status != 200:
            fail("reset answered %d" % status)
    finally:
        if paused:
            subprocess.run([script, "resume", pg_dir], capture_output=True, timeout=60)
        for n in nodes:
            if n.proc.poll() is None:
                n.stop()


if __name__ == "__main__":
    main()
