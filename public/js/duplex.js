// A browser client for the Duplex protocol (docs/protocol.md), apart from
// any UI, the way pusher-js or centrifuge-js stand apart from apps.
//
// It connects and stays connected: after a drop it reconnects with capped
// exponential backoff and jitter, rejoins its rooms from the last position
// it saw so that the server sends exactly what was missed, drops duplicates
// by message id, and keeps posts made while offline in a queue that is sent
// once the room is joined again (or marked failed after a while).
//
// Who the client is comes from a connection token minted by the app-server
// (options.token), offered as a second WebSocket subprotocol since browsers
// cannot set headers on a WebSocket. A token about to expire is replaced
// before a reconnect through options.refreshToken, an async function that
// returns a fresh one.
//
// A server that stops answering is noticed even by a client that sends
// nothing: the server sends a `ping` frame every `ping_interval_ms` (named
// in `welcome`), and a client that hears nothing at all for twice that long
// gives the connection up and reconnects. Browsers hide WebSocket pings
// from pages, hence a frame of the protocol's own.
//
// Events (CustomEvent, payload in `detail`):
//   "state"    "connecting" | "connected" | "reconnecting" | "disconnected"
//   "welcome"  {user, name, connectionId, pingIntervalMs}: who the token
//              says this client is
//   "joined"   {room, members, recovered, recovering, epoch, offset,
//              hasEarlier}; also unasked, with recovered false, when the
//              server lost the room's history (its Redis restarted empty);
//              hasEarlier: the room keeps messages older than those shown
//   "earlier"  {room, messages, hasEarlier, stale}: older messages, oldest
//              first, answering loadEarlier(room); `stale` (and no
//              messages) when the room started over since it was asked
//   "message"  a chat message {id, room, offset, user, name, text, ts,
//              announcement?, ref?}, each id once, in order; `mine` is true
//              when `user` is this client's user; `fromHistory` when it
//              came in a `joined` frame's history rather than live
//   "presence" {room, members, change?}: the users present, [{user, name}]
//              sorted by name; `change` ({kind: "joined" | "left", user,
//              name}) when one user came or went, absent after a (re)join
//   "pending"  {ref, room, text}: a post was accepted by the client
//   "sent"     {ref, room, id, offset}: the server stored it
//   "failed"   {ref, room, code, message}: it will not be sent
//   "error"    {code, message, room?, request?}: a server error not tied to
//              a post; `request` "join" (with its `room`) when a join was
//              refused (retried by itself when the reason passes:
//              engine_unavailable, server_busy, rate_limited), "history"
//              when a loadEarlier() request was

export const SUBPROTOCOL = "duplex.v2";
/** The subprotocol prefix that carries the connection token. */
export const TOKEN_PREFIX = "duplex.token.";

const DEFAULT_OPTIONS = {
  minDelayMs: 500, // first reconnect delay
  maxDelayMs: 10_000, // reconnect delays never exceed this
  queueTimeoutMs: 60_000, // a post never sent by then is marked failed
  // A post sent and not stored within this long means the connection is
  // dead without the browser knowing (a half-open TCP connection): drop it
  // and reconnect, which recovers and re-sends.
  ackTimeoutMs: 10_000,
  // A handshake not answered within this long is given up and retried.
  openTimeoutMs: 10_000,
  // How many older messages loadEarlier() asks for (the server allows 100).
  earlierPageSize: 50,
  rememberIds: 2_000, // message ids kept per room for de-duplication
  // A token expiring within this long is refreshed before a (re)connect.
  tokenMarginMs: 30_000,
  token: null, // the connection token
  refreshToken: null, // async () => a fresh token
};

/** The longest delay setTimeout honours (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Join refusals that pass by themselves; others (a name taken) do not. */
const RETRIED_JOIN_ERRORS = new Set(["engine_unavailable", "server_busy", "rate_limited"]);

