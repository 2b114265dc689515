//! A tower layer around the gRPC server that counts every request by
//! method and status code (`primacy_rpc_requests_total{method, code}`).
//!
//! The code is read where gRPC puts it: in the response headers for a
//! trailers-only answer (every error a handler returns, refusals before
//! decoding, unknown methods), else in the trailers after the body. A
//! response whose body is dropped before its trailers (the client went
//! away) counts as `CANCELLED`. Unknown paths share the method label
//! `unknown`, so a client sending random paths cannot grow the registry.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tonic::body::Body;

use super::RpcLabels;

/// The methods of `proto/primacy/rpc.proto`, as `Service/Method`.
const KNOWN_METHODS: &[&str] = &[
    "FileSystemMaster/Mutate",
    "FileSystemMaster/GetStatus",
    "FileSystemMaster/ListStatus",
    "WorkerMaster/RegisterWorker",
    "WorkerMaster/WorkerHeartbeat",
    "MetaMaster/GetMasterInfo",
    "MetaMaster/GetClusterInfo",
];

/// `Service/Method` for a known gRPC path (`/primacy.rpc.Service/Method`),
/// `unknown` for anything else.
pub fn method_label(path: &str) -> &'static str {
    path.strip_prefix("/primacy.rpc.")
        .and_then(|m| KNOWN_METHODS.iter().find(|k| **k == m))
        .copied()
        .unwrap_or("unknown")
}

/// The canonical name of a gRPC status code (`grpc-status` header value).
pub fn grpc_code_name(value: Option<&http::HeaderValue>) -> &'static str {
    let Some(v) = value else {
        return "UNKNOWN";
    };
    match tonic::Code::from_bytes(v.as_bytes()) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Wraps the gRPC server's routes in [`RpcMetrics`].
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    requests: Family<RpcLabels, Counter>,
}

impl RpcMetricsLayer {
    /// A layer counting into `requests`.
    pub fn new(requests: Family<RpcLabels, Counter>) -> Self {
        RpcMetricsLayer { requests }
    }
}

impl<S> tower_layer::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            requests: self.requests.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] makes: passes every request through and
/// counts its outcome.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
    requests: Family<RpcLabels, Counter>,
}

/// Counts one request once: at its status, or as CANCELLED when dropped
/// before one was seen.
struct Tally {
    requests: Family<RpcLabels, Counter>,
    method: &'static str,
    done: bool,
}

impl Tally {
    fn record(&mut self, code: &'static str) {
        if !self.done {
            self.done = true;
            self.requests
                .get_or_create(&RpcLabels {
                    method: self.method.to_string(),
                    code: code.to_string(),
                })
                .inc();
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.record("CANCELLED");
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> tower_service::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut tally = Tally {
            requests: self.requests.clone(),
            method: method_label(request.uri().path()),
            done: false,
        };
        // The clone that was polled ready serves this call; the fresh
        // clone stays for the next one (tower's usual pattern).
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        Box::pin(async move {
            let response = ready.call(request).await?;
            if let Some(code) = response.headers().get("grpc-status") {
                tally.record(grpc_code_name(Some(code)));
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = body.map_frame(move |frame| {
                if let Some(trailers) = frame.trailers_ref() {
                    tally.record(grpc_code_name(trailers.get("grpc-status")));
                }
                frame
            });
            Ok(http::Response::from_parts(parts, Body::new(body)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(
            method_label("/primacy.rpc.FileSystemMaster/Mutate"),
            "FileSystemMaster/Mutate"
        );
        assert_eq!(
            method_label("/primacy.rpc.FileSystemMaster/Nope"),
            "unknown"
        );
        assert_eq!(method_label("/x"), "unknown");
        assert_eq!(
            grpc_code_name(Some(&http::HeaderValue::from_static("14"))),
            "UNAVAILABLE"
        );
        assert_eq!(grpc_code_name(None), "UNKNOWN");
    }
}
