//! Connection tokens in a real browser: the page connects with the token
//! the app-server minted for it, and fetches a fresh one before it
//! reconnects once that token is about to expire.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Driver, Stack, wait_for_status, wait_until_joined};

/// The `/token` requests the page has made, from the browser's own record.
async fn token_fetches(page: &fantoccini::Client) -> usize {
    let count = page
        .execute(
            "return performance.getEntriesByType('resource')\
             .filter(e => new URL(e.name).pathname === '/token').length;",
            vec![],
        )
        .await
        .unwrap();
    usize::try_from(count.as_u64().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_refreshes_a_token_about_to_expire_before_it_reconnects() {
    // Tokens shorter than the client's 30 s margin are always about to
    // expire: every reconnect asks for a fresh one.
    let mut stack = Stack::start_with(|app| app.token_ttl = Duration::from_secs(10)).await;
    let driver = Driver::start().await;
    let page = driver.browser().await;
    page.goto(&stack.localhost("/rooms/tokens?name=Ada"))
        .await
        .unwrap();
    wait_for_status(&page, "connected").await;
    wait_until_joined(&page).await;
    let before = token_fetches(&page).await;

    stack.stop_ws().await;
    wait_for_status(&page, "reconnecting").await;
    stack.start_ws().await;
    wait_for_status(&page, "connected").await;
    wait_until_joined(&page).await;
    assert!(
        token_fetches(&page).await > before,
        "a fresh token was fetched for the reconnect"
    );

    page.close().await.unwrap();
    stack.stop().await;
}
