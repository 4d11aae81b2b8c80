//! The deal page for buyers and sellers: `GET /deals/{offer}` (HTML), the same view as JSON at
//! `GET /api/deals/{offer}` for the page's script to refresh, and the script and style.
//!
//! The HTML carries every fact, escaped, so it reads without JavaScript. The script
//! (clients/ts/page, built by scripts/page.sh, served from `PAGE_SCRIPT`) adds the relayer's
//! audit entries to the timeline, checks them and the signed checkpoint in the browser, counts
//! down the dispute window, and connects a Wallet Standard wallet to sign what the Actions
//! build. The page's policy allows only this origin's script and style, and no inline script.
use std::fmt::Write;

use axum::{
    extract::{Path, State},
    http::{header, HeaderValue, StatusCode},
    middleware,
    response::{Html, IntoResponse, Response},
    routing::get,
    Json, Router,
};
use uuid::Uuid;

use crate::{
    deal_page::{self, ClusterView, DealView},
    domain::offer::Offer,
    error::ApiError,
    offers,
    state::AppState,
};

/// Only this origin's script and style; images from here or inline (`data:`, as Wallet Standard
/// wallets give their icons); requests only to this origin (wallets send their transactions
/// themselves). Explorer links are navigations, which this does not restrict.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const STYLE: &str = include_str!("../../assets/deal.css");

pub fn router(state: AppState) -> Router<AppState> {
    let limited = Router::new()
        .route("/deals/{offer}", get(page))
        .route("/api/deals/{offer}", get(view))
        .layer(middleware::from_fn_with_state(
            state,
            crate::routes::per_ip_actions,
        ));
    Router::new()
        .route("/deals/assets/deal.js", get(script))
        .route("/deals/assets/deal.css", get(style))
        .merge(limited)
}

async fn find(app: &AppState, id: &str) -> Result<Option<Offer>, ApiError> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Ok(None);
    };
    Ok(offers::get(&app.pool, id).await?)
}

async fn deal_view(app: &AppState, offer: &Offer) -> DealView {
    let cluster = ClusterView::new(
        crate::routes::blinks::blockchain_id(app).await.as_deref(),
        app.config.http.explorer_tx_url.as_deref(),
    );
    deal_page::view(
        app.chain.as_deref(),
        offer,
        app.config.relayer_address,
        cluster,
    )
    .await
}

async fn view(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DealView>, ApiError> {
    let offer = find(&app, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("deal"))?;
    Ok(Json(deal_view(&app, &offer).await))
}

async fn page(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let (status, body) = match find(&app, &id).await {
        Ok(Some(offer)) => {
            let view = deal_view(&app, &offer).await;
            (StatusCode::OK, render(&view, app.page_script.is_some()))
        }
        // Not echoed: the id is whatever the visitor typed.
        Ok(None) => (
            StatusCode::NOT_FOUND,
            shell(
                "No such deal",
                "<h1>No such deal</h1><p>This link names no deal of this relayer. Check the link \
                 you were given.</p>",
                false,
            ),
        ),
        Err(e) => (
            e.status,
            shell(
                "Unavailable",
                "<h1>Unavailable</h1><p>The relayer cannot read its records right now; try again \
                 in a minute.</p>",
                false,
            ),
        ),
    };
    with_policy((status, Html(body)).into_response())
}

async fn script(State(app): State<AppState>) -> Response {
    match &app.page_script {
        Some(bytes) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            bytes.clone(),
        )
            .into_response(),
        None => ApiError::not_found("the page script (PAGE_SCRIPT is not set)").into_response(),
    }
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

fn with_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

/// Text for HTML content and attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn shell(title: &str, main: &str, with_script: bool) -> String {
    let script = if with_script {
        r#"<script type="module" src="/deals/assets/deal.js"></script>"#
    } else {
        ""
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"icon\" href=\"/actions/icon.svg\">\
         <link rel=\"stylesheet\" href=\"/deals/assets/deal.css\">{script}\
         </head><body><main>{main}</main></body></html>\n",
        escape(title)
    )
}

