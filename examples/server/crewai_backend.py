#!/usr/bin/env python3
"""CrewAI's unified `Memory` storage (its `StorageBackend` protocol) over engram-server's REST API.

Python standard library only. CrewAI 1.x keeps every memory of a crew in one `Memory` whose storage is any
object with save, search, update, get_record, delete, list_records, get_scope_info, list_scopes,
list_categories, count, reset and the async asave, asearch and adelete. `EngramBackend` is such an object:

    from crewai.memory import Memory
    memory = Memory(storage=EngramBackend("http://127.0.0.1:8888", user_id="research-crew"))

How CrewAI's records live in engram (one engram memory per CrewAI record, stored verbatim: `infer: false`):

- user_id: the crew or application, given at construction. Every call of the backend stays inside it, so two
  backends with different user ids never see each other's records; `reset()` with no scope clears this user,
  never the server. With `--keys`, a key bound to a user forces that user whatever is given here.
- run_id: the CrewAI record id. It gives each record an engram scope of its own, because engram stores a text
  once per exact scope while CrewAI may keep the same text twice (in two scopes, say); it also makes a record
  addressable by its CrewAI id. Engram's own memory id is not shown to CrewAI.
- created_at: CrewAI's `created_at`, sent as the add's `timestamp`, so `older_than` is a server-side filter on
  engram's created_at. CrewAI's datetimes are naive UTC, and records come back that way.
- metadata: the record's own metadata at the top level (so engram's filters and other engram clients see it),
  `categories` (engram's key for them: the server's `categories` field filters on it) and one `crewai` object
  with the hierarchical scope path (`scope`), every ancestor of it (`scopes`: "/project/alpha" is stored with
  ["/", "/project", "/project/alpha"]), importance, last_accessed, source, private and CrewAI's embedding.
  Hence the metadata keys `categories` and `crewai` are reserved (a record using them is refused), and a
  metadata value None is dropped (engram's updates are JSON merge patches, where null removes a key).

Scope prefixes. A prefix "/project/alpha" selects the records of that scope and of its subscopes: the
filter `crewai.scopes contains "/project/alpha"`, evaluated by the server. The match is by path component:
it covers "/project/alpha/notes" but not "/project/alphabet". A prefix of None, "" or "/" selects every
record of the user. Trailing slashes are ignored and a missing leading slash is added.

Search. CrewAI hands the storage only a query embedding from its own embedder (`Memory.recall` embeds the
query text itself; the text never reaches the storage), and each record it saves carries an embedding from
the same embedder. engram-server embeds text with its own model, whose vectors are not comparable with
CrewAI's, and has no route that takes a vector. So the backend stores CrewAI's embedding with the record
(float32, base64, under `crewai.embedding`), lets the server select the candidates (scope prefix,
categories, metadata filter: all server-side filters) and ranks them here by cosine similarity with the
query embedding, the score CrewAI's Qdrant storage reports. What follows:
- a search reads every candidate of the scope prefix over HTTP: its cost grows with the records under that
  prefix; narrow prefixes keep it small. (engram's own /search ranks by text server-side for other clients:
  the records are stored with their text, so engram's search, dashboard and MCP tools find them too.)
- a record saved without an embedding cannot be ranked and is never a search result (it is listed, counted
  and deleted like any other).
- a query embedding of another dimension than a stored one raises EmbeddingDimensionMismatchError (CrewAI's,
  when crewai is importable).
- the embedding is kept with float32 precision, and must fit engram's metadata limit (64 KiB per memory:
  up to about 12,000 dimensions).

Deletion. `delete` removes the records matching every criterion given (scope prefix, categories: any of
them, record ids, older_than: created before, metadata_filter: each key equal); with no criterion it
removes every record of this user. `update` replaces the record with the same id through engram's update
(the text re-embedded by the server, the metadata patched to equal the new record's) so engram keeps its
history; a record that does not exist yet is saved, and one whose created_at changed is deleted and added
again (engram sets created_at only when a memory is added).

Access. `touch_records` (CrewAI's Memory calls it after a recall, when the storage has it) sets
last_accessed with one engram update per record: engram's history of each memory records those updates.

Every non-2xx answer raises EngramError with the server's `detail`, HTTP status, method and path (status 0:
the server could not be reached). The HTTP call and EngramError come from crewai_storage.py beside this
file: keep the two files together.
Run `python3 crewai_backend.py --self-test URL` against a running engram-server for a short check.
"""
import asyncio
import base64
import math
import os
import sys
import urllib.parse
import uuid
from array import array
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

