// The operator's live dashboard: binds the DOM (see templates/dashboard.html)
// to the app-server's /dashboard/events stream, one `stats` event a second
// with every ws-server instance's figures. The figures, rates and history
// come from dashboard-data.js; this module only draws them: text with
// textContent (room names come from users), charts with uPlot.
//
// window.duplexDashboard.snapshots counts the events drawn, so that a
// browser test can see the page update without a reload.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { StatsHistory, formatCount, formatDuration, formatRate } from "./dashboard-data.js";

const EVENTS_URL = "/dashboard/events";
/** With no event for this long the figures are called stale. */
const STALE_AFTER_MS = 5_000;
/** How often the page checks for staleness. */
const STALE_CHECK_MS = 1_000;
// EventSource retries a dropped stream by itself, but gives up for good when
// an answer is not a stream (a 401 once the operator's sign-in expired, a
// 502 from a proxy): then the page retries, waiting longer each time.
const RETRY_MIN_MS = 2_000;
const RETRY_MAX_MS = 30_000;
/** The charts' time window, in seconds: the history's 300 points at 1/s. */
const WINDOW_SECONDS = 300;
const CHART_HEIGHT = 200;
// Series colours, told apart by colour-blind readers too (Okabe and Ito's
// palette), one set per colour scheme, each colour at least 3:1 against
// app.css's panel: on white less the yellow, too faint; on the dark panel
// less the dark blue and black, with the yellow and white instead. Each
// series also gets its own dash, so colour is not the only cue.
const PALETTES = {
  light: ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000"],
  dark: ["#56b4e9", "#e69f00", "#009e73", "#cc79a7", "#f0e442", "#d55e00", "#ffffff"],
};
const darkScheme = matchMedia("(prefers-color-scheme: dark)");
const palette = () => PALETTES[darkScheme.matches ? "dark" : "light"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3]];
/** Whole-number tick steps for charts of counts (no "0.5 connections"). */
const WHOLE_STEPS = [1, 2, 5].flatMap((n) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6].map((p) => n * p)).sort((a, b) => a - b);

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

const statusEl = byTestId("dashboard-status");
const updatedEl = byTestId("last-update");
const noticeEl = byTestId("dashboard-notice");
const totalConnectionsEl = byTestId("total-connections");
const totalRoomsEl = byTestId("total-rooms");
const messagesInEl = byTestId("messages-in-rate");
const messagesOutEl = byTestId("messages-out-rate");
const slowClosesEl = byTestId("total-slow-closes");
const instancesEl = byTestId("instances");
const noInstancesEl = byTestId("no-instances");
const roomListEl = byTestId("room-list");
const noRoomsEl = byTestId("no-rooms");
const moreRoomsEl = byTestId("more-rooms");
const instanceTemplate = document.getElementById("instance-template");

window.duplexDashboard = { snapshots: 0 };

const statsHistory = new StatsHistory();

// ---- status -------------------------------------------------------------

let status = "connecting";
let lastEventAt = 0; // performance.now() of the last stats event

/** connecting | live | stale | reconnecting, mirrored as data-state. */
function setStatus(next) {
  if (next === status) return; // role=status announces every change
  status = next;
  statusEl.dataset.state = next;
  statusEl.textContent = next;
}

setInterval(() => {
  if (status === "live" && performance.now() - lastEventAt > STALE_AFTER_MS) setStatus("stale");
}, STALE_CHECK_MS);

function showNotice(...parts) {
  noticeEl.replaceChildren(...parts);
  noticeEl.hidden = false;
}

function hideNotice() {
  noticeEl.hidden = true;
  noticeEl.replaceChildren();
}

// ---- the stream ---------------------------------------------------------

let source = null;
let retryTimer = null;
let retryDelayMs = RETRY_MIN_MS;

function connect() {
  clearTimeout(retryTimer);
  source?.close();
  const stream = new EventSource(EVENTS_URL);
  source = stream;
  stream.addEventListener("stats", onStats);
  stream.addEventListener("error", () => {
    if (stream !== source) return; // a stream already replaced
    setStatus("reconnecting");
    if (stream.readyState !== EventSource.CLOSED) return; // the browser retries
    const link = document.createElement("a");
    link.href = "/operator";
    link.textContent = "sign in again";
    showNotice(
      `The server refused the live figures; trying again in ${Math.round(retryDelayMs / 1000)} s. `,
      "If your operator sign-in has expired, ",
      link,
      ".",
    );
    retryTimer = setTimeout(connect, retryDelayMs);
    retryDelayMs = Math.min(retryDelayMs * 2, RETRY_MAX_MS);
  });
}

function disconnect() {
  clearTimeout(retryTimer);
  source?.close();
  source = null;
}

