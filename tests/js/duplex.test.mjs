// Unit tests of the browser client (public/js/duplex.js) under Node's own
// test runner, against a scripted WebSocket and mocked timers: the
// reconnect, recovery, de-duplication and queueing rules, each in
// isolation. The browser tests in crates/e2e cover the same client end to
// end in Chromium.

import { afterEach, beforeEach, describe, mock, test } from "node:test";
import assert from "node:assert/strict";

/** A WebSocket whose every event the test drives. */
class ScriptedSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static all = [];

  constructor(url, protocols) {
    super();
    this.url = url;
    this.protocols = protocols;
    this.readyState = ScriptedSocket.CONNECTING;
    this.sent = [];
    this.closedWith = null;
    ScriptedSocket.all.push(this);
  }

  send(data) {
    this.sent.push(JSON.parse(data));
  }

  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = ScriptedSocket.CLOSED;
  }

  // What the server and the network do:
  open() {
    this.readyState = ScriptedSocket.OPEN;
    this.dispatchEvent(new Event("open"));
  }

  receive(frame) {
    const event = new Event("message");
    event.data = JSON.stringify(frame);
    this.dispatchEvent(event);
  }

  drop() {
    this.readyState = ScriptedSocket.CLOSED;
    this.dispatchEvent(new Event("close"));
  }

  static last() {
    return ScriptedSocket.all.at(-1);
  }
}

globalThis.WebSocket = ScriptedSocket;
const { DuplexClient, SUBPROTOCOL, TOKEN_PREFIX, tokenExpiry } = await import("../../public/js/duplex.js");

/** A token shaped as the server's (payload.signature) expiring at `expSecs`. */
function tokenExpiring(expSecs, user = "u-ada") {
  const payload = Buffer.from(JSON.stringify({ sub: user, name: "Ada", role: "member", exp: expSecs }))
    .toString("base64url");
  return `${payload}.c2lnbmF0dXJl`;
}

/** Records every event a client emits, by type. */
function record(client) {
  const events = [];
  for (const type of ["state", "welcome", "joined", "earlier", "message", "presence", "pending", "sent", "failed", "error"]) {
    client.addEventListener(type, (e) => events.push({ type, detail: e.detail }));
  }
  return {
    of: (type) => events.filter((e) => e.type === type).map((e) => e.detail),
  };
}

let nextId = 0;
function message(room, offset, fields = {}) {
  nextId += 1;
  return {
    type: "message",
    id: `id-${nextId}`,
    room,
    offset,
    user: "u-bob",
    name: "Bob",
    text: `m${offset}`,
    ts: 0,
    ...fields,
  };
}

function joined(room, name, fields = {}) {
  return {
    type: "joined",
    room,
    name,
    epoch: "e1",
    offset: 0,
    recovered: false,
    members: [{ user: `u-${name.toLowerCase()}`, name }],
    history: [],
    ...fields,
  };
}

const WELCOME = {
  type: "welcome",
  protocol: 2,
  connection_id: 1,
  user: "u-ada",
  name: "Ada",
  ping_interval_ms: 5_000,
};

/**
 * A client connected and joined to "lobby" as Ada (user u-ada), the
 * `joined` frame's fields as `joinedFields` says.
 */
function connectedClient(options = {}, joinedFields = {}) {
  const client = new DuplexClient("ws://test/ws", options);
  const events = record(client);
  client.join("lobby");
  client.connect();
  const socket = ScriptedSocket.last();
  socket.open();
  socket.receive(WELCOME);
  socket.receive(joined("lobby", "Ada", joinedFields));
  return { client, events, socket };
}

/** A history entry: a message without its frame's `type`. */
function entry(room, offset) {
  const { type, ...fields } = message(room, offset);
  return fields;
}

/** Ada's own message: her user id, whatever the name. */
function mine(room, offset, fields = {}) {
  return message(room, offset, { user: "u-ada", name: "Ada", ...fields });
}

beforeEach(() => {
  ScriptedSocket.all = [];
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
});

