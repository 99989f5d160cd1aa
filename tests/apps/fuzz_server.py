#!/usr/bin/env python3
"""A structure-aware fuzzer over a live engram-server's REST routes (stdlib only).

usage: fuzz_server.py ENGRAM_SERVER_BIN [SECONDS]      (SECONDS default 20; env FUZZ_SEED fixes the seed)

Starts the server with two keys: an admin key and a key bound to the user "fuzz". It stores memories for a
"victim" user, then sends Mem0 request shapes (adds, searches, v2/v3 listings, updates, deletes, batches naming
the victim's ids, query strings, path ids, /mcp calls) mutated at random: values of the wrong type, numbers that
overflow, invalid and overlong UTF-8, control characters, deep nesting, unknown fields and filter operators,
wildcards, huge strings, cut or flipped JSON bytes, wrong content types. Destructive routes go with the bound key only.

Fails (exit 1, printing the request) when: an answer is 5xx other than 503, the server dies, an error answer
is not JSON with a string `detail`, a success answer to a JSON route is not JSON, or the victim's memories
(checked with the admin key every 50 requests and at the end) are fewer or changed.
Prints the number of requests, the statuses seen and the seed.
"""
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

ADMIN, FUZZ = "admin-key-0123456789", "fuzz-key-0123456789"


def fail(msg, request=None):
    print("FAIL: " + msg, file=sys.stderr)
    if request is not None:
        method, path, body, headers = request
        print("request: %s %r\nheaders: %r\nbody: %r" % (method, path, headers, body[:2000]), file=sys.stderr)
    sys.exit(1)


class Server:
    def __init__(self, binary, data, keys):
        self.proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0", "--data", data, "--keys", keys,
                                      "--threads", "4"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if "listening on" not in line:
            self.proc.kill()
            fail("engram-server did not start: " + line + self.proc.stderr.read().decode())
        host_port = line.split("listening on ")[1].split()[0].split("//")[-1]
        self.host, self.port = host_port.rsplit(":", 1)
        self.stderr = []
        threading.Thread(target=lambda: self.stderr.append(self.proc.stderr.read()), daemon=True).start()

    def send(self, method, path, body=b"", key=ADMIN, content_type="application/json"):
        headers = {"Authorization": "Token " + key}
        if content_type is not None:
            headers["Content-Type"] = content_type
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=60)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type", ""), r.read()
        finally:
            conn.close()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---- values and mutations ----------------------------------------------------------------------------------

class Raw:
    """A JSON fragment written as is (numbers JSON cannot hold as doubles, invalid UTF-8 in strings, ...)."""

    def __init__(self, text):
        self.text = text


def nested(depth, leaf=1):
    v = leaf
    for i in range(depth):
        v = [v] if i % 2 else {"k": v}
    return v


HOSTILE = [
    None, True, False, 0, -1, 1, 2 ** 63, 2 ** 64, -(2 ** 63) - 1, 1.5, -0.0, 1e308, "", " ", "*", "2", "null",
    [], {}, [1], ["a", None], {"$and": []}, {"in": 3}, "a" * 70000, "\u0000", "\u001b[2J\u001b]0;x\u0007",
    "\ud7ff\ue000\uffff", "<script>alert(1)</script>", "../../etc/passwd", "%FF", "2026-13-45",
    Raw("1e400"), Raw("-1e400"), Raw("123456789012345678901234567890"), Raw('"\\ud800"'), Raw('"\\udc00x"'),
    Raw(b'"\xff\xfe"'.decode("latin-1")), Raw(b'"\xc0\xae"'.decode("latin-1")), Raw("NaN"), Raw("Infinity"),
    nested(70), nested(300), {"AND": [nested(40)]},
]
KEYS = ["user_id", "agent_id", "run_id", "query", "messages", "metadata", "filters", "top_k", "limit",
        "threshold", "page", "page_size", "infer", "text", "memory", "categories", "expiration_date", "mode",
        "explain", "rerank", "keyword_search", "includes", "excludes", "custom_categories", "custom_instructions",
        "prompt", "timestamp", "version", "output_format", "enable_graph", "immutable", "memory_type", "org_id",
        "project_id", "app_id", "fields", "async_mode", "unknown_field_x"]
OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains", "$bogus", "*", "AND", "OR", "NOT"]


def rand_filter(rng, depth=0):
    r = rng.random()
    if depth > 3 or r < 0.4:
        key = rng.choice(["user_id", "agent_id", "topic", "n", "categories", "created_at", "metadata", "x.y"])
        if rng.random() < 0.5:
            return {key: rng.choice(HOSTILE[:30] + ["fuzz", "victim", "drink"])}
        return {key: {rng.choice(OPS): rng.choice(HOSTILE[:30] + [["a", "b"], "fuzz"])}}
    op = rng.choice(["AND", "OR", "NOT", "$or", "and"])
    return {op: [rand_filter(rng, depth + 1) for _ in range(rng.randint(0, 3))]}


def mutate_value(rng, v, depth=0):
    """v with one place changed (or v itself replaced)."""
    if depth > 6 or rng.random() < 0.3:
        return rng.choice(HOSTILE) if rng.random() < 0.8 else rand_filter(rng)
    if isinstance(v, dict) and v:
        v = dict(v)
        k = rng.choice(list(v))
        r = rng.random()
        if r < 0.15:
            del v[k]
        elif r < 0.3:
            v[rng.choice(KEYS)] = rng.choice(HOSTILE)
        else:
            v[k] = mutate_value(rng, v[k], depth + 1)
        return v
    if isinstance(v, list) and v:
        v = list(v)
        i = rng.randrange(len(v))
        v[i] = mutate_value(rng, v[i], depth + 1)
        return v
    return rng.choice(HOSTILE)


def dump(v):
    """JSON text of v, Raw fragments spliced in; returns bytes (latin-1 for the raw invalid bytes)."""
    marks = {}

    def walk(x):
        if isinstance(x, Raw):
            token = "@@RAW%d@@" % len(marks)
            marks['"%s"' % token] = x.text
            return token
        if isinstance(x, dict):
            return {k: walk(y) for k, y in x.items()}
        if isinstance(x, list):
            return [walk(y) for y in x]
        return x

    text = json.dumps(walk(v), ensure_ascii=False)
    for token, raw in marks.items():
        text = text.replace(token, raw)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from the hostile strings
        return text.encode("utf-8", "surrogatepass")


def mangle_bytes(rng, b):
    r = rng.random()
    if not b or r < 0.4:
        return b
    if r < 0.6:
        return b[: rng.randrange(len(b))]
    if r < 0.8:
        i = rng.randrange(len(b))
        return b[:i] + bytes([rng.randrange(256)]) + b[i + 1:]
    i = rng.randrange(len(b) + 1)
    return b[:i] + rng.choice([b"\xff", b"\xc0\xae", b"\xed\xa0\x80", b"\x00", b"{", b"]", b'"', b"\\u"]) + b[i:]


def quote_bytes(b):
    return "".join(chr(c) if c < 128 and (chr(c).isalnum() or chr(c) in "-_.~") else "%%%02X" % c for c in b)


def rand_id(rng, known):
    r = rng.random()
    if known and r < 0.4:
        return quote_bytes(rng.choice(known).encode())
    return quote_bytes(rng.choice([b"\xff", b"\xc0\xae\xc0\xae", b"..", b"*", b"", b"0" * 300, b"%", b"\x00",
                                   b"00000000-0000-4000-8000-000000000000", "é".encode(), b"a/b"]))


def rand_query(rng):
    pairs = []
    for _ in range(rng.randint(0, 5)):
        k = rng.choice(["user_id", "agent_id", "run_id", "top_k", "limit", "page", "page_size", "filters",
                        "mode", "infer", "zzz", "user_id"])
        v = rng.choice([b"fuzz", b"-1", b"18446744073709551616", b"1e400", b"", b"*", b"\xff", b"\xc0\xae",
                        b'{"AND":[{"user_id":"fuzz"}]}', b'{"user_id":{"$x":1}}', b"[", b"2", b"null",
                        b"victim"])
        pairs.append(quote_bytes(k.encode()) + "=" + quote_bytes(v))
    return ("?" + "&".join(pairs)) if pairs else ""


