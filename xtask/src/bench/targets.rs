//! The performance targets, checked against one run's results, each with
//! what bounds it on this machine: the part of `docs/benchmarks.md` that
//! says which targets were met and why the others were not.

use super::Read;

/// Duplex's figure for one scenario, read from one run's results.
pub(super) type Figure<'a> = dyn Fn(&str, &str, Read) -> Option<f64> + 'a;

/// One target: what is measured, the goal, how this run did, and what
/// bounds the figure when the goal is missed.
struct Target {
    what: &'static str,
    goal: &'static str,
    /// The figure as shown, and whether the goal is met; `None` when the
    /// run has no figure.
    check: fn(&Figure<'_>) -> Option<(String, bool)>,
    bound: &'static str,
}

const DUPLEX: &str = "duplex";

fn ms(value: f64) -> String {
    format!("{value:.1} ms")
}

fn count(value: f64) -> String {
    let whole = value.round();
    let mut digits = format!("{whole:.0}");
    let mut grouped = String::new();
    while digits.len() > 3 {
        let tail = digits.split_off(digits.len() - 3);
        grouped = format!(",{tail}{grouped}");
    }
    format!("{digits}{grouped}")
}

fn targets() -> Vec<Target> {
    vec![
        Target {
            what: "idle: connections held",
            goal: "19,000",
            check: |f| {
                let held = f(DUPLEX, "idle", Read::At("/results/connected", 1.0))?;
                Some((count(held), held >= 19_000.0))
            },
            bound: "the per-process file limit (20,000) on both sides",
        },
        Target {
            what: "idle: server memory per connection",
            goal: "<= 4 KiB",
            check: |f| {
                let kib = f(
                    DUPLEX,
                    "idle",
                    Read::At("/results/rss_kib_per_connection", 1.0),
                )?;
                Some((format!("{kib:.1} KiB"), kib <= 4.0))
            },
            bound: "a 1 KiB read buffer, two tasks, tungstenite's state and the session \
                    (architecture.md, Cost per connection)",
        },
        Target {
            what: "idle: handshakes/s",
            goal: ">= 30,000",
            check: |f| {
                let rate = f(DUPLEX, "idle", Read::At("/results/connect_rate_per_s", 1.0))?;
                Some((count(rate), rate >= 30_000.0))
            },
            bound: "the generator's core, busy for the whole connect phase; the server \
                    spends about 45 µs per handshake, token check included (server and \
                    generator CPU are in results.json)",
        },
        Target {
            what: "fanout 10 x 100: deliveries/s kept up",
            goal: ">= 6,000,000",
            check: |f| {
                let d = f(DUPLEX, "fanout 10 x 100", Read::BestDeliveries)?;
                Some((count(d), d >= 6e6))
            },
            bound: "the kernel's `send` on loopback, one per batch per reader (56 % of the \
                    server's CPU); no server here carries 6 million on one core",
        },
        Target {
            what: "fanout 1 x 1000: 1,000,000 deliveries/s kept up, p99 <= 10 ms",
            goal: "kept up, p99 <= 10 ms",
            check: |f| {
                let d = f(DUPLEX, "fanout 1 x 1000", Read::BestDeliveries)?;
                let p99 = f(
                    DUPLEX,
                    "fanout 1 x 1000",
                    Read::BestStep("/latency_us/p99_us", 1e-3),
                )?;
                Some((
                    format!("{} kept up, p99 {}", count(d), ms(p99)),
                    d >= 1e6 && p99 <= 10.0,
                ))
            },
            bound: "as fanout 10 x 100; even at 100 posts/s a post takes 5 to 10 ms to \
                    reach 1,000 members, one `send` each",
        },
        Target {
            what: "echo among 50: round trips/s",
            goal: ">= 85,000",
            check: |f| {
                let rt = f(DUPLEX, "echo", Read::At("/results/round_trips_per_s", 1.0))?;
                Some((count(rt), rt >= 85_000.0))
            },
            bound: "every round trip is a post delivered to 50 members: 85,000/s is 4.25 \
                    million deliveries/s, the fan-out bound",
        },
        Target {
            what: "one room of 19,000: a broadcast reaches the last in <= 60 ms (p99)",
            goal: "<= 60 ms",
            check: |_| None,
            bound: "not run: presence makes joining one room of N members O(N²) \
                    (180 million `member_joined` frames for 19,000); needs presence that \
                    stops announcing members past a room size",
        },
        Target {
            what: "chat mix: p99, nothing lost (bench load: 2,500 posts/s, not 20,000)",
            goal: "p99 <= 5 ms, 0 lost",
            check: |f| {
                let p99 = f(
                    DUPLEX,
                    "chat mix",
                    Read::At("/results/latency_us/p99_us", 1e-3),
                )?;
                // A member's own posts not coming back are lost too.
                let lost = f(DUPLEX, "chat mix", Read::At("/results/lost", 1.0))?
                    + f(DUPLEX, "chat mix", Read::At("/results/own_missing", 1.0))?;
                Some((
                    format!("p99 {}, {} lost", ms(p99), count(lost)),
                    p99 <= 5.0 && lost == 0.0,
                ))
            },
            bound: "rooms of ten give no batching: one `send` per delivery; the server \
                    saturates near 8,000 posts/s; at 2,500 it uses about 40 % of its core",
        },
        Target {
            what: "chat mix: RSS drift",
            goal: "<= 5 %",
            check: |f| {
                let drift = f(DUPLEX, "chat mix", Read::At("/results/rss_drift_pct", 1.0))?;
                Some((format!("{drift:.1} %"), drift <= 5.0))
            },
            bound: "the rooms' history filling up over the run (1,000 rooms x 100 \
                    entries) and joiners' write buffers, not a leak (1.6 % with no history)",
        },
        Target {
            what: "slow consumers: healthy readers' deliveries",
            goal: ">= 99.9 %",
            check: |f| {
                let pct = f(
                    DUPLEX,
                    "slow consumers",
                    Read::At("/results/healthy/delivered_fraction", 100.0),
                )?;
                Some((format!("{pct:.2} %"), pct >= 99.9))
            },
            bound: "readers closed as slow although they read (an outbox too small for a burst)",
        },
        Target {
            what: "slow consumers: stalled readers let go",
            goal: "<= 2 s",
            check: |f| {
                let s = f(
                    DUPLEX,
                    "slow consumers",
                    Read::At("/results/stalled/max_closed_after_s", 1.0),
                )?;
                let closed = f(
                    DUPLEX,
                    "slow consumers",
                    Read::At("/results/stalled/closed_by_server", 1.0),
                )?;
                let stalled = f(
                    DUPLEX,
                    "slow consumers",
                    Read::At("/results/stalled/count", 1.0),
                )?;
                if closed < stalled {
                    return Some((format!("{closed:.0} of {stalled:.0} closed"), false));
                }
                Some((format!("{s:.1} s"), s <= 2.0))
            },
            bound: "the kernel's socket buffers fill before the server can tell (about \
                    1.3 s at 3 MB/s), then the close frame gets 2 s to go out",
        },
        Target {
            what: "fan-out against Node's ws",
            goal: ">= 10x",
            check: |f| {
                let ours = f(DUPLEX, "fanout 10 x 100", Read::BestDeliveries)?;
                let node = f("node-ws", "fanout 10 x 100", Read::BestDeliveries)?;
                (node > 0.0).then(|| {
                    let ratio = ours / node;
                    (format!("{ratio:.1}x"), ratio >= 10.0)
                })
            },
            bound: "Node's figure moves between 50,000 and 100,000 deliveries/s from run \
                    to run, and Duplex's is bounded as above",
        },
        Target {
            what: "scale-out: fanout 10 x 100 over two Redis-engine instances, posts/s",
            goal: ">= 50,000",
            check: |f| {
                let posts = f(
                    DUPLEX,
                    "scale-out fanout 10 x 100",
                    Read::At("/results/highest_kept_up_rate", 1.0),
                )?;
                Some((count(posts), posts >= 50_000.0))
            },
            bound: "one core for both instances and Redis: 50,000 posts/s to 100 readers \
                    is 5 million deliveries/s, and Redis runs the publish script at about \
                    34,000/s (architecture.md, Scale-out)",
        },
    ]
}

/// The targets as a markdown table.
pub(super) fn table(figure: &Figure<'_>) -> String {
    let mut out = String::from(
        "## Targets\n\nThe performance targets on this machine (one core serving, one \
         loading), this run's figure, and what bounds those not met; the reasoning and \
         the profile are in [architecture.md](architecture.md#the-targets-and-what-bounds-those-not-met).\n\n\
         | target | goal | this run | met | what bounds it |\n|---|---|---|---|---|\n",
    );
    for target in targets() {
        let (shown, met) = match (target.check)(figure) {
            Some((shown, true)) => (shown, "yes"),
            Some((shown, false)) => (shown, "no"),
            None => ("–".to_owned(), "no"),
        };
        let bound = if met == "yes" { "" } else { target.bound };
        out.push_str(&format!(
            "| {} | {} | {shown} | {met} | {bound} |\n",
            target.what, target.goal
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn met_targets_say_yes_and_missed_ones_say_why() {
        let figure = |server: &str, scenario: &str, read: Read| match (server, scenario, read) {
            (DUPLEX, "idle", Read::At("/results/connected", _)) => Some(19_000.0),
            (DUPLEX, "idle", Read::At("/results/rss_kib_per_connection", _)) => Some(5.4),
            _ => None,
        };
        let table = table(&figure);
        assert!(
            table.contains("| idle: connections held | 19,000 | 19,000 | yes |  |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| idle: server memory per connection | <= 4 KiB | 5.4 KiB | no | a 1 KiB"
            ),
            "{table}"
        );
        assert!(table.contains("| echo among 50: round trips/s | >= 85,000 | – | no |"));
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1_000.0), "1,000");
        assert_eq!(count(1_234_567.4), "1,234,567");
    }
}
