#!/usr/bin/env bash
# Drives the `engram` command: outputs, exit codes, persistence across invocations, import/export round trip.
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export ENGRAM_DIR="$dir/data"
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

echo "cli: $passes passed, $fails failed"
[ "$fails" = 0 ]
