//! The accept loop: limits, connection ids, and shutdown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
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
use crate::metrics::Metrics;
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
/// of costing memory here. At most `settings.max_connections_per_ip` of
/// them come from one client address; the excess is answered 429.
///
/// Handshakes, frames and closes are counted in `metrics`, whose
/// `accepting` is set while the loop takes connections.
pub async fn run<C: Component>(
    listener: TcpListener,
    settings: Settings,
    component: C,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) {
    let component = Arc::new(component);
    let settings = Arc::new(settings);
    let limit = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let per_ip = Arc::new(PerIp::new(settings.max_connections_per_ip));
    let tracker = TaskTracker::new();
    let handshake_log = Arc::new(LogLimit::new(Instant::now()));
    tracker.spawn(report_suppressed(
        Arc::clone(&handshake_log),
        shutdown.clone(),
    ));
    let mut backoff = FIRST_ACCEPT_BACKOFF;
    metrics.accepting.store(true, Ordering::Release);

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
        let cx = Context {
            component: Arc::clone(&component),
            settings: Arc::clone(&settings),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            handshake_log: Arc::clone(&handshake_log),
            metrics: Arc::clone(&metrics),
        };
        // Over its address's limit, a connection gets its 429 at once and
        // gives its share of `max_connections` back first: silent sockets
        // from one address must not keep everyone else waiting.
        let Some(slot) = per_ip.take(peer.ip()) else {
            drop(permit);
            tracker.spawn(connection::refuse_over_limit(stream, peer, cx));
            continue;
        };
        let id = connection_id::next();
        tracker.spawn(async move {
            connection::serve(stream, peer, id, slot, cx).await;
            drop(permit);
        });
    }

    metrics.accepting.store(false, Ordering::Release);
    drop(listener);
    tracker.close();
    info!(
        "shutting down: waiting for {} connection tasks",
        tracker.len()
    );
    tracker.wait().await;
    info!("shutdown complete");
}

/// How many connections each client address has open, against
/// `max_connections_per_ip`, so that one address cannot take every one of
/// `max_connections`.
#[derive(Debug)]
struct PerIp {
    max: usize,
    /// Addresses with at least one connection; an entry goes when its
    /// count drops to zero, so the map holds only live addresses.
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A share of `ip`'s limit, or `None` when its connections are at the
    /// limit already.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let ip = counted_as(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: Arc::clone(self),
            ip,
        })
    }
}

/// The address a client is counted under: IPv4 as is (an IPv4-mapped IPv6
/// address as the IPv4 one), IPv6 by its /64, the block one subscriber
/// usually gets, so that walking through it buys no more connections.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1_u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// One connection's share of its address's limit, given back when dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_limit_and_a_slot_given_back_is_free_again() {
        let per_ip = Arc::new(PerIp::new(2));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let first = per_ip.take(ip);
        let second = per_ip.take(ip);
        assert!(first.is_some() && second.is_some());
        assert!(per_ip.take(ip).is_none());
        assert!(per_ip.take([10, 0, 0, 2].into()).is_some());
        drop(first);
        assert!(per_ip.take(ip).is_some());
    }

    #[test]
    fn the_map_forgets_addresses_without_connections() {
        let per_ip = Arc::new(PerIp::new(2));
        let slot = per_ip.take([10, 0, 0, 1].into());
        drop(slot);
        assert!(per_ip.open.lock().map(|m| m.is_empty()).unwrap_or(false));
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        let other: IpAddr = "2001:db8:1:3::1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(counted_as(a), counted_as(b));
        assert_ne!(counted_as(a), counted_as(other));
        let mapped: IpAddr = "::ffff:192.0.2.7"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(counted_as(mapped), IpAddr::V4([192, 0, 2, 7].into()));
    }
}
