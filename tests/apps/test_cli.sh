#!/usr/bin/env bash
# Drives the `engram` command: outputs, exit codes, persistence across invocations, import/export round trip.
set -u
bin=$1
fake=${2:-}  # fake-provider (a loopback OpenAI-compatible server), when built with cpp-httplib
dir=$(mktemp -d)
fake_pid=""
trap '[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null; rm -rf "$dir"' EXIT
export ENGRAM_DIR="$dir/data"
unset ENGRAM_EMBEDDER ENGRAM_BASE_URL ENGRAM_EMBED_MODEL ENGRAM_EXTRACTOR ENGRAM_LLM_MODEL ENGRAM_LLM_BASE_URL ENGRAM_WORDNET OPENAI_API_KEY ENGRAM_API_KEY_FILE
fails=0 passes=0
check() {  # check NAME EXPECTED_EXIT COMMAND...  (stdout in $out, stderr in $err)
  local name=$1 want=$2
  shift 2
  out=$("$@" 2>"$dir/err"); local got=$?
  err=$(cat "$dir/err")
  if [ "$got" != "$want" ]; then
    echo "FAIL $name: exit $got, expected $want"; echo "  stdout: $out"; echo "  stderr: $err"; fails=$((fails + 1))
  else
    passes=$((passes + 1))
  fi
}
contains() {  # contains NAME HAYSTACK NEEDLE
  if [[ "$2" != *"$3"* ]]; then echo "FAIL $1: output lacks '$3':"; echo "$2"; fails=$((fails + 1)); else passes=$((passes + 1)); fi
}

check "add" 0 "$bin" add "I keep bees in the garden" --user-id alice --metadata '{"topic":"hobby"}'
contains "add prints the event" "$out" "ADD"
check "add json" 0 "$bin" --output json add "I drink green tea" --user-id alice
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])' <<<"$out")
check "add from stdin" 0 "$bin" add - --user-id bob <<<"I fly kites"
check "add needs a scope" 2 "$bin" add "orphan"
contains "scope error says what" "$err" "user_id"
check "bad metadata" 2 "$bin" add "x" --user-id alice --metadata '{oops'
check "unknown command" 2 "$bin" frobnicate
check "unknown option" 2 "$bin" list --colour
check "bad limit" 2 "$bin" search tea --user-id alice --limit many

check "search persists across runs" 0 "$bin" search "tea" --user-id alice --limit 1
contains "search finds tea" "$out" "I drink green tea"
check "search json" 0 "$bin" --output json search "kites" --user-id bob
contains "search json has score" "$out" '"score"'
check "scope wall" 0 "$bin" --output json search "kites" --user-id alice
[[ "$out" != *kites* ]] && passes=$((passes + 1)) || { echo "FAIL scope wall: alice sees bob's kites"; fails=$((fails + 1)); }
check "search with filters" 0 "$bin" --output json search "garden tea" --user-id alice --filters '{"topic":"hobby"}'
contains "filter keeps the hobby" "$out" "bees"
[[ "$out" != *"green tea"* ]] && passes=$((passes + 1)) || { echo "FAIL filters: tea has no topic"; fails=$((fails + 1)); }
check "bad filter" 2 "$bin" search tea --user-id alice --filters '{"topic":{"$near":1}}'
contains "bad filter names the operator" "$err" "near"
check "list all" 0 "$bin" list
contains "list shows bob" "$out" "user:bob"
check "get" 0 "$bin" --output json get "$id"
contains "get json" "$out" '"memory": "I drink green tea"'
check "get unknown" 1 "$bin" get 00000000-0000-4000-8000-000000000000
check "update" 0 "$bin" update "$id" "I drink oolong tea"
check "history" 0 "$bin" history "$id"
contains "history shows update" "$out" "UPDATE"
check "delete --all dry run" 0 "$bin" delete --all --user-id alice --dry-run
contains "dry run counts" "$out" "would delete 2"
check "delete --all needs a scope" 2 "$bin" delete --all
check "delete" 0 "$bin" delete "$id"
check "delete again" 1 "$bin" delete "$id"
check "stats" 0 "$bin" --output json stats
contains "stats counts" "$out" '"memories": 2'
contains "stats store size" "$out" '"store_bytes"'
# export / import round trip, and a 10k-line import
check "export" 0 "$bin" export
printf '%s\n' "$out" > "$dir/all.jsonl"
contains "export has records" "$out" "I keep bees"
check "export one scope" 0 "$bin" export --user-id bob --no-vectors
contains "scoped export has bob" "$out" "I fly kites"
[[ "$out" != *bees* ]] && passes=$((passes + 1)) || { echo "FAIL scoped export leaks alice"; fails=$((fails + 1)); }
before=$("$bin" --output json list)
check "import into a fresh directory" 0 "$bin" --data "$dir/copy" import "$dir/all.jsonl"
after=$("$bin" --data "$dir/copy" --output json list)
[ "$before" = "$after" ] && passes=$((passes + 1)) || { echo "FAIL round trip differs"; diff <(echo "$before") <(echo "$after") | head; fails=$((fails + 1)); }
check "search the imported copy" 0 "$bin" --data "$dir/copy" search "kites" --user-id bob --limit 1
contains "imported copy searchable" "$out" "I fly kites"
python3 - "$dir/big.jsonl" <<'PY'
import json, sys, uuid
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        f.write(json.dumps({"type": "memory", "id": str(uuid.uuid4()), "memory": f"note number {i} about topic {i % 97}",
                            "user_id": f"user{i % 10}", "created_at": "2024-05-01T12:00:00Z"}) + "\n")
PY
check "import 10k lines (embedded on open)" 0 "$bin" --data "$dir/big" import "$dir/big.jsonl"
contains "10k imported" "$out" "imported 10000 memories"
check "10k searchable" 0 "$bin" --data "$dir/big" --output json search "topic 42" --user-id user2 --limit 1
contains "10k search finds" "$out" "topic 42"
printf '{"type":"memory","id":"x"\n' > "$dir/bad.jsonl"
check "malformed import is rejected" 2 "$bin" --data "$dir/bad" import "$dir/bad.jsonl"
contains "malformed import names the line" "$err" "line 1"
check "reset needs --force" 2 "$bin" reset
check "reset" 0 "$bin" reset --force
check "empty after reset" 0 "$bin" --output json list
contains "nothing left" "$out" '"results": []'

lacks() {  # lacks NAME HAYSTACK NEEDLE
  if [[ "$2" == *"$3"* ]]; then echo "FAIL $1: output has '$3':"; echo "$2"; fails=$((fails + 1)); else passes=$((passes + 1)); fi
}