try:  # the HTTP call and its error, shared with crewai_storage.py beside this file
    from crewai_storage import EngramError, request
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from crewai_storage import EngramError, request

try:  # CrewAI's own types when it is installed, so that Memory gets the records it expects
    from crewai.memory.storage.backend import EmbeddingDimensionMismatchError
    from crewai.memory.types import MemoryRecord, ScopeInfo
except ImportError:

    class EmbeddingDimensionMismatchError(ValueError):
        """A query or record embedding whose dimension differs from the records already stored."""

        def __init__(self, stored_dim, new_dim):
            self.stored_dim = stored_dim
            self.new_dim = new_dim
            super().__init__(f"embedding dimension mismatch: the store holds {stored_dim}-dimensional vectors, "
                             f"this one has {new_dim}")

    def _utcnow():
        return datetime.now(timezone.utc).replace(tzinfo=None)

    @dataclass
    class MemoryRecord:
        """The fields of CrewAI's MemoryRecord, for use without crewai installed."""
        content: str
        id: str = field(default_factory=lambda: str(uuid.uuid4()))
        scope: str = "/"
        categories: list = field(default_factory=list)
        metadata: dict = field(default_factory=dict)
        importance: float = 0.5
        created_at: datetime = field(default_factory=_utcnow)
        last_accessed: datetime = field(default_factory=_utcnow)
        embedding: list = None
        source: str = None
        private: bool = False

        def model_copy(self, update=None):
            return replace(self, **(update or {}))

    @dataclass
    class ScopeInfo:
        """The fields of CrewAI's ScopeInfo, for use without crewai installed."""
        path: str
        record_count: int = 0
        categories: list = field(default_factory=list)
        oldest_record: datetime = None
        newest_record: datetime = None
        child_scopes: list = field(default_factory=list)


RESERVED_METADATA_KEYS = ("categories", "crewai")
_PAGE_SIZE = 500


# ---- scope paths -------------------------------------------------------------------------------------------

def normalize_scope(path):
    """"/a/b/" -> "/a/b", "a" -> "/a", None, "" and "/" -> "/" (empty components are dropped)."""
    parts = [p for p in str(path or "").split("/") if p]
    return "/" + "/".join(parts)


def scope_ancestors(path):
    """Every scope a record of `path` belongs to: "/a/b" -> ["/", "/a", "/a/b"]."""
    parts = [p for p in normalize_scope(path).split("/") if p]
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


# ---- values ------------------------------------------------------------------------------------------------

def _utc_naive(dt):
    """A datetime as naive UTC (CrewAI's convention); naive input is taken as UTC already."""
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def _iso(dt):
    return _utc_naive(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text):
    if not text:
        return None
    return _utc_naive(datetime.fromisoformat(str(text).replace("Z", "+00:00")))


def encode_embedding(vector):
    """float32, little-endian, base64."""
    a = array("f", (float(x) for x in vector))
    if sys.byteorder != "little":
        a.byteswap()
    return base64.b64encode(a.tobytes()).decode("ascii")


def decode_embedding(text):
    a = array("f")
    a.frombytes(base64.b64decode(text))
    if sys.byteorder != "little":
        a.byteswap()
    return a.tolist()


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def merge_patch(old, new):
    """The JSON merge patch (RFC 7396) that turns object `old` into object `new`."""
    patch = {k: None for k in old if k not in new}
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(old.get(k), dict):
            sub = merge_patch(old[k], v)
            if sub:
                patch[k] = sub
        elif k not in old or old[k] != v:
            patch[k] = v
    return patch


