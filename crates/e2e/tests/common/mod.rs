//! The end-to-end harness: both servers on ephemeral ports, and headless
//! Chromium (Debian's `chromium` and `chromium-driver`) driven over
//! WebDriver.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod a11y;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use testkit::RedisServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// How long a page may take to show what a test waits for. Pages react in
/// milliseconds; this only turns a hang into a readable failure.
pub const UI_DEADLINE: Duration = Duration::from_secs(20);

/// The secret both servers share in these tests.
pub const SECRET: &str = "e2e-secret-e2e-secret-e2e-secret-0";

/// The operator's API key in these tests.
pub const API_KEY: &str = "e2e-api-key-e2e-api-key-e2e-api-key";

/// The line to run when the browser is missing.
const INSTALL_HINT: &str = "apt-get install -y chromium chromium-driver";

/// Both Duplex servers, running in this process. The ws-server can be
/// stopped and started again on the same port, as a deployment restarts it.
pub struct Stack {
    pub app_port: u16,
    pub ws_port: u16,
    /// The ws-server's admin port (health, metrics, the dashboard's stats).
    pub ws_admin_port: u16,
    ws: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    app: actix_web::dev::ServerHandle,
}

impl Stack {
    /// Starts the ws-server and the app-server on ephemeral ports. The
    /// ws-server allows both origins the app-server can be reached by:
    /// `http://localhost:PORT` and `http://127.0.0.1:PORT`.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`Stack::start`] with the app-server's settings adjusted by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut app_server::Settings)) -> Self {
        let app_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let app_port = app_listener.local_addr().unwrap().port();
        let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws_port = ws_listener.local_addr().unwrap().port();
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws_admin_port = admin_listener.local_addr().unwrap().port();

        let mut app_settings = app_settings(app_port, &format!("ws://127.0.0.1:{ws_port}/ws"));
        app_settings.ws_admin_urls = vec![format!("http://127.0.0.1:{ws_admin_port}")];
        adjust(&mut app_settings);
        let mut stack = Self {
            app_port,
            ws_port,
            ws_admin_port,
            ws: None,
            app: {
                let server = app_server::server(app_listener, app_settings).unwrap();
                let handle = server.handle();
                tokio::spawn(server);
                handle
            },
        };
        stack.serve_ws(ws_listener, admin_listener);
        stack
    }

    fn serve_ws(&mut self, listener: tokio::net::TcpListener, admin: tokio::net::TcpListener) {
        let settings = ws_server::Settings {
            port: 0,
            allowed_origins: vec![
                format!("http://localhost:{}", self.app_port),
                format!("http://127.0.0.1:{}", self.app_port),
            ],
            secret: SECRET.to_owned(),
            // A test types faster than a person: the default budget (10 a
            // second, bursts of 20) would refuse some of a test's posts.
            max_frames_per_second: 1000,
            frame_burst: 1000,
            ..ws_server::Settings::default()
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ws_server::serve_chat_with_admin(
            listener,
            admin,
            settings,
            shutdown.clone(),
        ));
        self.ws = Some((shutdown, task));
    }

    /// Stops the ws-server and waits until every connection is closed. Its
    /// in-memory history is gone with it.
    pub async fn stop_ws(&mut self) {
        if let Some((shutdown, task)) = self.ws.take() {
            shutdown.cancel();
            task.await.unwrap();
        }
    }

    /// Starts a fresh ws-server on the port the stopped one used.
    pub async fn start_ws(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.ws_port))
            .await
            .unwrap();
        let admin = tokio::net::TcpListener::bind(("127.0.0.1", self.ws_admin_port))
            .await
            .unwrap();
        self.serve_ws(listener, admin);
    }

    /// A page URL on the `localhost` origin.
    pub fn localhost(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.app_port)
    }

    /// A page URL on the `127.0.0.1` origin.
    pub fn loopback(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.app_port)
    }

    pub async fn stop(mut self) {
        self.stop_ws().await;
        self.app.stop(true).await;
    }
}

/// The app-server's settings in these tests, on `app_port`, its pages
/// connecting to `ws_url`.
pub fn app_settings(app_port: u16, ws_url: &str) -> app_server::Settings {
    app_server::Settings {
        port: 0,
        public_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../public")),
        ws_url: ws_url.to_owned(),
        ws_service_url: ws_url.to_owned(),
        secret: SECRET.to_owned(),
        api_key: API_KEY.to_owned(),
        public_origin: format!("http://localhost:{app_port}"),
        ..app_server::Settings::default()
    }
}

