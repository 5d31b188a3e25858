//! History and recovery: late joiners see recent messages; a client that
//! reconnects with its last position gets exactly what it missed.

mod common;

use common::{Client, Engine, start, start_server, start_with};
use serde_json::json;

fn texts(history: &[protocol::ChatMessage]) -> Vec<&str> {
    history.iter().map(|m| m.text.as_str()).collect()
}

async fn a_fresh_join_gets_the_recent_history_in_order(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    for text in ["one", "two", "three"] {
        ada.post_acked("lobby", text).await;
    }
    let mut bob = Client::connect_as(&server, "Bob").await;
    let joined = bob.join("lobby").await;
    assert_eq!(texts(&joined.history), ["one", "two", "three"]);
    let offsets: Vec<u64> = joined.history.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [1, 2, 3]);
    assert_eq!(joined.offset, 3);
    assert!(!joined.recovered, "a fresh join recovers nothing");
}

async fn history_keeps_only_the_configured_number_of_messages(engine: Engine) {
    let server = start_with(engine, |s| s.history_size = 2).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    for text in ["a", "b", "c"] {
        ada.post_acked("lobby", text).await;
    }
    let mut bob = Client::connect_as(&server, "Bob").await;
    assert_eq!(texts(&bob.join("lobby").await.history), ["b", "c"]);
}

async fn a_reconnecting_client_gets_exactly_what_it_missed_in_order(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::connect_as(&server, "Bob").await;
    let epoch = bob.join("lobby").await.epoch;
    ada.post_acked("lobby", "seen").await;
    let seen = bob.recv_chat().await;
    drop(bob);

    for text in ["missed 1", "missed 2", "missed 3"] {
        ada.post_acked("lobby", text).await;
    }
    let mut bob = Client::connect_as(&server, "Bob").await;
    let joined = bob.join_since("lobby", &epoch, seen.offset).await;
    assert!(joined.recovered);
    assert_eq!(texts(&joined.history), ["missed 1", "missed 2", "missed 3"]);
    assert_eq!(joined.offset, seen.offset + 3);

    // Live messages continue right after the recovered ones, no gap, no
    // duplicate.
    let next = ada.post_acked("lobby", "live").await;
    assert_eq!(next.offset, joined.offset + 1);
    assert_eq!(bob.recv_chat().await, next);
}

async fn a_client_that_missed_nothing_recovers_an_empty_history(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    let first = ada.join("lobby").await;
    ada.post_acked("lobby", "x").await;
    let mut again = Client::connect_as(&server, "Ada").await;
    let joined = again.join_since("lobby", &first.epoch, 1).await;
    assert!(joined.recovered);
    assert!(joined.history.is_empty());
}

async fn falling_too_far_behind_is_flagged_and_gives_the_recent_history(engine: Engine) {
    let server = start_with(engine, |s| s.history_size = 3).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    let epoch = ada.join("lobby").await.epoch;
    for i in 1..=6 {
        ada.post_acked("lobby", &format!("m{i}")).await;
    }
    let mut bob = Client::connect_as(&server, "Bob").await;
    let joined = bob.join_since("lobby", &epoch, 1).await;
    assert!(!joined.recovered, "messages 2 and 3 are gone");
    assert_eq!(texts(&joined.history), ["m4", "m5", "m6"]);

    // Offset 3 is the last one whose successors are all still kept.
    let mut cy = Client::connect_as(&server, "Cy").await;
    assert!(cy.join_since("lobby", &epoch, 3).await.recovered);
}

async fn a_position_ahead_of_the_room_is_not_recovered(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    let epoch = ada.join("lobby").await.epoch;
    ada.post_acked("lobby", "only").await;
    let mut bob = Client::connect_as(&server, "Bob").await;
    let joined = bob.join_since("lobby", &epoch, 99).await;
    assert!(!joined.recovered);
    assert_eq!(texts(&joined.history), ["only"]);
}

#[tokio::test]
async fn after_a_restart_the_epoch_changes_and_recovery_is_flagged() {
    let server = start_server().await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    let before = ada.join("lobby").await;
    ada.post_acked("lobby", "lost in the restart").await;
    drop(ada);
    server.stop().await;

    let server = start_server().await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    let after = ada.join_since("lobby", &before.epoch, 1).await;
    assert_ne!(after.epoch, before.epoch);
    assert!(!after.recovered);
    assert!(after.history.is_empty());
}

async fn a_quiet_room_that_emptied_recovers_without_a_false_alarm(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    let first = ada.join("quiet").await;
    drop(ada);
    // Whether or not the server has dropped the empty room yet, nothing was
    // ever posted, so nothing can have been missed.
    let mut ada = Client::connect_as(&server, "Ada").await;
    let again = ada.join_since("quiet", &first.epoch, first.offset).await;
    assert!(again.recovered);
    assert!(again.history.is_empty());
}

async fn history_can_be_turned_off(engine: Engine) {
    let server = start_with(engine, |s| s.history_size = 0).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    assert_eq!(ada.post_acked("lobby", "ephemeral").await.offset, 1);
    let mut bob = Client::connect_as(&server, "Bob").await;
    let joined = bob.join("lobby").await;
    assert!(joined.history.is_empty());
    assert_eq!(joined.offset, 1);
}

