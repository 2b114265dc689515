//! `GET /api/v1/testing/failpoint?name=N&action=A`: arms (or with
//! `action=off` disarms) a journal failpoint at run time. Compiled only in
//! failpoints builds (`--features failpoints`), for fault campaigns that
//! must hit the serving primary without restarting it; production builds
//! have no such route (it is a 404 there).

use axum::response::Response;
use http::{StatusCode, Uri};
use serde_json::json;

use super::routes::json_response;

/// The longest name or action accepted, in bytes.
const MAX_LEN: usize = 200;

fn query<'a>(uri: &'a Uri, key: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Arms or disarms the failpoint the query names.
pub(super) async fn set(uri: Uri) -> Response {
    let (Some(name), Some(action)) = (query(&uri, "name"), query(&uri, "action")) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "expected ?name=<failpoint>&action=<fail action or off>"}),
        );
    };
    if name.len() > MAX_LEN || action.len() > MAX_LEN {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "name or action too long"}),
        );
    }
    let outcome = if action == "off" {
        fail::remove(name);
        Ok(())
    } else {
        fail::cfg(name, action)
    };
    match outcome {
        Ok(()) => {
            tracing::warn!(failpoint = name, action, "failpoint set");
            json_response(StatusCode::OK, &json!({"name": name, "action": action}))
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e})),
    }
}
