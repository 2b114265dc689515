//! The retry loop every call goes through: find the primary, send, follow a
//! standby's redirect at once, back off on transient failures, give up after
//! `alluxio.user.rpc.retry.max.duration` with everything that was tried.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use journal_raft::auth::{AuthChannel, ClientAuth};
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status};

use crate::config::RetrySettings;
use crate::proto::rpc::meta_master_client::MetaMasterClient;
use crate::proto::rpc::{GetMasterInfoRequest, MasterInfo};

use super::discovery::Discovery;
use super::error::ClientError;
use super::retry::{backoff, classify, RetryStats, Verdict};

/// The role string a primary reports in `MasterInfo.role`.
pub(crate) const ROLE_PRIMARY: &str = "PRIMARY";

/// State shared by every clone of one `MasterClient`.
pub(crate) struct Inner {
    pub(crate) discovery: Discovery,
    pub(crate) retry: RetrySettings,
    pub(crate) connect_timeout: Duration,
    /// The id of this client's first session (see `idle`).
    pub(crate) client_id: [u8; 16],
    /// Sessions no mutation is using. A session is a client id with the
    /// seq its next request takes; every retry of a request carries the
    /// same pair, so it is applied once. The state machine keeps only the
    /// last applied seq per client id and refuses a lower one
    /// (STALE_REQUEST, docs/metadata.md), so one id must never have two
    /// requests outstanding: concurrent mutations (clones used from several
    /// tasks) each take their own session, a new random id when none is
    /// idle. Sequential use keeps to the first session.
    idle: Mutex<Vec<Session>>,
    /// The primary as last seen; `None` until found, and after a failure.
    primary: Mutex<Option<String>>,
    channels: Mutex<HashMap<String, AuthChannel>>,
    /// The credentials every request carries.
    credentials: ClientAuth,
    /// The last master that refused this client's credentials while the
    /// primary was looked for: retrying cannot fix that, so the call fails
    /// with its explanation instead of waiting out the retry duration.
    auth_refusal: Mutex<Option<(String, Status)>>,
    /// Calls that needed more than one attempt, and the extra attempts.
    retried_calls: AtomicU64,
    retries: AtomicU64,
}

/// A client id and the seq its next request takes.
#[derive(Debug, Clone, Copy)]
struct Session {
    id: [u8; 16],
    next_seq: u64,
}

/// A session checked out for one mutation; returned, with the seq
/// advanced, when dropped (the call finished, failed or was abandoned:
/// an abandoned request that still arrives later is refused as stale).
pub(crate) struct SessionGuard<'a> {
    inner: &'a Inner,
    session: Session,
}

impl SessionGuard<'_> {
    /// The client id this mutation is sent with.
    pub(crate) fn client_id(&self) -> [u8; 16] {
        self.session.id
    }

    /// The request seq this mutation (and every retry of it) carries.
    pub(crate) fn seq(&self) -> u64 {
        self.session.next_seq
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        let next = Session {
            id: self.session.id,
            next_seq: self.session.next_seq + 1,
        };
        lock(&self.inner.idle).push(next);
    }
}

/// Per-call record of what was tried, in first-tried order, with the last
/// failure of each.
#[derive(Default)]
struct Tried(Vec<(String, String)>);

impl Tried {
    fn note(&mut self, what: &str, failure: String) {
        tracing::debug!(target_addr = what, %failure, "attempt failed");
        match self.0.iter_mut().find(|(w, _)| w == what) {
            Some(entry) => entry.1 = failure,
            None => self.0.push((what.to_string(), failure)),
        }
    }
    fn into_list(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(w, f)| format!("{w}: {f}"))
            .collect()
    }
}

// A mutex here guards a map or an address for a few instructions; a poisoned
// one (a panic elsewhere) still holds consistent data, so recover it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Describes an error with its source chain (shared with the journals).
pub(crate) use journal_core::error::error_chain as chain;

fn describe_status(status: &Status) -> String {
    let msg = if std::error::Error::source(status).is_some() {
        chain(status)
    } else {
        status.message().to_string()
    };
    format!("{:?}: {msg}", status.code())
}

