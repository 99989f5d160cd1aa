#!/usr/bin/env python3
"""GET /metrics of a live engram-server in the Prometheus text format (stdlib only).

usage: test_metrics.py ENGRAM_SERVER_BIN [FAKE_PROVIDER_BIN]

Checks: `?format=prometheus` and a scraper's Accept header get the text format, plain requests keep the JSON;
a request is counted under its route and status and lands in one histogram bucket; the memory's families
(memories per store, pending adds, the file store's commits, syncs and fsync latency histogram) follow the writes; with the LLM
extractor on the loopback fake provider, provider calls, errors and facts dated with no usable date are counted; only admin keys may scrape;
`promtool check metrics` accepts every exposition. Exits 1 on the first failure, 77 (skipped) when promtool is
missing after every other check passed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import live_server
from live_server import check, fail

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROMTOOL = shutil.which("promtool")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Server(live_server.Server):
    """The shared live server, answering (status, Content-Type, text)."""

    def call(self, method, path, body=None, headers=None, raw=None):
        status, h, text = super().call(method, path, body, headers=headers, raw=raw)
        return status, h.get("Content-Type", ""), text


def parse(text):
    """{(name, ((label, value), ...)): value} of every sample; fails on a line that is not one."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            fail("not a sample line: " + line)
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def promtool(text, what):
    if not PROMTOOL:
        return
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    check("promtool check metrics: " + what, r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          r.stdout + r.stderr)


def scrape(srv, what, headers=None, query="?format=prometheus"):
    status, ctype, text = srv.call("GET", "/metrics" + query, headers=headers)
    check(what + ": 200 in the text format", status == 200 and ctype == CONTENT_TYPE, f"{status} {ctype} {text[:200]}")
    promtool(text, what)
    return parse(text)


