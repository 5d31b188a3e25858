// The operator's dashboard without its DOM: what public/js/dashboard.js
// draws is computed here, so that Node's test runner can check it
// (tests/js/dashboard-data.test.mjs).
//
// Its input is one `stats` event of the app-server's /dashboard/events
// stream: {at, instances: [{url, ok, error, stats}]}, where `at` is when the
// app-server polled (ms since the epoch) and `stats` is a ws-server's /stats
// body (crates/protocol/src/admin.rs). Counters in `stats` are totals since
// that run of the instance started, so rates come from the difference
// between two snapshots; a new `stats.instance` id means the instance
// restarted and its counters began again from zero.

/** Points kept per chart series: five minutes at one snapshot a second. */
export const HISTORY_POINTS = 300;

/**
 * A gap between snapshots longer than this (ms) breaks the charts' lines
 * rather than drawing a straight line over a time nobody saw.
 */
export const GAP_MS = 5_000;

/** The counters turned into per-second rates. */
export const RATE_FIELDS = ["messages_received", "messages_sent", "slow_consumer_closes"];

/** A fixed-capacity buffer that forgets its oldest value once full. */
export class Ring {
  #items;
  #start = 0; // index of the oldest value
  #length = 0;

  /** @param {number} capacity the most values kept (at least 1) */
  constructor(capacity) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`bad ring capacity: ${capacity}`);
    this.#items = new Array(capacity);
  }

  get capacity() {
    return this.#items.length;
  }

  get length() {
    return this.#length;
  }

  /** Appends `value`, dropping the oldest value when full. */
  push(value) {
    const capacity = this.#items.length;
    if (this.#length < capacity) {
      this.#items[(this.#start + this.#length) % capacity] = value;
      this.#length += 1;
    } else {
      this.#items[this.#start] = value;
      this.#start = (this.#start + 1) % capacity;
    }
  }

  /** Forgets every value. */
  clear() {
    this.#items.fill(undefined);
    this.#start = 0;
    this.#length = 0;
  }

  /** The values, oldest first, as a new array (uPlot keeps what it is given). */
  toArray() {
    const capacity = this.#items.length;
    return Array.from({ length: this.#length }, (_, i) => this.#items[(this.#start + i) % capacity]);
  }
}

/**
 * Per-second rates of `fields` between two samples of one instance, each
 * `{at, stats}`. A rate is null when it cannot be told: no earlier sample,
 * no time between them, the instance restarted (a new `stats.instance`), or
 * the counter went down (a restart the id did not show). A rate is never
 * negative.
 */
export function counterRates(prev, next, fields = RATE_FIELDS) {
  const rates = Object.fromEntries(fields.map((field) => [field, null]));
  if (!prev?.stats || !next?.stats || prev.stats.instance !== next.stats.instance) return rates;
  const seconds = (next.at - prev.at) / 1000;
  if (!(seconds > 0)) return rates;
  for (const field of fields) {
    const before = prev.stats[field];
    const after = next.stats[field];
    if (Number.isFinite(before) && Number.isFinite(after) && after >= before) {
      rates[field] = (after - before) / seconds;
    }
  }
  return rates;
}

/**
 * One room list out of every reachable instance's: with the Redis engine
 * each instance reports the same global list, with the memory engine each
 * its own, so a room named twice counts once, with the larger member count.
 * Sorted by members, most first, then by name. `more` is true when any
 * instance's list was cut short.
 */
export function mergeRooms(instances) {
  const members = new Map();
  let more = false;
  for (const { ok, stats } of instances ?? []) {
    if (!ok || !stats) continue;
    more ||= Boolean(stats.more_rooms);
    for (const { room, members: count } of stats.rooms ?? []) {
      members.set(room, Math.max(members.get(room) ?? 0, count));
    }
  }
  const rooms = [...members]
    .map(([room, count]) => ({ room, members: count }))
    .sort((a, b) => b.members - a.members || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0));
  return { rooms, more };
}

/**
 * The summed per-second rate of `field` over the reachable instances; null
 * when any of them has none (just restarted, or just back): a partial sum
 * would draw a dip that never happened, where a gap says "unknown".
 * Unreachable instances are left out, or one dead instance would blank the
 * charts for as long as it stays dead.
 */
function summedRate(instances, field) {
  const reachable = instances.filter((i) => i.ok);
  if (reachable.length === 0 || reachable.some((i) => i.rates[field] === null)) return null;
  return reachable.reduce((sum, i) => sum + i.rates[field], 0);
}

/** The sum of the non-null `values`; null when all are null (nothing known). */
function sumKnown(values) {
  let sum = null;
  for (const value of values) {
    if (value !== null && value !== undefined) sum = (sum ?? 0) + value;
  }
  return sum;
}

/**
 * The dashboard's state across snapshots: the chart series (a Ring each,
 * all the same length, x in seconds as uPlot wants) and the figures of the
 * latest snapshot.
 */
export class StatsHistory {
  /** Instance URLs in the order first seen: the per-instance series' order. */
  urls = [];
  /** Each point's time, in seconds since the epoch. */
  times;
  /** url -> Ring of open connections. */
  connections = new Map();
  /** url -> Ring of rooms held. */
  roomsHeld = new Map();
  /** Messages received and sent per second, summed over instances. */
  messagesIn;
  messagesOut;
  /** Slow-consumer closes per second, summed over instances. */
  slowCloses;

  #capacity;
  #gapMs;
  #lastAt = null;
  /** What the last snapshot gave: returned again for a repeat of it. */
  #lastView = null;
  // url -> {at, stats} of that instance in the previous snapshot, if it was
  // reachable then: rates are only taken between successive snapshots.
  #previous = new Map();

