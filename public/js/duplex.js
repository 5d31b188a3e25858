// A browser client for the Duplex protocol (docs/protocol.md), apart from
// any UI: it connects, keeps the connection alive across drops with capped
// exponential backoff and jitter, rejoins its rooms after reconnecting, and
// reports everything as DOM events.
//
// Events (all CustomEvent, payload in `detail`):
//   "state"   - "connecting" | "connected" | "reconnecting" | "disconnected"
//   "welcome" - the server's welcome frame
//   "message" - a chat message ({id, room, name, text, ts})
//   "joined" / "left" - confirmations of join and leave
//   "error"   - an error frame ({code, message}); the connection stays open

export const SUBPROTOCOL = "duplex.v1";

const DEFAULT_OPTIONS = {
  minDelayMs: 500, // first reconnect delay
  maxDelayMs: 10_000, // reconnect delays never exceed this
};

export class DuplexClient extends EventTarget {
  #url;
  #options;
  #socket = null;
  #state = "disconnected";
  #attempt = 0;
  #timer = null;
  #stopped = false;
  // room -> display name, so that a reconnect rejoins every room.
  #rooms = new Map();

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
    this.#open();
  }

  /** Closes the connection for good. */
  close() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#socket?.close(1000, "client closed");
    this.#setState("disconnected");
  }

  /** Joins `room` as `name`, now if connected and after every reconnect. */
  join(room, name) {
    this.#rooms.set(room, name);
    this.#send({ type: "join", room, name });
  }

  /** Leaves `room` and stops rejoining it. */
  leave(room) {
    this.#rooms.delete(room);
    this.#send({ type: "leave", room });
  }

  /** Posts `text` to `room`. Returns false when not connected. */
  post(room, text) {
    return this.#send({ type: "post", room, text });
  }

  #send(frame) {
    if (this.#socket?.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
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
      for (const [room, name] of this.#rooms) {
        this.#send({ type: "join", room, name });
      }
    });
    socket.addEventListener("message", (event) => this.#receive(event.data));
    socket.addEventListener("close", () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      if (this.#stopped) return;
      this.#scheduleReconnect();
    });
  }

  #scheduleReconnect() {
    const { minDelayMs, maxDelayMs } = this.#options;
    const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** this.#attempt);
    // "Equal jitter": between half and all of the ceiling, so that many
    // clients dropped at once do not return at once.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#attempt += 1;
    this.#setState("reconnecting");
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  #receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // the server sends only JSON; ignore anything else
    }
    switch (frame.type) {
      case "welcome":
      case "message":
      case "joined":
      case "left":
      case "error":
        this.#emit(frame.type, frame);
        break;
      default:
        break; // newer server, newer frame: ignore
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