# ---- ranking: modes, explain, expiry (own data directory) ----
R=(--data "$dir/rank")
check "rank: add" 0 "$bin" "${R[@]}" add "The wifi password is zebra42" --user-id carol
check "rank: add 2" 0 "$bin" "${R[@]}" add "Carol likes long walks on the beach" --user-id carol
check "rank: add expired" 0 "$bin" "${R[@]}" --output json add "Carol's old flat was on Rua Augusta" --user-id carol --expires 2000-01-01
old_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])' <<<"$out")
check "rank: keyword mode" 0 "$bin" "${R[@]}" --output json search "zebra42" --user-id carol --mode keyword
contains "keyword finds the rare token" "$out" "zebra42"
lacks "keyword mode finds only keyword matches" "$out" "walks"
check "rank: semantic mode" 0 "$bin" "${R[@]}" --output json search "walks beach" --user-id carol --mode semantic --limit 1
contains "semantic finds" "$out" "long walks"
check "rank: bad mode" 2 "$bin" "${R[@]}" search "x" --user-id carol --mode fuzzy
contains "bad mode names it" "$err" "fuzzy"
check "rank: explain json" 0 "$bin" "${R[@]}" --output json search "wifi password zebra42" --user-id carol --explain
python3 - "$out" <<'PY' && passes=$((passes + 1)) || { echo "FAIL explain: score_details missing or not summing"; fails=$((fails + 1)); }
import json, sys
hits = json.loads(sys.argv[1])["results"]
assert hits and all("score_details" in h for h in hits), hits
for h in hits:
    d = h["score_details"]
    parts = d["semantic"] + d["keyword"] + d["recency"] + d["importance"] + d["access"]
    assert abs(parts - d["final"]) < 1e-4 and abs(d["final"] - h["score"]) < 1e-4, h
assert "zebra42" in hits[0]["memory"]
PY
check "rank: explain text" 0 "$bin" "${R[@]}" search "zebra42" --user-id carol --explain
contains "explain table has parts" "$out" "SEMANTIC"
check "rank: important memory" 0 "$bin" "${R[@]}" add "Carol walks the dog daily" --user-id carol --metadata '{"importance": 1}'
check "rank: weights" 0 "$bin" "${R[@]}" --output json search "Carol walks" --user-id carol --explain --weights '{"importance": 2}'
python3 - "$out" <<'PY' && passes=$((passes + 1)) || { echo "FAIL weights: importance did not rank"; fails=$((fails + 1)); }
import json, sys
hits = json.loads(sys.argv[1])["results"]
assert hits[0]["memory"] == "Carol walks the dog daily", hits
assert abs(hits[0]["score_details"]["importance"] - 2.0) < 1e-4, hits[0]
assert all(h["score_details"]["importance"] == 0 for h in hits[1:]), hits
PY
check "rank: unknown weight" 2 "$bin" "${R[@]}" search "x" --user-id carol --weights '{"gravity": 1}'
contains "unknown weight named" "$err" "gravity"
check "rank: negative weight" 2 "$bin" "${R[@]}" search "x" --user-id carol --weights '{"recency": -1}'
check "rank: weights not JSON" 2 "$bin" "${R[@]}" search "x" --user-id carol --weights '{recency'
check "rank: no explain, no details" 0 "$bin" "${R[@]}" --output json search "zebra42" --user-id carol
lacks "no score_details unasked" "$out" "score_details"
check "rank: expired hidden from search" 0 "$bin" "${R[@]}" --output json search "Rua Augusta flat" --user-id carol
lacks "expired not found" "$out" "Rua Augusta"
check "rank: expired hidden from list" 0 "$bin" "${R[@]}" --output json list --user-id carol
lacks "expired not listed" "$out" "Rua Augusta"
check "rank: --show-expired search" 0 "$bin" "${R[@]}" --output json search "Rua Augusta flat" --user-id carol --show-expired
contains "show-expired finds it" "$out" "Rua Augusta"
check "rank: --show-expired list" 0 "$bin" "${R[@]}" --output json list --user-id carol --show-expired
contains "show-expired lists it" "$out" '"expiration_date": "2000-01-01"'
check "rank: bad expiry date" 2 "$bin" "${R[@]}" add "x" --user-id carol --expires 2024-02-30
contains "bad date named" "$err" "2024-02-30"
check "rank: --expires and --clear-expiry conflict" 2 "$bin" "${R[@]}" update "$old_id" --expires 2030-01-01 --clear-expiry
check "rank: clear expiry" 0 "$bin" "${R[@]}" update "$old_id" --clear-expiry
check "rank: visible again" 0 "$bin" "${R[@]}" --output json search "Rua Augusta flat" --user-id carol
contains "cleared expiry visible" "$out" "Rua Augusta"
check "rank: set a future expiry" 0 "$bin" "${R[@]}" update "$old_id" --expires 2999-12-31
check "rank: get shows it" 0 "$bin" "${R[@]}" --output json get "$old_id"
contains "expiry recorded" "$out" '"expiration_date": "2999-12-31"'
contains "text kept by an expiry-only update" "$out" "Rua Augusta"
check "rank: expire it now" 0 "$bin" "${R[@]}" update "$old_id" --expires 2001-01-01
check "rank: hidden again" 0 "$bin" "${R[@]}" --output json list --user-id carol
lacks "re-expired hidden" "$out" "Rua Augusta"

# ---- provider settings: misconfigurations are usage errors, whatever the command ----
check "providers: unknown embedder" 2 "$bin" "${R[@]}" --embedder word2vec list
contains "unknown embedder named" "$err" "word2vec"
check "providers: openai without a base URL" 2 "$bin" "${R[@]}" --embedder openai list
contains "missing base url said" "$err" "--base-url"
check "providers: llm extractor without a model" 2 "$bin" "${R[@]}" --extractor llm list
contains "missing llm model said" "$err" "--llm-model"
check "providers: unknown extractor" 2 "$bin" "${R[@]}" --extractor magic list
check "providers: bad dimensions" 2 "$bin" "${R[@]}" --dimensions many list
check "providers: --llm-includes needs the llm extractor" 2 "$bin" "${R[@]}" --llm-includes food list
contains "prompt flag refused, not ignored" "$err" "needs --extractor llm"
check "providers: a missing prompt file" 2 "$bin" "${R[@]}" --extractor llm --llm-model m --base-url http://127.0.0.1:9/v1 \
  --llm-fact-prompt-file "$dir/no-such-prompt" list