afterEach(() => {
  mock.timers.reset();
});

describe("connecting", () => {
  test("offers the duplex subprotocol and joins its rooms once open", () => {
    const client = new DuplexClient("ws://test/ws");
    const events = record(client);
    client.join("lobby");
    client.connect();
    const socket = ScriptedSocket.last();
    assert.deepEqual(socket.protocols, [SUBPROTOCOL]);
    assert.deepEqual(socket.sent, []);
    socket.open();
    const [{ ref, ...join }] = socket.sent;
    assert.deepEqual(join, { type: "join", room: "lobby" });
    assert.match(ref, /^[0-9a-f]{24}$/);
    assert.deepEqual(events.of("state"), ["connecting", "connected"]);
  });

  test("retries a join refused for a passing reason, after a backoff delay", () => {
    const client = new DuplexClient("ws://test/ws", { minDelayMs: 100, maxDelayMs: 1000 });
    const events = record(client);
    client.join("lobby");
    client.connect();
    const socket = ScriptedSocket.last();
    socket.open();
    const first = socket.sent[0];
    socket.receive({ type: "error", code: "engine_unavailable", message: "down", ref: first.ref });
    assert.deepEqual(events.of("error"), [
      { code: "engine_unavailable", message: "down", room: "lobby", request: "join" },
    ]);
    assert.equal(socket.sent.length, 1, "not at once");
    mock.timers.tick(100);
    assert.equal(socket.sent.length, 2);
    assert.equal(socket.sent[1].type, "join");
    assert.notEqual(socket.sent[1].ref, first.ref);
    socket.receive(joined("lobby", "Ada", { ref: socket.sent[1].ref }));
    assert.equal(events.of("joined").length, 1);
  });

  test("does not retry a join refused for good", () => {
    const client = new DuplexClient("ws://test/ws", { minDelayMs: 100 });
    client.join("lobby");
    client.connect();
    const socket = ScriptedSocket.last();
    socket.open();
    socket.receive({ type: "error", code: "invalid_name", message: "no", ref: socket.sent[0].ref });
    mock.timers.tick(60_000);
    assert.equal(socket.sent.length, 1);
  });

  test("reconnects with growing, jittered, capped delays", () => {
    const client = new DuplexClient("ws://test/ws", { minDelayMs: 100, maxDelayMs: 1000 });
    const events = record(client);
    client.connect();
    const ceilings = [100, 200, 400, 800, 1000, 1000];
    for (const ceiling of ceilings) {
      const before = ScriptedSocket.all.length;
      ScriptedSocket.last().drop();
      assert.equal(client.state, "reconnecting");
      mock.timers.tick(ceiling / 2 - 1);
      assert.equal(ScriptedSocket.all.length, before, `not before half of ${ceiling}`);
      mock.timers.tick(ceiling / 2 + 1);
      assert.equal(ScriptedSocket.all.length, before + 1, `by ${ceiling}`);
    }
    ScriptedSocket.last().open();
    assert.equal(client.state, "connected");
    // A successful connection resets the backoff.
    const before = ScriptedSocket.all.length;
    ScriptedSocket.last().drop();
    mock.timers.tick(100);
    assert.equal(ScriptedSocket.all.length, before + 1);
    assert.ok(events.of("state").includes("reconnecting"));
  });

  test("close() stops reconnecting", () => {
    const { client, socket } = connectedClient();
    client.close();
    assert.equal(client.state, "disconnected");
    assert.equal(socket.closedWith.code, 1000);
    mock.timers.tick(60_000);
    assert.equal(ScriptedSocket.all.length, 1);
  });
});

