#!/usr/bin/env python3
"""examples/server/crewai_backend.py (CrewAI's StorageBackend over engram-server) against a live server.

usage: test_crewai_backend.py ENGRAM_SERVER_BIN

Drives the backend with the calls CrewAI's unified Memory makes, in its order (remember: list_scopes,
list_categories, a consolidation search, save; recall: search, touch_records; update: get_record, update;
forget: delete; info/tree/list_records/list_categories; reset; the async forms), then checks the mapping
on the server's side (one engram memory per record, verbatim, under the backend's user), isolation between
two backends (two engram users), key binding (--keys), typed errors with the server's detail, and, when the
`crewai` package is importable, the same through CrewAI's real Memory. Embeddings come from a small
deterministic bag-of-words embedder standing in for CrewAI's. Exits 1 on the first failure.
"""
import asyncio
import hashlib
import json
import math
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone

from live_server import Server, check, fail

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "server"))
import crewai_backend as cb  # noqa: E402
from crewai_backend import EngramBackend, EngramError, MemoryRecord  # noqa: E402

DIM = 64


def embed(text):
    """A unit bag-of-words vector: texts sharing words are close, texts sharing none are orthogonal-ish."""
    v = [0.0] * DIM
    for word in text.lower().replace(",", " ").replace(".", " ").split():
        h = hashlib.sha256(word.encode()).digest()
        v[h[0] % DIM] += 1.0 if h[1] % 2 else -1.0
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else v


def embedder(texts):
    """CrewAI's embedder shape: a list of texts in, a list of vectors out."""
    return [embed(t) for t in texts]


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def rec(content, scope, categories=(), metadata=None, importance=0.5, created_at=None, **kw):
    extra = {"created_at": created_at} if created_at else {}
    return MemoryRecord(content=content, scope=scope, categories=list(categories), metadata=metadata or {},
                        importance=importance, embedding=embed(content), **extra, **kw)


def expect_error(what, fn, status, needle=""):
    try:
        fn()
    except EngramError as e:
        check(what + f" (HTTP {status})", e.status == status and needle in e.detail and needle in str(e), repr(e))
        return e
    fail(what + ": no EngramError")


def engram_memories(srv, user):
    status, _, text = srv.call("POST", "/v2/memories/", {"filters": {"user_id": user}, "page_size": 1000})
    if status != 200:
        fail("listing engram memories: " + text)
    return json.loads(text)["results"]


