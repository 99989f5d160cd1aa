#!/usr/bin/env python3
"""The official `mem0ai` npm SDK's MemoryClient against a live engram-server, end to end.

usage: test_mem0_sdk.py ENGRAM_SERVER_BIN

Installs `mem0ai` from the npm registry into a temporary folder (or uses $ENGRAM_MEM0_SDK_DIR when it holds
node_modules/mem0ai) and drives a keyed engram-server with the client's own calls: ping, add (v3 add route,
metadata, infer false), search (scope in filters, v3 search route), getAll with page and pageSize (sent in the
query string), get, update (text and metadata), history, users (entities), batchUpdate and batchDelete (a
refused batch changes nothing), delete, deleteAll, the SDK's error for an unknown id, the webhook calls
(createWebhook, getWebhooks, updateWebhook, deleteWebhook), createMemoryExport / getMemoryExport (by id and
by filters), deleteUser / deleteUsers (the entity purge), and with a key bound to a project: ping's project,
getProject, updateProject and memories kept per project. Telemetry is off (MEM0_TELEMETRY=false). Exits 77 (skipped) without node or npm.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from live_server import Server, check, fail, skip

KEY = "sdk-admin-key-0123456789abcdef"
PROD_KEY = "sdk-prod-key-0123456789abcdef"

CLIENT_JS = r"""
import { MemoryClient } from "mem0ai";
import assert from "node:assert/strict";

const [host, apiKey, prodKey] = process.argv.slice(2);
const ok = (what) => console.log("ok: " + what);
const client = new MemoryClient({ apiKey, host });
await client.ping();
ok("ping");

const added = await client.add([{ role: "user", content: "I am vegetarian and allergic to nuts" }],
  { userId: "alex", infer: false, metadata: { topic: "food" } });
assert.equal(added.results.length, 1, JSON.stringify(added));
assert.equal(added.results[0].event, "ADD");
const id = added.results[0].id;
ok("add");
for (const text of ["Alex plays the cello", "Alex lives in Porto", "Alex runs on Sundays"])
  await client.add([{ role: "user", content: text }], { userId: "alex", infer: false });
await client.add([{ role: "user", content: "Bea keeps bees" }], { userId: "bea", infer: false });

const found = await client.search("nuts allergy", { filters: { user_id: "alex" } });
assert.equal(found.results[0].id, id, JSON.stringify(found));
assert.ok(typeof found.results[0].score === "number");
assert.ok(found.results.every((m) => m.userId === "alex"), "search stays in its scope");
ok("search");

const all = await client.getAll({ filters: { user_id: "alex" } });
assert.equal(all.results.length, 4, JSON.stringify(all));
const page2 = await client.getAll({ filters: { user_id: "alex" }, page: 2, pageSize: 3 });
assert.equal(page2.count, 4, JSON.stringify(page2));
assert.equal(page2.results.length, 1, "the second page of 3 holds the fourth memory");
ok("getAll, paged in the query string");

const one = await client.get(id);
assert.equal(one.memory, "I am vegetarian and allergic to nuts");
assert.deepEqual(one.metadata, { topic: "food" });
ok("get");

await client.update(id, { text: "I am vegan and allergic to nuts", metadata: { since: 2024 } });
const after = await client.get(id);
assert.equal(after.memory, "I am vegan and allergic to nuts");
assert.deepEqual(after.metadata, { topic: "food", since: 2024 }, "metadata merges, as Mem0");
ok("update");

const history = await client.history(id);
assert.deepEqual(history.map((h) => h.event), ["ADD", "UPDATE"]);
assert.equal(history[1].oldMemory, "I am vegetarian and allergic to nuts");
ok("history");

const users = await client.users();
const names = users.results.map((u) => u.name).sort();
assert.deepEqual(names, ["alex", "bea"], JSON.stringify(users));
ok("users");

const others = (await client.getAll({ filters: { user_id: "alex" } })).results.map((m) => m.id).filter((x) => x !== id);
const updated = await client.batchUpdate([{ memoryId: others[0], text: "Alex plays the viola" },
                                          { memoryId: others[1], text: "Alex lives in Braga" }]);
assert.equal(updated.message, "Successfully updated 2 memories", JSON.stringify(updated));
assert.equal((await client.get(others[0])).memory, "Alex plays the viola");
await assert.rejects(client.batchUpdate([{ memoryId: others[0], text: "x" }, { memoryId: "no-such-id", text: "y" }]),
                     (e) => e.errorCode === "HTTP_404");