describe("recovery", () => {
  test("rejoins from the last position seen", () => {
    const { socket } = connectedClient();
    socket.receive(message("lobby", 1));
    socket.receive(message("lobby", 2));
    socket.drop();
    mock.timers.tick(10_000);
    const again = ScriptedSocket.last();
    again.open();
    const [{ ref: _, ...join }] = again.sent;
    assert.deepEqual(join, { type: "join", room: "lobby", since: { epoch: "e1", offset: 2 } });
  });

  test("shows each message id once, live or recovered", () => {
    const { events, socket } = connectedClient();
    const first = message("lobby", 1);
    socket.receive(first);
    socket.drop();
    mock.timers.tick(10_000);
    const again = ScriptedSocket.last();
    again.open();
    const second = message("lobby", 2);
    again.receive(joined("lobby", "Ada", { offset: 2, recovered: true, history: [first, second] }));
    again.receive(second);
    assert.deepEqual(
      events.of("message").map((m) => m.id),
      [first.id, second.id],
    );
  });

  test("reports whether a rejoin recovered everything", () => {
    const { events, socket } = connectedClient();
    socket.drop();
    mock.timers.tick(10_000);
    ScriptedSocket.last().open();
    ScriptedSocket.last().receive(joined("lobby", "Ada", { epoch: "e2", recovered: false }));
    const [fresh, rejoin] = events.of("joined");
    assert.equal(fresh.recovering, false);
    assert.equal(rejoin.recovering, true);
    assert.equal(rejoin.recovered, false);
  });

  test("starts over when the server restarts a room unasked", () => {
    const { events, socket } = connectedClient();
    socket.receive(message("lobby", 7));
    socket.receive(joined("lobby", "Ada", { epoch: "e2", offset: 0, recovered: false }));
    socket.receive(message("lobby", 1, { text: "first of the new epoch" }));
    assert.deepEqual(
      events.of("joined").at(-1),
      {
        room: "lobby",
        members: [{ user: "u-ada", name: "Ada" }],
        recovered: false,
        recovering: true,
        epoch: "e2",
        offset: 0,
        hasEarlier: false,
      },
    );
    assert.equal(events.of("message").at(-1).text, "first of the new epoch");
    socket.drop();
    mock.timers.tick(10_000);
    const again = ScriptedSocket.last();
    again.open();
    assert.deepEqual(again.sent[0].since, { epoch: "e2", offset: 1 });
  });

  test("keeps the presence list by user from joined and member events", () => {
    const { events, socket } = connectedClient();
    socket.receive({ type: "member_joined", room: "lobby", user: "u-bob", name: "Bob" });
    socket.receive({ type: "member_joined", room: "lobby", user: "u-cy", name: "Cy" });
    // Another user of the same name elsewhere does not remove Bob.
    socket.receive({ type: "member_left", room: "lobby", user: "u-other", name: "Bob" });
    socket.receive({ type: "member_left", room: "lobby", user: "u-bob", name: "Bob" });
    assert.deepEqual(
      events.of("presence").map((p) => p.members.map((m) => m.name)),
      [["Ada"], ["Ada", "Bob"], ["Ada", "Bob", "Cy"], ["Ada", "Cy"]],
    );
    // Each live change is named, for a page to show; a (re)join names none.
    assert.deepEqual(
      events.of("presence").map((p) => p.change && `${p.change.name} ${p.change.kind}`),
      [undefined, "Bob joined", "Cy joined", "Bob left"],
    );
  });
});