impl Inner {
    pub(crate) fn new(
        discovery: Discovery,
        retry: RetrySettings,
        connect_timeout: Duration,
        client_id: [u8; 16],
        credentials: ClientAuth,
    ) -> Inner {
        Inner {
            discovery,
            retry,
            connect_timeout,
            client_id,
            idle: Mutex::new(vec![Session {
                id: client_id,
                next_seq: 1,
            }]),
            primary: Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
            credentials,
            auth_refusal: Mutex::new(None),
            retried_calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// Checks out an idle session, or starts one with a new random id when
    /// every session has a mutation outstanding.
    pub(crate) fn take_session(&self) -> SessionGuard<'_> {
        let idle = lock(&self.idle).pop();
        let session = idle.unwrap_or_else(|| Session {
            id: *uuid::Uuid::new_v4().as_bytes(),
            next_seq: 1,
        });
        SessionGuard {
            inner: self,
            session,
        }
    }

    /// The retry counters so far (relaxed reads: each counter is exact, the
    /// pair is not a snapshot of one instant).
    pub(crate) fn retry_stats(&self) -> RetryStats {
        RetryStats {
            retried_calls: self.retried_calls.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    /// Counts one more attempt of a call; `first_retry` when it is the
    /// call's first one, so the call is counted once.
    fn note_retry(&self, first_retry: bool) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        if first_retry {
            self.retried_calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn cached_primary(&self) -> Option<String> {
        lock(&self.primary).clone()
    }

    fn set_primary(&self, addr: Option<String>) {
        *lock(&self.primary) = addr;
    }

    /// A connected channel to `addr`, cached per address. Connecting is
    /// bounded by the connect timeout and by `remaining`.
    pub(crate) async fn channel(
        &self,
        addr: &str,
        remaining: Duration,
    ) -> Result<AuthChannel, String> {
        if let Some(ch) = lock(&self.channels).get(addr) {
            return Ok(ch.clone());
        }
        let limit = self
            .connect_timeout
            .min(remaining)
            .max(Duration::from_millis(1));
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("not a usable address: {}", chain(&e)))?
            .connect_timeout(limit);
        let ch = match tokio::time::timeout(limit, endpoint.connect()).await {
            Err(_) => return Err(format!("connect timed out after {limit:?}")),
            Ok(Err(e)) => return Err(format!("cannot connect: {}", chain(&e))),
            Ok(Ok(ch)) => self.credentials.wrap(ch),
        };
        lock(&self.channels).insert(addr.to_string(), ch.clone());
        Ok(ch)
    }

    /// Drops the cached channel to `addr`, so the next call reconnects
    /// instead of reusing a connection that just failed.
    fn forget(&self, addr: &str) {
        lock(&self.channels).remove(addr);
    }

    /// Runs `attempt` against the primary until it answers, a non-retryable
    /// error occurs, or the retry duration is spent. Returns the address that
    /// answered with the answer. `attempt` is called once per try and must
    /// send the same request each time (mutations carry a fixed request id).
    pub(crate) async fn call<T, F, Fut>(
        &self,
        op: &str,
        mut attempt: F,
    ) -> Result<(String, T), ClientError>
    where
        F: FnMut(AuthChannel) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let start = Instant::now();
        let deadline = start + self.retry.max_duration;
        let mut tried = Tried::default();
        let mut failures: u32 = 0;
        let mut redirects: usize = 0;
        let mut retried = false;
        // Enough to walk every known master plus a stale hint or two; a
        // longer chain means the masters disagree, so back off instead.
        let max_redirects = self.discovery.masters().len() + 3;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClientError::Unreachable {
                    op: op.to_string(),
                    elapsed: start.elapsed(),
                    tried: tried.into_list(),
                });
            }
            let target = match self.cached_primary() {
                Some(a) => Some(a),
                None => self.locate(remaining, &mut tried).await,
            };
            if target.is_none() {
                if let Some((addr, status)) = lock(&self.auth_refusal).take() {
                    return Err(fail(status, &addr));
                }
            }
            let verdict = match &target {
                None => Verdict::Retry,
                Some(target) => {
                    self.set_primary(Some(target.clone()));
                    match self.channel(target, remaining).await {
                        Err(why) => {
                            tried.note(target, why);
                            self.forget(target);
                            Verdict::Retry
                        }
                        Ok(ch) => {
                            let left = deadline.saturating_duration_since(Instant::now());
                            match tokio::time::timeout(left, attempt(ch)).await {
                                Err(_) => {
                                    tried
                                        .note(target, "no answer before the retry deadline".into());
                                    Verdict::Retry
                                }
                                Ok(Ok(resp)) => return Ok((target.clone(), resp.into_inner())),
                                Ok(Err(status)) => {
                                    let v = classify(&status, target);
                                    if v == Verdict::Fail {
                                        return Err(fail(status, target));
                                    }
                                    tried.note(target, describe_status(&status));
                                    if std::error::Error::source(&status).is_some() {
                                        self.forget(target);
                                    }
                                    v
                                }
                            }
                        }
                    }
                }
            };
            // Every failure that gets here is followed by another attempt,
            // unless the deadline passes during the back-off (then the
            // count is one too high for a call that failed anyway).
            self.note_retry(!retried);
            retried = true;
            match verdict {
                Verdict::Redirect(hint) if redirects < max_redirects => {
                    tracing::debug!(from = ?target, to = %hint, "following a standby's redirect");
                    redirects += 1;
                    self.set_primary(Some(hint));
                }
                _ => {
                    redirects = 0;
                    self.set_primary(None);
                    let left = deadline.saturating_duration_since(Instant::now());
                    let sleep = backoff(&self.retry, failures, left);
                    failures = failures.saturating_add(1);
                    tracing::debug!(op, ?sleep, "retrying after a back-off");
                    tokio::time::sleep(sleep).await;
                }
            }
        }
    }

    /// One look for the primary; `None` (with the reasons noted) when none
    /// was found this time.
    async fn locate(&self, remaining: Duration, tried: &mut Tried) -> Option<String> {
        match &self.discovery {
            Discovery::ZooKeeper {
                ensemble,
                leader_path,
                timeout,
            } => {
                let what = format!("ZooKeeper {}", ensemble.join(","));
                let limit = (*timeout).min(remaining).max(Duration::from_millis(1));
                let found = tokio::time::timeout(
                    limit,
                    election_zk::find_leader(&ensemble.join(","), leader_path, limit),
                )
                .await;
                match found {
                    Ok(Ok(Some(addr))) => Some(addr),
                    Ok(Ok(None)) => {
                        tried.note(
                            &what,
                            format!("no primary is published under {leader_path}"),
                        );
                        None
                    }
                    Ok(Err(e)) => {
                        tried.note(&what, e.to_string());
                        None
                    }
                    Err(_) => {
                        tried.note(&what, format!("lookup timed out after {limit:?}"));
                        None
                    }
                }
            }
            Discovery::Masters(list) => {
                let asks = list.iter().map(|addr| async move {
                    (addr.clone(), self.ask_info(addr, remaining).await)
                });
                let answers = futures::future::join_all(asks).await;
                pick_primary(answers, tried)
            }
        }
    }

    /// `GetMasterInfo` on `addr`, bounded by the connect timeout (twice: to
    /// connect, then to answer) and `remaining`.
    pub(crate) async fn ask_info(
        &self,
        addr: &str,
        remaining: Duration,
    ) -> Result<MasterInfo, String> {
        let ch = self
            .channel(addr, remaining)
            .await
            .inspect_err(|_| self.forget(addr))?;
        let limit = self
            .connect_timeout
            .min(remaining)
            .max(Duration::from_millis(1));
        let mut client = MetaMasterClient::new(ch);
        match tokio::time::timeout(
            limit,
            client.get_master_info(Request::new(GetMasterInfoRequest {})),
        )
        .await
        {
            Err(_) => Err(format!("GetMasterInfo timed out after {limit:?}")),
            Ok(Err(status)) => {
                if std::error::Error::source(&status).is_some() {
                    self.forget(addr);
                }
                let why = describe_status(&status);
                if journal_raft::auth::refusal_reason(&status).is_some() {
                    *lock(&self.auth_refusal) = Some((addr.to_string(), status));
                }
                Err(why)
            }
            Ok(Ok(resp)) => Ok(resp.into_inner()),
        }
    }
}