check "providers: bad llm mode" 2 "$bin" "${R[@]}" --extractor llm --llm-model m --base-url http://127.0.0.1:9/v1 --llm-mode eager list
check "providers: bad url" 2 "$bin" "${R[@]}" --embedder openai --base-url localhost:11434 list
check "providers: env is read" 2 env ENGRAM_EMBEDDER=bogus "$bin" "${R[@]}" list
contains "env embedder named" "$err" "bogus"
# --config FILE: the provider flags as JSON keys; flags override it wherever they stand; nothing ignored
printf '{"embedder": "bogus"}' > "$dir/cfg-bogus.json"
check "config: its settings apply" 2 "$bin" "${R[@]}" --config "$dir/cfg-bogus.json" list
contains "config value named" "$err" "bogus"
check "config: a flag after it wins" 0 "$bin" "${R[@]}" --config "$dir/cfg-bogus.json" --embedder hashing list --user-id carol
check "config: a flag before it wins" 0 "$bin" "${R[@]}" --embedder hashing --config "$dir/cfg-bogus.json" list --user-id carol
printf '{"extractor": "llm", "base-url": "http://127.0.0.1:9/v1"}' > "$dir/cfg-llm.json"
check "config: llm without a model" 2 "$bin" "${R[@]}" --config "$dir/cfg-llm.json" list
contains "config llm needs a model" "$err" "--llm-model"
printf '{"llm-includes": ["food", "home"], "retries": 2}' > "$dir/cfg-lists.json"
check "config: lists and numbers read, prompt settings still need the llm extractor" 2 "$bin" "${R[@]}" \
  --config "$dir/cfg-lists.json" list
contains "config prompt setting refused" "$err" "needs --extractor llm"
printf '{"embeder": "hashing"}' > "$dir/cfg-typo.json"
check "config: an unknown key is refused" 2 "$bin" "${R[@]}" --config "$dir/cfg-typo.json" list
contains "config unknown key named" "$err" "unknown setting 'embeder'"
printf '{"retries": [1]}' > "$dir/cfg-type.json"
check "config: a value of the wrong type is refused" 2 "$bin" "${R[@]}" --config "$dir/cfg-type.json" list
contains "config wrong type named" "$err" "'retries' must list strings"
printf '{"embedder": ' > "$dir/cfg-cut.json"
check "config: malformed JSON is refused" 2 "$bin" "${R[@]}" --config "$dir/cfg-cut.json" list
contains "config not JSON said" "$err" "not valid JSON"
check "config: a missing file is refused" 2 "$bin" "${R[@]}" --config "$dir/no-such.json" list
check "timestamp: an add dated when the conversation happened" 0 "$bin" --output json add "Tim moved to Porto" --user-id tim --no-infer --timestamp 2001-02-03T04:05:06Z
tid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])' <<<"$out")
check "timestamp: get the dated memory" 0 "$bin" --output json get "$tid"
contains "timestamp is created_at" "$out" '"created_at": "2001-02-03T04:05:06'
check "timestamp: Unix seconds" 0 "$bin" --output json add "Tim owns a red bike" --user-id tim --no-infer --timestamp 981173106
check "timestamp: not a time" 2 "$bin" add "x" --user-id tim --timestamp yesterday
contains "timestamp error names the flag" "$err" "--timestamp"
check "procedural: needs an agent" 2 "$bin" add "ran the tests" --user-id tim --procedural
contains "procedural names agent_id" "$err" "agent_id"
check "procedural: needs a model" 2 "$bin" add "ran the tests" --agent-id bot --procedural
contains "procedural names the extractor" "$err" "LLM extractor"
check "search threads: a bad count is refused" 2 "$bin" "${R[@]}" --search-threads many list
contains "search threads named" "$err" "--search-threads"
check "search threads: 2 threads search as one" 0 "$bin" "${R[@]}" --search-threads 2 --output json search "wifi password" --user-id carol
contains "threaded search finds" "$out" "zebra42"
check "compaction: a bad mode is refused" 2 "$bin" "${R[@]}" --compaction sometimes list
contains "compaction named" "$err" "--compaction"
check "compaction: inline opens the same directory" 0 "$bin" "${R[@]}" --compaction inline --output json search "wifi password" --user-id carol
contains "inline-compaction search finds" "$out" "zebra42"
check "providers: another hashing size is refused" 2 "$bin" "${R[@]}" --dimensions 128 list
contains "dimension mismatch explained" "$err" "another embedder"

# ---- WordNet for the hashing embedder: a tiny database in WordNet 3.0's file format ----
wn="$dir/wordnet"
mkdir -p "$wn"
lic="  1 This software and database is being provided to you, the LICENSEE, ..."
printf '%s\n%s\n%s\n' "$lic" \
  "00000100 05 n 03 doctor 0 doc 0 physician 0 001 @ 00000200 n 0000 | a licensed medical practitioner" \
  "00000200 05 n 01 professional 0 000 | a person engaged in a learned profession" >"$wn/data.noun"
printf '%s\n%s\n%s\n%s\n%s\n' "$lic" "doctor n 1 1 @ 1 1 00000100  " "doc n 1 1 @ 1 0 00000100  " \
  "physician n 1 1 @ 1 0 00000100  " "professional n 1 0 1 0 00000200  " >"$wn/index.noun"
for f in data.verb index.verb data.adj index.adj; do printf '%s\n' "$lic" >"$wn/$f"; done
WN=(--data "$dir/wn" --wordnet "$wn")
check "wordnet: add" 0 "$bin" "${WN[@]}" add "My doctor is Dr. Costa" --user-id gil
check "wordnet: add 2" 0 "$bin" "${WN[@]}" add "I had ramen for lunch" --user-id gil
# "physician" shares no word with the memory: without WordNet its score is about 0.08, with it about 0.4
check "wordnet: a synonym finds the memory" 0 "$bin" "${WN[@]}" --output json search "Who is my physician?" --user-id gil --mode semantic --threshold 0.2
contains "synonym found" "$out" "My doctor is Dr. Costa"
check "wordnet: the same without it" 0 "$bin" --data "$dir/nown" add "My doctor is Dr. Costa" --user-id gil
check "wordnet: no synonym without it" 0 "$bin" --data "$dir/nown" --output json search "Who is my physician?" --user-id gil --mode semantic --threshold 0.2
lacks "synonym not found without wordnet" "$out" "My doctor is Dr. Costa"
check "wordnet: stats name it" 0 "$bin" "${WN[@]}" --output json stats
contains "embedder recorded with wordnet" "$out" "hashing-v1+wordnet"
check "wordnet: reopening without it is refused" 2 "$bin" --data "$dir/wn" list
contains "wordnet mismatch explained" "$err" "another embedder"
check "wordnet: env is read" 0 env ENGRAM_WORDNET="$wn" "$bin" --data "$dir/wn" list --user-id gil
check "wordnet: a missing directory" 2 "$bin" --data "$dir/wn2" --wordnet "$dir/nowhere" list
contains "missing wordnet named" "$err" "nowhere"
check "wordnet: only with the hashing embedder" 2 "$bin" --data "$dir/wn3" --embedder openai --base-url http://127.0.0.1:9/v1 --wordnet "$wn" list
contains "wordnet needs hashing" "$err" "--embedder hashing only"
check "providers: bad timeout" 2 "$bin" "${R[@]}" --timeout 0 list
contains "bad timeout named" "$err" "--timeout"
check "providers: bad timeout from env" 2 env ENGRAM_TIMEOUT=soon "$bin" "${R[@]}" list
contains "env timeout named" "$err" "soon"
check "providers: bad connect timeout" 2 "$bin" "${R[@]}" --connect-timeout -1 list
check "providers: bad retries" 2 "$bin" "${R[@]}" --retries many list
contains "bad retries named" "$err" "--retries"