describe("posting", () => {
  test("sends a post with a random ref and settles it when stored", () => {
    const { client, events, socket } = connectedClient();
    const ref = client.post("lobby", "hi");
    assert.match(ref, /^[0-9a-f]{24}$/);
    assert.notEqual(client.post("lobby", "again"), ref);
    assert.deepEqual(socket.sent.at(-2), { type: "post", room: "lobby", text: "hi", ref });
    socket.receive(mine("lobby", 1, { text: "hi", ref }));
    assert.deepEqual(events.of("sent").map((s) => s.ref), [ref]);
    // The message comes before the settlement, so a UI can swap them.
    assert.equal(events.of("message").length, 1);
  });

  test("queues posts made offline and sends them once the room is joined again", () => {
    const { client, events, socket } = connectedClient();
    socket.drop();
    const ref = client.post("lobby", "typed offline");
    assert.deepEqual(events.of("pending").map((p) => p.ref), [ref]);
    mock.timers.tick(10_000);
    const again = ScriptedSocket.last();
    again.open();
    assert.equal(again.sent.length, 1, "only the join until the room is joined");
    again.receive(joined("lobby", "Ada", { recovered: true }));
    assert.deepEqual(again.sent.at(-1), { type: "post", room: "lobby", text: "typed offline", ref });
  });

  test("does not resend a post whose message came back in the recovered history", () => {
    const { client, events, socket } = connectedClient();
    const ref = client.post("lobby", "stored before the drop");
    socket.drop();
    mock.timers.tick(10_000);
    const again = ScriptedSocket.last();
    again.open();
    const stored = mine("lobby", 1, { text: "stored before the drop", ref });
    again.receive(joined("lobby", "Ada", { offset: 1, recovered: true, history: [stored] }));
    assert.equal(again.sent.filter((f) => f.type === "post").length, 0);
    assert.deepEqual(events.of("sent").map((s) => s.ref), [ref]);
  });

  test("resends a post the server never stored", () => {
    const { client, socket } = connectedClient();
    const ref = client.post("lobby", "lost in the drop");
    socket.drop();
    mock.timers.tick(10_000);
    const again = ScriptedSocket.last();
    again.open();
    again.receive(joined("lobby", "Ada", { recovered: true }));
    assert.deepEqual(again.sent.at(-1), { type: "post", room: "lobby", text: "lost in the drop", ref });
  });

  test("a message from another user with the same ref settles nothing, even under my name", () => {
    const { client, events, socket } = connectedClient();
    const ref = client.post("lobby", "mine");
    socket.receive(message("lobby", 1, { user: "u-eve", name: "Ada", text: "forged", ref }));
    assert.deepEqual(events.of("sent"), []);
    assert.equal(events.of("message").at(-1).mine, false);
    socket.receive(mine("lobby", 2, { text: "mine", ref }));
    assert.deepEqual(events.of("sent").map((s) => s.ref), [ref]);
    assert.equal(events.of("message").at(-1).mine, true);
  });

  test("a refused post is reported failed with the server's reason", () => {
    const { client, events, socket } = connectedClient();
    const ref = client.post("lobby", "x");
    socket.receive({ type: "error", code: "text_too_long", message: "too long", ref });
    assert.deepEqual(events.of("failed"), [
      { ref, room: "lobby", code: "text_too_long", message: "too long" },
    ]);
  });

  test("a post never sent in time is reported failed", () => {
    const { client, events, socket } = connectedClient({ queueTimeoutMs: 5_000, maxDelayMs: 60_000, minDelayMs: 60_000 });
    socket.drop();
    const ref = client.post("lobby", "nobody hears");
    mock.timers.tick(6_000);
    assert.deepEqual(events.of("failed").map((f) => [f.ref, f.code]), [[ref, "timeout"]]);
  });

  test("a post that went out is never expired: only recovery can tell its fate", () => {
    const { client, events, socket } = connectedClient({ queueTimeoutMs: 5_000, minDelayMs: 60_000, maxDelayMs: 60_000 });
    client.post("lobby", "sent, then the line dropped");
    socket.drop();
    mock.timers.tick(30_000);
    assert.deepEqual(events.of("failed"), []);
  });

  test("an unanswered post means a dead connection: it is dropped and reopened", () => {
    const { client, socket } = connectedClient({ ackTimeoutMs: 3_000 });
    client.post("lobby", "into the void");
    mock.timers.tick(4_000);
    assert.equal(socket.closedWith?.code, 4002);
    assert.equal(client.state, "reconnecting");
    mock.timers.tick(10_000);
    assert.equal(ScriptedSocket.all.length, 2);
  });
});

