// A browser client for the Duplex protocol (docs/protocol.md), apart from
// any UI, the way pusher-js or centrifuge-js stand apart from apps.
//
// It connects and stays connected: after a drop it reconnects with capped
// exponential backoff and jitter, rejoins its rooms from the last position
// it saw so that the server sends exactly what was missed, drops duplicates
// by message id, and keeps posts made while offline in a queue that is sent
// once the room is joined again (or marked failed after a while).
//
// Events (CustomEvent, payload in `detail`):
//   "state"    "connecting" | "connected" | "reconnecting" | "disconnected"
//   "joined"   {room, members, recovered, recovering, epoch, offset}; also
//              unasked, with recovered false, when the server lost the
//              room's history (its Redis restarted empty)
//   "message"  a chat message {id, room, offset, name, text, ts, announcement?, ref?},
//              each id once, in order
//   "presence" {room, members}: the display names present, sorted
//   "pending"  {ref, room, text}: a post was accepted by the client
//   "sent"     {ref, room, id, offset}: the server stored it
//   "failed"   {ref, room, code, message}: it will not be sent
//   "error"    {code, message, room?}: a server error not tied to a post;
//              `room` when a join was refused (retried by itself when the
//              reason passes: engine_unavailable, server_busy)

export const SUBPROTOCOL = "duplex.v1";

const DEFAULT_OPTIONS = {
  minDelayMs: 500, // first reconnect delay
  maxDelayMs: 10_000, // reconnect delays never exceed this
  queueTimeoutMs: 60_000, // a post never sent by then is marked failed
  // A post sent and not stored within this long means the connection is
  // dead without the browser knowing (a half-open TCP connection): drop it
  // and reconnect, which recovers and re-sends.
  ackTimeoutMs: 10_000,
  rememberIds: 2_000, // message ids kept per room for de-duplication
};

/** Join refusals that pass by themselves; others (a bad name) do not. */
const RETRIED_JOIN_ERRORS = new Set(["engine_unavailable", "server_busy"]);

