//! The accept loop: limits, connection ids, and shutdown.

use std::sync::Arc;
use std::time::Duration;

use log::{error, info};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::component::Component;
use crate::connection::{self, Context};
use crate::connection_id;
use crate::log_limit::{self, LogLimit};
use crate::settings::Settings;

/// The first wait after a failed `accept()`; it doubles up to
/// [`MAX_ACCEPT_BACKOFF`]. Accept fails mostly when file descriptors run out,
/// and retrying at once would spin.
const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` and serves each with `component` until
/// `shutdown` is cancelled; then closes every connection with 1001 (going
/// away) and returns once all of them have finished.
///
/// At most `settings.max_connections` are served at once: a permit is taken
/// before `accept()`, so excess clients wait in the kernel's backlog instead
/// of costing memory here.
pub async fn run<C: Component>(
    listener: TcpListener,
    settings: Settings,
    component: C,
    shutdown: CancellationToken,
) {
    let component = Arc::new(component);
    let settings = Arc::new(settings);
    let limit = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let handshake_log = Arc::new(LogLimit::new(Instant::now()));
    tracker.spawn(report_suppressed(
        Arc::clone(&handshake_log),
        shutdown.clone(),
    ));
    let mut backoff = FIRST_ACCEPT_BACKOFF;

    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = FIRST_ACCEPT_BACKOFF;
                accepted
            }
            Err(e) => {
                error!("accept failed, retrying in {backoff:?}: {e}");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = connection_id::next();
        let cx = Context {
            component: Arc::clone(&component),
            settings: Arc::clone(&settings),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            handshake_log: Arc::clone(&handshake_log),
        };
        tracker.spawn(async move {
            connection::serve(stream, peer, id, cx).await;
            drop(permit);
        });
    }

    drop(listener);
    tracker.close();
    info!(
        "shutting down: waiting for {} connection tasks",
        tracker.len()
    );
    tracker.wait().await;
    info!("shutdown complete");
}

/// Says, once a window is over, how many handshake lines its budget left
/// out, so that a burst that simply stops is still summed up.
async fn report_suppressed(log: Arc<LogLimit>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(log_limit::WINDOW);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let suppressed = log.take_suppressed(Instant::now());
                if suppressed > 0 {
                    info!("{suppressed} more handshake failures were not logged");
                }
            }
        }
    }
}
