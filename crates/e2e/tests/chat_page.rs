//! The chat page as readers with different needs meet it: scrolled up to
//! read, on a narrow phone, with a screen reader, with a server that
//! freezes. Screenshots at phone and desktop widths are saved for the
//! README.

// Test helpers: a failure is the test's failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::a11y::{set_color_scheme, set_viewport, sideways_scroll};
use common::{
    Driver, SECRET, Send, Stack, TwoPages, UI_DEADLINE, click, message_texts, screenshot_path,
    send, type_into, wait_for, wait_for_members, wait_for_message, wait_for_status,
    wait_until_joined,
};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Shift+Enter in WebDriver keys: Shift is held until pressed again.
const SHIFT_ENTER: &str = "\u{E008}\u{E007}\u{E008}";

/// Runs `script` (a function body) in `page` and returns its value.
async fn eval(page: &Client, script: &str) -> Value {
    page.execute(script, vec![]).await.unwrap()
}

/// The message log's scroll position.
async fn log_scroll_top(page: &Client) -> f64 {
    eval(
        page,
        "return document.querySelector('[data-testid=message-log]').scrollTop;",
    )
    .await
    .as_f64()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_scrolled_up_is_not_moved_by_a_new_message_and_is_offered_it() {
    let pages = TwoPages::open("reading").await;
    let (ada, bob) = (&pages.ada, &pages.bob);
    set_viewport(bob, 800, 500).await;
    // Shift+Enter starts a new line; Enter sends.
    for i in 0..30 {
        send(
            ada,
            &format!("line {i}{SHIFT_ENTER}and its second line"),
            Send::Enter,
        )
        .await;
    }
    wait_for_message(bob, "Ada", "line 29").await;
    assert_eq!(
        message_texts(bob).await.last().map(String::as_str),
        Some("line 29\nand its second line")
    );
    // One day, one divider; each time gives the full date on hover.
    let dividers = bob
        .find_all(Locator::Css("[data-testid=day-divider]"))
        .await
        .unwrap();
    assert_eq!(dividers.len(), 1);
    let title = bob
        .find(Locator::Css("[data-testid=message] time"))
        .await
        .unwrap()
        .attr("title")
        .await
        .unwrap()
        .unwrap_or_default();
    let year = eval(bob, "return String(new Date().getFullYear());").await;
    assert!(
        title.contains(year.as_str().unwrap()),
        "no full timestamp: {title:?}"
    );
    // At the bottom, a new message is followed.
    let bottom = log_scroll_top(bob).await;
    assert!(
        bottom > 0.0,
        "the log does not scroll: the test shows nothing"
    );

    // Bob scrolls up to read; Ada writes on.
    eval(
        bob,
        "document.querySelector('[data-testid=message-log]').scrollTop = 100;",
    )
    .await;
    send(ada, "while you were reading", Send::Enter).await;
    wait_for_message(bob, "Ada", "while you were reading").await;
    wait_for(
        bob,
        "//*[@data-testid='new-messages'][not(@hidden)][normalize-space(.)='1 new message ↓']",
    )
    .await;
    assert_eq!(log_scroll_top(bob).await, 100.0, "the reader was moved");

    // The button takes the reader down, and goes.
    click(bob, "new-messages").await;
    wait_for(bob, "//*[@data-testid='new-messages'][@hidden]").await;
    let at = log_scroll_top(bob).await;
    assert!(
        at > bottom,
        "not taken to the newest message: {at} <= {bottom}"
    );

    // A hidden tab counts what arrives in its title, and forgets it when
    // seen again. (Headless Chromium keeps every tab visible, so the page
    // is told it is hidden the way a browser tells it.)
    let set_hidden = |hidden: bool| {
        format!(
            "Object.defineProperty(document, 'hidden', {{configurable: true, get: () => {hidden}}});
             document.dispatchEvent(new Event('visibilitychange'));"
        )
    };
    eval(bob, &set_hidden(true)).await;
    send(ada, "one", Send::Enter).await;
    send(ada, "two", Send::Enter).await;
    wait_for_message(bob, "Ada", "two").await;
    assert_eq!(bob.title().await.unwrap(), "(2) #reading · Duplex");
    eval(bob, &set_hidden(false)).await;
    assert_eq!(bob.title().await.unwrap(), "#reading · Duplex");
    pages.close().await;
}

/// Whether the element with `testid` is wholly inside the viewport and not
/// cut by any ancestor that clips its overflow; otherwise what cuts it.
async fn fully_visible(page: &Client, testid: &str) -> Result<(), String> {
    let script = r"
        const el = document.querySelector(`[data-testid=${arguments[0]}]`);
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return 'not shown';
        if (r.left < 0 || r.top < 0 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5)
          return `outside the viewport: ${JSON.stringify(r)} in ${innerWidth}x${innerHeight}`;
        for (let a = el.parentElement; a; a = a.parentElement) {
          const s = getComputedStyle(a);
          if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
          const b = a.getBoundingClientRect();
          if (r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5)
            return `cut by ${a.tagName}.${a.className}`;
        }
        if (el.scrollWidth > el.clientWidth + 1) return `its own text is cut: ${el.scrollWidth} > ${el.clientWidth}`;
        return null;";
    match page.execute(script, vec![json!(testid)]).await.unwrap() {
        Value::Null => Ok(()),
        why => Err(format!("{testid}: {why}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_320_px_and_200_percent_the_send_button_and_the_status_are_whole_with_the_longest_name_and_room()
 {
    let stack = Stack::start().await;
    let driver = Driver::start().await;
    let page = driver.browser().await;
    set_viewport(&page, 320, 640).await;
    let name = "W".repeat(32);
    let room = "w".repeat(64);
    page.goto(&stack.localhost(&format!("/rooms/{room}?name={name}")))
        .await
        .unwrap();
    wait_until_joined(&page).await;
    let word = "M".repeat(2000);
    send(&page, &word, Send::Button).await;
    wait_for_message(&page, &name, &word[..100]).await;

    for testid in [
        "send-button",
        "connection-status",
        "members-toggle",
        "leave-button",
    ] {
        fully_visible(&page, testid).await.unwrap();
    }
    let sideways = sideways_scroll(&page).await;
    assert!(sideways.is_empty(), "scrolls sideways: {sideways:?}");

    // The members are behind the disclosure, counted on it.
    wait_for(
        &page,
        "//*[@data-testid='members-toggle'][@aria-expanded='false'][normalize-space(.)='Members 1']",
    )
    .await;
    let list = page
        .find(Locator::Css("[data-testid=presence-list]"))
        .await
        .unwrap();
    assert!(!list.is_displayed().await.unwrap());
    click(&page, "members-toggle").await;
    assert!(list.is_displayed().await.unwrap());
    fully_visible(&page, "presence").await.unwrap();
    let png = page.screenshot().await.unwrap();
    std::fs::write(screenshot_path("chat-320-longest"), png).unwrap();

    // 200 % zoom of a 1280x900 window is a 640x450 viewport.
    set_viewport(&page, 640, 450).await;
    for testid in ["send-button", "connection-status", "message-input"] {
        fully_visible(&page, testid).await.unwrap();
    }
    let sideways = sideways_scroll(&page).await;
    assert!(
        sideways.is_empty(),
        "scrolls sideways at 200 %: {sideways:?}"
    );
    let png = page.screenshot().await.unwrap();
    std::fs::write(screenshot_path("chat-200-percent-longest"), png).unwrap();
    set_viewport(&page, 320, 640).await;

    // Near the limit a counter shows; past it nothing is sent and nothing
    // is cut: the reader is told instead.
    type_into(&page, "message-input", &"x".repeat(1990)).await;
    wait_for(
        &page,
        "//*[@data-testid='char-counter'][not(@hidden)][normalize-space(.)='1990 / 2000']",
    )
    .await;
    type_into(&page, "message-input", &"x".repeat(11)).await;
    wait_for(
        &page,
        "//*[@data-testid='char-counter'][normalize-space(.)='1 character too many']",
    )
    .await;
    type_into(&page, "message-input", "\u{E007}").await;
    wait_for(
        &page,
        "//*[@data-testid='notice'][contains(., 'at most 2000 characters')]",
    )
    .await;
    let kept = eval(
        &page,
        "return document.querySelector('[data-testid=message-input]').value.length;",
    )
    .await;
    assert_eq!(kept, json!(2001));
    assert_eq!(message_texts(&page).await.len(), 1, "sent anyway");
    let sideways = sideways_scroll(&page).await;
    assert!(sideways.is_empty(), "scrolls sideways: {sideways:?}");

    page.close().await.unwrap();
    stack.stop().await;
}

/// The authors of the stored messages the page shows, each with what a
/// screen reader is told (visually hidden text included).
async fn authors_as_read(page: &Client) -> Vec<String> {
    let authors = eval(
        page,
        "return [...document.querySelectorAll('[data-testid=message] .author')]
           .map((a) => a.textContent.replace(/\\s+/g, ' ').trim());",
    )
    .await;
    serde_json::from_value(authors).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn you_marks_only_the_posters_own_messages_when_two_users_share_a_name() {
    let stack = Stack::start().await;
    let driver = Driver::start().await;
    // Two browsers: two users (each its own cookie), one display name.
    let first = driver.browser().await;
    let second = driver.browser().await;
    let room_url = stack.localhost("/rooms/twins?name=Sam");

    first.goto(&room_url).await.unwrap();
    wait_until_joined(&first).await;
    send(&first, "from the first Sam", Send::Enter).await;
    wait_for_message(&first, "Sam", "from the first Sam").await;
    first.goto("about:blank").await.unwrap(); // frees the name

    second.goto(&room_url).await.unwrap();
    wait_until_joined(&second).await;
    send(&second, "from the second Sam", Send::Enter).await;
    wait_for_message(&second, "Sam", "from the second Sam").await;
    assert_eq!(authors_as_read(&second).await, ["Sam", "Sam (you)"]);
    second.goto("about:blank").await.unwrap();

    first.goto(&room_url).await.unwrap();
    wait_until_joined(&first).await;
    wait_for_message(&first, "Sam", "from the second Sam").await;
    assert_eq!(authors_as_read(&first).await, ["Sam (you)", "Sam"]);

    first.close().await.unwrap();
    second.close().await.unwrap();
    stack.stop().await;
}

/// The ws-server's heartbeat interval in the freezing test.
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// A ws-server in a process of its own (see `src/bin/e2e-ws-server.rs`),
/// so that it can be frozen while the test goes on.
struct WsProcess {
    child: tokio::process::Child,
    port: u16,
}

impl WsProcess {
    async fn start(app_port: u16) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-ws-server"))
            .env("DUPLEX_WS_SECRET", SECRET)
            .env(
                "DUPLEX_WS_ALLOWED_ORIGINS",
                format!("http://localhost:{app_port},http://127.0.0.1:{app_port}"),
            )
            .env(
                "DUPLEX_WS_HEARTBEAT_INTERVAL",
                format!("{}s", PING_INTERVAL.as_secs()),
            )
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(UI_DEADLINE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = line.strip_prefix("listening on ") {
                    return port.parse().ok();
                }
            }
            None
        })
        .await
        .unwrap()
        .expect("the ws-server says where it listens");
        Self { child, port }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = i32::try_from(self.child.id().unwrap()).unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_only_reads_notices_a_frozen_ws_server_and_marks_its_members_stale() {
    use nix::sys::signal::Signal;

    let app_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app_port = app_listener.local_addr().unwrap().port();
    let mut ws = WsProcess::start(app_port).await;
    let app = common::app_server_for(app_listener, &format!("ws://127.0.0.1:{}/ws", ws.port));
    let driver = Driver::start().await;
    let reader = driver.browser().await;
    let writer = driver.browser().await;
    reader
        .goto(&format!(
            "http://localhost:{app_port}/rooms/frozen?name=Reader"
        ))
        .await
        .unwrap();
    writer
        .goto(&format!(
            "http://127.0.0.1:{app_port}/rooms/frozen?name=Writer"
        ))
        .await
        .unwrap();
    for page in [&reader, &writer] {
        wait_until_joined(page).await;
        wait_for_members(page, &["Reader", "Writer"]).await;
    }
    wait_for(&reader, "//*[@data-testid='presence'][@data-stale='false']").await;

    // The reader's page notes, by its own clock, when it gives up.
    eval(
        &reader,
        "const status = document.querySelector('[data-testid=connection-status]');
         new MutationObserver(() => {
           if (status.dataset.state === 'reconnecting' && !window.gaveUpAt) window.gaveUpAt = Date.now();
         }).observe(status, {attributes: true});",
    )
    .await;
    // Read just before the signal: the measured time can only come out
    // longer than the true one, by that round trip.
    let frozen_at = eval(&reader, "return Date.now();").await.as_f64().unwrap();
    ws.signal(Signal::SIGSTOP);
    let waited = Instant::now();
    wait_for_status(&reader, "reconnecting").await;
    let gave_up_at = eval(&reader, "return window.gaveUpAt;")
        .await
        .as_f64()
        .unwrap();
    let bound = 2.0 * PING_INTERVAL.as_secs_f64() * 1000.0 + 1000.0;
    let took = gave_up_at - frozen_at;
    eprintln!("the page gave the frozen server up after {took} ms (bound {bound} ms)");
    assert!(
        took <= bound,
        "noticed after {took} ms, beyond the documented {bound} ms (waited {:?})",
        waited.elapsed()
    );
    // Who is there is no longer known: the list says so.
    wait_for(&reader, "//*[@data-testid='presence'][@data-stale='true']").await;
    wait_for(
        &reader,
        "//*[@data-testid='presence-stale'][not(@hidden)][contains(., 'out of date')]",
    )
    .await;
    wait_for_members(&reader, &["Reader", "Writer"]).await;

    // The server wakes: both pages reconnect and the conversation goes on.
    ws.signal(Signal::SIGCONT);
    for page in [&reader, &writer] {
        wait_for_status(page, "connected").await;
        wait_until_joined(page).await;
    }
    wait_for(&reader, "//*[@data-testid='presence'][@data-stale='false']").await;
    send(&writer, "back again", Send::Enter).await;
    wait_for_message(&reader, "Writer", "back again").await;

    reader.close().await.unwrap();
    writer.close().await.unwrap();
    app.stop(true).await;
    ws.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_at_phone_and_desktop_widths() {
    let pages = TwoPages::open("design-review").await;
    let (ada, bob) = (&pages.ada, &pages.bob);
    send(ada, "Morning! The deploy went out at 9:40.", Send::Enter).await;
    send(
        bob,
        &format!("Thanks. Dashboards look calm:{SHIFT_ENTER}connections flat, no slow consumers."),
        Send::Enter,
    )
    .await;
    send(ada, "Lunch at 12:30?", Send::Enter).await;
    wait_for_message(bob, "Ada", "Lunch at 12:30?").await;
    for (name, scheme, width, height) in [
        ("chat-phone", "light", 390, 844),
        ("chat-desktop", "light", 1280, 800),
        ("chat-phone-dark", "dark", 390, 844),
    ] {
        set_color_scheme(bob, scheme).await;
        set_viewport(bob, width, height).await;
        let png = bob.screenshot().await.unwrap();
        std::fs::write(screenshot_path(name), png).unwrap();
    }
    pages.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_goes_back_to_the_start_page_with_the_name_and_the_others_see_it() {
    let pages = TwoPages::open("leaving").await;
    let (ada, bob) = (&pages.ada, &pages.bob);
    wait_for_members(bob, &["Ada", "Bob"]).await;
    click(ada, "leave-button").await;
    wait_for(
        bob,
        "//*[@data-testid='presence-event'][normalize-space(.)='Ada left']",
    )
    .await;
    wait_for_members(bob, &["Bob"]).await;

    // The start page has the name and the room filled in.
    wait_for(ada, "//*[@data-testid='join-form']").await;
    let value = |testid: &'static str| async move {
        ada.find(Locator::Css(&format!("[data-testid={testid}]")))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    };
    assert_eq!(value("name-input").await, "Ada");
    assert_eq!(value("room-input").await, "leaving");

    // A room picked from the list keeps the name typed since.
    let name = ada
        .find(Locator::Css("[data-testid=name-input]"))
        .await
        .unwrap();
    name.clear().await.unwrap();
    name.send_keys("Ada L").await.unwrap();
    ada.find(Locator::Css("[data-testid=room-link][data-room=leaving]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(ada, "//*[@data-testid='name-input'][@value='Ada L']").await;
    click(ada, "join-button").await;
    wait_until_joined(ada).await;
    wait_for(
        bob,
        "//*[@data-testid='presence-event'][normalize-space(.)='Ada L joined']",
    )
    .await;
    pages.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earlier_messages_load_above_without_moving_the_reader() {
    let pages = TwoPages::open("earlier").await;
    let (ada, bob) = (&pages.ada, &pages.bob);
    // One more than a join sends (join_history, 50 by default) and two.
    for i in 1..=52 {
        send(ada, &format!("m{i}"), Send::Enter).await;
    }
    wait_for_message(bob, "Ada", "m52").await;
    bob.refresh().await.unwrap();
    wait_until_joined(bob).await;
    wait_for_message(bob, "Ada", "m52").await;
    let texts = message_texts(bob).await;
    assert_eq!(texts.first().map(String::as_str), Some("m3"));
    assert_eq!(texts.len(), 50);

    let top_of_m3 = "return [...document.querySelectorAll('[data-testid=message]')]
        .find((m) => m.querySelector('.text').textContent === 'm3').getBoundingClientRect().top;";
    eval(
        bob,
        "document.querySelector('[data-testid=message-log]').scrollTop = 0;",
    )
    .await;
    let before = eval(bob, top_of_m3).await.as_f64().unwrap();
    click(bob, "load-earlier").await;
    wait_for_message(bob, "Ada", "m1").await;
    let after = eval(bob, top_of_m3).await.as_f64().unwrap();
    assert!(
        (after - before).abs() <= 1.0,
        "the reader moved: {before} -> {after}"
    );
    let texts = message_texts(bob).await;
    assert_eq!(texts.len(), 52);
    assert_eq!(&texts[..3], ["m1", "m2", "m3"]);
    // Nothing older: the button goes and the log says so. One divider.
    wait_for(bob, "//*[@data-testid='load-earlier'][@hidden]").await;
    wait_for(bob, "//*[@data-testid='history-start'][not(@hidden)]").await;
    let dividers = bob
        .find_all(Locator::Css("[data-testid=day-divider]"))
        .await
        .unwrap();
    assert_eq!(dividers.len(), 1);
    pages.close().await;
}
