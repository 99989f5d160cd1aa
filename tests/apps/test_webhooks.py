#!/usr/bin/env python3
"""engram-server's webhooks against receivers on loopback (stdlib only).

usage: test_webhooks.py ENGRAM_SERVER_BIN

Checks: the Platform's webhook routes (create answers the secret, list hides it and filters by project, update,
rotate_secret, delete) need an admin key (a user-bound key gets 403) and refuse bad input with a 400 naming it;
every delivery carries a valid `X-Engram-Signature` (HMAC-SHA256 of the raw body, checked with Python's hmac)
and its event id; adds, updates, deletes (single, batch, a whole scope, over MCP too) reach the receiver once each, in order
per memory; an asynchronous add tells memory_add and async_add_completed; while the receiver is down writes are
answered at once and every event arrives once it is back (a 500 is retried too); a second receiver that is down
holds back only its own deliveries, which its deletion drops; a server killed with undelivered events delivers
them after a restart, skipping a journal line cut short; /metrics counts deliveries; a server without --keys
lets anyone manage webhooks. Exits 1 on the first failure.
"""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

from live_server import Server, check, fail

ADMIN_KEY = "admin-key-0123456789abcdef"
ALICE_KEY = "alice-key-0123456789abcdef"
ALL_TYPES = ["memory_add", "memory_update", "memory_delete", "async_add_completed", "entity_purged"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """An HTTP receiver on a fixed loopback port that can be stopped (the port closed) and started again.
    `status` answers each POST (a callable: the number of POSTs so far -> status); `received` keeps
    (headers, raw body) of those answered 2xx."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d/hooks/engram?src=test" % self.port
        self.lock = threading.Lock()
        self.received = []
        self.posts = 0
        self.paths = set()
        self.status = lambda n: 200
        self.httpd = None

    def start(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.posts += 1
                    code = outer.status(outer.posts)
                    outer.paths.add(self.path)
                    if 200 <= code < 300:
                        outer.received.append((dict(self.headers), body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def deliveries(self):
        with self.lock:
            return list(self.received)


def wait_for(what, cond, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def verified(receiver, secret, what, start=0):
    """The receiver's deliveries from the `start`th as parsed bodies, each signature and header checked,
    deduplicated by delivery id (at least once: a delivery may come twice)."""
    seen, out = set(), []
    for headers, body in receiver.deliveries()[start:]:
        sig = headers.get("X-Engram-Signature", "")
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, want):
            fail(what + ": a delivery's signature does not verify: " + sig + " for " + body[:200].decode())
        d = json.loads(body)
        if headers.get("X-Engram-Event-Id") != d["event_id"] or headers.get("X-Engram-Delivery-Id") != d["delivery_id"]:
            fail(what + ": the event and delivery id headers do not match the body: " + str(headers))
        if d["delivery_id"] not in seen:
            seen.add(d["delivery_id"])
            out.append(d)
    return out


def memory_events(deliveries):
    """{memory id: [ADD|UPDATE|DELETE, ...]} in delivery order."""
    per = {}
    for d in deliveries:
        if d["event_type"].startswith("memory_"):
            per.setdefault(d["event_details"]["id"], []).append(d["event_details"]["event"])
    return per


def call_ok(srv, method, path, body=None, key="default"):
    status, _, text = srv.call(method, path, body, key=key)
    if status != 200:
        fail("%s %s answered %s: %s" % (method, path, status, text))
    return json.loads(text)


def add(srv, text, user="alice", **extra):
    out = call_ok(srv, "POST", "/v1/memories/", dict({"messages": text, "user_id": user, "infer": False}, **extra))
    return out["results"][0]["id"]


def routes_and_validation(srv, receiver):
    """Auth, bad input, create/list; returns the created webhook."""
    hooks = "/api/v1/webhooks/projects/proj-1/"
    good = {"name": "all events", "url": receiver.url}
    status, _, text = srv.call("POST", hooks, good, key=ALICE_KEY)
    check("a user-bound key may not create a webhook (403)", status == 403 and "admin" in text, (status, text))
    status, _, _ = srv.call("GET", hooks, key=ALICE_KEY)
    check("nor list them (403)", status == 403, status)
    status, _, _ = srv.call("GET", hooks, key=None)
    check("no key: 401", status == 401, status)
    bad = [({"url": receiver.url}, "'name'"),
           ({"name": "x"}, "'url'"),
           ({"name": "x", "url": "ftp://127.0.0.1/x"}, "http://"),
           ({"name": "x", "url": "127.0.0.1:9000/x"}, "http://"),
           ({"name": "x", "url": "http:///nohost"}, "no host"),
           ({"name": "x", "url": "http://exa mple.com/"}, "spaces"),
           ({"name": "x", "url": receiver.url, "event_types": ["memory_add", "memory_explode"]}, "memory_explode"),
           ({"name": "x", "url": receiver.url, "event_types": "memory_add"}, "list"),
           ({"name": "x", "url": receiver.url, "event_types": ["memory_categorize"]}, "memory_categorize"),
           ({"name": "x", "url": receiver.url, "is_active": "yes"}, "is_active")]
    for body, needle in bad:
        status, _, text = srv.call("POST", hooks, body, key=ADMIN_KEY)
        check("400 for %s, naming %s" % (json.dumps(body)[:80], needle), status == 400 and needle in text, (status, text))
    status, _, text = srv.call("POST", hooks, {"name": "tls", "url": "https://127.0.0.1:1/x"}, key=ADMIN_KEY)
    if status == 200:  # built with OpenSSL: accepted; not needed further
        call_ok(srv, "DELETE", "/api/v1/webhooks/%d/" % json.loads(text)["webhook_id"], key=ADMIN_KEY)
    else:
        check("https:// refused by a build without TLS, saying so", status == 400 and "TLS" in text, (status, text))

    created = call_ok(srv, "POST", hooks, good, key=ADMIN_KEY)
    check("create answers the secret: 64 hex digits", len(created.get("secret", "")) == 64 and
          all(c in "0123456789abcdef" for c in created["secret"]), created)
    check("create answers Mem0's fields", isinstance(created["webhook_id"], int) and created["name"] == "all events" and
          created["url"] == receiver.url and created["project"] == "proj-1" and created["is_active"] is True and
          created["event_types"] == ALL_TYPES and created["created_at"], created)
    listed = call_ok(srv, "GET", hooks, key=ADMIN_KEY)
    check("the listing shows it, without the secret", [w["webhook_id"] for w in listed] == [created["webhook_id"]] and
          "secret" not in listed[0], listed)
    check("another project's listing does not", call_ok(srv, "GET", "/api/v1/webhooks/projects/other/", key=ADMIN_KEY) == [])
    return created


def writes_in_order(srv, receiver, secret):
    """Adds, updates, deletes by every route: each told once, in order per memory, signed."""
    m1, m2, m3 = add(srv, "Alice likes green tea", metadata={"topic": "drinks"}), add(srv, "Alice plays chess"), \
        add(srv, "Alice lives in Lyon")
    b1 = add(srv, "Bob keeps bees", user="bob")
    call_ok(srv, "PUT", "/v1/memories/%s/" % m1, {"text": "Alice likes oolong tea"})
    call_ok(srv, "PUT", "/memories/%s" % m1, {"metadata": {"cups": 2}})
    call_ok(srv, "PUT", "/v1/batch/", {"memories": [{"memory_id": m2, "text": "Alice plays go"},
                                                     {"memory_id": m3, "text": "Alice lives in Lille"}]})
    call_ok(srv, "DELETE", "/v1/memories/%s/" % m1)
    call_ok(srv, "DELETE", "/v1/batch/", {"memories": [{"memory_id": m2}]})
    call_ok(srv, "DELETE", "/v1/memories/?user_id=bob")
    rpc = call_ok(srv, "POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "add_memory", "arguments": {"text": "Alice rides a tandem", "user_id": "alice", "infer": False}}})
    check("an add over MCP", not rpc["result"].get("isError"), rpc)
    expected = {m1: ["ADD", "UPDATE", "UPDATE", "DELETE"], m2: ["ADD", "UPDATE", "DELETE"], m3: ["ADD", "UPDATE"],
                b1: ["ADD", "DELETE"]}
    total = sum(len(v) for v in expected.values())
    wait_for("the MCP add's delivery", lambda: len(receiver.deliveries()) >= total + 1)
    got = verified(receiver, secret, "writes")
    mcp = [d["event_details"] for d in got if d["event_details"]["data"]["memory"] == "Alice rides a tandem"]
    check("the add over MCP is told too", len(mcp) == 1 and mcp[0]["event"] == "ADD", mcp)
    expected[mcp[0]["id"]] = ["ADD"]
    check("every change told once, in order per memory", memory_events(got) == expected, memory_events(got))
    check("the receiver's path and query were kept", receiver.paths == {"/hooks/engram?src=test"}, receiver.paths)
    by_type = {}
    for d in got:
        by_type.setdefault(d["event_type"], []).append(d)
    first = by_type["memory_add"][0]
    check("memory_add carries Mem0's event_details, the scope and metadata",
          first["event_details"] == {"id": m1, "event": "ADD", "data": {"memory": "Alice likes green tea"},
                                     "user_id": "alice", "metadata": {"topic": "drinks"}} and
          first["project"] == "proj-1" and first["created_at"], first)
    update = by_type["memory_update"][0]["event_details"]
    check("memory_update carries the text before and after", update["data"]["memory"] == "Alice likes oolong tea" and
          update["previous_memory"] == "Alice likes green tea", update)
    meta_only = by_type["memory_update"][1]["event_details"]
    check("a metadata-only update tells the merged metadata", meta_only["metadata"] == {"topic": "drinks", "cups": 2} and
          "previous_memory" not in meta_only, meta_only)
    deleted = [d["event_details"] for d in by_type["memory_delete"] if d["event_details"]["id"] == m1][0]
    check("memory_delete carries the deleted text", deleted["data"]["memory"] == "Alice likes oolong tea", deleted)
    check("each event has its own id", len({d["event_id"] for d in got}) == len(got))
    return m3


def async_completion(srv, receiver, secret):
    before = len(verified(receiver, secret, "async"))
    out = call_ok(srv, "POST", "/v3/memories/add/", {"messages": "Alice collects stamps", "user_id": "alice",
                                                     "infer": False, "async_mode": True, "metadata": {"k": "v"}})
    check("an async add is queued", out.get("status") == "PENDING" and out.get("event_id"), out)
    wait_for("the async add's deliveries", lambda: len(receiver.deliveries()) >= before + 2)
    got = verified(receiver, secret, "async")[before:]
    done = [d for d in got if d["event_type"] == "async_add_completed"]
    check("async_add_completed names the event, SUCCEEDED, with its results",
          len(done) == 1 and done[0]["event_details"]["id"] == out["event_id"] and
          done[0]["event_details"]["status"] == "SUCCEEDED" and
          done[0]["event_details"]["results"][0]["memory"] == "Alice collects stamps", done)
    added = [d for d in got if d["event_type"] == "memory_add"]
    check("and the memory it added is told as memory_add", len(added) == 1 and
          added[0]["event_details"]["id"] == done[0]["event_details"]["results"][0]["id"], added)
    event = call_ok(srv, "GET", "/v1/event/%s/" % out["event_id"])
    check("the event is final when its completion is told", event["status"] == "SUCCEEDED", event)


def purge_told(srv, receiver, secret):
    """A purge of an entity is told as entity_purged: the scope and the count, never a text."""
    before = len(verified(receiver, secret, "purge"))
    add(srv, "Zed hides the key under the blue stone", user="zed")
    add(srv, "Zed walks at dawn", user="zed")
    wait_for("the adds' deliveries", lambda: len(verified(receiver, secret, "purge")) >= before + 2)
    out = call_ok(srv, "DELETE", "/v1/entities/user/zed/")
    check("the purge erased zed's two memories", out["deleted"] == 2, out)
    wait_for("entity_purged", lambda: any(d["event_type"] == "entity_purged"
                                          for d in verified(receiver, secret, "purge")[before:]))
    got = [d for d in verified(receiver, secret, "purge")[before:] if d["event_type"] == "entity_purged"]
    check("one entity_purged, with the scope and the count", len(got) == 1 and
          got[0]["event_details"] == {"user_id": "zed", "deleted": 2}, got)
    bodies = [body for _, body in receiver.deliveries()]
    check("and no delivery after it holds a purged text",
          not any(b"blue stone" in b and b"entity_purged" in b for b in bodies), got)


def receiver_down(srv, receiver, secret, m3):
    """While the receiver is down writes answer at once; once it is back every event arrives, in order."""
    before = len(verified(receiver, secret, "down"))
    receiver.stop()
    ids, slowest = [], 0.0
    for i in range(8):
        t = time.time()
        ids.append(add(srv, "Alice note %d while the receiver is down" % i))
        call_ok(srv, "PUT", "/v1/memories/%s/" % ids[-1], {"text": "Alice note %d, edited" % i})
        call_ok(srv, "PUT", "/v1/memories/%s/" % m3, {"metadata": {"edit": i}})
        slowest = max(slowest, time.time() - t)
    check("writes were answered at once while the receiver is down (slowest %.3f s for 3 writes)" % slowest,
          slowest < 1.5, slowest)
    hooks = call_ok(srv, "GET", "/api/v1/webhooks/projects/proj-1/")
    check("the listing shows pending deliveries and the last error",
          hooks[0]["pending_deliveries"] > 0 and hooks[0]["last_error"], hooks)
    time.sleep(1.0)
    check("nothing delivered while down", len(verified(receiver, secret, "down")) == before)
    # back, answering 500 to its first two POSTs: those are retried too
    base = receiver.posts
    receiver.status = lambda n: 500 if n <= base + 2 else 200
    receiver.start()
    wait_for("the backlog", lambda: len(verified(receiver, secret, "back")) >= before + 8 * 2 + 8, timeout=60)
    got = verified(receiver, secret, "back")[before:]
    per = memory_events(got)
    check("every event arrived once the receiver was back, in order per memory",
          all(per.get(i) == ["ADD", "UPDATE"] for i in ids) and per.get(m3) == ["UPDATE"] * 8, per)
    edits = [d["event_details"]["metadata"]["edit"] for d in got if d["event_details"]["id"] == m3]
    check("the updates of one memory in the order they were made", edits == list(range(8)), edits)
    check("the 500s were retried", receiver.posts >= base + 2 + 24, receiver.posts - base)
    hooks = call_ok(srv, "GET", "/api/v1/webhooks/projects/proj-1/")
    check("nothing pending any more, no error", hooks[0]["pending_deliveries"] == 0 and hooks[0]["last_error"] is None, hooks)


def independent_queues(srv, receiver, secret):
    """A webhook whose receiver is down does not hold back another's; deleting it drops its queue."""
    dead = Receiver()  # never started: its port is closed
    other = call_ok(srv, "POST", "/api/v1/webhooks/projects/proj-1/",
                    {"name": "deletes only", "url": dead.url, "event_types": ["memory_delete", "memory_delete"]})
    check("event_types kept once each", other["event_types"] == ["memory_delete"], other)
    before = len(verified(receiver, secret, "independent"))
    ids = [add(srv, "Alice temp %d" % i) for i in range(3)]
    for i in ids:
        call_ok(srv, "DELETE", "/v1/memories/%s/" % i)
    wait_for("the first receiver's deliveries", lambda: len(verified(receiver, secret, "independent")) >= before + 6,
             timeout=10)
    listed = {w["webhook_id"]: w for w in call_ok(srv, "GET", "/api/v1/webhooks/projects/proj-1/")}
    check("the dead receiver's webhook holds its three deletes", listed[other["webhook_id"]]["pending_deliveries"] == 3,
          listed)
    metrics = call_ok(srv, "GET", "/metrics")["webhooks"]
    check("/metrics counts pending and failed deliveries", metrics["pending"] == 3 and metrics["failed_attempts"] > 0 and
          metrics["webhooks"] == 2, metrics)
    out = call_ok(srv, "DELETE", "/api/v1/webhooks/%d/" % other["webhook_id"])
    check("delete answers Mem0's message", out == {"message": "Webhook deleted successfully"}, out)
    status, _, _ = srv.call("DELETE", "/api/v1/webhooks/%d/" % other["webhook_id"])
    check("deleting it again: 404", status == 404, status)
    check("its pending deliveries are dropped", call_ok(srv, "GET", "/metrics")["webhooks"]["pending"] == 0)
    status, _, prom = srv.call("GET", "/metrics?format=prometheus")
    check("Prometheus exposes the webhook counters", status == 200 and "engram_webhook_deliveries_pending 0" in prom and
          "engram_webhook_deliveries_total" in prom, prom[-600:])


def update_route(srv, receiver, created):
    path = "/api/v1/webhooks/%d/" % created["webhook_id"]
    status, _, text = srv.call("PUT", path, {"name": "x"}, key=ALICE_KEY)
    check("a user-bound key may not update a webhook (403)", status == 403, (status, text))
    for body, needle in [({}, "nothing to change"), ({"event_types": ["memory_nap"]}, "memory_nap"),
                         ({"url": "gopher://x"}, "http://"), ({"name": ""}, "'name'")]:
        status, _, text = srv.call("PUT", path, body)
        check("update: 400 naming %s" % needle, status == 400 and needle in text, (status, text))
    for bad_id in ["999", "abc"]:
        status, _, _ = srv.call("PUT", "/api/v1/webhooks/%s/" % bad_id, {"name": "x"})
        check("update of webhook %s: 404" % bad_id, status == 404, status)
    out = call_ok(srv, "PUT", path, {"name": "renamed", "event_types": ["memory_add", "memory_update", "memory_delete",
                                                                         "async_add_completed"]})
    check("update answers the message and the webhook", out["message"] == "Webhook updated successfully" and
          out["name"] == "renamed" and "secret" not in out, out)
    out = call_ok(srv, "PUT", path, {"rotate_secret": True})
    check("rotate_secret answers a new secret", len(out["secret"]) == 64 and out["secret"] != created["secret"], out)
    before = len(receiver.deliveries())
    mid = add(srv, "Alice learns the oud")
    wait_for("a delivery after the rotation", lambda: len(receiver.deliveries()) > before, timeout=10)
    newest = verified(receiver, out["secret"], "rotated", start=before)
    check("deliveries are signed with the new secret", newest[-1]["event_details"]["id"] == mid)
    return out["secret"]


def restart(binary, data, extra, receiver, secret):
    """Killed with undelivered events: delivered after the restart, a truncated journal line skipped."""
    srv = Server(binary, data, extra, key=ADMIN_KEY)
    try:
        receiver.stop()
        before = len(verified(receiver, secret, "restart"))
        ids = [add(srv, "Alice fact %d before the crash" % i) for i in range(5)]
        call_ok(srv, "PUT", "/v1/memories/%s/" % ids[0], {"text": "Alice fact 0, edited before the crash"})
    finally:
        srv.proc.kill()
        srv.proc.wait()
    journal = os.path.join(data, "webhooks.jsonl")
    with open(journal, "a") as f:
        f.write('{"delivery": {"id": "cut-short", "body": "{\\"event')  # a crash in the middle of a line
    srv = Server(binary, data, extra, key=ADMIN_KEY)
    try:
        listed = call_ok(srv, "GET", "/api/v1/webhooks/projects/proj-1/")
        check("the webhook survived the restart", len(listed) == 1 and listed[0]["pending_deliveries"] == 6, listed)
        receiver.start()
        wait_for("the deliveries left by the crash", lambda: len(verified(receiver, secret, "after")) >= before + 6)
        per = memory_events(verified(receiver, secret, "after")[before:])
        check("each arrived after the restart, in order", per == dict({i: ["ADD"] for i in ids},
                                                                      **{ids[0]: ["ADD", "UPDATE"]}), per)
    finally:
        err = srv.stop()
    check("the cut line was skipped and said so", "1 unreadable lines skipped" in err, err)
    with open(journal) as f:
        lines = f.read().splitlines()
    srv = Server(binary, data, extra, key=ADMIN_KEY)
    srv.stop()
    with open(journal) as f:
        compacted = f.read().splitlines()
    check("the journal is compacted on start: the next id and the webhook (was %d lines)" % len(lines),
          len(compacted) == 2 and "delivery" not in "".join(compacted), compacted)
    check("the journal is not readable by others", os.stat(journal).st_mode & 0o077 == 0, oct(os.stat(journal).st_mode))


def full_queue(binary, work):
    """A receiver gone for good: past --webhook-max-pending the oldest deliveries are dropped and counted; a
    restart with a smaller cap trims the queue it loads; the newest are delivered once the receiver is back."""
    data = os.path.join(work, "full")
    receiver = Receiver()  # not started: its port refuses
    extra = ["--log-format", "off", "--webhook-retry-ms", "20", "--webhook-max-pending", "3"]
    srv = Server(binary, data, extra, key=None)
    try:
        hook = call_ok(srv, "POST", "/api/v1/webhooks/projects/p/", {"name": "adds", "url": receiver.url,
                                                                     "event_types": ["memory_add"]}, key=None)
        ids = [add(srv, "Fact number %d of five" % i) for i in range(5)]
        listed = call_ok(srv, "GET", "/api/v1/webhooks/projects/p/", key=None)
        check("the queue holds at most 3", listed[0]["pending_deliveries"] == 3, listed)
        metrics = call_ok(srv, "GET", "/metrics", key=None)["webhooks"]
        check("the 2 oldest were dropped and counted", metrics["dropped"] == 2 and metrics["pending"] == 3, metrics)
        status, _, prom = srv.call("GET", "/metrics?format=prometheus", key=None)
        check("Prometheus counts them", status == 200 and "engram_webhook_deliveries_dropped_total 2" in prom, prom[-800:])
    finally:
        err = srv.stop()
    check("stderr says the queue overflowed, once", err.count("dropping the oldest") == 1, err)
    extra[-1] = "2"
    srv = Server(binary, data, extra, key=None)
    try:
        listed = call_ok(srv, "GET", "/api/v1/webhooks/projects/p/", key=None)
        check("a restart with a smaller cap trims what it loads", listed[0]["pending_deliveries"] == 2, listed)
        receiver.start()
        wait_for("the newest deliveries", lambda: len(receiver.deliveries()) >= 2)
        time.sleep(0.3)
        got = [d["event_details"]["id"] for d in verified(receiver, hook["secret"], "full")]
        check("exactly the 2 newest arrive, in order", got == ids[3:], (got, ids))
    finally:
        srv.stop()
        receiver.stop()


def open_server(binary, work):
    srv = Server(binary, os.path.join(work, "open"), ["--log-format", "off"])
    try:
        out = call_ok(srv, "POST", "/api/v1/webhooks/projects/engram/", {"name": "n", "url": "http://127.0.0.1:9/"},
                      key=None)
        check("without --keys anyone may manage webhooks", out["webhook_id"] == 1 and out["project"] == "engram", out)
        call_ok(srv, "DELETE", "/api/v1/webhooks/1/", key=None)
    finally:
        srv.stop()


def main():
    if len(sys.argv) != 2:
        fail("usage: test_webhooks.py ENGRAM_SERVER_BIN")
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="engram-webhooks-test-")
    try:
        keys = os.path.join(work, "keys")
        with open(keys, "w") as f:
            f.write("%s admin\n%s user alice\n" % (ADMIN_KEY, ALICE_KEY))
        data = os.path.join(work, "data")
        extra = ["--keys", keys, "--log-format", "off", "--webhook-retry-ms", "20"]
        receiver = Receiver().start()
        srv = Server(binary, data, extra, key=ADMIN_KEY)
        try:
            created = routes_and_validation(srv, receiver)
            m3 = writes_in_order(srv, receiver, created["secret"])
            async_completion(srv, receiver, created["secret"])
            purge_told(srv, receiver, created["secret"])
            receiver_down(srv, receiver, created["secret"], m3)
            independent_queues(srv, receiver, created["secret"])
            secret = update_route(srv, receiver, created)
        finally:
            srv.stop()
        receiver.received.clear()
        restart(binary, data, extra, receiver, secret)
        open_server(binary, work)
        full_queue(binary, work)
        receiver.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