describe("tokens", () => {
  test("offers the token as a second subprotocol", () => {
    const token = tokenExpiring(4_000_000_000);
    const client = new DuplexClient("ws://test/ws", { token });
    client.connect();
    assert.deepEqual(ScriptedSocket.last().protocols, [SUBPROTOCOL, TOKEN_PREFIX + token]);
    assert.equal(tokenExpiry(token), 4_000_000_000_000);
    assert.equal(tokenExpiry("garbage"), null);
  });

  test("an expired token is refreshed before the reconnect", async () => {
    const now = Date.now() / 1000;
    const old = tokenExpiring(Math.floor(now) + 60);
    const fresh = tokenExpiring(Math.floor(now) + 3600);
    let calls = 0;
    const refreshToken = async () => {
      calls += 1;
      return fresh;
    };
    const { socket } = connectedClient({ token: old, refreshToken, minDelayMs: 100, maxDelayMs: 100 });
    assert.equal(calls, 0, "a fresh token is used as is");
    mock.timers.tick(120_000); // the token expired meanwhile
    socket.drop();
    mock.timers.tick(100);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(calls, 1);
    assert.deepEqual(ScriptedSocket.last().protocols, [SUBPROTOCOL, TOKEN_PREFIX + fresh]);
  });

  test("a connection refused before it opened gets a fresh token next time", async () => {
    const token = tokenExpiring(4_000_000_000);
    let calls = 0;
    const client = new DuplexClient("ws://test/ws", {
      token,
      refreshToken: async () => {
        calls += 1;
        return tokenExpiring(4_000_000_001);
      },
      minDelayMs: 100,
      maxDelayMs: 100,
    });
    client.connect();
    ScriptedSocket.last().drop(); // refused (a 401 looks like this to a page)
    mock.timers.tick(100);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(calls, 1);
    assert.equal(ScriptedSocket.all.length, 2);
  });
});

describe("sockets given up on", () => {
  test("frames from a replaced socket change nothing", () => {
    const { client, events, socket } = connectedClient();
    client.connect(); // e.g. back from the back/forward cache
    assert.equal(socket.closedWith?.code, 1000, "the replaced socket is closed");
    socket.receive(message("lobby", 1, { text: "late" }));
    socket.drop();
    assert.deepEqual(events.of("message"), []);
    assert.equal(ScriptedSocket.all.length, 2, "and its close reconnects nothing");
  });

  test("frames after an unanswered post gave up on a socket change nothing", () => {
    const { client, events, socket } = connectedClient({ ackTimeoutMs: 3_000 });
    client.post("lobby", "into the void");
    mock.timers.tick(4_000);
    socket.receive(message("lobby", 1, { text: "too late" }));
    assert.deepEqual(events.of("message"), []);
  });
});

describe("where a message came from", () => {
  test("messages in a join's history are marked; live ones are not", () => {
    const { events, socket } = connectedClient({}, { offset: 1, history: [entry("lobby", 1)] });
    socket.receive(message("lobby", 2));
    assert.deepEqual(
      events.of("message").map((m) => [m.offset, m.fromHistory]),
      [[1, true], [2, false]],
    );
  });
});

describe("a silent server", () => {
  test("is given up after twice the ping interval without a frame, then reconnected", () => {
    const { client, socket } = connectedClient();
    // Pings keep a reading-only client's connection alive.
    for (let i = 0; i < 5; i += 1) {
      mock.timers.tick(5_000);
      socket.receive({ type: "ping" });
    }
    assert.equal(socket.closedWith, null);
    assert.equal(client.state, "connected");
    // Then the server goes quiet (frozen, or the route dropped).
    mock.timers.tick(9_999);
    assert.equal(socket.closedWith, null);
    mock.timers.tick(1);
    assert.equal(socket.closedWith?.code, 4004);
    assert.equal(client.state, "reconnecting");
    mock.timers.tick(1_000);
    assert.equal(ScriptedSocket.all.length, 2);
  });

  test("any frame counts as a sign of life", () => {
    const { socket } = connectedClient();
    for (let offset = 1; offset <= 4; offset += 1) {
      mock.timers.tick(9_000);
      socket.receive(message("lobby", offset));
    }
    assert.equal(socket.closedWith, null);
  });

  test("a server that names no interval is not watched", () => {
    const client = new DuplexClient("ws://test/ws");
    client.connect();
    const socket = ScriptedSocket.last();
    socket.open();
    socket.receive({ ...WELCOME, ping_interval_ms: undefined });
    mock.timers.tick(600_000);
    assert.equal(socket.closedWith, null);
  });

  test("a silence longer than a timeout can hold is capped, not run at once", () => {
    const client = new DuplexClient("ws://test/ws");
    client.connect();
    const socket = ScriptedSocket.last();
    socket.open();
    socket.receive({ ...WELCOME, ping_interval_ms: 30 * 24 * 3_600_000 });
    mock.timers.tick(1_000);
    assert.equal(socket.closedWith, null);
  });

  test("a handshake never answered is given up and retried", () => {
    const client = new DuplexClient("ws://test/ws", { openTimeoutMs: 4_000 });
    client.connect();
    const socket = ScriptedSocket.last();
    mock.timers.tick(4_000);
    assert.equal(socket.closedWith?.code, 4003);
    assert.equal(client.state, "reconnecting");
    mock.timers.tick(1_000);
    assert.equal(ScriptedSocket.all.length, 2);
  });
});

