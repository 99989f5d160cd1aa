// engram dashboard: a page per hash route over engram-server's own REST routes, with the key the user gives
// (kept in this tab's sessionStorage). Every value from the server is put in the page as text (textContent),
// never as HTML, so a memory holding markup shows as what it is.
"use strict";

const KEY_ITEM = "engram-key";
const PAGE_SIZE = 20;
const SCOPE_KEYS = { user: "user_id", agent: "agent_id", run: "run_id" };

// ---- small helpers -------------------------------------------------------------------------------------

/** An element with attributes (`on*` functions become listeners) and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "value") node.value = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 3000);
}

function errorBox(e) {
  return el("p", { class: "error", "data-error": "" }, e instanceof Error ? e.message : String(e));
}

function key() {
  return sessionStorage.getItem(KEY_ITEM);
}

class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
  }
}

/** Calls a route with the key; the parsed JSON answer, or an ApiError carrying the server's detail. */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const k = key();
  if (k) headers.Authorization = "Token " + k;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    if (res.status === 401) {
      sessionStorage.removeItem(KEY_ITEM);
      location.hash = "#/login";
    }
    throw new ApiError(res.status, (json && json.detail) || text || res.statusText);
  }
  return json;
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

function pretty(value) {
  return el("pre", {}, JSON.stringify(value, null, 2));
}

function scopeLink(type, id) {
  return el("a", { href: `#/scope/${type}/${encodeURIComponent(id)}` }, id);
}

function memoryLink(m) {
  return el("a", { href: `#/memory/${encodeURIComponent(m.id)}`, class: "memory-text" }, m.memory);
}

function scopeOf(m) {
  const out = [];
  for (const [type, field] of Object.entries(SCOPE_KEYS)) if (m[field]) out.push(type + ": ", scopeLink(type, m[field]), " ");
  return out;
}

function categories(m) {
  return (m.categories || []).map((c) => el("span", { class: "tag" }, c));
}

// ---- pages ---------------------------------------------------------------------------------------------

function loginPage() {
  const input = el("input", { type: "password", id: "key", autocomplete: "off", placeholder: "API key" });
  const out = el("div");
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY_ITEM, input.value.trim());
      try {
        await api("GET", "/v1/ping/");
        location.hash = "#/scopes";
      } catch (e) {
        sessionStorage.removeItem(KEY_ITEM);
        out.replaceChildren(errorBox(e));
      }
    },
  },
  el("div", { class: "row" }, input, el("button", { type: "submit", id: "login" }, "Sign in")));
  show(el("section", { class: "card" }, el("h1", {}, "Sign in"),
    el("p", { class: "muted" }, "The key is kept in this browser tab only. A server started without --keys accepts an empty key."),
    form, out));
  input.focus();
}

async function scopesPage() {
  const { results } = await api("GET", "/v1/entities/");
  const byType = { user: [], agent: [], run: [] };
  for (const e of results) (byType[e.type] || []).push(e);
  const sections = Object.entries(byType).map(([type, list]) =>
    el("section", { class: "card" }, el("h2", {}, type === "user" ? "Users" : type === "agent" ? "Agents" : "Runs"),
      list.length === 0 ? el("p", { class: "muted" }, "none")
        : el("table", { "data-scopes": type },
          el("thead", {}, el("tr", {}, el("th", {}, "id"), el("th", {}, "memories"))),
          el("tbody", {}, list.map((e) => el("tr", {}, el("td", {}, scopeLink(type, e.id)),
            el("td", { class: "num" }, e.total_memories)))))));
  show(el("h1", {}, "Scopes"), ...sections);
}

function memoryTable(memories, withScore) {
  return el("table", { id: withScore ? "hits" : "memories" },
    el("thead", {}, el("tr", {}, withScore ? el("th", {}, "score") : null, el("th", {}, "memory"),
      el("th", {}, "categories"), el("th", {}, withScore ? "terms" : "created"))),
    el("tbody", {}, memories.map((m) => el("tr", { "data-id": m.id },
      withScore ? el("td", { class: "num" }, m.score.toFixed(3)) : null,
      el("td", {}, memoryLink(m)),
      el("td", {}, categories(m)),
      el("td", { class: withScore ? "muted" : "" }, withScore && m.score_details
        ? Object.entries(m.score_details).filter(([, v]) => v).map(([k, v]) => `${k} ${Number(v).toFixed(3)}`).join(", ")
        : when(m.created_at))))));
}

