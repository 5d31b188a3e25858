//! What Linux says about processes and sockets: a server's memory and CPU
//! time from `/proc/PID/{status,stat}`, this process's CPU time from
//! `getrusage`, and the TCP socket table from `/proc/net/tcp{,6}`.
//!
//! A benchmark's figures mean little without knowing which side ran out of
//! CPU, so both sides' CPU time is read before and after each measurement.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use nix::unistd::{SysconfVar, sysconf};
use serde::Serialize;

/// Clock ticks per second of `/proc/PID/stat` when `sysconf` cannot say
/// (USER_HZ has been 100 on every Linux architecture for decades).
const FALLBACK_TICKS_PER_SECOND: f64 = 100.0;

/// The process serving the load, when its id was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerProcess {
    pid: u32,
}

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcessSample {
    /// Resident memory, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// User plus system CPU time, seconds.
    pub cpu_s: f64,
}

impl ServerProcess {
    /// The process `pid`, if `/proc` can read it now.
    ///
    /// # Errors
    /// When its status or stat file cannot be read or understood.
    pub fn new(pid: u32) -> std::io::Result<Self> {
        let process = Self { pid };
        process.sample()?;
        Ok(process)
    }

    /// Its memory and CPU time now.
    ///
    /// # Errors
    /// When the process is gone or `/proc` says something unexpected.
    pub fn sample(&self) -> std::io::Result<ProcessSample> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        Ok(ProcessSample {
            rss_kib: rss_kib(&status).ok_or_else(|| unexpected("no VmRSS in status"))?,
            cpu_s: cpu_ticks(&stat).ok_or_else(|| unexpected("no utime/stime in stat"))? as f64
                / ticks_per_second(),
        })
    }
}

/// The processes serving the load: one server, or the instances a run is
/// split over. Their figures are sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProcesses {
    each: Vec<ServerProcess>,
}

impl ServerProcesses {
    /// The processes `pids`, if `/proc` can read each of them now; `None`
    /// when no id is given.
    ///
    /// # Errors
    /// The first id that cannot be read, and why.
    pub fn new(pids: &[u32]) -> Result<Option<Self>, (u32, std::io::Error)> {
        let each = pids
            .iter()
            .map(|&pid| ServerProcess::new(pid).map_err(|e| (pid, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!each.is_empty()).then_some(Self { each }))
    }

    /// Their ids, in the order given.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.each.iter().map(|p| p.pid).collect()
    }

    /// Each one's memory and CPU time now, in the order given.
    ///
    /// # Errors
    /// When one is gone or `/proc` says something unexpected.
    pub fn samples(&self) -> std::io::Result<Vec<ProcessSample>> {
        self.each.iter().map(ServerProcess::sample).collect()
    }

    /// Their memory and CPU time now, summed.
    ///
    /// # Errors
    /// As [`ServerProcesses::samples`].
    pub fn sample(&self) -> std::io::Result<ProcessSample> {
        Ok(self
            .samples()?
            .iter()
            .fold(ProcessSample::default(), |sum, s| ProcessSample {
                rss_kib: sum.rss_kib + s.rss_kib,
                cpu_s: sum.cpu_s + s.cpu_s,
            }))
    }
}

fn unexpected(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
fn rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `utime + stime` of a `/proc/PID/stat` text, in clock ticks. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    // After the name come field 3 (state) on; utime and stime are fields 14
    // and 15, the 12th and 13th here.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as f64,
        _ => FALLBACK_TICKS_PER_SECOND,
    }
}

/// This process's user plus system CPU time so far, in seconds.
#[must_use]
pub fn own_cpu_s() -> f64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |usage| {
        let seconds = |t: nix::sys::time::TimeVal| {
            Duration::new(
                u64::try_from(t.tv_sec()).unwrap_or(0),
                u32::try_from(t.tv_usec()).unwrap_or(0) * 1000,
            )
        };
        (seconds(usage.user_time()) + seconds(usage.system_time())).as_secs_f64()
    })
}

/// Raises this process's open-file limit from its soft value to its hard
/// one, since every connection is a file; returns the limit now in force.
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_open_file_limit() -> nix::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(getrlimit(Resource::RLIMIT_NOFILE)?.0)
}

