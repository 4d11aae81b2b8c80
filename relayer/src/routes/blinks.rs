//! The Solana Actions HTTP surface (Actions spec 2.4): `GET /actions.json`, and for each action
//! `GET` (what it does), `POST {"account"}` (the unsigned transaction) and `OPTIONS` (CORS).
//! These routes are public: they reveal an offer's parties and terms to whoever holds its id,
//! and hand out only transactions that the asking wallet must still sign itself.
use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    blinks::{self, ActionError, ActionKind},
    domain::offer::Offer,
    error::ApiError,
    offers,
    routes::strict_json::StrictJson,
    state::AppState,
};

/// The spec version these responses follow.
const ACTION_VERSION: &str = "2.4";

const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#14213d"/><path d="M18 28h28v20H18z" fill="#fca311"/><path d="M24 28v-6a8 8 0 0 1 16 0v6" fill="none" stroke="#fca311" stroke-width="4"/></svg>"##;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/actions.json", get(rules).options(preflight))
        .route(
            "/api/actions/{kind}/{offer}",
            get(describe).post(transaction).options(preflight),
        )
        .route("/actions/icon.svg", get(icon))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::routes::per_ip_actions,
        ))
        .layer(middleware::map_response_with_state(state, headers))
}

/// An Actions error: status and the spec's `{"message"}` body.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "message": self.1 }))).into_response()
    }
}

impl From<ActionError> for Refusal {
    fn from(e: ActionError) -> Self {
        let status = match e {
            ActionError::Refused(_) => StatusCode::BAD_REQUEST,
            ActionError::Unavailable(ref cause) => {
                tracing::warn!(error = %cause, "action: chain unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        Self(status, e.to_string())
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        let api = crate::error::ApiError::from(e);
        Self(api.status, api.message)
    }
}

fn bad_request(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.into())
}

/// The spec's CORS and version headers, on every Actions response including errors.
async fn headers(State(app): State<AppState>, mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, "access-control-allow-origin", "*");
    set(h, "access-control-allow-methods", "GET,POST,PUT,OPTIONS");
    set(
        h,
        "access-control-allow-headers",
        "Content-Type, Authorization, Content-Encoding, Accept-Encoding, X-Action-Version, X-Blockchain-Ids",
    );
    set(
        h,
        "access-control-expose-headers",
        "X-Action-Version, X-Blockchain-Ids",
    );
    set(h, "x-action-version", ACTION_VERSION);
    if let Some(id) = blockchain_id(&app).await {
        if let Ok(v) = HeaderValue::from_str(&id) {
            h.insert("x-blockchain-ids", v);
        }
    }
    response
}

/// CAIP-2 id of the configured chain: `solana:` and the first 32 characters of its genesis hash.
pub(crate) async fn blockchain_id(app: &AppState) -> Option<String> {
    let chain = app.chain.as_ref()?;
    app.blockchain_id
        .get_or_try_init(|| async {
            let hash = chain.genesis_hash().await?.to_string();
            Ok::<_, crate::chain::ChainError>(format!("solana:{}", &hash[..hash.len().min(32)]))
        })
        .await
        .ok()
        .cloned()
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn rules() -> Json<Value> {
    Json(json!({
        "rules": [{ "pathPattern": "/api/actions/**", "apiPath": "/api/actions/**" }]
    }))
}

async fn icon() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml")], ICON)
}

async fn offer(app: &AppState, id: &str) -> Result<Offer, Refusal> {
    // Not echoed: the id is whatever the client put in the path.
    let unknown = || bad_request("unknown offer: the link names no offer of this relayer");
    let id: Uuid = id.parse().map_err(|_| unknown())?;
    offers::get(&app.pool, id).await?.ok_or_else(unknown)
}

async fn describe(
    State(app): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<Value>, Refusal> {
    let kind: ActionKind = kind.parse().map_err(Refusal::from)?;
    let offer = offer(&app, &id).await?;
    let meta = blinks::describe(app.chain.as_deref(), &offer, kind).await?;
    let href = format!("/api/actions/{}/{}", kind.as_str(), offer.id);
    let mut body = json!({
        "type": "action",
        "icon": format!("{}/actions/icon.svg", app.public_url),
        "title": meta.title,
        "description": meta.description,
        "label": meta.label,
        "links": { "actions": [{ "type": "transaction", "label": meta.label, "href": href }] },
    });
    if let Some(reason) = meta.closed {
        body["disabled"] = json!(true);
        body["error"] = json!({ "message": reason });
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct ActionPost {
    account: String,
}

async fn transaction(
    State(app): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    body: Result<StrictJson<ActionPost>, ApiError>,
) -> Result<Json<Value>, Refusal> {
    let result = async {
        let kind: ActionKind = kind.parse().map_err(Refusal::from)?;
        let StrictJson(body) = body.map_err(|e| match e.status {
            StatusCode::PAYLOAD_TOO_LARGE => Refusal(e.status, e.message),
            _ => bad_request(r#"the body must be {"account": "<your wallet address>"}"#),
        })?;
        let account = body
            .account
            .parse()
            .map_err(|_| bad_request("account is not a valid base58 address"))?;
        let offer = offer(&app, &id).await?;
        let chain = app.chain.as_deref().ok_or_else(|| {
            Refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "this relayer has no chain configured (CLUSTER), so it cannot build transactions"
                    .into(),
            )
        })?;
        let (tx, message) = blinks::build(chain, &offer, kind, account).await?;
        let bytes = bincode::serialize(&tx).map_err(|e| {
            tracing::warn!(error = %e, "cannot serialize an action transaction");
            Refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        })?;
        tracing::info!(action = kind.as_str(), offer_id = %offer.id, %account, "action built");
        Ok::<_, Refusal>((bytes, message))
    }
    .await;
    let kind_label = kind
        .parse::<ActionKind>()
        .map_or("unknown", ActionKind::as_str);
    let outcome = if result.is_ok() { "built" } else { "refused" };
    app.metrics
        .actions
        .with_label_values(&[kind_label, outcome])
        .inc();
    let (bytes, message) = result?;
    Ok(Json(json!({
        "type": "transaction",
        "transaction": base64::engine::general_purpose::STANDARD.encode(bytes),
        "message": message,
    })))
}