/// Starts an app-server on `listener` whose pages connect to `ws_url`.
pub fn app_server_for(
    listener: std::net::TcpListener,
    ws_url: &str,
) -> actix_web::dev::ServerHandle {
    let port = listener.local_addr().unwrap().port();
    let server = app_server::server(listener, app_settings(port, ws_url)).unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// A running chromedriver, which starts one Chromium per session.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver on an ephemeral port. Fails, naming the install
    /// line, when the browser is missing: a skipped browser test would hide
    /// a broken page.
    pub async fn start() -> Self {
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let mut child = Command::new(&chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {chromedriver} ({e}); install it with: {INSTALL_HINT}")
            });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(UI_DEADLINE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').trim().parse::<u16>().unwrap();
                }
            }
            panic!("chromedriver exited before it was ready");
        })
        .await
        .expect("chromedriver starts");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, port }
    }

    /// Opens a fresh headless Chromium with its own profile.
    pub async fn browser(&self) -> Client {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1200,900"
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| {
                panic!("cannot start Chromium ({e}); install it with: {INSTALL_HINT}")
            })
    }
}

impl Drop for Driver {
    /// Ends chromedriver and every browser it started, even those a failing
    /// test never closed: they would outlive it, orphaned. (They stay in
    /// the test's process group, so Ctrl-C on the test run still reaches
    /// them.)
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            for browser in descendants(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(browser),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = self.child.start_kill();
    }
}

/// Every process descended from `pid`, read from `/proc`.
fn descendants(pid: u32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // `PID (COMMAND) STATE PPID ...`; the command may hold spaces and
        // parentheses, so fields are counted from the last `)`.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((child, ppid));
        }
    }
    let mut found = vec![i32::try_from(pid).unwrap_or(i32::MAX)];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(child, _)| *child),
        );
        next += 1;
    }
    found.split_off(1)
}

/// Two users in one room, each in their own browser, on the two origins:
/// Ada on `localhost`, Bob on `127.0.0.1`, both joined when this returns.
pub struct TwoPages {
    pub stack: Stack,
    pub ada: Client,
    pub bob: Client,
    pub driver: Driver,
}

impl TwoPages {
    pub async fn open(room: &str) -> Self {
        let stack = Stack::start().await;
        let driver = Driver::start().await;
        let ada = driver.browser().await;
        let bob = driver.browser().await;
        ada.goto(&stack.localhost(&format!("/rooms/{room}?name=Ada")))
            .await
            .unwrap();
        bob.goto(&stack.loopback(&format!("/rooms/{room}?name=Bob")))
            .await
            .unwrap();
        for page in [&ada, &bob] {
            wait_for_status(page, "connected").await;
            wait_until_joined(page).await;
        }
        Self {
            stack,
            ada,
            bob,
            driver,
        }
    }

    /// Closes both browsers and stops the servers.
    pub async fn close(self) {
        self.ada.close().await.unwrap();
        self.bob.close().await.unwrap();
        self.stack.stop().await;
    }
}

/// `GET path` from the app-server on `port` (Host: localhost), with the
/// API key as a bearer token when `api_key`: the status and the body.
pub async fn http_get(port: u16, path: &str, api_key: bool) -> (u16, String) {
    let auth = format!("Authorization: Bearer {API_KEY}");
    let headers: &[&str] = if api_key { &[&auth] } else { &[] };
    testkit::http::get(
        ([127, 0, 0, 1], port).into(),
        &format!("localhost:{port}"),
        path,
        headers,
    )
    .await
}

/// Polls `GET path` until `done` holds for its status and body (figures
/// follow events by a moment); fails with the last answer after
/// [`UI_DEADLINE`].
pub async fn http_get_until(
    port: u16,
    path: &str,
    api_key: bool,
    done: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + UI_DEADLINE;
    loop {
        let (status, body) = http_get(port, path, api_key).await;
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path} never gave what was awaited; last: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs `page` in as the operator with the API key.
pub async fn sign_in_as_operator(page: &Client, stack_origin: &str) {
    page.goto(&format!("{stack_origin}/operator"))
        .await
        .unwrap();
    type_into(page, "operator-key", API_KEY).await;
    click(page, "operator-sign-in").await;
    wait_for(page, "//*[@data-testid='announce-button']").await;
}

/// Where tests save screenshots: `target/tmp/screenshots/NAME.png`.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.png"))
}

/// Waits until an element matching `xpath` exists on the page.
pub async fn wait_for(page: &Client, xpath: &str) {
    page.wait()
        .at_most(UI_DEADLINE)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("waiting for {xpath}: {e}"));
}

/// Waits until the page's connection status reads exactly `state`.
pub async fn wait_for_status(page: &Client, state: &str) {
    wait_for(
        page,
        &format!("//*[@data-testid='connection-status'][normalize-space(.)='{state}']"),
    )
    .await;
}

/// Waits until the server has confirmed the page's membership of its room.
pub async fn wait_until_joined(page: &Client) {
    wait_for(page, "//*[@data-testid='chat'][@data-room-state='joined']").await;
}

