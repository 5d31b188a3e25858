//! Presence: who is in a room, with each display name counted once however
//! many connections (tabs) share it.

mod common;

use common::{Client, Engine, start};
use protocol::ServerMessage;

fn member_joined(frame: &ServerMessage) -> Option<(&str, &str)> {
    match frame {
        ServerMessage::MemberJoined { room, name, .. } => Some((room.as_str(), name.as_str())),
        _ => None,
    }
}

fn member_left(frame: &ServerMessage) -> Option<(&str, &str)> {
    match frame {
        ServerMessage::MemberLeft { room, name, .. } => Some((room.as_str(), name.as_str())),
        _ => None,
    }
}

async fn a_joiner_gets_the_member_list_and_the_others_get_member_joined(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    assert_eq!(ada.join("lobby").await.members, ["Ada"]);

    let mut bob = Client::connect_as(&server, "Bob").await;
    assert_eq!(bob.join("lobby").await.members, ["Ada", "Bob"]);
    assert_eq!(member_joined(&ada.recv().await), Some(("lobby", "Bob")));
}

async fn a_user_in_two_tabs_counts_once_and_leaves_with_the_last_tab(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    // An observer sharing a second room with the first tab: the server
    // leaves a closed connection's rooms one by one, in name order ("lobby"
    // before "side"), so the observer's member_left tells the test when the
    // first tab is gone from both.
    let mut observer = Client::joined(&server, "side", "Observer").await;

    let mut tab1 = Client::connect_as(&server, "Bob").await;
    tab1.join("lobby").await;
    tab1.join("side").await;
    assert_eq!(member_joined(&ada.recv().await), Some(("lobby", "Bob")));
    assert_eq!(member_joined(&observer.recv().await), Some(("side", "Bob")));

    let mut tab2 = Client::connect_as(&server, "Bob").await;
    assert_eq!(tab2.join("lobby").await.members, ["Ada", "Bob"]);

    drop(tab1);
    assert_eq!(member_left(&observer.recv().await), Some(("side", "Bob")));
    // Bob is still in the lobby through the second tab: Ada's next frame is
    // her own message, not a member_left.
    ada.post("lobby", "still here, Bob?").await;
    assert!(matches!(ada.recv().await, ServerMessage::Message(_)));

    drop(tab2);
    assert_eq!(member_left(&ada.recv().await), Some(("lobby", "Bob")));
}

async fn leaving_explicitly_announces_member_left(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::joined(&server, "lobby", "Bob").await;
    assert!(member_joined(&ada.recv().await).is_some());
    bob.send_json(serde_json::json!({"type": "leave", "room": "lobby"}))
        .await;
    assert!(matches!(bob.recv().await, ServerMessage::Left { .. }));
    assert_eq!(member_left(&ada.recv().await), Some(("lobby", "Bob")));
}

async fn another_user_cannot_take_a_name_present_in_the_room(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    // The same name, and names that look the same, from other users.
    for name in ["Ada", "ada", "ADA", "\u{0410}da", "\u{FF21}da"] {
        let mut impostor = Client::connect_user(&server, "impostor", name).await;
        impostor
            .send_json(serde_json::json!({"type": "join", "room": "lobby", "ref": "j"}))
            .await;
        assert_eq!(impostor.recv_error().await, "name_taken", "{name:?}");
    }
    // Nobody in the room heard of them.
    ada.post("lobby", "still just me").await;
    assert!(matches!(ada.recv().await, ServerMessage::Message(_)));
    // The name is free again once its holder leaves.
    ada.leave("lobby").await;
    let mut other = Client::connect_user(&server, "other-user", "ada").await;
    assert_eq!(other.join("lobby").await.members, ["ada"]);
}

async fn a_user_is_in_a_room_under_one_name(engine: Engine) {
    let server = start(engine).await;
    let _tab1 = Client::connect_user(&server, "u-ada", "Ada")
        .await
        .joined_to("lobby")
        .await;
    let mut tab2 = Client::connect_user(&server, "u-ada", "Ada Lovelace").await;
    tab2.send_json(serde_json::json!({"type": "join", "room": "lobby"}))
        .await;
    assert_eq!(tab2.recv_error().await, "name_taken");
    // Elsewhere the other name is fine.
    assert_eq!(tab2.join("side").await.members, ["Ada Lovelace"]);
}

async fn presence_carries_user_ids(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect_user(&server, "u-ada", "Ada").await;
    ada.join("lobby").await;
    let _bob = Client::connect_user(&server, "u-bob", "Bob")
        .await
        .joined_to("lobby")
        .await;
    match ada.recv().await {
        ServerMessage::MemberJoined { user, name, .. } => {
            assert_eq!((user.as_str(), name.as_str()), ("u-bob", "Bob"));
        }
        other => panic!("expected member_joined, got {other:?}"),
    }
}

async fn presence_is_per_room(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "one", "Ada").await;
    let mut bob = Client::connect_as(&server, "Bob").await;
    assert_eq!(bob.join("two").await.members, ["Bob"]);
    // Had Bob's arrival in room two reached room one, it would come first.
    ada.post("one", "only me here").await;
    assert!(matches!(ada.recv().await, ServerMessage::Message(_)));
}

both_engines!(
    a_joiner_gets_the_member_list_and_the_others_get_member_joined,
    a_user_in_two_tabs_counts_once_and_leaves_with_the_last_tab,
    leaving_explicitly_announces_member_left,
    another_user_cannot_take_a_name_present_in_the_room,
    a_user_is_in_a_room_under_one_name,
    presence_carries_user_ids,
    presence_is_per_room,
);
