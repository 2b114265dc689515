//! The status server's routes and handlers.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{StatusCode, Uri};
use serde_json::{json, Value};

use super::{page, WebContext};
use crate::metrics;
use crate::rpc::wall_clock_ms;
use crate::status::health::{self, Want};
use crate::status::{cluster, json as status_json};

/// Every route; anything else is 404, a method other than GET/HEAD 405.
pub(super) fn router(ctx: Arc<WebContext>) -> Router {
    let router = Router::new()
        .route("/", get(overview))
        .route("/api/v1/master/info", get(info))
        .route("/api/v1/master/health", get(health))
        .route("/api/v1/master/state-digest", get(state_digest))
        .route("/metrics", get(metrics_text));
    #[cfg(feature = "failpoints")]
    let router = router.route("/api/v1/testing/failpoint", get(super::failpoints::set));
    router.fallback(not_found).with_state(ctx)
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (
        status,
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

pub(super) fn json_response(status: StatusCode, v: &Value) -> Response {
    respond(status, "application/json", format!("{v}\n"))
}

async fn overview(State(ctx): State<Arc<WebContext>>) -> Response {
    let html = match ctx.master() {
        Some(state) => {
            let view = cluster::gather(state).await;
            page::render(&view, wall_clock_ms())
        }
        None => page::starting(&ctx.address, ctx.start_time_ms, wall_clock_ms()),
    };
    respond(StatusCode::OK, "text/html; charset=utf-8", html)
}

async fn info(State(ctx): State<Arc<WebContext>>) -> Response {
    match ctx.master() {
        Some(state) => {
            let view = cluster::gather(state).await;
            json_response(StatusCode::OK, &status_json::cluster_json(&view))
        }
        None => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "error": "this master is starting: its journal is still opening",
                "address": ctx.address,
                "role": "STARTING",
            }),
        ),
    }
}

/// The applied sequence and a digest of the whole metadata state (tables,
/// sessions, counters), read so that the two belong together: masters with
/// the same sequence must have the same digest. O(state): meant for fault
/// campaigns and debugging, not for monitoring.
async fn state_digest(State(ctx): State<Arc<WebContext>>) -> Response {
    let Some(state) = ctx.master() else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "this master is starting", "address": ctx.address}),
        );
    };
    // Apply may run between reading the sequence and the state; retry
    // until the sequence did not move across the dump.
    for _ in 0..50 {
        let before = state.journal.status().last_applied;
        let dump = state.machine.read().canonical_dump();
        if state.journal.status().last_applied == before {
            return json_response(
                StatusCode::OK,
                &json!({
                    "address": ctx.address,
                    "last_applied": before,
                    "digest": format!("{:016x}", fnv1a64(dump.as_bytes())),
                    "bytes": dump.len(),
                }),
            );
        }
        tokio::task::yield_now().await;
    }
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "the state kept changing while it was read", "address": ctx.address}),
    )
}

/// FNV-1a, 64 bits: stable across processes and builds (std's hasher is
/// not promised to be), and enough to tell states apart in tests.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The `role` query parameter, if given (`?role=primary`).
fn role_query(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| *k == "role")
        .map(|(_, v)| v)
}

async fn health(State(ctx): State<Arc<WebContext>>, uri: Uri) -> Response {
    let want = match Want::parse(role_query(&uri)) {
        Ok(w) => w,
        Err(why) => return json_response(StatusCode::BAD_REQUEST, &json!({ "error": why })),
    };
    let verdict = health::check(ctx.master().map(Arc::as_ref), want).await;
    let code = if verdict.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, &status_json::health_json(&verdict))
}

async fn metrics_text(State(ctx): State<Arc<WebContext>>) -> Response {
    let state = ctx.master().map(Arc::as_ref);
    let lag = match state {
        Some(s) => health::lag_behind_primary(s).await.ok().map(|(_, l)| l),
        None => None,
    };
    let uptime = wall_clock_ms().saturating_sub(ctx.start_time_ms);
    respond(
        StatusCode::OK,
        metrics::CONTENT_TYPE,
        ctx.metrics.encode(state, lag, uptime),
    )
}

async fn not_found(uri: Uri) -> Response {
    // The path is echoed as text/plain only, never as HTML.
    let path: String = uri.path().chars().take(200).collect();
    respond(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        format!(
            "not found: {path}\nthis master serves /, /api/v1/master/info, \
             /api/v1/master/health and /metrics\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MasterMetrics;

    fn starting() -> Arc<WebContext> {
        Arc::new(WebContext::new(
            "m1:19998".into(),
            Arc::new(MasterMetrics::new()),
            wall_clock_ms(),
        ))
    }

    async fn body(r: Response) -> String {
        use http_body_util::BodyExt;
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Asked while the journal is still opening: the page says so, info
    /// and health are 503, metrics are served.
    #[tokio::test]
    async fn a_starting_master_answers_every_route() {
        let r = overview(State(starting())).await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = body(r).await;
        assert!(
            html.contains("STARTING") && html.contains("m1:19998"),
            "{html}"
        );

        let r = info(State(starting())).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let v: Value = serde_json::from_str(&body(r).await).expect("json");
        assert_eq!(v["role"], "STARTING");

        let uri: Uri = "/api/v1/master/health".parse().expect("uri");
        let r = health(State(starting()), uri).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let v: Value = serde_json::from_str(&body(r).await).expect("json");
        assert_eq!(
            (v["healthy"].as_bool(), v["role"].as_str()),
            (Some(false), Some("STARTING"))
        );

        let uri: Uri = "/api/v1/master/health?role=boss".parse().expect("uri");
        assert_eq!(
            health(State(starting()), uri).await.status(),
            StatusCode::BAD_REQUEST
        );

        let r = metrics_text(State(starting())).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(body(r).await.contains("primacy_master_uptime_seconds"));
    }

    #[test]
    fn the_role_query_is_found_among_others() {
        let uri: Uri = "/api/v1/master/health?x=1&role=primary"
            .parse()
            .expect("uri");
        assert_eq!(role_query(&uri), Some("primary"));
        let uri: Uri = "/api/v1/master/health?role".parse().expect("uri");
        assert_eq!(role_query(&uri), Some(""));
        let uri: Uri = "/api/v1/master/health".parse().expect("uri");
        assert_eq!(role_query(&uri), None);
    }
}