# ---- hostile input: nesting, escapes, blank messages, a directory another process holds -------------------
H=(--data "$dir/hostile")
check "hostile: a first memory" 0 "$bin" "${H[@]}" add "a plain memory" --user-id hal
deep=$(python3 -c 'print("{\"a\":" * 12000 + "1" + "}" * 12000)')
check "hostile: metadata 12000 levels deep is refused, no crash" 2 "$bin" "${H[@]}" add "x" --user-id hal --metadata "$deep"
contains "hostile: the depth is named" "$err" "nested deeper than 64"
check "hostile: metadata 65 levels deep is refused" 2 "$bin" "${H[@]}" add "x" --user-id hal \
  --metadata "$(python3 -c 'print("{\"a\":" * 65 + "1" + "}" * 65)')"
check "hostile: metadata 64 levels deep is fine" 0 "$bin" "${H[@]}" add "deep but allowed" --user-id hal \
  --metadata "$(python3 -c 'print("{\"a\":" * 63 + "[1]" + "}" * 63)')"
check "hostile: filters 12000 levels deep" 2 "$bin" "${H[@]}" list --user-id hal --filters "$deep"
check "hostile: weights 12000 levels deep" 2 "$bin" "${H[@]}" search x --user-id hal --weights "$deep"
check "hostile: messages 12000 levels deep" 2 "$bin" "${H[@]}" add --messages "$deep" --user-id hal
check "hostile: metadata number out of range" 2 "$bin" "${H[@]}" add "x" --user-id hal --metadata '{"n":1e400}'
check "hostile: metadata not UTF-8" 2 "$bin" "${H[@]}" add "x" --user-id hal --metadata $'{"n":"\xff"}'
python3 -c 'print("{\"type\":\"memory\",\"id\":\"x\",\"memory\":\"m\",\"metadata\":" + "[" * 15000 + "]" * 15000 + "}")' > "$dir/deep.jsonl"
check "hostile: import of a line 15000 levels deep is refused, no crash" 2 "$bin" "${H[@]}" import "$dir/deep.jsonl"
contains "hostile: import names the line" "$err" "line 1"
check "hostile: add empty text" 2 "$bin" "${H[@]}" add "" --user-id hal
contains "hostile: blank said" "$err" "no text"
check "hostile: add blank text" 2 "$bin" "${H[@]}" add "   " --user-id hal
check "hostile: add - with empty input" 2 "$bin" "${H[@]}" add - --user-id hal </dev/null
check "hostile: add --messages with blank contents" 2 "$bin" "${H[@]}" add --messages '[{"role":"user","content":" "}]' --user-id hal
check "hostile: nothing else was stored" 0 "$bin" "${H[@]}" --output json list --user-id hal
[ "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))' <<<"$out")" = 2 ] && passes=$((passes + 1)) \
  || { echo "FAIL hostile: expected 2 memories: $out"; fails=$((fails + 1)); }
check "hostile: terminal escapes stored" 0 "$bin" "${H[@]}" add $'title\e]0;pwned\a clear\e[2J c1\xc2\x9b' --user-id hal
for cmd in "list --user-id hal" "search title --user-id hal"; do
  # shellcheck disable=SC2086
  check "hostile: $cmd" 0 "$bin" "${H[@]}" $cmd
  contains "hostile: $cmd shows the escape escaped" "$out" '\u001b]0;pwned\u0007'
  [[ "$out" != *$'\e'* && "$out" != *$'\a'* ]] && passes=$((passes + 1)) \
    || { echo "FAIL hostile: $cmd printed a raw control character"; fails=$((fails + 1)); }
done
# another process holds the directory (as a running server does): reads open it read-only and work
python3 -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1] + "/LOCK", os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)' "$dir/hostile" > "$dir/holder.out" &
holder=$!
for _ in $(seq 50); do [ -s "$dir/holder.out" ] && break; sleep 0.1; done
check "hostile: list beside the lock holder" 0 "$bin" "${H[@]}" list --user-id hal
contains "hostile: list read the memories" "$out" "a plain memory"
check "hostile: search beside the lock holder" 0 "$bin" "${H[@]}" search plain --user-id hal
check "hostile: stats beside the lock holder" 0 "$bin" "${H[@]}" stats
check "hostile: a write beside the lock holder still fails clearly" 3 "$bin" "${H[@]}" add "y" --user-id hal
kill "$holder"; wait "$holder" 2>/dev/null

# ---- time: --as-of, --include-invalid, --on-contradiction, the newer ranking weights (own data directory) ----
T=(--data "$dir/time")
check "time: a dated add" 0 "$bin" "${T[@]}" add "Ana lives in Lisbon" --user-id ana --no-infer --timestamp 2024-01-10
for cmd in "search Lisbon" "list"; do
  # shellcheck disable=SC2086
  check "time: $cmd --as-of before it held" 0 "$bin" "${T[@]}" --output json $cmd --user-id ana --as-of 2023-06-01
  lacks "time: $cmd --as-of before: nothing" "$out" "Lisbon"
  # shellcheck disable=SC2086
  check "time: $cmd --as-of after" 0 "$bin" "${T[@]}" --output json $cmd --user-id ana --as-of 2024-06-01T12:00:00Z
  contains "time: $cmd --as-of after: found" "$out" "Ana lives in Lisbon"
  # shellcheck disable=SC2086
  check "time: $cmd --as-of with an offset" 0 "$bin" "${T[@]}" --output json $cmd --user-id ana --as-of 2024-01-10T01:00:00+02:00
  lacks "time: $cmd 01:00+02:00 is the day before in UTC" "$out" "Lisbon"
  # shellcheck disable=SC2086
  check "time: $cmd --as-of Unix seconds" 0 "$bin" "${T[@]}" --output json $cmd --user-id ana --as-of 1704844800
  contains "time: $cmd 1704844800 is 2024-01-10" "$out" "Ana lives in Lisbon"
  # shellcheck disable=SC2086
  check "time: $cmd --include-invalid" 0 "$bin" "${T[@]}" --output json $cmd --user-id ana --include-invalid
  contains "time: $cmd --include-invalid lists it" "$out" "Ana lives in Lisbon"
  # shellcheck disable=SC2086
  check "time: $cmd --as-of not a time" 2 "$bin" "${T[@]}" $cmd --user-id ana --as-of yesterday
  contains "time: $cmd bad --as-of named" "$err" "--as-of needs"
  contains "time: $cmd bad --as-of value shown" "$err" "'yesterday'"
  # shellcheck disable=SC2086
  check "time: $cmd --as-of 2024-02-30" 2 "$bin" "${T[@]}" $cmd --user-id ana --as-of 2024-02-30
  # shellcheck disable=SC2086
  check "time: $cmd --as-of with --include-invalid" 2 "$bin" "${T[@]}" $cmd --user-id ana --as-of 2024-06-01 --include-invalid
  contains "time: $cmd both refused" "$err" "--as-of with --include-invalid"
