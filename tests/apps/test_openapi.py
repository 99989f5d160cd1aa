#!/usr/bin/env python3
"""engram-server's OpenAPI description against the server itself.

usage: test_openapi.py ENGRAM_SERVER_BIN SOURCE_DIR

Checks: docs/openapi.json is what scripts/openapi.py writes; GET /openapi.json answers it, without a key; every
route examples/server/main.cpp registers (each route's name is a literal "METHOD /path" there) is described
and every described operation exists on the live server (it never answers "no such route"); then, with node
and npm, `@apidevtools/swagger-parser` (installed from the npm registry into a temporary folder) validates the
document as OpenAPI 3.1 and `ajv` checks live answers of the main routes against their response schemas.
Exits 1 on a failure; 77 (skipped) when node or npm is missing, after every other check passed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from live_server import Server, check, fail, skip

ADMIN_KEY = "admin-key-0123456789abcdef"
METHODS = ("get", "put", "post", "delete", "patch")


def normalise(path):
    """/memories/{memory_id}/ and /memories/{id}/ are one route."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def registered_routes(source_dir):
    with open(os.path.join(source_dir, "examples", "server", "main.cpp")) as f:
        text = f.read()
    return {(m.group(1).lower(), normalise(m.group(2)))
            for m in re.finditer(r'"(GET|POST|PUT|DELETE|PATCH) (/[^" ]*)"', text)}


