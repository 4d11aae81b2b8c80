//! Who is asking, and how often they may: per-IP rate limits on every public surface (webhooks,
//! Solana Actions, the audit log, the operator API), per-token limits and failed-authentication
//! throttling on the operator API.
//!
//! The client's address is the peer's, unless the peer is one of `TRUSTED_PROXIES`: then it is
//! the last `X-Forwarded-For` hop that is not a trusted proxy (every hop before it was written by
//! the client and proves nothing).
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::config::HttpConfig;

/// How long an address that failed authentication too often is refused.
const AUTH_BLOCK: Duration = Duration::from_secs(60);

/// The client's address for `peer`'s request.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.ip();
    if !is_trusted(&client) {
        return client;
    }
    // Hops in the order they were appended: lines in order, each line left to right. Read from
    // the right, through the trusted proxies, to the first hop none of them is.
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    for hop in lines.iter().flat_map(|line| line.split(',')).rev() {
        let Ok(hop) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    client
}

pub type PerIp = DefaultKeyedRateLimiter<IpAddr>;

fn per_minute<K: std::hash::Hash + Eq + Clone>(n: u32) -> DefaultKeyedRateLimiter<K> {
    let n = NonZeroU32::new(n).expect("validated at start-up");
    RateLimiter::keyed(Quota::per_minute(n))
}

/// Every rate limit, shared by the request handlers.
pub struct Limiters {
    pub webhooks: PerIp,
    pub actions: PerIp,
    pub audit: PerIp,
    pub operator: PerIp,
    pub operator_token: DefaultKeyedRateLimiter<String>,
    auth_failures: PerIp,
    /// Addresses refused until the instant, after too many failed authentications.
    auth_blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Limiters {
    pub fn new(http: &HttpConfig) -> Arc<Self> {
        Arc::new(Self {
            webhooks: per_minute(http.webhook_rate_per_minute),
            actions: per_minute(http.actions_rate_per_minute),
            audit: per_minute(http.audit_rate_per_minute),
            operator: per_minute(http.operator_rate_per_minute),
            operator_token: per_minute(http.operator_rate_per_minute),
            auth_failures: per_minute(http.auth_failures_per_minute),
            auth_blocked: Mutex::default(),
        })
    }

    /// Whether `ip` is refused for failing authentication too often.
    pub fn auth_blocked(&self, ip: &IpAddr) -> bool {
        self.auth_blocked
            .lock()
            .expect("limiter lock poisoned")
            .get(ip)
            .is_some_and(|until| *until > Instant::now())
    }

    /// Counts a failed authentication; past the limit, `ip` is refused for a minute.
    pub fn auth_failed(&self, ip: IpAddr) {
        if self.auth_failures.check_key(&ip).is_err() {
            tracing::warn!(%ip, "too many failed operator authentications; refusing this address for a minute");
            self.auth_blocked
                .lock()
                .expect("limiter lock poisoned")
                .insert(ip, Instant::now() + AUTH_BLOCK);
        }
    }

    /// Forgets idle buckets and expired blocks, so memory stays bounded.
    pub fn forget_idle(&self) {
        for limiter in [
            &self.webhooks,
            &self.actions,
            &self.audit,
            &self.operator,
            &self.auth_failures,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.operator_token.retain_recent();
        self.operator_token.shrink_to_fit();
        let now = Instant::now();
        self.auth_blocked
            .lock()
            .expect("limiter lock poisoned")
            .retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append("x-forwarded-for", line.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.9:4000".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let spoofed = headers(&["203.0.113.7, 198.51.100.1"]);
        assert_eq!(
            client_ip(&spoofed, stranger, &trusted),
            ip("198.51.100.9"),
            "a client that is not a proxy is the client, whatever it claims"
        );
        assert_eq!(client_ip(&spoofed, proxy, &trusted), ip("198.51.100.1"));
        assert_eq!(
            client_ip(&spoofed, proxy, &[]),
            ip("10.0.0.5"),
            "no proxy trusted"
        );
        // Two proxies: the inner one's address is skipped too.
        let chained = headers(&["203.0.113.7", "198.51.100.1, 10.0.0.9"]);
        assert_eq!(client_ip(&chained, proxy, &trusted), ip("198.51.100.1"));
        assert_eq!(
            client_ip(&headers(&["garbage"]), proxy, &trusted),
            ip("10.0.0.5"),
            "nothing usable: the proxy itself"
        );
    }
}
