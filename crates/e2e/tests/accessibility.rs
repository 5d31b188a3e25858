//! Every page passes axe-core's WCAG 2.x A/AA and best-practice rules, and
//! scrolls only up and down, in the light and the dark colour scheme, on a
//! desktop's and a phone's viewport.

// Test helpers: a failure is the test's failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::a11y::{report, set_color_scheme, set_viewport, sideways_scroll};
use common::{
    Driver, Send, Stack, click, send, sign_in_as_operator, type_into, wait_for, wait_for_message,
    wait_until_joined,
};
use fantoccini::Client;

/// The colour schemes a page is viewed in.
const SCHEMES: [&str; 2] = ["light", "dark"];

/// A desktop's viewport and a phone's (CSS pixels).
const VIEWPORTS: [(u32, u32); 2] = [(1280, 900), (390, 844)];

/// The room every check of the room page opens.
const ROOM: &str = "a11y";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_and_fits_the_viewport_in_both_schemes_and_sizes() {
    let stack = Stack::start().await;
    let driver = Driver::start().await;
    // Ada visits the pages anyone can; the operator those behind the
    // sign-in; Bob stays in the room throughout, so that it shows two
    // members and messages from both.
    let ada = driver.browser().await;
    let operator = driver.browser().await;
    let bob = driver.browser().await;

    bob.goto(&stack.loopback(&format!("/rooms/{ROOM}?name=Bob")))
        .await
        .unwrap();
    wait_until_joined(&bob).await;
    ada.goto(&stack.localhost(&format!("/rooms/{ROOM}?name=Ada")))
        .await
        .unwrap();
    wait_until_joined(&ada).await;
    send(
        &ada,
        "Hello! Is the release still on for today?",
        Send::Enter,
    )
    .await;
    wait_for_message(&bob, "Ada", "release still on").await;
    send(
        &bob,
        "Yes, at noon. The notes are in the wiki; a long line follows to see \
         how the list wraps it: https://example.com/a/rather/long/path/that/has/no/spaces/in/it",
        Send::Enter,
    )
    .await;
    wait_for_message(&ada, "Bob", "at noon").await;
    // Enough for the log to scroll at every size, so that the busy room
    // can have a reader scrolled up.
    for i in 1..=15 {
        send(&bob, &format!("Checklist item {i} is done."), Send::Enter).await;
    }
    wait_for_message(&ada, "Bob", "Checklist item 15").await;

    sign_in_as_operator(&operator, &stack.localhost("")).await;
    type_into(&operator, "announce-room", ROOM).await;
    type_into(&operator, "announce-text", "The server restarts at noon.").await;
    click(&operator, "announce-button").await;
    wait_for(&operator, "//*[@data-testid='notice']").await;
    wait_for_message(&ada, "", "The server restarts at noon.").await;

    let mut failures = Vec::new();
    for scheme in SCHEMES {
        for (width, height) in VIEWPORTS {
            for page in [&ada, &operator] {
                set_color_scheme(page, scheme).await;
                set_viewport(page, width, height).await;
            }
            let conditions = format!("{scheme}, {width}×{height}");
            for (who, path) in [
                (&ada, "/"),
                (&ada, &format!("/rooms/{ROOM}?name=Ada") as &str),
                (&ada, "/rooms/bad%20room?name=Ada"),
                (&ada, "/operator"),
                (&operator, "/announce"),
                (&operator, "/dashboard"),
            ] {
                who.goto(&stack.localhost(path)).await.unwrap();
                settle(who, path).await;
                let label = format!("{path} ({conditions})");
                failures.extend(check(who, &label).await);
            }
            // The room page busy: members open, a notice, the counter past
            // the limit, news below a reader scrolled up.
            let room = format!("/rooms/{ROOM}?name=Ada");
            ada.goto(&stack.localhost(&room)).await.unwrap();
            settle(&ada, &room).await;
            busy_room(&ada, &bob, width).await;
            failures.extend(check(&ada, &format!("the busy room ({conditions})")).await);
        }
    }

    // Not connected: the status, the stale member list and its note.
    let mut stack = stack;
    stack.stop_ws().await;
    wait_for(&ada, "//*[@data-testid='presence'][@data-stale='true']").await;
    for scheme in SCHEMES {
        set_color_scheme(&ada, scheme).await;
        failures.extend(check(&ada, &format!("the room disconnected ({scheme}, 390×844)")).await);
    }

    for page in [ada, operator, bob] {
        page.close().await.unwrap();
    }
    stack.stop().await;
    drop(driver);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Puts Ada's room page (open and joined) in its busiest state.
async fn busy_room(ada: &Client, bob: &Client, width: u32) {
    if width < 768 {
        click(ada, "members-toggle").await;
    }
    type_into(ada, "message-input", &"x".repeat(2001)).await;
    type_into(ada, "message-input", "\u{E007}").await;
    wait_for(ada, "//*[@data-testid='notice'][contains(., 'at most')]").await;
    ada.execute(
        "document.querySelector('[data-testid=message-log]').scrollTop = 0;",
        vec![],
    )
    .await
    .unwrap();
    send(bob, "Still there?", Send::Enter).await;
    wait_for(ada, "//*[@data-testid='new-messages'][not(@hidden)]").await;
}

/// Waits until the page at `path` shows what is to be checked: the room
/// joined, with both members and the messages; the dashboard live, with its
/// charts drawn.
async fn settle(page: &Client, path: &str) {
    if path.starts_with(&format!("/rooms/{ROOM}")) {
        wait_until_joined(page).await;
        wait_for(
            page,
            "//*[@data-testid='presence-list'][count(*[@data-testid='member'])=2]",
        )
        .await;
        wait_for_message(page, "", "The server restarts at noon.").await;
    } else if path == "/dashboard" {
        wait_for(
            page,
            "//*[@data-testid='dashboard-status'][@data-state='live']",
        )
        .await;
        wait_for(
            page,
            "//*[@data-testid='chart-messages']//*[contains(@class, 'u-legend')]",
        )
        .await;
    }
}

/// What axe and the sideways-scroll check find on the page, as readable
/// failures naming `label`.
async fn check(page: &Client, label: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let violations = common::a11y::axe_violations(page).await;
    failures.extend(report(label, &violations));
    let offenders = sideways_scroll(page).await;
    if !offenders.is_empty() {
        failures.push(format!(
            "{label} scrolls sideways:\n  {}",
            offenders.join("\n  ")
        ));
    }
    failures
}
