//! Scale-out as a user sees it: two pages on two origins, connected to two
//! ws-server instances that share one Redis, chat as in one server.

mod common;

use common::{
    Driver, ScaledStack, Send, send, wait_for_members, wait_for_message, wait_for_status,
    wait_until_joined,
};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_on_two_instances_chat_as_one() {
    let stack = ScaledStack::start().await;
    let driver = Driver::start().await;
    let ada = driver.browser().await;
    let bob = driver.browser().await;
    let port = stack.app_port;
    ada.goto(&format!("http://localhost:{port}/rooms/scaled?name=Ada"))
        .await
        .unwrap();
    bob.goto(&format!("http://127.0.0.1:{port}/rooms/scaled?name=Bob"))
        .await
        .unwrap();

    // Each page was handed the next instance.
    let mut landed = Vec::new();
    for page in [&ada, &bob] {
        let body = page.find(Locator::Css("body")).await.unwrap();
        landed.push(body.attr("data-ws-url").await.unwrap().unwrap_or_default());
    }
    assert_eq!(landed, stack.ws_urls, "one page per instance");

    for page in [&ada, &bob] {
        wait_for_status(page, "connected").await;
        wait_until_joined(page).await;
        wait_for_members(page, &["Ada", "Bob"]).await;
    }
    send(&ada, "from instance one", Send::Enter).await;
    wait_for_message(&bob, "Ada", "from instance one").await;
    send(&bob, "from instance two", Send::Button).await;
    wait_for_message(&ada, "Bob", "from instance two").await;

    ada.close().await.unwrap();
    wait_for_members(&bob, &["Bob"]).await;
    bob.close().await.unwrap();
    stack.stop().await;
}
