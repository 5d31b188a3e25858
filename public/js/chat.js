// The chat page: binds the DOM (see templates/room.html) to a DuplexClient.
// Room, name, WebSocket URL, connection token and the URL of fresh tokens
// come from the body's data attributes, which the server fills in escaped;
// message text is always inserted as text.
//
// What the page owes its readers, beyond showing messages:
// - the list is a polite live log: each new message from others is read
//   out once (what was there before the reader came, a join's history and
//   earlier pages, goes in with the log muted; so do the reader's own
//   posts, which they just wrote: only a failure to send one is said);
// - it follows new messages only while the reader is at the bottom; a
//   reader scrolled up stays where they are and gets a "N new messages"
//   button, and a hidden tab counts unread messages in its title;
// - the connection state is honest: the member list is marked stale while
//   the page is not in the room, and a silent server is noticed (see
//   duplex.js) even when the page only reads.

import { DuplexClient } from "./duplex.js";

const { wsUrl, room, name, token, tokenUrl } = document.body.dataset;
const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

/** The server's limit on a message, in characters (Unicode scalar values). */
const MAX_CHARS = 2000;
/** The counter shows from this many characters on. */
const COUNTER_FROM = 1800;
/** How close to the bottom (px) still counts as reading the latest. */
const NEAR_BOTTOM_PX = 64;

const chatEl = byTestId("chat");
const statusEl = byTestId("connection-status");
const logEl = byTestId("message-log");
const listEl = byTestId("message-list");
const earlierButton = byTestId("load-earlier");
const historyStartEl = byTestId("history-start");
const newMessagesButton = byTestId("new-messages");
const bodyEl = chatEl.querySelector(".chat-body");
const presenceEl = byTestId("presence");
const presenceListEl = byTestId("presence-list");
const presenceCountEl = byTestId("presence-count");
const staleEl = byTestId("presence-stale");
const membersToggle = byTestId("members-toggle");
const memberCountEl = byTestId("member-count");
const leaveLink = byTestId("leave-button");
const noticeBox = byTestId("notice-box");
const noticeEl = byTestId("notice");
const dismissButton = byTestId("dismiss-notice");
const formEl = byTestId("composer");
const inputEl = byTestId("message-input");
const counterEl = byTestId("char-counter");
const composerStatusEl = byTestId("composer-status");

/** A fresh connection token for this page's user and name. */
async function refreshToken() {
  const response = await fetch(tokenUrl, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`token refresh failed: ${response.status}`);
  return (await response.json()).token;
}

const client = new DuplexClient(wsUrl, { token, refreshToken: tokenUrl ? refreshToken : null });
const pendingItems = new Map(); // ref -> the element of a post not yet stored

// ---- connection state -------------------------------------------------

const STALE_NOTES = {
  connecting: "Connecting…",
  reconnecting: "Reconnecting: this list may be out of date.",
  disconnected: "Not connected: this list may be out of date.",
  connected: "Not in the room yet.",
};

/** Marks the member list live or stale, with a note that says why. */
function markPresence() {
  const live = chatEl.dataset.roomState === "joined";
  presenceEl.dataset.stale = String(!live);
  staleEl.hidden = live;
  if (!live) staleEl.textContent = STALE_NOTES[client.state] ?? STALE_NOTES.disconnected;
}

client.addEventListener("state", ({ detail: state }) => {
  statusEl.textContent = state;
  statusEl.dataset.state = state;
  if (state !== "connected") chatEl.dataset.roomState = "left";
  markPresence();
});

// Whether the server has confirmed this page's membership of the room;
// mirrored on the chat element as data-room-state for styling and tests.
let lastJoin = null; // the latest "joined" event's detail

client.addEventListener("joined", ({ detail }) => {
  if (detail.room !== room) return;
  lastJoin = detail;
  chatEl.dataset.roomState = "joined";
  markPresence();
  if (noticeBox.dataset.kind === "join") hideNotice();
  if (detail.recovering && !detail.recovered) {
    showNotice("Reconnected, but the server could not replay everything: some messages may be missing.");
  }
  // A request cut off by the drop gets no answer: the button works again.
  setLoading(false);
  if (!detail.recovering) {
    // The history follows this event, and was there before the reader:
    // it goes in with the log muted, and decides what the top shows.
    muteLogWhile(() => {});
    queueMicrotask(() => showEarlier(detail.hasEarlier));
  } else if (!detail.recovered) {
    // What the server could not replay lies in a gap below the messages
    // shown, not above them, so "earlier" would put it out of order; the
    // notice says something may be missing instead.
    gapBelow = true;
    showEarlier(false);
  }
});

