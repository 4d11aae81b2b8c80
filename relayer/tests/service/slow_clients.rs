//! `relayer serve` under a low open-file limit, held by slow and silent clients: slowloris
//! headers, stalled bodies and more idle sockets than it has file descriptors. Normal requests
//! are still served throughout; and what unauthenticated clients send never makes it log an
//! error, nor a secret. Loopback only, bounded: the attack lasts a few header timeouts.
use std::{
    os::unix::process::CommandExt,
    process::Child,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use relayer::domain::signature;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{node::free_port, *};

/// The server's open-file limit: the unit's default before `LimitNOFILE`, halved.
const FILE_LIMIT: u64 = 512;
const SLOWLORIS: usize = 200;
const STALLED_BODIES: usize = 50;
const IDLE: usize = 600;

struct Serve {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn serve(database_url: &str) -> Serve {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("relayer-slow-{}.log", uuid::Uuid::new_v4()));
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = serve_command(database_url, port);
    cmd.args(["--role", "http"])
        .env("HTTP_HEADER_TIMEOUT_SECS", "2")
        .env("HTTP_BODY_TIMEOUT_SECS", "2")
        .env("HTTP_REQUEST_TIMEOUT_SECS", "4")
        .env("WEBHOOK_RATE_LIMIT_PER_MINUTE", "100000")
        .env("RUST_LOG", "info")
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: FILE_LIMIT,
                rlim_max: FILE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let serve = Serve {
        child: cmd.spawn().unwrap(),
        port,
        log,
    };
    let ready = format!("http://127.0.0.1:{port}/readyz");
    eventually("relayer serve is ready", || async {
        reqwest::get(&ready)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    serve
}

/// One attacker: connects, does `what` until the server closes the socket, connects again,
/// until `stop`. Counts how often the server closed on it.
async fn attacker(port: u16, what: &'static str, stop: Arc<AtomicBool>, closed: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut buf = [0u8; 256];
        let opening: &[u8] = match what {
            "slowloris" => b"GET /healthz HTTP/1.1\r\nHost: relayer\r\nX-Slow: ",
            "stalled body" => b"POST /webhooks/tracking HTTP/1.1\r\nHost: relayer\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"event_id\":",
            _ => b"",
        };
        if s.write_all(opening).await.is_err() {
            continue;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::select! {
                read = s.read(&mut buf) => {
                    if matches!(read, Ok(0) | Err(_)) {
                        closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    // A header byte now and then: never a complete request.
                    if what == "slowloris" && s.write_all(b"a").await.is_err() {
                        closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn slow_and_idle_clients_never_keep_a_normal_request_out() {
    let database_url = fresh_database().await;
    let server = serve(&database_url).await;
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let mut attackers = tokio::task::JoinSet::new();
    for (what, n) in [
        ("slowloris", SLOWLORIS),
        ("stalled body", STALLED_BODIES),
        ("idle", IDLE),
    ] {
        for _ in 0..n {
            attackers.spawn(attacker(port, what, stop.clone(), closed.clone()));
        }
    }
    // A fresh connection for every request, as a new client would open.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20)) // a hang guard, not a latency bound
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut served = 0;
    for i in 0..24 {
        let body = event(&format!("slow-{i}"), "1ZSLOW", "in_transit");
        let sig = signature::tracking_signature(HMAC_SECRET, body.as_bytes());
        let statuses = [
            http.get(format!("{base}/healthz")).send().await,
            http.get(format!("{base}/readyz")).send().await,
            http.post(format!("{base}/webhooks/tracking"))
                .header("X-Tracking-Signature", sig)
                .body(body)
                .send()
                .await,
        ]
        .map(|r| r.map(|r| r.status().as_u16()).map_err(|e| e.to_string()));
        assert_eq!(
            statuses,
            [Ok(200), Ok(200), Ok(202)],
            "round {i}: healthz, readyz, a signed webhook"
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    while attackers.join_next().await.is_some() {}
    assert_eq!(served, 24);
    assert!(
        closed.load(Ordering::Relaxed) >= SLOWLORIS + STALLED_BODIES,
        "the server closed on slow clients ({} times)",
        closed.load(Ordering::Relaxed)
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM tracking_events")
        .fetch_one(&sqlx::PgPool::connect(&database_url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(events, 24, "every signed webhook was stored");

    unauthenticated_noise(&base).await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains("Too many open files"), "{log}");
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}"));
        assert_ne!(entry["level"], "ERROR", "{line}");
    }
    for secret in [HMAC_SECRET, JWT_SECRET] {
        let secret = std::str::from_utf8(secret).unwrap();
        assert!(!log.contains(secret), "a secret in the log");
    }
    assert!(
        !log.contains("eyJ"),
        "no token (nor any base64 JSON) in the log"
    );
}

/// What a stranger can send: forged, malformed, oversized, refused requests of every surface.
async fn unauthenticated_noise(base: &str) {
    // New connections: a kept-alive one may be closed by the server's idle timeout under us.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let forged = token(b"not-the-relayers-secret-0123456789ab", 60);
    let expired = token(JWT_SECRET, -60);
    let account = "11111111111111111111111111111111";
    let uuid = uuid::Uuid::new_v4();
    let requests = [
        http.post(format!("{base}/webhooks/tracking")).body("{}"),
        http.post(format!("{base}/webhooks/tracking"))
            .header("X-Tracking-Signature", "00")
            .body(event("x", "1Z", "delivered")),
        http.get(format!("{base}/v1/jobs")).bearer_auth(&forged),
        http.get(format!("{base}/v1/jobs")).bearer_auth(&expired),
        http.get(format!("{base}/v1/jobs"))
            .header("authorization", "Basic b3BzOmd1ZXNz"),
        http.post(format!("{base}/v1/offers"))
            .bearer_auth(&forged)
            .body("{"),
        http.post(format!("{base}/api/actions/deposit/{uuid}"))
            .json(&serde_json::json!({ "account": account })),
        http.post(format!("{base}/api/actions/deposit/{uuid}"))
            .header("content-type", "application/json")
            .body("{\"account\":"),
        http.post(format!("{base}/api/actions/steal/{uuid}"))
            .json(&serde_json::json!({ "account": "\u{0}" })),
        http.get(format!("{base}/api/actions/deposit/%00")),
        http.get(format!("{base}/v1/audit/offers/%00")),
        http.get(format!("{base}/v1/audit/entries?after=x")),
        http.get(format!("{base}/metrics")),
        http.post(format!("{base}/v1/offers"))
            .header("content-encoding", "gzip")
            .body("x"),
    ];
    // Over the body limit: answered 413, or cut off while still sending (the server need not
    // read the rest).
    let oversized = http
        .post(format!("{base}/webhooks/tracking"))
        .body(vec![b'a'; 200_000])
        .send()
        .await;
    assert!(
        oversized.as_ref().map_or(true, |r| r.status()
            == reqwest::StatusCode::PAYLOAD_TOO_LARGE),
        "{oversized:?}"
    );
    for request in requests {
        let resp = request.send().await.unwrap();
        assert!(
            resp.status().is_client_error(),
            "{}: {}",
            resp.url(),
            resp.status()
        );
    }
}
