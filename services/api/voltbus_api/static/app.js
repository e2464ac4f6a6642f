// voltbus web page: login, live connector state over SSE, commands, history and reports.
"use strict";
const API = "/api/v1";
const $ = (sel, root = document) => root.querySelector(sel);
let stations = {};        // station id -> StationState
let source = null;        // EventSource
let me = null;

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
  if (init.body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(init.body); }
  const r = await fetch(API + path, init);
  if (r.status === 401 && path !== "/auth/login") { showLogin(); throw new Error("not logged in"); }
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error(body?.detail || `HTTP ${r.status}`);
  return body;
}

function showLogin() {
  if (source) { source.close(); source = null; }
  $("#app-view").hidden = true; $("#login-view").hidden = false; $("#logout").hidden = true;
  $("#who").textContent = "";
}

async function showApp() {
  me = await api("/auth/me");
  $("#who").textContent = `${me.name} (${me.role})`;
  document.body.classList.toggle("viewer", me.role !== "admin");
  $("#login-view").hidden = true; $("#app-view").hidden = false; $("#logout").hidden = false;
  connectStream();
  loadHistory();
  updateReportLinks();
}

function connectStream() {
  if (source) source.close();
  source = new EventSource(API + "/events");
  source.addEventListener("snapshot", (e) => {
    stations = {};
    for (const st of JSON.parse(e.data)) stations[st.station] = st;
    render();
  });
  source.addEventListener("change", (e) => applyChange(JSON.parse(e.data)));
  source.addEventListener("resync", () => connectStream());
  source.onerror = async () => {
    // EventSource retries by itself; check whether the session ended.
    try { await api("/auth/me"); } catch (err) { /* showLogin ran */ }
  };
}

function connectorOf(st, n) {
  let c = st.connectors.find((x) => x.connector === n);
  if (!c) { c = { station: st.station, connector: n }; st.connectors.push(c); st.connectors.sort((a, b) => a.connector - b.connector); }
  return c;
}

function applyChange(ch) {
  const st = stations[ch.station];
  if (!st) return;
  if (ch.kind === "ocpp") st.ocpp = ch.data;
  else if (ch.kind === "service") st.services[ch.data.service] = ch.data.state;
  else if (ch.kind === "station_status") st.station_status = ch.data;
  else if (ch.kind === "recorder") st.recorder = ch.data;
  else if (ch.connector != null) {
    const field = ch.kind === "session" ? "last_session" : ch.kind;
    connectorOf(st, ch.connector)[field] = ch.data;
    if (ch.kind === "session") loadHistory();
  }
  render();
}

const fmt = {
  kw: (w) => (w == null ? "–" : `${(w / 1000).toFixed(2)} kW`),
  kwh: (wh) => (wh == null ? "–" : `${(wh / 1000).toFixed(3)} kWh`),
  at: (iso) => { const d = new Date(iso), hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
    return d.toDateString() === new Date().toDateString() ? hm : `${d.toLocaleDateString([], { weekday: "short" })} ${hm}`; },
  dur: (s) => { s = Math.max(0, Math.round(s)); const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    return `${h}:${String(m).padStart(2, "0")}:${String(x).padStart(2, "0")}`; },
};

function render() {
  const root = $("#stations");
  const link = Object.values(stations).map((st) => {
    const down = Object.entries(st.services || {}).filter(([, state]) => state !== "online").map(([name]) => name);
    const recorder = st.recorder && !st.recorder.ok ? " · recording delayed (InfluxDB)" : "";
    return `${st.station}: central system ${st.ocpp?.connected ? "connected" : "not connected"}` +
      (down.length ? ` · offline: ${down.join(", ")}` : "") + recorder;
  });
  $("#link").textContent = link.join(" · ");
  for (const st of Object.values(stations)) {
    for (const c of st.connectors) {
      const id = `c-${st.station}-${c.connector}`;
      let card = document.getElementById(id);
      if (!card) {
        card = $("#connector-template").content.firstElementChild.cloneNode(true);
        card.id = id;
        card.dataset.station = st.station; card.dataset.connector = c.connector;
        wire(card);
        root.appendChild(card);
      }
      fill(card, c);
    }
  }
}

