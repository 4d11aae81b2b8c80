//! What every response carries, and what every request may not: security headers from the relayer
//! itself (not only from a proxy in front), and no `Content-Encoding` (the signed body must be the
//! body; a compressed one could also be a decompression bomb).
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

/// `https`: the relayer terminates TLS itself, so browsers are told to stay on HTTPS.
pub async fn security(State(https): State<bool>, request: Request, next: Next) -> Response {
    let encoded = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let mut response = if encoded {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Encoding is not accepted: send the body uncompressed",
        )
        .into_response()
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    // JSON and one SVG icon: nothing may script, frame or embed them. A page sets its own.
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    );
    set(h, header::CACHE_CONTROL, "no-store");
    if https {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}
