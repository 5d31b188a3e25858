//! Measures cross-instance fan-out through the Redis engine on this
//! machine: a `redis-server` of its own on a free port, two ws-server
//! instances in this process, subscribers split across both, publishers
//! split across both posting as fast as they can. Prints deliveries per
//! second. Subscribers and publishers run in this process too, so they
//! share the machine's cores with Redis and both instances.
//!
//! `cargo run --release -p ws-server --example redis_fanout -- [SUBSCRIBERS] [MESSAGES] [PUBLISHERS]`
//! (defaults 100, 2000 and 1). The run is bounded: it stops after the last
//! delivery, or after a minute.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use ws_server::Settings;
use ws_server::settings::EngineKind;

const DEADLINE: Duration = Duration::from_secs(60);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let messages: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let publishers: usize = args.next().map_or(Ok(1), |a| a.parse())?;
    let messages = messages / publishers * publishers;

    let redis = testkit::RedisServer::start().await;

    let secret = protocol::Secret::generate();
    let shutdown = CancellationToken::new();
    let mut urls = Vec::new();
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        urls.push(format!("ws://{}/ws", listener.local_addr()?));
        let settings = Settings {
            engine: EngineKind::Redis,
            redis_url: redis.url(),
            max_connections: 100_000,
            // Every client comes from 127.0.0.1 here.
            max_connections_per_ip: 100_000,
            secret: secret.clone(),
            // A benchmark floods on purpose.
            max_frames_per_second: u32::MAX,
            frame_burst: u32::MAX,
            ..Settings::default()
        };
        tokio::spawn(ws_server::serve_chat(listener, settings, shutdown.clone()));
    }

    let signing = protocol::Secret::new(&secret)?;
    // A member token per client, presented as non-browser clients do.
    let connect = |url: &str, name: String| {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let claims = protocol::Claims::new(
            protocol::UserId::new(name.clone()).map_err(|e| e.to_string())?,
            protocol::DisplayName::new(name).map_err(|e| e.to_string())?,
            protocol::Role::Member,
            3600,
        );
        let token = protocol::token::sign(&claims, &signing);
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        request.headers_mut().insert("Authorization", bearer);
        Ok::<_, String>(request)
    };
    let join = serde_json::json!({"type": "join", "room": "bench"}).to_string();
    let mut readers = Vec::new();
    for i in 0..subscribers {
        let request = connect(&urls[i % 2], format!("s{i}"))?;
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        ws.send(Message::text(join.clone())).await?;
        wait_for(&mut ws, "\"type\":\"joined\"").await?;
        readers.push(ws);
    }
    let mut posters = Vec::new();
    for i in 0..publishers {
        let request = connect(&urls[i % 2], format!("p{i}"))?;
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        ws.send(Message::text(join.clone())).await?;
        wait_for(&mut ws, "\"type\":\"joined\"").await?;
        posters.push(ws);
    }

    let started = Instant::now();
    let counting: Vec<_> = readers
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut got = 0;
                while got < messages {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) if t.contains("\"type\":\"message\"") => {
                            got += 1
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
                got
            })
        })
        .collect();
    let post = Message::text(
        serde_json::json!({"type": "post", "room": "bench", "text": "x".repeat(64)}).to_string(),
    );
    let mut drains = Vec::new();
    for mut poster in posters {
        let post = post.clone();
        let each = messages / publishers;
        drains.push(tokio::spawn(async move {
            for _ in 0..each {
                if poster.feed(post.clone()).await.is_err() {
                    return;
                }
            }
            let _ = poster.flush().await;
            while poster.next().await.is_some() {}
        }));
    }

    let mut delivered = 0;
    for reader in counting {
        delivered += tokio::time::timeout(DEADLINE, reader).await??;
    }
    let elapsed = started.elapsed();
    for drain in drains {
        drain.abort();
    }
    shutdown.cancel();
    println!(
        "{subscribers} subscribers and {publishers} publishers on 2 instances, \
         {messages} messages of 64 bytes: \
         {delivered} deliveries in {elapsed:.2?} = {:.0} deliveries/s ({:.0} messages/s)",
        delivered as f64 / elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64(),
    );
    Ok(())
}

async fn wait_for(ws: &mut Ws, marker: &str) -> Result<(), Box<dyn std::error::Error>> {
    loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await? {
            Some(Ok(Message::Text(t))) if t.contains(marker) => return Ok(()),
            Some(Ok(_)) => {}
            _ => return Err("connection closed".into()),
        }
    }
}
