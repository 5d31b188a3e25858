// The chat page: binds the DOM (see templates/room.html) to a DuplexClient.
// Room, name, WebSocket URL, connection token and the URL of fresh tokens
// come from the body's data attributes, which the server fills in escaped;
// message text is always inserted as text.

import { DuplexClient } from "./duplex.js";

const { wsUrl, room, name, token, tokenUrl } = document.body.dataset;
const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

const chatEl = byTestId("chat");
const statusEl = byTestId("connection-status");
const listEl = byTestId("message-list");
const presenceEl = byTestId("presence-list");
const noticeEl = byTestId("notice");
const formEl = byTestId("composer");
const inputEl = byTestId("message-input");

/** A fresh connection token for this page's user and name. */
async function refreshToken() {
  const response = await fetch(tokenUrl, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`token refresh failed: ${response.status}`);
  return (await response.json()).token;
}

const client = new DuplexClient(wsUrl, { token, refreshToken: tokenUrl ? refreshToken : null });
const pendingItems = new Map(); // ref -> <li> of a post not yet stored

client.addEventListener("state", ({ detail: state }) => {
  statusEl.textContent = state;
  statusEl.dataset.state = state;
  if (state !== "connected") chatEl.dataset.roomState = "left";
});

// Whether the server has confirmed this page's membership of the room;
// mirrored on the chat element as data-room-state for styling and tests.
client.addEventListener("joined", ({ detail }) => {
  if (detail.room !== room) return;
  chatEl.dataset.roomState = "joined";
  if (detail.recovering && !detail.recovered) {
    showNotice("Reconnected, but the server could not replay everything: some messages may be missing.");
  }
});

client.addEventListener("presence", ({ detail }) => {
  if (detail.room !== room) return;
  presenceEl.replaceChildren(
    ...detail.members.map((member) => {
      const item = document.createElement("li");
      item.dataset.testid = "member";
      item.dataset.user = member.user;
      item.textContent = member.name;
      if (member.user === client.user) item.classList.add("me");
      return item;
    }),
  );
});

client.addEventListener("message", ({ detail: message }) => {
  if (message.room !== room) return;
  const item = renderMessage(message);
  const pending = message.ref && pendingItems.get(message.ref);
  if (pending) {
    pending.replaceWith(item);
    pendingItems.delete(message.ref);
  } else {
    // Keep the posts still waiting below the stored messages.
    listEl.insertBefore(item, listEl.querySelector(".pending"));
  }
  item.scrollIntoView({ block: "end" });
});

client.addEventListener("pending", ({ detail }) => {
  if (detail.room !== room) return;
  const item = document.createElement("li");
  item.className = "message mine pending";
  item.dataset.testid = "pending-message";
  item.dataset.ref = detail.ref;
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = name;
  const state = document.createElement("span");
  state.className = "delivery";
  state.dataset.testid = "delivery-state";
  state.textContent = "sending…";
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = detail.text;
  item.append(author, state, text);
  pendingItems.set(detail.ref, item);
  listEl.append(item);
  item.scrollIntoView({ block: "end" });
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
  item.querySelector(".delivery").textContent = `not sent: ${detail.message}`;
});

client.addEventListener("error", ({ detail: error }) => {
  showNotice(`${error.message} (${error.code})`);
});

function renderMessage(message) {
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.testid = "message";
  item.dataset.id = message.id;
  item.dataset.offset = String(message.offset);
  if (message.announcement) item.classList.add("announcement");
  else if (message.mine) item.classList.add("mine");

  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.name;

  const time = document.createElement("time");
  const when = new Date(message.ts);
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  const text = document.createElement("p");
  text.className = "text";
  text.textContent = message.text;

  item.append(author, time, text);
  return item;
}

let noticeTimer = null;
function showNotice(text) {
  noticeEl.textContent = text;
  noticeEl.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    noticeEl.hidden = true;
  }, 8000);
}

formEl.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = inputEl.value;
  if (!text.trim()) return;
  // Accepted even while offline: the client queues it and the list shows
  // it as pending until the server has stored it.
  client.post(room, text);
  inputEl.value = "";
  inputEl.focus();
});

// Leaving the page must leave the room at once, not after the server's
// heartbeat timeout: a page kept in the back/forward cache would otherwise
// hold its socket open. Coming back from that cache reconnects and recovers.
window.addEventListener("pagehide", () => client.close());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) client.connect();
});

client.join(room);
client.connect();
inputEl.focus();
