#!/usr/bin/env python3
"""The dashboard at /ui/ in a real browser: Debian's chromium, headless, driven by puppeteer-core from npm.

usage: test_dashboard.py ENGRAM_SERVER_BIN SCREENSHOT_DIR

Seeds a keyed server over REST, then in the browser: signs in with the admin key, lists the scopes, opens a
user's memories (paged, newest first), filters them, searches with explained scores, opens a memory and its
history, edits it, deletes it, adds one through the form, deletes a scope, shows the status page; a memory
holding markup shows as text and runs nothing; a key bound to one user cannot reach another user's page. The
page's answers carry a Content-Security-Policy without inline scripts. A screenshot of each page is written to
SCREENSHOT_DIR. Exits 77 (skipped) when node, npm or chromium is missing; puppeteer-core is installed into a
temporary folder (or taken from $ENGRAM_PUPPETEER_DIR).
"""
import os
import shutil
import subprocess
import sys
import tempfile

from live_server import Server, check, fail, skip

ADMIN_KEY = "admin-key-0123456789abcdef"
ALICE_KEY = "alice-key-0123456789abcdef"
HOSTILE = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\"> likes angle brackets"


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


BROWSER_JS = r"""
import puppeteer from "puppeteer-core";
import assert from "node:assert/strict";

const [base, chrome, shots, adminKey, aliceKey, hostile] = process.argv.slice(2);
const browser = await puppeteer.launch({ executablePath: chrome, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
const page = await browser.newPage();
await page.setViewport({ width: 1200, height: 900 });
const problems = [];
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("console", (m) => { if (m.type() === "error" && !/status of 40[134]/.test(m.text())) problems.push("console: " + m.text()); });
page.on("dialog", (d) => d.accept());
const ok = (what) => console.log("ok: " + what);
const text = (sel) => page.$eval(sel, (e) => e.textContent);
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
async function signIn(key) {
  await page.evaluate(() => { sessionStorage.clear(); location.hash = "#/login"; });
  await page.waitForSelector("#key");
  await page.$eval("#key", (e) => { e.value = ""; });
  await page.type("#key", key);
  await Promise.all([page.waitForFunction(() => location.hash === "#/scopes", { polling: 100 }), page.click("#login")]);
}

// sign in, scopes
await page.goto(base + "/ui/");
await page.waitForFunction(() => location.hash === "#/login", { polling: 100 });
await page.type("#key", "wrong-key-0123456789");
await page.click("#login");
await page.waitForSelector("[data-error]");
assert.match(await text("[data-error]"), /401/);
ok("a wrong key is refused on the sign-in page");
await shot("login");
await signIn(adminKey);
await page.waitForSelector("table[data-scopes=user]");
const users = await page.$$eval("table[data-scopes=user] tbody tr", (rows) => rows.map((r) => r.textContent));
assert.deepEqual(users, ["alice23", "bob1"]);
ok("scopes list users with their counts");
await shot("scopes");

// one scope: paged, newest first
await Promise.all([page.waitForSelector("#memories"), page.click("table[data-scopes=user] a[href='#/scope/user/alice']")]);
assert.equal(await text("#page"), "page 1 of 2 · 23 memories");
let rows = await page.$$eval("#memories tbody tr", (rs) => rs.map((r) => r.querySelector("a").textContent));
assert.equal(rows.length, 20);
assert.equal(rows[0], "Alice note 20", "newest first");
assert.equal(rows[19], "Alice note 1");
ok("a scope's memories, newest first");
await shot("scope");
await page.click("#next");
await page.waitForFunction(() => document.querySelector("#page")?.textContent.startsWith("page 2"), { polling: 100 });
rows = await page.$$eval("#memories tbody tr", (rs) => rs.map((r) => r.querySelector("a").textContent));
assert.deepEqual(rows, [hostile, "Alice keeps bees in the garden", "Alice note 21"], "the oldest last (note 21 happened in 2001)");
assert.equal(await page.evaluate(() => window.pwned), undefined, "markup in a memory ran");
assert.equal(await page.$$eval("#memories img, #memories script", (x) => x.length), 0);
ok("the second page holds the oldest; markup in a memory shows as text and runs nothing");
await shot("scope-page-2");

// filter, search with explain
await page.type("#filter", '{"topic": "hobby"}');
await page.click("#apply-filter");
await page.waitForFunction(() => document.querySelector("#page")?.textContent.endsWith(" 1 memories"), { polling: 100 });
await page.type("#query", "bees garden");
await page.click("#search");
await page.waitForSelector("#hits");
const hit = await page.$eval("#hits tbody tr", (r) => r.textContent);
assert.match(hit, /Alice keeps bees in the garden/);
assert.match(hit, /final/);
ok("filter and search with explained scores");
await shot("search");
await page.$eval("#filter", (e) => { e.value = "{oops"; });
await page.click("#apply-filter");
await page.waitForSelector("#list [data-error]");
assert.match(await text("#list [data-error]"), /not JSON/);
ok("a malformed filter is reported, not sent");

// one memory: history, edit, delete
await Promise.all([page.waitForSelector("#memory-text"), page.click("#hits a")]);
assert.equal(await text("#memory-text"), "Alice keeps bees in the garden");
assert.match(await text("#history"), /ADD/);
await shot("memory");
await page.$eval("#edit-text", (e) => { e.value = "Alice keeps bees on the roof"; });
await page.click("#save");
await page.waitForFunction(() => document.querySelector("#memory-text")?.textContent === "Alice keeps bees on the roof", { polling: 100 });
const history = await text("#history");
assert.match(history, /UPDATE/);
assert.match(history, /Alice keeps bees in the garden → Alice keeps bees on the roof/);
ok("edit, and the history shows old → new");
await shot("memory-edited");
const id = decodeURIComponent((await page.evaluate(() => location.hash)).split("/")[2]);
await Promise.all([page.waitForFunction(() => location.hash === "#/scope/user/alice", { polling: 100 }), page.click("#delete")]);
const gone = await fetch(`${base}/v1/memories/${id}/`, { headers: { Authorization: "Token " + adminKey } });
assert.equal(gone.status, 404);
ok("delete from the memory page");

// add through the form
await page.waitForSelector("#add-text");
await page.type("#add-text", "Alice added this from the dashboard");
await page.click("#add");
await page.waitForFunction(() => [...document.querySelectorAll("#memories a")].some((a) => a.textContent === "Alice added this from the dashboard"), { polling: 100 });
ok("add through the form");

// delete a scope
await page.goto(base + "/ui/#/scope/user/bob");
// the hash changes in the same page: wait for bob's page itself, not the #memories of the page before it
await page.waitForFunction(() => document.querySelector("#scope-id")?.textContent === "bob" &&
                                 document.querySelector("#delete-scope"), { polling: 100 });
await Promise.all([page.waitForFunction(() => location.hash === "#/scopes", { polling: 100 }), page.click("#delete-scope")]);
await page.waitForSelector("table[data-scopes=user]");
assert.deepEqual(await page.$$eval("table[data-scopes=user] a", (as) => as.map((a) => a.textContent)), ["alice"]);
ok("delete a scope after confirming");

// status
await page.goto(base + "/ui/#/status");
await page.waitForSelector("#routes");
assert.match(await text("#routes"), /POST \/v2\/memories\/search\//);
assert.match(await text("main"), /file/);
ok("status page: store, counts, latency percentiles");
await shot("status");

// a key bound to alice
await signIn(aliceKey);
await page.waitForSelector("table[data-scopes=user]");
assert.deepEqual(await page.$$eval("table[data-scopes=user] a", (as) => as.map((a) => a.textContent)), ["alice"]);
await page.goto(base + "/ui/#/scope/user/bob");
await page.waitForSelector("[data-error]");
assert.match(await text("[data-error]"), /403/);
ok("a key bound to alice cannot open bob's page");
await shot("bound-key-refused");
await page.goto(base + "/ui/#/status");
await page.waitForSelector("#health");
assert.match(await text("main"), /admin key/);
ok("a bound key's status page has no metrics");

await browser.close();
assert.deepEqual(problems, []);
ok("no script errors");
"""


