//! The scenarios against a real ws-server in this process, and against a
//! plain relay: what the generator counts must match what the server is
//! known to deliver.

mod common;

use std::time::Duration;

use common::relay::start_relay;
use common::{TEST_DEADLINE, relay_context, split_context, start_instance, start_server};
use loadgen::cli::{ChatMixArgs, EchoArgs, FanoutArgs};
use loadgen::scenario::{chat_mix, echo, fanout};
use testkit::RedisServer;

/// One fanout step: `subscribers` readers and `publishers` writers, 200
/// messages/s for a second.
async fn fanout_for_a_second(
    cx: &loadgen::scenario::Context,
    subscribers: u32,
    publishers: u32,
) -> fanout::StepResult {
    let args = FanoutArgs {
        subscribers,
        publishers,
        rate: 200.0,
        duration: Duration::from_secs(1),
        ladder: None,
        give_up_after: 2,
    };
    tokio::time::timeout(TEST_DEADLINE, fanout::step(cx, &args, args.rate))
        .await
        .unwrap_or_else(|_| panic!("the fanout did not finish in time"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_counts_every_delivery_once_and_loses_none() {
    let server = start_server().await;
    let cx = server.context().await;
    let result = fanout_for_a_second(&cx, 5, 1).await;
    assert_eq!(result.subscribers_ready, 5, "{result:?}");
    assert_eq!(result.offered, 200, "{result:?}");
    assert!(result.sent >= 198, "{result:?}");
    assert_eq!(result.lost, 0, "{result:?}");
    assert_eq!(result.duplicated, 0, "{result:?}");
    assert_eq!(result.deliveries, 5 * result.sent, "{result:?}");
    assert_eq!(result.latency_us.count, result.deliveries, "{result:?}");
    assert!(result.kept_up, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trips_with_every_connection() {
    let server = start_server().await;
    let cx = server.context().await;
    let args = EchoArgs {
        connections: 3,
        duration: Duration::from_secs(1),
    };
    let value = tokio::time::timeout(TEST_DEADLINE, echo::run(&cx, &args))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(value["connections_ready"], 3, "{value}");
    assert_eq!(value["connect_failures"], 0, "{value}");
    assert_eq!(value["timed_out"], 0, "{value}");
    assert_eq!(value["closed_early"], 0, "{value}");
    let round_trips = value["round_trips"].as_u64().unwrap();
    // One message in flight per connection on loopback: thousands a second
    // even in a debug build; a hundred a second each is a generous floor.
    assert!(round_trips >= 300, "{value}");
    assert_eq!(value["latency_us"]["count"].as_u64(), Some(round_trips));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_through_a_relay_reads_bare_payloads() {
    let cx = relay_context(start_relay().await).await;
    let args = FanoutArgs {
        subscribers: 3,
        publishers: 2,
        rate: 100.0,
        duration: Duration::from_millis(500),
        ladder: None,
        give_up_after: 2,
    };
    let result = tokio::time::timeout(TEST_DEADLINE, fanout::step(&cx, &args, args.rate))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.sent, 50, "{result:?}");
    assert_eq!(result.lost, 0, "{result:?}");
    assert_eq!(result.duplicated, 0, "{result:?}");
    assert_eq!(result.deliveries, 3 * 50, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_split_over_two_instances_on_one_redis_loses_nothing() {
    let redis = RedisServer::start().await;
    let a = start_instance(&redis.url()).await;
    let b = start_instance(&redis.url()).await;
    let cx = split_context(&[&a, &b]).await;
    // Readers 0..4 and writers 4..6 alternate: two readers and one writer
    // on each instance, so every reader gets the other instance's writer's
    // messages through Redis.
    let result = fanout_for_a_second(&cx, 4, 2).await;
    assert_eq!(result.subscribers_ready, 4, "{result:?}");
    assert_eq!(result.publishers_ready, 2, "{result:?}");
    assert!(result.sent >= 198, "{result:?}");
    assert_eq!(result.lost, 0, "{result:?}");
    assert_eq!(result.duplicated, 0, "{result:?}");
    assert_eq!(result.deliveries, 4 * result.sent, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_mix_split_over_two_instances_on_one_redis_loses_nothing() {
    let redis = RedisServer::start().await;
    let a = start_instance(&redis.url()).await;
    let b = start_instance(&redis.url()).await;
    let cx = split_context(&[&a, &b]).await;
    // Every room has members on both instances (room of member i: i / 2
    // mod 4).
    let args = ChatMixArgs {
        connections: 16,
        rooms: 4,
        rate: 100.0,
        churn: 0.0,
        duration: Duration::from_secs(1),
    };
    let value = tokio::time::timeout(TEST_DEADLINE, chat_mix::run(&cx, &args))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(value["members_ready"], 16, "{value}");
    assert_eq!(value["lost"], 0, "{value}");
    assert_eq!(value["duplicated"], 0, "{value}");
    assert_eq!(value["own_missing"], 0, "{value}");
    let sent = value["posts_sent"].as_u64().unwrap();
    assert!(sent >= 95, "{value}");
    // Four members per room, each post to all four.
    assert_eq!(value["deliveries"].as_u64(), Some(4 * sent), "{value}");
}
