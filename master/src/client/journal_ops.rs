//! Journal administration through [`MasterClient`]: checkpoints, the
//! quorum's members, leadership transfer and membership changes
//! (`primacy journal ...`). Each goes to the primary and follows redirects
//! like every call; the checkpoint can also be asked of one named master.

use std::time::Instant;

use tonic::Request;

use crate::proto::rpc::journal_master_client::JournalMasterClient;
use crate::proto::rpc::{
    CheckpointRequest, CheckpointResponse, GetQuorumInfoRequest, QuorumInfo, QuorumMemberRequest,
    TransferLeadershipRequest, TransferLeadershipResponse,
};

use super::call::chain;
use super::{ClientError, MasterClient};

impl MasterClient {
    /// Asks the primary to write a checkpoint now; returns the sequence it
    /// covers (the state before it) and who wrote it.
    pub async fn checkpoint(&self) -> Result<CheckpointResponse, ClientError> {
        let (_, r) = self
            .inner
            .call("checkpoint", |ch| async move {
                JournalMasterClient::new(ch)
                    .checkpoint(Request::new(CheckpointRequest { any_master: false }))
                    .await
            })
            .await?;
        Ok(r)
    }

    /// Asks the master at `addr`, whatever its role, to write a checkpoint
    /// now (a UFS standby writes them so the primary never pauses). One
    /// attempt, no redirect: the connection is bounded by the connect
    /// timeout, the answer by the retry duration.
    pub async fn checkpoint_on(&self, addr: &str) -> Result<CheckpointResponse, ClientError> {
        let started = Instant::now();
        let unreachable = |why: String| ClientError::Unreachable {
            op: format!("checkpoint on {addr}"),
            elapsed: started.elapsed(),
            tried: vec![format!("{addr}: {why}")],
        };
        let ch = self
            .inner
            .channel(addr, self.inner.retry.max_duration)
            .await
            .map_err(unreachable)?;
        let mut journal = JournalMasterClient::new(ch);
        let call = journal.checkpoint(Request::new(CheckpointRequest { any_master: true }));
        match tokio::time::timeout(self.inner.retry.max_duration, call).await {
            Err(_) => Err(unreachable("no answer before the retry deadline".into())),
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) if std::error::Error::source(&status).is_some() => {
                Err(unreachable(chain(&status)))
            }
            Ok(Err(status)) => Err(ClientError::Rpc {
                address: addr.to_string(),
                code: status.code(),
                message: status.message().to_string(),
            }),
        }
    }

    /// The journal's members as the primary knows them.
    pub async fn quorum_info(&self) -> Result<QuorumInfo, ClientError> {
        let (_, r) = self
            .inner
            .call("quorum info", |ch| async move {
                JournalMasterClient::new(ch)
                    .get_quorum_info(Request::new(GetQuorumInfoRequest {}))
                    .await
            })
            .await?;
        Ok(r)
    }

    /// Hands primacy to the master at `address` (its embedded journal
    /// address, RPC address or member id); returns once that master reports
    /// PRIMARY. Retrying after a lost answer is safe: the new primary
    /// answers a transfer to itself at once.
    pub async fn transfer_leadership(
        &self,
        address: &str,
    ) -> Result<TransferLeadershipResponse, ClientError> {
        let request = TransferLeadershipRequest {
            address: address.trim().to_string(),
        };
        let (_, r) = self
            .inner
            .call(&format!("quorum elect {address}"), |ch| {
                let request = request.clone();
                async move {
                    JournalMasterClient::new(ch)
                        .transfer_leadership(request)
                        .await
                }
            })
            .await?;
        Ok(r)
    }

    /// Adds the master whose embedded journal address is `address` to the
    /// quorum (it must be formatted with `--join` and running); returns the
    /// quorum once it caught up and votes.
    pub async fn add_master(&self, address: &str) -> Result<QuorumInfo, ClientError> {
        let request = QuorumMemberRequest {
            address: address.trim().to_string(),
        };
        let (_, r) = self
            .inner
            .call(&format!("quorum add {address}"), |ch| {
                let request = request.clone();
                async move {
                    JournalMasterClient::new(ch)
                        .add_quorum_member(request)
                        .await
                }
            })
            .await?;
        Ok(r)
    }

    /// Removes the member at `address` (embedded journal address, RPC
    /// address or member id) from the quorum; returns the quorum after.
    pub async fn remove_master(&self, address: &str) -> Result<QuorumInfo, ClientError> {
        let request = QuorumMemberRequest {
            address: address.trim().to_string(),
        };
        let (_, r) = self
            .inner
            .call(&format!("quorum remove {address}"), |ch| {
                let request = request.clone();
                async move {
                    JournalMasterClient::new(ch)
                        .remove_quorum_member(request)
                        .await
                }
            })
            .await?;
        Ok(r)
    }
}