assert.equal((await client.get(others[0])).memory, "Alex plays the viola", "a refused batch changes nothing");
const deleted = await client.batchDelete([others[0], others[1]]);
assert.equal(deleted.message, "Successfully deleted 2 memories", JSON.stringify(deleted));
await assert.rejects(client.get(others[1]), (e) => e.name === "MemoryNotFoundError");
ok("batchUpdate, batchDelete (all or nothing)");

await client.delete(id);
await assert.rejects(client.get(id), (e) => e.name === "MemoryNotFoundError" && e.errorCode === "HTTP_404");
ok("delete, then get of the deleted id is the SDK's MemoryNotFoundError");

await client.deleteAll({ userId: "alex" });
const none = await client.getAll({ filters: { user_id: "alex" } });
assert.equal(none.results.length, 0);
const bea = await client.getAll({ filters: { user_id: "bea" } });
assert.equal(bea.results.length, 1, "deleteAll of one user leaves the other");
ok("deleteAll");

// Webhooks: the project id comes from ping ("engram"); nothing listens on the URL (deliveries wait, then go
// with the webhook's deletion)
const hook = await client.createWebhook({ name: "sdk hook", url: "http://127.0.0.1:9/hooks",
                                          eventTypes: ["memory_add", "memory_delete"] });
assert.equal(typeof hook.webhookId, "number", JSON.stringify(hook));
assert.equal(hook.project, "engram");
assert.match(hook.secret, /^[0-9a-f]{64}$/);
assert.deepEqual(hook.eventTypes, ["memory_add", "memory_delete"]);
const hooks = await client.getWebhooks();
assert.deepEqual(hooks.map((h) => h.webhookId), [hook.webhookId], JSON.stringify(hooks));
assert.equal(hooks[0].secret, undefined, "a listing hides the secret");
assert.deepEqual(await client.getWebhooks({ projectId: "another" }), []);
const renamed = await client.updateWebhook({ webhookId: hook.webhookId, name: "renamed", eventTypes: ["memory_update"] });
assert.equal(renamed.message, "Webhook updated successfully", JSON.stringify(renamed));
const [after_update] = await client.getWebhooks();
assert.equal(after_update.name, "renamed");
assert.deepEqual(after_update.eventTypes, ["memory_update"]);
await assert.rejects(client.createWebhook({ name: "bad", url: "ftp://127.0.0.1/x", eventTypes: ["memory_add"] }),
                     (e) => e.errorCode === "HTTP_400");
const removed = await client.deleteWebhook({ webhookId: hook.webhookId });
assert.equal(removed.message, "Webhook deleted successfully");
assert.deepEqual(await client.getWebhooks(), []);
ok("createWebhook, getWebhooks, updateWebhook, deleteWebhook");

// Exports: the memories themselves (ids, texts, scopes, times), with the schema kept and returned, not filled
const schema = { title: "Profile", type: "object", properties: { hobbies: { type: "array" } } };
const exported = await client.createMemoryExport({ schema, filters: { user_id: "bea" }, exportInstructions: "newest first" });
assert.ok(typeof exported.id === "string" && typeof exported.message === "string", JSON.stringify(exported));
const fetched = await client.getMemoryExport({ memoryExportId: exported.id });
assert.equal(fetched.id, exported.id, JSON.stringify(fetched));
assert.equal(fetched.count, 1);
assert.equal(fetched.memories[0].memory, "Bea keeps bees");
assert.equal(fetched.memories[0].userId, "bea");
assert.ok(fetched.memories[0].createdAt && fetched.memories[0].updatedAt, JSON.stringify(fetched.memories[0]));
assert.deepEqual(fetched.schema, schema);
assert.equal(fetched.exportInstructions, "newest first");
assert.equal((await client.getMemoryExport({ filters: { user_id: "bea" } })).id, exported.id, "the newest matching export");
await assert.rejects(client.getMemoryExport({ memoryExportId: "00000000-0000-4000-8000-000000000000" }),
                     (e) => e.errorCode === "HTTP_404");
ok("createMemoryExport, getMemoryExport");

