// Unit tests of the operator dashboard's logic (public/js/dashboard-data.js)
// under Node's own test runner: rates from successive counter totals,
// restarts, the merged room list, the bounded history. The page itself
// (public/js/dashboard.js) only draws what this module computes.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  HISTORY_POINTS,
  Ring,
  StatsHistory,
  counterRates,
  formatDuration,
  mergeRooms,
} from "../../public/js/dashboard-data.js";

const T0 = 1_764_600_000_000;

/** A reachable instance's entry, as the app-server's `stats` event has it. */
function up(url, fields = {}) {
  const { rooms = [], more_rooms = false, ...counters } = fields;
  return {
    url,
    ok: true,
    error: null,
    stats: {
      instance: "run-1",
      version: "0.1.0",
      uptime_seconds: 42,
      readiness: { ready: true, accepting: true, engine: "memory", engine_ok: true },
      connections: 0,
      rooms_held: 0,
      handshakes_accepted: 0,
      handshakes_refused: 0,
      messages_received: 0,
      messages_sent: 0,
      bytes_received: 0,
      bytes_sent: 0,
      slow_consumer_closes: 0,
      heartbeat_closes: 0,
      rate_limit_closes: 0,
      rooms,
      more_rooms,
      ...counters,
    },
  };
}

function down(url, error = "connection refused") {
  return { url, ok: false, error, stats: null };
}

describe("rates", () => {
  test("a rate is the counter's growth per second between two snapshots", () => {
    const history = new StatsHistory();
    history.apply({ at: T0, instances: [up("a", { messages_received: 10, messages_sent: 20 })] });
    const view = history.apply({
      at: T0 + 2_000,
      instances: [up("a", { messages_received: 30, messages_sent: 60, slow_consumer_closes: 1 })],
    });
    assert.deepEqual(view.instances[0].rates, {
      messages_received: 10,
      messages_sent: 20,
      slow_consumer_closes: 0.5,
    });
    assert.equal(view.totals.messagesIn, 10);
    assert.equal(view.totals.messagesOut, 20);
    assert.deepEqual(history.messagesIn.toArray(), [null, 10]);
    assert.deepEqual(history.slowCloses.toArray(), [null, 0.5]);
  });

  test("the summed rates add up the reachable instances", () => {
    const history = new StatsHistory();
    history.apply({ at: T0, instances: [up("a"), up("b"), down("c")] });
    const view = history.apply({
      at: T0 + 1_000,
      instances: [up("a", { messages_sent: 5 }), up("b", { messages_sent: 7 }), down("c")],
    });
    assert.equal(view.totals.messagesOut, 12);
  });

  test("one instance restarting leaves a gap in the sums, not a dip", () => {
    const history = new StatsHistory();
    history.apply({ at: T0, instances: [up("a", { messages_sent: 100 }), up("b", { messages_sent: 100 })] });
    const restarted = up("b", { messages_sent: 1 });
    restarted.stats.instance = "run-2";
    const view = history.apply({ at: T0 + 1_000, instances: [up("a", { messages_sent: 110 }), restarted] });
    assert.equal(view.instances[0].rates.messages_sent, 10);
    assert.equal(view.totals.messagesOut, null);
    assert.deepEqual(history.messagesOut.toArray(), [null, null]);
  });

  test("a restart (a new instance id) gives no rate rather than a negative one", () => {
    const history = new StatsHistory();
    history.apply({ at: T0, instances: [up("a", { messages_received: 500 })] });
    const restarted = up("a", { messages_received: 3 });
    restarted.stats.instance = "run-2";
    const view = history.apply({ at: T0 + 1_000, instances: [restarted] });
    assert.equal(view.instances[0].rates.messages_received, null);
    assert.equal(view.totals.messagesIn, null);
    // From then on the new run's counters give rates again.
    const next = up("a", { messages_received: 9 });
    next.stats.instance = "run-2";
    assert.equal(history.apply({ at: T0 + 2_000, instances: [next] }).totals.messagesIn, 6);
    assert.deepEqual(history.messagesIn.toArray(), [null, null, 6]);
  });

  test("a counter that went down under the same id counts as a restart", () => {
    const rates = counterRates(
      { at: T0, stats: { instance: "x", messages_sent: 10, messages_received: 4 } },
      { at: T0 + 1_000, stats: { instance: "x", messages_sent: 2, messages_received: 6 } },
      ["messages_sent", "messages_received"],
    );
    assert.deepEqual(rates, { messages_sent: null, messages_received: 2 });
  });

  test("no rate without an earlier sample, across an outage, or over no time", () => {
    const sample = { at: T0, stats: { instance: "x", messages_sent: 1 } };
    assert.equal(counterRates(undefined, sample, ["messages_sent"]).messages_sent, null);
    assert.equal(counterRates(sample, null, ["messages_sent"]).messages_sent, null);
    assert.equal(counterRates(sample, { ...sample }, ["messages_sent"]).messages_sent, null);

    const history = new StatsHistory();
    history.apply({ at: T0, instances: [up("a", { messages_sent: 1 })] });
    history.apply({ at: T0 + 1_000, instances: [down("a")] });
    const back = history.apply({ at: T0 + 2_000, instances: [up("a", { messages_sent: 100 })] });
    assert.equal(back.instances[0].rates.messages_sent, null);
  });
});