done
check "time: --as-of needs a value" 2 "$bin" "${T[@]}" list --user-id ana --as-of
check "time: an expired memory" 0 "$bin" "${T[@]}" add "Ana's old passport" --user-id ana --no-infer --expires 2001-01-01
check "time: delete --all --dry-run counts what delete --all removes" 0 "$bin" "${T[@]}" delete --all --user-id ana --dry-run
contains "time: the expired memory counted" "$out" "would delete 2"
check "time: stats show the default policy" 0 "$bin" "${T[@]}" --output json stats
contains "time: erase by default" "$out" '"on_contradiction": "erase"'
check "time: --on-contradiction supersede" 0 "$bin" "${T[@]}" --on-contradiction supersede stats
contains "time: stats text shows the policy" "$out" "on contradiction  supersede"
check "time: --on-contradiction unknown" 2 "$bin" "${T[@]}" --on-contradiction keep list
contains "time: unknown policy named" "$err" "'keep'"
contains "time: the flag named" "$err" "--on-contradiction"
check "time: ENGRAM_ON_CONTRADICTION read" 2 env ENGRAM_ON_CONTRADICTION=overwrite "$bin" "${T[@]}" list
contains "time: env policy named" "$err" "'overwrite'"
check "time: ENGRAM_ON_CONTRADICTION=supersede" 0 env ENGRAM_ON_CONTRADICTION=supersede "$bin" "${T[@]}" --output json stats
contains "time: env policy applied" "$out" '"on_contradiction": "supersede"'
printf '{"on-contradiction": "supersede"}' > "$dir/cfg-supersede.json"
check "time: on-contradiction in --config" 0 "$bin" "${T[@]}" --config "$dir/cfg-supersede.json" --output json stats
contains "time: config policy applied" "$out" '"on_contradiction": "supersede"'
printf '{"on-contradiction": "forget"}' > "$dir/cfg-forget.json"
check "time: a bad on-contradiction in --config" 2 "$bin" "${T[@]}" --config "$dir/cfg-forget.json" list
contains "time: config policy named" "$err" "'forget'"
check "time: --entities unknown" 2 "$bin" "${T[@]}" --entities maybe list
check "time: newest_first over 1" 2 "$bin" "${T[@]}" search x --user-id ana --weights '{"newest_first": 1.5}'
contains "time: newest_first named" "$err" "newest_first"
check "time: entity_hops 2" 2 "$bin" "${T[@]}" search x --user-id ana --weights '{"entity_hops": 2}'
contains "time: entity_hops named" "$err" "entity_hops must be 0 or 1"
check "time: entity weight without the index" 2 "$bin" "${T[@]}" search Ana --user-id ana --weights '{"entity": 1}'
contains "time: entity index asked for" "$err" "--entities on"
check "time: entity weight with --entities on" 0 "$bin" "${T[@]}" --entities on --output json search Ana --user-id ana \
  --explain --weights '{"entity": 1, "entity_hops": 0, "newest_first": 0.9}'
python3 - "$out" <<'PY' && passes=$((passes + 1)) || { echo "FAIL time: no entity term"; fails=$((fails + 1)); }
import json, sys
hits = json.loads(sys.argv[1])["results"]
assert hits and abs(hits[0]["score_details"]["entity"] - 1.0) < 1e-4, hits
PY
check "time: explain table has the entity term" 0 "$bin" "${T[@]}" --entities on search Ana --user-id ana --explain \
  --weights '{"entity": 1}'
contains "time: ENTITY column" "$out" "ENTITY"

