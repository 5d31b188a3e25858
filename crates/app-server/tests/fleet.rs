//! The dashboard's poller against admin ports of its own making: each
//! instance's answer, or why there was none, lands in the snapshot a
//! watcher gets, and a bad instance does not stop the others.

use app_server::fleet::Fleet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An admin port that answers every request with `status` and `body`.
async fn admin_port(status: &'static str, body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0_u8; 1024];
                let _ = tcp.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn stats_json(connections: u64) -> String {
    serde_json::json!({
        "instance": "i1", "version": "0.1.0", "uptime_seconds": 5,
        "readiness": {"ready": true, "accepting": true, "engine": "memory", "engine_ok": true},
        "connections": connections, "rooms_held": 1,
        "handshakes_accepted": 3, "handshakes_refused": 0,
        "messages_received": 1, "messages_sent": 2, "bytes_received": 3, "bytes_sent": 4,
        "slow_consumer_closes": 0, "heartbeat_closes": 0, "rate_limit_closes": 0,
        "rooms": [{"room": "lobby", "members": 2}], "more_rooms": false
    })
    .to_string()
}

#[tokio::test]
async fn a_watcher_gets_every_instances_figures_or_why_not() {
    let good = admin_port("200 OK", stats_json(7)).await;
    let failing = admin_port("500 Internal Server Error", "{}".to_owned()).await;
    let huge = admin_port("200 OK", format!("\"{}\"", "x".repeat(300 * 1024))).await;
    let foreign = admin_port("200 OK", "{\"hello\": 1}".to_owned()).await;
    // Nothing listens there any more.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        )
    };
    let urls = vec![good.clone(), failing, huge, foreign, closed];
    let fleet = Fleet::start(urls.clone());
    let mut watcher = fleet.watch();
    tokio::time::timeout(std::time::Duration::from_secs(10), watcher.changed())
        .await
        .unwrap_or_else(|e| panic!("no snapshot: {e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let snapshot = watcher.borrow_and_update().clone();

    let urls_seen: Vec<&str> = snapshot.instances.iter().map(|i| i.url.as_str()).collect();
    assert_eq!(
        urls_seen,
        urls.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let [good, failing, huge, foreign, closed] = &snapshot.instances[..] else {
        panic!("five instances: {snapshot:?}");
    };
    assert!(good.ok, "{good:?}");
    assert_eq!(good.stats.as_ref().map(|s| s.connections), Some(7));
    let error = |view: &app_server::fleet::InstanceView| {
        assert!(!view.ok && view.stats.is_none(), "{view:?}");
        view.error.clone().unwrap_or_default()
    };
    assert!(error(failing).contains("answered 500"), "{failing:?}");
    assert!(error(huge).contains("reading the answer"), "{huge:?}");
    assert!(
        error(foreign).contains("not the stats of a ws-server"),
        "{foreign:?}"
    );
    assert!(
        error(closed).contains("Connection refused") || error(closed).contains("refused"),
        "{closed:?}"
    );
    assert!(snapshot.at > 0);

    // Stopping ends every watcher.
    fleet.stop();
    fleet.stopped().await;
}

/// The dashboard's JavaScript is tested against this file
/// (`tests/js/dashboard-data.test.mjs`): what the stream sends must match
/// it, field for field.
#[test]
fn a_snapshot_is_sent_as_the_dashboards_fixture_says() {
    use app_server::fleet::{InstanceView, Snapshot};
    use protocol::admin::{InstanceStats, Readiness};
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/dashboard-snapshot.json"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let stats: InstanceStats = serde_json::from_value(fixture["instances"][0]["stats"].clone())
        .unwrap_or_else(|e| panic!("the fixture's stats are InstanceStats: {e}"));
    assert_eq!(
        stats.readiness,
        Readiness {
            ready: true,
            accepting: true,
            engine: "redis".to_owned(),
            engine_ok: true,
            reason: None,
        }
    );
    let snapshot = Snapshot {
        at: 1_764_600_000_000,
        instances: vec![
            InstanceView {
                url: "http://127.0.0.1:5003".to_owned(),
                ok: true,
                error: None,
                stats: Some(stats),
            },
            InstanceView {
                url: "http://127.0.0.1:5102".to_owned(),
                ok: false,
                error: Some("no answer within 800ms".to_owned()),
                stats: None,
            },
        ],
    };
    assert_eq!(
        serde_json::to_value(&snapshot).unwrap_or_else(|e| panic!("{e}")),
        fixture
    );
}

/// Against a real ws-server's admin port, round after round: every round
/// reaches it (a connection reused across rounds once raced the port's
/// idle timeout and lost about one round in five).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_admin_port_answers_every_round() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}",
        admin.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let settings = ws_server::Settings {
        port: 0,
        secret: "fleet-test-secret-fleet-test-secret-0".to_owned(),
        ..ws_server::Settings::default()
    };
    let server = tokio::spawn(ws_server::serve_chat_with_admin(
        listener,
        admin,
        settings,
        shutdown.clone(),
    ));
    let fleet = Fleet::start(vec![url]);
    let mut watcher = fleet.watch();
    for round in 0..6 {
        tokio::time::timeout(std::time::Duration::from_secs(10), watcher.changed())
            .await
            .unwrap_or_else(|e| panic!("no round {round}: {e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let snapshot = watcher.borrow_and_update().clone();
        assert!(snapshot.instances[0].ok, "round {round}: {snapshot:?}");
    }
    fleet.stop();
    shutdown.cancel();
    server.await.unwrap_or_else(|e| panic!("{e}"));
}
