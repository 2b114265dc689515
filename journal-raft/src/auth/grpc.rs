//! The tonic glue: a client interceptor that attaches a token to every
//! request, and a server interceptor that refuses requests without a valid
//! one before any handler runs.

use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::limiter::LogLimiter;
use super::secret::{ClusterSecret, SECRET_ENV};
use super::token::{self, CheckError, Realm, Verifier, METADATA_KEY};
use super::{KEY_PEER_AUTH, KEY_RPC_AUTH, KEY_SECRET_FILE};

/// A channel whose every request carries this process's credentials (none
/// when no secret is configured).
pub type AuthChannel = InterceptedService<Channel, ClientAuth>;

/// The client side: attaches a fresh token for its realm to every request
/// when a secret is set, and nothing otherwise.
#[derive(Clone)]
pub struct ClientAuth {
    secret: Option<Arc<ClusterSecret>>,
    realm: Realm,
}

impl Default for ClientAuth {
    /// No credentials (RPC realm).
    fn default() -> Self {
        ClientAuth {
            secret: None,
            realm: Realm::Rpc,
        }
    }
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("realm", &self.realm)
            .field("secret", &self.secret.as_ref().map(|s| s.source()))
            .finish()
    }
}

impl PartialEq for ClientAuth {
    /// Equal when both send nothing, or both send the same secret's tokens
    /// to the same realm.
    fn eq(&self, other: &Self) -> bool {
        self.realm == other.realm
            && match (&self.secret, &other.secret) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a.mac_eq(b),
                _ => false,
            }
    }
}

impl Eq for ClientAuth {}

impl ClientAuth {
    /// Credentials for `realm` made with `secret` (none when `None`).
    pub fn new(secret: Option<Arc<ClusterSecret>>, realm: Realm) -> Self {
        ClientAuth { secret, realm }
    }

    /// True when requests carry a token.
    pub fn is_set(&self) -> bool {
        self.secret.is_some()
    }

    /// `channel` with these credentials on every request.
    pub fn wrap(&self, channel: Channel) -> AuthChannel {
        InterceptedService::new(channel, self.clone())
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(secret) = &self.secret {
            let value = MetadataValue::try_from(token::make(secret, self.realm))
                .map_err(|e| Status::internal(format!("cannot attach credentials: {e}")))?;
            request.metadata_mut().insert(METADATA_KEY, value);
        }
        Ok(request)
    }
}

/// The server side: with a verifier, refuses every request whose token does
/// not pass [`Verifier::check`] with UNAUTHENTICATED, and logs the refusal
/// (at most one line per 10 s, with the count of refusals not logged);
/// without one, lets everything through.
#[derive(Clone)]
pub struct ServerAuth {
    verifier: Option<Arc<Verifier>>,
    limiter: Arc<LogLimiter>,
}

impl std::fmt::Debug for ServerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAuth")
            .field("realm", &self.verifier.as_ref().map(|v| v.realm()))
            .finish()
    }
}

/// How often a refusal is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl ServerAuth {
    /// Requires `realm` tokens made with `secret` when `Some`; lets every
    /// request through when `None`.
    pub fn new(secret: Option<ClusterSecret>, realm: Realm) -> Self {
        ServerAuth {
            verifier: secret.map(|s| Arc::new(Verifier::new(s, realm))),
            limiter: Arc::new(LogLimiter::new(LOG_EVERY)),
        }
    }

    /// True when requests are checked.
    pub fn is_required(&self) -> bool {
        self.verifier.is_some()
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(verifier) = &self.verifier else {
            return Ok(request);
        };
        let token = request
            .metadata()
            .get(METADATA_KEY)
            .and_then(|v| v.to_str().ok());
        match verifier.check(token) {
            Ok(()) => Ok(request),
            Err(CheckError::Busy) => Err(Status::unavailable(CheckError::Busy.reason())),
            Err(CheckError::Refused(reason)) => {
                let (port, key) = match verifier.realm() {
                    Realm::Peer => ("this member's embedded-journal peer port", KEY_PEER_AUTH),
                    Realm::Rpc => ("this master's RPC port", KEY_RPC_AUTH),
                };
                if let Some(suppressed) = self.limiter.allow() {
                    tracing::warn!(
                        remote = ?request.remote_addr(),
                        realm = verifier.realm().as_str(),
                        %reason,
                        suppressed,
                        "refused an unauthenticated request on {port} ({key}=true); \
                         it changed nothing"
                    );
                }
                Err(Status::unauthenticated(format!(
                    "{port} requires authentication ({key}=true): {reason}; \
                     set {KEY_SECRET_FILE} (or {SECRET_ENV}) to this cluster's secret"
                )))
            }
        }
    }
}

/// The server's explanation when `status` is an authentication refusal.
pub fn refusal_reason(status: &Status) -> Option<&str> {
    (status.code() == Code::Unauthenticated).then(|| status.message())
}
