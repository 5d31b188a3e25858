//! Bounded room state: rooms per connection, rooms per instance.

mod common;

use common::{Client, Engine, start_with};
use serde_json::json;

async fn a_join_beyond_max_rooms_per_connection_gets_too_many_rooms(engine: Engine) {
    let server = start_with(engine, |s| s.max_rooms_per_connection = 2).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    ada.join("one").await;
    ada.join("two").await;
    ada.send_json(json!({"type": "join", "room": "three", "name": "Ada", "ref": "j3"}))
        .await;
    assert_eq!(ada.recv_error().await, "too_many_rooms");

    // Joining a room again is not one more room.
    ada.join("two").await;
    // Leaving one makes room for another.
    ada.leave("one").await;
    ada.join("three").await;
    ada.post_acked("three", "still usable").await;
}

async fn a_new_room_beyond_max_rooms_gets_server_busy_until_one_is_free(engine: Engine) {
    let server = start_with(engine, |s| s.max_rooms = 2).await;
    let mut ada = Client::joined(&server, "a", "Ada").await;
    let _bob = Client::joined(&server, "b", "Bob").await;
    let mut cy = Client::connect_as(&server, "Cy").await;
    cy.send_json(json!({"type": "join", "room": "c", "name": "Cy"}))
        .await;
    assert_eq!(cy.recv_error().await, "server_busy");
    // Rooms that exist still take members.
    cy.join("a").await;
    ada.post_acked("a", "room a works").await;

    ada.leave("a").await;
    cy.leave("a").await;
    // Room "a" is empty now: it is let go (at once in Redis, where rooms
    // live on; as the longest idle in memory) to make room for "c".
    cy.join("c").await;
}

both_engines!(
    a_join_beyond_max_rooms_per_connection_gets_too_many_rooms,
    a_new_room_beyond_max_rooms_gets_server_busy_until_one_is_free,
);