async function scopePage(type, id, page) {
  const field = SCOPE_KEYS[type];
  if (!field) throw new Error("unknown scope type " + type);
  const scope = { [field]: id };
  const filterInput = el("textarea", { id: "filter", placeholder: '{"metadata.topic": "travel"}  (Mem0 filter grammar)' });
  const queryInput = el("input", { type: "text", id: "query", placeholder: "search this scope" });
  const mode = el("select", { id: "mode" }, ["hybrid", "semantic", "keyword"].map((m) => el("option", { value: m }, m)));
  const listOut = el("div", { id: "list" });
  const searchOut = el("div", { id: "search-results" });
  const addText = el("textarea", { id: "add-text", placeholder: "something to remember" });
  const infer = el("input", { type: "checkbox", id: "add-infer" });
  const addOut = el("div");

  function filters() {
    const text = filterInput.value.trim();
    if (!text) return scope;
    let extra;
    try {
      extra = JSON.parse(text);
    } catch (e) {
      throw new Error("the filter is not JSON: " + e.message);
    }
    return { AND: [scope, extra] };
  }

  async function list(p) {
    listOut.replaceChildren(el("p", { class: "muted" }, "loading…"));
    try {
      const f = filters();
      // newest first: the server pages oldest first, so read the pages holding this page's range from the end
      const { count } = await api("POST", "/v2/memories/", { filters: f, page: 1, page_size: 1 });
      const pages = Math.max(1, Math.ceil(count / PAGE_SIZE));
      p = Math.min(Math.max(1, p), pages);
      const hi = count - (p - 1) * PAGE_SIZE, lo = Math.max(0, hi - PAGE_SIZE);
      const items = [];
      if (hi > 0) {
        for (let sp = Math.floor(lo / PAGE_SIZE) + 1; sp <= Math.floor((hi - 1) / PAGE_SIZE) + 1; ++sp) {
          const r = await api("POST", "/v2/memories/", { filters: f, page: sp, page_size: PAGE_SIZE });
          r.results.forEach((m, i) => {
            const at = (sp - 1) * PAGE_SIZE + i;
            if (at >= lo && at < hi) items.push(m);
          });
        }
      }
      items.reverse();
      const pager = el("div", { class: "pager" },
        el("button", { class: "secondary", id: "prev", disabled: p <= 1, onclick: () => list(p - 1) }, "Newer"),
        el("span", { id: "page" }, `page ${p} of ${pages} · ${count} memories`),
        el("button", { class: "secondary", id: "next", disabled: p >= pages, onclick: () => list(p + 1) }, "Older"));
      listOut.replaceChildren(pager, items.length ? memoryTable(items, false) : el("p", { class: "muted" }, "no memories"));
    } catch (e) {
      listOut.replaceChildren(errorBox(e));
    }
  }

  async function search(ev) {
    ev.preventDefault();
    searchOut.replaceChildren();
    if (!queryInput.value.trim()) return;
    try {
      const r = await api("POST", "/v2/memories/search/",
        { query: queryInput.value, filters: filters(), mode: mode.value, explain: true, top_k: 20 });
      searchOut.replaceChildren(r.results.length ? memoryTable(r.results, true) : el("p", { class: "muted" }, "no match"));
    } catch (e) {
      searchOut.replaceChildren(errorBox(e));
    }
  }

  async function add(ev) {
    ev.preventDefault();
    try {
      const r = await api("POST", "/v1/memories/", { messages: addText.value, [field]: id, infer: infer.checked });
      addText.value = "";
      addOut.replaceChildren(el("p", { class: "muted" }, r.results.map((x) => `${x.event}: ${x.memory}`).join("\n") || "nothing new to remember"));
      toast("added");
      list(1);
    } catch (e) {
      addOut.replaceChildren(errorBox(e));
    }
  }

  async function deleteScope() {
    if (!confirm(`Delete every memory of ${type} "${id}"? Their history is kept.`)) return;
    try {
      const r = await api("DELETE", `/v1/memories/?${field}=${encodeURIComponent(id)}`);
      toast(`deleted ${r.deleted} memories`);
      location.hash = "#/scopes";
    } catch (e) {
      listOut.replaceChildren(errorBox(e));
    }
  }

  show(el("h1", {}, `${type} `, el("span", { id: "scope-id" }, id)),
    el("section", { class: "card" }, el("h2", {}, "Search"),
      el("form", { onsubmit: search }, el("div", { class: "row" }, queryInput, mode,
        el("button", { type: "submit", id: "search" }, "Search"))), searchOut),
    el("section", { class: "card" }, el("h2", {}, "Memories, newest first"),
      el("form", { onsubmit: (ev) => { ev.preventDefault(); list(1); } }, filterInput,
        el("div", { class: "row" }, el("button", { type: "submit", class: "secondary", id: "apply-filter" }, "Apply filter"))),
      listOut),
    el("section", { class: "card" }, el("h2", {}, "Add a memory"),
      el("form", { onsubmit: add }, addText, el("div", { class: "row" },
        el("label", {}, infer, " extract facts with the server's extractor (infer)"),
        el("button", { type: "submit", id: "add" }, "Add"))), addOut),
    el("section", { class: "card" }, el("h2", {}, "Danger zone"),
      el("button", { class: "danger", id: "delete-scope", onclick: deleteScope }, `Delete every memory of this ${type}`)));
  await list(page);
}

