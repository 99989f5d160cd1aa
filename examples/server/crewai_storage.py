#!/usr/bin/env python3
"""A CrewAI memory Storage backed by engram-server (Python standard library only).

CrewAI's storage interface is three methods: save(value, metadata), search(query, limit, score_threshold)
and reset(). Plug it into a crew, for example:

    from crewai.memory.short_term.short_term_memory import ShortTermMemory
    memory = ShortTermMemory(storage=EngramStorage("http://127.0.0.1:8888", user_id="crew-42"))

Run `python3 crewai_storage.py --self-test URL` against a running engram-server to exercise it.
"""
import json
import sys
import urllib.error
import urllib.request


class EngramError(RuntimeError):
    """engram-server answered with an error status (or could not be reached: status 0); `detail` is the server's."""

    def __init__(self, method, path, status, detail):
        self.method, self.path, self.status, self.detail = method, path, status, detail
        super().__init__(f"{method} {path}: HTTP {status}: {detail}")


def request(base_url, method, path, body=None, api_key=None, timeout=10):
    """One call of engram-server's REST API: the answer's JSON, or EngramError."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if api_key:
        req.add_header("Authorization", "Token " + api_key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            detail = json.loads(raw).get("detail", "")
        except (ValueError, AttributeError):
            detail = raw.decode("utf-8", "replace")
        raise EngramError(method, path, e.code, detail) from None
    except urllib.error.URLError as e:
        raise EngramError(method, path, 0, f"engram-server unreachable: {e.reason}") from None


class EngramStorage:
    def __init__(self, base_url="http://127.0.0.1:8888", user_id="crewai", agent_id=None, api_key=None, timeout=10):
        self.base_url = base_url.rstrip("/")
        self.scope = {"user_id": user_id}
        if agent_id:
            self.scope["agent_id"] = agent_id
        self.api_key = api_key
        self.timeout = timeout

    def _call(self, method, path, body=None):
        return request(self.base_url, method, path, body, self.api_key, self.timeout)

    def save(self, value, metadata=None):
        """Remembers `value` (stored as said, no extraction) with CrewAI's metadata."""
        body = dict(self.scope, messages=[{"role": "user", "content": str(value)}],
                    metadata=metadata or {}, infer=False)
        return self._call("POST", "/memories", body)

    def search(self, query, limit=3, score_threshold=0.35):
        """The closest memories, as CrewAI expects them: dicts with id, context, metadata and score."""
        body = dict(self.scope, query=query, top_k=limit, threshold=score_threshold)
        hits = self._call("POST", "/search", body)["results"]
        return [{"id": h["id"], "context": h["memory"], "memory": h["memory"],
                 "metadata": h.get("metadata", {}), "score": h["score"]} for h in hits]

    def reset(self):
        """Forgets everything of this storage's scope (never other scopes)."""
        self._call("DELETE", "/memories?" + "&".join(f"{k}={v}" for k, v in self.scope.items()))


def self_test(url):
    a = EngramStorage(url, user_id="crew-a")
    b = EngramStorage(url, user_id="crew-b")
    a.reset()
    b.reset()
    a.save("The client prefers weekly status reports", {"agent": "planner", "quality": 8})
    a.save("The deadline for the launch is March 3rd", {"agent": "planner"})
    b.save("Crew B researches battery chemistry", {})
    hits = a.search("when is the launch deadline?", limit=2, score_threshold=0.0)
    assert hits and hits[0]["context"] == "The deadline for the launch is March 3rd", hits
    assert hits[0]["metadata"]["agent"] == "planner"
    assert all("battery" not in h["context"] for h in a.search("battery chemistry", 5, 0.0)), "scope leak"
    a.reset()
    assert a.search("deadline", 5, 0.0) == []
    assert b.search("battery", 1, 0.0)[0]["context"] == "Crew B researches battery chemistry"
    try:
        EngramStorage(url, user_id="").save("no scope")
        raise AssertionError("a save without scope must fail")
    except EngramError as e:
        assert "400" in str(e)
    print("crewai storage self-test ok")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--self-test":
        self_test(sys.argv[2])
    else:
        print(__doc__)
