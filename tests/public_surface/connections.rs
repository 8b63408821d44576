//! Connections that never finish cannot take the server: a request head is due within the
//! header timeout of its first byte, an idle kept-alive connection closes after the
//! keep-alive timeout, one address holds at most its share, and a process out of file
//! descriptors pauses accepting instead of spinning.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::Site;

/// A connection to `port` from the loopback address `127.0.0.<host>`.
async fn connect_from(host: u8, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)),
            0,
        ))
        .expect("bind");
    socket
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .await
        .expect("connect")
}

fn port_of(site: &Site) -> u16 {
    site.server
        .url
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("number")
}

/// Reads until the peer closes; what was read, or `None` when it did not close in `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_in_time_while_others_are_served() {
    const HALF_SENT: usize = 5_000;
    let site = Site::with(|cfg| cfg.http.header_timeout = Duration::from_secs(2)).await;
    site.register("ann").await;
    let port = port_of(&site);
    // 5,000 requests that never finish their head, from 50 addresses.
    let mut slow = Vec::with_capacity(HALF_SENT);
    for n in 0..HALF_SENT {
        let mut stream = connect_from(2 + (n % 50) as u8, port).await;
        stream
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("write");
        slow.push(stream);
    }
    let sent = Instant::now();
    // Meanwhile the others are served.
    let (code, body) = site.server.get("/api/health").await;
    assert_eq!((code, body), (200, json!({"status": "ok"})));
    assert_eq!(site.login("ann", "password-ann").await.status, 200);
    // Every half-sent request is closed, none answered.
    let closes = slow
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_secs(60)));
    let outcomes = futures_util::future::join_all(closes).await;
    let open = outcomes.iter().filter(|o| o.is_none()).count();
    assert_eq!(open, 0, "{open} half-sent requests still open");
    let answered = outcomes
        .iter()
        .flatten()
        .filter(|bytes| bytes.starts_with(b"HTTP/1.1 200"))
        .count();
    assert_eq!(answered, 0);
    println!(
        "{HALF_SENT} half-sent requests closed {:?} after the last was sent (header timeout 2 s)",
        sent.elapsed()
    );
    assert_eq!(site.server.get("/api/health").await.0, 200);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_closes_after_the_keep_alive_timeout() {
    let site = Site::with(|cfg| {
        cfg.http.keepalive_timeout = Duration::from_millis(500);
        cfg.http.header_timeout = Duration::from_secs(30);
    })
    .await;
    let mut stream = connect_from(1, port_of(&site)).await;
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut first = vec![0u8; 512];
    let n = stream.read(&mut first).await.expect("answer");
    assert!(
        first[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    // Nothing more is sent: the server closes it long before the header timeout would.
    let rest = closed_within(&mut stream, Duration::from_secs(20)).await;
    assert_eq!(
        rest.as_deref(),
        Some(&[][..]),
        "closed without another answer"
    );
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_of_connections() {
    let site = Site::with(|cfg| cfg.http.max_per_address = 20).await;
    let port = port_of(&site);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from(9, port).await);
    }
    // The 21st from that address is closed at once, unanswered; others are served.
    let mut extra = connect_from(9, port).await;
    extra
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok();
    let closed = closed_within(&mut extra, Duration::from_secs(5)).await;
    assert!(
        closed.is_some_and(|bytes| bytes.is_empty()),
        "closed without an answer"
    );
    assert_eq!(site.server.get("/api/health").await.0, 200);
    // A place given back is taken again.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut stream = connect_from(9, port).await;
        stream
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let reply = closed_within(&mut stream, Duration::from_secs(5))
            .await
            .unwrap_or_default();
        if reply.starts_with(b"HTTP/1.1 200") {
            again = Some(reply);
            break;
        }
        // The server may not have seen the close yet.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "a freed place serves a new connection");
    drop(held);
    site.server.stop().await;
}

/// CPU time (user + system) of process `pid`, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces), from the state field on.
    let after = stat.rsplit_once(')').expect("comm").1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // sysconf(_SC_CLK_TCK) is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_server_pauses_accepting_and_recovers() {
    let db = crate::common::pg::TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let port = crate::common::free_port();
    let log = dir.path().join("server.log");
    let mut vars = crate::common::process::external_env(&db, dir.path());
    vars.push(("PORT", port.to_string()));
    vars.push(("HTTP_MAX_CONNECTIONS", "1000".into()));
    vars.push(("HTTP_HEADER_TIMEOUT_MS", "1000".into()));
    let mut command = tokio::process::Command::new("prlimit");
    command
        .args([
            "--nofile=96:96",
            "--",
            env!("CARGO_BIN_EXE_deploystack-backend"),
            "serve",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .kill_on_drop(true);
    for (name, value) in &vars {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn under prlimit");
    let pid = child.id().expect("pid");
    let url = format!("http://127.0.0.1:{port}/api/health");
    let http = reqwest::Client::new();
    crate::common::wait_until("the backend to listen", Duration::from_secs(60), || async {
        http.get(&url).send().await.is_ok()
    })
    .await;
    // More connections than the process has descriptors.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(connect_from(3, port).await);
    }
    crate::common::wait_until(
        "accepting to run out of descriptors",
        Duration::from_secs(20),
        || async {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("out of file descriptors")
        },
    )
    .await;
    let before = cpu_time(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let spent = cpu_time(pid) - before;
    println!("CPU while out of descriptors: {spent:?} in 3 s");
    assert!(
        spent < Duration::from_millis(1500),
        "accepting spun: {spent:?} of CPU in 3 s"
    );
    drop(flood);
    let fresh = reqwest::Client::new();
    crate::common::wait_until(
        "the backend to serve again",
        Duration::from_secs(30),
        || async {
            fresh
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
}
