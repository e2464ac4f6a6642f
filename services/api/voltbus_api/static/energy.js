// voltbus web page, the energy manager: the house's power flow (grid, PV, house, battery, each
// car) from energy/site, and per connector the charge mode and the plan (target, departure, the
// chosen slots with their prices), from GET /site; the site's last 24 h (grid, PV, house, cars,
// battery, price) from GET /site/history. Uses app.js's api(), $, newPlot, AXIS, stations, prices.
"use strict";
let energyView = null; // GET /site
const MODE_NAMES = { off: "Off", now: "Now", minpv: "Min+PV", pv: "PV", plan: "Plan" };

async function loadEnergySite() {
  if ($("#app-view").hidden) return;
  try { energyView = await api("/site"); } catch { return; }
  renderEnergy();
}
setInterval(loadEnergySite, 2000);
// The first load once the page shows the app (app.js's showApp), then every 2 s.
new MutationObserver(() => { if (!$("#app-view").hidden) loadEnergySite(); })
  .observe($("#app-view"), { attributes: true, attributeFilter: ["hidden"] });

const kw = (w) => (w == null ? "–" : `${(w / 1000).toFixed(2)} kW`);
const priceText = (p) => (p == null ? "price unknown" : `${p.toFixed(3)} ${prices.currency || ""}/kWh`.replace(" /", "/"));

function node(kind, label, value, sub, classes = []) {
  const el = document.createElement("div");
  el.className = ["node", kind, ...classes].join(" ");
  el.dataset.kind = kind;
  const parts = [["label", label], ["value", value], ["sub", sub]];
  for (const [cls, text] of parts) {
    if (cls === "sub" && !text) continue;
    const span = document.createElement("span"); span.className = cls; span.textContent = text; el.appendChild(span);
  }
  return el;
}

function cars() {
  const out = [];
  for (const st of Object.values(stations)) for (const c of st.connectors) out.push(c);
  return out;
}

function renderFlow(site) {
  const flow = $("#flow");
  const sources = document.createElement("div"); sources.className = "sources";
  const loads = document.createElement("div"); loads.className = "loads";
  const grid = site.grid_power_w;
  sources.appendChild(node("grid", "Grid", kw(grid == null ? null : Math.abs(grid)),
    grid == null ? "meter silent" : grid < 0 ? "export" : "import", grid == null ? [] : [grid < 0 ? "export" : "import"]));
  if (site.pv_power_w != null) sources.appendChild(node("pv", "PV", kw(site.pv_power_w),
    site.surplus_w > 0 ? `surplus ${kw(site.surplus_w)}` : "", site.pv_power_w > 0 ? ["active"] : []));
  if (site.battery_power_w != null) {
    const b = site.battery_power_w;
    sources.appendChild(node("battery", "Battery", kw(Math.abs(b)),
      `${b > 0 ? "discharging" : b < 0 ? "charging" : "idle"}${site.battery_soc_pct != null ? ` · ${Math.round(site.battery_soc_pct)} %` : ""}`));
  }
  // The house is what is left: grid + PV + battery - the cars.
  const house = grid == null ? null : grid + (site.pv_power_w || 0) + (site.battery_power_w || 0) - (site.charge_power_w || 0);
  loads.appendChild(node("house", "House", kw(house == null ? null : Math.max(0, house)), ""));
  // Stations whose bridge to the site broker is down: their gateways are in fail-safe, their
  // last limits stay reserved, and what the page shows of them is from before the drop.
  const unreachable = site.unreachable_stations || [];
  for (const c of cars()) {
    const w = c.meter?.power_w;
    const cut = unreachable.includes(c.station);
    loads.appendChild(node("car", `Car ${c.station}/${c.connector}`, kw(w),
      cut ? "unreachable" : c.status?.status || "", cut ? ["unreachable"] : w > 0 ? ["active"] : []));
  }
  const hub = document.createElement("div"); hub.className = "hub";
  // In the middle: what the site uses now (the house and the cars), fed from the left.
  const using = grid == null ? null : grid + (site.pv_power_w || 0) + (site.battery_power_w || 0);
  const hubLabel = document.createElement("span"); hubLabel.textContent = "Using";
  const hubValue = document.createElement("span"); hubValue.className = "value"; hubValue.textContent = kw(using == null ? null : Math.max(0, using));
  hub.append(hubLabel, hubValue);
  flow.replaceChildren(sources, hub, loads);
  const notes = [`Fuse ${site.fuse_limit_a} A per phase`];
  if (site.max_import_w != null) notes.push(`import cap ${kw(site.max_import_w)}`);
  notes.push(`now ${priceText(site.price_per_kwh)}`);
  if (site.co2_g_per_kwh != null) notes.push(`${Math.round(site.co2_g_per_kwh)} g CO₂/kWh`);
  if (site.grid_current_a) notes.push(`grid ${site.grid_current_a.map((a) => a.toFixed(1)).join(" · ")} A`);
  if (site.price_status) notes.push(site.price_status);
  $("#site-note").textContent = notes.join(" · ");
  $("#fail-safe").hidden = !site.fail_safe;
  const cut = $("#unreachable");
  cut.hidden = unreachable.length === 0;
  cut.textContent = unreachable.length === 0 ? "" : `No link to ${unreachable.join(", ")}: the bridge `
    + "to the site broker is down. Its connectors are at their fail-safe limit, their last limits stay reserved.";
}

