// The chat page: binds the DOM (see templates/room.html) to a DuplexClient.
// Room, name and WebSocket URL come from the body's data attributes, which
// the server fills in escaped; message text is always inserted as text.

import { DuplexClient } from "./duplex.js";

const { wsUrl, room, name } = document.body.dataset;
const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

const chatEl = byTestId("chat");
const statusEl = byTestId("connection-status");
const listEl = byTestId("message-list");
const noticeEl = byTestId("notice");
const formEl = byTestId("composer");
const inputEl = byTestId("message-input");

const client = new DuplexClient(wsUrl);
const seen = new Set(); // message ids already shown

client.addEventListener("state", ({ detail: state }) => {
  statusEl.textContent = state;
  statusEl.dataset.state = state;
  if (state !== "connected") chatEl.dataset.roomState = "left";
});

// Whether the server has confirmed this page's membership of the room;
// mirrored on the chat element as data-room-state for styling and tests.
client.addEventListener("joined", ({ detail }) => {
  if (detail.room === room) chatEl.dataset.roomState = "joined";
});

client.addEventListener("message", ({ detail: message }) => {
  if (message.room !== room || seen.has(message.id)) return;
  seen.add(message.id);
  listEl.append(renderMessage(message));
  listEl.lastElementChild.scrollIntoView({ block: "end" });
});

client.addEventListener("error", ({ detail: error }) => {
  showNotice(`${error.message} (${error.code})`);
});

function renderMessage(message) {
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.testid = "message";
  item.dataset.id = message.id;
  if (message.name === name) item.classList.add("mine");

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
  }, 5000);
}

formEl.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = inputEl.value;
  if (!text.trim()) return;
  if (client.post(room, text)) {
    inputEl.value = "";
  } else {
    showNotice("Not connected: your message was not sent. It is still in the box.");
  }
  inputEl.focus();
});

client.join(room, name);
client.connect();
inputEl.focus();