describe("earlier messages", () => {
  /** Ada joined to a room whose join sent offsets 6 and 7 of more. */
  function joinedWithEarlier() {
    const history = [entry("lobby", 6), entry("lobby", 7)];
    return connectedClient({}, { offset: 7, history, has_earlier: true });
  }

  test("asks for the page before the oldest message shown", () => {
    const { client, events, socket } = joinedWithEarlier();
    assert.equal(events.of("joined")[0].hasEarlier, true);
    assert.equal(client.loadEarlier("lobby"), true);
    const asked = socket.sent.at(-1);
    assert.equal(asked.type, "history");
    assert.equal(asked.before, 6);
    assert.equal(asked.limit, 50);
    const older = [entry("lobby", 4), entry("lobby", 5)];
    socket.receive({ type: "history", room: "lobby", epoch: "e1", messages: older, has_earlier: true, ref: asked.ref });
    const [earlier] = events.of("earlier");
    assert.deepEqual(earlier.messages.map((m) => m.offset), [4, 5]);
    assert.equal(earlier.hasEarlier, true);
    // The next page starts below those.
    client.loadEarlier("lobby");
    assert.equal(socket.sent.at(-1).before, 4);
  });

  test("stops offering once the start of the kept history is reached", () => {
    const { client, events, socket } = joinedWithEarlier();
    client.loadEarlier("lobby");
    const { ref } = socket.sent.at(-1);
    socket.receive({ type: "history", room: "lobby", epoch: "e1", messages: [], has_earlier: false, ref });
    assert.equal(events.of("earlier")[0].hasEarlier, false);
    assert.equal(client.loadEarlier("lobby"), false);
  });

  test("an answer from another epoch is dropped: its offsets mean something else", () => {
    const { client, events, socket } = joinedWithEarlier();
    client.loadEarlier("lobby");
    const { ref } = socket.sent.at(-1);
    const messages = [entry("lobby", 3)];
    socket.receive({ type: "history", room: "lobby", epoch: "e2", messages, has_earlier: false, ref });
    // Answered with nothing, so that a page can offer the button again.
    assert.deepEqual(events.of("earlier"), [{ room: "lobby", messages: [], hasEarlier: true, stale: true }]);
    client.loadEarlier("lobby");
    assert.equal(socket.sent.at(-1).before, 6, "still from the oldest shown");
  });

  test("a refused request is reported as a history error", () => {
    const { client, events, socket } = joinedWithEarlier();
    client.loadEarlier("lobby");
    const { ref } = socket.sent.at(-1);
    socket.receive({ type: "error", code: "rate_limited", message: "slow down", ref });
    assert.deepEqual(events.of("error"), [
      { code: "rate_limited", message: "slow down", room: "lobby", request: "history" },
    ]);
  });


  test("a join with nothing older offers nothing", () => {
    const { client, events } = connectedClient();
    assert.equal(events.of("joined")[0].hasEarlier, false);
    assert.equal(client.loadEarlier("lobby"), false);
  });
});