def protocol_walk(srv):
    a = EngramBackend(srv.base, user_id="crew-alpha")
    b = EngramBackend(srv.base, user_id="crew-beta")
    check("a fresh user holds nothing", a.count() == 0 and a.list_scopes("/") == [] and a.list_categories() == {})

    # remember(): CrewAI asks for the scopes and categories in use, looks for similar records, then saves
    check("list_scopes on an empty store", a.list_scopes("/") == [])
    check("list_categories on an empty store", a.list_categories(scope_prefix=None) == {})
    check("a consolidation search on an empty store", a.search(embed("launch"), scope_prefix="/project",
                                                              categories=None, limit=5, min_score=0.0) == [])
    old = utcnow() - timedelta(days=40)
    records = [
        rec("The launch date is March 3", "/project/alpha", ["dates", "planning"], {"owner": "ana", "sprint": 4},
            importance=0.9),
        rec("The client wants weekly status reports", "/project/alpha/client", ["process"], {"owner": "bo"}),
        rec("Battery chemistry research uses lithium iron phosphate", "/project/beta", ["research"],
            {"owner": "ana", "tags": ["chem", "lab"]}, source="agent-7", private=True),
        rec("The office is closed on Fridays", "/company", ["process"], {}, created_at=old),
        rec("Alphabet soup is the cafeteria special", "/project/alphabet", ["food"]),
        rec("A memory without embedding kept for listing", "/project/alpha", ["misc"]),
    ]
    records[-1].embedding = None
    a.save(records)
    b.save([rec("The launch date is March 3", "/project/alpha", ["dates"], {"owner": "zed"})])
    ids = [r.id for r in records]

    mems = engram_memories(srv, "crew-alpha")
    check("one engram memory per record, under the backend's user", len(mems) == len(records), len(mems))
    by_run = {m.get("run_id"): m for m in mems}
    check("each memory carries its CrewAI id as run_id", set(by_run) == set(ids), sorted(by_run))
    m0 = by_run[ids[0]]
    check("the text is stored verbatim", m0["memory"] == "The launch date is March 3", m0)
    check("the record's metadata is at the top level",
          m0["metadata"].get("owner") == "ana" and m0["metadata"].get("sprint") == 4, m0["metadata"])
    check("categories are engram's categories", m0["metadata"].get("categories") == ["dates", "planning"], m0)
    check("the scope and its ancestors are kept",
          m0["metadata"]["crewai"]["scope"] == "/project/alpha"
          and m0["metadata"]["crewai"]["scopes"] == ["/", "/project", "/project/alpha"], m0["metadata"]["crewai"])
    old_mem = by_run[ids[3]]
    check("created_at is CrewAI's (the add's timestamp)",
          cb._parse_time(old_mem["created_at"]) == old, old_mem["created_at"])
    check("the same text in another user is its own memory",
          engram_memories(srv, "crew-beta")[0]["metadata"]["owner"] == "zed")

    # get_record round trip
    got = a.get_record(ids[2])
    check("get_record returns every field",
          got is not None and got.content == records[2].content and got.scope == "/project/beta"
          and got.categories == ["research"] and got.metadata == {"owner": "ana", "tags": ["chem", "lab"]}
          and got.source == "agent-7" and got.private is True and got.importance == 0.5
          and got.created_at == records[2].created_at and got.last_accessed == records[2].last_accessed, got)
    check("the embedding comes back (float32)",
          len(got.embedding) == DIM and max(abs(x - y) for x, y in zip(got.embedding, records[2].embedding)) < 1e-6)
    check("get_record of an unknown id is None", a.get_record("no-such-id") is None)
    check("get_record never crosses users", b.get_record(ids[0]) is None)
    try:
        a.save([records[0]])
        fail("saving an id twice must be refused")
    except ValueError as e:
        check("saving a stored id again is refused", ids[0] in str(e), e)

    # recall(): shallow search with scope prefix, categories, limit, min_score
    hits = a.search(embed("when is the launch date"), scope_prefix="/project", categories=None, limit=3,
                    min_score=0.0)
    check("search ranks the closest record first", hits and hits[0][0].id == ids[0], [(h[0].content, h[1]) for h in hits])
    check("search scores are descending cosines in [-1, 1]",
          all(-1.0001 <= s <= 1.0001 for _, s in hits) and [s for _, s in hits] == sorted([s for _, s in hits], reverse=True))
    check("search respects limit", len(a.search(embed("the"), limit=2)) <= 2)
    every = a.search(embed("the launch date is March 3"), limit=50, min_score=-1.0)
    check("a record without embedding is never a search hit", ids[5] not in [r.id for r, _ in every], every)
    check("a search without prefix covers every scope with embeddings", {r.id for r, _ in every} == set(ids[:5]))
    exact = a.search(embed("The launch date is March 3"), limit=1)
    check("an identical embedding scores 1", abs(exact[0][1] - 1.0) < 1e-5, exact)
    in_alpha = {r.id for r, _ in a.search(embed("launch"), scope_prefix="/project/alpha", limit=50, min_score=-1)}
    check("a scope prefix covers the scope and its subscopes, by path component",
          in_alpha == {ids[0], ids[1]}, in_alpha)
    check("a trailing slash changes nothing",
          {r.id for r, _ in a.search(embed("launch"), scope_prefix="/project/alpha/", limit=50, min_score=-1)} == in_alpha)
    by_cat = {r.id for r, _ in a.search(embed("launch"), categories=["process", "research"], limit=50, min_score=-1)}
    check("categories select records filed under any of them", by_cat == {ids[1], ids[2], ids[3]}, by_cat)
    by_meta = {r.id for r, _ in a.search(embed("x"), metadata_filter={"owner": "ana"}, limit=50, min_score=-1)}
    check("metadata_filter requires each key equal", by_meta == {ids[0], ids[2]}, by_meta)
    by_list = {r.id for r, _ in a.search(embed("x"), metadata_filter={"tags": ["chem", "lab"]}, limit=50, min_score=-1)}
    check("metadata_filter compares lists whole", by_list == {ids[2]}, by_list)
    high = a.search(embed("when is the launch date"), limit=50, min_score=0.5)
    check("min_score drops weaker hits", high and all(s >= 0.5 for _, s in high) and len(high) < 5, high)
    check("a search never sees another user's records",
          all(r.id in ids for r, _ in a.search(embed("The launch date is March 3"), limit=50, min_score=-1)))
    try:
        a.search([1.0, 0.0], limit=3)
        fail("a query of another dimension must be refused")
    except cb.EmbeddingDimensionMismatchError as e:
        check("a query of another dimension raises EmbeddingDimensionMismatchError",
              e.stored_dim == DIM and e.new_dim == 2, e)

    # recall() then touches the hits
    before = a.get_record(ids[1]).last_accessed
    a.touch_records([ids[1]])
    after = a.get_record(ids[1])
    check("touch_records moves last_accessed forward", after.last_accessed > before, (before, after.last_accessed))
    check("touch_records keeps the rest", after.content == records[1].content and after.metadata == {"owner": "bo"})

    # Memory.update(): get_record, then update with the changed copy
    current = a.get_record(ids[0])
    changed = current.model_copy(update={"content": "The launch date moved to March 10",
                                         "embedding": embed("The launch date moved to March 10"),
                                         "scope": "/project/gamma", "categories": ["dates"],
                                         "metadata": {"owner": "ana", "moved": True}, "importance": 0.7,
                                         "last_accessed": utcnow()})
    a.update(changed)
    upd = a.get_record(ids[0])
    check("update replaces text, scope, categories, metadata, importance",
          upd.content == "The launch date moved to March 10" and upd.scope == "/project/gamma"
          and upd.categories == ["dates"] and upd.metadata == {"owner": "ana", "moved": True}
          and upd.importance == 0.7, upd)
    check("update keeps created_at", upd.created_at == records[0].created_at, upd.created_at)
    check("update keeps the engram memory (its history has the change)",
          len([m for m in engram_memories(srv, "crew-alpha") if m.get("run_id") == ids[0]]) == 1)
    eid = [m for m in engram_memories(srv, "crew-alpha") if m.get("run_id") == ids[0]][0]["id"]
    _, _, hist = srv.call("GET", f"/memories/{eid}/history")
    check("engram's history records the update", any(h["event"] == "UPDATE" for h in json.loads(hist)), hist)
    check("the scope change moves the record between prefixes",
          ids[0] not in {r.id for r in a.list_records("/project/alpha")}
          and ids[0] in {r.id for r in a.list_records("/project/gamma")})
    check("the updated embedding is searched",
          a.search(embed("launch date moved to March 10"), limit=1)[0][0].id == ids[0])
    fresh = rec("An update of an unknown id stores it", "/notes")
    a.update(fresh)
    check("update of an unknown id saves it", a.get_record(fresh.id) is not None)

    # info / tree / list_records / list_scopes / list_categories / count
    check("list_scopes('/') lists the top scopes", a.list_scopes("/") == ["/company", "/notes", "/project"],
          a.list_scopes("/"))
    check("list_scopes of a nested parent",
          a.list_scopes("/project") == ["/project/alpha", "/project/alphabet", "/project/beta", "/project/gamma"],
          a.list_scopes("/project"))
    check("list_scopes of a leaf is empty", a.list_scopes("/project/beta") == [])
    check("list_scopes of a parent with a deeper child only",
          a.list_scopes("/project/alpha") == ["/project/alpha/client"], a.list_scopes("/project/alpha"))
    info = a.get_scope_info("/project")
    check("get_scope_info counts the subtree", info.record_count == 5 and info.path == "/project", info)
    check("get_scope_info lists its categories",
          info.categories == ["dates", "food", "misc", "process", "research"], info.categories)
    check("get_scope_info lists the child scopes", info.child_scopes == a.list_scopes("/project"))
    root = a.get_scope_info("/")
    check("get_scope_info('/') spans every record, oldest to newest",
          root.record_count == 7 and root.oldest_record == records[3].created_at
          and root.newest_record == max(r.created_at for r in records + [fresh]), root)
    check("get_scope_info of an empty scope", a.get_scope_info("/nowhere").record_count == 0
          and a.get_scope_info("/nowhere").oldest_record is None)
    listed = a.list_records()
    check("list_records is newest first",
          [r.created_at for r in listed] == sorted([r.created_at for r in listed], reverse=True) and len(listed) == 7)
    check("list_records pages with limit and offset",
          [r.id for r in a.list_records(limit=2, offset=1)] == [r.id for r in listed[1:3]])
    check("list_records of a prefix", {r.id for r in a.list_records("/project/alpha")} == {ids[1], ids[5]})
    check("list_categories counts per category",
          a.list_categories() == {"dates": 1, "process": 2, "research": 1, "food": 1, "misc": 1}, a.list_categories())
    check("list_categories under a prefix", a.list_categories("/project/alpha") == {"process": 1, "misc": 1})
    check("count of all and of a prefix", a.count() == 7 and a.count("/project/alpha") == 2 and b.count() == 1)

    # forget(): delete by ids, by categories, by older_than, by metadata, by prefix
    check("delete of no ids deletes nothing", a.delete(record_ids=[]) == 0 and a.count() == 7)
    check("delete by record ids", a.delete(record_ids=[fresh.id, "unknown"]) == 1 and a.get_record(fresh.id) is None)
    check("delete by older_than", a.delete(older_than=utcnow() - timedelta(days=30)) == 1
          and a.get_record(ids[3]) is None)
    check("delete by categories within a prefix",
          a.delete(scope_prefix="/project/alpha", categories=["misc", "food"]) == 1
          and a.get_record(ids[5]) is None and a.get_record(ids[4]) is not None)
    check("delete by metadata_filter", a.delete(metadata_filter={"owner": "bo"}) == 1 and a.get_record(ids[1]) is None)
    check("delete by scope prefix (by path component)",
          a.delete(scope_prefix="/project/alpha") == 0 and a.get_record(ids[4]) is not None)
    check("the other user's records survive", b.count() == 1)

    # async forms
    async def async_walk():
        extra = [rec("Async saved note about deadlines", "/async/one", ["async"]),
                 rec("Another async note", "/async/two", ["async"])]
        await a.asave(extra)
        hits = await a.asearch(embed("note about deadlines"), scope_prefix="/async", categories=["async"], limit=1)
        gone = await a.adelete(scope_prefix="/async/two")
        return extra, hits, gone
    extra, ahits, gone = asyncio.run(async_walk())
    check("asave stores", a.get_record(extra[0].id) is not None)
    check("asearch finds", ahits and ahits[0][0].id == extra[0].id, ahits)
    check("adelete deletes", gone == 1 and a.get_record(extra[1].id) is None)

    # reset(scope) and reset_all()
    a.reset(scope_prefix="/async")
    check("reset of a scope empties it only", a.count("/async") == 0 and a.count("/project") == 3, a.count())
    a.reset(scope_prefix=None)
    check("reset() empties this user", a.count() == 0 and engram_memories(srv, "crew-alpha") == [])
    check("reset() leaves other users alone", b.count() == 1 and b.get_record(b.list_records()[0].id) is not None)
    b.reset()
    check("the other user resets too", b.count() == 0)


