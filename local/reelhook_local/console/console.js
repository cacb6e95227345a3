// reelhook console: jobs, one job's timeline and outputs, a submit form built from GET /v1/models.
// Every piece of API data reaches the page as a text node or a checked attribute: no innerHTML.
"use strict";

(() => {
  const LIST_POLL_MS = 3000;
  const JOB_POLL_MS = 2000;
  const PAGE_SIZE = 25;
  const STATUSES = ["queued", "submitted", "running", "storing", "succeeded", "failed", "cancelled"];
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
  const STORE_KEY = "reelhook.console.connection";
  const INPUT_LISTS = ["reference_images", "reference_videos"];
  const INPUT_URLS = ["first_frame", "last_frame", "source_video"];

  // -- DOM helpers ------------------------------------------------------------------------------

  const $ = (selector, root = document) => root.querySelector(selector);

  function safeUrl(value) {
    if (typeof value !== "string" || value === "") return null;
    if (value.startsWith("#")) return value;
    try {
      const url = new URL(value, location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch {
      return null;
    }
  }

  // el("a", {href, class}, "text", child...): strings become text nodes, URLs must be http(s).
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "href" || key === "src" || key === "poster") {
        const url = safeUrl(value);
        if (url) node.setAttribute(key, url);
      } else if (key === "value" || key === "checked" || key === "selected") node[key] = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    put(node, ...children);
    return node;
  }

  function put(node, ...children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function replace(node, ...children) {
    node.replaceChildren();
    return put(node, ...children);
  }

  const pill = (status) => el("span", { class: `pill s-${STATUSES.includes(status) ? status : "other"}` }, status);

  function ago(iso) {
    const at = Date.parse(iso);
    if (Number.isNaN(at)) return "";
    const s = Math.max(0, (Date.now() - at) / 1000);
    if (s < 60) return `${Math.floor(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h`;
    return `${Math.floor(s / 86400)} d`;
  }

  const when = (iso) => (iso && !Number.isNaN(Date.parse(iso)) ? new Date(iso).toLocaleString() : "");

  function seconds(ms) {
    const s = ms / 1000;
    return s < 10 ? `${s.toFixed(1)} s` : s < 120 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`;
  }

  function bytes(n) {
    if (typeof n !== "number") return "";
    return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
  }

  // -- connection settings (sessionStorage only) -----------------------------------------------

  let connection = { api_url: "", auth: "none", token: "", iam: {} };

  function loadStored() {
    try {
      const raw = sessionStorage.getItem(STORE_KEY);
      return raw ? JSON.parse(raw) : null;
    } catch {
      return null;
    }
  }

  async function loadConnection() {
    const stored = loadStored();
    if (stored) {
      connection = { ...connection, ...stored };
      return;
    }
    // Served by the local stack: it says how its front wants calls made. Elsewhere there is none.
    try {
      const answer = await fetch("config.json", { cache: "no-store", credentials: "omit" });
      if (answer.ok) {
        const config = await answer.json();
        connection = { ...connection, ...config, iam: config.iam || {} };
        return;
      }
    } catch {
      // opened from a file or a plain static host: ask
    }
    showSettings(true);
  }

  function apiBase() {
    const base = (connection.api_url || "").trim().replace(/\/+$/, "");
    if (base) return base;
    if (location.origin === "null" || !location.protocol.startsWith("http")) {
      throw new Error("set the API base URL under Connection");
    }
    return location.origin;
  }

  function describeConnection() {
    let where;
    try {
      where = apiBase();
    } catch {
      where = "no API set";
    }
    const auth = { none: "no auth", bearer: "bearer token", iam: "IAM (SigV4)" }[connection.auth] || connection.auth;
    replace($("#connection"), `${where} · ${auth}`);
  }

  function showSettings(open) {
    const panel = $("#settings");
    panel.hidden = !open;
    $("#settings-toggle").setAttribute("aria-expanded", String(open));
    if (!open) return;
    const form = $("#settings-form");
    form.elements.api_url.value = connection.api_url || "";
    form.elements.auth.value = connection.auth || "none";
    form.elements.token.value = connection.token || "";
    for (const name of ["access_key", "secret_key", "session_token", "region"]) {
      form.elements[name].value = (connection.iam || {})[name] || "";
    }
    showAuthFields();
  }

  function showAuthFields() {
    const mode = $("#settings-form").elements.auth.value;
    for (const block of document.querySelectorAll("[data-auth]")) block.hidden = block.dataset.auth !== mode;
  }

  function saveSettings(event) {
    event.preventDefault();
    const form = event.target;
    const value = (name) => form.elements[name].value.trim();
    connection = {
      api_url: value("api_url"),
      auth: value("auth"),
      token: value("token"),
      iam: { access_key: value("access_key"), secret_key: value("secret_key"),
             session_token: value("session_token"), region: value("region") },
    };
    sessionStorage.setItem(STORE_KEY, JSON.stringify(connection));
    models = null;
    describeConnection();
    showSettings(false);
    route();
  }

  // -- the API ------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || (body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.code = error.code || "";
      this.fields = Array.isArray(error.fields) ? error.fields : [];
    }
  }

  // RFC 3986: what SigV4 signs, so the query is sent exactly as signed.
  const encode = (text) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

  async function api(method, path, { query = null, body, headers = {} } = {}) {
    const pairs = Object.entries(query || {}).filter(([, v]) => v !== "" && v !== null && v !== undefined);
    const search = pairs.map(([k, v]) => `${encode(k)}=${encode(String(v))}`).join("&");
    const url = new URL(apiBase() + path + (search ? `?${search}` : ""));
    const text = body === undefined ? "" : JSON.stringify(body);
    const sent = { accept: "application/json", ...headers };
    if (body !== undefined) sent["content-type"] = "application/json";
    if (connection.auth === "bearer" && connection.token) sent.authorization = `Bearer ${connection.token}`;
    if (connection.auth === "iam") Object.assign(sent, await sigv4(method, url, text, connection.iam || {}));
    const answer = await fetch(url, { method, headers: sent, body: body === undefined ? undefined : text,
                                      cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
    let data = null;
    try {
      data = await answer.json();
    } catch {
      data = null;
    }
    if (!answer.ok) throw new ApiError(answer.status, data);
    return data;
  }

  // -- SigV4 for execute-api, as botocore signs (host and x-amz-date; the body hashed) ------------

  const utf8 = new TextEncoder();
  const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  const sha256 = async (text) => hex(await crypto.subtle.digest("SHA-256", utf8.encode(text)));

  async function hmac(key, text) {
    const raw = typeof key === "string" ? utf8.encode(key) : key;
    const imported = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return crypto.subtle.sign("HMAC", imported, utf8.encode(text));
  }

  async function sigv4(method, url, body, keys) {
    if (!globalThis.crypto || !crypto.subtle) throw new Error("IAM signing needs https or localhost");
    if (!keys.access_key || !keys.secret_key) throw new Error("set the IAM keys under Connection");
    const region = keys.region || "us-east-1";
    const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
    const scope = `${amzDate.slice(0, 8)}/${region}/execute-api/aws4_request`;
    const headers = { host: url.host, "x-amz-date": amzDate };
    if (keys.session_token) headers["x-amz-security-token"] = keys.session_token;
    const names = Object.keys(headers).sort();
    const path = (url.pathname || "/").replace(/[^A-Za-z0-9\-._~/]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
    const query = url.search.slice(1).split("&").filter(Boolean)
      .map((pair) => { const at = pair.indexOf("="); return at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)]; })
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`).join("&");
    const canonical = [method.toUpperCase(), path, query,
      `${names.map((n) => `${n}:${String(headers[n]).trim().replace(/\s+/g, " ")}`).join("\n")}\n`,
      names.join(";"), await sha256(body)].join("\n");
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256(canonical)].join("\n");
    let key = await hmac(`AWS4${keys.secret_key}`, amzDate.slice(0, 8));
    for (const part of [region, "execute-api", "aws4_request"]) key = await hmac(key, part);
    const signature = hex(await hmac(key, toSign));
    const sent = { "x-amz-date": amzDate, authorization:
      `AWS4-HMAC-SHA256 Credential=${keys.access_key}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}` };
    if (keys.session_token) sent["x-amz-security-token"] = keys.session_token;
    return sent;
  }

  // -- routing between views ---------------------------------------------------------------------

  let generation = 0; // a view's timers and late answers stop counting once another view is shown
  const view = () => $("#view");

  function route() {
    generation += 1;
    const hash = location.hash || "#/";
    for (const link of document.querySelectorAll("[data-nav]")) link.classList.remove("active");
    const job = hash.match(/^#\/jobs\/([^/?#]+)$/);
    if (job) return jobView(decodeURIComponent(job[1]), generation);
    if (hash === "#/new") {
      $('[data-nav="new"]').classList.add("active");
      return formView(generation);
    }
    $('[data-nav="jobs"]').classList.add("active");
    return listView(generation);
  }

  function every(ms, gen, tick) {
    // One request at a time; a hidden tab waits for its next turn.
    const loop = async () => {
      if (gen !== generation) return;
      if (!document.hidden) await tick();
      if (gen === generation) setTimeout(loop, ms);
    };
    loop();
  }

  const problem = (error) => el("p", { class: "error", role: "alert" }, error instanceof ApiError
    ? `${error.status}${error.code ? ` ${error.code}` : ""}: ${error.message}` : String(error.message || error));

  // -- models (GET /v1/models), shared by the list's filters and the form -----------------------

  let models = null;

  async function loadModels() {
    if (!models) {
      const answer = await api("GET", "/v1/models");
      models = answer.models || [];
    }
    return models;
  }

  // -- the job list ------------------------------------------------------------------------------

  const filters = { status: "", model: "", provider: "", client_reference: "" };

  function listView(gen) {
    const status = el("p", { class: "muted", id: "list-status" }, "Loading…");
    const body = el("tbody", { id: "jobs" });
    const more = el("button", { type: "button", class: "secondary", id: "load-more", hidden: true }, "Load more");
    const select = (name, values) => el("select", { name, onchange: (e) => { filters[name] = e.target.value; refresh(); } },
      el("option", { value: "" }, `any ${name}`),
      values.map((v) => el("option", { value: v, selected: filters[name] === v }, v)));
    const modelSelect = select("model", []);
    const providerSelect = select("provider", []);
    const reference = el("input", { name: "client_reference", placeholder: "client reference", value: filters.client_reference,
                                    onchange: (e) => { filters.client_reference = e.target.value.trim(); refresh(); } });
    replace(view(),
      el("section", { class: "panel" },
        el("div", { class: "bar" }, el("h1", {}, "Jobs"),
          el("form", { class: "filters", onsubmit: (e) => {
            e.preventDefault();
            filters.client_reference = reference.value.trim();
            refresh();
          } },
            select("status", STATUSES), modelSelect, providerSelect, reference)),
        el("table", { class: "jobs" },
          el("thead", {}, el("tr", {}, ["Job", "Status", "Model", "Provider", "Age", "Prompt"].map((h) => el("th", {}, h)))),
          body),
        more, status));

    loadModels().then((list) => {
      if (gen !== generation) return;
      const providers = [...new Set(list.filter((m) => m.provider).map((m) => m.provider))].sort();
      put(modelSelect, list.map((m) => el("option", { value: m.id, selected: filters.model === m.id }, m.id)));
      put(providerSelect, providers.map((p) => el("option", { value: p, selected: filters.provider === p }, p)));
    }).catch(() => {});

    let first = [];
    let older = [];
    let cursor = null;

    function draw() {
      const seen = new Set(first.map((j) => j.id));
      const rows = first.concat(older.filter((j) => !seen.has(j.id)));
      replace(body, rows.length ? rows.map(row) : el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No jobs.")));
      more.hidden = !cursor;
    }

    function row(job) {
      const prompt = (job.request && job.request.prompt) || "";
      return el("tr", { "data-job": job.id },
        el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id)),
        el("td", {}, pill(job.status)),
        el("td", {}, job.model),
        el("td", {}, job.provider),
        el("td", { title: when(job.created_at) }, ago(job.created_at)),
        el("td", { class: "prompt" }, prompt.length > 80 ? `${prompt.slice(0, 80)}…` : prompt));
    }

    async function fetchPage(after) {
      return api("GET", "/v1/jobs", { query: { ...filters, limit: PAGE_SIZE, cursor: after } });
    }

    async function tick() {
      try {
        const page = await fetchPage(null);
        if (gen !== generation) return;
        first = page.jobs || [];
        if (!older.length) cursor = page.next_cursor || null;
        draw();
        replace(status, `Updated ${new Date().toLocaleTimeString()}; refreshing every ${LIST_POLL_MS / 1000} s.`);
      } catch (error) {
        if (gen === generation) replace(status, problem(error));
      }
    }

    function refresh() {
      older = [];
      cursor = null;
      tick();
    }

    more.addEventListener("click", async () => {
      try {
        const page = await fetchPage(cursor);
        older = older.concat(page.jobs || []);
        cursor = page.next_cursor || null;
        draw();
      } catch (error) {
        replace(status, problem(error));
      }
    });

    every(LIST_POLL_MS, gen, tick);
  }

  // -- one job -----------------------------------------------------------------------------------

  function jobView(id, gen) {
    const head = el("div", { class: "bar" });
    const message = el("div", { id: "job-message" });
    const summary = el("dl", { class: "summary" });
    const timeline = el("section", { class: "panel", id: "timeline" });
    const outputs = el("section", { class: "panel", id: "outputs" });
    const attempts = el("section", { class: "panel", id: "attempts" });
    const request = el("section", { class: "panel", id: "request" });
    replace(view(), el("section", { class: "panel" }, head, message, summary), timeline, outputs, attempts, request);
    replace(head, el("h1", {}, id));
    let outputsKey = null;
    let finished = false;

    function draw(job) {
      finished = TERMINAL.has(job.status);
      const cancel = finished ? null : el("button", { type: "button", id: "cancel", class: "danger", onclick: cancelJob }, "Cancel job");
      replace(head, el("h1", {}, job.id), pill(job.status), cancel);
      const item = (label, ...value) => [el("dt", {}, label), el("dd", {}, ...value)];
      replace(summary,
        item("Model", job.model),
        item("Provider", job.provider),
        job.route ? item("Route", `${job.route.provider} · ${job.route.model}`) : null,
        job.client_reference ? item("Client reference", job.client_reference) : null,
        item("Created", when(job.created_at), el("span", { class: "muted" }, ` (${ago(job.created_at)} ago)`)),
        item("Updated", when(job.updated_at)),
        typeof job.progress === "number" ? item("Progress", `${job.progress} %`) : null,
        job.waiting_for ? item("Waiting for", job.waiting_for) : null,
        job.error ? item("Error", el("code", {}, job.error.code), " ", job.error.message) : null,
        job.cancellation ? item("Cancelled", when(job.cancellation.at),
          job.cancellation.provider_task_may_continue ? " (the provider's task may still run)" : "") : null,
        job.submit_outcome ? item("Submit outcome", job.submit_outcome, job.submit_error ? `: ${job.submit_error}` : "") : null,
        job.warnings && job.warnings.length ? item("Warnings", el("ul", {}, job.warnings.map((w) => el("li", {}, w)))) : null);
      drawTimeline(job);
      // Presigned URLs change on every read: the player is rebuilt only when the outputs do.
      const key = JSON.stringify((job.outputs || []).map((o) => [o.s3_uri, o.version_id, o.sha256]));
      if (key !== outputsKey) {
        outputsKey = key;
        drawOutputs(job);
      }
      drawAttempts(job);
      replace(request, el("h2", {}, "Request"),
        el("pre", { class: "json", id: "request-json" }, JSON.stringify(job.request || {}, null, 2)),
        job.effective ? [el("h3", {}, "Sent to the provider (effective)"),
                         el("pre", { class: "json" }, JSON.stringify(job.effective, null, 2))] : null);
    }

    function drawTimeline(job) {
      const events = (job.events || []).filter((e) => e && e.at).slice()
        .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
      const start = events.length ? Date.parse(events[0].at) : Date.now();
      const end = TERMINAL.has(job.status) && events.length ? Date.parse(events[events.length - 1].at) : Date.now();
      const total = Math.max(1, end - start);
      // A bar per status, as wide as the time spent in it.
      const bar = el("div", { class: "track", role: "img", "aria-label": "time in each status" },
        events.map((e, i) => {
          const until = i + 1 < events.length ? Date.parse(events[i + 1].at) : end;
          const share = Math.max(0.5, ((until - Date.parse(e.at)) / total) * 100);
          return el("span", { class: `seg s-${STATUSES.includes(e.status) ? e.status : "other"}`,
                              style: null, title: `${e.status}: ${seconds(until - Date.parse(e.at))}`,
                              "data-share": share.toFixed(1) }, e.status);
        }));
      for (const seg of bar.children) seg.style.flexGrow = seg.dataset.share; // CSSOM: no inline style attribute
      const known = new Set(["status", "at", "source"]);
      const list = el("ol", { class: "events" }, events.map((e) => el("li", { class: "event", "data-status": e.status },
        el("span", { class: `dot s-${STATUSES.includes(e.status) ? e.status : "other"}` }),
        el("div", {},
          el("strong", {}, e.status), " ",
          el("time", { datetime: e.at, title: e.at }, when(e.at)), " ",
          el("span", { class: "muted" }, `+${seconds(Date.parse(e.at) - start)}`),
          e.source ? el("span", { class: "tag" }, e.source) : null,
          el("div", { class: "detail" }, Object.entries(e).filter(([k]) => !known.has(k))
            .map(([k, v]) => el("span", {}, `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)))))));
      replace(timeline, el("h2", {}, "Timeline"), bar, list);
    }

    function drawOutputs(job) {
      const items = job.outputs || [];
      replace(outputs, el("h2", {}, "Outputs"), items.length ? items.map((o, i) => {
        const media = o.media || {};
        const url = o.download_url || o.url;
        const facts = [media.container, media.width && media.height ? `${media.width}×${media.height}` : null,
          typeof media.duration_s === "number" ? `${media.duration_s.toFixed(2)} s` : null,
          media.fps ? `${media.fps} fps` : null, media.video_codec,
          media.audio ? `audio ${media.audio.codec}` : media.container ? "no audio" : null, bytes(o.bytes)]
          .filter(Boolean).join(" · ");
        return el("article", { class: "output" },
          el("video", { controls: true, preload: "metadata", playsinline: true, src: url, poster: o.poster_url,
                        "data-output": i }),
          el("div", { class: "output-info" },
            el("p", {}, facts),
            o.poster_url ? el("figure", {}, el("img", { class: "poster", src: o.poster_url, alt: "poster: the first frame" }),
                                          el("figcaption", { class: "muted" }, "Poster")) : null,
            el("p", { class: "links" },
              url ? el("a", { href: url, download: "", class: "download" }, "Download video") : null,
              o.poster_url ? el("a", { href: o.poster_url, download: "", class: "download-poster" }, "Download poster") : null),
            el("p", { class: "muted mono" }, o.s3_uri),
            o.sha256 ? el("p", { class: "muted mono" }, `sha256 ${o.sha256}`) : null));
      }) : el("p", { class: "muted" }, finished ? "No outputs." : "Not stored yet."));
    }

    function drawAttempts(job) {
      const rows = job.attempts || [];
      replace(attempts, el("h2", {}, "Attempts"), el("table", {},
        el("thead", {}, el("tr", {}, ["Provider", "Model", "Task", "Outcome", "Started", "Ended", "Reason"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows.map((a) => el("tr", {},
          el("td", {}, a.provider), el("td", {}, a.model), el("td", { class: "mono" }, a.task_id || ""),
          el("td", {}, a.outcome), el("td", {}, when(a.started_at)), el("td", {}, when(a.ended_at)),
          el("td", {}, a.reason || ""))))));
    }

    async function cancelJob(event) {
      event.target.disabled = true;
      try {
        const job = await api("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`);
        replace(message, el("p", { class: "notice" }, "Cancelled."));
        draw(job);
      } catch (error) {
        replace(message, error.code === "job_finished"
          ? el("p", { class: "notice" }, "The job had already finished.") : problem(error));
        event.target.disabled = false;
        tick();
      }
    }

    async function tick() {
      if (finished) return;
      try {
        const job = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
        if (gen === generation) draw(job);
      } catch (error) {
        if (gen === generation) replace(message, problem(error));
      }
    }

    every(JOB_POLL_MS, gen, tick);
  }

  // -- the submit form, from GET /v1/models ----------------------------------------------------

  const union = (lists) => {
    const out = [];
    for (const list of lists) for (const v of list || []) if (!out.includes(v)) out.push(v);
    return out;
  };

  // A logical model takes what its routes take: the form offers the union and the API checks each route.
  function fieldsOf(entry, byId) {
    const specs = entry.logical ? (entry.routes || []).map((r) => byId.get(r.model)).filter(Boolean) : [entry];
    const inputs = new Map();
    for (const spec of specs) {
      for (const mode of spec.modes || []) {
        for (const [name, rule] of Object.entries(mode.inputs || {})) {
          const seen = inputs.get(name) || { max: 0, notes: [] };
          seen.max = Math.max(seen.max, rule.max || 0);
          if (rule.note && !seen.notes.includes(rule.note)) seen.notes.push(rule.note);
          inputs.set(name, seen);
        }
      }
    }
    const options = new Map();
    for (const spec of specs) for (const [name, opt] of Object.entries(spec.options || {})) if (!options.has(name)) options.set(name, opt);
    const single = specs.length === 1 ? specs[0] : null;
    return {
      specs,
      promptRequired: specs.some((s) => s.prompt && s.prompt.required),
      promptMax: Math.max(0, ...specs.map((s) => (s.prompt && s.prompt.max_length) || 0)) || null,
      negative: specs.some((s) => s.negative_prompt),
      inputs,
      durations: union(specs.map((s) => s.durations)).sort((a, b) => a - b),
      aspectRatios: union(specs.map((s) => s.aspect_ratios)),
      resolutions: union(specs.map((s) => s.resolutions)),
      audio: specs.some((s) => s.audio && s.audio.accepted),
      seed: specs.find((s) => s.seed) ? specs.find((s) => s.seed).seed : null,
      options,
      defaults: single ? single.defaults || {} : {},
      modes: specs.flatMap((s) => (s.modes || []).map((m) => `${s.id}: ${m.name} (${m.description})`)),
    };
  }

  function field(name, label, control, hint) {
    return el("div", { class: "field", "data-field": name },
      el("label", { for: control.id }, label), control,
      hint ? el("p", { class: "hint" }, hint) : null,
      el("p", { class: "field-error", role: "alert", "data-error-for": name }));
  }

  const fieldId = (name) => `f-${name.replace(/[^A-Za-z0-9]/g, "-")}`;

  function choice(name, values, defaultNote) {
    return el("select", { id: fieldId(name), name },
      el("option", { value: "" }, defaultNote ? `default (${defaultNote})` : "default"),
      values.map((v) => el("option", { value: String(v) }, String(v))));
  }

  function defaultNote(fields, name) {
    const d = fields.defaults[name];
    return d && d.value !== null && d.value !== undefined ? String(d.value) : "";
  }

  function formView(gen) {
    const message = el("div", { id: "form-message" });
    const modelSelect = el("select", { id: "f-model", name: "model", required: true });
    const fieldsBox = el("div", { id: "model-fields" });
    const about = el("p", { class: "hint", id: "model-about" });
    const form = el("form", { id: "job-form", class: "panel", novalidate: true, autocomplete: "off" },
      el("h1", {}, "New job"),
      message,
      field("model", "Model", modelSelect),
      about,
      fieldsBox,
      el("div", { class: "actions" }, el("button", { type: "submit", id: "submit-job" }, "Create job")));
    replace(view(), form);
    let current = null;
    let byId = new Map();

    loadModels().then((list) => {
      if (gen !== generation) return;
      byId = new Map(list.map((m) => [m.id, m]));
      const logical = list.filter((m) => m.logical);
      const providers = [...new Set(list.filter((m) => !m.logical).map((m) => m.provider))];
      put(modelSelect,
        el("option", { value: "" }, "choose a model"),
        logical.length ? el("optgroup", { label: "Any provider (logical)" }, logical.map((m) => el("option", { value: m.id }, m.id))) : null,
        providers.map((p) => el("optgroup", { label: p },
          list.filter((m) => !m.logical && m.provider === p).map((m) => el("option", { value: m.id }, m.id)))));
      modelSelect.addEventListener("change", () => showModel(modelSelect.value));
    }).catch((error) => replace(message, problem(error)));

    function showModel(id) {
      const entry = byId.get(id);
      current = entry ? fieldsOf(entry, byId) : null;
      clearErrors();
      replace(about, entry ? [entry.title || "", entry.description ? ` ${entry.description}` : ""] : "");
      if (!entry) return replace(fieldsBox);
      const f = current;
      const parts = [];
      parts.push(field("prompt", f.promptRequired ? "Prompt (required)" : "Prompt (optional)",
        el("textarea", { id: fieldId("prompt"), name: "prompt", rows: 4, maxlength: f.promptMax })));
      if (f.negative) {
        parts.push(field("negative_prompt", "Negative prompt",
          el("textarea", { id: fieldId("negative_prompt"), name: "negative_prompt", rows: 2 }),
          defaultNote(f, "negative_prompt") ? `default: ${defaultNote(f, "negative_prompt")}` : null));
      }
      for (const name of INPUT_LISTS) {
        if (!f.inputs.has(name)) continue;
        const rule = f.inputs.get(name);
        parts.push(field(name, `${name.replace(/_/g, " ")} (one URL a line, up to ${rule.max})`,
          el("textarea", { id: fieldId(name), name, rows: 2, spellcheck: "false" }), rule.notes.join("; ") || null));
      }
      for (const name of INPUT_URLS) {
        if (!f.inputs.has(name)) continue;
        parts.push(field(name, name.replace(/_/g, " "), el("input", { id: fieldId(name), name, type: "url", spellcheck: "false" }),
          f.inputs.get(name).notes.join("; ") || null));
      }
      if (f.modes.length) parts.push(el("details", { class: "hint" }, el("summary", {}, "Modes (which inputs go together)"),
        el("ul", {}, f.modes.map((m) => el("li", {}, m)))));
      if (f.durations.length) parts.push(field("duration", "Duration (s)", choice("duration", f.durations, defaultNote(f, "duration"))));
      if (f.aspectRatios.length) parts.push(field("aspect_ratio", "Aspect ratio", choice("aspect_ratio", f.aspectRatios, defaultNote(f, "aspect_ratio"))));
      if (f.resolutions.length) parts.push(field("resolution", "Resolution", choice("resolution", f.resolutions, defaultNote(f, "resolution"))));
      if (f.audio) parts.push(field("audio", "Audio", choice("audio", ["true", "false"], defaultNote(f, "audio"))));
      if (f.seed) {
        parts.push(field("seed", "Seed", el("input", { id: fieldId("seed"), name: "seed", type: "number", step: 1,
          min: f.seed.minimum, max: f.seed.maximum })));
      }
      for (const [name, opt] of f.options) {
        const key = `options.${name}`;
        let control;
        if (opt.type === "boolean") control = choice(key, ["true", "false"], defaultNote(f, key));
        else if (opt.choices) control = choice(key, opt.choices, defaultNote(f, key));
        else if (opt.type === "integer" || opt.type === "number") {
          control = el("input", { id: fieldId(key), name: key, type: "number", step: opt.type === "integer" ? 1 : "any",
                                  min: opt.minimum, max: opt.maximum });
        } else control = el("input", { id: fieldId(key), name: key });
        control.dataset.kind = opt.type || "string";
        parts.push(field(key, `Option ${name}`, control, opt.description || null));
      }
      const entry2 = byId.get(id);
      if (entry2.logical) {
        const providers = union([(entry2.routes || []).map((r) => r.provider)]);
        parts.push(el("fieldset", { class: "field", "data-field": "routing.providers" },
          el("legend", {}, "Providers to try (none ticked: every route, in the deployment's order)"),
          providers.map((p) => el("label", { class: "inline" },
            el("input", { type: "checkbox", name: "routing.providers", value: p }), ` ${p}`)),
          el("p", { class: "field-error", role: "alert", "data-error-for": "routing.providers" })));
        parts.push(field("routing.failover", "Failover", choice("routing.failover", ["submit", "any", "none"],
          entry2.failover_default || "")));
      }
      parts.push(field("client_reference", "Client reference", el("input", { id: fieldId("client_reference"), name: "client_reference", maxlength: 256 })));
      parts.push(field("notify_url", "notify_url (https)", el("input", { id: fieldId("notify_url"), name: "notify_url", type: "url" })));
      parts.push(field("idempotency_key", "Idempotency-Key", el("input", { id: fieldId("idempotency_key"), name: "idempotency_key" }),
        "the same key and body give back the same job"));
      replace(fieldsBox, parts);
    }

    function body() {
      const data = { model: modelSelect.value };
      const value = (name) => {
        const control = form.elements.namedItem(name);
        return control && typeof control.value === "string" ? control.value.trim() : "";
      };
      for (const name of ["prompt", "negative_prompt", "aspect_ratio", "resolution", "client_reference", "notify_url", ...INPUT_URLS]) {
        const v = name === "prompt" || name === "negative_prompt" ? (form.elements.namedItem(name) || {}).value || "" : value(name);
        if (v) data[name] = v;
      }
      for (const name of INPUT_LISTS) {
        const lines = value(name).split("\n").map((l) => l.trim()).filter(Boolean);
        if (lines.length) data[name] = lines;
      }
      for (const name of ["duration", "seed"]) {
        const v = value(name);
        if (v) data[name] = /^-?\d+$/.test(v) ? Number(v) : v; // a non-number goes as sent: the API names the field
      }
      if (value("audio")) data.audio = value("audio") === "true";
      if (current) {
        const options = {};
        for (const [name, opt] of current.options) {
          const v = value(`options.${name}`);
          if (!v) continue;
          if (opt.type === "boolean") options[name] = v === "true";
          else if ((opt.type === "integer" || opt.type === "number") && v !== "" && !Number.isNaN(Number(v))) options[name] = Number(v);
          else options[name] = v;
        }
        if (Object.keys(options).length) data.options = options;
      }
      const ticked = [...form.querySelectorAll('input[name="routing.providers"]:checked')].map((c) => c.value);
      const failover = value("routing.failover");
      if (ticked.length || failover) data.routing = { ...(ticked.length ? { providers: ticked } : {}), ...(failover ? { failover } : {}) };
      return data;
    }

    function clearErrors() {
      replace(message);
      for (const node of form.querySelectorAll(".field-error")) replace(node);
      for (const node of form.querySelectorAll(".field.invalid")) node.classList.remove("invalid");
    }

    // "reference_images[1].url" -> "reference_images"; "routing.providers[0]" -> "routing.providers".
    function slotFor(name) {
      const candidates = [name, name.replace(/\[\d+\].*$/, ""), name.split(".")[0].replace(/\[\d+\]$/, "")];
      for (const candidate of candidates) {
        const slot = [...form.querySelectorAll("[data-error-for]")].find((n) => n.dataset.errorFor === candidate);
        if (slot) return slot;
      }
      return null;
    }

    function showErrors(error) {
      const loose = [];
      for (const item of error.fields) {
        const text = [item.route ? `${item.route}:` : null, item.message,
          Array.isArray(item.allowed) && item.allowed.length <= 20 ? `(allowed: ${item.allowed.join(", ")})` : null]
          .filter(Boolean).join(" ");
        const slot = slotFor(String(item.field || ""));
        if (slot) {
          put(slot, el("span", {}, text));
          slot.closest(".field").classList.add("invalid");
        } else loose.push(el("li", {}, `${item.field}: ${text}`));
      }
      replace(message, problem(error), loose.length ? el("ul", { class: "error" }, loose) : null);
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors();
      const button = $("#submit-job");
      button.disabled = true;
      try {
        const key = form.elements.namedItem("idempotency_key");
        const headers = key && key.value.trim() ? { "idempotency-key": key.value.trim() } : {};
        const job = await api("POST", "/v1/jobs", { body: body(), headers });
        location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
      } catch (error) {
        if (gen !== generation) return;
        if (error instanceof ApiError) showErrors(error);
        else replace(message, problem(error));
      } finally {
        button.disabled = false;
      }
    });
  }

  // -- start -------------------------------------------------------------------------------------

  async function start() {
    $("#settings-toggle").addEventListener("click", () => showSettings($("#settings").hidden));
    $("#settings-form").addEventListener("submit", saveSettings);
    $("#settings-form").elements.auth.addEventListener("change", showAuthFields);
    $("#settings-forget").addEventListener("click", () => {
      sessionStorage.removeItem(STORE_KEY);
      location.reload();
    });
    await loadConnection();
    describeConnection();
    window.addEventListener("hashchange", route);
    route();
  }

  start();
})();
