#!/usr/bin/env python3
"""engram-server's projects (org_id/project_id: walls no read or write crosses) on every surface (stdlib only).

usage: test_projects.py ENGRAM_SERVER_BIN

Keys: a server-wide admin, the admins of acme/prod and acme/staging, alice bound to acme/prod, and alice bound to
no project (the default project, engram/engram). Checks: ping answers each key's project; naming another project
with a bound key is 403, naming only org_id 400, a server-wide admin names any; the same user id in two
projects never sees the other's memories through add, search (plain, v2 filters, an OR over users), get_all (v1
and v2, a project's every scope), get/update/delete/history by id (404), batch update/delete (404, nothing
changed), delete_all, events (async adds), exports (create, fetch, summary), /v1/entities/, MCP; app_id narrows
within a project; a project's webhook is told only of its project's memory events, a server-wide one of all, and
a project's admin manages only its own project's webhooks; 16 concurrent clients writing and searching in two
projects with random filters never see the other project's memories; after a restart the events, exports and
webhooks keep their projects. Exits 1 on the first failure.
"""
import http.server
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.parse

from live_server import Server, check, fail

ADMIN = "admin-key-0123456789abcdef"
PROD = "prod-admin-0123456789abcdef"
STAGING = "staging-admin-0123456789abcdef"
ALICE_PROD = "alice-prod-0123456789abcdef"
ALICE = "alice-default-0123456789abcdef"
KEYS = """# the keys of test_projects.py
%s admin
%s admin org=acme project=prod
%s admin org=acme project=staging
%s user alice org=acme project=prod
%s user alice
""" % (ADMIN, PROD, STAGING, ALICE_PROD, ALICE)
PROD_Q = {"org_id": "acme", "project_id": "prod"}
STAGING_Q = {"org_id": "acme", "project_id": "staging"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver on loopback keeping every parsed body it was sent."""

    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.lock = threading.Lock()
        self.bodies = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def memory_texts(self):
        with self.lock:
            return {b["event_details"]["data"]["memory"] for b in self.bodies if b["event_type"].startswith("memory_")}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(what, cond, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def call(srv, method, path, body=None, key=None, want=200):
    status, _, text = srv.call(method, path, body, key=key)
    if status != want:
        fail("%s %s as %s answered %s (wanted %s): %s" % (method, path, key[:8] if key else None, status, want, text))
    return json.loads(text) if text else None


def q(params):
    return urllib.parse.urlencode(params)


def texts(answer):
    items = answer["results"] if isinstance(answer, dict) else answer
    return sorted(m["memory"] for m in items)


def add(srv, key, text, **scope):
    out = call(srv, "POST", "/v1/memories/", dict({"messages": text, "infer": False}, **scope), key=key)
    return out["results"][0]["id"]


def search(srv, key, query, want=200, **body):
    return call(srv, "POST", "/v2/memories/search/", dict({"query": query, "top_k": 100}, **body), key=key, want=want)


def listed(srv, key, **params):
    return texts(call(srv, "GET", "/memories?" + q(params), key=key))


def main():
    if len(sys.argv) != 2:
        fail("usage: test_projects.py ENGRAM_SERVER_BIN")
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="engram-projects-")
    srv = None
    receivers = []
    started = time.time()
    try:
        keys = os.path.join(work, "keys")
        with open(keys, "w") as f:
            f.write(KEYS)
        srv = Server(binary, os.path.join(work, "data"), ["--keys", keys, "--log-format", "off", "--threads", "16",
                                                          "--webhook-retry-ms", "50"])

        # ---- ping: each key's project -------------------------------------------------------------------------
        for key, org, project in [(ADMIN, "engram", "engram"), (PROD, "acme", "prod"), (STAGING, "acme", "staging"),
                                  (ALICE_PROD, "acme", "prod"), (ALICE, "engram", "engram")]:
            p = call(srv, "GET", "/v1/ping/", key=key)
            check("ping answers %s/%s for %s" % (org, project, p["user_email"]),
                  p["org_id"] == org and p["project_id"] == project, p)

        # ---- webhooks: a project's admin manages its own; made before the writes they are told of ---------------
        prod_rx, all_rx = Receiver(), Receiver()
        receivers += [prod_rx, all_rx]
        status, _, text = srv.call("POST", "/api/v1/webhooks/projects/staging/", {"name": "x", "url": prod_rx.url},
                                   key=PROD)
        check("a project's admin may not create a webhook under another project id (403)", status == 403, (status, text))
        status, _, _ = srv.call("GET", "/api/v1/webhooks/projects/staging/", key=PROD)
        check("nor list another project's webhooks (403)", status == 403, status)
        status, _, _ = srv.call("POST", "/api/v1/webhooks/projects/prod/", {"name": "x", "url": prod_rx.url},
                                key=ALICE_PROD)
        check("a user key may not create one (403)", status == 403, status)
        prod_hook = call(srv, "POST", "/api/v1/webhooks/projects/prod/", {"name": "prod", "url": prod_rx.url}, key=PROD)
        check("a project's admin creates a webhook under its project id, bound to its project",
              prod_hook["project"] == "prod" and prod_hook["org_id"] == "acme" and prod_hook["project_id"] == "prod",
              prod_hook)
        all_hook = call(srv, "POST", "/api/v1/webhooks/projects/prod/", {"name": "all", "url": all_rx.url}, key=ADMIN)
        check("a server-wide admin's webhook is bound to no project", "org_id" not in all_hook, all_hook)
        staging_hook = call(srv, "POST", "/api/v1/webhooks/projects/staging/",
                            {"name": "staging", "url": "http://127.0.0.1:9/nobody", "is_active": False}, key=STAGING)
        check("the prod admin lists its project's webhooks only",
              [w["name"] for w in call(srv, "GET", "/api/v1/webhooks/projects/prod/", key=PROD)] == ["prod"])
        check("the server-wide admin lists every webhook under that project id",
              [w["name"] for w in call(srv, "GET", "/api/v1/webhooks/projects/prod/", key=ADMIN)] == ["prod", "all"])
        for method, body in [("PUT", {"name": "mine"}), ("DELETE", None)]:
            for hook in (prod_hook, all_hook):
                status, _, _ = srv.call(method, "/api/v1/webhooks/%d/" % hook["webhook_id"], body, key=STAGING)
                check("%s of another project's (or a server-wide) webhook by a project's admin: 404" % method,
                      status == 404, status)
        call(srv, "PUT", "/api/v1/webhooks/%d/" % staging_hook["webhook_id"], {"name": "staging 2"}, key=STAGING)
        call(srv, "PUT", "/api/v1/webhooks/%d/" % staging_hook["webhook_id"], {"name": "staging 3"}, key=ADMIN)
        call(srv, "DELETE", "/api/v1/webhooks/%d/" % staging_hook["webhook_id"], key=STAGING)

        # ---- naming projects -----------------------------------------------------------------------------------
        for key, body, want, what in [
                (ALICE_PROD, dict(STAGING_Q), 403, "alice@acme/prod naming acme/staging"),
                (PROD, dict(STAGING_Q), 403, "the prod admin naming acme/staging"),
                (ALICE, dict(PROD_Q), 403, "alice (default project) naming acme/prod"),
                (PROD, {"org_id": "acme"}, 400, "org_id without project_id"),
                (ADMIN, {"project_id": "prod"}, 400, "project_id without org_id"),
                (ALICE_PROD, dict(PROD_Q), 200, "alice@acme/prod naming its own project")]:
            status, _, text = srv.call("POST", "/v1/memories/",
                                       dict(body, messages="probe", infer=False, user_id="alice"), key=key)
            check("%s: %d" % (what, want), status == want, (status, text))
            if status == 200:
                call(srv, "DELETE", "/v1/memories/%s/" % json.loads(text)["results"][0]["id"], key=key)
        status, _, _ = srv.call("POST", "/v2/memories/search/",
                                {"query": "x", "filters": {"AND": [{"user_id": "alice"}, {"org_id": "acme"},
                                                                   {"project_id": "staging"}]}}, key=PROD)
        check("another project named inside v2 filters: 403", status == 403, status)
        status, _, _ = srv.call("GET", "/memories?" + q(dict(STAGING_Q, user_id="alice")), key=ALICE_PROD)
        check("another project named in a listing's query: 403", status == 403, status)

        # ---- the same user id in three projects ----------------------------------------------------------------
        prod_tea = add(srv, ALICE_PROD, "Alice in prod drinks green tea", app_id="chat")
        prod_chess = add(srv, ALICE_PROD, "Alice in prod plays chess", app_id="games")
        prod_bob = add(srv, PROD, "Bob in prod keeps bees", user_id="bob")
        staging_tea = add(srv, STAGING, "Alice in staging drinks black tea", user_id="alice", app_id="chat")
        staging_bob = add(srv, STAGING, "Bob in staging rides horses", user_id="bob")
        default_tea = add(srv, ALICE, "Alice by default drinks mint tea")
        admin_prod = add(srv, ADMIN, "Carol in prod sings", user_id="carol", **PROD_Q)
        prod_all = ["Alice in prod drinks green tea", "Alice in prod plays chess"]
        check("the server-wide admin wrote into acme/prod: the prod admin reads it",
              listed(srv, PROD, user_id="carol") == ["Carol in prod sings"])
        check("... and it is not in the default project", listed(srv, ADMIN, user_id="carol") == [])

        check("alice@prod searches alice's prod memories only",
              texts(search(srv, ALICE_PROD, "what does alice drink")) == prod_all)
        check("alice (default) searches hers only", texts(search(srv, ALICE, "tea")) == ["Alice by default drinks mint tea"])
        check("the staging admin searching alice sees staging only",
              texts(search(srv, STAGING, "tea", user_id="alice")) == ["Alice in staging drinks black tea"])
        check("the prod admin searching alice sees prod only", texts(search(srv, PROD, "tea", user_id="alice")) == prod_all)
        either = {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}
        check("v2 filters, an OR over users, in staging: staging's only",
              texts(search(srv, STAGING, "tea", filters=either)) ==
              ["Alice in staging drinks black tea", "Bob in staging rides horses"])
        check("v2 filters, an OR over users, in prod: prod's only",
              texts(search(srv, PROD, "tea", filters=either)) == prod_all + ["Bob in prod keeps bees"])
        check("the server-wide admin naming acme/staging in the filters reads staging",
              texts(search(srv, ADMIN, "tea", filters={"AND": [either, {"org_id": "acme"}, {"project_id": "staging"}]}))
              == ["Alice in staging drinks black tea", "Bob in staging rides horses"])
        check("the server-wide admin naming no project reads the default project",
              texts(search(srv, ADMIN, "tea", filters=either)) == ["Alice by default drinks mint tea"])

        check("get_all of alice per key", listed(srv, ALICE_PROD) == prod_all and
              listed(srv, ALICE) == ["Alice by default drinks mint tea"] and
              listed(srv, STAGING, user_id="alice") == ["Alice in staging drinks black tea"] and
              listed(srv, ADMIN, user_id="alice", **STAGING_Q) == ["Alice in staging drinks black tea"])
        check("the prod admin's listing of every scope: prod's only",
              listed(srv, PROD) == sorted(prod_all + ["Bob in prod keeps bees", "Carol in prod sings"]))
        page = call(srv, "POST", "/v2/memories/", {"filters": either}, key=STAGING)
        check("v2 get_all with filters in staging", texts(page) == ["Alice in staging drinks black tea",
                                                                   "Bob in staging rides horses"], page)
        check("the server-wide admin lists every project", len(listed(srv, ADMIN)) == 7)

        # ---- app_id within a project ---------------------------------------------------------------------------
        check("search with app_id: that app's memories of the project",
              texts(search(srv, ALICE_PROD, "anything", app_id="chat")) == ["Alice in prod drinks green tea"])
        check("v2 filters with app_id", texts(search(srv, PROD, "x", filters={"AND": [{"user_id": "alice"},
                                                                                    {"app_id": "games"}]})) ==
              ["Alice in prod plays chess"])
        check("get_all with app_id in staging", listed(srv, STAGING, app_id="chat") == ["Alice in staging drinks black tea"])
        one = call(srv, "GET", "/v1/memories/%s/" % prod_tea, key=ALICE_PROD)
        check("a memory answers its project and app", one.get("org_id") == "acme" and one.get("project_id") == "prod"
              and one.get("app_id") == "chat", one)

        # ---- by id across projects: 404 -----------------------------------------------------------------------
        for key, mid, who in [(STAGING, prod_tea, "the staging admin"), (ALICE, prod_tea, "alice (default)"),
                              (ALICE_PROD, staging_tea, "alice@prod"), (PROD, default_tea, "the prod admin"),
                              (ALICE_PROD, default_tea, "alice@prod")]:
            for method, path, body in [("GET", "/v1/memories/%s/", None), ("PUT", "/v1/memories/%s/", {"text": "hacked"}),
                                       ("DELETE", "/v1/memories/%s/", None), ("GET", "/v1/memories/%s/history/", None)]:
                status, _, _ = srv.call(method, path % mid, body, key=key)
                if status != 404:
                    fail("%s %s of another project's memory by %s answered %d, not 404" % (method, path, who, status))
        check("get, update, delete, history by id of another project's memory: 404 for every key", True)
        status, _, _ = srv.call("PUT", "/v1/batch/", {"memories": [{"memory_id": staging_bob, "text": "mine"},
                                                                   {"memory_id": prod_bob, "text": "hacked"}]}, key=STAGING)
        check("a batch update naming another project's memory: 404", status == 404, status)
        status, _, _ = srv.call("DELETE", "/v1/batch/", {"memories": [{"memory_id": staging_bob}, {"memory_id": prod_bob}]},
                                key=STAGING)
        check("a batch delete naming another project's memory: 404", status == 404, status)
        check("... and neither changed anything", listed(srv, PROD, user_id="bob") == ["Bob in prod keeps bees"] and
              listed(srv, STAGING, user_id="bob") == ["Bob in staging rides horses"])
        check("the server-wide admin reads any memory by id",
              call(srv, "GET", "/v1/memories/%s/" % staging_tea, key=ADMIN)["memory"] == "Alice in staging drinks black tea")
        hist = call(srv, "GET", "/v1/memories/%s/history/" % prod_tea, key=PROD)
        check("history by id within the project", len(hist) == 1, hist)

        # ---- entities ------------------------------------------------------------------------------------------
        def entities(key):
            return sorted((e["type"], e["id"], e["total_memories"]) for e in call(srv, "GET", "/v1/entities/", key=key)["results"])
        check("entities of prod", entities(PROD) == [("user", "alice", 2), ("user", "bob", 1), ("user", "carol", 1)],
              entities(PROD))
        check("entities of staging", entities(STAGING) == [("user", "alice", 1), ("user", "bob", 1)], entities(STAGING))
        check("entities of alice (default)", entities(ALICE) == [("user", "alice", 1)], entities(ALICE))
        check("entities of alice@prod", entities(ALICE_PROD) == [("user", "alice", 2)], entities(ALICE_PROD))

        # ---- events (asynchronous adds) ------------------------------------------------------------------------
        queued = call(srv, "POST", "/v3/memories/add/", {"messages": "Alice in prod queued a note", "infer": False,
                                                         "async_mode": True, "app_id": "chat"}, key=ALICE_PROD)
        eid = queued["event_id"]
        wait_for("the queued add", lambda: call(srv, "GET", "/v1/event/%s/" % eid, key=ALICE_PROD)["status"] == "SUCCEEDED")
        ev = call(srv, "GET", "/v1/event/%s/" % eid, key=PROD)
        check("the event carries its project and app", ev.get("org_id") == "acme" and ev.get("project_id") == "prod" and
              ev.get("app_id") == "chat" and ev["results"][0].get("project_id") == "prod", ev)
        for key, who in [(STAGING, "the staging admin"), (ALICE, "alice (default)")]:
            status, _, _ = srv.call("GET", "/v1/event/%s/" % eid, key=key)
            check("%s cannot read a prod event (404)" % who, status == 404, status)
            check("%s does not list it" % who,
                  eid not in [e["id"] for e in call(srv, "GET", "/v1/events/", key=key)["results"]])
        check("the server-wide admin lists it", eid in [e["id"] for e in call(srv, "GET", "/v1/events/", key=ADMIN)["results"]])
        prod_all.append("Alice in prod queued a note")
        prod_all.sort()

        # ---- exports -------------------------------------------------------------------------------------------
        made = call(srv, "POST", "/v1/exports/", {}, key=PROD, want=201)
        doc = call(srv, "POST", "/v1/exports/get/", {"memory_export_id": made["id"]}, key=PROD)
        check("the prod admin's export of every scope holds prod's memories only",
              texts(doc["memories"]) == sorted(prod_all + ["Bob in prod keeps bees", "Carol in prod sings"]) and
              doc.get("org_id") == "acme", doc)
        for key, who in [(STAGING, "the staging admin"), (ALICE, "alice (default)")]:
            status, _, _ = srv.call("POST", "/v1/exports/get/", {"memory_export_id": made["id"]}, key=key)
            check("%s cannot fetch it (404)" % who, status == 404, status)
        status, _, _ = srv.call("POST", "/v1/exports/get/", {"memory_export_id": made["id"]}, key=ALICE_PROD)
        check("alice@prod cannot fetch an export made for the whole project (404)", status == 404, status)
        mine = call(srv, "POST", "/v1/exports/", {}, key=ALICE_PROD, want=201)
        check("alice@prod's export: hers in prod",
              texts(call(srv, "POST", "/v1/exports/get/", {"memory_export_id": mine["id"]}, key=ALICE_PROD)["memories"])
              == prod_all)
        status, _, _ = srv.call("POST", "/v1/exports/get/", {"memory_export_id": mine["id"]}, key=ALICE)
        check("alice (default) cannot fetch alice@prod's export (404)", status == 404, status)
        by_admin = call(srv, "POST", "/v1/exports/", dict(STAGING_Q), key=ADMIN, want=201)
        check("the server-wide admin's export of acme/staging: staging's only",
              texts(call(srv, "POST", "/v1/exports/get/", {"memory_export_id": by_admin["id"]}, key=STAGING)["memories"])
              == ["Alice in staging drinks black tea", "Bob in staging rides horses"])
        everything = call(srv, "POST", "/v1/exports/", {}, key=ADMIN, want=201)
        check("the server-wide admin's export of everything",
              len(call(srv, "POST", "/v1/exports/get/", {"memory_export_id": everything["id"]}, key=ADMIN)["memories"]) == 8)
        status, _, _ = srv.call("POST", "/v1/exports/get/", {"memory_export_id": everything["id"]}, key=PROD)
        check("... which no project's admin fetches (404)", status == 404, status)
        newest = call(srv, "POST", "/v1/exports/get/", {"filters": {"user_id": "alice"}}, key=STAGING, want=404)
        check("a fetch by filters in staging finds no prod export", newest is not None)
        summary = call(srv, "POST", "/v1/summary/", {"user_id": "alice"}, key=STAGING)
        check("a summary in staging counts staging's memories",
              [(s.get("user_id"), s.get("project_id"), s["total_memories"]) for s in summary] ==
              [("alice", "staging", 1)], summary)

        # ---- MCP -----------------------------------------------------------------------------------------------
        def tool(key, name, arguments):
            out = call(srv, "POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                             "params": {"name": name, "arguments": arguments}}, key=key)
            return out["result"]
        found = tool(STAGING, "search_memories", {"query": "tea", "user_id": "alice"})
        check("MCP search in staging", texts(found["structuredContent"]) == ["Alice in staging drinks black tea"], found)
        got = tool(STAGING, "get_memory", {"memory_id": prod_tea})
        check("MCP get of a prod memory from staging: not found", got["isError"] and "no memory" in
              got["content"][0]["text"], got)
        got = tool(ALICE_PROD, "search_memories", dict(STAGING_Q, query="tea"))
        check("MCP naming another project: refused", got["isError"], got)
        got = tool(ALICE_PROD, "list_memories", {"app_id": "games"})
        check("MCP list with app_id", texts(got["structuredContent"]) == ["Alice in prod plays chess"], got)

        # ---- delete_all stays in its project -------------------------------------------------------------------
        gone = call(srv, "DELETE", "/v1/memories/?" + q({"user_id": "bob"}), key=STAGING)
        check("delete_all of bob in staging deletes staging's bob", gone.get("deleted") == 1, gone)
        check("... and prod's bob is still there", listed(srv, PROD, user_id="bob") == ["Bob in prod keeps bees"])

        # ---- webhooks: told of their project's memory events only ---------------------------------------------
        wait_for("the server-wide webhook's deliveries", lambda: "Bob in staging rides horses" in all_rx.memory_texts())
        wait_for("the prod webhook's deliveries", lambda: "Alice in prod queued a note" in prod_rx.memory_texts())
        time.sleep(0.3)
        told = prod_rx.memory_texts()
        check("the prod webhook is told of prod's memories", {"Alice in prod drinks green tea", "Bob in prod keeps bees",
                                                              "Carol in prod sings"} <= told, told)
        check("... and of nothing else", all("in prod" in t or t == "probe" for t in told), told)
        with prod_rx.lock:
            projects = {b["event_details"].get("project_id") for b in prod_rx.bodies}
        check("... each delivery naming project prod", projects == {"prod"}, projects)
        everyone = all_rx.memory_texts()
        check("the server-wide webhook is told of every project's",
              {"Alice in staging drinks black tea", "Alice by default drinks mint tea", "Alice in prod drinks green tea"}
              <= everyone, everyone)
        del admin_prod

        # ---- 16 concurrent clients in two projects -------------------------------------------------------------
        clients = [(PROD, "prod"), (STAGING, "staging")]
        errors = []
        counts = {"writes": 0, "reads": 0}
        lock = threading.Lock()

        def client(n):
            rng = random.Random(n)
            key, project = clients[n % 2]
            try:
                for i in range(25):
                    user = "u%d" % rng.randrange(4)
                    app = rng.choice(["a1", "a2"])
                    if rng.random() < 0.4:
                        add(srv, key, "load %s %s %s note %d-%d" % (project, user, app, n, i), user_id=user, app_id=app)
                        with lock:
                            counts["writes"] += 1
                        continue
                    shape = rng.randrange(4)
                    if shape == 0:
                        body = {"user_id": user}
                    elif shape == 1:
                        body = {"filters": {"OR": [{"user_id": "u%d" % k} for k in rng.sample(range(4), 2)]}}
                    elif shape == 2:
                        body = {"filters": {"AND": [{"user_id": user}, {"app_id": app}]}}
                    else:
                        body = {"filters": {"user_id": {"in": ["u0", "u1", "u2", "u3"]}}}
                    status, _, text = srv.call("POST", "/v2/memories/search/", dict(body, query="load note", top_k=200),
                                               key=key)
                    if status != 200:
                        raise RuntimeError("search answered %d: %s" % (status, text))
                    for m in json.loads(text)["results"]:
                        if not m["memory"].startswith("load %s " % project) or m.get("project_id") != project:
                            raise RuntimeError("%s saw %r" % (project, m))
                        if shape == 2 and (" %s %s " % (user, app)) not in m["memory"]:
                            raise RuntimeError("an app filter let through %r" % m["memory"])
                    status, _, text = srv.call("GET", "/memories?" + q({"user_id": user}), key=key)
                    if status != 200:
                        raise RuntimeError("get_all answered %d" % status)
                    for m in json.loads(text)["results"]:
                        if m.get("project_id") != project or m["user_id"] != user:
                            raise RuntimeError("%s listing %s saw %r" % (project, user, m))
                    with lock:
                        counts["reads"] += 1
            except Exception as e:  # reported below
                errors.append("client %d: %s" % (n, e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        check("16 concurrent clients in two projects never saw the other's memories (%d writes, %d reads)" %
              (counts["writes"], counts["reads"]), not errors and counts["writes"] > 0 and counts["reads"] > 0, errors[:3])
        loads = {p: listed(srv, k, limit=1000, filters=json.dumps({"user_id": {"in": ["u0", "u1", "u2", "u3"]}}))
                 for k, p in clients}
        check("every load write landed in its own project",
              all(t.startswith("load %s " % p) for p, ts in loads.items() for t in ts) and
              sum(len(ts) for ts in loads.values()) == counts["writes"], {p: len(ts) for p, ts in loads.items()})

        # ---- a restart: the events, exports and webhooks keep their projects ----------------------------------
        srv.stop()
        srv = Server(binary, os.path.join(work, "data"), ["--keys", keys, "--log-format", "off",
                                                          "--webhook-retry-ms", "50"])
        check("after a restart the prod webhook is still bound to acme/prod",
              [(w["name"], w.get("org_id"), w.get("project_id"))
               for w in call(srv, "GET", "/api/v1/webhooks/projects/prod/", key=PROD)] == [("prod", "acme", "prod")])
        status, _, _ = srv.call("GET", "/v1/event/%s/" % eid, key=STAGING)
        check("... the prod event is still not staging's (404)", status == 404, status)
        check("... and still prod's", call(srv, "GET", "/v1/event/%s/" % eid, key=PROD)["project_id"] == "prod")
        status, _, _ = srv.call("POST", "/v1/exports/get/", {"memory_export_id": made["id"]}, key=STAGING)
        check("... the prod export is still not staging's (404)", status == 404, status)
        call(srv, "POST", "/v1/exports/get/", {"memory_export_id": made["id"]}, key=PROD)
        status, _, _ = srv.call("POST", "/v1/exports/get/", {"memory_export_id": everything["id"]}, key=PROD)
        check("... the export of every project still only the server-wide admin's (404)", status == 404, status)
        add(srv, STAGING, "After the restart staging adds", user_id="dora")
        add(srv, PROD, "After the restart prod adds", user_id="dora")
        wait_for("the deliveries after the restart", lambda: "After the restart staging adds" in all_rx.memory_texts()
                 and "After the restart prod adds" in prod_rx.memory_texts())
        time.sleep(0.2)
        check("... and the prod webhook is told of prod's memories only",
              "After the restart staging adds" not in prod_rx.memory_texts())
        print("test_projects: %.1f s" % (time.time() - started))
    finally:
        for r in receivers:
            r.stop()
        if srv:
            err = srv.stop()
            if "FAIL" in err:
                print(err, file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    print("all project checks passed")


if __name__ == "__main__":
    main()
