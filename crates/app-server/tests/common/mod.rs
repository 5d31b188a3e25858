//! Test harness: the app-server's routes as an actix test service, a real
//! ws-server on an ephemeral port, and browser-like WebSocket members.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, test};
use app_server::{Publisher, Settings, Site};
use futures_util::{SinkExt, StreamExt};
use protocol::token::{Claims, Role, sign};
use protocol::{DisplayName, Secret, ServerMessage, UserId};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::sync::CancellationToken;

/// The token secret shared by the test app-server and ws-server.
pub const SECRET: &str = "app-test-secret-app-test-secret-0123";
/// The test app-server's API key.
pub const API_KEY: &str = "app-test-api-key-app-test-api-key-4567";
/// The host every test request names: the default public origin's.
pub const HOST: &str = "localhost:5001";
/// How long a test waits for something it expects; only turns a hang into
/// a readable failure.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

/// Settings for the app as the tests run it: the workspace's `public/`, a
/// ws URL nothing listens on, the test secret and API key.
pub fn settings() -> Settings {
    Settings {
        port: 0,
        public_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../public")),
        ws_url: "ws://127.0.0.1:5999/ws".into(),
        secret: SECRET.into(),
        api_key: API_KEY.into(),
        ..Settings::default()
    }
}

/// A publisher for a ws-server that is down: nothing listens on the
/// discard port.
pub fn publisher_down() -> Publisher {
    Publisher::start("ws://127.0.0.1:9/ws".into(), secret())
}

pub trait TestApp:
    Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}
impl<S> TestApp for S where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

/// The app as configured by `settings`, with `publisher`.
pub async fn app_with(settings: &Settings, publisher: &Publisher) -> impl TestApp + use<> {
    let fleet = app_server::fleet::Fleet::start(settings.ws_admin_urls.clone());
    app_with_fleet(settings, publisher, &fleet).await
}

/// [`app_with`], the dashboard fed by `fleet`.
pub async fn app_with_fleet(
    settings: &Settings,
    publisher: &Publisher,
    fleet: &app_server::fleet::Fleet,
) -> impl TestApp + use<> {
    let site = Site::new(settings).unwrap();
    let ws_urls = app_server::WsUrls::new(settings).unwrap();
    let publisher = publisher.clone();
    let fleet = fleet.clone();
    let metrics =
        actix_web::web::Data::new(app_server::metrics::AppMetrics::new(publisher.clone()));
    test::init_service(App::new().configure(move |cfg| {
        app_server::routes::configure(cfg, &site, &publisher, &ws_urls, &fleet, &metrics);
    }))
    .await
}

/// A GET request for `uri` from a browser on the public origin.
pub fn get_request(uri: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(uri)
        .insert_header((header::HOST, HOST))
}

/// A POST request for `uri` to the public origin.
pub fn post_request(uri: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header((header::HOST, HOST))
}

pub async fn call(app: &impl TestApp, request: test::TestRequest) -> ServiceResponse {
    app.call(request.to_request()).await.unwrap()
}

pub async fn get_from(app: &impl TestApp, uri: &str) -> ServiceResponse {
    call(app, get_request(uri)).await
}

pub async fn body(response: ServiceResponse) -> String {
    String::from_utf8(test::read_body(response).await.to_vec()).unwrap()
}

pub async fn json_body(response: ServiceResponse) -> Value {
    serde_json::from_slice(&test::read_body(response).await).unwrap()
}

pub fn header_of(response: &ServiceResponse, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The `Set-Cookie` values of a response.
pub fn set_cookies(response: &ServiceResponse) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// The `name=value` part of the cookie `name` a response sets.
pub fn cookie_pair(response: &ServiceResponse, name: &str) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next().map(str::to_owned))
}

/// The value of the `data-NAME` attribute in `html`.
pub fn data_attribute(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!(" data-{name}=\""))? + name.len() + 8;
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&#38;", "&"))
}

/// A ws-server on an ephemeral port with the test secret, stopped when
/// dropped.
pub struct WsServer {
    pub url: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl WsServer {
    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = tokio::time::timeout(DEADLINE, task).await;
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn ws_server() -> WsServer {
    ws_server_with(|_| {}).await
}

pub async fn ws_server_with(adjust: impl FnOnce(&mut ws_server::Settings)) -> WsServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let mut settings = ws_server::Settings {
        port: 0,
        secret: SECRET.to_owned(),
        ..ws_server::Settings::default()
    };
    adjust(&mut settings);
    let task = tokio::spawn(ws_server::serve_chat(listener, settings, shutdown.clone()));
    WsServer {
        url,
        shutdown,
        task,
    }
}

/// A publisher connected to `ws`.
pub async fn publisher_for(ws: &WsServer) -> Publisher {
    let publisher = Publisher::start(ws.url.clone(), secret());
    tokio::time::timeout(DEADLINE, publisher.wait_until_connected())
        .await
        .unwrap();
    publisher
}

pub type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A member token for `user` shown as `name`, valid for an hour.
pub fn member_token(user: &str, name: &str) -> String {
    let claims = Claims::new(
        UserId::new(user).unwrap(),
        DisplayName::new(name).unwrap(),
        Role::Member,
        3600,
    );
    sign(&claims, &secret())
}

/// A client connected to `ws` with `token` as a bearer, past `welcome`.
pub async fn connect_with(ws: &WsServer, token: &str) -> Client {
    let mut request = ws.url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (mut client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let ServerMessage::Welcome { .. } = next_message(&mut client).await else {
        panic!("expected welcome");
    };
    client
}

/// A member `name` (user id `name` too) in `room`, past `welcome` and
/// `joined`.
pub async fn member(ws: &WsServer, room: &str, name: &str) -> Client {
    let mut client = connect_with(ws, &member_token(name, name)).await;
    join(&mut client, room).await;
    client
}

/// Joins `room`; returns the `joined` answer.
pub async fn join(client: &mut Client, room: &str) -> ServerMessage {
    client
        .send(Message::text(
            json!({"type": "join", "room": room}).to_string(),
        ))
        .await
        .unwrap();
    let joined = next_message(client).await;
    assert!(matches!(joined, ServerMessage::Joined { .. }), "{joined:?}");
    joined
}

pub async fn next_message(client: &mut Client) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(DEADLINE, client.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}