/// The primary among `GetMasterInfo` answers: a master that says PRIMARY
/// (the highest epoch if a deposed one has not noticed yet), else the primary
/// a standby names. The address used is the one this client reached, not
/// the one a master advertises, for masters it reached directly.
fn pick_primary(
    answers: Vec<(String, Result<MasterInfo, String>)>,
    tried: &mut Tried,
) -> Option<String> {
    let mut best: Option<(u64, String)> = None;
    let mut hint: Option<String> = None;
    for (addr, answer) in answers {
        match answer {
            Ok(info) if info.role == ROLE_PRIMARY => {
                if best.as_ref().is_none_or(|(e, _)| info.epoch > *e) {
                    best = Some((info.epoch, addr));
                }
            }
            Ok(info) => {
                if info.primary_address.is_empty() {
                    tried.note(&addr, format!("{}, primary unknown", info.role));
                } else if hint.is_none() {
                    hint = Some(info.primary_address);
                }
            }
            Err(why) => tried.note(&addr, why),
        }
    }
    best.map(|(_, a)| a).or(hint)
}

/// The error for a status that retrying cannot fix.
fn fail(status: Status, address: &str) -> ClientError {
    match status.code() {
        tonic::Code::InvalidArgument => {
            ClientError::InvalidArgument(format!("{} (answered by {address})", status.message()))
        }
        code => ClientError::Rpc {
            address: address.to_string(),
            code,
            message: status.message().to_string(),
        },
    }
}
