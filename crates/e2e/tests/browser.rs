//! The demo as a user sees it: two browser pages on two origins chat
//! through the ws-server.

mod common;

use common::{
    Driver, Send, Stack, TwoPages, click, send, type_into, wait_for_message, wait_until_joined,
};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_on_two_origins_chat_in_real_time() {
    let pages = TwoPages::open("e2e").await;
    let (ada, bob) = (&pages.ada, &pages.bob);

    send(ada, "hello from localhost", Send::Button).await;
    wait_for_message(bob, "Ada", "hello from localhost").await;
    wait_for_message(ada, "Ada", "hello from localhost").await;

    send(bob, "hello from 127.0.0.1", Send::Enter).await;
    wait_for_message(ada, "Bob", "hello from 127.0.0.1").await;

    // The input is cleared once a message is sent.
    let input = ada
        .find(Locator::Css("[data-testid=message-input]"))
        .await
        .unwrap();
    assert_eq!(input.prop("value").await.unwrap().as_deref(), Some(""));
    pages.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_text_is_shown_as_text_never_as_html() {
    let pages = TwoPages::open("xss").await;
    let (ada, bob) = (&pages.ada, &pages.bob);

    let payload = "<img src=x onerror=\"document.title='pwned'\"><b>bold</b>";
    send(ada, payload, Send::Enter).await;
    let shown = wait_for_message(bob, "Ada", "<b>bold</b>").await;
    assert!(shown.contains(payload), "shown as {shown:?}");
    let injected = bob
        .find_all(Locator::Css(
            "[data-testid=message-list] img, [data-testid=message-list] b",
        ))
        .await
        .unwrap();
    assert!(injected.is_empty(), "markup became elements");
    assert_ne!(bob.title().await.unwrap(), "pwned");
    pages.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_page_leads_to_the_room() {
    let stack = Stack::start().await;
    let driver = Driver::start().await;
    let page = driver.browser().await;
    page.goto(&stack.localhost("/")).await.unwrap();
    type_into(&page, "name-input", "Ada Lovelace").await;
    type_into(&page, "room-input", "start").await;
    click(&page, "join-button").await;
    wait_until_joined(&page).await;
    let url = page.current_url().await.unwrap();
    assert_eq!(url.path(), "/rooms/start");
    send(&page, "made it", Send::Enter).await;
    wait_for_message(&page, "Ada Lovelace", "made it").await;

    page.close().await.unwrap();
    stack.stop().await;
}
