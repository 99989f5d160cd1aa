#!/usr/bin/env bash
# Interop test: the official MCP TypeScript SDK (@modelcontextprotocol/sdk) drives engram-mcp over stdio.
# usage: sdk_interop.sh PATH/TO/engram-mcp
# Needs node (18+) and npm; installs the SDK from the npm registry into a temporary folder (or uses
# $ENGRAM_MCP_SDK_DIR if it already holds node_modules/@modelcontextprotocol/sdk). Without node or npm it
# prints "skipped" and exits 0.
set -euo pipefail

bin=${1:?usage: sdk_interop.sh PATH/TO/engram-mcp}
[[ "$bin" == /* ]] || bin="$PWD/$bin"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "mcp_sdk_interop: skipped (node and npm are needed to run the TypeScript SDK client)"
  exit 0
fi
[[ -x "$bin" ]] || { echo "mcp_sdk_interop: $bin is not an executable" >&2; exit 1; }

work=$(mktemp -d /tmp/engram-mcp-interop-XXXXXX)
trap 'rm -rf "$work"' EXIT
if [[ -n "${ENGRAM_MCP_SDK_DIR:-}" && -d "$ENGRAM_MCP_SDK_DIR/node_modules/@modelcontextprotocol/sdk" ]]; then
  ln -s "$ENGRAM_MCP_SDK_DIR/node_modules" "$work/node_modules"
else
  echo "mcp_sdk_interop: installing @modelcontextprotocol/sdk into $work"
  (cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error @modelcontextprotocol/sdk >/dev/null) || {
    echo "mcp_sdk_interop: FAILED to install @modelcontextprotocol/sdk from the npm registry" >&2
    exit 1
  }
fi
echo "mcp_sdk_interop: SDK $(node -p "require('$work/node_modules/@modelcontextprotocol/sdk/package.json').version"), node $(node --version)"
mkdir -p "$work/data"

cat > "$work/client.mjs" <<'JS'
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import assert from "node:assert/strict";

const [bin, data] = process.argv.slice(2);

async function connect(args) {
  const transport = new StdioClientTransport({ command: bin, args: ["--data", data, ...args], stderr: "inherit" });
  const client = new Client({ name: "engram-interop", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

// Unbound: every tool is listed with an object input schema; add, then search finds it.
const client = await connect([]);
assert.equal(client.getServerVersion().name, "engram");
assert.ok(client.getServerCapabilities().tools, "server advertises tools");
const { tools } = await client.listTools();
const names = tools.map((t) => t.name).sort();
assert.deepEqual(names, ["add_memory", "delete_all_memories", "delete_entities", "delete_memory", "entity_graph",
                         "get_memory", "list_entities", "list_memories", "memory_history", "search_memories", "update_memory"]);
for (const t of tools) {
  assert.equal(t.inputSchema.type, "object", t.name);
  assert.ok(Array.isArray(t.inputSchema.required), t.name);
}
const added = await client.callTool({ name: "add_memory",
  arguments: { text: "Sam prefers window seats on long flights", user_id: "sam", metadata: { topic: "travel" } } });
assert.equal(added.isError, false, JSON.stringify(added));
const event = added.structuredContent.results[0];
assert.equal(event.event, "ADD");
await client.callTool({ name: "add_memory", arguments: { text: "Sam's sister is called Ana", user_id: "sam" } });
const found = await client.callTool({ name: "search_memories",
  arguments: { query: "which seat does Sam like on a plane", user_id: "sam", limit: 2 } });
assert.equal(found.isError, false, JSON.stringify(found));
assert.equal(found.structuredContent.results.length, 2);
assert.equal(found.structuredContent.results[0].id, event.id);
assert.equal(found.content[0].type, "text");
assert.match(found.content[0].text, /window seats/);
const bad = await client.callTool({ name: "search_memories", arguments: { query: 42, user_id: "sam" } });
assert.equal(bad.isError, true);
await assert.rejects(client.callTool({ name: "no_such_tool", arguments: {} }), (e) => e.code === -32602);
await client.close();

// Bound to a user: a user_id the model passes is overridden.
const bound = await connect(["--user-id", "kim"]);
const mine = await bound.callTool({ name: "add_memory", arguments: { text: "Kim's locker is 42", user_id: "sam" } });
const got = await bound.callTool({ name: "get_memory", arguments: { memory_id: mine.structuredContent.results[0].id } });
assert.equal(got.structuredContent.user_id, "kim");
const hits = await bound.callTool({ name: "search_memories", arguments: { query: "locker", user_id: "sam" } });
assert.ok(hits.structuredContent.results.every((r) => r.user_id === "kim"));
await bound.close();
console.log(`mcp_sdk_interop: ok (${tools.length} tools, protocol negotiated by the SDK client)`);
JS

cd "$work" && node client.mjs "$bin" "$work/data"
