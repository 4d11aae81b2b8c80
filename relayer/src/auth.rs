//! Operator API authentication: `Authorization: Bearer <JWT>`, HS256, signed with
//! `ACCESS_JWT_SECRET` (or, during rotation, `ACCESS_JWT_SECRET_PREVIOUS`).
//!
//! A token must name its subject (`sub`, not empty), its id (`jti`, checked against the deny list
//! in Postgres on every request), `iss` and `aud` as configured, when it was issued (`iat`, not
//! in the future) and when it expires (`exp`, no grace period), live at most
//! `ACCESS_JWT_MAX_TTL_SECS`, and not be used before its `nbf`. Every failure is the same 401, so
//! a caller learns nothing about what exists; an address failing too often is refused (429) for
//! a minute, and every token has its own rate limit.
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{request::Parts, StatusCode},
};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{config::TokenConfig, error::ApiError, state::AppState, tls::Peer};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Who is calling, for the logs.
    pub sub: String,
    /// The token's id, for revocation.
    pub jti: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// An authenticated operator: the token's subject.
pub struct Operator(pub String);

/// Verifies `token` against the secrets and the token rules; `None` when it fails any of them.
/// `check_expiry: false` reads a token that may have expired (to revoke it).
pub fn verify(
    token: &str,
    secrets: &[&[u8]],
    rules: &TokenConfig,
    now: u64,
    check_expiry: bool,
) -> Option<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    validation.set_issuer(&[&rules.issuer]);
    validation.set_audience(&[&rules.audience]);
    validation.validate_nbf = true;
    validation.validate_exp = check_expiry;
    // No grace period: the library's default 60 s would accept a token a minute after it
    // expired, or a minute before its `nbf`. Token issuers and this server keep NTP time.
    validation.leeway = 0;
    let claims = secrets.iter().find_map(|secret| {
        decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .ok()
            .map(|d| d.claims)
    })?;
    let lifetime = claims.exp.checked_sub(claims.iat)?;
    let sane = claims.iat <= now
        && lifetime <= rules.max_ttl.as_secs()
        && !claims.sub.trim().is_empty()
        && !claims.jti.is_empty()
        && !claims
            .sub
            .chars()
            .chain(claims.jti.chars())
            .any(char::is_control);
    sane.then_some(claims)
}

/// Whether the token with this id was revoked (`relayer token revoke`).
pub async fn revoked(pool: &PgPool, jti: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)")
        .bind(jti)
        .fetch_one(pool)
        .await
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|c| c.0)
            .ok_or_else(ApiError::unauthorized)?;
        let ip = state.client_ip(&parts.headers, peer.addr);
        if state.limits.auth_blocked(&ip) {
            return Err(too_many());
        }
        let mtls = state
            .config
            .http
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca_file.is_some());
        if mtls && !peer.client_certified {
            state.limits.auth_failed(ip);
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "client certificate required",
            ));
        }
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let secrets = state.secrets();
        let keys: Vec<&[u8]> = std::iter::once(&secrets.jwt)
            .chain(secrets.jwt_previous.as_ref())
            .map(|s| s.expose())
            .collect();
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = token.and_then(|t| verify(t, &keys, &state.config.tokens, now, true));
        let Some(claims) = claims else {
            state.limits.auth_failed(ip);
            return Err(ApiError::unauthorized());
        };
        if revoked(&state.pool, &claims.jti).await? {
            state.limits.auth_failed(ip);
            return Err(ApiError::unauthorized());
        }
        if state.limits.operator_token.check_key(&claims.jti).is_err() {
            return Err(too_many());
        }
        Ok(Operator(claims.sub))
    }
}

fn too_many() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests, try again in a minute",
    )
}

/// A new operator token (`relayer token issue`): HS256 over `sub`, a random `jti`, the
/// configured `iss` and `aud`, `iat = now` and `exp = now + ttl_secs`.
pub fn issue(secret: &[u8], rules: &TokenConfig, subject: &str, ttl_secs: u64) -> (String, Claims) {
    let iat = chrono::Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        sub: subject.to_owned(),
        jti: uuid::Uuid::new_v4().to_string(),
        iss: rules.issuer.clone(),
        aud: rules.audience.clone(),
        iat,
        exp: iat.saturating_add(ttl_secs),
        nbf: None,
    };
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing cannot fail");
    (token, claims)
}
