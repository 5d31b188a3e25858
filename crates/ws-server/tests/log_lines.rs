//! What clients can put into the log: their strings escaped and cut, and
//! handshake refusals at most ten a second, then summed up in one line.

mod transport;

use std::sync::Mutex;
use std::time::Duration;

use log::{LevelFilter, Log, Metadata, Record};
use transport::{
    CLOSE, exchange, expect_eof, open, read_frame, start, upgrade_request, write_frame,
};

/// Every line the server logs in this test binary (one test, so one
/// server: the logger is global).
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("ws_server")
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata())
            && let Ok(mut lines) = LINES.lock()
        {
            lines.push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

fn lines() -> Vec<String> {
    LINES.lock().map(|l| l.clone()).unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn client_strings_are_escaped_and_cut_and_refusals_are_rate_limited() {
    log::set_logger(&CAPTURE).unwrap_or_else(|e| panic!("{e}"));
    log::set_max_level(LevelFilter::Info);
    let (server, _) = start(|_| {}).await;

    // A close reason with a line break in it.
    let mut tcp = open(server.addr).await;
    let mut close = 1000_u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye\nFAKE LINE");
    write_frame(&mut tcp, CLOSE, &close).await;
    assert_eq!(read_frame(&mut tcp).await.opcode, CLOSE);
    expect_eof(&mut tcp).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let closed = lines()
        .into_iter()
        .find(|l| l.contains("closed: client closed"))
        .unwrap_or_else(|| panic!("no close line in {:?}", lines()));
    assert!(closed.contains("bye\\nFAKE LINE"), "{closed}");

    // Twenty-five refusals in one burst, each with a long path of quotes.
    let path = format!("/\"{}", "x".repeat(500));
    for _ in 0..25 {
        let request = upgrade_request("").replace("GET /ws", &format!("GET {path}"));
        assert_eq!(exchange(server.addr, request.as_bytes()).await.status, 404);
    }
    let refused: Vec<String> = lines()
        .into_iter()
        .filter(|l| l.contains("refused with 404"))
        .collect();
    assert_eq!(refused.len(), 10, "{refused:?}");
    for line in &refused {
        assert!(line.contains("(path /\\\"xxx"), "{line}");
        assert!(line.contains('…') && line.len() < 400, "{line}");
    }
    // Once the second is over, one line says how many were left out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let summary: Vec<String> = lines()
        .into_iter()
        .filter(|l| l.contains("were not logged"))
        .collect();
    assert_eq!(summary, ["15 more handshake failures were not logged"]);
    assert!(lines().iter().all(|l| !l.contains('\n')), "{:?}", lines());
}
