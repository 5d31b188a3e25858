//! Connections per client address: the excess is refused with 429 before
//! the upgrade, and a closed connection gives its share back.

mod transport;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::{DEADLINE, Event, exchange, open, start, upgrade_request};

#[tokio::test]
async fn a_third_connection_from_one_address_gets_429_and_a_fourth_succeeds_once_one_closed() {
    let (server, events) = start(|s| s.max_connections_per_ip = 2).await;
    let mut first = open(server.addr).await;
    let _second = open(server.addr).await;

    let third = exchange(server.addr, upgrade_request("").as_bytes()).await;
    assert_eq!(third.status, 429, "{}", third.raw);
    assert!(
        third.body.contains("too many connections"),
        "{}",
        third.body
    );
    assert!(third.has_token("Connection", "close"));
    // A refused connection holds no share: still two, still full.
    let again = exchange(server.addr, upgrade_request("").as_bytes()).await;
    assert_eq!(again.status, 429);

    // The first client leaves: it ends its side, and reads until the
    // server has closed the connection.
    first.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, first.read_to_end(&mut rest))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    // The server gives the share back before it closes the socket, so the
    // end of the first connection is enough: no waiting, no retrying.
    let _fourth = open(server.addr).await;
    let events = events
        .wait_for(|e| e.iter().filter(|e| matches!(e, Event::Open(_))).count() == 3)
        .await;
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Close(_)))
            .count(),
        1
    );
}