// ---- members ----------------------------------------------------------

client.addEventListener("presence", ({ detail }) => {
  if (detail.room !== room) return;
  presenceListEl.replaceChildren(...detail.members.map(renderMember));
  const count = String(detail.members.length);
  presenceCountEl.textContent = `(${count})`;
  memberCountEl.textContent = count;
  const { change } = detail;
  if (change && change.user !== client.user) {
    appendItem(renderEvent(`${change.name} ${change.kind === "joined" ? "joined" : "left"}`), { quiet: true });
  }
});

function renderMember(member) {
  const item = document.createElement("li");
  item.dataset.testid = "member";
  item.dataset.user = member.user;
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.setAttribute("aria-hidden", "true");
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = member.name;
  item.append(dot, label);
  if (member.user === client.user) {
    item.classList.add("me");
    item.append(youMarker());
  }
  return item;
}

/** " (you)", for screen readers: sighted readers see the styling. */
function youMarker() {
  const you = document.createElement("span");
  you.className = "visually-hidden";
  you.dataset.testid = "you";
  you.textContent = " (you)";
  return you;
}

membersToggle.addEventListener("click", () => {
  const open = membersToggle.getAttribute("aria-expanded") !== "true";
  membersToggle.setAttribute("aria-expanded", String(open));
  bodyEl.dataset.membersOpen = String(open);
});

// ---- messages ---------------------------------------------------------