def same_text_twice(srv):
    a = EngramBackend(srv.base, user_id="crew-twice")
    one, two = rec("Standup is at 9", "/team/a"), rec("Standup is at 9", "/team/b")
    a.save([one])
    a.save([two])
    check("the same text twice in one user is two records (engram would store it once per exact scope)",
          a.count() == 2 and a.get_record(one.id).scope == "/team/a" and a.get_record(two.id).scope == "/team/b")
    check("each is found by its scope", [r.id for r in a.list_records("/team/b")] == [two.id])
    a.reset()


def paging(srv):
    """Listings, counts and searches read the server's pages until the last one."""
    a = EngramBackend(srv.base, user_id="crew-pages")
    saved_page = cb._PAGE_SIZE
    cb._PAGE_SIZE = 3
    try:
        many = [rec(f"Note number {i} about topic {i % 2}", f"/notes/{i % 2}") for i in range(8)]
        a.save(many)
        check("count over several pages", a.count() == 8 and a.count("/notes/1") == 4)
        check("list_records over several pages", sorted(r.id for r in a.list_records()) == sorted(r.id for r in many))
        check("search over several pages", len(a.search(embed("note"), limit=100, min_score=-1)) == 8)
        check("delete over several pages", a.delete(scope_prefix="/notes") == 8 and a.count() == 0)
    finally:
        cb._PAGE_SIZE = saved_page