/** When `token` expires, in ms since the epoch; null if it cannot tell. */
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[0].replaceAll("-", "+").replaceAll("_", "/");
    const { exp } = JSON.parse(atob(payload));
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** A ref no other client can guess: other members see refs in history. */
function randomRef() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A room's members as [{user, name}], sorted by name, then user. */
function membersOf(r) {
  return [...r.members]
    .map(([user, name]) => ({ user, name }))
    .sort((a, b) => (a.name === b.name ? (a.user < b.user ? -1 : 1) : a.name < b.name ? -1 : 1));
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
  #token = null;
  // Whether the last attempt closed before it opened: perhaps refused for
  // its token, which is then refreshed before the next one.
  #failedToOpen = false;
  #user = null;
  // The server's ping interval from `welcome`; 0 before it (no watchdog).
  #pingIntervalMs = 0;
  // Fires when the server has been silent too long (see the header).
  #silenceTimer = null;
  #openTimer = null;
  // History requests sent and not yet answered: ref -> room.
  #earlier = new Map();
  // room -> {epoch, offset, oldest (the lowest offset shown in this epoch),
  //          hasEarlier, joined, members: Map user -> name, seen: Set, seenOrder: []}
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
    this.#token = this.#options.token;
  }

  /** The user id the server's `welcome` named; null before it. */
  get user() {
    return this.#user;
  }

  get state() {
    return this.#state;
  }

  /** The server's ping interval in ms, as `welcome` said; 0 before it. */
  get pingIntervalMs() {
    return this.#pingIntervalMs;
  }

  /** Opens the connection; reconnects by itself until close() is called. */
  connect() {
    // A connection it replaces must not linger, nor its frames count.
    const replaced = this.#socket;
    this.#socket = null;
    clearTimeout(this.#reconnectTimer);
    replaced?.close(1000, "reconnecting");
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
    clearTimeout(this.#silenceTimer);
    clearTimeout(this.#openTimer);
    this.#socket?.close(1000, "client closed");
    this.#setState("disconnected");
  }

  /** Joins `room`, now if connected and after every reconnect. */
  join(room) {
    if (!this.#rooms.has(room)) {
      this.#rooms.set(room, {
        epoch: null,
        offset: 0,
        oldest: null,
        hasEarlier: false,
        joined: false,
        retries: 0,
        members: new Map(),
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
   * Asks for the messages of `room` before the oldest one shown; they come
   * as an "earlier" event. Returns false when there is nothing to ask for
   * or no connection to ask on.
   */
  loadEarlier(room) {
    const r = this.#rooms.get(room);
    if (!r?.joined || !r.hasEarlier || r.oldest === null) return false;
    const ref = randomRef();
    const frame = { type: "history", room, before: r.oldest, limit: this.#options.earlierPageSize, ref };
    if (!this.#send(frame)) return false;
    this.#earlier.set(ref, { room, epoch: r.epoch });
    return true;
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
    const frame = { type: "join", room, ref };
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
    const { refreshToken, tokenMarginMs } = this.#options;
    const expiry = this.#token ? tokenExpiry(this.#token) : null;
    const stale = expiry !== null && expiry - tokenMarginMs <= Date.now();
    if (refreshToken && (stale || this.#failedToOpen)) {
      const attempt = this.#attempt;
      Promise.resolve()
        .then(() => refreshToken())
        .then(
          (token) => {
            this.#token = token;
            this.#failedToOpen = false;
          },
          () => {}, // the app-server is away too: try with what we have
        )
        .then(() => {
          if (!this.#stopped && !this.#socket && this.#attempt === attempt) this.#openSocket();
        });
      return;
    }
    this.#openSocket();
  }

  #openSocket() {
    const protocols = this.#token ? [SUBPROTOCOL, TOKEN_PREFIX + this.#token] : [SUBPROTOCOL];
    let socket;
    try {
      socket = new WebSocket(this.#url, protocols);
    } catch (error) {
      // A malformed URL: retrying cannot help.
      this.#emit("error", { code: "bad_url", message: String(error) });
      this.#setState("disconnected");
      return;
    }
    this.#socket = socket;
    let opened = false;
    clearTimeout(this.#openTimer);
    this.#openTimer = setTimeout(() => {
      // A server that takes the TCP connection but never answers the
      // handshake (stopped, or overloaded) must not hold the client.
      if (this.#socket !== socket || opened) return;
      this.#giveUp(socket, 4003, "handshake timeout");
    }, this.#options.openTimeoutMs);
    socket.addEventListener("open", () => {
      if (this.#socket !== socket) return;
      opened = true;
      clearTimeout(this.#openTimer);
      this.#expectFrameOn(socket);
      this.#attempt = 0;
      this.#setState("connected");
      for (const room of this.#rooms.keys()) this.#sendJoin(room);
    });
    // Frames from a socket given up on must not change anything.
    socket.addEventListener("message", (event) => {
      if (this.#socket !== socket) return;
      this.#expectFrameOn(socket);
      this.#receive(event.data);
    });
    socket.addEventListener("close", () => {
      if (this.#socket !== socket) return;
      this.#failedToOpen = !opened;
      this.#lost();
    });
  }

  /**
   * (Re)arms the silence watchdog: the server pings every interval, so
   * hearing nothing for two of them means the connection is dead even if
   * the browser has not noticed (a frozen server, a dropped route).
   */
  #expectFrameOn(socket) {
    clearTimeout(this.#silenceTimer);
    if (this.#pingIntervalMs <= 0) return;
    // Capped: browsers run a longer timeout at once.
    const silence = Math.min(2 * this.#pingIntervalMs, MAX_TIMEOUT_MS);
    this.#silenceTimer = setTimeout(() => {
      if (this.#socket === socket) this.#giveUp(socket, 4004, "server silent");
    }, silence);
  }

  /** Gives up on `socket`, which seems dead: reconnect at once. */
  #giveUp(socket, code, reason) {
    this.#lost();
    socket.close(code, reason);
  }

  /** The current socket is gone (closed, or given up on): reconnect. */
  #lost() {
    this.#socket = null;
    clearTimeout(this.#silenceTimer);
    clearTimeout(this.#openTimer);
    this.#joins.clear();
    this.#earlier.clear();
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
      case "welcome":
        this.#user = frame.user;
        this.#pingIntervalMs = Number.isFinite(frame.ping_interval_ms) ? frame.ping_interval_ms : 0;
        if (this.#socket) this.#expectFrameOn(this.#socket);
        return this.#emit("welcome", {
          user: frame.user,
          name: frame.name,
          connectionId: frame.connection_id,
          pingIntervalMs: this.#pingIntervalMs,
        });
      case "joined":
        return this.#onJoined(frame);
      case "message":
        return this.#deliver(frame);
      case "member_joined":
      case "member_left":
        return this.#onPresence(frame);
      case "ack":
        return this.#onAck(frame);
      case "history":
        return this.#onEarlier(frame);
      case "error":
        return this.#onError(frame);
      default:
        return; // ping (it has done its work above), left, and types newer than this client
    }
  }

  #onJoined(frame) {
    const r = this.#rooms.get(frame.room);
    if (!r) return;
    // Unasked (no ref of ours) when the server started the room over: its
    // history was lost, and `recovered` is false.
    this.#joins.delete(frame.ref);
    const recovering = r.epoch !== null;
    const sameEpoch = r.epoch === frame.epoch;
    r.joined = true;
    r.retries = 0;
    r.epoch = frame.epoch;
    r.offset = frame.offset;
    if (!frame.recovered || !sameEpoch || r.oldest === null) {
      // A fresh start in this epoch: what is shown begins with this
      // history. (A recovery continues what was shown, oldest included.)
      r.oldest = frame.history.length > 0 ? frame.history[0].offset : frame.offset + 1;
      r.hasEarlier = frame.has_earlier === true;
    }
    r.members = new Map(frame.members.map((m) => [m.user, m.name]));
    this.#emit("joined", {
      room: frame.room,
      members: membersOf(r),
      recovered: frame.recovered,
      recovering,
      epoch: frame.epoch,
      offset: frame.offset,
      hasEarlier: r.hasEarlier,
    });
    this.#emit("presence", { room: frame.room, members: membersOf(r) });
    for (const message of frame.history) this.#deliver(message, true);
    // Posts for this room not yet sent on this connection: those whose
    // message came back in the history above were stored before the drop
    // (and are settled by now); the rest go now.
    for (const post of this.#posts.values()) {
      if (post.room === frame.room && post.sentOn !== this.#socket) this.#sendPost(post);
    }
  }

  #deliver(message, fromHistory = false) {
    const r = this.#rooms.get(message.room);
    if (!r) return;
    if (message.offset > r.offset) r.offset = message.offset;
    if (!r.seen.has(message.id)) {
      r.seen.add(message.id);
      r.seenOrder.push(message.id);
      if (r.seenOrder.length > this.#options.rememberIds) r.seen.delete(r.seenOrder.shift());
      this.#emit("message", { ...message, mine: this.#isMine(message), fromHistory });
    }
    // Our own post, stored: settle it (after the message is shown, so a UI
    // can swap its pending item for the stored one).
    const post = message.ref && this.#posts.get(message.ref);
    if (post && post.room === message.room && this.#isMine(message)) this.#settle(message);
  }

  /** Whether `message` was posted by this client's user (not by name). */
  #isMine(message) {
    return !message.announcement && this.#user !== null && message.user === this.#user;
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
    const joined = frame.type === "member_joined";
    if (joined === r.members.has(frame.user)) return; // nothing changed
    if (joined) r.members.set(frame.user, frame.name);
    else r.members.delete(frame.user);
    const change = { kind: joined ? "joined" : "left", user: frame.user, name: frame.name };
    this.#emit("presence", { room: frame.room, members: membersOf(r), change });
  }

  /** Older messages, answering loadEarlier(). */
  #onEarlier(frame) {
    const asked = this.#earlier.get(frame.ref);
    if (!asked) return;
    this.#earlier.delete(frame.ref);
    const r = this.#rooms.get(asked.room);
    if (!r) return;
    // Of another epoch than the one shown (the room started over since the
    // request): those offsets mean something else now. Nothing is shown,
    // and the room's new `joined` follows.
    const sameEpoch = r.epoch === asked.epoch && frame.epoch === r.epoch;
    const messages = sameEpoch
      ? frame.messages.filter((m) => m.offset < r.oldest && !r.seen.has(m.id))
      : [];
    if (messages.length > 0) r.oldest = messages[0].offset;
    // Trusted only while it moves back: an answer that adds nothing would
    // be asked again and again.
    if (sameEpoch) r.hasEarlier = frame.has_earlier === true && messages.length > 0;
    // Not remembered for de-duplication: older than anything live, they
    // cannot come again but through another request, which starts below.
    this.#emit("earlier", {
      room: asked.room,
      messages: messages.map((m) => ({ ...m, mine: this.#isMine(m) })),
      hasEarlier: r.hasEarlier,
      stale: !sameEpoch,
    });
  }

  #onAck(frame) {
    // The message itself, carrying the same ref, normally came first and
    // settled the post; this covers a server that sends the ack alone.
    this.#settle(frame);
  }

  #onError(frame) {
    const earlier = frame.ref && this.#earlier.get(frame.ref);
    if (earlier) {
      this.#earlier.delete(frame.ref);
      this.#emit("error", { code: frame.code, message: frame.message, room: earlier.room, request: "history" });
      return;
    }
    const joining = frame.ref && this.#joins.get(frame.ref);
    if (joining) {
      this.#joins.delete(frame.ref);
      this.#emit("error", { code: frame.code, message: frame.message, room: joining, request: "join" });
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
    if (unanswered) this.#giveUp(socket, 4002, "no acknowledgement");
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