def main():
    if len(sys.argv) != 3:
        fail("usage: test_dashboard.py ENGRAM_SERVER_BIN SCREENSHOT_DIR")
    binary, shots = sys.argv[1], os.path.abspath(sys.argv[2])
    if not shutil.which("node") or not shutil.which("npm"):
        skip("node and npm are needed to drive the browser (puppeteer-core)")
    chrome = chromium()
    if not chrome:
        skip("chromium is not installed (Debian package chromium; scripts/install-deps.sh installs it)")
    os.makedirs(shots, exist_ok=True)
    work = tempfile.mkdtemp(prefix="engram-dashboard-test-")
    try:
        cached = os.environ.get("ENGRAM_PUPPETEER_DIR", "")
        if cached and os.path.isdir(os.path.join(cached, "node_modules", "puppeteer-core")):
            os.symlink(os.path.join(cached, "node_modules"), os.path.join(work, "node_modules"))
        else:
            print("installing puppeteer-core into " + work)
            r = subprocess.run("npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "
                               "puppeteer-core >/dev/null", shell=True, cwd=work, capture_output=True, text=True,
                               timeout=600)
            check("npm installed puppeteer-core", r.returncode == 0, r.stdout + r.stderr)
        keys = os.path.join(work, "keys")
        with open(keys, "w") as f:
            f.write(f"{ADMIN_KEY} admin\n{ALICE_KEY} user alice\n")
        srv = Server(binary, os.path.join(work, "data"), ["--keys", keys, "--log-format", "off"], key=ADMIN_KEY)
        try:
            def add(text, user, **extra):
                status, _, body = srv.call("POST", "/v1/memories/", dict({"messages": text, "user_id": user,
                                                                          "infer": False}, **extra))
                check("seeded " + text[:30], status == 200, body)

            add("Alice keeps bees in the garden", "alice", metadata={"topic": "hobby"})
            add(HOSTILE, "alice")
            for i in range(1, 21):
                add(f"Alice note {i}", "alice")
            add("Alice note 21", "alice", timestamp="2001-01-01T00:00:00Z")  # an old conversation: not the newest
            add("Bob has a secret plan", "bob")
            status, headers, body = srv.call("GET", "/ui/")
            csp = headers.get("Content-Security-Policy", "")
            check("the page is served with a CSP without inline scripts",
                  status == 200 and "script-src 'self'" in csp and "unsafe-inline" not in csp and
                  "frame-ancestors 'none'" in csp, (status, csp))
            check("the page holds no inline script", "<script>" not in body and 'src="app.js"' in body)
            script = os.path.join(work, "browser.mjs")
            with open(script, "w") as f:
                f.write(BROWSER_JS)
            r = subprocess.run(["node", script, srv.base, chrome, shots, ADMIN_KEY, ALICE_KEY, HOSTILE], cwd=work,
                               capture_output=True, text=True, timeout=600)
            print(r.stdout, end="")
            check("the dashboard works in chromium", r.returncode == 0, r.stderr[-6000:])
            print("screenshots in " + shots)
        finally:
            srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