function fill(card, c) {
  const status = c.status?.status || "Unknown";
  $(".name", card).textContent = `${c.station} / ${c.connector}`;
  const badge = $(".status", card); badge.textContent = status; badge.className = `status badge ${status}`;
  $(".power", card).textContent = fmt.kw(c.meter?.power_w);
  $(".energy", card).textContent = c.transaction ? fmt.kwh(c.transaction.energy_wh) : "–";
  $(".idtag", card).textContent = c.transaction?.id_tag || "–";
  $(".limit", card).textContent = c.charging?.current_limit_a != null ? `${c.charging.current_limit_a} A` : "–";
  $(".hwerror", card).textContent = c.error && c.error.code !== "NoError" ? c.error.code : "none";
  card.dataset.started = c.transaction?.started_at || "";
  $(".stop", card).disabled = !c.transaction;
  const note = offpeakNote(c.charging);
  $(".offpeak", card).textContent = note; $(".offpeak", card).hidden = !note;
  $(".offpeak", card).classList.toggle("waiting", !!c.charging?.offpeak_waiting);
  $(".override", card).hidden = !c.charging?.offpeak_waiting;
  tick(card);
}

// Off-peak charging: a session held until the window opens, an override, or when it opens next.
function offpeakNote(charging) {
  if (!charging) return "";
  const until = charging.offpeak_until ? fmt.at(charging.offpeak_until) : null;
  if (charging.offpeak_waiting) return until ? `waiting for off-peak (starts ${until})` : "waiting for off-peak";
  if (charging.offpeak_override) return "off-peak overridden: charging now";
  return until ? `off-peak starts ${until}` : "";
}

function tick(card) {
  const started = card.dataset.started;
  $(".elapsed", card).textContent = started ? fmt.dur((Date.now() - Date.parse(started)) / 1000) : "–";
}
setInterval(() => document.querySelectorAll(".connector").forEach(tick), 1000);

function wire(card) {
  const path = () => `/stations/${encodeURIComponent(card.dataset.station)}/connectors/${card.dataset.connector}`;
  const run = async (what, body) => {
    $("#command-error").textContent = "";
    try { await api(`${path()}/${what}`, { method: "POST", body }); }
    catch (err) { $("#command-error").textContent = `${card.dataset.station}/${card.dataset.connector} ${what}: ${err.message}`; }
  };
  $(".start", card).addEventListener("submit", (e) => { e.preventDefault(); run("start", { id_tag: $(".start-tag", card).value.trim() }); });
  $(".stop", card).addEventListener("click", () => run("stop"));
  $(".override", card).addEventListener("click", () => run("offpeak_override"));
  $(".limit-form", card).addEventListener("submit", (e) => { e.preventDefault(); run("current_limit", { amps: Number($(".limit-amps", card).value) }); });
}

async function loadHistory() {
  const page = await api("/sessions?limit=50");
  const tbody = $("#history tbody");
  tbody.replaceChildren();
  for (const s of page.items) {
    const tr = document.createElement("tr");
    for (const [text, cls] of [[new Date(s.started_at).toLocaleString([], { dateStyle: "short", timeStyle: "short" }), ""], [`${s.station}/${s.connector}`, ""],
      [s.id_tag, ""], [fmt.dur(s.duration_s), "num"], [(s.energy_wh / 1000).toFixed(3), "num"]]) {
      const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
  $("#history-totals").textContent = `${page.total} sessions, ${(page.total_energy_wh / 1000).toFixed(3)} kWh in total` +
    (page.influx_error ? " (InfluxDB unreachable: showing the API's own copy)" : "");
}

function updateReportLinks() {
  const month = $("#report-month").value;
  const tag = $("#report-tag").value.trim();
  for (const f of ["csv", "xlsx", "pdf"]) {
    const q = tag ? `?id_tag=${encodeURIComponent(tag)}` : "";
    $(`#report-${f}`).href = `${API}/reports/${month}.${f}${q}`;
  }
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api("/auth/login", { method: "POST", body: { username: $("#login-user").value, password: $("#login-password").value } });
    $("#login-password").value = "";
    await showApp();
  } catch (err) { $("#login-error").textContent = err.message; }
});
$("#logout").addEventListener("click", async () => { try { await api("/auth/logout", { method: "POST" }); } finally { showLogin(); } });
$("#report-month").value = new Date().toISOString().slice(0, 7);
$("#report-month").addEventListener("input", updateReportLinks);
$("#report-tag").addEventListener("input", updateReportLinks);

showApp().catch(() => showLogin());