/// Waits until the presence list shows exactly `names`, in order (the
/// screen readers' "(you)" aside).
pub async fn wait_for_members(page: &Client, names: &[&str]) {
    let mut xpath = format!(
        "//*[@data-testid='presence-list'][count(*[@data-testid='member'])={}]",
        names.len()
    );
    for (i, name) in names.iter().enumerate() {
        xpath.push_str(&format!(
            "[*[@data-testid='member'][{}][normalize-space(*[@class='name'])={}]]",
            i + 1,
            xpath_literal(name)
        ));
    }
    wait_for(page, &xpath).await;
}

/// The texts of the stored messages the page shows, in order.
pub async fn message_texts(page: &Client) -> Vec<String> {
    let mut texts = Vec::new();
    for item in page
        .find_all(Locator::Css("[data-testid=message] .text"))
        .await
        .unwrap()
    {
        texts.push(item.text().await.unwrap());
    }
    texts
}

/// Waits until the message list holds a message containing `author` and
/// `text`, and returns that element's text.
pub async fn wait_for_message(page: &Client, author: &str, text: &str) -> String {
    let xpath = format!(
        "//*[@data-testid='message-list']/*[@data-testid='message']\
         [contains(., {})][contains(., {})]",
        xpath_literal(author),
        xpath_literal(text)
    );
    wait_for(page, &xpath).await;
    page.find(Locator::XPath(&xpath))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Types `text` into the element with `data-testid` `testid`.
pub async fn type_into(page: &Client, testid: &str, text: &str) {
    page.find(Locator::Css(&format!("[data-testid={testid}]")))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Clicks the element with `data-testid` `testid`.
pub async fn click(page: &Client, testid: &str) {
    page.find(Locator::Css(&format!("[data-testid={testid}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Types `text` into the message box and sends it with `how`.
pub async fn send(page: &Client, text: &str, how: Send) {
    type_into(page, "message-input", text).await;
    match how {
        Send::Button => click(page, "send-button").await,
        Send::Enter => type_into(page, "message-input", "\u{E007}").await,
    }
}

/// How a message is sent from the page.
#[derive(Debug, Clone, Copy)]
pub enum Send {
    Button,
    Enter,
}

/// Quotes `s` for XPath 1.0, which has no escape sequences.
fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// Two ws-server instances on one Redis and an app-server that hands each
/// page the next of their URLs: two pages in a row land on two instances.
pub struct ScaledStack {
    pub app_port: u16,
    pub ws_urls: [String; 2],
    ws: Vec<(CancellationToken, tokio::task::JoinHandle<()>)>,
    app: actix_web::dev::ServerHandle,
    _redis: RedisServer,
}

impl ScaledStack {
    pub async fn start() -> Self {
        let redis = RedisServer::start().await;
        let app_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let app_port = app_listener.local_addr().unwrap().port();
        let mut ws = Vec::new();
        let mut urls = Vec::new();
        let mut admin_urls = Vec::new();
        for _ in 0..2 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            urls.push(format!(
                "ws://127.0.0.1:{}/ws",
                listener.local_addr().unwrap().port()
            ));
            let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            admin_urls.push(format!(
                "http://127.0.0.1:{}",
                admin.local_addr().unwrap().port()
            ));
            let settings = ws_server::Settings {
                port: 0,
                engine: ws_server::settings::EngineKind::Redis,
                redis_url: format!("redis://127.0.0.1:{}", redis.port),
                allowed_origins: vec![
                    format!("http://localhost:{app_port}"),
                    format!("http://127.0.0.1:{app_port}"),
                ],
                secret: SECRET.to_owned(),
                ..ws_server::Settings::default()
            };
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(ws_server::serve_chat_with_admin(
                listener,
                admin,
                settings,
                shutdown.clone(),
            ));
            ws.push((shutdown, task));
        }
        let app_settings = app_server::Settings {
            port: 0,
            public_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../public")),
            ws_url: urls[0].clone(),
            ws_urls: urls.clone(),
            ws_service_url: urls[0].clone(),
            ws_admin_urls: admin_urls,
            secret: SECRET.to_owned(),
            api_key: API_KEY.to_owned(),
            public_origin: format!("http://localhost:{app_port}"),
            ..app_server::Settings::default()
        };
        let server = app_server::server(app_listener, app_settings).unwrap();
        let app = server.handle();
        tokio::spawn(server);
        Self {
            app_port,
            ws_urls: [urls[0].clone(), urls[1].clone()],
            ws,
            app,
            _redis: redis,
        }
    }

    pub async fn stop(self) {
        for (shutdown, task) in self.ws {
            shutdown.cancel();
            task.await.unwrap();
        }
        self.app.stop(true).await;
    }
}