if [ -n "$fake" ]; then
  printf '%s\n' \
    '{"facts": ["Name is Dana", "Lives in Lisbon", "Is vegetarian"]}' \
    '{"facts": ["Lives in Porto"]}' \
    '{"memory": [{"id": "0", "text": "Lives in Porto", "event": "UPDATE", "old_memory": "Lives in Lisbon"}]}' \
    > "$dir/chat.txt"
  "$fake" --chat "$dir/chat.txt" --log "$dir/fake.log" > "$dir/fake.port" &
  fake_pid=$!
  for _ in $(seq 100); do [ -s "$dir/fake.port" ] && break; sleep 0.05; done
  port=$(head -1 "$dir/fake.port")
  O=(--data "$dir/openai" --embedder openai --base-url "http://127.0.0.1:$port/v1" --embed-model fake-embed)
  check "openai: add" 0 "$bin" "${O[@]}" add "I keep bees in the garden" --user-id erin
  check "openai: add 2" 0 "$bin" "${O[@]}" add "My sister lives in Bergen" --user-id erin
  check "openai: search" 0 "$bin" "${O[@]}" --output json search "bees garden" --user-id erin --limit 1 --mode semantic
  contains "openai search finds" "$out" "I keep bees"
  check "openai: stats" 0 "$bin" "${O[@]}" --output json stats
  contains "store records the embedder" "$out" '"embedder": "openai:fake-embed"'
  contains "dimension learned from the server" "$out" '"dimension": 64'
  check "openai dir opened offline" 2 "$bin" --data "$dir/openai" list
  contains "mismatch names the stored embedder" "$err" "openai:fake-embed"
  contains "mismatch explained" "$err" "another embedder"
  check "openai: another model is refused" 2 "$bin" "${O[@]}" --embed-model other-embed list
  contains "model mismatch named" "$err" "openai:other-embed"
  printf 'sk-from-file\n' > "$dir/key.txt"
  check "openai: --api-key-file" 0 "$bin" "${O[@]}" --api-key-file "$dir/key.txt" search "bees" --user-id erin
  check "openai: ENGRAM_API_KEY_FILE" 0 env ENGRAM_API_KEY_FILE="$dir/key.txt" "$bin" "${O[@]}" search "bees" --user-id erin
  check "key file and key flag together" 2 "$bin" "${O[@]}" --api-key-file "$dir/key.txt" --api-key k list
  contains "both named" "$err" "not both"
  check "missing key file" 2 "$bin" "${O[@]}" --api-key-file "$dir/no-such-key" list --user-id erin
  contains "missing key file named" "$err" "no-such-key"
  : > "$dir/empty-key.txt"
  check "empty key file" 2 "$bin" "${O[@]}" --api-key-file "$dir/empty-key.txt" list --user-id erin
  contains "empty key file said" "$err" "missing or empty"
  check "offline dir opened with openai" 2 "$bin" "${O[@]/"$dir/openai"/"$dir/rank"}" list
  contains "offline dir names hashing" "$err" "hashing-v1"

  W=(--data "$dir/ollama" --embedder ollama --base-url "http://127.0.0.1:$port/v1" --dimensions 64)
  check "ollama: add (native /api/embed, /v1 dropped)" 0 "$bin" "${W[@]}" add "I play the cello" --user-id erin
  check "ollama: search" 0 "$bin" "${W[@]}" --output json search "cello" --user-id erin
  contains "ollama search finds" "$out" "cello"
  check "ollama: stats" 0 "$bin" "${W[@]}" --output json stats
  contains "ollama name recorded" "$out" '"embedder": "ollama:nomic-embed-text"'

  L=(--data "$dir/llm" --embedder openai --base-url "http://127.0.0.1:$port/v1" --embed-model fake-embed
     --extractor llm --llm-model fake-chat --llm-instructions "Mind the diet." --llm-includes "diet, home"
     --llm-categories "diet:what they eat;home")
  check "llm: conversation into facts" 0 "$bin" "${L[@]}" --output json add --messages --user-id dana --infer \
    '[{"role":"user","content":"Hi, I am Dana. I live in Lisbon and I do not eat meat."},{"role":"assistant","content":"Noted!"}]'
  contains "llm fact 1" "$out" '"memory": "Name is Dana"'
  contains "llm fact 2" "$out" '"memory": "Lives in Lisbon"'
  contains "llm fact 3" "$out" '"memory": "Is vegetarian"'
  check "llm: a contradiction updates" 0 "$bin" "${L[@]}" --output json add "I moved to Porto last month" --user-id dana --infer
  contains "llm update event" "$out" '"event": "UPDATE"'
  contains "llm update old" "$out" '"previous_memory": "Lives in Lisbon"'
  check "llm: list after" 0 "$bin" "${L[@]}" --output json list --user-id dana
  contains "updated fact stored" "$out" "Lives in Porto"
  lacks "old fact gone" "$out" "Lives in Lisbon"
  check "add: --infer with --no-infer is a usage error" 2 "$bin" "${L[@]}" add "x" --user-id dana --infer --no-infer
  check "llm: with --no-infer the text is stored as given" 0 "$bin" "${L[@]}" --output json add "raw note" --user-id dana --no-infer
  contains "verbatim without infer" "$out" '"memory": "raw note"'
  check "llm: no scripted reply left is a provider failure" 3 "$bin" "${L[@]}" add "one more" --user-id dana --infer
  contains "provider failure said" "$err" "provider failed"

  kill "$fake_pid"; wait "$fake_pid"; fake_pid=""
  log=$(cat "$dir/fake.log")
  contains "embeddings went to the server" "$log" "/v1/embeddings"
  contains "ollama went to /api/embed" "$log" "/api/embed"
  contains "chat calls made" "$log" "/v1/chat/completions"
  contains "the chat model was asked" "$log" '"model":"fake-chat"'
  contains "the conversation reached the model" "$log" "I do not eat meat"
  contains "--llm-instructions reached the prompt" "$log" "Mind the diet."
  contains "--llm-includes reached the prompt" "$log" "Only remember information of these kinds: diet, home."
  contains "--llm-categories reached the prompt" "$log" "- diet: what they eat"
  contains "the key file's key was sent, newline dropped" "$(grep -x 'AUTH Bearer sk-from-file' "$dir/fake.log")" \
    "sk-from-file"
  check "provider down: a clear failure" 3 "$bin" "${O[@]}" --dimensions 64 search "bees" --user-id erin
  contains "down server said" "$err" "no server answered"
  # a server that accepts the connection and never answers: --timeout bounds the wait (the default is 120 s)
  python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
held = [s.accept()[0] for _ in range(8)]
time.sleep(60)' > "$dir/silent.port" &
  silent_pid=$!
  for _ in $(seq 50); do [ -s "$dir/silent.port" ] && break; sleep 0.1; done
  S=(--data "$dir/silent" --embedder openai --base-url "http://127.0.0.1:$(head -1 "$dir/silent.port")/v1" --dimensions 64)
  check "silent server: --timeout gives up" 3 timeout 30 "$bin" "${S[@]}" --timeout 0.5 --retries 1 add "x" --user-id fay
  contains "silent server: timeout said" "$err" "provider"
  kill "$silent_pid" 2>/dev/null; wait "$silent_pid" 2>/dev/null
  # --on-contradiction supersede through a reconciling model: the old fact is kept closed, found by --as-of
  printf '%s\n' '{"facts": ["Lives in Lisbon"]}' '{"facts": ["Lives in Porto"]}' \
    '{"memory": [{"id": "0", "text": "Lives in Porto", "event": "UPDATE"}]}' > "$dir/chat-time.txt"
  "$fake" --chat "$dir/chat-time.txt" > "$dir/fake-time.port" &
  fake_pid=$!
  for _ in $(seq 100); do [ -s "$dir/fake-time.port" ] && break; sleep 0.05; done
  V=(--data "$dir/supersede" --embedder openai --base-url "http://127.0.0.1:$(head -1 "$dir/fake-time.port")/v1"
     --embed-model fake-embed --extractor llm --llm-model fake-chat --on-contradiction supersede)
  check "supersede: first fact" 0 "$bin" "${V[@]}" add "I live in Lisbon" --user-id ana --timestamp 2024-01-10
  check "supersede: a contradiction" 0 "$bin" "${V[@]}" --output json add "I moved to Porto" --user-id ana --timestamp 2025-06-01
  contains "supersede: an UPDATE, as with erase" "$out" '"event": "UPDATE"'
  check "supersede: list shows the current fact" 0 "$bin" "${V[@]}" --output json list --user-id ana
  contains "supersede: Porto now" "$out" "Lives in Porto"
  lacks "supersede: Lisbon hidden" "$out" "Lives in Lisbon"
  check "supersede: --include-invalid" 0 "$bin" "${V[@]}" --output json list --user-id ana --include-invalid
  contains "supersede: Lisbon kept" "$out" "Lives in Lisbon"
  contains "supersede: closed when Porto began" "$out" '"invalid_at": "2025-06-01T00:00:00'
  check "supersede: search --as-of before the move" 0 "$bin" "${V[@]}" --output json search "where" --user-id ana --as-of 2024-06-01
  contains "supersede: Lisbon then" "$out" "Lives in Lisbon"
  lacks "supersede: not Porto then" "$out" "Lives in Porto"
  check "supersede: list --as-of after the move" 0 "$bin" "${V[@]}" --output json list --user-id ana --as-of 2025-07-01
  contains "supersede: Porto after" "$out" "Lives in Porto"
  lacks "supersede: not Lisbon after" "$out" "Lives in Lisbon"
  check "supersede: delete --all --dry-run counts the closed version" 0 "$bin" "${V[@]}" delete --all --user-id ana --dry-run
  contains "supersede: both versions counted" "$out" "would delete 2"
  check "supersede: delete --all removes them" 0 "$bin" "${V[@]}" delete --all --user-id ana
  contains "supersede: both versions deleted" "$out" "deleted 2 memories"
  kill "$fake_pid"; wait "$fake_pid" 2>/dev/null; fake_pid=""