def base_add(rng):
    return {"messages": [{"role": "user", "content": "I like kite number %d" % rng.randrange(1000)}],
            "user_id": "fuzz", "metadata": {"topic": "kites", "n": rng.randrange(10)}, "infer": False}


def base_search(rng):
    return {"query": "kites", "user_id": "fuzz", "top_k": 5, "threshold": 0.1,
            "filters": {"AND": [{"user_id": "fuzz"}, {"n": {"gte": 1}}]}}


def base_list(rng):
    return {"filters": {"AND": [{"user_id": "fuzz"}]}, "page": 1, "page_size": 10}


def base_update(rng):
    return {"text": "kites are fun %d" % rng.randrange(100), "metadata": {"n": 3}}


def mcp_call(rng):
    tool = rng.choice(["add_memory", "search_memories", "list_memories", "get_memory", "update_memory",
                       "delete_memory", "history", "bogus_tool"])
    args = {"text": "kites", "query": "kites", "user_id": "fuzz", "memory_id": "x", "limit": 3}
    return {"jsonrpc": "2.0", "id": rng.randrange(100), "method": rng.choice(["tools/call", "tools/list",
                                                                            "initialize", "nope"]),
            "params": {"name": tool, "arguments": args}}


def make_request(rng, known):
    """(method, path, body bytes, key, content type, json_route)."""
    kind = rng.randrange(14)
    bound = FUZZ
    if kind == 0:
        method, path, v = "POST", rng.choice(["/memories", "/v1/memories/", "/v3/memories/add/"]), base_add(rng)
    elif kind == 1:
        method, path, v = "POST", rng.choice(["/search", "/v2/memories/search/", "/v3/memories/search/"]), \
            base_search(rng)
    elif kind == 2:
        method, path, v = "POST", rng.choice(["/v2/memories/", "/v3/memories/"]) + rand_query(rng), base_list(rng)
    elif kind == 3:
        method, path, v = "GET", "/memories" + rand_query(rng), None
    elif kind == 4:
        method, path, v = "DELETE", rng.choice(["/memories", "/v1/memories/"]) + rand_query(rng), None
    elif kind in (5, 6):
        sid = rand_id(rng, known)
        method, path, v = rng.choice([("GET", "/memories/%s" % sid, None), ("GET", "/v1/memories/%s/" % sid, None),
                                      ("GET", "/memories/%s/history" % sid, None),
                                      ("GET", "/v1/memories/%s/history/" % sid, None),
                                      ("DELETE", "/memories/%s" % sid, None),
                                      ("DELETE", "/v1/memories/%s/" % sid, None)])
    elif kind in (7, 8) and rng.random() < 0.3:  # a batch that names the victim's ids among others
        ids = [rng.choice(known + ["x", "", "00000000-0000-4000-8000-000000000000"]) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.5:
            method, path, v = "PUT", "/v1/batch/", {"memories": [dict(base_update(rng), memory_id=i) for i in ids]}
        else:
            method, path, v = "DELETE", "/v1/batch/", {"memories": [{"memory_id": i} for i in ids]}
    elif kind in (7, 8):
        sid = rand_id(rng, known)
        method, path, v = "PUT", rng.choice(["/memories/%s", "/v1/memories/%s/"]) % sid, base_update(rng)
    elif kind == 9:
        method, path, v = "POST", "/mcp", mcp_call(rng)
    elif kind == 10:
        method, path, v = rng.choice([("GET", "/v1/ping/", None), ("GET", "/v1/entities/", None),
                                      ("GET", "/health", None), ("POST", "/reset", {})])
    else:  # the same shapes, read-only, with the admin key (which may name any user)
        bound = ADMIN
        method, path, v = "POST", rng.choice(["/search", "/v2/memories/", "/v3/memories/search/"]), \
            rng.choice([base_search(rng), base_list(rng)])
    if v is not None and rng.random() < 0.85:
        for _ in range(rng.randint(1, 3)):
            v = mutate_value(rng, v)
    body = b"" if v is None else mangle_bytes(rng, dump(v))
    if method in ("GET", "DELETE") and rng.random() < 0.1:
        body = dump(mutate_value(rng, base_list(rng)))
    ctype = rng.choice(["application/json"] * 8 + ["text/plain", None, "application/x-www-form-urlencoded"])
    return method, path, body, bound, ctype


# ---- the run -----------------------------------------------------------------------------------------------

def victim_state(server):
    status, _, body = server.send("GET", "/memories?user_id=victim&limit=1000", key=ADMIN)
    if status != 200:
        fail("listing the victim's memories answered %d: %r" % (status, body[:300]))
    doc = json.loads(body)
    items = doc["results"] if isinstance(doc, dict) else doc
    return sorted((m["id"], m["memory"]) for m in items)


def main():
    if len(sys.argv) < 2:
        fail("usage: fuzz_server.py ENGRAM_SERVER_BIN [SECONDS]")
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    seed = int(os.environ.get("FUZZ_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print("fuzz_server: seed %d (FUZZ_SEED=%d to repeat), %.0f s" % (seed, seed, seconds))
    with tempfile.TemporaryDirectory() as tmp:
        keys = os.path.join(tmp, "keys")
        with open(keys, "w") as f:
            f.write("%s admin\n%s user fuzz\n" % (ADMIN, FUZZ))
        server = Server(sys.argv[1], os.path.join(tmp, "data"), keys)
        try:
            for i in range(5):
                body = json.dumps({"messages": [{"role": "user", "content": "victim fact %d" % i}],
                                   "user_id": "victim", "infer": False}).encode()
                status, _, answer = server.send("POST", "/memories", body)
                if status != 200:
                    fail("seeding answered %d: %r" % (status, answer[:300]))
            victim = victim_state(server)
            if len(victim) != 5:
                fail("seeded 5 victim memories, listed %d" % len(victim))
            known = [m[0] for m in victim]
            statuses = {}
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                method, path, body, key, ctype = make_request(rng, known)
                request = (method, path, body, {"key": key, "content-type": ctype})
                try:
                    status, rtype, answer = server.send(method, path, body, key, ctype)
                except (OSError, http.client.HTTPException) as e:
                    if not server.alive():
                        fail("the server died (exit %s): %s" % (server.proc.returncode,
                                                                 b"".join(server.stderr)[-3000:]), request)
                    fail("no answer: %r" % e, request)
                n += 1
                statuses[status] = statuses.get(status, 0) + 1
                if status >= 500 and status != 503:
                    fail("answered %d: %r" % (status, answer[:500]), request)
                if path.startswith("/mcp") and 200 <= status < 300:  # 202 without a body: a notification
                    json_ok = True
                    try:
                        json.loads(answer) if answer else None
                    except ValueError:
                        json_ok = False
                    if not json_ok:
                        fail("/mcp answered non-JSON: %r" % answer[:300], request)
                    continue
                try:
                    doc = json.loads(answer)
                except ValueError:
                    fail("answer %d is not JSON (%s): %r" % (status, rtype, answer[:300]), request)
                if status >= 400 and not (isinstance(doc, dict) and isinstance(doc.get("detail"), str)):
                    fail("error %d without a string detail: %r" % (status, answer[:300]), request)
                if status == 200 and method == "POST" and isinstance(doc, dict):
                    for r in doc.get("results", []) if isinstance(doc.get("results"), list) else []:
                        if isinstance(r, dict) and isinstance(r.get("id"), str) and len(known) < 200:
                            known.append(r["id"])
                if n % 50 == 0 and victim_state(server) != victim:
                    fail("the victim's memories changed after %d requests" % n, request)
            if not server.alive():
                fail("the server died at the end")
            if victim_state(server) != victim:
                fail("the victim's memories changed")
            print("fuzz_server: %d requests in %.0f s, statuses %s; the victim's %d memories intact, no 5xx "
                  "but 503, every error a JSON detail" % (n, seconds, dict(sorted(statuses.items())), len(victim)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