async function memoryPage(id) {
  const path = `/v1/memories/${encodeURIComponent(id)}/`;
  const [m, history] = await Promise.all([api("GET", path), api("GET", path + "history/")]);
  const text = el("textarea", { id: "edit-text", value: m.memory });
  const metadata = el("textarea", { id: "edit-metadata", value: JSON.stringify(m.metadata || {}, null, 2) });
  const out = el("div");

  async function save(ev) {
    ev.preventDefault();
    try {
      let md;
      try {
        md = JSON.parse(metadata.value || "{}");
      } catch (e) {
        throw new Error("metadata is not JSON: " + e.message);
      }
      await api("PUT", path, { text: text.value, metadata: md });
      toast("saved");
      route();
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  }

  async function remove() {
    if (!confirm("Delete this memory? Its history is kept.")) return;
    try {
      await api("DELETE", path);
      toast("deleted");
      const owner = Object.entries(SCOPE_KEYS).find(([, f]) => m[f]);
      location.hash = owner ? `#/scope/${owner[0]}/${encodeURIComponent(m[owner[1]])}` : "#/scopes";
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  }

  show(el("h1", {}, "Memory"),
    el("section", { class: "card" },
      el("p", { class: "memory-text", id: "memory-text" }, m.memory),
      el("dl", {},
        el("dt", {}, "id"), el("dd", {}, m.id),
        el("dt", {}, "scope"), el("dd", {}, scopeOf(m)),
        el("dt", {}, "categories"), el("dd", {}, categories(m)),
        el("dt", {}, "created"), el("dd", {}, when(m.created_at)),
        el("dt", {}, "updated"), el("dd", {}, when(m.updated_at)),
        el("dt", {}, "expires"), el("dd", {}, m.expiration_date || "never"),
        el("dt", {}, "metadata"), el("dd", {}, pretty(m.metadata || {})))),
    el("section", { class: "card" }, el("h2", {}, "Edit"),
      el("form", { onsubmit: save }, el("label", {}, "text"), text, el("label", {}, "metadata (merged into the stored metadata; null removes a key)"),
        metadata, el("div", { class: "row" }, el("button", { type: "submit", id: "save" }, "Save"),
          el("button", { type: "button", class: "danger", id: "delete", onclick: remove }, "Delete"))), out),
    el("section", { class: "card" }, el("h2", {}, "History, oldest first"),
      el("table", { id: "history" }, el("thead", {}, el("tr", {}, el("th", {}, "event"), el("th", {}, "change"), el("th", {}, "when"))),
        el("tbody", {}, history.map((h) => el("tr", {}, el("td", {}, h.event),
          el("td", {}, h.old_memory != null ? el("span", { class: "old" }, h.old_memory) : null,
            h.old_memory != null && h.new_memory != null ? " → " : null,
            h.new_memory != null ? el("span", { class: "new" }, h.new_memory) : null),
          el("td", {}, when(h.updated_at || h.created_at))))))));
}

async function statusPage() {
  const health = await api("GET", "/health");
  const parts = [el("h1", {}, "Status"),
    el("section", { class: "card" }, el("dl", { id: "health" }, el("dt", {}, "status"), el("dd", {}, health.status),
      health.memories !== undefined ? [el("dt", {}, "memories"), el("dd", {}, health.memories)] : []))];
  try {
    const m = await api("GET", "/metrics?format=json");
    parts.push(el("section", { class: "card" }, el("dl", {},
      el("dt", {}, "store"), el("dd", {}, m.store || ""), el("dt", {}, "providers"), el("dd", {}, m.providers || ""),
      el("dt", {}, "memories"), el("dd", {}, m.memories))),
    el("section", { class: "card" }, el("h2", {}, "Requests (latency over the last 1024 of each route)"),
      el("table", { id: "routes" }, el("thead", {}, el("tr", {}, ["route", "count", "errors", "p50 ms", "p95 ms", "p99 ms"].map((h) => el("th", {}, h)))),
        el("tbody", {}, Object.entries(m.routes || {}).map(([name, r]) => el("tr", {}, el("td", {}, name),
          el("td", { class: "num" }, r.count), el("td", { class: "num" }, r.errors),
          [r.p50_us, r.p95_us, r.p99_us].map((us) => el("td", { class: "num" }, (us / 1000).toFixed(2)))))))));
  } catch (e) {
    parts.push(el("p", { class: "muted" }, e.status === 403 ? "Request metrics need an admin key." : e.message));
  }
  show(...parts);
}

// ---- routing -------------------------------------------------------------------------------------------

async function route() {
  const hash = location.hash || "#/scopes";
  const [, page, ...rest] = hash.split("/");
  document.getElementById("who").textContent = "";
  if (page !== "login" && key() === null) {
    location.hash = "#/login";
    return;
  }
  try {
    if (page === "login") return loginPage();
    const ping = await api("GET", "/v1/ping/");
    document.getElementById("who").textContent = ping.user_email || "";
    if (page === "scope") return await scopePage(rest[0], decodeURIComponent(rest[1] || ""), 1);
    if (page === "memory") return await memoryPage(decodeURIComponent(rest[0] || ""));
    if (page === "status") return await statusPage();
    return await scopesPage();
  } catch (e) {
    show(errorBox(e));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_ITEM);
    location.hash = "#/login";
  });
  route();
});
