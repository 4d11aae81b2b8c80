//! Operator API authentication: `Authorization: Bearer <JWT>`, HS256, signed with
//! `ACCESS_JWT_SECRET` (or, during rotation, `ACCESS_JWT_SECRET_PREVIOUS`), `exp` required.
//! Every failure is the same 401, so a caller learns nothing about what exists.
use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{error::ApiError, state::AppState, tls::Peer};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Who is calling, for the logs.
    pub sub: String,
    pub exp: u64,
}

/// An authenticated operator.
pub struct Operator(pub String);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mtls = state
            .config
            .http
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca_file.is_some());
        if mtls {
            let certified = parts
                .extensions
                .get::<axum::extract::ConnectInfo<Peer>>()
                .is_some_and(|c| c.0.client_certified);
            if !certified {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "client certificate required",
                ));
            }
        }
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // No grace period: the library's default 60 s would accept a token a minute after it
        // expired. Token issuers and this server keep NTP time.
        validation.leeway = 0;
        let secrets = state.secrets();
        std::iter::once(&secrets.jwt)
            .chain(secrets.jwt_previous.as_ref())
            .find_map(|secret| {
                decode::<Claims>(
                    token,
                    &DecodingKey::from_secret(secret.expose()),
                    &validation,
                )
                .ok()
            })
            .map(|data| Operator(data.claims.sub))
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Issues an operator token (`relayer token`): HS256 over `sub` and `exp = now + ttl_secs`.
pub fn issue(secret: &[u8], subject: &str, ttl_secs: i64) -> String {
    let exp = chrono::Utc::now()
        .timestamp()
        .saturating_add(ttl_secs)
        .max(0) as u64;
    let claims = Claims {
        sub: subject.to_owned(),
        exp,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing cannot fail")
}
