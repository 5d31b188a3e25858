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

#[tokio::test]
async fn silent_sockets_from_one_address_do_not_keep_another_address_out() {
    // A request head is waited for an hour: only the immediate 429 of the
    // sockets over their address's limit lets the other client in.
    let (server, _events) = start(|s| {
        s.max_connections = 4;
        s.max_connections_per_ip = 2;
        s.handshake_timeout = std::time::Duration::from_secs(3600);
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..12 {
        silent.push(
            tokio::net::TcpStream::connect(server.addr)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    // The over-limit ones are answered without a word from them.
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, silent[11].read_to_end(&mut answer))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 429"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // Another address (all of 127.0.0.0/8 is loopback) is served.
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .bind(([127, 0, 0, 2], 0).into())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut other = socket
        .connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    other
        .write_all(upgrade_request("").as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = [0_u8; 12];
    tokio::time::timeout(DEADLINE, other.read_exact(&mut head))
        .await
        .unwrap_or_else(|_| panic!("the other address was kept waiting"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&head, b"HTTP/1.1 101");
}
