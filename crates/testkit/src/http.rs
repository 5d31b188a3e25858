//! A bare HTTP/1.1 GET over loopback, for tests that check what a server's
//! health, readiness and metrics pages answer, status and body, as a probe
//! or a scraper sees them.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the whole exchange may take; servers answer in milliseconds.
const DEADLINE: Duration = Duration::from_secs(10);

/// `GET path` from `addr` with `Host: host` and the `headers` lines
/// (`Name: value`), the connection closed after it: the status and the
/// body.
///
/// # Panics
/// When the server cannot be reached, does not answer within ten seconds,
/// or answers something that is not HTTP.
pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[&str]) -> (u16, String) {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut response = Vec::new();
        tcp.read_to_end(&mut response)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&response).into_owned()
    };
    let response = tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} from {addr}: no answer within {DEADLINE:?}"));
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}
