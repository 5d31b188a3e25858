//! Presence: who is in a room, with each display name counted once however
//! many connections (tabs) share it.

mod common;

use common::{Client, Engine, start};
use protocol::ServerMessage;

fn member_joined(frame: &ServerMessage) -> Option<(&str, &str)> {
    match frame {
        ServerMessage::MemberJoined { room, name } => Some((room.as_str(), name.as_str())),
        _ => None,
    }
}

fn member_left(frame: &ServerMessage) -> Option<(&str, &str)> {
    match frame {
        ServerMessage::MemberLeft { room, name } => Some((room.as_str(), name.as_str())),
        _ => None,
    }
}

async fn a_joiner_gets_the_member_list_and_the_others_get_member_joined(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect(&server).await;
    assert_eq!(ada.join("lobby", "Ada").await.members, ["Ada"]);

    let mut bob = Client::connect(&server).await;
    assert_eq!(bob.join("lobby", "Bob").await.members, ["Ada", "Bob"]);
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

    let mut tab1 = Client::connect(&server).await;
    tab1.join("lobby", "Bob").await;
    tab1.join("side", "Bob").await;
    assert_eq!(member_joined(&ada.recv().await), Some(("lobby", "Bob")));
    assert_eq!(member_joined(&observer.recv().await), Some(("side", "Bob")));

    let mut tab2 = Client::connect(&server).await;
    assert_eq!(tab2.join("lobby", "Bob").await.members, ["Ada", "Bob"]);

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

async fn renaming_shows_as_one_name_leaving_and_another_joining(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::joined(&server, "lobby", "Bob").await;
    assert!(member_joined(&ada.recv().await).is_some());
    assert_eq!(bob.join("lobby", "Robert").await.members, ["Ada", "Robert"]);
    assert_eq!(member_left(&ada.recv().await), Some(("lobby", "Bob")));
    assert_eq!(member_joined(&ada.recv().await), Some(("lobby", "Robert")));
}

async fn presence_is_per_room(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "one", "Ada").await;
    let mut bob = Client::connect(&server).await;
    assert_eq!(bob.join("two", "Bob").await.members, ["Bob"]);
    // Had Bob's arrival in room two reached room one, it would come first.
    ada.post("one", "only me here").await;
    assert!(matches!(ada.recv().await, ServerMessage::Message(_)));
}

both_engines!(
    a_joiner_gets_the_member_list_and_the_others_get_member_joined,
    a_user_in_two_tabs_counts_once_and_leaves_with_the_last_tab,
    leaving_explicitly_announces_member_left,
    renaming_shows_as_one_name_leaving_and_another_joining,
    presence_is_per_room,
);