describe("rooms", () => {
  test("merging takes each room's largest member count and sorts by members, then name", () => {
    const { rooms, more } = mergeRooms([
      up("a", { rooms: [{ room: "lobby", members: 2 }, { room: "zeta", members: 3 }] }),
      up("b", { rooms: [{ room: "lobby", members: 5 }, { room: "alpha", members: 3 }] }),
      down("c"),
    ]);
    assert.deepEqual(rooms, [
      { room: "lobby", members: 5 },
      { room: "alpha", members: 3 },
      { room: "zeta", members: 3 },
    ]);
    assert.equal(more, false);
  });

  test("a list cut short anywhere says there are more", () => {
    const { more } = mergeRooms([up("a"), up("b", { rooms: [{ room: "x", members: 1 }], more_rooms: true })]);
    assert.equal(more, true);
  });

  test("the totals count merged rooms, connections and slow closes of reachable instances", () => {
    const view = new StatsHistory().apply({
      at: T0,
      instances: [
        up("a", { connections: 2, slow_consumer_closes: 1, rooms: [{ room: "lobby", members: 3 }] }),
        up("b", { connections: 1, slow_consumer_closes: 4, rooms: [{ room: "lobby", members: 3 }] }),
        down("c"),
      ],
    });
    assert.deepEqual(view.totals, {
      connections: 3,
      rooms: 1,
      messagesIn: null,
      messagesOut: null,
      slowConsumerCloses: 5,
    });
  });

  test("with no instance reachable the totals are unknown, not zero", () => {
    const view = new StatsHistory().apply({ at: T0, instances: [down("a")] });
    assert.equal(view.totals.connections, null);
    assert.equal(view.totals.rooms, null);
  });
});

describe("history", () => {
  test("a ring keeps at most its capacity, oldest dropped first", () => {
    const ring = new Ring(3);
    for (const n of [1, 2, 3, 4, 5]) ring.push(n);
    assert.equal(ring.length, 3);
    assert.deepEqual(ring.toArray(), [3, 4, 5]);
    ring.clear();
    assert.deepEqual(ring.toArray(), []);
  });

  test("every series is capped at the history's size and stays as long as the times", () => {
    const history = new StatsHistory();
    for (let i = 0; i < HISTORY_POINTS + 50; i += 1) {
      history.apply({ at: T0 + i * 1_000, instances: [up("a", { connections: i })] });
    }
    assert.equal(history.times.length, HISTORY_POINTS);
    assert.equal(history.times.toArray()[0], (T0 + 50_000) / 1000);
    assert.equal(history.connections.get("a").toArray().at(-1), HISTORY_POINTS + 49);
    for (const ring of [history.connections.get("a"), history.roomsHeld.get("a"), history.messagesIn]) {
      assert.equal(ring.length, HISTORY_POINTS);
    }
  });

  test("an instance seen late gets an empty past, so its series lines up", () => {
    const history = new StatsHistory();
    history.apply({ at: T0, instances: [up("a", { connections: 1 })] });
    history.apply({ at: T0 + 1_000, instances: [up("a", { connections: 1 }), up("b", { connections: 4 })] });
    assert.deepEqual(history.urls, ["a", "b"]);
    assert.deepEqual(history.connections.get("b").toArray(), [null, 4]);
  });

  test("a long silence breaks the lines instead of bridging it", () => {
    const history = new StatsHistory({ gapMs: 5_000 });
    history.apply({ at: T0, instances: [up("a", { connections: 1 })] });
    history.apply({ at: T0 + 60_000, instances: [up("a", { connections: 2 })] });
    assert.deepEqual(history.times.toArray(), [T0 / 1000, (T0 + 30_000) / 1000, (T0 + 60_000) / 1000]);
    assert.deepEqual(history.connections.get("a").toArray(), [1, null, 2]);
  });

  test("the same round again (sent to a reconnecting page) adds nothing", () => {
    const history = new StatsHistory();
    history.apply({ at: T0, instances: [up("a", { messages_sent: 0 })] });
    const first = history.apply({ at: T0 + 1_000, instances: [up("a", { messages_sent: 10 })] });
    const again = history.apply({ at: T0 + 1_000, instances: [up("a", { messages_sent: 10 })] });
    assert.equal(again.totals.messagesOut, 10);
    assert.deepEqual(again, first);
    assert.deepEqual(history.times.toArray(), [T0 / 1000, (T0 + 1_000) / 1000]);
  });

  test("time going backwards starts the history again", () => {
    const history = new StatsHistory();
    history.apply({ at: T0, instances: [up("a", { messages_sent: 1 })] });
    const view = history.apply({ at: T0 - 1_000, instances: [up("a", { messages_sent: 0 })] });
    assert.equal(view.totals.messagesOut, null);
    assert.deepEqual(history.times.toArray(), [(T0 - 1_000) / 1000]);
  });
});

test("durations read as their two largest units", () => {
  assert.equal(formatDuration(0), "0 s");
  assert.equal(formatDuration(42), "42 s");
  assert.equal(formatDuration(3_600 + 5), "1 h");
  assert.equal(formatDuration(302), "5 min 2 s");
  assert.equal(formatDuration(3 * 86_400 + 4 * 3_600 + 59), "3 d 4 h");
});

// The JSON the app-server's stream sends, pinned on the Rust side by
// crates/app-server/tests/fleet.rs against the same file.
test("the stream's own JSON reads as the dashboard expects", () => {
  const fixture = JSON.parse(
    readFileSync(new URL("../fixtures/dashboard-snapshot.json", import.meta.url), "utf8"),
  );
  const view = new StatsHistory().apply(fixture);
  assert.equal(view.totals.connections, 3);
  assert.equal(view.totals.rooms, 1);
  assert.equal(view.totals.slowConsumerCloses, 1);
  assert.deepEqual(view.rooms, [{ room: "lobby", members: 2 }]);
  assert.equal(view.moreRooms, false);
  const [up, down] = view.instances;
  assert.equal(up.stats.readiness.engine, "redis");
  assert.equal(down.ok, false);
  assert.equal(down.error, "no answer within 800ms");
});
