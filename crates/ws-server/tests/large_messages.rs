//! Messages larger than a connection's buffers: in, through a 1 KiB read
//! buffer, up to `max_frame_bytes`; out, as fragments of at most 4 KiB,
//! which is what keeps tungstenite's write buffer bounded.

mod transport;

use transport::{TEXT, open, read_frame, start, write_frame};

/// The continuation opcode of RFC 6455.
const CONTINUATION: u8 = 0x0;

/// The largest payload of one frame the server sends.
const FRAGMENT_BYTES: usize = 4 * 1024;

#[tokio::test]
async fn a_message_larger_than_the_read_buffer_is_received_and_echoed_in_fragments() {
    let (server, _) = start(|s| s.max_frame_bytes = 64 * 1024).await;
    let mut tcp = open(server.addr).await;
    let text: String = "0123456789abcdé".chars().cycle().take(40 * 1024).collect();
    write_frame(&mut tcp, TEXT, text.as_bytes()).await;

    let mut frames = vec![read_frame(&mut tcp).await];
    while !frames.last().is_some_and(|f| f.fin) {
        frames.push(read_frame(&mut tcp).await);
    }
    let opcodes: Vec<u8> = frames.iter().map(|f| f.opcode).collect();
    let expected = text.len().div_ceil(FRAGMENT_BYTES);
    assert_eq!(opcodes.len(), expected, "{opcodes:?}");
    assert_eq!(opcodes[0], TEXT);
    assert!(
        opcodes[1..].iter().all(|&o| o == CONTINUATION),
        "{opcodes:?}"
    );
    assert!(frames.iter().all(|f| f.payload.len() <= FRAGMENT_BYTES));
    let echoed: Vec<u8> = frames.into_iter().flat_map(|f| f.payload).collect();
    assert_eq!(echoed, text.as_bytes());
}

#[tokio::test]
async fn a_message_of_one_fragment_goes_as_one_frame() {
    let (server, _) = start(|_| {}).await;
    let mut tcp = open(server.addr).await;
    let text = "x".repeat(FRAGMENT_BYTES);
    write_frame(&mut tcp, TEXT, text.as_bytes()).await;
    let frame = read_frame(&mut tcp).await;
    assert!(frame.fin && frame.opcode == TEXT);
    assert_eq!(frame.payload, text.as_bytes());
}
