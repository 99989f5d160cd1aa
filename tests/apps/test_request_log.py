#!/usr/bin/env python3
"""engram-server's request log and X-Request-Id (stdlib only).

usage: test_request_log.py ENGRAM_SERVER_BIN [FAKE_PROVIDER_BIN]

Checks: every answer (routes, 401, 404, 413) carries an X-Request-Id, the client's own when it is sane and a
fresh one otherwise; `--log-format json` writes one JSON line per request with its time, id, method, route,
path, status, latency, key name (never the key) and scope, and no memory text; `--log-bodies` adds the body;
the text format keeps a hostile user id (newline, quote, escape) inside its line; `--log-format off` writes
no request line; a bad `--log-format` is refused with exit 2; with the LLM extractor on the loopback fake
provider, a provider failure and its recovery get a line each. Exits 1 on the first failure.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

from live_server import Server, check, fail

ADMIN_KEY = "admin-key-0123456789abcdef"
ALICE_KEY = "alice-key-0123456789abcdef"
SECRET = "SECRET-TEXT-4242 the cat is named Biscuit"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def json_lines(log):
    out = []
    for line in log.splitlines():
        if '{"time":' in line and not line.startswith("{"):
            fail("a log line was split by another write to stderr: " + line)
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                fail("a log line is not JSON: " + line)
    return out


def call_id(srv, *args, **kwargs):
    """(status, X-Request-Id, text) of one request."""
    status, headers, text = srv.call(*args, **kwargs)
    return status, headers.get("X-Request-Id"), text


def by_id(lines, rid):
    found = [j for j in lines if j.get("request_id") == rid]
    check("one log line for request " + rid, len(found) == 1, found)
    return found[0]


def json_log(binary, work):
    keys = os.path.join(work, "keys")
    with open(keys, "w") as f:
        f.write(f"{ADMIN_KEY} admin\n{ALICE_KEY} user alice\n")
    srv = Server(binary, os.path.join(work, "json"), ["--keys", keys, "--log-format", "json", "--max-body", "4096"])
    try:
        status, rid_add, _ = call_id(srv, "POST", "/v1/memories/", {"messages": SECRET, "user_id": "alice", "infer": False},
                                      key=ALICE_KEY, headers={"X-Request-Id": "trace-abc.123:9"})
        check("an add answered", status == 200, status)
        check("the client's X-Request-Id comes back", rid_add == "trace-abc.123:9", rid_add)
        status, rid_search, _ = call_id(srv, "POST", "/v2/memories/search/", {"query": "cat", "filters": {"user_id": "alice"}},
                                         key=ALICE_KEY)
        check("a search answered", status == 200, status)
        check("a fresh request id when the client sent none", rid_search is not None and HEX_ID.match(rid_search), rid_search)
        status, rid_evil, _ = call_id(srv, "GET", "/memories?user_id=alice", key=ALICE_KEY,
                                       headers={"X-Request-Id": "<script>alert(1)</script>"})
        check("an insane client id is replaced", rid_evil is not None and HEX_ID.match(rid_evil), rid_evil)
        status, rid_long, _ = call_id(srv, "GET", "/health", headers={"X-Request-Id": "x" * 129})
        check("a 129-character client id is replaced", HEX_ID.match(rid_long or ""), rid_long)
        status, rid_401, _ = call_id(srv, "POST", "/v2/memories/search/", {"query": "cat", "user_id": "alice"})
        check("no key: 401 with an id", status == 401 and HEX_ID.match(rid_401 or ""), (status, rid_401))
        status, rid_404, _ = call_id(srv, "GET", "/no/such/route", key=ADMIN_KEY)
        check("no route: 404 with an id", status == 404 and HEX_ID.match(rid_404 or ""), (status, rid_404))
        status, rid_413, _ = call_id(srv, "POST", "/v1/memories/", raw=b"{" + b" " * 8000 + b"}", key=ADMIN_KEY,
                                      headers={"X-Request-Id": "big-one"})
        check("too large: 413 with the client's id", status == 413 and rid_413 == "big-one", (status, rid_413))
        hostile = 'bob" key=admin:root status=200 \u202e{"x": 1}'  # ids may not hold control characters
        status, rid_hostile, _ = call_id(srv, "POST", "/v1/memories/", {"messages": "x", "user_id": hostile, "infer": False},
                                          key=ADMIN_KEY)
        check("an admin add for a hostile user id", status == 200, status)
    finally:
        log = srv.stop()

    lines = json_lines(log)
    check("no memory text in the log without --log-bodies", SECRET not in log and "Biscuit" not in log)
    check("no key in the log", ADMIN_KEY not in log and ALICE_KEY not in log)
    add = by_id(lines, rid_add)
    check("the add's line", add["method"] == "POST" and add["route"] == "POST /v1/memories/" and
          add["path"] == "/v1/memories/" and add["status"] == 200 and add["key"] == "user:alice" and
          add["scope"] == {"user_id": "alice"}, add)
    check("the add's latency is a number of milliseconds", isinstance(add["latency_ms"], (int, float)) and
          0 <= add["latency_ms"] < 30000, add)
    check("the add's time is ISO-8601 UTC", re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", add["time"]), add)
    check("no body field without --log-bodies", "body" not in add, add)
    search = by_id(lines, rid_search)
    check("the search's line takes its scope from the filters", search["route"] == "POST /v2/memories/search/" and
          search["key"] == "user:alice" and search["scope"] == {"user_id": "alice"}, search)
    listing = by_id(lines, rid_evil)
    check("a query-string scope is logged", listing["scope"] == {"user_id": "alice"} and listing["status"] == 200, listing)
    check("a request without key logs no key", by_id(lines, rid_401)["key"] is None and by_id(lines, rid_401)["status"] == 401)
    nf = by_id(lines, rid_404)
    check("an unrouted request logs a null route", nf["route"] is None and nf["status"] == 404 and
          nf["path"] == "/no/such/route", nf)
    check("the 413 is logged", by_id(lines, rid_413)["status"] == 413)
    h = by_id(lines, rid_hostile)
    check("a hostile user id is one JSON string in its line", h["scope"]["user_id"] == hostile, h)
    check("every request line has every field", all(
        {"time", "request_id", "method", "route", "path", "status", "latency_ms", "key", "scope"} <= set(j)
        for j in lines if "request_id" in j), lines)


def text_log(binary, work):
    srv = Server(binary, os.path.join(work, "text"), ["--log-bodies"])
    try:
        hostile = 'eve" status=500 key=admin'
        # a body with a raw newline between its tokens, and a path holding a newline and a terminal escape
        raw = ('{"messages": "%s",\nFAKE-LINE "user_id": %s, "infer": false}' % (SECRET, json.dumps(hostile))).encode()
        status, rid, text = call_id(srv, "POST", "/memories", raw=raw.replace(b"FAKE-LINE ", b""))
        check("an add in text mode", status == 200, (status, text))
        status, rid_path, _ = call_id(srv, "GET", "/nope%0AFAKE-LINE%1B%5B2J")
        check("a hostile path is a 404", status == 404, status)
    finally:
        log = srv.stop()
    line = [l for l in log.splitlines() if "request_id=" + rid in l]
    check("one text line for the add", len(line) == 1, log)
    check("--log-bodies writes the body", SECRET in line[0], line[0])
    check("the text line holds its pairs", " method=POST " in line[0] and " route=\"POST /memories\"" in line[0] and
          " status=200 " in line[0] and ' scope=user_id:"eve\\" status=500 key=admin"' in line[0], line[0])
    check("the body's newline stays inside its line", not any(l.startswith('"user_id"') for l in log.splitlines()), log)
    path_line = [l for l in log.splitlines() if "request_id=" + rid_path in l]
    check("the hostile path's line", len(path_line) == 1 and " status=404 " in path_line[0], log)
    check("the path forges no line", not any(l.startswith("FAKE-LINE") for l in log.splitlines()), log)
    check("the escape shows as text", "\x1b" not in log and "\\u001b" in path_line[0], path_line[0])


def log_off(binary, work):
    srv = Server(binary, os.path.join(work, "off"), ["--log-format", "off"])
    try:
        status, rid, _ = call_id(srv, "POST", "/memories", {"messages": SECRET, "user_id": "zed", "infer": False})
        check("an add with the log off", status == 200 and HEX_ID.match(rid or ""), (status, rid))
    finally:
        log = srv.stop()
    check("--log-format off writes no request line", rid not in log and "request_id" not in log, log)
    r = subprocess.run([binary, "--port", "0", "--data", os.path.join(work, "bad"), "--log-format", "xml"],
                       capture_output=True, text=True, timeout=30)
    check("a bad --log-format is refused", r.returncode == 2 and "--log-format" in r.stderr, (r.returncode, r.stderr))


def provider_events(binary, fake, work):
    chat = os.path.join(work, "chat.txt")
    with open(chat, "w") as f:
        f.write('!503\n{"facts": ["Drinks green tea every morning"]}\n')
    fp = subprocess.Popen([fake, "--chat", chat], stdout=subprocess.PIPE, text=True)
    try:
        port = int(fp.stdout.readline())
        srv = Server(binary, os.path.join(work, "llm"), ["--log-format", "json", "--extractor", "llm",
                                                         "--llm-model", "fake-chat", "--retries", "0",
                                                         "--base-url", f"http://127.0.0.1:{port}/v1"])
        try:
            body = {"messages": [{"role": "user", "content": "I drink green tea every morning"}], "user_id": "bob"}
            status, _, _ = srv.call("POST", "/memories", body=body)
            check("the provider's 503 fails the add", status >= 500, status)
            status, _, text = srv.call("POST", "/memories", body=body)
            check("the next add succeeds", status == 200 and "green tea" in text, (status, text))
        finally:
            log = srv.stop()
    finally:
        fp.terminate()
        fp.wait(timeout=30)
    events = [j["event"] for j in json_lines(log) if "event" in j]
    check("a provider failure and its recovery are logged, in order",
          events == ["provider_failure", "provider_recovered"], events)


def main():
    if len(sys.argv) < 2:
        fail("usage: test_request_log.py ENGRAM_SERVER_BIN [FAKE_PROVIDER_BIN]")
    binary = sys.argv[1]
    fake = sys.argv[2] if len(sys.argv) > 2 else ""
    with tempfile.TemporaryDirectory() as work:
        json_log(binary, work)
        text_log(binary, work)
        log_off(binary, work)
        if fake:
            provider_events(binary, fake, work)
        else:
            print("no fake-provider given: provider events not checked")


if __name__ == "__main__":
    main()