function localInput(iso) {
  const d = new Date(iso), pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function slotText(s) {
  const from = new Date(s.start), to = new Date(s.end);
  const hm = (d) => d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  const day = from.toDateString() === new Date().toDateString() ? "" : `${from.toLocaleDateString([], { weekday: "short" })} `;
  return `${day}${hm(from)}–${hm(to)}`;
}

function wireEnergy(block, card) {
  const path = () => `/stations/${encodeURIComponent(card.dataset.station)}/connectors/${card.dataset.connector}/energy/mode`;
  const send = async (body) => {
    $(".mode-error", block).textContent = "";
    try {
      const state = await api(path(), { method: "PUT", body });
      const key = `${card.dataset.station}/${card.dataset.connector}`;
      const found = energyView?.connectors.find((x) => `${x.station}/${x.connector}` === key);
      if (found) found.mode = state;
      delete block.dataset.planOpen;
      renderEnergy();
    } catch (err) { $(".mode-error", block).textContent = `mode: ${err.message}`; }
  };
  const current = () => block.mode || {};
  for (const button of block.querySelectorAll(".modes .tab")) {
    button.addEventListener("click", () => {
      const mode = button.dataset.mode;
      if (mode === "plan") { block.dataset.planOpen = "1"; renderEnergy(); $(".plan-kwh", block).focus(); return; }
      const m = current();
      // The whole setting: the priority and the plan stay.
      send({ mode, priority: m.priority || 0, plan_energy_wh: m.plan_energy_wh ?? null,
             plan_departure: m.plan_departure ?? null, plan_objective: m.plan_objective || "cost" });
    });
  }
  $(".plan-form", block).addEventListener("submit", (e) => {
    e.preventDefault();
    const m = current();
    send({ mode: "plan", priority: m.priority || 0, plan_objective: m.plan_objective || "cost",
           plan_energy_wh: Math.round(Number($(".plan-kwh", block).value) * 1000),
           plan_departure: new Date($(".plan-departure", block).value).toISOString() });
  });
}

function fillEnergy(card, mode) {
  let block = $(".energy-mode", card);
  if (!block) {
    block = $("#energy-template").content.firstElementChild.cloneNode(true);
    $(".now", card).after(block);
    wireEnergy(block, card);
  }
  block.mode = mode;
  $(".mode-badge", block).textContent = MODE_NAMES[mode.mode] || mode.mode;
  $(".mode-status", block).textContent = mode.status || "";
  const planOpen = mode.mode === "plan" || block.dataset.planOpen === "1";
  for (const b of block.querySelectorAll(".modes .tab")) {
    b.setAttribute("aria-pressed", String(b.dataset.mode === mode.mode));
  }
  const form = $(".plan-form", block);
  form.hidden = !planOpen;
  const typing = form.contains(document.activeElement);
  if (!typing) {
    const kwh = $(".plan-kwh", block), dep = $(".plan-departure", block);
    if (mode.plan_energy_wh != null) kwh.value = String(mode.plan_energy_wh / 1000);
    else if (!kwh.value) kwh.value = "20";
    if (mode.plan_departure) dep.value = localInput(mode.plan_departure);
    else if (!dep.value) { const d = new Date(Date.now() + 12 * 3600e3); d.setMinutes(0); dep.value = localInput(d.toISOString()); }
  }
  const plan = $(".plan", block);
  plan.hidden = mode.mode !== "plan";
  if (mode.mode === "plan") {
    const bits = [`${((mode.plan_energy_wh || 0) / 1000).toFixed(1)} kWh by ${mode.plan_departure ? fmt.at(mode.plan_departure) : "–"}`];
    if (mode.plan_added_wh != null) bits.push(`${(mode.plan_added_wh / 1000).toFixed(1)} kWh added`);
    if (mode.plan_cost != null) bits.push(`cost ${mode.plan_cost.toFixed(2)} ${prices.currency || ""}`.trim());
    if (mode.plan_missing_wh) bits.push(`${(mode.plan_missing_wh / 1000).toFixed(1)} kWh short`);
    $(".plan-summary", plan).textContent = bits.join(" · ");
    const tbody = $(".slots tbody", plan);
    tbody.replaceChildren();
    for (const s of mode.plan_slots || []) {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[slotText(s), ""], [s.price_per_kwh == null ? "?" : s.price_per_kwh.toFixed(3), "num"],
        [s.energy_wh == null ? "–" : (s.energy_wh / 1000).toFixed(1), "num"]]) {
        const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
  }
}

function renderEnergy() {
  if (!energyView) return;
  const site = energyView.site;
  $("#energy-site").hidden = !site;
  if (site) renderFlow(site);
  refreshCosts(); // the cards' session cost at the tariff in force (app.js)
  for (const c of energyView.connectors) {
    const card = document.getElementById(`c-${c.station}-${c.connector}`);
    if (card) { fillEnergy(card, c.mode); fillPhases(card); }
  }
}

// --- the site's last 24 hours (GET /site/history: InfluxDB's `site`, else what the API saw) ---

let sitePlot = null;
const SITE_SERIES = [
  ["grid_power_w", "Grid", "#1f3b57"], ["pv_power_w", "PV", "#f9a825"], ["house_power_w", "House", "#888"],
  ["charge_power_w", "Cars", "#2e7d32"], ["battery_power_w", "Battery", "#7b1fa2"]];

async function loadSiteChart() {
  if ($("#app-view").hidden || !energyView?.site) return;
  let h;
  try { h = await api(`/site/history?from=${encodeURIComponent(new Date(Date.now() - 24 * 3600e3).toISOString())}`); } catch { return; }
  const el = $("#site-chart");
  const kwOf = (xs) => xs.map((w) => (w == null ? null : w / 1000));
  const data = [h.ts, ...SITE_SERIES.map(([key]) => kwOf(h[key])), h.price_per_kwh];
  el.dataset.points = String(h.ts.length);
  el.dataset.source = h.source;
  $("#site-chart-note").textContent = h.ts.length ? `${Math.round(h.interval_s / 60)} min means` +
    (h.source === "local" ? " (from the bus: InfluxDB has no site states for this range)" : "") : "no site data yet";
  const hm = (v) => new Date(v * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  if (sitePlot) { sitePlot.setData(data); return; }
  sitePlot = newPlot(el, {
    height: 200, cursor: { y: false },
    // Always the whole 24 h (a young site has a few points at the right).
    scales: { x: { time: true, range: () => [Date.now() / 1000 - 24 * 3600, Date.now() / 1000] },
      price: { range: (u, min, max) => [0, Math.max(0.01, (max || 0) * 1.2)] } },
    axes: [{ ...AXIS, values: (u, splits) => splits.map(hm) },
      { ...AXIS, size: 52, values: (u, splits) => splits.map((v) => `${v} kW`) },
      { ...AXIS, scale: "price", side: 1, size: 48, grid: { show: false }, values: (u, splits) => splits.map((v) => v.toFixed(2)) }],
    series: [{ value: (u, v) => (v == null ? "–" : hm(v)) },
      ...SITE_SERIES.map(([, label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: false,
        points: { show: (u) => u.data[0].length < 40, size: 5 }, // a line needs two means
        value: (u, v) => (v == null ? "–" : `${v.toFixed(2)} kW`) })),
      { label: "Price", scale: "price", stroke: "#c62828", width: 1, dash: [4, 3], points: { show: false },
        paths: uPlot.paths.stepped({ align: 1 }),
        value: (u, v) => (v == null ? "–" : `${v.toFixed(3)}/kWh`) }],
  }, data);
}
setInterval(loadSiteChart, 60_000);
// The first chart once the site is known (after the first GET /site).
const firstSiteChart = setInterval(() => { if (energyView?.site) { clearInterval(firstSiteChart); loadSiteChart(); } }, 500);
