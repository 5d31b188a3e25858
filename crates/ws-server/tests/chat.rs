//! The chat as clients see it: rooms, delivery, acknowledgement, isolation.

mod common;

use common::{Client, Engine, start};

async fn every_member_receives_a_post_and_the_sender_gets_it_as_ack(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::joined(&server, "lobby", "Bob").await;
    let mut cy = Client::joined(&server, "lobby", "Cy").await;

    let ack = ada.post_acked("lobby", "hello all").await;
    assert_eq!(ack.name.as_str(), "Ada");
    assert!(ack.ts > 0);
    for other in [&mut bob, &mut cy] {
        let got = other.recv_chat().await;
        assert_eq!(got, ack, "everyone gets the same id, text and time");
    }
}

async fn rooms_are_isolated(engine: Engine) {
    let server = start(engine).await;
    let mut a1 = Client::joined(&server, "one", "A1").await;
    let mut a2 = Client::joined(&server, "one", "A2").await;
    let mut b1 = Client::joined(&server, "two", "B1").await;
    let mut b2 = Client::joined(&server, "two", "B2").await;

    a1.post_acked("one", "for room one").await;
    assert_eq!(a2.recv_chat().await.text.as_str(), "for room one");
    // Had room one's message reached room two, it would have been queued
    // before this one: each room's frames are queued in order.
    b1.post_acked("two", "for room two").await;
    assert_eq!(b2.recv_chat().await.text.as_str(), "for room two");
    a2.post_acked("one", "still one").await;
    assert_eq!(a1.recv_chat().await.text.as_str(), "still one");
}

async fn a_client_can_be_in_several_rooms(engine: Engine) {
    let server = start(engine).await;
    let mut both = Client::joined(&server, "one", "Both").await;
    both.join("two").await;
    let mut one = Client::joined(&server, "one", "One").await;
    let mut two = Client::joined(&server, "two", "Two").await;

    one.post_acked("one", "in one").await;
    two.post_acked("two", "in two").await;
    let first = both.recv_chat().await;
    let second = both.recv_chat().await;
    assert_eq!((first.room.as_str(), second.room.as_str()), ("one", "two"));
}

async fn messages_arrive_in_the_order_they_were_posted(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::joined(&server, "lobby", "Bob").await;
    for i in 0..50 {
        ada.post("lobby", &format!("m{i}")).await;
    }
    for i in 0..50 {
        assert_eq!(ada.recv_chat().await.text.as_str(), format!("m{i}"));
        assert_eq!(bob.recv_chat().await.text.as_str(), format!("m{i}"));
    }
}

async fn after_leaving_a_client_gets_nothing_more_from_the_room(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::joined(&server, "lobby", "Bob").await;
    bob.join("side").await;

    bob.send_json(serde_json::json!({"type": "leave", "room": "lobby"}))
        .await;
    assert!(matches!(
        bob.recv().await,
        protocol::ServerMessage::Left { room, .. } if room.as_str() == "lobby"
    ));
    ada.post_acked("lobby", "bob is gone").await;
    bob.post_acked("side", "next frame is mine").await;

    bob.post("lobby", "sneaking in").await;
    assert_eq!(bob.recv_error().await, "not_joined");
}

async fn rejoining_sends_a_fresh_joined_and_stays_one_member(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    ada.post_acked("lobby", "first").await;
    let again = ada.join("lobby").await;
    assert_eq!(again.members, ["Ada"]);
    assert_eq!(again.history.len(), 1);
    let mine = ada.post_acked("lobby", "hi").await;
    assert_eq!(
        (mine.name.as_str(), mine.user.as_str()),
        ("Ada", ada.user.as_str())
    );
}

async fn a_disconnected_member_does_not_disturb_the_room(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::joined(&server, "lobby", "Bob").await;
    let gone = Client::joined(&server, "lobby", "Gone").await;
    drop(gone);
    ada.post_acked("lobby", "anyone?").await;
    assert_eq!(bob.recv_chat().await.text.as_str(), "anyone?");
}

async fn message_ids_are_unique(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut ids = std::collections::HashSet::new();
    for i in 0..20 {
        ids.insert(ada.post_acked("lobby", &format!("n{i}")).await.id);
    }
    assert_eq!(ids.len(), 20);
}

both_engines!(
    every_member_receives_a_post_and_the_sender_gets_it_as_ack,
    rooms_are_isolated,
    a_client_can_be_in_several_rooms,
    messages_arrive_in_the_order_they_were_posted,
    after_leaving_a_client_gets_nothing_more_from_the_room,
    rejoining_sends_a_fresh_joined_and_stays_one_member,
    a_disconnected_member_does_not_disturb_the_room,
    message_ids_are_unique,
);