const dayFormat = new Intl.DateTimeFormat([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
const timeFormat = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat([], { dateStyle: "full", timeStyle: "medium" });

/** The local calendar day of `ts`, as a key. */
function dayOf(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** The author's name, with "(you)" for screen readers on one's own. */
function authorLabel(authorName, mine) {
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = authorName;
  if (mine) author.append(youMarker());
  return author;
}

function renderMessage(message) {
  const item = document.createElement("div");
  item.className = "message";
  item.dataset.testid = "message";
  item.dataset.id = message.id;
  item.dataset.offset = String(message.offset);
  item.dataset.day = dayOf(message.ts);
  if (message.announcement) item.classList.add("announcement");
  else if (message.mine) item.classList.add("mine");

  const author = authorLabel(message.name, message.mine);
  if (message.announcement) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "announcement";
    author.append(" ", badge);
  }

  const time = document.createElement("time");
  const when = new Date(message.ts);
  time.dateTime = when.toISOString();
  time.title = fullFormat.format(when);
  time.textContent = timeFormat.format(when);

  const text = document.createElement("p");
  text.className = "text";
  text.textContent = message.text;

  item.append(author, time, text);
  return item;
}

function renderDivider(ts) {
  const item = document.createElement("div");
  item.className = "divider";
  item.dataset.testid = "day-divider";
  item.dataset.day = dayOf(ts);
  const label = document.createElement("span");
  label.textContent = dayFormat.format(new Date(ts));
  item.append(label);
  return item;
}

function renderEvent(text) {
  const item = document.createElement("div");
  item.className = "event";
  item.dataset.testid = "presence-event";
  item.textContent = text;
  return item;
}

/** The day of the last stored message shown, if any. */
function lastDay() {
  // From the end: only posts pending or failed since sit below it.
  for (let item = listEl.lastElementChild; item; item = item.previousElementSibling) {
    if (item.dataset.testid === "message") return item.dataset.day;
  }
  return null;
}

/** Whether the reader sees the end of the list (or close to it). */
function nearBottom() {
  return logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight <= NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  logEl.scrollTop = logEl.scrollHeight;
}

// Whether the reader follows the newest messages: kept by scrolling, not
// measured at each insertion, because the log also shrinks under a reader
// who did not scroll (a growing composer, a phone's keyboard, a notice).
let pinned = true;
logEl.addEventListener("scroll", () => {
  pinned = nearBottom();
  if (pinned && unseenBelow > 0) clearUnseen();
});
// The log shrinks (a growing composer, a keyboard) or its content grows
// in place (a post stored, a failure explained): a pinned reader stays at
// the bottom either way.
const keepPinned = new ResizeObserver(() => {
  if (pinned) scrollToBottom();
});
keepPinned.observe(logEl);
keepPinned.observe(listEl);

/**
 * Runs `change` with the live log muted: for what a screen reader must not
 * read out as new, because it was there before the reader came (a join's
 * history, an earlier page) or the reader just wrote it (their own post).
 * Chromium announces a change after it has laid it out, so the log is
 * unmuted a moment later.
 */
let unmuteTimer = null;
function muteLogWhile(change) {
  listEl.setAttribute("aria-live", "off");
  change();
  clearTimeout(unmuteTimer);
  unmuteTimer = setTimeout(() => listEl.removeAttribute("aria-live"), 300);
}

let unseenBelow = 0; // new items below a reader who scrolled up
let unreadHidden = 0; // messages that arrived while the tab was hidden
const baseTitle = document.title;

/**
 * Adds `item` in place (before the posts still pending; a failed one stays
 * where it was written), keeping the reader where they are unless they
 * follow the newest or `follow`. `quiet` items (joins, leaves) never count
 * as new messages.
 */
function appendItem(item, { follow = false, quiet = false } = {}) {
  const stick = follow || pinned;
  listEl.insertBefore(item, listEl.querySelector(".pending"));
  if (stick) {
    scrollToBottom();
  } else if (!quiet) {
    unseenBelow += 1;
    showNewMessagesButton();
  }
}

function showNewMessagesButton() {
  const arrow = document.createElement("span");
  arrow.setAttribute("aria-hidden", "true");
  arrow.textContent = " ↓";
  newMessagesButton.replaceChildren(unseenBelow === 1 ? "1 new message" : `${unseenBelow} new messages`, arrow);
  newMessagesButton.hidden = false;
}

function clearUnseen() {
  unseenBelow = 0;
  newMessagesButton.hidden = true;
}

newMessagesButton.addEventListener("click", () => {
  scrollToBottom();
  clearUnseen();
  logEl.focus({ preventScroll: true });
});

function countUnread() {
  if (!document.hidden) return;
  unreadHidden += 1;
  document.title = `(${unreadHidden}) ${baseTitle}`;
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  unreadHidden = 0;
  document.title = baseTitle;
});

client.addEventListener("message", ({ detail: message }) => {
  if (message.room !== room) return;
  const item = renderMessage(message);
  const pending = message.ref && pendingItems.get(message.ref);
  const day = lastDay();
  if (pending) {
    pendingItems.delete(message.ref);
    muteLogWhile(() => {
      if (day !== item.dataset.day) listEl.insertBefore(renderDivider(message.ts), pending);
      pending.replaceWith(item);
    });
    return;
  }
  if (day !== item.dataset.day) appendItem(renderDivider(message.ts), { quiet: true });
  appendItem(item, { follow: message.mine });
  // What the first join shows was there before the reader came: not unread.
  const before = message.fromHistory && !lastJoin?.recovering;
  if (!message.mine && !before) countUnread();
});

client.addEventListener("earlier", ({ detail }) => {
  if (detail.room !== room) return;
  if (detail.stale) {
    setLoading(false); // the room started over; its `joined` decides the rest
    return;
  }
  const items = document.createDocumentFragment();
  let day = null;
  for (const message of detail.messages) {
    const item = renderMessage(message);
    if (item.dataset.day !== day) items.append(renderDivider(message.ts));
    day = item.dataset.day;
    items.append(item);
  }
  // Keep what the reader was looking at in place: everything above it
  // changes at once (the new messages, a divider, the button's place),
  // measured from the bottom, which does not move.
  const fromBottom = logEl.scrollHeight - logEl.scrollTop;
  muteLogWhile(() => {
    // The day that now begins earlier keeps one divider, at its start.
    const first = listEl.firstElementChild;
    if (day !== null && first?.classList.contains("divider") && first.dataset.day === day) first.remove();
    listEl.prepend(items);
  });
  setLoading(false);
  showEarlier(detail.hasEarlier);
  logEl.scrollTop = logEl.scrollHeight - fromBottom;
});

// Set by a rejoin that could not recover: from then on the top of the
// list is not where the room's earlier messages belong.
let gapBelow = false;

/** Offers older messages, or says there are none kept. */
function showEarlier(hasEarlier) {
  const offer = hasEarlier && !gapBelow;
  // A button about to vanish under the keyboard hands focus to the log.
  if (!offer && document.activeElement === earlierButton) logEl.focus({ preventScroll: true });
  earlierButton.hidden = !offer;
  historyStartEl.hidden = offer || gapBelow || listEl.querySelector(".message") === null;
}

// aria-disabled, not disabled: a disabled button would drop the focus.
let loadingEarlier = false;
function setLoading(loading) {
  loadingEarlier = loading;
  earlierButton.setAttribute("aria-disabled", String(loading));
}

earlierButton.addEventListener("click", () => {
  if (!loadingEarlier && client.loadEarlier(room)) setLoading(true);
});

client.addEventListener("pending", ({ detail }) => {
  if (detail.room !== room) return;
  const item = document.createElement("div");
  item.className = "message mine pending";
  item.dataset.testid = "pending-message";
  item.dataset.ref = detail.ref;
  const author = authorLabel(name, true);
  const state = document.createElement("span");
  state.className = "delivery";
  state.dataset.testid = "delivery-state";
  state.textContent = "sending…";
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = detail.text;
  item.append(author, state, text);
  pendingItems.set(detail.ref, item);
  muteLogWhile(() => listEl.append(item));
  scrollToBottom();
  clearUnseen();
});

client.addEventListener("sent", ({ detail }) => {
  // Normally the stored message replaced the pending item already.
  pendingItems.get(detail.ref)?.remove();
  pendingItems.delete(detail.ref);
});

client.addEventListener("failed", ({ detail }) => {
  const item = pendingItems.get(detail.ref);
  if (!item) return;
  pendingItems.delete(detail.ref);
  item.classList.replace("pending", "failed");
  item.dataset.testid = "failed-message";
  composerStatusEl.textContent = `Your message was not sent: ${detail.message}`;
  item.querySelector(".delivery").textContent = `not sent: ${detail.message}`;
});

client.addEventListener("error", ({ detail: error }) => {
  if (error.request === "history") setLoading(false);
  showNotice(`${error.message} (${error.code})`, error.request === "join" ? "join" : "error");
});

// ---- notices ----------------------------------------------------------

/**
 * Shows `text` until it is dismissed, replaced, or (kind "join") the room
 * is joined again. The same text is not announced twice.
 */
function showNotice(text, kind = "info") {
  noticeBox.dataset.kind = kind;
  if (!noticeBox.hidden && noticeEl.textContent === text) return;
  // Shown first, then filled: an alert announces what changes in it.
  noticeBox.hidden = false;
  noticeEl.textContent = text;
}

function hideNotice() {
  noticeBox.hidden = true;
  noticeEl.textContent = "";
  delete noticeBox.dataset.kind;
}

dismissButton.addEventListener("click", () => {
  hideNotice();
  inputEl.focus();
});

// ---- composing --------------------------------------------------------

/** Characters as the server counts them: Unicode scalar values. */
const lengthOf = (text) => [...text].length;

function updateComposer() {
  // Grow with the text, up to the cap CSS sets.
  inputEl.style.height = "auto";
  if (inputEl.value) inputEl.style.height = `${inputEl.scrollHeight + 2}px`; // + its borders
  const length = lengthOf(inputEl.value);
  const over = length > MAX_CHARS;
  counterEl.hidden = length < COUNTER_FROM;
  const excess = length - MAX_CHARS;
  counterEl.textContent = over
    ? `${excess} ${excess === 1 ? "character" : "characters"} too many`
    : `${length} / ${MAX_CHARS}`;
  counterEl.dataset.over = String(over);
  inputEl.setAttribute("aria-invalid", String(over));
  // The counter changes with every key; a screen reader hears only when
  // the message comes near the limit or passes it.
  const zone = over ? "over" : counterEl.hidden ? "ok" : "near";
  if (zone !== limitZone) {
    limitZone = zone;
    composerStatusEl.textContent =
      zone === "over"
        ? `Over the limit of ${MAX_CHARS} characters: this message cannot be sent.`
        : zone === "near"
          ? `${MAX_CHARS - length} characters left.`
          : "";
  }
}
let limitZone = "ok";

inputEl.addEventListener("input", updateComposer);

inputEl.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter starts a new line; an input method composing
  // text uses Enter itself.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    formEl.requestSubmit();
  }
});

formEl.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = inputEl.value;
  if (!text.trim()) return;
  if (lengthOf(text) > MAX_CHARS) {
    showNotice(`A message holds at most ${MAX_CHARS} characters; this one has ${lengthOf(text)}.`);
    return;
  }
  // Accepted even while offline: the client queues it and the list shows
  // it as pending until the server has stored it.
  client.post(room, text);
  inputEl.value = "";
  updateComposer();
  inputEl.focus();
});

// ---- leaving ----------------------------------------------------------

let leftByLink = false;
leaveLink.addEventListener("click", (event) => {
  // Opened elsewhere (a new tab or window), the link leaves nothing here.
  if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  // Leave now, not when the page goes: the link then opens the start page.
  leftByLink = true;
  client.leave(room);
  client.close();
});

// Leaving the page must leave the room at once, not after the server's
// heartbeat timeout: a page kept in the back/forward cache would otherwise
// hold its socket open. Coming back from that cache reconnects and recovers.
window.addEventListener("pagehide", () => client.close());
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  // Back after Leave: the client forgot the room, so start the page over
  // rather than show its history twice.
  if (leftByLink) window.location.reload();
  else client.connect();
});

updateComposer();
markPresence();
client.join(room);
client.connect();
inputEl.focus();