else
  echo "cli: no fake-provider given: provider tests skipped"
fi

# import --from mem0: a Mem0 get_all answer (the Platform's paged shape) round-trips; bad lines skip or abort
fixtures=$(cd "$(dirname "$0")" && pwd)/fixtures
M=(--data "$dir/m0")
check "mem0: import" 0 "$bin" "${M[@]}" import --from mem0 "$fixtures/mem0_export.json"
contains "mem0: import summary" "$out" "imported 4 memories from Mem0, skipped 0"
check "mem0: list" 0 "$bin" "${M[@]}" --output json list
python3 - "$out" <<'PY' && passes=$((passes + 1)) || { echo "FAIL mem0: round trip lost a field"; fails=$((fails + 1)); }
import json, sys, uuid
by_text = {m["memory"]: m for m in json.loads(sys.argv[1])["results"]}
assert len(by_text) == 4, by_text
m = by_text["Priya is training for the Lisbon marathon in October"]
assert m["id"] == "7d0c4f1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f", m
assert m["user_id"] == "priya" and "agent_id" not in m and "run_id" not in m, m
assert m["metadata"] == {"source": "onboarding", "confidence": 0.9, "categories": ["health", "sports"]}, m
assert m["categories"] == ["health", "sports"], m
assert m["created_at"] == "2024-06-03T15:15:30.123456+00:00", m
assert m["updated_at"] == "2024-06-11T00:02:11+00:00" or m["updated_at"].startswith("2024-06-11T00:02:11"), m
assert "immutable" not in m, m
m = by_text["Priya is allergic to penicillin"]
assert m["agent_id"] == "clinic-assistant" and m["user_id"] == "priya" and m["immutable"] is True, m
assert m["categories"] == ["medical"], m
m = by_text["Prefers answers with code examples in Rust"]
assert m["agent_id"] == "code-helper" and m["run_id"] == "sprint-12" and "user_id" not in m, m
assert m["expiration_date"] == "2031-12-31", m
assert m["created_at"].startswith("2024-06-05T12:30:00") and m["updated_at"] == m["created_at"], m
m = by_text["Priya's favourite editor is Helix"]
assert m["metadata"] == {"mem0_id": "mem_legacy_42"}, m
assert uuid.UUID(m["id"]).version == 3, m
assert m["created_at"].startswith("2023-11-20T20:45:00") and m["updated_at"].startswith("2024-01-02T09:00:00"), m
PY
check "mem0: get keeps the fields" 0 "$bin" "${M[@]}" --output json get 1a2b3c4d-5e6f-4a7b-9c8d-e0f1a2b3c4d5
contains "mem0: get text" "$out" '"memory": "Priya is allergic to penicillin"'
contains "mem0: get created_at" "$out" '"created_at": "2024-06-04T09:00:00'
check "mem0: imported memories are embedded and searchable" 0 "$bin" "${M[@]}" search "marathon training" --user-id priya --limit 1
contains "mem0: search finds" "$out" "Lisbon marathon"
check "mem0: history has the ADD" 0 "$bin" "${M[@]}" history 7d0c4f1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f
contains "mem0: history ADD" "$out" "ADD"
check "mem0: importing again adds nothing twice" 0 "$bin" "${M[@]}" import --from mem0 "$fixtures/mem0_export.json"
contains "mem0: again summary" "$out" "imported 0 memories from Mem0, skipped 4 (0 bad, 4 already present)"
before=$("$bin" "${M[@]}" --output json list)
check "mem0: a bad line aborts by default, exit 2" 2 "$bin" "${M[@]}" import --from mem0 "$fixtures/mem0_export_bad.jsonl"
contains "mem0: abort names line 2" "$err" "line 2: not valid JSON (parse error at column"
contains "mem0: abort names line 3" "$err" "line 3: 'created_at' is not an ISO-8601 time"
contains "mem0: abort names line 5" "$err" "line 5: no scope"
contains "mem0: abort says nothing was imported" "$err" "nothing was imported"
after=$("$bin" "${M[@]}" --output json list)
[ "$before" = "$after" ] && passes=$((passes + 1)) || { echo "FAIL mem0: abort changed the store"; fails=$((fails + 1)); }
check "mem0: --on-error abort is the same" 2 "$bin" "${M[@]}" import --from mem0 "$fixtures/mem0_export_bad.jsonl" --on-error abort
check "mem0: --on-error skip imports the good lines" 0 "$bin" "${M[@]}" import --from mem0 "$fixtures/mem0_export_bad.jsonl" --on-error skip
contains "mem0: skip summary" "$out" "imported 2 memories from Mem0, skipped 3 (3 bad, 0 already present)"
contains "mem0: skip reports the line" "$err" "line 2: not valid JSON (parse error at column"
contains "mem0: skip says skipped" "$err" "(skipped)"
check "mem0: skipped import listed" 0 "$bin" "${M[@]}" --output json list --user-id omar
contains "mem0: chickens kept" "$out" "Omar keeps chickens"
contains "mem0: feed kept with its run" "$out" '"run_id": "farm-visit"'
lacks "mem0: bad line not stored" "$out" "sells eggs"
check "mem0: json summary" 0 "$bin" --data "$dir/m0json" --output json import --from mem0 "$fixtures/mem0_export_bad.jsonl" --on-error skip
contains "mem0: json summary counts" "$out" '"imported":2'
contains "mem0: json summary lines" "$out" '"line":3'
check "mem0: --on-error must be skip or abort" 2 "$bin" "${M[@]}" import --from mem0 "$fixtures/mem0_export.json" --on-error maybe
check "mem0: --from names a known source" 2 "$bin" "${M[@]}" import --from zep "$fixtures/mem0_export.json"
check "mem0: --on-error needs --from" 2 "$bin" "${M[@]}" import "$dir/all.jsonl" --on-error skip
printf '{"results": [\n  {"id": "a", "memory": "x",\n' > "$dir/broken.json"
check "mem0: a broken document is refused" 2 "$bin" --data "$dir/m0broken" import --from mem0 "$dir/broken.json"
contains "mem0: broken document names the line" "$err" "line 3"

