// voltbus web page: login, live connector state over SSE, power and energy charts (uPlot),
// costs, commands, history, reports, own password and (admin) users.
"use strict";
const API = "/api/v1";
const $ = (sel, root = document) => root.querySelector(sel);
let stations = {};        // station id -> StationState
let source = null;        // EventSource
let me = null;
let prices = { price_per_kwh: null, currency: "" };
let monthCost = null;     // GET /costs: this month's finished sessions
const charts = new Map(); // card id -> { plot, started, ts: [], kw: [] }
let energyPeriod = "day";
let energyPlot = null;

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
  if (init.body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(init.body); }
  const r = await fetch(API + path, init);
  if (r.status === 401 && path !== "/auth/login" && path !== "/auth/password") { showLogin(); throw new Error("not logged in"); }
  const body = r.status !== 204 && r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error(body?.detail || `HTTP ${r.status}`);
  return body;
}

function showLogin() {
  if (source) { source.close(); source = null; }
  $("#app-view").hidden = true; $("#login-view").hidden = false; $("#logout").hidden = true;
  $("#who").textContent = "";
  showFirstLoginHint();
}

// The generated admin password's real path, while it is still in use (else no hint).
async function firstLoginFile() {
  try { return (await api("/auth/first-login")).initial_password_file; } catch { return null; }
}

async function showFirstLoginHint() {
  const path = await firstLoginFile();
  $("#first-login-path").textContent = path || "";
  $("#first-login-hint").hidden = !path;
}

async function showApp() {
  me = await api("/auth/me");
  $("#who").textContent = `${me.name} (${me.role})`;
  document.body.classList.toggle("viewer", me.role !== "admin");
  $("#login-view").hidden = true; $("#app-view").hidden = false; $("#logout").hidden = false;
  $("#account").hidden = me.kind !== "session"; // an API token has no password to change
  connectStream();
  loadCosts().then(loadHistory).then(loadEnergy);
  updateReportLinks();
  if (me.role === "admin") { loadUsers(); checkInitialPassword(); }
}

async function checkInitialPassword() {
  const path = me?.name === "admin" ? await firstLoginFile() : null;
  $("#initial-password-note .path").textContent = path || "";
  $("#initial-password-note").hidden = !path;
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
  else if (ch.kind === "display") st.display = ch.data;
  else if (ch.connector != null) {
    const field = ch.kind === "session" ? "last_session" : ch.kind;
    const c = connectorOf(st, ch.connector);
    c[field] = ch.data;
    if (ch.kind === "session" && !ch.retained) loadCosts().then(loadHistory).then(loadEnergy);
    // one connector changed: fill its card only (every card on every reading was O(connectors))
    fill(cardOf(st, c), c);
    if (ch.kind === "transaction" || ch.kind === "meter") showMonthCost();
    return;
  }
  render();
}