  constructor({ capacity = HISTORY_POINTS, gapMs = GAP_MS } = {}) {
    this.#capacity = capacity;
    this.#gapMs = gapMs;
    this.times = new Ring(capacity);
    this.messagesIn = new Ring(capacity);
    this.messagesOut = new Ring(capacity);
    this.slowCloses = new Ring(capacity);
  }

  /**
   * Takes in one snapshot; returns its figures:
   * {at, instances: [{url, ok, error, stats, rates}], rooms, moreRooms,
   *  totals: {connections, rooms, messagesIn, messagesOut, slowConsumerCloses}}
   * where `rates` maps each of RATE_FIELDS to a per-second rate or null,
   * and a total is null when it is not known (no instance reachable; for a
   * rate, also a reachable instance without one, see summedRate).
   */
  apply(snapshot) {
    const at = Number(snapshot?.at);
    if (!Number.isFinite(at)) throw new TypeError("a snapshot needs a numeric `at`");
    // The same round again (a reconnecting page is sent the last one) adds
    // nothing.
    if (this.#lastAt !== null && at === this.#lastAt && this.#lastView) return this.#lastView;
    // Time running backwards (the app-server's clock was set back, or
    // another app-server answered a reconnect) would leave uPlot unsorted
    // x values and rates over negative time: start the history again.
    if (this.#lastAt !== null && at < this.#lastAt) this.#reset();

    const instances = (snapshot.instances ?? []).map(({ url, ok, error, stats }) => {
      const sample = ok && stats ? { at, stats } : null;
      const rates = counterRates(this.#previous.get(url), sample);
      return { url, ok: Boolean(sample), error: error ?? null, stats: sample ? stats : null, rates };
    });
    this.#previous = new Map(instances.filter((i) => i.ok).map((i) => [i.url, { at, stats: i.stats }]));

    const reachable = instances.filter((i) => i.ok);
    const { rooms, more } = mergeRooms(instances);
    const totals = {
      connections: sumKnown(reachable.map((i) => i.stats.connections)),
      rooms: reachable.length ? rooms.length : null,
      messagesIn: summedRate(instances, "messages_received"),
      messagesOut: summedRate(instances, "messages_sent"),
      slowConsumerCloses: sumKnown(reachable.map((i) => i.stats.slow_consumer_closes)),
    };

    this.#record(at, instances, {
      messagesIn: totals.messagesIn,
      messagesOut: totals.messagesOut,
      slowCloses: summedRate(instances, "slow_consumer_closes"),
    });
    this.#lastAt = at;
    this.#lastView = { at, instances, rooms, moreRooms: more, totals };
    return this.#lastView;
  }

  /** Appends one point to every series; `sums` holds the summed rates. */
  #record(at, instances, sums) {
    for (const { url } of instances) {
      if (this.urls.includes(url)) continue;
      // A series that starts late is empty before it, so that every series
      // keeps the length of `times`.
      this.urls.push(url);
      this.connections.set(url, this.#ringOfNulls());
      this.roomsHeld.set(url, this.#ringOfNulls());
    }
    if (this.#lastAt !== null && at - this.#lastAt > this.#gapMs) {
      // uPlot breaks a line at a null (its spanGaps is off by default).
      this.#push((this.#lastAt + at) / 2, new Map(), { messagesIn: null, messagesOut: null, slowCloses: null });
    }
    this.#push(at, new Map(instances.map((i) => [i.url, i])), sums);
  }

  #push(at, byUrl, sums) {
    this.times.push(at / 1000);
    for (const url of this.urls) {
      const stats = byUrl.get(url)?.stats;
      this.connections.get(url).push(stats ? stats.connections : null);
      this.roomsHeld.get(url).push(stats ? stats.rooms_held : null);
    }
    this.messagesIn.push(sums.messagesIn);
    this.messagesOut.push(sums.messagesOut);
    this.slowCloses.push(sums.slowCloses);
  }

  #ringOfNulls() {
    const ring = new Ring(this.#capacity);
    for (let i = 0; i < this.times.length; i += 1) ring.push(null);
    return ring;
  }

  #reset() {
    this.urls = [];
    this.connections.clear();
    this.roomsHeld.clear();
    for (const ring of [this.times, this.messagesIn, this.messagesOut, this.slowCloses]) ring.clear();
    this.#previous.clear();
    this.#lastAt = null;
    this.#lastView = null;
  }
}

/** A duration in seconds as the two largest units: "3 d 4 h", "5 min 2 s". */
export function formatDuration(totalSeconds) {
  if (!Number.isFinite(totalSeconds) || totalSeconds < 0) return "–";
  const s = Math.floor(totalSeconds);
  const units = [
    ["d", Math.floor(s / 86_400)],
    ["h", Math.floor(s / 3_600) % 24],
    ["min", Math.floor(s / 60) % 60],
    ["s", s % 60],
  ];
  const first = units.findIndex(([, n]) => n > 0);
  if (first === -1) return "0 s";
  return units
    .slice(first, first + 2)
    .filter(([, n]) => n > 0)
    .map(([unit, n]) => `${n} ${unit}`)
    .join(" ");
}

/** A per-second rate for people: "–" when unknown, one decimal below 10. */
export function formatRate(rate) {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return "–";
  return rate < 10 ? (Math.round(rate * 10) / 10).toLocaleString() : Math.round(rate).toLocaleString();
}

/** A count for people: "–" when unknown. */
export function formatCount(count) {
  return count === null || count === undefined || !Number.isFinite(count) ? "–" : count.toLocaleString();
}
