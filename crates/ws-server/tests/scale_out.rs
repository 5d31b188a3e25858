//! Several instances on one Redis act as one server, and keep their word
//! when Redis, the pub/sub link or an instance fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, RedisServer, TestServer, start_instance};
use protocol::{ChatMessage, CloseCode, ServerMessage};
use serde_json::json;

/// How long a test waits for what must happen within a bound (presence
/// expiry, a reconnect): generous, so that only a real failure trips it.
const EVENTUAL: Duration = Duration::from_secs(15);

async fn two_instances() -> (Arc<RedisServer>, TestServer, TestServer) {
    let redis = Arc::new(RedisServer::start().await);
    let a = start_instance(&redis, |_| {}).await;
    let b = start_instance(&redis, |_| {}).await;
    (redis, a, b)
}

/// Reads `n` chat messages, skipping presence events.
async fn read_messages(client: &mut Client, n: usize) -> Vec<ChatMessage> {
    let mut messages = Vec::with_capacity(n);
    while messages.len() < n {
        messages.push(client.recv_chat().await);
    }
    messages
}

fn texts(messages: &[ChatMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

fn offsets(messages: &[ChatMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.offset).collect()
}

#[tokio::test]
async fn posts_on_two_instances_reach_every_member_once_in_one_order() {
    let (_redis, a, b) = two_instances().await;
    let mut reader_a = Client::joined(&a, "lobby", "Reader A").await;
    let mut reader_b = Client::joined(&b, "lobby", "Reader B").await;
    let mut poster_a = Client::joined(&a, "lobby", "Poster A").await;
    let mut poster_b = Client::joined(&b, "lobby", "Poster B").await;
    // Posters do not read: what they are sent must fit their outboxes.
    const EACH: usize = 80;
    // Both post at once, without waiting for each other.
    let post_a = async {
        for i in 0..EACH {
            poster_a.post("lobby", &format!("a{i}")).await;
        }
    };
    let post_b = async {
        for i in 0..EACH {
            poster_b.post("lobby", &format!("b{i}")).await;
        }
    };
    tokio::join!(post_a, post_b);

    let seen_a = read_messages(&mut reader_a, 2 * EACH).await;
    let seen_b = read_messages(&mut reader_b, 2 * EACH).await;
    assert_eq!(texts(&seen_a), texts(&seen_b), "one order for all");
    let expected: Vec<u64> = (1..=2 * EACH as u64).collect();
    assert_eq!(offsets(&seen_a), expected, "every offset once, no gap");
    for prefix in ["a", "b"] {
        let own: Vec<&str> = texts(&seen_a)
            .into_iter()
            .filter(|t| t.starts_with(prefix))
            .collect();
        let posted: Vec<String> = (0..EACH).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(own, posted, "each poster's messages in its own order");
    }
}

#[tokio::test]
async fn a_client_that_moves_to_the_other_instance_recovers_exactly_what_it_missed() {
    let (_redis, a, b) = two_instances().await;
    let mut ada = Client::joined(&a, "lobby", "Ada").await;
    let mut bob = Client::connect_as(&a, "Bob").await;
    let epoch = bob.join("lobby").await.epoch;
    ada.post_acked("lobby", "seen").await;
    let seen = bob.recv_chat().await;
    drop(bob);
    for text in ["missed 1", "missed 2"] {
        ada.post_acked("lobby", text).await;
    }

    let mut bob = Client::connect_as(&b, "Bob").await;
    let joined = bob.join_since("lobby", &epoch, seen.offset).await;
    assert!(joined.recovered);
    assert_eq!(texts(&joined.history), ["missed 1", "missed 2"]);
    let live = ada.post_acked("lobby", "live").await;
    assert_eq!(live.offset, joined.offset + 1);
    assert_eq!(bob.recv_chat().await, live);
}

#[tokio::test]
async fn history_survives_the_restart_of_every_instance() {
    let (redis, a, b) = two_instances().await;
    let mut ada = Client::connect_as(&a, "Ada").await;
    let epoch = ada.join("lobby").await.epoch;
    ada.post_acked("lobby", "before").await;
    drop(ada);
    a.stop().await;
    b.stop().await;

    let c = start_instance(&redis, |_| {}).await;
    let mut ada = Client::connect_as(&c, "Ada").await;
    let joined = ada.join_since("lobby", &epoch, 0).await;
    assert!(joined.recovered, "same epoch: Redis kept the room");
    assert_eq!(texts(&joined.history), ["before"]);
}

#[tokio::test]
async fn presence_and_the_room_directory_span_instances() {
    let (_redis, a, b) = two_instances().await;
    let mut ada = Client::joined(&a, "lobby", "Ada").await;
    let mut bob = Client::connect_as(&b, "Bob").await;
    assert_eq!(bob.join("lobby").await.members, ["Ada", "Bob"]);
    assert_eq!(
        ada.recv().await,
        ServerMessage::MemberJoined {
            room: protocol::RoomName::new("lobby").unwrap(),
            user: protocol::UserId::new(bob.user.clone()).unwrap(),
            name: protocol::DisplayName::new("Bob").unwrap(),
        }
    );
    // A second tab of Bob's on the other instance: still one Bob.
    let mut bob_tab = Client::connect_as(&a, "Bob").await;
    assert_eq!(bob_tab.join("lobby").await.members, ["Ada", "Bob"]);

    let mut service = Client::connect_service(&a).await;
    service.send_json(json!({"type": "list_rooms"})).await;
    match service.recv().await {
        ServerMessage::Rooms { rooms, .. } => {
            let rooms: Vec<(&str, usize)> =
                rooms.iter().map(|r| (r.room.as_str(), r.members)).collect();
            assert_eq!(rooms, [("lobby", 2)]);
        }
        other => panic!("expected rooms, got {other:?}"),
    }

    drop(bob);
    // Bob is still there through the other tab: Ada's next frame is her own
    // message, not a member_left.
    ada.post("lobby", "still here?").await;
    assert!(matches!(ada.recv().await, ServerMessage::Message(_)));
    drop(bob_tab);
    assert!(
        matches!(ada.recv().await, ServerMessage::MemberLeft { name, .. } if name.as_str() == "Bob")
    );
}

/// Refuses new connections to `redis` and drops its pub/sub ones, so every
/// instance loses its subscriptions and cannot take them up again until
/// [`readmit`] (its command connections stay). Returns the connection that
/// did it, the one that can still undo it.
async fn cut_subscriptions(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    let mut conn = redis.connection().await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    let open = clients.lines().count();
    let subscribers = clients.lines().filter(|l| l.contains(" sub=1")).count();
    assert!(subscribers >= 2, "both instances subscribed: {clients}");
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg(open - subscribers)
        .exec_async(&mut conn)
        .await
        .unwrap();
    let killed: usize = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, subscribers);
    conn
}

async fn readmit(mut conn: redis::aio::MultiplexedConnection) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg(10_000)
        .exec_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_instance_that_lost_its_subscription_fills_the_gap_from_the_log() {
    let (redis, a, b) = two_instances().await;
    let mut ada = Client::joined(&a, "lobby", "Ada").await;
    let mut bob = Client::joined(&b, "lobby", "Bob").await;
    let _ = ada.recv().await; // member_joined Bob
    ada.post_acked("lobby", "before").await;
    assert_eq!(bob.recv_chat().await.text.as_str(), "before");

    let mut service = Client::connect_service(&a).await;
    let admin = cut_subscriptions(&redis).await;
    // Stored while no instance hears the channel: acknowledged, not yet
    // delivered.
    for i in 0..5 {
        service
            .send_json(json!({"type": "publish", "room": "lobby", "name": "Ops",
                              "text": format!("gap {i}"), "ref": format!("g{i}")}))
            .await;
        assert!(matches!(service.recv().await, ServerMessage::Ack { .. }));
    }
    readmit(admin).await;

    for member in [&mut ada, &mut bob] {
        let got = read_messages(member, 5).await;
        assert_eq!(texts(&got), ["gap 0", "gap 1", "gap 2", "gap 3", "gap 4"]);
        assert_eq!(offsets(&got), [2, 3, 4, 5, 6]);
    }
    let after = ada.post_acked("lobby", "after").await;
    assert_eq!(
        bob.recv_chat().await,
        after,
        "no duplicate, nothing skipped"
    );
}

#[tokio::test]
async fn while_redis_is_down_posts_are_refused_and_afterwards_rooms_start_over() {
    let redis = Arc::new(RedisServer::start().await);
    let a = start_instance(&redis, |_| {}).await;
    let b = start_instance(&redis, |_| {}).await;
    let mut ada = Client::joined(&a, "lobby", "Ada").await;
    let mut bob = Client::connect_as(&b, "Bob").await;
    let before = bob.join("lobby").await;
    let _ = ada.recv().await; // member_joined Bob
    let stored = ada.post_acked("lobby", "stored").await;
    assert_eq!(bob.recv_chat().await, stored);

    redis.kill().await;
    ada.send_json(json!({"type": "post", "room": "lobby", "text": "lost?", "ref": "p1"}))
        .await;
    match ada.recv().await {
        ServerMessage::Error {
            code, reference, ..
        } => {
            assert_eq!(code.as_str(), "engine_unavailable");
            assert_eq!(
                reference.map(|r| r.as_str().to_owned()).as_deref(),
                Some("p1")
            );
        }
        other => panic!("expected engine_unavailable, got {other:?}"),
    }

    // Redis comes back empty: the room starts over under a new epoch, and
    // each member is told so with a fresh `joined`.
    let port = redis.port;
    let _redis_again = RedisServer::start_on(port)
        .await
        .expect("Redis restarts on its port");
    for client in [&mut ada, &mut bob] {
        match tokio::time::timeout(EVENTUAL, client.recv())
            .await
            .expect("told in time")
        {
            ServerMessage::Joined {
                epoch, recovered, ..
            } => {
                assert_ne!(epoch.as_str(), before.epoch);
                assert!(!recovered);
            }
            other => panic!("expected a fresh joined, got {other:?}"),
        }
    }
    let posted = ada.post_acked("lobby", "after").await;
    assert_eq!(posted.offset, 1, "a new epoch counts from 1");
    assert_eq!(bob.recv_chat().await, posted, "delivered once");
}

/// A ws-server of the Redis engine in a process of its own, to be killed.
struct Process {
    child: tokio::process::Child,
    port: u16,
}

impl Process {
    async fn start(redis: &RedisServer, presence_ttl: &str) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ws-server"))
            .env("DUPLEX_WS_PORT", "0")
            .env("DUPLEX_WS_ADMIN_PORT", "0")
            .env("DUPLEX_WS_ENGINE", "redis")
            .env("DUPLEX_WS_REDIS_URL", redis.url())
            .env("DUPLEX_WS_PRESENCE_TTL", presence_ttl)
            .env("DUPLEX_WS_SECRET", common::SECRET)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let port = tokio::time::timeout(EVENTUAL, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on ws://127.0.0.1:").nth(1) {
                    return rest.split('/').next().and_then(|p| p.parse().ok());
                }
            }
            None
        })
        .await
        .unwrap()
        .expect("the ws-server says where it listens");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, port }
    }

    fn server(&self) -> TestServer {
        TestServer {
            addr: ([127, 0, 0, 1], self.port).into(),
            // This test does not read the process's admin port.
            admin: ([127, 0, 0, 1], 0).into(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            task: tokio::spawn(async {}),
            redis: None,
        }
    }
}