const num = (x, digits) => x.toLocaleString([], { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fmt = {
  kw: (w) => (w == null ? "–" : `${(w / 1000).toFixed(2)} kW`),
  kwh: (wh) => (wh == null ? "–" : `${(wh / 1000).toFixed(3)} kWh`),
  money: (x) => (x == null || prices.price_per_kwh == null ? "–" : `${x.toFixed(2)} ${prices.currency}`),
  at: (iso) => { const d = new Date(iso), hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
    return d.toDateString() === new Date().toDateString() ? hm : `${d.toLocaleDateString([], { weekday: "short" })} ${hm}`; },
  dur: (s) => { s = Math.max(0, Math.round(s)); const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    return `${h}:${String(m).padStart(2, "0")}:${String(x).padStart(2, "0")}`; },
  phases: (values, unit, digits) => (values?.length ? values.map((v) => `${v.toFixed(digits)}`).join(" · ") + ` ${unit}` : "–"),
};
// The report's arithmetic: kWh to 3 decimals times the price, to the cent.
const costOf = (wh) => (prices.price_per_kwh == null ? null : Math.round(Math.round(wh) / 1000 * prices.price_per_kwh * 100 + 1e-9) / 100);
// A running session's cost: the energy manager's at the tariff in force (energy/{c}/cost, from
// energy.js's GET /site) when it prices this very transaction, else at the fixed price.
function runningCost(c) {
  const t = c.transaction;
  if (!t) return null;
  const live = (typeof energyView !== "undefined" && energyView?.costs || []).find((x) =>
    x.station === c.station && x.connector === c.connector && !x.cost.final &&
    Date.parse(x.cost.started_at) === Date.parse(t.started_at));
  return live ? { cost: live.cost.cost, priced: "tariff" } : { cost: costOf(liveEnergy(c)), priced: "fixed" };
}

function fillCost(card, c) {
  const cost = runningCost(c), cell = $(".cost", card);
  cell.textContent = cost ? fmt.money(cost.cost) : "–";
  cell.dataset.priced = cost?.priced || "";
  cell.title = cost?.priced === "tariff" ? "at the tariff in force while charging" : cost ? `at the fixed price ${prices.price_per_kwh}/kWh` : "";
}

// The session costs again (energy.js, when the energy manager's costs came).
function refreshCosts() {
  showMonthCost();
  for (const st of Object.values(stations)) for (const c of st.connectors) {
    const card = document.getElementById(`c-${st.station}-${c.connector}`);
    if (card) fillCost(card, c);
  }
}

function render() {
  const root = $("#stations");
  const link = Object.values(stations).map((st) => {
    const down = Object.entries(st.services || {}).filter(([, state]) => state !== "online").map(([name]) => name);
    const recorder = st.recorder && !st.recorder.ok ? " · recording delayed (InfluxDB)" : "";
    return `${st.station}: central system ${st.ocpp?.connected ? "connected" : "not connected"}` +
      (down.length ? ` · offline: ${down.join(", ")}` : "") + recorder;
  });
  $("#link").textContent = link.join(" · ");
  showMonthCost();
  for (const st of Object.values(stations)) {
    for (const c of st.connectors) fill(cardOf(st, c, root), c);
  }
  renderDisplayBanner(); // after the cards: an EVSE's message without a card goes in the banner
}

// A connector's card, made on first sight (in the order render() meets them).
function cardOf(st, c, root = $("#stations")) {
  const id = `c-${st.station}-${c.connector}`;
  let card = document.getElementById(id);
  if (!card) {
    card = $("#connector-template").content.firstElementChild.cloneNode(true);
    card.id = id;
    card.dataset.station = st.station; card.dataset.connector = c.connector;
    wire(card);
    root.appendChild(card);
    queueMicrotask(renderDisplayBanner); // its EVSE's messages move from the banner to it
  }
  return card;
}

// The running session's energy: the meter's register since the start (the transaction topic
// carries it only every 10 s or so while it grows; the meter comes with every reading).
function liveEnergy(c) {
  const tx = c.transaction;
  if (!tx) return null;
  const metered = c.meter ? c.meter.energy_wh - tx.meter_start_wh : 0;
  return Math.max(tx.energy_wh || 0, metered);
}

function fill(card, c) {
  const status = c.status?.status || "Unknown";
  $(".name", card).textContent = `${c.station} / ${c.connector}`;
  const badge = $(".status", card); badge.textContent = status; badge.className = `status badge ${status}`;
  $(".power", card).textContent = fmt.kw(c.meter?.power_w);
  const energy = liveEnergy(c);
  $(".energy", card).textContent = c.transaction ? fmt.kwh(energy) : "–";
  fillCost(card, c);
  $(".idtag", card).textContent = c.transaction?.id_tag || "–";
  $(".limit", card).textContent = c.charging?.current_limit_a != null
    ? `${c.charging.current_limit_a} A${c.charging.energy_fail_safe ? " (fail-safe)" : ""}` : "–";
  $(".currents", card).textContent = fmt.phases(c.meter?.current_a, "A", 1);
  $(".voltages", card).textContent = fmt.phases(c.meter?.voltage_v, "V", 0);
  $(".register", card).textContent = c.meter ? `${num(c.meter.energy_wh / 1000, 3)} kWh` : "–";
  $(".hwerror", card).textContent = c.error && c.error.code !== "NoError" ? c.error.code : "none";
  card.dataset.started = c.transaction?.started_at || "";
  $(".stop", card).disabled = !c.transaction;
  const paused = c.charging?.enabled === false;
  const pause = $(".pause", card);
  pause.textContent = paused ? "Resume" : "Pause";
  pause.setAttribute("aria-pressed", String(paused));
  pause.disabled = !c.charging;
  $(".paused-note", card).hidden = !paused;
  const note = offpeakNote(c.charging);
  $(".offpeak", card).textContent = note; $(".offpeak", card).hidden = !note;
  $(".offpeak", card).classList.toggle("waiting", !!c.charging?.offpeak_waiting);
  $(".override", card).hidden = !c.charging?.offpeak_waiting;
  const lost = energyLostNote(c.charging);
  $(".energy-lost", card).textContent = lost; $(".energy-lost", card).hidden = !lost;
  fillDisplay(card, c);
  fillPhases(card);
  powerChart(card, c);
  tick(card);
}

// The phases the car charges on: hw/{c}/phases as the phase switch confirms them (else the
// energy manager's `phases`), whether a switch is there, and from the energy manager (energy.js's
// GET /site) whether it is switching now (charging paused for it).
function fillPhases(card) {
  const key = (x) => x.station === card.dataset.station && x.connector === Number(card.dataset.connector);
  const c = stations[card.dataset.station]?.connectors.find(key);
  const mode = (typeof energyView !== "undefined" && energyView?.connectors || []).find(key)?.mode;
  const hw = c?.phases, n = hw?.phases ?? mode?.phases ?? null;
  const notes = [];
  if (mode?.phase_switching) notes.push("switching now");
  else if (hw?.switchable) notes.push("switchable 1/3");
  else if (hw) notes.push("no phase switch");
  if (hw?.reason) notes.push(`last switch refused: ${hw.reason}`);
  const cell = $(".phases", card);
  cell.textContent = (n == null ? (hw ? "as wired" : "–") : `${n}-phase`) + (notes.length ? ` (${notes.join("; ")})` : "");
  cell.dataset.phases = n == null ? "" : String(n);
  cell.dataset.switching = String(!!mode?.phase_switching);
}

// Off-peak charging: a session held until the window opens, an override, or when it opens next.
function offpeakNote(charging) {
  if (!charging) return "";
  const until = charging.offpeak_until ? fmt.at(charging.offpeak_until) : null;
  if (charging.offpeak_waiting) return until ? `waiting for off-peak (starts ${until})` : "waiting for off-peak";
  if (charging.offpeak_override) return "off-peak overridden: charging now";
  return until ? `off-peak starts ${until}` : "";
}

// The energy manager is lost (its limit not refreshed, or its status offline): the gateway's
// fail-safe limit rules until the energy manager's next limit.
function energyLostNote(charging) {
  if (!charging?.energy_fail_safe) return "";
  const amps = charging.energy_limit_a != null ? `${charging.energy_limit_a} A` : "the fail-safe limit";
  const why = charging.energy_fail_safe_reason ? ` (${charging.energy_fail_safe_reason})` : "";
  return `energy manager lost: fail-safe ${amps}${why}`;
}

function tick(card) {
  const started = card.dataset.started;
  $(".elapsed", card).textContent = started ? fmt.dur((Date.now() - Date.parse(started)) / 1000) : "–";
}
setInterval(() => document.querySelectorAll(".connector").forEach(tick), 1000);

// --- the running session's power curve ------------------------------------------------------

const AXIS = { stroke: "#555", grid: { stroke: "#0001" }, ticks: { stroke: "#0002" } };

// The content width (clientWidth includes the padding).
function innerWidth(el) {
  const style = getComputedStyle(el);
  return el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
}

function newPlot(el, opts, data) {
  const plot = new uPlot({ width: Math.max(200, innerWidth(el)), height: 160, ...opts }, data, el);
  const observer = new ResizeObserver(() => {
    if (!el.isConnected || !plot.root.isConnected) { observer.disconnect(); return; }
    const width = innerWidth(el);
    if (width > 0 && Math.abs(width - plot.width) >= 1) plot.setSize({ width, height: plot.height });
  });
  observer.observe(el);
  return plot;
}

function powerChart(card, c) {
  const el = $(".power-chart", card);
  const started = c.transaction?.started_at || null;
  let chart = charts.get(card.id);
  if (!started) { el.hidden = true; if (chart) chart.started = null; return; }
  el.hidden = false;
  if (!chart) {
    chart = { started: null, ts: [], kw: [], plot: null };
    charts.set(card.id, chart);
  }
  if (!chart.plot) {
    chart.plot = newPlot(el, {
      cursor: { y: false },
      scales: { y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
      // Ticks closer than a minute (a short session) need the seconds, else labels repeat.
      axes: [{ ...AXIS, values: (u, splits, axis, space, incr) => splits.map((v) => new Date(v * 1000).toLocaleTimeString([],
        { hour: "2-digit", minute: "2-digit", second: incr < 60 ? "2-digit" : undefined, hour12: false })) },
        { ...AXIS, size: 52, values: (u, splits) => splits.map((v) => `${v} kW`) }],
      series: [{ value: (u, v) => (v == null ? "–" : new Date(v * 1000).toLocaleTimeString([], { hour12: false })) },
        { label: "power", stroke: "#1f6fb2", width: 2, fill: "#1f6fb222", points: { show: false },
          value: (u, v) => (v == null ? "–" : `${v.toFixed(2)} kW`) }],
    }, [[], []]);
  }
  if (chart.started !== started) {
    chart.started = started; chart.ts = []; chart.kw = [];
    chart.plot.setData([[], []]);
    const card_ = `${encodeURIComponent(c.station)}/connectors/${c.connector}`;
    api(`/stations/${card_}/power?from=${encodeURIComponent(started)}`).then((s) => {
      if (chart.started !== started) return;
      // Keep live readings newer than what the API returned.
      const last = s.ts.length ? s.ts[s.ts.length - 1] : -Infinity;
      const live = chart.ts.map((t, i) => [t, chart.kw[i]]).filter(([t]) => t > last);
      chart.ts = [...s.ts, ...live.map(([t]) => t)];
      chart.kw = [...s.power_w.map((w) => w / 1000), ...live.map(([, k]) => k)];
      chart.plot.setData([chart.ts, chart.kw]);
      el.dataset.points = String(chart.ts.length);
      el.dataset.source = s.source;
    }).catch(() => {});
  }
  const m = c.meter;
  if (m && m.ts) {
    const t = Date.parse(m.ts) / 1000;
    if (t >= Date.parse(started) / 1000 && (!chart.ts.length || t > chart.ts[chart.ts.length - 1])) {
      chart.ts.push(t); chart.kw.push(m.power_w / 1000);
      chart.plot.setData([chart.ts, chart.kw]);
    }
  }
  el.dataset.points = String(chart.ts.length);
}

// --- energy per day / month -----------------------------------------------------------------

const isoDay = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

function energyRange(period) {
  const now = new Date(), labels = [];
  if (period === "day") {
    for (let i = 29; i >= 0; i--) labels.push(isoDay(new Date(now.getFullYear(), now.getMonth(), now.getDate() - i)));
    return { labels, from: new Date(now.getFullYear(), now.getMonth(), now.getDate() - 29),
      short: (l) => `${Number(l.slice(8))}.${Number(l.slice(5, 7))}.` };
  }
  for (let i = 11; i >= 0; i--) labels.push(isoDay(new Date(now.getFullYear(), now.getMonth() - i, 1)).slice(0, 7));
  return { labels, from: new Date(now.getFullYear(), now.getMonth() - 11, 1),
    short: (l) => new Date(Number(l.slice(0, 4)), Number(l.slice(5, 7)) - 1, 1).toLocaleDateString([], { month: "short" }) };
}

async function loadEnergy() {
  const range = energyRange(energyPeriod);
  const report = await api(`/energy?period=${energyPeriod}&from=${encodeURIComponent(range.from.toISOString())}`);
  const byLabel = Object.fromEntries(report.buckets.map((b) => [b.period, b.energy_wh / 1000]));
  const kwh = range.labels.map((l) => byLabel[l] || 0);
  const xs = range.labels.map((_, i) => i);
  const el = $("#energy-chart");
  el.dataset.buckets = JSON.stringify(Object.fromEntries(range.labels.map((l, i) => [l, kwh[i]]).filter(([, v]) => v)));
  const total = kwh.reduce((a, b) => a + b, 0);
  $("#energy-note").textContent = `${num(total, 1)} kWh ${energyPeriod === "day" ? "in the last 30 days" : "in the last 12 months"}` +
    (prices.price_per_kwh != null ? ` · ${fmt.money(total * prices.price_per_kwh)}` : "") + " (by session start)";
  if (energyPlot) energyPlot.destroy();
  const step = energyPeriod === "day" ? 7 : (innerWidth($("#energy-chart")) < 500 ? 2 : 1);
  energyPlot = newPlot(el, {
    height: 180, cursor: { y: false, points: { show: false } },
    scales: { x: { time: false, range: [-0.6, xs.length - 0.4] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
    axes: [{ ...AXIS, grid: { show: false }, splits: () => xs.filter((i) => (xs.length - 1 - i) % step === 0),
      values: (u, splits) => splits.map((i) => range.short(range.labels[i])) },
    { ...AXIS, size: 64, values: (u, splits) => splits.map((v) => `${v} kWh`) }],
    series: [{ label: energyPeriod, value: (u, i) => (i == null ? "–" : range.labels[i]) },
      { label: "energy", fill: "#2e7d32cc", stroke: "#2e7d32", width: 0,
        value: (u, v) => (v == null ? "–" : `${num(v, 1)} kWh` + (prices.price_per_kwh != null ? ` · ${fmt.money(v * prices.price_per_kwh)}` : "")),
      paths: uPlot.paths.bars({ size: [0.7, 40] }), points: { show: false } }],
  }, [xs, kwh]);
}

for (const [id, period] of [["#energy-day", "day"], ["#energy-month", "month"]]) {
  $(id).addEventListener("click", () => {
    energyPeriod = period;
    $("#energy-day").setAttribute("aria-pressed", String(period === "day"));
    $("#energy-month").setAttribute("aria-pressed", String(period === "month"));
    loadEnergy();
  });
}

// The month's finished sessions (as its report), plus what the running ones cost so far.
function showMonthCost() {
  if (!monthCost) return;
  const running = Object.values(stations).flatMap((st) => st.connectors)
    .filter((c) => c.transaction && c.transaction.started_at.slice(0, 7) === monthCost.month)
    .reduce((sum, c) => sum + runningCost(c).cost, 0);
  $("#month-cost").textContent = `${monthCost.cost.toFixed(2)} ${monthCost.currency}` +
    (running > 0 ? ` + ${running.toFixed(2)} ${monthCost.currency} running` : "");
}

async function loadCosts() {
  const month = await api("/costs");
  prices = { price_per_kwh: month.price_per_kwh, currency: month.currency };
  $("#price").textContent = `${month.price_per_kwh.toFixed(2)} ${month.currency}/kWh`;
  $("#month-energy").textContent = `${num(month.energy_wh / 1000, 1)} kWh`;
  monthCost = month;
  $("#month-sessions").textContent = `${month.sessions} finished session${month.sessions === 1 ? "" : "s"} in ${month.month}` +
    (month.tariff_sessions ? `, ${month.tariff_sessions === month.sessions ? "all" : month.tariff_sessions} at the tariff in force` : "");
  $(".cost-head").textContent = `Cost (${month.currency})`;
  render();
}

// --- commands -------------------------------------------------------------------------------

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
  $(".pause", card).addEventListener("click", () => run("charging", { enabled: $(".pause", card).getAttribute("aria-pressed") === "true" }));
  $(".limit-form", card).addEventListener("submit", (e) => { e.preventDefault(); run("current_limit", { amps: Number($(".limit-amps", card).value) }); });
}

// --- history and reports --------------------------------------------------------------------

async function loadHistory() {
  const page = await api("/costs/sessions?limit=50");
  const tbody = $("#history tbody");
  tbody.replaceChildren();
  // Cost at the tariff in force where the energy manager priced the session, else at the fixed
  // price: marked * when both kinds are in the table.
  const mixed = page.items.some((s) => s.tariff_cost != null) && page.items.some((s) => s.tariff_cost == null);
  for (const s of page.items) {
    const cost = s.tariff_cost != null ? s.tariff_cost.toFixed(2) : s.cost.toFixed(2) + (mixed ? " *" : "");
    const tr = document.createElement("tr");
    const heads = [...document.querySelectorAll("#history thead th")].map((th) => th.textContent);
    const cells = [[new Date(s.started_at).toLocaleString([], { dateStyle: "short", timeStyle: "short" }), ""], [`${s.station}/${s.connector}`, ""],
      [s.id_tag, ""], [fmt.dur(s.duration_s), "num"], [(s.energy_wh / 1000).toFixed(3), "num"], [cost, "num cost"], [s.stop_reason, ""]];
    cells.forEach(([text, cls], i) => {
      const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls;
      if (cls === "num cost") td.dataset.priced = s.tariff_cost != null ? "tariff" : "fixed";
      td.dataset.label = heads[i]; // the column's name, shown beside the value on a phone
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
  $("#history-totals").textContent = `${page.total} sessions, ${(page.total_energy_wh / 1000).toFixed(3)} kWh in total` +
    (mixed ? ` · * at the fixed price ${page.price_per_kwh.toFixed(2)} ${page.currency}/kWh (no cost at the tariff in force was recorded)` : "") +
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

// --- own password and users -----------------------------------------------------------------

$("#password-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const msg = $("#password-message");
  msg.className = "error"; msg.textContent = "";
  if ($("#password-new").value !== $("#password-repeat").value) { msg.textContent = "the new passwords differ"; return; }
  try {
    await api("/auth/password", { method: "PUT", body: { current_password: $("#password-current").value, new_password: $("#password-new").value } });
    // The change ends the user's other login sessions; this one stays valid.
    for (const id of ["#password-current", "#password-new", "#password-repeat"]) $(id).value = "";
    msg.className = "ok"; msg.textContent = "Password changed.";
    checkInitialPassword();
  } catch (err) { msg.textContent = err.message; }
});

async function loadUsers() {
  const users = await api("/users");
  const tbody = $("#users tbody");
  tbody.replaceChildren();
  for (const u of users) {
    const tr = document.createElement("tr");
    tr.dataset.user = u.username;
    const name = document.createElement("td"); name.textContent = u.username;
    const roleCell = document.createElement("td");
    const role = document.createElement("select");
    role.className = "role"; role.setAttribute("aria-label", `role of ${u.username}`);
    for (const r of ["viewer", "admin"]) role.add(new Option(r, r, false, r === u.role));
    role.disabled = u.username === me.name;
    role.addEventListener("change", () => usersCall(`/users/${encodeURIComponent(u.username)}/role`, { method: "PUT", body: { role: role.value } }));
    roleCell.appendChild(role);
    const actions = document.createElement("td");
    const del = document.createElement("button");
    del.type = "button"; del.className = "delete danger"; del.textContent = "Delete";
    del.disabled = u.username === me.name;
    // Two clicks, no dialog: the first asks, the second deletes.
    del.addEventListener("click", () => {
      if (del.dataset.armed) usersCall(`/users/${encodeURIComponent(u.username)}`, { method: "DELETE" });
      else { del.dataset.armed = "1"; del.textContent = `Delete ${u.username}?`; setTimeout(() => { delete del.dataset.armed; del.textContent = "Delete"; }, 5000); }
    });
    actions.appendChild(del);
    tr.append(name, roleCell, actions);
    tbody.appendChild(tr);
  }
}

async function usersCall(path, options) {
  $("#users-error").textContent = "";
  try { await api(path, options); } catch (err) { $("#users-error").textContent = err.message; }
  await loadUsers();
}

$("#user-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#users-error").textContent = "";
  try {
    await api("/users", { method: "POST", body: { username: $("#user-name").value.trim(), password: $("#user-password").value, role: $("#user-role").value } });
    $("#user-name").value = ""; $("#user-password").value = "";
  } catch (err) { $("#users-error").textContent = err.message; }
  await loadUsers();
});

// --- login ----------------------------------------------------------------------------------

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
