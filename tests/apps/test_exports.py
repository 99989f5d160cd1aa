#!/usr/bin/env python3
"""Memory exports on a live engram-server: POST /v1/exports/, POST /v1/exports/get/, POST /v1/summary/.

usage: test_exports.py ENGRAM_SERVER_BIN [ENGRAM_CLI_BIN]

Checks: an export of a user's memories is created (201, Mem0's {"message", "id"}) and fetched by id and by
filters, holding each memory's id, text, scope, metadata, categories and times; metadata and time filters
select; two user-bound keys never see each other's exports (404 across, 403 for naming the other user) while
an admin sees all; the schema is checked, kept and returned; malformed or unknown fields are 400; the size
limit is a 413 and the count limit drops the oldest; exports survive a restart, the remains of a crash are
removed on start, and a second server cannot share the directory; the summary counts per scope. With the CLI,
a fetched export is imported by `engram import --from mem0` into a fresh directory with ids, texts and times.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from live_server import Server, check, fail

ADMIN = "admin-key-0123456789abcdef"
ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdef00"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def call(srv, path, body, key="default"):
    status, _, text = srv.call("POST", path, body, key=key)
    try:
        return status, json.loads(text)
    except ValueError:
        fail(f"{path} answered {status} with text that is not JSON: {text[:200]}")


def add(srv, text, user, key=ADMIN, **fields):
    status, out = call(srv, "/v1/memories/", dict({"messages": text, "user_id": user, "infer": False}, **fields), key)
    check(f"add '{text}'", status == 200, out)
    return out["results"][0]["id"]


def create(srv, body, key="default", want=201):
    status, out = call(srv, "/v1/exports/", body, key)
    check(f"create {json.dumps(body)[:80]} answers {want}", status == want, (status, out))
    return out


def fetch(srv, body, key="default", want=200):
    status, out = call(srv, "/v1/exports/get/", body, key)
    check(f"fetch {json.dumps(body)[:80]} answers {want}", status == want, (status, out))
    return out


def texts(doc):
    return sorted(m["memory"] for m in doc["memories"])


def main():
    if len(sys.argv) not in (2, 3):
        fail("usage: test_exports.py ENGRAM_SERVER_BIN [ENGRAM_CLI_BIN]")
    binary = sys.argv[1]
    cli = sys.argv[2] if len(sys.argv) == 3 else None
    work = tempfile.mkdtemp(prefix="engram-exports-test-")
    data = os.path.join(work, "data")
    keys = os.path.join(work, "keys")
    with open(keys, "w") as f:
        f.write(f"{ADMIN} admin\n{ALICE} user alice\n{BOB} user bob\n")
    flags = ["--keys", keys, "--log-format", "off"]
    srv = Server(binary, data, flags, key=ADMIN)
    try:
        cello = add(srv, "Alice plays the cello", "alice", metadata={"topic": "music"})
        add(srv, "Alice eats figs", "alice", metadata={"topic": "food", "categories": ["diet"]},
            timestamp="2023-03-01T10:00:00Z")
        add(srv, "Alice runs on Sundays", "alice", agent_id="coach")
        add(srv, "Bob keeps bees", "bob")
        add(srv, "Carol sails", "carol")

        # ---- create and fetch, for a user-bound key --------------------------------------------------------
        schema = {"title": "Profile", "type": "object", "properties": {"hobbies": {"type": "array"}}}
        made = create(srv, {"schema": schema, "filters": {"user_id": "alice"},
                            "export_instructions": "newest first"}, key=ALICE)
        check("the create answer is Mem0's {message, id}", set(made) == {"message", "id"} and UUID.match(made["id"]), made)
        alice_id = made["id"]
        doc = fetch(srv, {"memory_export_id": alice_id}, key=ALICE)
        check("the export holds alice's memories",
              texts(doc) == ["Alice eats figs", "Alice plays the cello", "Alice runs on Sundays"], doc)
        check("count and id", doc["count"] == 3 and doc["id"] == alice_id, doc)
        check("the schema and instructions are kept and returned, not filled",
              doc["schema"] == schema and doc["export_instructions"] == "newest first", doc)
        check("the export names its scope and filters", doc["user_id"] == "alice" and doc["filters"] == {"user_id": "alice"}, doc)
        by_text = {m["memory"]: m for m in doc["memories"]}
        figs, run = by_text["Alice eats figs"], by_text["Alice runs on Sundays"]
        check("a memory keeps its id and metadata", by_text["Alice plays the cello"]["id"] == cello and
              by_text["Alice plays the cello"]["metadata"] == {"topic": "music"}, by_text)
        check("a memory keeps its categories", figs["categories"] == ["diet"], figs)
        check("a memory keeps its times", figs["created_at"].startswith("2023-03-01T10:00:00") and
              figs["valid_from"].startswith("2023-03-01T10:00:00") and "updated_at" in figs, figs)
        check("a memory keeps its scope", run["user_id"] == "alice" and run["agent_id"] == "coach", run)
        latest = fetch(srv, {"filters": {"user_id": "alice"}}, key=ALICE)
        check("a fetch by filters answers the newest matching export", latest["id"] == alice_id, latest)
        check("a fetch by top-level user_id too", fetch(srv, {"user_id": "alice"}, key=ALICE)["id"] == alice_id)
        check("the export's time is a filter on fetch",
              fetch(srv, {"filters": {"AND": [{"user_id": "alice"}, {"created_at": {"gte": doc["created_at"]}}]}},
                    key=ALICE)["id"] == alice_id)
        fetch(srv, {"filters": {"AND": [{"user_id": "alice"}, {"created_at": {"lt": "2020-01-01"}}]}}, key=ALICE, want=404)
        status, out = call(srv, "/v1/exports/get/", {"memory_export_id": alice_id, "user_id": "carol"}, ADMIN)
        check("an id with filters it does not match is 404", status == 404, (status, out))
        implied = create(srv, {"schema": {}}, key=ALICE)  # the bound key's user is the scope
        check("a bound key's export without a scope is its user's",
              texts(fetch(srv, {"memory_export_id": implied["id"]}, key=ALICE)) == texts(doc))

        # ---- filters: metadata and time, through the listings' grammar ---------------------------------------
        food = create(srv, {"schema": {}, "filters": {"AND": [{"user_id": "alice"}, {"metadata": {"topic": "food"}}]}})
        check("a metadata filter selects", texts(fetch(srv, {"memory_export_id": food["id"]})) == ["Alice eats figs"])
        old = create(srv, {"schema": {}, "filters": {"AND": [{"user_id": "alice"}, {"created_at": {"lt": "2024-01-01"}}]}})
        check("a time filter selects", texts(fetch(srv, {"memory_export_id": old["id"]})) == ["Alice eats figs"])
        coach = create(srv, {"schema": {}, "user_id": "alice", "agent_id": "coach"})
        check("scope ids select", texts(fetch(srv, {"memory_export_id": coach["id"]})) == ["Alice runs on Sundays"])
        music = create(srv, {"schema": {}, "filters": {"AND": [{"user_id": "alice"}, {"topic": {"in": ["music", "x"]}}]}})
        check("a metadata operator selects", texts(fetch(srv, {"memory_export_id": music["id"]})) == ["Alice plays the cello"])
        empty = create(srv, {"schema": {}, "filters": {"user_id": "nobody"}})
        check("an export may be empty", fetch(srv, {"memory_export_id": empty["id"]})["count"] == 0)

        # ---- keys: isolation between bound keys, admins see all --------------------------------------------
        fetch(srv, {"memory_export_id": alice_id}, key=BOB, want=404)
        status, out = call(srv, "/v1/exports/get/", {"memory_export_id": alice_id}, BOB)
        check("another user's export id answers as an unknown one", "no memory export with id" in out["detail"], out)
        status, out = call(srv, "/v1/exports/get/", {"filters": {"user_id": "alice"}}, BOB)
        check("naming another user on fetch is 403", status == 403, (status, out))
        status, out = call(srv, "/v1/exports/", {"schema": {}, "filters": {"user_id": "alice"}}, BOB)
        check("naming another user on create is 403", status == 403, (status, out))
        fetch(srv, {"user_id": "bob"}, key=BOB, want=404)
        bob = create(srv, {"schema": {}, "filters": {"OR": [{"user_id": "bob"}, {"user_id": "carol"}]}}, key=BOB)
        bob_doc = fetch(srv, {"memory_export_id": bob["id"]}, key=BOB)
        check("a bound key's OR filter stays in its user", texts(bob_doc) == ["Bob keeps bees"], bob_doc)
        fetch(srv, {"memory_export_id": bob["id"]}, key=ALICE, want=404)
        check("alice's newest export is still her own", fetch(srv, {"user_id": "alice"}, key=ALICE)["user_id"] == "alice")
        check("an admin fetches alice's export", fetch(srv, {"memory_export_id": alice_id})["count"] == 3)
        check("an admin fetches bob's", fetch(srv, {"memory_export_id": bob["id"]})["count"] == 1)
        everything = create(srv, {"schema": {}})
        check("an admin's export without a scope holds every memory",
              fetch(srv, {"memory_export_id": everything["id"]})["count"] == 5)

        # ---- malformed and unknown fields --------------------------------------------------------------------
        for body, what in [({"schema": "not json"}, "'schema'"), ({"schema": []}, "'schema'"),
                           ({"schema": "[1, 2]"}, "'schema'"), ({"schema": 7}, "'schema'"),
                           ({"schema": {}, "filters": "user_id=alice"}, "'filters'"),
                           ({"schema": {}, "filters": {"topic": {"$near": 1}}}, "near"),
                           ({"schema": {}, "export_instructions": 5}, "'export_instructions'"),
                           ({"schema": {}, "user_id": "alice", "format": "csv"}, "unknown field 'format'"),
                           ({"schema": {}, "user_id": "alice", "org_id": "acme"}, "'org_id'"),
                           ({"schema": {}, "user_id": 5}, "'user_id'")]:
            status, out = call(srv, "/v1/exports/", body)
            check(f"create {json.dumps(body)} is 400 naming {what}", status == 400 and what in out["detail"], (status, out))
        for body, what in [({}, "'memory_export_id'"), ({"memory_export_id": 5}, "'memory_export_id'"),
                           ({"memory_export_id": alice_id, "schema": {}}, "unknown field 'schema'"),
                           ({"filters": []}, "'filters'")]:
            status, out = call(srv, "/v1/exports/get/", body)
            check(f"fetch {json.dumps(body)} is 400 naming {what}", status == 400 and what in out["detail"], (status, out))
        status, _, text = srv.call("POST", "/v1/exports/", raw=b"[]")
        check("a body that is not an object is 400", status == 400, (status, text))
        fetch(srv, {"memory_export_id": "00000000-0000-4000-8000-000000000000"}, want=404)
        fetch(srv, {"memory_export_id": "../../data/keys"}, want=404)
        as_text = create(srv, {"schema": json.dumps(schema), "user_id": "bob"})
        check("a schema given as JSON text is kept as the object",
              fetch(srv, {"memory_export_id": as_text["id"]})["schema"] == schema)
        no_schema = create(srv, {"user_id": "bob"})
        check("without a schema the export has none", fetch(srv, {"memory_export_id": no_schema["id"]})["schema"] is None)

        # ---- the summary (the Python client's get_summary) ---------------------------------------------------
        status, summary = call(srv, "/v1/summary/", {"filters": {"user_id": "alice"}}, ALICE)
        check("the summary answers per scope", status == 200 and isinstance(summary, list), (status, summary))
        totals = {(s.get("user_id"), s.get("agent_id")): s["total_memories"] for s in summary}
        check("the summary counts alice's scopes", totals == {("alice", None): 2, ("alice", "coach"): 1}, summary)
        check("the summary counts categories", any(s["categories"] == {"diet": 1} for s in summary), summary)
        status, summary = call(srv, "/v1/summary/", {}, BOB)
        check("a bound key's summary is its user's", [s["user_id"] for s in summary] == ["bob"], summary)
        status, out = call(srv, "/v1/summary/", {"query": "x"})
        check("the summary refuses an unknown field", status == 400 and "'query'" in out["detail"], (status, out))
        kept = fetch(srv, {"memory_export_id": alice_id})
    finally:
        log = srv.stop()
    check("the startup line counts the exports", "0 memory exports in " + os.path.join(data, "exports") in log, log)

    # ---- durability: a restart keeps every export; a crash's remains are removed -----------------------------
    exports_dir = os.path.join(data, "exports")
    before = sorted(os.listdir(exports_dir))
    with open(os.path.join(exports_dir, "6f1c7a2e-0000-4000-8000-000000000001.json.tmp"), "w") as f:
        f.write('{"id": "half')
    with open(os.path.join(exports_dir, "6f1c7a2e-0000-4000-8000-000000000002.json"), "w") as f:
        f.write("{}")  # a document whose meta was never written: never answered
    srv = Server(binary, data, flags, key=ADMIN)
    try:
        check("a restarted server keeps the export", fetch(srv, {"memory_export_id": alice_id}, key=ALICE) == kept)
        check("and its filters still find it", fetch(srv, {"user_id": "alice", "agent_id": "coach"})["count"] == 1)
        fetch(srv, {"memory_export_id": alice_id}, key=BOB, want=404)
        proc = subprocess.run([binary, "--host", "127.0.0.1", "--port", "0", "--data", os.path.join(work, "other"),
                               "--exports-dir", exports_dir, "--keys", keys], capture_output=True, text=True, timeout=30)
        check("a second server cannot use the same exports directory",
              proc.returncode == 1 and "in use by another process" in proc.stderr, (proc.returncode, proc.stderr))
    finally:
        log = srv.stop()
    check("the restart says what it removed", "(2 unfinished files removed)" in log, log)
    check("only the crash's remains were removed", sorted(os.listdir(exports_dir)) == before, os.listdir(exports_dir))

    # ---- limits: memories per export (413), exports kept (the oldest dropped) --------------------------------
    small = Server(binary, data, flags + ["--max-export-memories", "2", "--max-exports", "2"], key=ADMIN)
    try:
        status, out = call(small, "/v1/exports/", {"schema": {}, "user_id": "alice"})
        check("an export over --max-export-memories is 413 naming the flag",
              status == 413 and "--max-export-memories" in out["detail"], (status, out))
        check("the retention applied on start", len([n for n in os.listdir(exports_dir) if n.endswith(".meta.json")]) == 2)
        fetch(small, {"memory_export_id": alice_id}, want=404)
        ids = [create(small, {"schema": {}, "user_id": u})["id"] for u in ("bob", "carol", "bob")]
        fetch(small, {"memory_export_id": ids[0]}, want=404)
        check("the two newest are kept", fetch(small, {"memory_export_id": ids[2]})["count"] == 1 and
              fetch(small, {"memory_export_id": ids[1]})["memories"][0]["memory"] == "Carol sails")
        check("dropped exports leave no file", sorted(n.split(".")[0] for n in os.listdir(exports_dir) if n != ".lock")
              == sorted([ids[1], ids[1], ids[2], ids[2]]), os.listdir(exports_dir))
    finally:
        small.stop()

    # ---- a fetched export read back by `engram import --from mem0` ----------------------------------------
    if cli:
        path = os.path.join(work, "export.json")
        with open(path, "w") as f:
            json.dump(kept, f)
        r = subprocess.run([cli, "--data", os.path.join(work, "copy"), "--output", "json", "import", "--from", "mem0",
                            path], capture_output=True, text=True, timeout=60)
        check("engram import --from mem0 reads a fetched export", r.returncode == 0 and
              json.loads(r.stdout)["imported"] == 3, (r.returncode, r.stdout, r.stderr))
        r = subprocess.run([cli, "--data", os.path.join(work, "copy"), "--output", "json", "list", "--user-id", "alice"],
                           capture_output=True, text=True, timeout=60)
        listed = {m["id"]: m for m in json.loads(r.stdout)["results"]}
        for m in kept["memories"]:
            got = listed.get(m["id"], {})
            same = all(got.get(k) == m.get(k) for k in ("memory", "user_id", "agent_id", "metadata", "created_at",
                                                          "updated_at", "categories"))
            check(f"imported '{m['memory']}' keeps id, text, scope, metadata and times", same, (m, got))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
