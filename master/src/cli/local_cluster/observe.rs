//! Watching the cluster from outside: every master's `GetMasterInfo`
//! answer, who is primary, bounded waits for a primary, for the worker and
//! for a restarted master to catch up, and the masters' table.

use std::time::{Duration, Instant};

use crate::client::{ClientOptions, Discovery, MasterClient};
use crate::config::RetrySettings;
use crate::proto::rpc::MasterInfo;

use super::children::Children;
use super::plan::Plan;
use super::ui::{table, Waiting};

/// How often the waits poll.
const POLL: Duration = Duration::from_millis(100);

/// Asks masters directly (no discovery, no retries): one `GetMasterInfo`
/// per master per poll.
pub struct Observer {
    client: MasterClient,
}

/// Why a wait ended without what it waited for.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// A master exited by itself while the launcher waited.
    #[error("{name} exited ({status}) while waiting for {what}; see its log {log}")]
    Exited {
        /// The master.
        name: String,
        /// Its exit status.
        status: String,
        /// What was awaited.
        what: String,
        /// Its log file.
        log: String,
    },
    /// The bound passed.
    #[error("{what}: not within {bound:?} (last seen: {last})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        bound: Duration,
        /// The last state seen.
        last: String,
    },
}

/// The last applied journal sequence a master reports.
pub fn applied(info: &MasterInfo) -> u64 {
    info.journal.as_ref().map_or(0, |j| j.last_applied)
}

impl Observer {
    /// An observer whose attempts are bounded by 2 s each.
    pub fn new() -> Observer {
        let options = ClientOptions {
            retry: RetrySettings {
                max_duration: Duration::from_secs(2),
                base_sleep: Duration::from_millis(20),
                max_sleep: Duration::from_millis(200),
            },
            connect_timeout: Duration::from_secs(1),
            credentials: Default::default(),
        };
        Observer {
            client: MasterClient::new(Discovery::Masters(Vec::new()), options),
        }
    }

    /// Every master's answer (`None` for a master that did not answer), in
    /// plan order, asked concurrently.
    pub async fn poll(&self, plan: &Plan) -> Vec<Option<MasterInfo>> {
        let asks = plan.masters.iter().map(|m| {
            let addr = m.address();
            async move { self.client.master_info(&addr).await.ok() }
        });
        futures::future::join_all(asks).await
    }

    /// The master answering PRIMARY (the highest epoch if two do, as a
    /// deposed one may not have noticed yet).
    pub fn primary(view: &[Option<MasterInfo>]) -> Option<(usize, &MasterInfo)> {
        view.iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (i, a)))
            .filter(|(_, a)| a.role == "PRIMARY")
            .max_by_key(|(_, a)| a.epoch)
    }

    /// Polls until a master answers PRIMARY with an epoch above
    /// `after_epoch`; fails if a master exits or `bound` passes. Returns
    /// the primary's index and the view.
    pub async fn wait_primary(
        &self,
        plan: &Plan,
        children: &mut Children,
        after_epoch: u64,
        bound: Duration,
        spinner: &Waiting,
    ) -> Result<(usize, Vec<Option<MasterInfo>>), WaitError> {
        let mut found = 0;
        let view = self
            .wait_until(
                plan,
                children,
                "a primary",
                bound,
                spinner,
                |view| match Self::primary(view).filter(|(_, a)| a.epoch > after_epoch) {
                    Some((i, _)) => {
                        found = i;
                        Ok(())
                    }
                    None => Err(format!(
                        "{} of {} masters answer, none PRIMARY",
                        view.iter().filter(|a| a.is_some()).count(),
                        view.len()
                    )),
                },
            )
            .await?;
        Ok((found, view))
    }

    /// Polls until `check(view)` is `Ok`, showing `waiting for {what}:`
    /// and its last `Err` on the spinner; fails if a master exits or
    /// `bound` passes.
    pub async fn wait_until(
        &self,
        plan: &Plan,
        children: &mut Children,
        what: &str,
        bound: Duration,
        spinner: &Waiting,
        mut check: impl FnMut(&[Option<MasterInfo>]) -> Result<(), String>,
    ) -> Result<Vec<Option<MasterInfo>>, WaitError> {
        let deadline = Instant::now() + bound;
        loop {
            check_alive(plan, children, what)?;
            let view = self.poll(plan).await;
            let last = match check(&view) {
                Ok(()) => return Ok(view),
                Err(last) => last,
            };
            spinner.set(format!("waiting for {what}: {last}"));
            if Instant::now() >= deadline {
                return Err(WaitError::Timeout {
                    what: what.into(),
                    bound,
                    last,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Default for Observer {
    fn default() -> Self {
        Observer::new()
    }
}

/// Fails if a master the launcher started has exited by itself.
fn check_alive(plan: &Plan, children: &mut Children, what: &str) -> Result<(), WaitError> {
    for m in &plan.masters {
        if let Some(status) = children.exited(&m.name) {
            return Err(WaitError::Exited {
                name: m.name.clone(),
                status: status.to_string(),
                what: what.into(),
                log: plan.log(&m.name).display().to_string(),
            });
        }
    }
    Ok(())
}

/// The masters' table: name, role, RPC address, status page, journal
/// sequence and pid (or `down`).
pub fn masters_table(
    plan: &Plan,
    view: &[Option<MasterInfo>],
    pids: &[Option<u32>],
) -> Vec<String> {
    let mut rows = vec![vec![
        "master".to_string(),
        "role".into(),
        "rpc".into(),
        "status page".into(),
        "seq".into(),
        "pid".into(),
    ]];
    for (i, m) in plan.masters.iter().enumerate() {
        let info = view.get(i).and_then(Option::as_ref);
        let role = info.map_or("down".to_string(), |a| a.role.clone());
        let seq = info.map_or("-".to_string(), |a| applied(a).to_string());
        let pid = pids
            .get(i)
            .copied()
            .flatten()
            .map_or("-".to_string(), |p| p.to_string());
        rows.push(vec![
            m.name.clone(),
            role,
            m.address(),
            m.status_url(),
            seq,
            pid,
        ]);
    }
    table(&rows)
}