// Erasure: deleteUser (DELETE /v1/entities/{type}/{id}/) and deleteUsers (DELETE /v2/entities/{type}/{name}/)
// take the entity's memories and their history, and leave the others
const diary = await client.add([{ role: "user", content: "Dan keeps a diary" }], { userId: "dan", infer: false });
await client.update(diary.results[0].id, { text: "Dan keeps a secret diary" });
await client.add([{ role: "user", content: "Eve likes chess" }], { userId: "eve", infer: false });
await client.add([{ role: "user", content: "Fay sings" }], { userId: "fay", infer: false });
const byUser = await client.deleteUser({ entity_type: "user", entity_id: "dan" });
assert.equal(typeof byUser.message, "string", JSON.stringify(byUser));
assert.equal((await client.getAll({ filters: { user_id: "dan" } })).results.length, 0);
assert.deepEqual(await client.history(diary.results[0].id), [], "the purged memory's history is gone");
const byName = await client.deleteUsers({ userId: "eve" });
assert.equal(byName.message, "Entity deleted successfully.", JSON.stringify(byName));
assert.equal((await client.getAll({ filters: { user_id: "eve" } })).results.length, 0);
assert.equal((await client.getAll({ filters: { user_id: "fay" } })).results.length, 1, "other users stay");
ok("deleteUser, deleteUsers");

// Projects: a key bound to acme/prod; ping gives the client its organization and project, which getProject and
// updateProject use; its memories are its project's only
const prod = new MemoryClient({ apiKey: prodKey, host });
await prod.ping();
assert.equal(prod.organizationId, "acme");
assert.equal(prod.projectId, "prod");
const settings = await prod.updateProject({ customInstructions: "Only remember food preferences",
                                            customCategories: [{ food: "what they eat" }] });
assert.equal(settings.project.customInstructions, "Only remember food preferences", JSON.stringify(settings));
const project = await prod.getProject({ fields: ["custom_instructions", "custom_categories"] });
assert.equal(project.customInstructions, "Only remember food preferences", JSON.stringify(project));
assert.deepEqual(Object.keys(project).sort(), ["customCategories", "customInstructions"]);
await prod.add([{ role: "user", content: "Bea keeps bees in the city" }], { userId: "bea", infer: false });
const inProd = await prod.getAll({ filters: { user_id: "bea" } });
assert.deepEqual(inProd.results.map((m) => m.memory), ["Bea keeps bees in the city"], JSON.stringify(inProd));
assert.equal(inProd.results[0].projectId, "prod");
const inDefault = await client.getAll({ filters: { user_id: "bea" } });
assert.deepEqual(inDefault.results.map((m) => m.memory), ["Bea keeps bees"], "the default project's bea only");
await assert.rejects(prod.getAll({ filters: { user_id: "bea", org_id: "acme", project_id: "staging" } }),
                     (e) => e.errorCode === "HTTP_403");
ok("ping's project, getProject, updateProject, memories kept per project");
"""


def main():
    if len(sys.argv) != 2:
        fail("usage: test_mem0_sdk.py ENGRAM_SERVER_BIN")
    binary = sys.argv[1]
    if not shutil.which("node") or not shutil.which("npm"):
        skip("node and npm are needed to run the mem0ai SDK")
    work = tempfile.mkdtemp(prefix="engram-mem0-sdk-test-")
    try:
        cached = os.environ.get("ENGRAM_MEM0_SDK_DIR", "")
        if cached and os.path.isdir(os.path.join(cached, "node_modules", "mem0ai")):
            os.symlink(os.path.join(cached, "node_modules"), os.path.join(work, "node_modules"))
        else:
            print("installing mem0ai into " + work)
            r = subprocess.run("npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error mem0ai "
                               ">/dev/null", shell=True, cwd=work, capture_output=True, text=True, timeout=600)
            check("npm installed mem0ai", r.returncode == 0, r.stdout + r.stderr)
        keys = os.path.join(work, "keys")
        with open(keys, "w") as f:
            f.write(KEY + " admin\n" + PROD_KEY + " admin org=acme project=prod\n")
        srv = Server(binary, os.path.join(work, "data"), ["--keys", keys, "--log-format", "off"])
        try:
            script = os.path.join(work, "client.mjs")
            with open(script, "w") as f:
                f.write(CLIENT_JS)
            env = dict(os.environ, MEM0_TELEMETRY="false")
            r = subprocess.run(["node", script, srv.base, KEY, PROD_KEY], cwd=work, capture_output=True, text=True,
                               timeout=300, env=env)
            print(r.stdout, end="")
            check("the mem0ai SDK works against engram-server", r.returncode == 0, (r.stderr or r.stdout)[-4000:])
        finally:
            srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