function onStats(event) {
  let view;
  try {
    view = statsHistory.apply(JSON.parse(event.data));
  } catch (error) {
    // One bad event is skipped; the next may be fine.
    console.error("dashboard: unusable stats event", error);
    return;
  }
  lastEventAt = performance.now();
  retryDelayMs = RETRY_MIN_MS;
  hideNotice();
  setStatus("live");
  render(view);
  window.duplexDashboard.snapshots += 1;
}

// ---- figures ------------------------------------------------------------

function render(view) {
  const when = new Date(view.at);
  updatedEl.dateTime = when.toISOString();
  updatedEl.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  const { totals } = view;
  setFigure(totalConnectionsEl, totals.connections, formatCount(totals.connections));
  setFigure(
    totalRoomsEl,
    totals.rooms,
    totals.rooms === null ? "–" : `${formatCount(totals.rooms)}${view.moreRooms ? "+" : ""}`,
  );
  setFigure(messagesInEl, totals.messagesIn, formatRate(totals.messagesIn));
  setFigure(messagesOutEl, totals.messagesOut, formatRate(totals.messagesOut));
  setFigure(slowClosesEl, totals.slowConsumerCloses, formatCount(totals.slowConsumerCloses));

  renderInstances(view.instances);
  renderRooms(view.rooms, view.moreRooms);
  renderCharts();
}

/** Shows `text`; keeps the raw number in data-value for tests and tools. */
function setFigure(el, value, text) {
  el.textContent = text;
  el.dataset.value = value === null ? "" : String(value);
}

const cards = new Map(); // url -> its <article>

function renderInstances(instances) {
  const seen = new Set();
  instances.forEach((instance, index) => {
    seen.add(instance.url);
    let card = cards.get(instance.url);
    if (!card) {
      card = instanceTemplate.content.firstElementChild.cloneNode(true);
      card.dataset.url = instance.url;
      field(card, "url").textContent = instance.url;
      cards.set(instance.url, card);
    }
    fillCard(card, instance);
    // Move a card only when out of place, so the others stay untouched.
    if (instancesEl.children[index] !== card) instancesEl.insertBefore(card, instancesEl.children[index] ?? null);
  });
  for (const [url, card] of cards) {
    if (seen.has(url)) continue;
    card.remove();
    cards.delete(url);
  }
  noInstancesEl.hidden = instances.length > 0;
}

// The word and a symbol say the state; the card's colour only repeats it.
const READINESS_TEXT = { ready: "✓ ready", "not-ready": "✗ not ready", unreachable: "✗ unreachable" };

const field = (card, name) => card.querySelector(`[data-field="${name}"]`);

function fillCard(card, { ok, error, stats, rates }) {
  const readiness = stats?.readiness;
  let state;
  let problem = null;
  if (!ok) {
    state = "unreachable";
    problem = error ?? "no figures";
  } else if (readiness?.ready) {
    state = "ready";
  } else {
    state = "not-ready";
    problem = readiness?.reason ?? "not ready";
  }
  card.dataset.state = state;
  field(card, "readiness").textContent = READINESS_TEXT[state];
  const problemEl = field(card, "problem");
  problemEl.textContent = problem ?? "";
  problemEl.hidden = problem === null;

  field(card, "engine").textContent = readiness
    ? `${readiness.engine}${readiness.engine_ok ? "" : " (failing)"}`
    : "–";
  field(card, "connections").textContent = formatCount(stats?.connections);
  field(card, "rooms-held").textContent = formatCount(stats?.rooms_held);
  field(card, "rates").textContent = stats
    ? `in ${formatRate(rates.messages_received)} · out ${formatRate(rates.messages_sent)}`
    : "–";
  field(card, "uptime").textContent = stats ? formatDuration(stats.uptime_seconds) : "–";
  field(card, "version").textContent = stats?.version ?? "–";
}

let roomsShown = null; // the list drawn last, to leave an unchanged table alone

function renderRooms(rooms, more) {
  const key = JSON.stringify(rooms);
  if (key !== roomsShown) {
    roomsShown = key;
    roomListEl.replaceChildren(
      ...rooms.map(({ room, members }) => {
        const row = document.createElement("tr");
        row.dataset.testid = "room-row";
        row.dataset.room = room;
        row.dataset.members = String(members);
        const name = document.createElement("td");
        name.textContent = `#${room}`;
        const count = document.createElement("td");
        count.className = "num";
        count.textContent = formatCount(members);
        row.append(name, count);
        return row;
      }),
    );
  }
  noRoomsEl.hidden = rooms.length > 0;
  moreRoomsEl.hidden = !more;
}

// ---- charts -------------------------------------------------------------

const css = getComputedStyle(document.documentElement);
const cssColor = (name) => css.getPropertyValue(name).trim();

