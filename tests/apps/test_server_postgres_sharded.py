#!/usr/bin/env python3
"""Two engram-server nodes over two PostgreSQL databases (shards) (stdlib only, plus psql to count rows).

usage: test_server_postgres_sharded.py ENGRAM_SERVER_BIN POSTGRES_URL PG_CLUSTER_SCRIPT PG_DIR

Creates a second database in the tests' cluster, starts both nodes with `--store URL1 --store URL2`, and
checks: memories of many users added through node A are found by searches on node B; both databases hold some
of them and together all; a memory is read by id and its history through B; a reset through A empties both
databases and B. Then a third shard is added: with the nodes stopped, `engram-server --rebalance` over the three
databases moves the scopes the new shard owns (and a second run moves none), and a node over the three finds
every memory; a reset through it empties all three. Exits non-zero with a message on the first failure.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server_postgres import Node, eventually, fail, listed_all, search  # noqa: E402


def psql_binary():
    found = shutil.which("psql")
    if found:
        return found
    for b in sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")):
        found = b
    return found or fail("psql not found")


def count(pg_dir, database, schema):
    r = subprocess.run([psql_binary(), "-h", pg_dir, "-U", "engram", "-d", database, "-Atc",
                        "SELECT count(*) FROM %s.memories" % schema], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        fail("psql on %s: %s" % (database, r.stderr))
    return int(r.stdout.strip())


def main():
    if len(sys.argv) != 5:
        fail("usage: test_server_postgres_sharded.py ENGRAM_SERVER_BIN POSTGRES_URL PG_CLUSTER_SCRIPT PG_DIR")
    binary, url, script, pg_dir = sys.argv[1:]
    subprocess.run([script, "createdb", pg_dir, "engram_shard2"], capture_output=True, timeout=60)  # may exist
    schema = "shd%d" % os.getpid()
    sep = "&" if "?" in url else "?"
    first = url + sep + "shard=one&schema=" + schema
    second = "postgresql://engram@/engram_shard2?host=%s&shard=two" % pg_dir
    nodes = []
    try:
        for _ in range(2):
            nodes.append(Node(binary, first, "ignored", extra=["--store", second]))
        a, b = nodes
        users = ["user%d" % u for u in range(30)]
        ids = {}
        for u in users:
            status, body = a.call("POST", "/memories", {"messages": [{"role": "user", "content": "%s keeps bees" % u}],
                                                        "user_id": u, "infer": False})
            if status != 200:
                fail("add on A answered %d: %s" % (status, body))
            ids[u] = body["results"][0]["id"]
        for u in users:
            eventually("B never found %s's memory" % u, lambda u=u: "%s keeps bees" % u in search(b, u, "bees"))
        print("ok: memories of %d users added through A are found through B" % len(users))

        one, two = count(pg_dir, "engram", schema), count(pg_dir, "engram_shard2", schema)
        if one + two != len(users) or one == 0 or two == 0:
            fail("rows per database: %d and %d (expected both > 0, %d in all)" % (one, two, len(users)))
        print("ok: the databases hold %d and %d of the %d memories" % (one, two, len(users)))

        for u in users[:5]:
            status, body = b.call("GET", "/memories/" + ids[u])
            if status != 200 or body.get("memory") != "%s keeps bees" % u:
                fail("GET /memories/%s through B answered %d: %s" % (ids[u], status, body))
            status, body = b.call("GET", "/memories/%s/history" % ids[u])
            if status != 200 or len(body) != 1:
                fail("history through B answered %d: %s" % (status, body))
        print("ok: memories and their history are read by id through B, whichever shard holds them")

        # Adding a shard: the nodes stop, the scopes the new shard owns move to it, a node over three finds all.
        for n in nodes:
            n.stop()
        subprocess.run([script, "createdb", pg_dir, "engram_shard3"], capture_output=True, timeout=60)  # may exist
        third = "postgresql://engram@/engram_shard3?host=%s&shard=three" % pg_dir
        three_stores = ["--store", first, "--store", second, "--store", third]

        def rebalance():
            r = subprocess.run([binary, "--rebalance"] + three_stores, capture_output=True, text=True, timeout=120)
            moved = re.search(r"rebalance: (\d+) scopes moved \((\d+) memories\)", r.stdout)
            if r.returncode != 0 or not moved:
                fail("--rebalance exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))
            return int(moved.group(1)), int(moved.group(2))

        scopes, memories = rebalance()
        one, two, three = (count(pg_dir, db, schema) for db in ("engram", "engram_shard2", "engram_shard3"))
        if three == 0 or one + two + three != len(users) or (scopes, memories) != (three, three):
            fail("after rebalance: %d, %d and %d rows, %d scopes / %d memories moved" % (one, two, three, scopes, memories))
        if rebalance() != (0, 0):
            fail("a second rebalance moved something")
        print("ok: --rebalance moved %d of %d scopes to the new shard; run again, it moves none" % (scopes, len(users)))

        r = subprocess.run([binary, "--rebalance", "--store", first], capture_output=True, text=True, timeout=60)
        if r.returncode != 2 or "two or more" not in r.stderr:
            fail("--rebalance with one --store exited %d: %s" % (r.returncode, r.stderr))

        c = Node(binary, first, "ignored", extra=three_stores[2:])
        nodes.append(c)
        for u in users:
            if "%s keeps bees" % u not in search(c, u, "bees"):
                fail("the node over three shards does not find %s's memory" % u)
        print("ok: a node over the three shards finds every memory")

        status, _ = c.call("POST", "/reset")
        if status != 200:
            fail("reset answered %d" % status)
        if any(count(pg_dir, db, schema) for db in ("engram", "engram_shard2", "engram_shard3")):
            fail("reset left rows in a shard")
        if listed_all(c, users[0]):
            fail("the node still lists memories after the reset")
        print("ok: a reset empties the three databases")
    finally:
        for n in nodes:
            if n.proc.poll() is None:
                n.stop()


if __name__ == "__main__":
    main()