fn render(v: &DealView, with_script: bool) -> String {
    let e = escape;
    let mut m = String::new();
    let _ = write!(
        m,
        "<div id=\"deal\" data-offer=\"{}\"><h1>Escrow for a purchase</h1>\
         <p class=\"lede\">{} from the buyer to the seller, held on-chain by the escrow program \
         until the shipment is delivered, or returned to the buyer if it is not.</p>",
        e(&v.offer.to_string()),
        e(&v.amount_text)
    );
    let _ = write!(
        m,
        "<section aria-labelledby=\"now-h\"><h2 id=\"now-h\">Now</h2>\
         <p id=\"state\" aria-live=\"polite\">{}</p><p id=\"countdown\" aria-live=\"off\"></p>\
         <p id=\"refresh\" class=\"warn\"></p>",
        e(&v.state_text)
    );
    m.push_str("</section>");
    let _ = write!(
        m,
        "<section aria-labelledby=\"deal-h\"><h2 id=\"deal-h\">The deal</h2><dl>\
         <dt>Amount</dt><dd>{}</dd><dt>Token mint</dt><dd class=\"addr\">{}</dd>\
         <dt>Seller</dt><dd class=\"addr\">{}</dd><dt>Buyer</dt><dd class=\"addr\">{}</dd>\
         <dt>Escrow account</dt><dd class=\"addr\">{}</dd><dt>Carrier</dt><dd>{}</dd>\
         <dt>Shipment</dt><dd id=\"shipment\">{}</dd></dl>",
        e(&v.amount_text),
        e(&v.mint),
        e(&v.seller),
        e(&v.buyer),
        e(&v.escrow),
        e(&v.carrier),
        e(&v.shipment.replace('_', " ")),
    );
    match &v.policy {
        Some(p) => {
            let _ = write!(
                m,
                "<h3>Who decides</h3><p>{}</p><ul class=\"approvers\">",
                e(&p.text)
            );
            for a in &p.approvers {
                let _ = write!(
                    m,
                    "<li><span class=\"role\">{}</span> <span class=\"addr\">{}</span></li>",
                    e(a.role),
                    e(&a.address)
                );
            }
            m.push_str("</ul>");
        }
        None => {
            let _ = write!(m, "<p>No escrow terms: {}.</p>", e(crate::blinks::NO_TERMS));
        }
    }
    m.push_str("</section>");
    m.push_str(
        "<section aria-labelledby=\"wallet-h\"><h2 id=\"wallet-h\">Your wallet</h2>\
         <div id=\"wallet\"><noscript>Connecting a wallet needs JavaScript; a wallet that opens \
         Solana Actions can use this deal's Action links instead.</noscript></div></section>",
    );
    m.push_str(
        "<section aria-labelledby=\"timeline-h\"><h2 id=\"timeline-h\">Timeline</h2>\
         <h3>On-chain</h3><ol id=\"chain-events\">",
    );
    for ev in &v.events {
        m.push_str(&event_item(ev, &v.cluster));
    }
    if v.events.is_empty() {
        m.push_str("<li class=\"empty\">Nothing on-chain yet.</li>");
    }
    m.push_str(
        "</ol><h3>The relayer's record</h3><ol id=\"audit-events\"></ol></section>\
         <section aria-labelledby=\"verify-h\"><h2 id=\"verify-h\">Check the relayer's record</h2>\
         <p id=\"verify\">The relayer's audit log is hash-chained and signed with its key; this \
         page checks it in your browser.</p></section></div>",
    );
    shell("Escrow deal", &m, with_script)
}

fn event_item(ev: &deal_page::ChainEvent, cluster: &ClusterView) -> String {
    let link = match &cluster.explorer_tx {
        Some(template) => format!(
            "<a href=\"{}\" rel=\"noopener noreferrer\">transaction</a>",
            escape(&template.replace("{signature}", &ev.signature))
        ),
        None => format!(
            "<span class=\"sig\" title=\"transaction signature\">{}</span>",
            escape(&ev.signature)
        ),
    };
    format!(
        "<li data-kind=\"{}\">{} · {link}</li>",
        escape(ev.kind),
        escape(&ev.text)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_leaves_no_markup_and_no_way_out_of_an_attribute() {
        assert_eq!(
            super::escape(r#"<a href="x" onclick='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(super::escape("plain, ünïcode"), "plain, ünïcode");
    }
}