#[tokio::test]
async fn when_an_instance_dies_its_clients_recover_elsewhere_and_its_members_expire() {
    let redis = Arc::new(RedisServer::start().await);
    let ttl = Duration::from_secs(1);
    let a = start_instance(&redis, |s| s.presence_ttl = ttl).await;
    let mut doomed = Process::start(&redis, "1s").await;
    let d = doomed.server();

    let mut ada = Client::joined(&a, "lobby", "Ada").await;
    let _cy = Client::joined(&d, "lobby", "Cy").await;
    let mut bob = Client::connect_as(&d, "Bob").await;
    let epoch = bob.join("lobby").await.epoch;
    for _ in 0..2 {
        assert!(matches!(
            ada.recv().await,
            ServerMessage::MemberJoined { .. }
        ));
    }
    for i in 1..=3 {
        ada.post_acked("lobby", &format!("m{i}")).await;
    }
    let seen = read_messages(&mut bob, 3).await;

    doomed.child.kill().await.unwrap();
    let killed_at = tokio::time::Instant::now();
    for i in 4..=6 {
        ada.post_acked("lobby", &format!("m{i}")).await;
    }

    // Bob's page reconnects, to the instance that is left.
    let mut bob = Client::connect_as(&a, "Bob").await;
    let joined = bob.join_since("lobby", &epoch, seen[2].offset).await;
    assert!(joined.recovered);
    assert_eq!(texts(&joined.history), ["m4", "m5", "m6"]);

    // Cy never comes back: the dead instance's entry for Cy expires and Ada
    // is told. (Bob may flicker, if his old entry expired before he was
    // back; that is not what this waits for.)
    tokio::time::timeout(EVENTUAL, async {
        loop {
            match ada.recv().await {
                ServerMessage::MemberLeft { name, .. } if name.as_str() == "Cy" => return,
                ServerMessage::Message(_)
                | ServerMessage::MemberLeft { .. }
                | ServerMessage::MemberJoined { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("member_left within the bound");
    // The documented bound is presence_ttl plus a third; allow scheduling
    // slack on a busy machine.
    assert!(
        killed_at.elapsed() < ttl * 4,
        "took {:?}",
        killed_at.elapsed()
    );

    let mut service = Client::connect_service(&a).await;
    service.send_json(json!({"type": "list_rooms"})).await;
    match service.recv().await {
        ServerMessage::Rooms { rooms, .. } => assert_eq!(rooms[0].members, 2, "Ada and Bob"),
        other => panic!("expected rooms, got {other:?}"),
    }
}

#[tokio::test]
async fn an_emptied_room_expires_in_redis_and_comes_back_with_a_new_epoch() {
    let redis = Arc::new(RedisServer::start().await);
    let idle = Duration::from_secs(300);
    let a = start_instance(&redis, |s| s.room_idle_ttl = idle).await;
    let mut ada = Client::connect_as(&a, "Ada").await;
    let first = ada.join("quiet").await;
    ada.post_acked("quiet", "kept a while").await;
    ada.leave("quiet").await;

    // Every key of the emptied room now lives `room_idle_ttl` at most.
    let mut conn = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("duplex:{quiet}:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "meta and log: {keys:?}");
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= idle.as_millis() as i64, "{key}: {ttl} ms");
    }

    // Within that time the room recovers as before.
    let again = ada.join_since("quiet", &first.epoch, 0).await;
    assert!(again.recovered);
    ada.leave("quiet").await;

    // When the time is up (here: at once) the room comes back as a new one.
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
    let after = ada.join_since("quiet", &first.epoch, 1).await;
    assert_ne!(after.epoch, first.epoch);
    assert!(!after.recovered);
    assert!(after.history.is_empty());
}

#[tokio::test]
async fn a_message_whose_publication_was_lost_is_found_by_the_next_refresh() {
    let redis = Arc::new(RedisServer::start().await);
    // Refreshes every 200 ms.
    let a = start_instance(&redis, |s| s.presence_ttl = Duration::from_millis(600)).await;
    let mut ada = Client::joined(&a, "lobby", "Ada").await;
    ada.post_acked("lobby", "first").await;

    // Stored as the publish script would, but never published: no later
    // message reveals the gap.
    let mut conn = redis.connection().await;
    let offset: u64 = redis::cmd("HINCRBY")
        .arg("duplex:{lobby}:meta")
        .arg("offset")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let entry = json!({"id": "0192f5e0-8c1a-7cc0-b1c3-5a7f6c2d9e10", "room": "lobby",
                       "offset": offset, "user": "ops", "name": "Ops", "text": "silent", "ts": 1});
    let _: String = redis::cmd("XADD")
        .arg("duplex:{lobby}:log")
        .arg(format!("{offset}-0"))
        .arg("m")
        .arg(entry.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();

    let found = ada.recv_chat().await;
    assert_eq!((found.text.as_str(), found.offset), ("silent", 2));
}

#[tokio::test]
async fn a_frozen_redis_gets_answers_in_bounded_time_and_the_server_still_stops() {
    let redis = Arc::new(RedisServer::start().await);
    let a = start_instance(&redis, |_| {}).await;
    let mut ada = Client::joined(&a, "lobby", "Ada").await;
    ada.post_acked("lobby", "before").await;

    redis.signal("STOP");
    let asked = tokio::time::Instant::now();
    ada.send_json(json!({"type": "post", "room": "lobby", "text": "frozen", "ref": "p1"}))
        .await;
    assert_eq!(ada.recv_error().await, "engine_unavailable");
    ada.send_json(json!({"type": "join", "room": "elsewhere", "name": "Ada", "ref": "j1"}))
        .await;
    assert_eq!(ada.recv_error().await, "engine_unavailable");
    // Each within the 2 s command timeout, plus scheduling slack.
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );

    redis.signal("CONT");
    let after = tokio::time::timeout(EVENTUAL, async {
        loop {
            ada.send_json(json!({"type": "post", "room": "lobby", "text": "thawed", "ref": "p2"}))
                .await;
            match ada.recv().await {
                ServerMessage::Message(m) if m.text.as_str() == "thawed" => return m,
                _ => {}
            }
        }
    })
    .await
    .expect("posts work again once Redis answers");
    assert!(after.offset >= 2);
    drop(ada);

    redis.signal("STOP");
    tokio::time::timeout(EVENTUAL, a.stop())
        .await
        .expect("the server stops although Redis is frozen");
    redis.signal("CONT");
}

#[tokio::test]
async fn a_redis_that_went_back_in_time_gives_the_room_a_new_epoch() {
    let (redis, a, b) = two_instances().await;
    let mut ada = Client::connect_as(&a, "Ada").await;
    let before = ada.join("lobby").await;
    let mut bob = Client::joined(&b, "lobby", "Bob").await;
    let _ = ada.recv().await; // member_joined Bob
    for text in ["one", "two", "three"] {
        ada.post_acked("lobby", text).await;
        assert_eq!(bob.recv_chat().await.text.as_str(), text);
    }

    // As if Redis came back from a snapshot taken after the first message.
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("HSET")
        .arg("duplex:{lobby}:meta")
        .arg("offset")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let first: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("duplex:{lobby}:log")
        .arg("1-0")
        .arg("1-0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg("duplex:{lobby}:log")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg("duplex:{lobby}:log")
        .arg("1-0")
        .arg(&first[0].1)
        .query_async(&mut conn)
        .await
        .unwrap();

    // The next post would reuse offset 2 (or a refresh finds the room
    // behind first): members must not take it for the "two" they have, and
    // must not miss it either. They start over under a new epoch.
    bob.post("lobby", "after the rollback").await;
    for member in [&mut ada, &mut bob] {
        let (mut new_epoch, mut got_it) = (false, false);
        while !(new_epoch && got_it) {
            match member.recv().await {
                ServerMessage::Joined {
                    epoch,
                    recovered,
                    history,
                    ..
                } => {
                    assert_ne!(epoch.as_str(), before.epoch, "a new epoch");
                    assert!(!recovered);
                    new_epoch = true;
                    got_it |= texts(&history).contains(&"after the rollback");
                }
                ServerMessage::Message(m) => {
                    assert!(new_epoch, "{m:?} before the room started over");
                    assert_eq!(m.text.as_str(), "after the rollback");
                    got_it = true;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn a_name_held_on_one_instance_cannot_be_taken_on_the_other() {
    let (_redis, a, b) = two_instances().await;
    let _ada = Client::connect_user(&a, "u-ada", "Ada")
        .await
        .joined_to("lobby")
        .await;
    // Instance b has nobody in the room: only Redis can refuse these.
    for (user, name) in [
        ("u-imp", "Ada"),
        ("u-imp", "\u{0430}da"),
        ("u-ada", "Ada L"),
    ] {
        let mut other = Client::connect_user(&b, user, name).await;
        other
            .send_json(json!({"type": "join", "room": "lobby", "ref": "j"}))
            .await;
        assert_eq!(other.recv_error().await, "name_taken", "{user} as {name:?}");
    }
    // The same user under the same name is one more tab.
    let mut tab = Client::connect_user(&b, "u-ada", "Ada").await;
    assert_eq!(tab.join("lobby").await.members, ["Ada"]);
}

#[tokio::test]
async fn racing_joins_under_one_name_on_two_instances_let_one_user_in() {
    let (_redis, a, b) = two_instances().await;
    let mut clients = Vec::new();
    for i in 0..10 {
        let server = if i % 2 == 0 { &a } else { &b };
        clients.push(Client::connect_user(server, &format!("u{i}"), "Ada").await);
    }
    for client in &mut clients {
        client
            .send_json(json!({"type": "join", "room": "race", "ref": "j"}))
            .await;
    }
    let mut joined = 0;
    for client in &mut clients {
        match client.recv().await {
            ServerMessage::Joined { members, .. } => {
                assert_eq!(members.len(), 1);
                joined += 1;
            }
            ServerMessage::Error { code, .. } => assert_eq!(code.as_str(), "name_taken"),
            other => panic!("expected joined or name_taken, got {other:?}"),
        }
    }
    assert_eq!(joined, 1);
}

#[tokio::test]
async fn after_redis_loses_a_room_a_name_claimed_elsewhere_first_closes_the_other_holder() {
    let redis = Arc::new(RedisServer::start().await);
    let fast = |s: &mut ws_server::Settings| s.presence_ttl = Duration::from_millis(600);
    let a = start_instance(&redis, fast).await;
    let b = start_instance(&redis, fast).await;
    let mut ada = Client::connect_user(&a, "u-ada", "Ada")
        .await
        .joined_to("lobby")
        .await;
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Before instance a notices, another user takes the name on b.
    let mut impostor = Client::connect_user(&b, "u-imp", "ada").await;
    assert_eq!(impostor.join("lobby").await.members, ["ada"]);
    // Instance a's next refresh finds the name taken: Ada is closed, not
    // left to show the same name as another user.
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ada.ws_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break ada.close_code(),
            Err(_) => panic!("Ada was never closed"),
        }
    };
    assert_eq!(close, Some(CloseCode::NAME_LOST.0));
    // Back again, her join says why.
    let mut again = Client::connect_user(&a, "u-ada", "Ada").await;
    again
        .send_json(json!({"type": "join", "room": "lobby", "ref": "j"}))
        .await;
    assert_eq!(again.recv_error().await, "name_taken");
}