async fn each_room_has_its_own_offsets(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    ada.join("one").await;
    ada.join("two").await;
    assert_eq!(ada.post_acked("one", "a").await.offset, 1);
    assert_eq!(ada.post_acked("one", "b").await.offset, 2);
    assert_eq!(ada.post_acked("two", "c").await.offset, 1);
}

fn offsets(history: &[protocol::ChatMessage]) -> Vec<u64> {
    history.iter().map(|m| m.offset).collect()
}

async fn earlier_messages_are_loaded_by_offset_page_by_page(engine: Engine) {
    let server = start_with(engine, |s| {
        s.history_size = 5;
        s.join_history = 2;
    })
    .await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    for i in 1..=7 {
        ada.post_acked("lobby", &format!("m{i}")).await;
    }
    // The room keeps 3 to 7; a fresh joiner is shown the latest two.
    let mut bob = Client::connect_as(&server, "Bob").await;
    let joined = bob.join("lobby").await;
    assert_eq!(offsets(&joined.history), [6, 7]);
    assert!(joined.has_earlier);

    let page = bob.history("lobby", 6, Some(2), "h1").await;
    assert_eq!(page.offsets(), [4, 5]);
    assert!(page.has_earlier, "3 is kept still");
    assert_eq!(page.epoch, joined.epoch);
    assert_eq!(page.reference.as_deref(), Some("h1"));
    assert_eq!(texts(&page.messages), ["m4", "m5"]);

    let page = bob.history("lobby", 4, Some(10), "h2").await;
    assert_eq!(page.offsets(), [3]);
    assert!(!page.has_earlier, "1 and 2 are gone");
    // Exactly as many as asked for are left: none earlier.
    let page = bob.history("lobby", 6, Some(3), "h2").await;
    assert_eq!(page.offsets(), [3, 4, 5]);
    assert!(!page.has_earlier);

    // Without a limit: up to 50, here all that is kept before 8.
    let page = bob.history("lobby", 8, None, "h3").await;
    assert_eq!(page.offsets(), [3, 4, 5, 6, 7]);
    assert!(!page.has_earlier);
    let page = bob.history("lobby", 3, None, "h4").await;
    assert!(page.messages.is_empty());
    assert!(!page.has_earlier);

    // Only members may ask.
    let mut cy = Client::connect_as(&server, "Cy").await;
    cy.send_json(json!({"type": "history", "room": "lobby", "before": 6, "ref": "x"}))
        .await;
    assert_eq!(cy.recv_error().await, "not_joined");
    bob.send_json(json!({"type": "history", "room": "lobby", "before": 6, "limit": 101}))
        .await;
    assert_eq!(bob.recv_error().await, "invalid_message");

    // Live messages go on as before, after the answers.
    let live = ada.post_acked("lobby", "m8").await;
    assert_eq!(bob.recv_chat().await, live);
}

async fn a_recovering_join_says_whether_older_messages_are_kept(engine: Engine) {
    let server = start_with(engine, |s| {
        s.history_size = 5;
        s.join_history = 2;
    })
    .await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    let epoch = ada.join("lobby").await.epoch;
    for i in 1..=7 {
        ada.post_acked("lobby", &format!("m{i}")).await;
    }
    // Recovery gets everything missed, join_history or not.
    let mut bob = Client::connect_as(&server, "Bob").await;
    let joined = bob.join_since("lobby", &epoch, 2).await;
    assert!(joined.recovered);
    assert_eq!(offsets(&joined.history), [3, 4, 5, 6, 7]);
    assert!(!joined.has_earlier, "nothing before 3 is kept");

    let mut cy = Client::connect_as(&server, "Cy").await;
    let joined = cy.join_since("lobby", &epoch, 5).await;
    assert!(joined.recovered);
    assert_eq!(offsets(&joined.history), [6, 7]);
    assert!(joined.has_earlier, "3 to 5 are kept");

    let mut dee = Client::connect_as(&server, "Dee").await;
    let joined = dee.join_since("lobby", &epoch, 7).await;
    assert!(joined.recovered && joined.history.is_empty());
    assert!(
        joined.has_earlier,
        "with nothing missed: messages up to 7 are kept"
    );
}

async fn an_empty_room_has_nothing_earlier(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    let joined = ada.join("lobby").await;
    assert!(joined.history.is_empty() && !joined.has_earlier);
    let page = ada.history("lobby", 1, None, "h").await;
    assert!(page.messages.is_empty() && !page.has_earlier);
    assert_eq!(page.epoch, joined.epoch);
}

both_engines!(
    earlier_messages_are_loaded_by_offset_page_by_page,
    a_recovering_join_says_whether_older_messages_are_kept,
    an_empty_room_has_nothing_earlier,
    a_fresh_join_gets_the_recent_history_in_order,
    history_keeps_only_the_configured_number_of_messages,
    a_reconnecting_client_gets_exactly_what_it_missed_in_order,
    a_client_that_missed_nothing_recovers_an_empty_history,
    falling_too_far_behind_is_flagged_and_gives_the_recent_history,
    a_position_ahead_of_the_room_is_not_recovered,
    a_quiet_room_that_emptied_recovers_without_a_false_alarm,
    history_can_be_turned_off,
    each_room_has_its_own_offsets,
);