def sample_calls(srv, spec_paths):
    """Live answers of the main routes: (path template, method, status, body) to validate against the spec."""
    samples = []

    def call(method, template, path, body=None):
        status, headers, text = srv.call(method, path, body)
        ctype = headers.get("Content-Type", "")
        check(f"{method.upper()} {path} answered JSON", "application/json" in ctype, (status, ctype, text[:200]))
        samples.append({"path": template, "method": method, "status": str(status), "body": json.loads(text)})
        return status, json.loads(text)

    status, added = call("post", "/v1/memories/", "/v1/memories/", {
        "messages": [{"role": "user", "content": "Ines keeps bees on her roof in Porto"}], "user_id": "ines",
        "metadata": {"topic": "hobby"}, "infer": False})
    check("a sample add", status == 200, added)
    mid = added["results"][0]["id"]
    call("post", "/memories", "/memories", {"messages": "Ines drinks mint tea", "user_id": "ines", "infer": False})
    # a queued add (async_mode) and its event, once finished
    status, queued = call("post", "/v3/memories/add/", "/v3/memories/add/",
                          {"messages": "Ines grows figs", "user_id": "ines", "async_mode": True})
    check("a queued add", status == 200 and queued.get("status") == "PENDING", queued)
    call("post", "/v1/memories/", "/v1/memories/", {"messages": "Ines sails", "user_id": "ines", "async_mode": True})
    for _ in range(500):
        _, _, text = srv.call("GET", "/v1/event/%s/" % queued["event_id"])
        if json.loads(text).get("status") in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.02)
    call("get", "/v1/event/{event_id}/", "/v1/event/%s/" % queued["event_id"])
    call("get", "/v1/event/{event_id}/", "/v1/event/00000000-0000-4000-8000-000000000000/")  # 404
    call("get", "/v1/events/", "/v1/events/?page=1&page_size=1")
    call("post", "/v3/memories/add/", "/v3/memories/add/",
         {"messages": "Ines runs on Sundays", "user_id": "ines", "infer": False, "output_format": "v1.0"})
    call("post", "/v2/memories/search/", "/v2/memories/search/",
         {"query": "bees", "filters": {"user_id": "ines"}, "explain": True})
    call("post", "/search", "/search", {"query": "tea", "user_id": "ines", "fields": ["memory"]})
    call("post", "/v2/memories/", "/v2/memories/?page=1&page_size=2", {"filters": {"user_id": "ines"}})
    call("get", "/memories", "/memories?user_id=ines")
    call("get", "/v1/memories/{memory_id}/", f"/v1/memories/{mid}/")
    call("put", "/v1/memories/{memory_id}/", f"/v1/memories/{mid}/", {"text": "Ines keeps bees in Braga", "metadata": {"n": 1}})
    call("get", "/v1/memories/{memory_id}/history/", f"/v1/memories/{mid}/history/")
    call("put", "/v1/batch/", "/v1/batch/", {"memories": [{"memory_id": mid, "text": "Ines keeps bees in Faro"}]})
    call("delete", "/v1/batch/", "/v1/batch/", {"memories": [{"memory_id": "00000000-0000-4000-8000-000000000000"}]})  # 404
    call("get", "/v1/entities/", "/v1/entities/")
    call("get", "/v1/ping/", "/v1/ping/")
    orgs = "/api/v1/orgs/organizations/{org_id}/projects/"
    status, made = call("post", orgs, "/api/v1/orgs/organizations/engram/projects/", {"name": "Sample", "description": "d"})
    check("a project created", status == 200 and "project_id" in made, made)
    call("get", orgs, "/api/v1/orgs/organizations/engram/projects/")
    call("post", orgs, "/api/v1/orgs/organizations/engram/projects/", {"name": "Sample"})  # 400: the name is taken
    call("get", "/health", "/health")
    call("get", "/memories/{memory_id}", "/memories/00000000-0000-4000-8000-000000000000")  # 404
    call("post", "/search", "/search", {"user_id": "ines"})  # 400: no query
    call("delete", "/v1/memories/{memory_id}/", f"/v1/memories/{mid}/")
    call("delete", "/v1/memories/", "/v1/memories/?user_id=ines")
    call("post", "/mcp", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    for s in samples:
        check(f"sample {s['method'].upper()} {s['path']} {s['status']} is described",
              s["status"] in spec_paths[s["path"]][s["method"]]["responses"], s)
    return samples


VALIDATE_JS = r"""
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv2020 from "ajv/dist/2020.js";
import { readFileSync } from "node:fs";

const [specPath, samplesPath] = process.argv.slice(2);
const raw = JSON.parse(readFileSync(specPath, "utf8"));
await SwaggerParser.validate(structuredClone(raw));  // throws on an invalid OpenAPI 3.1 document
console.log("ok: swagger-parser validates the document as OpenAPI " + raw.openapi);
const spec = await SwaggerParser.dereference(structuredClone(raw));
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
let failed = 0;
for (const s of JSON.parse(readFileSync(samplesPath, "utf8"))) {
  const response = spec.paths[s.path][s.method].responses[s.status];
  const schema = response.content["application/json"].schema;
  const validate = ajv.compile(schema);
  if (validate(s.body)) {
    console.log(`ok: ${s.method.toUpperCase()} ${s.path} ${s.status} matches its schema`);
  } else {
    failed++;
    console.error(`FAIL: ${s.method.toUpperCase()} ${s.path} ${s.status}: ` + JSON.stringify(validate.errors) +
                  "\n  body: " + JSON.stringify(s.body).slice(0, 500));
  }
}
process.exit(failed ? 1 : 0);
"""


def validate_with_node(spec_file, samples, work):
    if not shutil.which("node") or not shutil.which("npm"):
        skip("node and npm are needed to validate the document (swagger-parser) and the answers (ajv); every "
             "other check passed")
    cached = os.environ.get("ENGRAM_OPENAPI_NODE_DIR", "")
    if cached and os.path.isdir(os.path.join(cached, "node_modules", "@apidevtools", "swagger-parser")):
        os.symlink(os.path.join(cached, "node_modules"), os.path.join(work, "node_modules"))
    else:
        print("installing @apidevtools/swagger-parser and ajv into " + work)
        r = subprocess.run("npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "
                           "@apidevtools/swagger-parser ajv >/dev/null", shell=True, cwd=work, capture_output=True,
                           text=True, timeout=600)
        check("npm installed the validators", r.returncode == 0, r.stdout + r.stderr)
    samples_file = os.path.join(work, "samples.json")
    with open(samples_file, "w") as f:
        json.dump(samples, f)
    script = os.path.join(work, "validate.mjs")
    with open(script, "w") as f:
        f.write(VALIDATE_JS)
    r = subprocess.run(["node", script, spec_file, samples_file], cwd=work, capture_output=True, text=True, timeout=300)
    print(r.stdout, end="")
    check("the document is valid OpenAPI 3.1 and the answers match it", r.returncode == 0, r.stderr[-4000:])


def main():
    if len(sys.argv) != 3:
        fail("usage: test_openapi.py ENGRAM_SERVER_BIN SOURCE_DIR")
    binary, source = sys.argv[1], sys.argv[2]
    spec_file = os.path.join(source, "docs", "openapi.json")
    r = subprocess.run([sys.executable, os.path.join(source, "scripts", "openapi.py"), "--check"],
                       capture_output=True, text=True)
    check("docs/openapi.json is what scripts/openapi.py writes", r.returncode == 0, r.stderr)
    with open(spec_file) as f:
        spec = json.load(f)
    described = {(m, normalise(p)) for p, ops in spec["paths"].items() for m in ops if m in METHODS}
    registered = registered_routes(source)
    check("routes found in main.cpp", len(registered) >= 20, registered)
    check("every registered route is described", not registered - described, sorted(registered - described))
    check("every described route is registered", not described - registered, sorted(described - registered))

    work = tempfile.mkdtemp(prefix="engram-openapi-test-")
    try:
        keys = os.path.join(work, "keys")
        with open(keys, "w") as f:
            f.write(ADMIN_KEY + " admin\n")
        srv = Server(binary, os.path.join(work, "data"), ["--keys", keys, "--log-format", "off"], key=ADMIN_KEY)
        try:
            status, headers, text = srv.call("GET", "/openapi.json", key=None)
            check("GET /openapi.json needs no key and answers the document",
                  status == 200 and "application/json" in headers.get("Content-Type", "") and json.loads(text) == spec,
                  status)
            for path, ops in spec["paths"].items():
                live = path.replace("{memory_id}", "00000000-0000-4000-8000-00000000abcd")
                for method in (m for m in ops if m in METHODS):
                    if path == "/reset":
                        continue  # exists (listed in main.cpp); calling it is the last step below
                    status, _, text = srv.call(method, live, {} if method in ("post", "put") else None)
                    check(f"{method.upper()} {path} exists", "no such route" not in text and status != 405
                          or path == "/mcp", (status, text[:200]))
            samples = sample_calls(srv, spec["paths"])
            status, _, text = srv.call("POST", "/reset")
            check("POST /reset exists", status == 200, text)
        finally:
            srv.stop()
        validate_with_node(spec_file, samples, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
