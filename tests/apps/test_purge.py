#!/usr/bin/env python3
"""Erasure on a live engram-server: the entity-delete routes (DELETE /v1/entities/{type}/{id}/ and
DELETE /v2/entities/{type}/{name}/) and `engram purge` (stdlib only).

usage: test_purge.py ENGRAM_SERVER_BIN ENGRAM_CLI_BIN

A unique string is planted in one user's memories (an add, an update, an asynchronous add with its event, an
agent's memory), in a pending webhook delivery (the receiver is down), and in two exports (one of the user's,
one over two users). The purge through the route leaves it in no file of the data directory, before and after
a restart, while the other user's memories, history, deliveries and export stay; a key bound to one user
cannot purge another (403), an unknown entity type is a 400; plain delete keeps history. `engram purge` does
the same with the server stopped, and needs a scope (exit 2). Exits 1 on the first failure.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from live_server import Server, check, fail

ADMIN = "admin-key-0123456789abcdef"
ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdef-x"
SECRET = "zq-planted-4715-erasure"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(srv, method, path, body=None, key=ADMIN, want=200):
    status, _, text = srv.call(method, path, body, key=key)
    if status != want:
        fail("%s %s: expected %d, got %d: %s" % (method, path, want, status, text))
    return json.loads(text) if text else None


def add(srv, text, user, key=ADMIN, **scope):
    out = call(srv, "POST", "/v1/memories/", dict(messages=[{"role": "user", "content": text}], user_id=user,
                                                  infer=False, async_mode=False, **scope), key=key)
    results = out["results"] if isinstance(out, dict) else out
    return results[0]["id"]


def memories_of(srv, user):
    out = call(srv, "GET", "/memories?user_id=" + user)
    return out["results"] if isinstance(out, dict) else out


def files_holding(data, needle):
    found = []
    for root, _, files in os.walk(data):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                if needle.encode() in f.read():
                    found.append(os.path.relpath(path, data))
    return sorted(found)


def plant(srv, secret, user):
    """The secret in `user`'s memories, history, an async add's event, a pending delivery and an export."""
    first = add(srv, "my passport is " + secret + "-old", user)
    call(srv, "PUT", "/v1/memories/%s/" % first, {"text": "my passport is " + secret})
    add(srv, "the coach knows " + secret, user, agent_id="coach")
    queued = call(srv, "POST", "/v3/memories/add/", {"messages": [{"role": "user", "content": "async " + secret}],
                                                      "user_id": user, "infer": False, "async_mode": True})
    for _ in range(200):
        if call(srv, "GET", "/v1/event/%s/" % queued["event_id"])["status"] == "SUCCEEDED":
            break
        time.sleep(0.05)
    else:
        fail("the asynchronous add did not succeed")
    return first, queued["event_id"]


def main():
    if len(sys.argv) != 3:
        fail("usage: test_purge.py ENGRAM_SERVER_BIN ENGRAM_CLI_BIN")
    binary, cli = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="engram-purge-test-")
    data = os.path.join(work, "data")
    keys = os.path.join(work, "keys")
    with open(keys, "w") as f:
        f.write("%s admin\n%s user alice\n%s user bob\n" % (ADMIN, ALICE, BOB))
    extra = ["--keys", keys, "--log-format", "off", "--webhook-retry-ms", "60000"]
    try:
        srv = Server(binary, data, extra, key=ADMIN)
        try:
            hook = call(srv, "POST", "/api/v1/webhooks/projects/p1/",
                        {"name": "down", "url": "http://127.0.0.1:%d/hook" % free_port()})
            check("a webhook whose receiver is down", "webhook_id" in hook, hook)
            first, event_id = plant(srv, SECRET, "alice")
            bob_tea = add(srv, "bob likes tea", "bob")
            call(srv, "PUT", "/v1/memories/%s/" % bob_tea, {"text": "bob likes green tea"})
            mine = call(srv, "POST", "/v1/exports/", {"filters": {"user_id": "alice"}}, key=ALICE, want=201)
            both = call(srv, "POST", "/v1/exports/", {"filters": {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}},
                        want=201)
            held = files_holding(data, SECRET)
            check("the planted text is in the store, events, outbox and exports",
                  any(p.startswith("log.") or p == "snapshot" for p in held) and "events.jsonl" in held
                  and "webhooks.jsonl" in held and any(p.startswith("exports/") for p in held), held)

            # ---- key confinement and bad input -----------------------------------------------------------
            call(srv, "DELETE", "/v1/entities/user/alice/", key=BOB, want=403)
            call(srv, "DELETE", "/v2/entities/user/bob/", key=ALICE, want=403)
            out = call(srv, "DELETE", "/v2/entities/agent/coach/", key=BOB)  # bob's coach memories: none
            check("a bound key purges an agent within its own user only", out["deleted"] == 0, out)
            check("alice's coach memory stays", len(memories_of(srv, "alice")) == 3)
            call(srv, "DELETE", "/v1/entities/team/x/", want=400)
            out = call(srv, "DELETE", "/v1/entities/app/no-such-app/")  # an app holding nothing: zeros
            check("an app's purge holding nothing answers zeros", out["deleted"] == 0, out)
            call(srv, "DELETE", "/v1/entities/user/alice/", key=None, want=401)

            # ---- the purge -------------------------------------------------------------------------------
            out = call(srv, "DELETE", "/v2/entities/user/alice/", key=ALICE)
            check("the purge answers what it removed", out["deleted"] == 3 and out["events"] == 1
                  and out["deliveries"] >= 3 and out["exports"] == 2, out)
            check("alice has no memory left", memories_of(srv, "alice") == [])
            check("the history of a purged memory is gone", call(srv, "GET", "/v1/memories/%s/history/" % first) == [])
            call(srv, "GET", "/v1/event/%s/" % event_id, want=404)
            call(srv, "POST", "/v1/exports/get/", {"memory_export_id": mine["id"]}, want=404)
            doc = call(srv, "POST", "/v1/exports/get/", {"memory_export_id": both["id"]})
            check("the two-user export keeps bob's memory only",
                  [m["memory"] for m in doc["memories"]] == ["bob likes green tea"] and doc["count"] == 1, doc)
            check("bob's memory and history stay", [m["memory"] for m in memories_of(srv, "bob")] == ["bob likes green tea"]
                  and len(call(srv, "GET", "/v1/memories/%s/history/" % bob_tea)) == 2)
            hooks = call(srv, "GET", "/api/v1/webhooks/projects/p1/")
            check("bob's deliveries are still pending", hooks[0]["pending_deliveries"] >= 2, hooks)
            check("no file of the data directory holds the text", files_holding(data, SECRET) == [],
                  files_holding(data, SECRET))
            out = call(srv, "DELETE", "/v1/entities/user/alice/")
            check("purging again is harmless", out["deleted"] == 0, out)

            # plain delete keeps history; plant for the CLI's turn
            call(srv, "DELETE", "/v1/memories/%s/" % bob_tea)
            check("a plain delete keeps the history", len(call(srv, "GET", "/v1/memories/%s/history/" % bob_tea)) == 3)
            plant(srv, SECRET + "-cli", "carol")
        finally:
            srv.stop()

        # ---- engram purge, with the server stopped -------------------------------------------------------
        r = subprocess.run([cli, "--data", data, "purge"], capture_output=True, text=True)
        check("engram purge without a scope is a usage error (exit 2)", r.returncode == 2, r.stderr)
        r = subprocess.run([cli, "--data", data, "--output", "json", "purge", "--user-id", "carol", "--dry-run"],
                           capture_output=True, text=True)
        check("--dry-run counts and removes nothing", r.returncode == 0 and json.loads(r.stdout)["would_purge"] == 3
              and files_holding(data, SECRET + "-cli") != [], r.stdout + r.stderr)
        r = subprocess.run([cli, "--data", data, "--output", "json", "purge", "--user-id", "carol"],
                           capture_output=True, text=True)
        check("engram purge removes carol's memories", r.returncode == 0 and json.loads(r.stdout)["deleted"] == 3,
              r.stdout + r.stderr)
        check("no file holds carol's text after engram purge", files_holding(data, SECRET + "-cli") == [],
              files_holding(data, SECRET + "-cli"))
        with open(os.path.join(data, "webhooks.jsonl")) as f:
            told = [json.loads(json.loads(line)["delivery"]["body"]) for line in f
                    if line.startswith('{"delivery"') and "entity_purged" in line]
        check("engram purge queued entity_purged for the webhook, scope and count only",
              [t["event_details"] for t in told if t["event_details"].get("user_id") == "carol"] ==
              [{"user_id": "carol", "deleted": 3}], told)
        srv = Server(binary, data, extra, key=ADMIN)
        try:
            check("the server opens after engram purge; carol is gone", memories_of(srv, "carol") == [])
            check("after the restart no file holds either text", files_holding(data, SECRET) == [],
                  files_holding(data, SECRET))
            check("and the webhook is still registered", len(call(srv, "GET", "/api/v1/webhooks/projects/p1/")) == 1)
        finally:
            srv.stop()
        print("ok")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
