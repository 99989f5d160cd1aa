#!/usr/bin/env python3
"""Two engram-server nodes over one PostgreSQL database (stdlib only).

usage: test_server_postgres.py ENGRAM_SERVER_BIN POSTGRES_URL

Checks: a memory added through node A is found by a search on node B; the same fact added through both nodes
at once is stored once; node A killed with SIGKILL in the middle of a write load loses no acknowledged write and
node B keeps serving; a restarted node A sees everything. Exits non-zero with a message on the first failure.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Node:
    def __init__(self, binary, url, schema, extra=()):
        if schema != "ignored":
            url += ("&" if "?" in url else "?") + "schema=" + schema
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--store", url, "--threads", "8"] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            fail("engram-server did not start: " + line + self.proc.stderr.read())
        self.base = line.split("listening on ")[1].split()[0]
        # keep draining stderr so the server never blocks on a full pipe
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def call(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                fail("engram-server did not stop on SIGTERM")


def search(node, user, query):
    status, body = node.call("POST", "/search", {"query": query, "user_id": user, "top_k": 50})
    if status != 200:
        fail("search on %s answered %d: %s" % (node.base, status, body))
    return [r["memory"] for r in body["results"]]


def listed(node, user):
    status, body = node.call("GET", "/memories?user_id=" + user)
    if status != 200:
        fail("list answered %d: %s" % (status, body))
    return [r["memory"] for r in body["results"]]


def eventually(what, check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            fail(what)
        time.sleep(0.02)


def main():
    if len(sys.argv) != 3:
        fail("usage: test_server_postgres.py ENGRAM_SERVER_BIN POSTGRES_URL")
    binary, url = sys.argv[1], sys.argv[2]
    schema = "srv%d" % os.getpid()
    # settings that would do nothing or are malformed are refused at start (exit 2), never ignored
    for extra, bad_url, needle in ((["--compaction", "inline"], url, "--compaction"),
                                   ([], url + ("&" if "?" in url else "?") + "group_commit=maybe", "group_commit")):
        p = subprocess.run([binary, "--port", "0", "--store", bad_url] + extra, capture_output=True, text=True,
                           timeout=120)
        if p.returncode != 2 or needle not in p.stderr:
            fail("a start with %s %s answered %d: %s" % (bad_url, extra, p.returncode, p.stderr))
    print("ok: --compaction with a postgres store and a bad group_commit are refused at start")
    a, b = Node(binary, url, schema), Node(binary, url, schema)
    try:
        # 1. a write through A is found through B
        status, body = a.call("POST", "/memories", {"messages": [{"role": "user", "content": "I keep bees in Lyon"}],
                                                    "user_id": "alice", "infer": False})
        if status != 200:
            fail("add on A answered %d: %s" % (status, body))
        eventually("B never found the memory A stored", lambda: "I keep bees in Lyon" in search(b, "alice", "bees"))
        print("ok: a write on node A is found by a search on node B")

        # 2. the same fact through both nodes at once, many times: stored once each time
        for i in range(10):
            fact = "My locker number is %d" % (1000 + i)
            results = []
            threads = [threading.Thread(target=lambda n=n: results.append(n.call(
                "POST", "/memories", {"messages": [{"role": "user", "content": fact}], "user_id": "bob",
                                      "infer": False}))) for n in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if any(s != 200 for s, _ in results):
                fail("concurrent add failed: %s" % results)
            for node in (a, b):
                eventually("node %s lists '%s' %s times" % (node.base, fact, listed(node, "bob").count(fact)),
                           lambda node=node: listed(node, "bob").count(fact) == 1)
        print("ok: the same fact added through both nodes at once is stored once (10 rounds)")

        # 3. SIGKILL node A in the middle of a write load: every acknowledged write survives, B keeps serving
        acknowledged, stop = [], threading.Event()

        def writer(k):
            n = 0
            while not stop.is_set():
                text = "load fact %d-%d" % (k, n)
                n += 1
                try:
                    s, _ = a.call("POST", "/memories", {"messages": [{"role": "user", "content": text}],
                                                        "user_id": "carol", "infer": False}, timeout=5)
                except Exception:
                    continue  # the node died mid-request: not acknowledged
                if s == 200:
                    acknowledged.append(text)

        writers = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in writers:
            t.start()
        time.sleep(1.0)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        stop.set()
        for t in writers:
            t.join()
        if not acknowledged:
            fail("no write was acknowledged before the kill")
        eventually("B does not list every acknowledged write",
                   lambda: set(acknowledged) <= set(listed_all(b, "carol")), seconds=10)
        if "I keep bees in Lyon" not in search(b, "alice", "bees"):
            fail("B stopped serving after A was killed")
        print("ok: node A killed under load (%d acknowledged writes), all found on node B, which keeps serving"
              % len(acknowledged))

        # 4. a restarted node A sees everything
        a = Node(binary, url, schema)
        if not set(acknowledged) <= set(listed_all(a, "carol")):
            fail("restarted node A misses acknowledged writes")
        print("ok: a restarted node A sees every acknowledged write")
        status, _ = a.call("POST", "/reset")
        if status != 200:
            fail("reset answered %d" % status)
    finally:
        for n in (a, b):
            if n.proc.poll() is None:
                n.stop()


def listed_all(node, user):
    status, body = node.call("POST", "/v2/memories/", {"filters": {"user_id": user}, "limit": 100000, "page_size": 100000})
    if status != 200:
        fail("get_all answered %d: %s" % (status, body))
    return [r["memory"] for r in body["results"]]


if __name__ == "__main__":
    main()
