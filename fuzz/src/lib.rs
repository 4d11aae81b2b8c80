//! What the fuzz targets and the seed generator share: the webhook input framing and the fixed
//! secrets and clock.
//!
//! A webhook input is a request as the handler sees it once hyper has parsed it: header lines
//! (`name: value`, one a line), an empty line, then the raw body, like an HTTP/1.1 message:
//!
//! ```text
//! webhook-id: msg_1
//! webhook-timestamp: 1767225600
//! webhook-signature: v1,K5oZ...
//!
//! {"tracking_number":"1Z999","carrier":"ups",...}
//! ```
//!
//! Input without an empty line is all body (an unsigned request). Lines that hyper would refuse
//! (an invalid header name or value) are dropped, as hyper refuses them before the handler.
use http::{HeaderMap, HeaderName, HeaderValue};

/// The webhook secret the relayer is configured with in the targets.
pub const SECRET: &[u8] = b"fuzz-webhook-secret-0123456789";
/// Another secret: nothing signed with it may verify against [`SECRET`].
pub const OTHER_SECRET: &[u8] = b"fuzz-other-secret-9876543210";
/// The relayer's clock during the fuzz run (2026-01-01T00:00:00Z): fixed, so that a crash found
/// once reproduces, and Standard Webhooks seeds stay inside the tolerance window.
pub const NOW: i64 = 1_767_225_600;

/// A decoded webhook input.
#[derive(Debug)]
pub struct WebhookInput<'a> {
    pub headers: HeaderMap,
    pub body: &'a [u8],
}

impl<'a> WebhookInput<'a> {
    pub fn decode(data: &'a [u8]) -> Self {
        let Some(split) = data.windows(2).position(|w| w == b"\n\n") else {
            return Self {
                headers: HeaderMap::new(),
                body: data,
            };
        };
        let mut headers = HeaderMap::new();
        for line in data[..split].split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            // httparse drops the optional whitespace around a value.
            let value = trim_ows(&line[colon + 1..]);
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_bytes(value),
            ) {
                // Repeated headers are kept in order; `HeaderMap::get` reads the first.
                headers.append(name, value);
            }
        }
        Self {
            headers,
            body: &data[split + 2..],
        }
    }
}

/// The bytes that [`WebhookInput::decode`] reads back as these headers (at least one) and body.
pub fn encode(headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    assert!(
        !headers.is_empty(),
        "with no header line the input is all body"
    );
    let mut out = Vec::new();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode() {
        let data = encode(
            &[("webhook-id", "msg_1"), ("X-Tracking-Signature", "ab")],
            b"{}\n\n",
        );
        let input = WebhookInput::decode(&data);
        assert_eq!(input.headers["webhook-id"], "msg_1");
        assert_eq!(input.headers["x-tracking-signature"], "ab");
        assert_eq!(input.body, b"{}\n\n");
        assert!(WebhookInput::decode(b"{}").headers.is_empty());
    }
}
