// voltbus web page, display messages: what the station's display shows now (OCPP 2.0.1
// SetDisplayMessage, the gateway's retained ocpp/display, in each station's `display`), station-
// wide ones in the banner at the top, an EVSE's on its connector's card. The text comes from the
// central system: it is only ever set as textContent, never parsed as markup. A URI message is a
// link only when it is an absolute http(s) address without user or password; any other (a
// javascript: or data: address, or no address at all) shows as plain text. Loaded before app.js,
// whose `stations` and `$` it uses when called.
"use strict";
const PRIORITY_CLASS = { AlwaysFront: "always-front", InFront: "in-front", NormalCycle: "normal-cycle" };
const LANGUAGE = /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/; // a BCP 47 shape; anything else: no lang
// Control and bidi-override characters could hide or reorder what a message seems to say.
const UNSHOWN = /[\u0000-\u0008\u000B-\u001F\u007F\u202A-\u202E\u2066-\u2069]/g;

// The address of a URI message when it is safe to link to, else null.
function safeHref(text) {
  let url;
  try { url = new URL(text.trim()); } catch { return null; }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.username || url.password) return null;
  return url.href;
}

function displayMessage(m, where) {
  const el = document.createElement("div");
  el.className = `display-message ${PRIORITY_CLASS[m.priority] || "normal-cycle"}`;
  el.dataset.id = String(m.id);
  el.dataset.priority = m.priority;
  el.dataset.format = m.format;
  el.setAttribute("role", m.priority === "AlwaysFront" ? "alert" : "status");
  if (m.language && LANGUAGE.test(m.language)) el.lang = m.language;
  el.dir = "auto";
  if (where) {
    const w = document.createElement("span"); w.className = "where"; w.textContent = where; el.appendChild(w);
  }
  const text = String(m.content ?? "").replace(UNSHOWN, "");
  const href = m.format === "URI" ? safeHref(text) : null;
  if (href) {
    const a = document.createElement("a");
    a.className = "content"; a.href = href; a.textContent = href; // the parsed address, as the browser will go
    a.target = "_blank"; a.rel = "noopener noreferrer nofollow"; a.referrerPolicy = "no-referrer";
    el.appendChild(a);
  } else {
    const span = document.createElement("span"); span.className = "content"; span.textContent = text; el.appendChild(span);
  }
  return el;
}

function showMessages(box, items) {
  box.replaceChildren(...items.map(([m, where]) => displayMessage(m, where)));
  box.hidden = items.length === 0;
}

// The banner: every station's station-wide messages (and an EVSE's whose card is not on the
// page), in each station's display order; the station's name in front when there are several.
function renderDisplayBanner() {
  const many = Object.keys(stations).length > 1;
  const items = [];
  for (const st of Object.values(stations)) {
    for (const m of st.display?.messages || []) {
      const card = m.connector != null && document.getElementById(`c-${st.station}-${m.connector}`);
      if (m.connector == null) items.push([m, many ? `${st.station}:` : ""]);
      else if (!card) items.push([m, `${st.station}/${m.connector}:`]);
    }
  }
  showMessages($("#display-banner"), items);
}

// A connector's card: the messages for its EVSE.
function fillDisplay(card, c) {
  const messages = stations[c.station]?.display?.messages || [];
  showMessages($(".display-messages", card), messages.filter((m) => m.connector === c.connector).map((m) => [m, ""]));
}