const countValue = (u, v) => (v === null || v === undefined ? "–" : formatCount(v));
const rateValue = (u, v) => formatRate(v);

/** Per-instance series: one per URL, in the history's order. */
function instanceSeries(history) {
  return history.urls.map((url, i) => ({
    label: url,
    stroke: palette()[i % palette().length],
    dash: DASHES[i % DASHES.length],
    width: 2,
    value: countValue,
  }));
}

// Each chart: the series it draws (rebuilt when the instances change) and
// its data, as uPlot wants it: [x, ...ys], all of the same length.
const charts = {
  connections: {
    whole: true,
    series: instanceSeries,
    data: (h) => [h.times.toArray(), ...h.urls.map((url) => h.connections.get(url).toArray())],
  },
  rooms: {
    whole: true,
    series: instanceSeries,
    data: (h) => [h.times.toArray(), ...h.urls.map((url) => h.roomsHeld.get(url).toArray())],
  },
  messages: {
    whole: false,
    series: () => [
      { label: "in /s", stroke: cssColor("--accent"), width: 2, value: rateValue },
      { label: "out /s", stroke: cssColor("--warn"), dash: DASHES[1], width: 2, value: rateValue },
    ],
    data: (h) => [h.times.toArray(), h.messagesIn.toArray(), h.messagesOut.toArray()],
  },
  "slow-closes": {
    whole: false,
    series: () => [{ label: "closes /s", stroke: cssColor("--bad"), width: 2, value: rateValue }],
    data: (h) => [h.times.toArray(), h.slowCloses.toArray()],
  },
};
for (const [name, chart] of Object.entries(charts)) {
  chart.el = document.querySelector(`[data-chart="${name}"]`);
  chart.plot = null;
  chart.signature = null; // the series the plot was built with
}

function renderCharts() {
  for (const chart of Object.values(charts)) {
    const scheme = darkScheme.matches ? "dark" : "light";
    const signature = chart.series === instanceSeries ? `${scheme} ${JSON.stringify(statsHistory.urls)}` : scheme;
    // A plot's colours are fixed when it is built: rebuilt when the instances
    // or the colour scheme change.
    if (chart.plot && chart.signature !== signature) {
      chart.plot.destroy();
      chart.plot = null;
    }
    const data = chart.data(statsHistory);
    if (chart.plot) {
      chart.plot.setData(data);
    } else {
      chart.el.replaceChildren(); // the "waiting" line, or a destroyed plot's leftovers
      chart.plot = new uPlot(chartOptions(chart), data, chart.el);
      chart.signature = signature;
    }
  }
}

function chartOptions(chart) {
  const axis = {
    stroke: cssColor("--muted"),
    grid: { stroke: cssColor("--line"), width: 1 },
    ticks: { stroke: cssColor("--line"), width: 1 },
  };
  return {
    width: plotWidth(chart.el),
    height: CHART_HEIGHT,
    series: [{}, ...chart.series(statsHistory)],
    scales: {
      // Always the last five minutes, however few points there are yet.
      x: { time: true, range: (u, min, max) => [max - WINDOW_SECONDS, max] },
      // From zero, so that a flat line near the top does not look busy.
      y: { range: (u, min, max) => [0, Number.isFinite(max) && max > 0 ? max * 1.15 : 1] },
    },
    axes: [axis, { ...axis, size: 56, ...(chart.whole ? { incrs: WHOLE_STEPS } : {}) }],
    // Drag-to-zoom would fight the data arriving every second.
    cursor: { drag: { x: false, y: false } },
  };
}

const plotWidth = (el) => Math.max(Math.floor(el.clientWidth), 200);

// Charts follow their box's width (a phone turned, a window resized);
// uPlot draws at a fixed size otherwise.
const resizeObserver = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const chart = Object.values(charts).find((c) => c.el === entry.target);
    if (!chart?.plot) continue;
    const width = plotWidth(entry.target);
    if (width !== chart.plot.width) chart.plot.setSize({ width, height: CHART_HEIGHT });
  }
});
for (const chart of Object.values(charts)) resizeObserver.observe(chart.el);

// ---- lifecycle ----------------------------------------------------------

// The colours follow the system's scheme when it changes (app.css's
// variables change with it; uPlot's canvas colours are redrawn here).
darkScheme.addEventListener("change", () => {
  if (Object.values(charts).some((chart) => chart.plot)) renderCharts();
});

// A page kept in the back/forward cache must not hold a stream open;
// coming back reopens it.
window.addEventListener("pagehide", disconnect);
window.addEventListener("pageshow", (event) => {
  if (event.persisted) {
    setStatus("connecting");
    connect();
  }
});

connect();