def errors(srv):
    a = EngramBackend(srv.base, user_id="crew-errors")
    e = expect_error("the server's refusal of identity metadata is raised with its detail",
                     lambda: a.save([rec("x", "/", metadata={"user_id": "mallory"})]), 400, "user_id")
    check("the error names the method and path", e.method == "POST" and e.path == "/memories", e)
    check("nothing is stored by a refused save", a.count() == 0)
    try:
        a.save([rec("y", "/", metadata={"crewai": 1})])
        fail("a reserved metadata key must be refused")
    except ValueError as err:
        check("a reserved metadata key is refused before anything is sent", "reserved" in str(err) and a.count() == 0)
    try:
        a.save([rec("y", "/"), MemoryRecord(content="z", embedding=[1.0, 2.0])])
        fail("a batch of mixed dimensions must be refused")
    except cb.EmbeddingDimensionMismatchError:
        check("a batch of mixed embedding dimensions is refused", a.count() == 0)
    expect_error("an unreachable server is an EngramError",
                 lambda: EngramBackend("http://127.0.0.1:9", user_id="u", timeout=5).count(), 0, "unreachable")
    try:
        EngramBackend(srv.base, user_id="")
        fail("an empty user id must be refused")
    except ValueError:
        check("an empty user id is refused", True)