def _check_metadata_keys(metadata, what):
    for key in metadata or {}:
        if key in RESERVED_METADATA_KEYS or str(key).startswith("crewai."):
            raise ValueError(f"{what}: the metadata key '{key}' is reserved by the engram backend "
                             f"(it keeps {', '.join(RESERVED_METADATA_KEYS)} for itself)")


class EngramBackend:
    """CrewAI's StorageBackend over engram-server: every record of this object lives under one engram user."""

    def __init__(self, base_url="http://127.0.0.1:8888", user_id="crewai", api_key=None, timeout=30):
        if not user_id:
            raise ValueError("user_id is required: it keeps this crew's records apart from every other user's")
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self.api_key = api_key
        self.timeout = timeout

    # ---- HTTP ----------------------------------------------------------------------------------------------

    def _request(self, method, path, body=None, query=None):
        if query:
            path = path + "?" + urllib.parse.urlencode(query)
        return request(self.base_url, method, path, body, self.api_key, self.timeout)

    def _filters(self, scope_prefix=None, record_ids=None, older_than=None, metadata_filter=None):
        """The server-side filter tree for these criteria, always inside this backend's user."""
        conds = [{"user_id": self.user_id}]
        prefix = normalize_scope(scope_prefix)
        if prefix != "/":
            conds.append({"crewai.scopes": {"contains": prefix}})
        if record_ids is not None:
            conds.append({"run_id": {"in": [str(i) for i in record_ids]}})
        if older_than is not None:
            conds.append({"created_at": {"lt": _iso(older_than)}})
        if metadata_filter:
            _check_metadata_keys(metadata_filter, "metadata_filter")
            for k, v in metadata_filter.items():
                # as CrewAI's own storages compare: metadata.get(k) == v (None: the key absent or null)
                conds.append({"NOT": {k: "*"}} if v is None else {k: {"eq": v}})
        return {"AND": conds}

    def _engram_records(self, filters, categories=None):
        """Every engram memory matching `filters` (and any of `categories`), page by page."""
        out, page = [], 1
        while True:
            body = {"filters": filters, "page": page, "page_size": _PAGE_SIZE}
            if categories:
                body["categories"] = list(categories)
            answer = self._request("POST", "/v2/memories/", body)
            out.extend(answer["results"])
            if len(answer["results"]) < _PAGE_SIZE or len(out) >= answer["count"]:
                return out
            page += 1

    def _count(self, filters):
        return int(self._request("POST", "/v2/memories/", {"filters": filters, "page": 1, "page_size": 1})["count"])

    # ---- records -------------------------------------------------------------------------------------------

    def _metadata_of(self, record):
        _check_metadata_keys(record.metadata, "record " + str(record.id))
        meta = _without_none(dict(record.metadata or {}))
        crewai = {
            "scope": record.scope,
            "scopes": scope_ancestors(record.scope),
            "importance": float(record.importance),
            "last_accessed": _iso(record.last_accessed),
            "private": bool(record.private),
        }
        if record.source is not None:
            crewai["source"] = record.source
        if record.embedding:
            crewai["embedding"] = encode_embedding(record.embedding)
            crewai["embedding_dim"] = len(record.embedding)
        meta["categories"] = list(record.categories or [])
        meta["crewai"] = crewai
        return meta

    @staticmethod
    def _record_of(mem):
        meta = dict(mem.get("metadata") or {})
        crewai = meta.pop("crewai", None) or {}
        categories = meta.pop("categories", None) or []
        embedding = crewai.get("embedding")
        return MemoryRecord(
            id=mem["run_id"],
            content=mem["memory"],
            scope=crewai.get("scope", "/"),
            categories=list(categories),
            metadata=meta,
            importance=float(crewai.get("importance", 0.5)),
            created_at=_parse_time(mem.get("created_at")),
            last_accessed=_parse_time(crewai.get("last_accessed") or mem.get("updated_at")),
            embedding=decode_embedding(embedding) if embedding else None,
            source=crewai.get("source"),
            private=bool(crewai.get("private", False)),
        )

    def _add(self, record):
        body = {"messages": [{"role": "user", "content": record.content}], "user_id": self.user_id,
                "run_id": str(record.id), "metadata": self._metadata_of(record), "infer": False,
                "timestamp": _iso(record.created_at)}
        events = self._request("POST", "/memories", body)["results"]
        if len(events) != 1 or events[0].get("event") != "ADD":
            raise EngramError("POST", "/memories", 200,
                                     f"record {record.id} was not stored as one new memory: {events}")

    def _find(self, record_ids):
        return self._engram_records(self._filters(record_ids=record_ids))

    # ---- the StorageBackend protocol ----------------------------------------------------------------------

    def save(self, records):
        """Stores each record as one engram memory (its text verbatim); an id already stored is refused."""
        records = list(records)
        dims = {len(r.embedding) for r in records if r.embedding}
        if len(dims) > 1:
            raise EmbeddingDimensionMismatchError(*sorted(dims)[:2])
        for r in records:
            self._metadata_of(r)  # refuse reserved metadata keys before anything is stored
        if records:
            taken = self._find([r.id for r in records])
            if taken:
                raise ValueError("records already stored (use update): " + ", ".join(m["run_id"] for m in taken))
        for r in records:
            self._add(r)

    def search(self, query_embedding, scope_prefix=None, categories=None, metadata_filter=None, limit=10,
               min_score=0.0):
        """(record, cosine similarity) pairs, best first: the records under `scope_prefix` filed under any of
        `categories` and matching `metadata_filter`, ranked here against their stored CrewAI embeddings."""
        if not query_embedding:
            raise ValueError("search needs a query embedding (CrewAI's embedder produced none)")
        query = [float(x) for x in query_embedding]
        scored = []
        for mem in self._engram_records(self._filters(scope_prefix, metadata_filter=metadata_filter), categories):
            record = self._record_of(mem)
            if not record.embedding:
                continue
            if len(record.embedding) != len(query):
                raise EmbeddingDimensionMismatchError(len(record.embedding), len(query))
            score = cosine(query, record.embedding)
            if score >= min_score:
                scored.append((record, score))
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return scored[:max(0, int(limit))]

    def delete(self, scope_prefix=None, categories=None, record_ids=None, older_than=None, metadata_filter=None):
        """Removes the records matching every criterion given (all of this user's with none); returns how many."""
        if record_ids is not None and not record_ids:
            return 0
        if all(x is None for x in (categories, record_ids, older_than, metadata_filter)) and \
                normalize_scope(scope_prefix) == "/":
            return int(self._request("DELETE", "/memories", query={"user_id": self.user_id}).get("deleted", 0))
        victims = self._engram_records(self._filters(scope_prefix, record_ids, older_than, metadata_filter),
                                       categories)
        deleted = 0
        for mem in victims:
            try:
                self._request("DELETE", "/memories/" + urllib.parse.quote(mem["id"], safe=""))
                deleted += 1
            except EngramError as e:
                if e.status != 404:  # removed meanwhile by someone else: not ours to count
                    raise
        return deleted

    def update(self, record):
        """Replaces the record with the same id (saves it when there is none)."""
        found = self._find([record.id])
        if not found:
            self.save([record])
            return
        mem = found[0]
        old = self._record_of(mem)
        if old.created_at != _utc_naive(record.created_at):
            self._request("DELETE", "/memories/" + urllib.parse.quote(mem["id"], safe=""))
            self._add(record)
            return
        if old.embedding and record.embedding and len(old.embedding) != len(record.embedding):
            raise EmbeddingDimensionMismatchError(len(old.embedding), len(record.embedding))
        body = {"metadata": merge_patch(mem.get("metadata") or {}, self._metadata_of(record))}
        if record.content != mem["memory"]:
            body["text"] = record.content
        if body["metadata"] or "text" in body:
            self._request("PUT", "/memories/" + urllib.parse.quote(mem["id"], safe=""), body)

    def touch_records(self, record_ids):
        """Sets last_accessed to now (CrewAI calls it after a recall when the storage has it)."""
        now = _iso(datetime.now(timezone.utc))
        for mem in self._find(list(record_ids)) if record_ids else []:
            self._request("PUT", "/memories/" + urllib.parse.quote(mem["id"], safe=""),
                          {"metadata": {"crewai": {"last_accessed": now}}})

    def get_record(self, record_id):
        found = self._find([record_id])
        return self._record_of(found[0]) if found else None

    def list_records(self, scope_prefix=None, limit=200, offset=0):
        """The records under `scope_prefix`, newest first, `offset` skipped, at most `limit`."""
        records = [self._record_of(m) for m in self._engram_records(self._filters(scope_prefix))]
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[max(0, int(offset)):max(0, int(offset)) + max(0, int(limit))]

    def _scoped(self, scope):
        return [self._record_of(m) for m in self._engram_records(self._filters(scope))]

    @staticmethod
    def _children(records, parent):
        parent = normalize_scope(parent)
        depth = 0 if parent == "/" else parent.count("/")
        children = set()
        for r in records:
            chain = scope_ancestors(r.scope)
            if len(chain) > depth + 1 and chain[depth] == parent:
                children.add(chain[depth + 1])
        return sorted(children)

    def get_scope_info(self, scope):
        path = normalize_scope(scope)
        records = self._scoped(path)
        created = [r.created_at for r in records]
        return ScopeInfo(path=path, record_count=len(records),
                         categories=sorted({c for r in records for c in r.categories}),
                         oldest_record=min(created) if created else None,
                         newest_record=max(created) if created else None,
                         child_scopes=self._children(records, path))

    def list_scopes(self, parent="/"):
        """The immediate child scopes of `parent` that hold records (at any depth below them)."""
        return self._children(self._scoped(parent), parent)

    def list_categories(self, scope_prefix=None):
        counts = {}
        for r in self._scoped(scope_prefix):
            for c in r.categories:
                counts[c] = counts.get(c, 0) + 1
        return counts

    def count(self, scope_prefix=None):
        return self._count(self._filters(scope_prefix))

    def reset(self, scope_prefix=None):
        """Forgets the records under `scope_prefix` (None or "/": every record of this user, nobody else's)."""
        self.delete(scope_prefix=scope_prefix)

    async def asave(self, records):
        await asyncio.to_thread(self.save, records)

    async def asearch(self, query_embedding, scope_prefix=None, categories=None, metadata_filter=None, limit=10,
                      min_score=0.0):
        return await asyncio.to_thread(self.search, query_embedding, scope_prefix, categories, metadata_filter,
                                       limit, min_score)

    async def adelete(self, scope_prefix=None, categories=None, record_ids=None, older_than=None,
                      metadata_filter=None):
        return await asyncio.to_thread(self.delete, scope_prefix, categories, record_ids, older_than,
                                       metadata_filter)


def self_test(url):
    a = EngramBackend(url, user_id="crewai-backend-self-test-a")
    b = EngramBackend(url, user_id="crewai-backend-self-test-b")
    a.reset()
    b.reset()
    a.save([MemoryRecord(content="The launch is on March 3", scope="/project/alpha", categories=["dates"],
                         embedding=[1.0, 0.0, 0.0]),
            MemoryRecord(content="Weekly status reports", scope="/project/beta", embedding=[0.0, 1.0, 0.0])])
    b.save([MemoryRecord(content="Crew B's note", scope="/project/alpha", embedding=[1.0, 0.0, 0.0])])
    hits = a.search([0.9, 0.1, 0.0], scope_prefix="/project", limit=1)
    assert [h[0].content for h in hits] == ["The launch is on March 3"], hits
    assert a.list_scopes("/project") == ["/project/alpha", "/project/beta"]
    assert a.count() == 2 and b.count() == 1
    a.reset()
    b.reset()
    assert a.count() == 0
    print("crewai backend self-test ok")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--self-test":
        self_test(sys.argv[2])
    else:
        print(__doc__)
