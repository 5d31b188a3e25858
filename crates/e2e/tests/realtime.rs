//! Presence, history, recovery and announcements, as users see them in the
//! browser.

mod common;

use common::{
    Send, TwoPages, click, message_texts, send, type_into, wait_for, wait_for_members,
    wait_for_message, wait_for_status, wait_until_joined,
};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_shown_live_on_both_pages() {
    let pages = TwoPages::open("presence").await;
    wait_for_members(&pages.ada, &["Ada", "Bob"]).await;
    wait_for_members(&pages.bob, &["Ada", "Bob"]).await;

    // Bob navigates away: his only tab left the room, so he leaves the list;
    // coming back puts him in it again.
    pages.bob.goto("about:blank").await.unwrap();
    wait_for_members(&pages.ada, &["Ada"]).await;
    pages.bob.back().await.unwrap();
    wait_for_members(&pages.ada, &["Ada", "Bob"]).await;

    // Bob closes his browser: gone for good.
    let TwoPages {
        stack, ada, bob, ..
    } = pages;
    bob.close().await.unwrap();
    wait_for_members(&ada, &["Ada"]).await;
    ada.close().await.unwrap();
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reappears_after_a_reload() {
    let pages = TwoPages::open("reload").await;
    send(&pages.ada, "first", Send::Enter).await;
    send(&pages.ada, "second", Send::Enter).await;
    wait_for_message(&pages.bob, "Ada", "second").await;

    pages.bob.refresh().await.unwrap();
    wait_until_joined(&pages.bob).await;
    wait_for_message(&pages.bob, "Ada", "second").await;
    assert_eq!(message_texts(&pages.bob).await, ["first", "second"]);
    pages.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_recovers_by_itself_after_the_ws_server_restarts() {
    let mut pages = TwoPages::open("restart").await;
    send(&pages.ada, "before the restart", Send::Enter).await;
    wait_for_message(&pages.bob, "Ada", "before the restart").await;

    pages.stack.stop_ws().await;
    for page in [&pages.ada, &pages.bob] {
        wait_for_status(page, "reconnecting").await;
    }
    // Typed while disconnected: shown as pending, sent after reconnecting.
    send(&pages.ada, "typed while offline", Send::Enter).await;
    wait_for(
        &pages.ada,
        "//*[@data-testid='pending-message'][contains(., 'typed while offline')]",
    )
    .await;

    pages.stack.start_ws().await;
    for page in [&pages.ada, &pages.bob] {
        wait_for_status(page, "connected").await;
        wait_until_joined(page).await;
    }
    wait_for_message(&pages.bob, "Ada", "typed while offline").await;
    wait_for_message(&pages.ada, "Ada", "typed while offline").await;
    let still_pending = pages
        .ada
        .find_all(Locator::Css("[data-testid=pending-message]"))
        .await
        .unwrap();
    assert!(still_pending.is_empty());

    // The restarted server lost its history; the pages keep what they showed
    // and say that something may be missing.
    assert_eq!(
        message_texts(&pages.bob).await,
        ["before the restart", "typed while offline"]
    );
    wait_for(
        &pages.bob,
        "//*[@data-testid='notice'][contains(., 'may be missing')]",
    )
    .await;
    wait_for_members(&pages.ada, &["Ada", "Bob"]).await;

    send(&pages.bob, "and we carry on", Send::Enter).await;
    wait_for_message(&pages.ada, "Bob", "and we carry on").await;
    pages.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_announcement_reaches_the_room() {
    let pages = TwoPages::open("news").await;
    let admin = pages.driver.browser().await;
    admin.goto(&pages.stack.localhost("/")).await.unwrap();
    wait_for(
        &admin,
        "//*[@data-testid='room-entry'][@data-room='news'][contains(., '2 members')]",
    )
    .await;

    // Announcing is for the operator: sign in with the API key first.
    admin
        .goto(&pages.stack.localhost("/announce"))
        .await
        .unwrap();
    type_into(&admin, "operator-key", common::API_KEY).await;
    click(&admin, "operator-sign-in").await;
    type_into(&admin, "announce-room", "news").await;
    type_into(&admin, "announce-text", "cake in the kitchen").await;
    click(&admin, "announce-button").await;
    wait_for(
        &admin,
        "//*[@data-testid='notice'][contains(., 'Announced to #news')]",
    )
    .await;
    for page in [&pages.ada, &pages.bob] {
        wait_for_message(page, "Announcer", "cake in the kitchen").await;
    }
    admin.close().await.unwrap();
    pages.close().await;
}