def keys(binary, work):
    path = os.path.join(work, "keys")
    with open(path, "w") as f:
        f.write("alice-key-0123456789abcdef user alice\nbob-key-0123456789abcdef user bob\n")
    srv = Server(binary, os.path.join(work, "keys-data"), ["--keys", path])
    try:
        alice = EngramBackend(srv.base, user_id="alice", api_key="alice-key-0123456789abcdef")
        bob = EngramBackend(srv.base, user_id="bob", api_key="bob-key-0123456789abcdef")
        r = rec("Alice's private plan", "/plans")
        alice.save([r])
        check("a bound key saves and reads its user", alice.get_record(r.id).content == "Alice's private plan")
        check("another user's key never sees it", bob.get_record(r.id) is None and bob.count() == 0)
        expect_error("a key bound to another user is forbidden",
                     lambda: EngramBackend(srv.base, user_id="alice", api_key="bob-key-0123456789abcdef").count(),
                     403, "bob")
        expect_error("a wrong key is refused", lambda: EngramBackend(srv.base, user_id="alice", api_key="nope").count(),
                     401)
    finally:
        srv.stop()


def crewai_memory(srv):
    try:
        from crewai.memory.unified_memory import Memory
    except ImportError as e:
        print(f"SKIPPED (part): CrewAI's Memory end to end: the crewai package is not importable ({e})")
        return
    backend = EngramBackend(srv.base, user_id="crew-memory")
    backend.reset()
    # every field given and consolidation off: no LLM call is made (Memory still constructs its LLM object,
    # which may want a key to exist)
    os.environ.setdefault("OPENAI_API_KEY", "unused-no-llm-call-is-made")
    memory = Memory(storage=backend, embedder=embedder, consolidation_threshold=1.0)
    r1 = memory.remember("The launch date is March 3", scope="/project/alpha", categories=["dates"],
                         importance=0.8, metadata={"owner": "ana"})
    memory.remember("Lithium iron phosphate cells", scope="/project/beta", categories=["research"], importance=0.4)
    check("Memory.remember stores through the backend", backend.count() == 2 and backend.get_record(r1.id))
    matches = memory.recall("when is the launch date", scope="/project", limit=1, depth="shallow")
    check("Memory.recall (shallow) finds it", matches and matches[0].record.id == r1.id, matches)
    memory.update(r1.id, content="The launch date is March 10")
    check("Memory.update goes through", backend.get_record(r1.id).content == "The launch date is March 10")
    check("Memory.list_scopes", memory.list_scopes("/project") == ["/project/alpha", "/project/beta"])
    check("Memory.info", memory.info("/project").record_count == 2)
    check("Memory.list_categories", memory.list_categories() == {"dates": 1, "research": 1})
    check("Memory.forget", memory.forget(scope="/project/beta") == 1 and backend.count() == 1)
    memory.reset()
    check("Memory.reset", backend.count() == 0)
    memory.close()


def main():
    if len(sys.argv) != 2:
        fail(__doc__)
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        srv = Server(binary, os.path.join(work, "data"))
        try:
            protocol_walk(srv)
            same_text_twice(srv)
            paging(srv)
            errors(srv)
            crewai_memory(srv)
        finally:
            srv.stop()
        keys(binary, work)
    print("crewai backend: all checks passed")


if __name__ == "__main__":
    main()