/// The open-file limit in force.
#[must_use]
pub fn open_file_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft)
}

/// One row of the kernel's TCP socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketRow {
    /// The socket's own address.
    pub local: SocketAddr,
    /// The address it is connected to.
    pub remote: SocketAddr,
    /// The socket's inode: 0 once no process holds it (the owner closed
    /// it and the kernel is still finishing the connection).
    pub inode: u64,
}

/// Every TCP socket of this network namespace, IPv4 and IPv6.
///
/// # Errors
/// When neither table can be read.
pub fn tcp_sockets() -> std::io::Result<Vec<SocketRow>> {
    let v4 = std::fs::read_to_string("/proc/net/tcp");
    let v6 = std::fs::read_to_string("/proc/net/tcp6");
    if let (Err(e), Err(_)) = (&v4, &v6) {
        return Err(std::io::Error::new(e.kind(), e.to_string()));
    }
    let mut rows = Vec::new();
    for table in [v4, v6].into_iter().flatten() {
        rows.extend(table.lines().skip(1).filter_map(parse_socket_row));
    }
    Ok(rows)
}

/// Reads `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`.
fn parse_socket_row(line: &str) -> Option<SocketRow> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some(SocketRow {
        local: parse_socket_addr(fields.get(1)?)?,
        remote: parse_socket_addr(fields.get(2)?)?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// Reads `0100007F:1388`: the address as the kernel holds it in memory
/// (32-bit words in host order, printed in hex), then the port in hex.
fn parse_socket_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| {
        addr.get(i * 8..i * 8 + 8)
            .and_then(|w| u32::from_str_radix(w, 16).ok())
            .map(|w| w.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0_u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_status() {
        let status = "Name:\tws-server\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(rss_kib(status), Some(12_345));
        assert_eq!(rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn this_process_can_read_itself() -> std::io::Result<()> {
        let me = ServerProcess::new(std::process::id())?.sample()?;
        assert!(me.rss_kib > 0);
        assert!(me.cpu_s >= 0.0);
        Ok(())
    }

    #[test]
    fn several_processes_are_summed() -> std::io::Result<()> {
        assert_eq!(ServerProcesses::new(&[]).ok(), Some(None));
        let me = std::process::id();
        let Ok(Some(twice)) = ServerProcesses::new(&[me, me]) else {
            panic!("this process cannot read itself");
        };
        assert_eq!(twice.pids(), [me, me]);
        let each = twice.samples()?;
        assert_eq!(each.len(), 2);
        let sum = twice.sample()?;
        // RSS moves between readings; the sum is about twice one.
        assert!(sum.rss_kib >= each[0].rss_kib, "{sum:?} {each:?}");
        assert!(sum.cpu_s >= each[0].cpu_s, "{sum:?} {each:?}");
        // An id that no process has is refused by name.
        let gone = ServerProcesses::new(&[me, u32::MAX]);
        assert!(matches!(gone, Err((pid, _)) if pid == u32::MAX));
        Ok(())
    }

    #[test]
    fn socket_rows_are_read_in_both_families() {
        let v4 = "   0: 0100007F:1388 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(
            parse_socket_row(v4),
            Some(SocketRow {
                local: "127.0.0.1:5000".parse().unwrap(),
                remote: "127.0.0.1:40000".parse().unwrap(),
                inode: 123_456,
            })
        );
        let v6 = "   1: 00000000000000000000000001000000:1388 0000000000000000FFFF00000100007F:9C40 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000";
        let row = parse_socket_row(v6);
        assert_eq!(
            row.map(|r| r.local.to_string()),
            Some("[::1]:5000".to_owned())
        );
        assert_eq!(
            row.map(|r| r.remote.to_string()),
            Some("127.0.0.1:40000".to_owned())
        );
        assert_eq!(row.map(|r| r.inode), Some(0));
    }

    #[test]
    fn this_process_finds_its_own_listening_socket() -> std::io::Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let rows = tcp_sockets()?;
        assert!(rows.iter().any(|r| r.local == addr && r.inode != 0));
        Ok(())
    }
}