def main():
    if len(sys.argv) < 2:
        fail("usage: test_metrics.py ENGRAM_SERVER_BIN [FAKE_PROVIDER_BIN]")
    binary = sys.argv[1]
    fake = sys.argv[2] if len(sys.argv) > 2 else ""
    work = tempfile.mkdtemp(prefix="engram-metrics-test-")
    try:
        run(binary, fake, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not PROMTOOL:
        print("SKIPPED: promtool not found (Debian package prometheus, see scripts/install-deps.sh): every other "
              "check passed, the exposition was not validated by promtool")
        sys.exit(77)


def run(binary, fake, work):
    srv = Server(binary, os.path.join(work, "data"))
    try:
        post = ("POST", "/memories")
        ok = {"method": "POST", "route": "/memories", "status": "200"}
        before = scrape(srv, "empty server")
        check("no memories yet", value(before, "engram_memories", store="file") == 0)
        check("engram_info carries the version", any(k[0] == "engram_info" for k in before))
        check("no POST /memories counted yet", value(before, "engram_http_requests_total", **ok) is None)

        status, _, _ = srv.call(*post, body={"messages": "I drink green tea every morning", "user_id": "alice"})
        check("add answered", status == 200)
        status, _, _ = srv.call(*post, raw=b"{not json")
        check("bad body answered 400", status == 400)

        after = scrape(srv, "scraper Accept header", headers={
            "Accept": "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"},
            query="")
        check("the add is counted", value(after, "engram_http_requests_total", **ok) == 1)
        check("the 400 is counted apart", value(after, "engram_http_requests_total", **dict(ok, status="400")) == 1)
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                         if k[0] == "engram_http_request_duration_seconds_bucket" and dict(k[1]).get("status") == "200"
                         and dict(k[1]).get("route") == "/memories")
        check("histogram has its buckets and +Inf", len(buckets) == 15 and buckets[-1][0] == float("inf"), str(buckets))
        check("buckets are cumulative", all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), str(buckets))
        check("the add landed in a bucket", buckets[0][1] <= 1 and buckets[-1][1] == 1, str(buckets))
        check("histogram count matches",
              value(after, "engram_http_request_duration_seconds_count", **ok) == 1)
        total = value(after, "engram_http_request_duration_seconds_sum", **ok)
        first = next(b for b, v in buckets if v == 1)
        check("histogram sum is the add's latency, inside its bucket", total is not None and 0 < total <= first,
              f"sum {total}, first bucket holding it {first}")
        check("the scrape itself is counted",
              value(after, "engram_http_requests_total", method="GET", route="/metrics", status="200") == 1)
        check("one memory held", value(after, "engram_memories", store="file") == 1)
        check("pending adds reported", value(after, "engram_pending_adds") == 0)
        check("file store commits moved", value(after, "engram_store_commits_total") >= 1)
        check("file store syncs moved", value(after, "engram_store_syncs_total") >= 1)
        check("log size reported", value(after, "engram_store_log_bytes") > 0)
        check("no compaction running in a small store", value(after, "engram_store_compacting") == 0)
        fsyncs = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                        if k[0] == "engram_store_fsync_duration_seconds_bucket")
        syncs = value(after, "engram_store_syncs_total")
        check("every fdatasync is timed", value(after, "engram_store_fsync_duration_seconds_count") == syncs and
              fsyncs and fsyncs[-1] == (float("inf"), syncs), str(fsyncs))
        check("fsync buckets are cumulative", all(a[1] <= b[1] for a, b in zip(fsyncs, fsyncs[1:])), str(fsyncs))
        check("fsync time adds up", 0 < value(after, "engram_store_fsync_duration_seconds_sum") < 60)

        status, ctype, text = srv.call("GET", "/metrics")
        check("plain GET keeps the JSON", status == 200 and "application/json" in ctype
              and json.loads(text)["routes"]["POST /memories"]["count"] == 2 and json.loads(text)["memories"] == 1,
              text[:300])
        status, ctype, _ = srv.call("GET", "/metrics", headers={"Accept": "application/json, text/plain"})
        check("Accept naming JSON keeps the JSON", status == 200 and "application/json" in ctype)
        status, _, text = srv.call("GET", "/metrics?format=xml")
        check("an unknown format is a 400 naming it", status == 400 and "xml" in text, text)
    finally:
        srv.stop()

    keys = os.path.join(work, "keys")
    with open(keys, "w") as f:
        f.write("admin-key-0123456789 admin\nalice-key-0123456789 user alice\n")
    srv = Server(binary, os.path.join(work, "keyed"), ["--keys", keys])
    try:
        status, _, _ = srv.call("GET", "/metrics?format=prometheus")
        check("no key: 401", status == 401)
        status, _, _ = srv.call("GET", "/metrics?format=prometheus", headers={"Authorization": "Token alice-key-0123456789"})
        check("a user's key: 403", status == 403)
        status, ctype, _ = srv.call("GET", "/metrics?format=prometheus", headers={"Authorization": "Token admin-key-0123456789"})
        check("an admin key scrapes", status == 200 and ctype == CONTENT_TYPE)
    finally:
        srv.stop()

    if not fake:
        print("no fake-provider given: provider metrics not checked")
        return
    chat = os.path.join(work, "chat.txt")
    with open(chat, "w") as f:
        # one fact dated with something that is no date (counted as a bad date, kept undated), one dated well
        f.write('{"facts": [{"fact": "Drinks green tea every morning", "valid_from": "since forever"},'
                ' {"fact": "Moved to Oslo", "valid_from": "2020-05-01"}]}\n')
    fp = subprocess.Popen([fake, "--chat", chat], stdout=subprocess.PIPE, text=True)
    try:
        port = int(fp.stdout.readline())
        srv = Server(binary, os.path.join(work, "llm"), ["--extractor", "llm", "--llm-model", "fake-chat",
                                                         "--base-url", f"http://127.0.0.1:{port}/v1", "--retries", "0"])
        try:
            body = {"messages": [{"role": "user", "content": "I drink green tea every morning"}], "user_id": "bob"}
            status, _, text = srv.call("POST", "/memories", body=body)
            check("an inferred add answered", status == 200 and "Drinks green tea" in text, text)
            status, _, _ = srv.call("POST", "/memories", body=dict(body, messages="one more"))
            check("no scripted reply left: the add fails", status >= 500, str(status))
            m = scrape(srv, "with the LLM extractor")
            llm = {"provider": "llm_extractor"}
            check("provider calls counted", value(m, "engram_provider_calls_total", **llm) == 2)
            check("provider error counted", value(m, "engram_provider_errors_total", **llm) == 1)
            check("provider HTTP requests counted", value(m, "engram_provider_http_requests_total", **llm) == 2)
            check("the fact dated with no date counted, the well-dated one not",
                  value(m, "engram_provider_bad_dates_total", **llm) == 1,
                  str(value(m, "engram_provider_bad_dates_total", **llm)))
            status, _, text = srv.call("GET", "/memories?user_id=bob")
            kept = {r["memory"]: r.get("valid_from", "") for r in json.loads(text)["results"]}
            check("the badly dated fact is kept, undated (valid from the add)",
                  status == 200 and not kept.get("Drinks green tea every morning", "").startswith("since")
                  and kept.get("Moved to Oslo", "").startswith("2020-05-01"), text)
        finally:
            srv.stop()
    finally:
        fp.terminate()
        fp.wait(timeout=30)


if __name__ == "__main__":
    main()