# export --format mem0: Mem0's export shape (engram-server's exports), read back by import --from mem0 into a
# fresh directory with the ids, texts, scopes, metadata and times
X=(--data "$dir/m0x")
check "mem0 export: add" 0 "$bin" "${X[@]}" --output json add "Rui collects stamps" --user-id rui --no-infer \
  --metadata '{"topic":"hobby","categories":["leisure"]}' --timestamp 2023-05-04T08:30:00Z
stamps=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])' <<<"$out")
check "mem0 export: add with an agent" 0 "$bin" "${X[@]}" add "Vera coaches Rui" --user-id rui --agent-id coach \
  --no-infer --expires 2031-01-01 --immutable
check "mem0 export: add another user" 0 "$bin" "${X[@]}" add "Sol paints" --user-id sol --no-infer
check "mem0 export: update (updated_at moves)" 0 "$bin" "${X[@]}" update "$stamps" "Rui collects old stamps"
check "mem0 export: a scope" 0 "$bin" "${X[@]}" export --format mem0 --user-id rui
printf '%s\n' "$out" > "$dir/rui.json"
contains "mem0 export: counted on stderr" "$err" "exported 2 memories in Mem0's export shape"
contains "mem0 export: the document's list" "$out" '"memories": ['
lacks "mem0 export: only the scope" "$out" "Sol paints"
check "mem0 export: import into a fresh directory" 0 "$bin" --data "$dir/m0y" import --from mem0 "$dir/rui.json"
contains "mem0 export: import summary" "$out" "imported 2 memories from Mem0, skipped 0"
before=$("$bin" "${X[@]}" --output json list --user-id rui --show-expired)
after=$("$bin" --data "$dir/m0y" --output json list --user-id rui --show-expired)
python3 - "$before" "$after" <<'PY' && passes=$((passes + 1)) || { echo "FAIL mem0 export: the round trip lost a field"; fails=$((fails + 1)); }
import json, sys
keys = ("id", "memory", "user_id", "agent_id", "run_id", "metadata", "categories", "created_at", "updated_at",
        "expiration_date", "immutable")
a, b = ({m["id"]: {k: m.get(k) for k in keys} for m in json.loads(t)["results"]} for t in sys.argv[1:3])
assert len(a) == 2 and a == b, (a, b)
stamps = next(m for m in a.values() if m["memory"] == "Rui collects old stamps")
assert stamps["created_at"].startswith("2023-05-04T08:30:00") and stamps["updated_at"] > stamps["created_at"], stamps
PY
check "mem0 export: the whole store" 0 "$bin" "${X[@]}" export --format mem0
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["count"] == 3 and d["id"] is None and d["schema"] is None, d' \
  <<<"$out" && passes=$((passes + 1)) || { echo "FAIL mem0 export: whole-store document"; fails=$((fails + 1)); }
check "mem0 export: an unknown format is exit 2" 2 "$bin" "${X[@]}" export --format csv
contains "mem0 export: says which formats" "$err" "--format must be jsonl (engram's own, the default) or mem0"
check "mem0 export: no vectors to leave out" 2 "$bin" "${X[@]}" export --format mem0 --no-vectors
check "mem0 export: --format goes with export" 2 "$bin" "${X[@]}" list --format mem0
check "jsonl export: the default" 0 "$bin" "${X[@]}" export --no-vectors
default=$out
check "jsonl export: --format jsonl is the same" 0 "$bin" "${X[@]}" export --format jsonl --no-vectors
[ "$default" = "$out" ] && passes=$((passes + 1)) || { echo "FAIL jsonl export: --format jsonl differs"; fails=$((fails + 1)); }

# entities: a scope's entities and relations (--entities on), as a table or JSON
G=(--data "$dir/graph" --entities on)
check "graph: add ana" 0 "$bin" "${G[@]}" add "Ana Silva lives in Lisbon" --user-id ana --no-infer
check "graph: add ana 2" 0 "$bin" "${G[@]}" add "Ana Silva works at Acme Corp" --user-id ana --no-infer
check "graph: add bruno" 0 "$bin" "${G[@]}" add "Bruno Costa lives in Porto" --user-id bruno --no-infer
check "graph: entities table" 0 "$bin" "${G[@]}" entities --user-id ana
contains "graph: table header" "$out" "ENTITY"
contains "graph: table entity" "$out" "Ana Silva"
contains "graph: table relation" "$out" "works at"
lacks "graph: another user's entity" "$out" "Bruno Costa"
check "graph: entities --json" 0 "$bin" "${G[@]}" entities --user-id ana --json
shape=$(python3 -c 'import json,sys; g=json.load(sys.stdin); print(sorted(e["name"] for e in g["entities"]), [(r["source"], r["relationship"], r["target"], r["memories"]) for r in g["relations"]])' <<<"$out")
contains "graph: json entities" "$shape" "['Acme Corp', 'Ana Silva', 'Lisbon']"
contains "graph: json relations" "$shape" "('Ana Silva', 'lives in', 'Lisbon', 1)"
check "graph: --output json is the same" 0 "$bin" "${G[@]}" --output json entities --user-id bruno
contains "graph: bruno's entity" "$out" '"Bruno Costa"'
check "graph: a scope is required" 2 "$bin" "${G[@]}" entities
contains "graph: says which scope" "$err" "--user-id"
check "graph: no positional" 2 "$bin" "${G[@]}" entities ana --user-id ana
check "graph: --json contradicts --output text" 2 "$bin" "${G[@]}" --output text entities --user-id ana --json
check "graph: without the index" 2 "$bin" --data "$dir/graph" entities --user-id ana
contains "graph: says how" "$err" "--entities on"

echo "cli: $passes passed, $fails failed"
[ "$fails" = 0 ]
