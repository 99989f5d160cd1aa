#!/usr/bin/env python3
"""Checks that include/ keeps the layout the architecture asks for.

  tests/check_layout.py [ROOT]

- no header over 650 lines; the front end (engram/memory.hpp) at most 700;
- no include cycle among engram's headers;
- a header under engram/detail/ includes only detail/ headers or the core vocabulary at the top of engram/;
- no const_cast in the memory front end and its parts (engram/memory.hpp, engram/memory/).
Prints every violation and exits 1 when there is one.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
INCLUDE = ROOT / "include"
HEADER_LIMIT = 650
FRONT_END = "engram/memory.hpp"
FRONT_END_LIMIT = 700
CORE_VOCABULARY = {f"engram/{n}.hpp" for n in
                   ("record", "scope", "error", "ids", "write_batch", "json", "time", "uuid", "version", "fwd")}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*<(engram/[^>]+)>', re.M)

headers = {p.relative_to(INCLUDE).as_posix(): p for p in sorted(INCLUDE.rglob("*.hpp"))}
graph = {h: INCLUDE_RE.findall(p.read_text()) for h, p in headers.items()}
problems = []

for h, p in headers.items():
    lines = len(p.read_text().splitlines())
    limit = FRONT_END_LIMIT if h == FRONT_END else HEADER_LIMIT
    if lines > limit:
        problems.append(f"{h}: {lines} lines (at most {limit})")
    for inc in graph[h]:
        if inc not in headers:
            problems.append(f"{h}: includes <{inc}>, which does not exist")
        elif h.startswith("engram/detail/") and not inc.startswith("engram/detail/") and inc not in CORE_VOCABULARY:
            problems.append(f"{h}: a detail/ header includes <{inc}> (only detail/ and the core vocabulary)")
    if (h == FRONT_END or h.startswith("engram/memory/")) and "const_cast" in p.read_text():
        problems.append(f"{h}: uses const_cast")

# cycles: depth-first search, reporting each cycle once by its path
state = {}
def visit(h, path):
    state[h] = "open"
    for inc in graph.get(h, []):
        if inc not in headers:
            continue
        if state.get(inc) == "open":
            cycle = path[path.index(inc):] + [inc]
            problems.append("include cycle: " + " -> ".join(cycle))
        elif inc not in state:
            visit(inc, path + [inc])
    state[h] = "done"

for h in headers:
    if h not in state:
        visit(h, [h])

if problems:
    print("\n".join(problems))
    print(f"layout: {len(problems)} problem(s) in {len(headers)} headers")
    sys.exit(1)
print(f"layout: {len(headers)} headers, none over {HEADER_LIMIT} lines ({FRONT_END}: at most {FRONT_END_LIMIT}), "
      "no include cycle, detail/ includes only detail/ and the core vocabulary, no const_cast in the memory")