/** A ref no other client can guess: other members see refs in history. */
function randomRef() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class DuplexClient extends EventTarget {
  #url;
  #options;
  #socket = null;
  #state = "disconnected";
  #attempt = 0;
  #reconnectTimer = null;
  #sweepTimer = null;
  #stopped = false;
  // room -> {name, epoch, offset, joined, members: Set, seen: Set, seenOrder: []}
  #rooms = new Map();
  // Joins sent and not yet answered: ref -> room. A join refused for a
  // passing reason (the server's engine unreachable, the server full) is
  // tried again after a backoff delay.
  #joins = new Map();
  // Posts not yet stored, in the order they were made:
  // ref -> {ref, room, text, madeAt, sentOn (the socket it went out on), sentAt}
  #posts = new Map();

  constructor(url, options = {}) {
    super();
    this.#url = url;
    this.#options = { ...DEFAULT_OPTIONS, ...options };
  }

  get state() {
    return this.#state;
  }

  /** Opens the connection; reconnects by itself until close() is called. */
  connect() {
    this.#stopped = false;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = setInterval(() => this.#expireQueued(), 1000);
    this.#open();
  }

  /** Closes the connection for good. */
  close() {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#sweepTimer);
    this.#socket?.close(1000, "client closed");
    this.#setState("disconnected");
  }

  /** Joins `room` as `name`, now if connected and after every reconnect. */
  join(room, name) {
    const known = this.#rooms.get(room);
    if (known) {
      known.name = name;
    } else {
      this.#rooms.set(room, {
        name,
        epoch: null,
        offset: 0,
        joined: false,
        retries: 0,
        members: new Set(),
        seen: new Set(),
        seenOrder: [],
      });
    }
    this.#sendJoin(room);
  }

  /** Leaves `room` and stops rejoining it. */
  leave(room) {
    this.#rooms.delete(room);
    this.#send({ type: "leave", room });
  }

  /**
   * Posts `text` to `room`. Returns the post's ref at once: the post is sent
   * now if possible, otherwise queued until the room is joined again.
   */
  post(room, text) {
    const ref = randomRef();
    const post = { ref, room, text, madeAt: Date.now(), sentOn: null, sentAt: 0 };
    this.#posts.set(ref, post);
    this.#emit("pending", { ref, room, text });
    if (this.#rooms.get(room)?.joined) this.#sendPost(post);
    return ref;
  }

  #send(frame) {
    if (this.#socket?.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  #sendJoin(room) {
    const r = this.#rooms.get(room);
    const ref = randomRef();
    const frame = { type: "join", room, name: r.name, ref };
    if (r.epoch !== null) frame.since = { epoch: r.epoch, offset: r.offset };
    if (this.#send(frame)) this.#joins.set(ref, room);
  }

  /** A join was refused for a reason that passes: try again later. */
  #retryJoin(room) {
    const r = this.#rooms.get(room);
    if (!r) return;
    const delay = this.#backoff(r.retries);
    r.retries += 1;
    const socket = this.#socket;
    setTimeout(() => {
      // Only on the same connection: a new one rejoins by itself.
      if (this.#socket === socket && this.#rooms.get(room) === r && !r.joined) this.#sendJoin(room);
    }, delay);
  }

  #sendPost(post) {
    if (this.#send({ type: "post", room: post.room, text: post.text, ref: post.ref })) {
      post.sentOn = this.#socket;
      post.sentAt = Date.now();
    }
  }

  #open() {
    this.#setState(this.#attempt === 0 ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(this.#url, [SUBPROTOCOL]);
    } catch (error) {
      // A malformed URL: retrying cannot help.
      this.#emit("error", { code: "bad_url", message: String(error) });
      this.#setState("disconnected");
      return;
    }
    this.#socket = socket;
    socket.addEventListener("open", () => {
      this.#attempt = 0;
      this.#setState("connected");
      for (const room of this.#rooms.keys()) this.#sendJoin(room);
    });
    socket.addEventListener("message", (event) => this.#receive(event.data));
    socket.addEventListener("close", () => {
      if (this.#socket !== socket) return;
      this.#lost();
    });
  }

  /** The current socket is gone (closed, or given up on): reconnect. */
  #lost() {
    this.#socket = null;
    this.#joins.clear();
    for (const r of this.#rooms.values()) r.joined = false;
    if (!this.#stopped) this.#scheduleReconnect();
  }

  /** The delay before try number `attempt` (from 0): capped, jittered. */
  #backoff(attempt) {
    const { minDelayMs, maxDelayMs } = this.#options;
    const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 16));
    // Between half and all of the ceiling, so that many clients dropped at
    // once do not all come back at the same moment.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  #scheduleReconnect() {
    const delay = this.#backoff(this.#attempt);
    this.#attempt += 1;
    this.#setState("reconnecting");
    this.#reconnectTimer = setTimeout(() => this.#open(), delay);
  }

  #receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // the server sends only JSON
    }
    switch (frame.type) {
      case "joined":
        return this.#onJoined(frame);
      case "message":
        return this.#deliver(frame);
      case "member_joined":
      case "member_left":
        return this.#onPresence(frame);
      case "ack":
        return this.#onAck(frame);
      case "error":
        return this.#onError(frame);
      default:
        return; // welcome, left, and types newer than this client
    }
  }

  #onJoined(frame) {
    const r = this.#rooms.get(frame.room);
    if (!r) return;
    // Unasked (no ref of ours) when the server started the room over: its
    // history was lost, and `recovered` is false.
    this.#joins.delete(frame.ref);
    const recovering = r.epoch !== null;
    r.joined = true;
    r.retries = 0;
    r.epoch = frame.epoch;
    r.offset = frame.offset;
    r.members = new Set(frame.members);
    this.#emit("joined", {
      room: frame.room,
      members: [...r.members].sort(),
      recovered: frame.recovered,
      recovering,
      epoch: frame.epoch,
      offset: frame.offset,
    });
    this.#emit("presence", { room: frame.room, members: [...r.members].sort() });
    for (const message of frame.history) this.#deliver(message);
    // Posts for this room not yet sent on this connection: those whose
    // message came back in the history above were stored before the drop
    // (and are settled by now); the rest go now.
    for (const post of this.#posts.values()) {
      if (post.room === frame.room && post.sentOn !== this.#socket) this.#sendPost(post);
    }
  }

  #deliver(message) {
    const r = this.#rooms.get(message.room);
    if (!r) return;
    if (message.offset > r.offset) r.offset = message.offset;
    if (!r.seen.has(message.id)) {
      r.seen.add(message.id);
      r.seenOrder.push(message.id);
      if (r.seenOrder.length > this.#options.rememberIds) r.seen.delete(r.seenOrder.shift());
      this.#emit("message", message);
    }
    // Our own post, stored: settle it (after the message is shown, so a UI
    // can swap its pending item for the stored one).
    const post = message.ref && this.#posts.get(message.ref);
    if (post && post.room === message.room && message.name === r.name) this.#settle(message);
  }

  /** A post of ours was stored, as `stored` ({ref, room, id, offset}) says. */
  #settle(stored) {
    if (!this.#posts.delete(stored.ref)) return;
    const { ref, room, id, offset } = stored;
    this.#emit("sent", { ref, room, id, offset });
  }

  #onPresence(frame) {
    const r = this.#rooms.get(frame.room);
    if (!r) return;
    if (frame.type === "member_joined") r.members.add(frame.name);
    else r.members.delete(frame.name);
    this.#emit("presence", { room: frame.room, members: [...r.members].sort() });
  }

  #onAck(frame) {
    // The message itself, carrying the same ref, normally came first and
    // settled the post; this covers a server that sends the ack alone.
    this.#settle(frame);
  }

  #onError(frame) {
    const joining = frame.ref && this.#joins.get(frame.ref);
    if (joining) {
      this.#joins.delete(frame.ref);
      this.#emit("error", { code: frame.code, message: frame.message, room: joining });
      if (RETRIED_JOIN_ERRORS.has(frame.code)) this.#retryJoin(joining);
      return;
    }
    const post = frame.ref && this.#posts.get(frame.ref);
    if (!post) {
      this.#emit("error", { code: frame.code, message: frame.message });
      return;
    }
    this.#posts.delete(frame.ref);
    this.#emit("failed", {
      ref: frame.ref,
      room: post.room,
      code: frame.code,
      message: frame.message,
    });
  }

  /**
   * Once a second: marks failed the posts never sent in time, and gives up
   * on a connection that leaves a sent post unanswered too long.
   */
  #expireQueued() {
    const now = Date.now();
    const socket = this.#socket;
    const unanswered = [...this.#posts.values()].some(
      (post) => socket && post.sentOn === socket && now - post.sentAt > this.#options.ackTimeoutMs,
    );
    if (unanswered) {
      this.#lost();
      socket.close(4002, "no acknowledgement");
    }
    const cutoff = now - this.#options.queueTimeoutMs;
    for (const post of [...this.#posts.values()]) {
      // A post that went out may have been stored; only a reconnect's
      // recovered history can tell, so only never-sent posts expire.
      if (post.sentOn === null && post.madeAt < cutoff) {
        this.#posts.delete(post.ref);
        this.#emit("failed", {
          ref: post.ref,
          room: post.room,
          code: "timeout",
          message: "not connected: the message could not be sent",
        });
      }
    }
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit("state", state);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
