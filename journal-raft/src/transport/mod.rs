//! Peer transport over tonic gRPC.
//!
//! Outbound: one task per peer drains that peer's queue, batches whatever is
//! queued into one `MessageBatch`, and pushes it down one long-lived client
//! stream. A peer that cannot be reached is retried with exponential backoff
//! (50 ms to 1 s); while it is down its messages are dropped (Raft resends)
//! and raft-rs is told it is unreachable, so one dead peer never holds up the
//! others. A dead connection fails within the 10 s HTTP/2 keepalive; a
//! stream on which a batch waits 30 s to be taken is given up and opened
//! again; and a leader has the stream to a member reopened when the member
//! answered none of its heartbeats for the silence bound (`link_watch`),
//! since a stream can stay open, answer pings and deliver nothing without
//! the sender seeing it. A link that keeps failing for 5 s is logged at
//! warn.
//! Snapshots go on their own task and stream in chunks.
//!
//! Inbound: the server parses raft messages (rust-protobuf bytes), checks
//! they are addressed to this member, and hands them to the driver. Received
//! snapshots are written to a temporary file, fsynced and verified frame by
//! frame before they are stepped into Raft; the file keeps its temporary
//! name, and the driver renames it only if raft-rs restores that very
//! snapshot (a stream naming the receiver's own snapshot must not replace
//! it), deleting it otherwise.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use journal_core::progress::{Progress, Unit};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use raft::SnapshotStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

use crate::bootstrap::PeerGuard;
use crate::node::Cmd;
use crate::proto::raft_peer_client::RaftPeerClient;
use crate::proto::raft_peer_server::RaftPeer;
use crate::proto::{Ack, HelloReply, HelloRequest, MessageBatch, SnapshotChunk};

/// Something to deliver to one peer.
pub(crate) enum Outbound {
    /// A raft message.
    Msg(Message),
    /// A MsgSnapshot, the opened snapshot file to stream after it, and its path.
    Snapshot(Message, std::fs::File, PathBuf),
    /// The leader heard no answer from this peer for the given time (its
    /// silence bound): give up the open stream and this sender's
    /// connection, whatever they look like from here, and open new ones
    /// (a snapshot transfer under way keeps its own). Ignored while no
    /// stream is open, and by a stream younger than half that time: most
    /// of the silence then came before it, and the leader asks again
    /// after another bound if it persists.
    Reopen(Duration),
}

/// Settings the transport needs.
#[derive(Clone)]
pub(crate) struct TransportConfig {
    pub my_id: u64,
    pub chunk_size: usize,
    pub max_message_bytes: usize,
    /// Carried in every batch and snapshot so another group's member refuses them.
    pub identity: crate::bootstrap::Identity,
    pub counters: std::sync::Arc<crate::node::Counters>,
    pub metrics: journal_core::JournalMetrics,
    /// The credentials every request to a peer carries.
    pub auth: crate::auth::ClientAuth,
    /// How long a batch may wait to be taken by the stream before the
    /// stream is given up ([`STALL`] outside tests).
    pub stall: Duration,
}

fn new_batch(cfg: &TransportConfig) -> MessageBatch {
    MessageBatch {
        from: cfg.my_id,
        messages: Vec::new(),
        cluster_id: cfg.identity.cluster_id.clone(),
        membership: cfg.identity.membership,
        address: cfg.identity.address.clone(),
    }
}

/// The sending side of one peer.
pub(crate) struct PeerSender {
    pub address: String,
    pub tx: mpsc::UnboundedSender<Outbound>,
}

/// Starts the sending task for peer `to` at `address`.
pub(crate) fn spawn_peer(
    rt: &tokio::runtime::Handle,
    cfg: TransportConfig,
    to: u64,
    address: String,
    dial: String,
    cmds: Sender<Cmd>,
    shutdown: watch::Receiver<bool>,
) -> PeerSender {
    let (tx, rx) = mpsc::unbounded_channel();
    rt.spawn(peer_loop(cfg, to, dial, rx, cmds, shutdown));
    PeerSender { address, tx }
}

pub(crate) fn endpoint(address: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT))
}

async fn peer_loop(
    cfg: TransportConfig,
    to: u64,
    address: String,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    cmds: Sender<Cmd>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    let refusals = crate::auth::LogLimiter::new(Duration::from_secs(30));
    let outages = crate::auth::LogLimiter::new(Duration::from_secs(30));
    // Since when the link fails (no stream lasted), to say so at warn:
    // each failure is only debug, and a link that stays down while the
    // peer's own messages arrive was otherwise invisible in the logs.
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let channel = match endpoint(&address) {
            Ok(ep) => ep.connect().await,
            Err(e) => {
                tracing::error!(peer = to, %address, error = %e, "bad peer address; not sending to it");
                return;
            }
        };
        let why = match channel {
            Ok(channel) => {
                backoff = Duration::from_millis(50);
                let opened = std::time::Instant::now();
                let end = stream_to(&cfg, to, channel, &mut rx, &cmds, &mut shutdown).await;
                if opened.elapsed() >= LASTED
                    && !matches!(end, StreamEnd::Stalled(_) | StreamEnd::Silent)
                {
                    failing_since = None;
                }
                match end {
                    StreamEnd::Closed => return,
                    StreamEnd::Broken(why) => {
                        tracing::debug!(peer = to, %address, %why, "peer stream ended; reconnecting");
                        let _ = cmds.send(Cmd::Unreachable(to));
                        why
                    }
                    StreamEnd::Stalled(why) => {
                        // At most once per stall bound per peer. A receiver
                        // that reads stalls only on a link too slow for one
                        // batch in that time: worth an operator's attention.
                        tracing::warn!(peer = to, %address, %why, "{STALLED_STREAM_LOG}");
                        let _ = cmds.send(Cmd::Unreachable(to));
                        why
                    }
                    StreamEnd::Silent => {
                        // At most once per silence bound per peer (the
                        // leader asks no more often).
                        tracing::warn!(peer = to, %address, "{SILENT_PEER_LOG}");
                        let _ = cmds.send(Cmd::Unreachable(to));
                        format!(
                            "the member answered nothing on the stream open for {:?}",
                            opened.elapsed()
                        )
                    }
                    StreamEnd::Refused(why) => {
                        if let Some(suppressed) = refusals.allow() {
                            tracing::warn!(
                                peer = to,
                                %address,
                                suppressed,
                                "the member at {address} refused this member's credentials: {why}"
                            );
                        }
                        let _ = cmds.send(Cmd::Unreachable(to));
                        why
                    }
                }
            }
            Err(e) => {
                tracing::debug!(peer = to, %address, error = %e, ?backoff, "peer unreachable; retrying");
                let _ = cmds.send(Cmd::Unreachable(to));
                e.to_string()
            }
        };
        let since = *failing_since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() >= OUTAGE_WARN {
            if let Some(suppressed) = outages.allow() {
                tracing::warn!(
                    peer = to,
                    %address,
                    %why,
                    suppressed,
                    "the link to member {to} has been failing for {:?}; still retrying",
                    since.elapsed()
                );
            }
        }
        // Back off, dropping what is queued meanwhile (Raft resends).
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = stopped(&mut shutdown) => return,
                m = rx.recv() => match m {
                    None => return,
                    Some(Outbound::Snapshot(msg, _, _)) => {
                        let _ = cmds.send(Cmd::SnapshotReport(msg.to, SnapshotStatus::Failure));
                    }
                    Some(Outbound::Msg(_)) | Some(Outbound::Reopen(_)) => {}
                },
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// HTTP/2 ping every this long without a frame read...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// ...and the connection is dropped when a ping is not answered in this.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// A stream that lasted this long (and was not given up as stalled or
/// silent) carried messages: the link counts as up again. Twice what a
/// connection to a black hole lives before the keepalive drops it, so a
/// link that fails that way on every connection is still reported.
const LASTED: Duration = Duration::from_secs(20);
/// A link failing this long is reported at warn.
const OUTAGE_WARN: Duration = Duration::from_secs(5);
/// How long a batch may wait to be taken by the stream before the stream
/// is given up. The peer reads every batch at once (it only queues the
/// messages for its driver) and a dead connection fails within the HTTP/2
/// keepalive (10 s), so a batch that waits this long is stuck somewhere on
/// the way; a new connection is cheaper than waiting on one that may never
/// move again, and Raft resends what is dropped. Long enough for one batch
/// of `max_message_bytes` over a slow link. A batch only waits once the
/// stream's flow-control window (up to 1 MiB) and the 16-batch queue are
/// full, so light traffic (heartbeats) into a stream that delivers nothing
/// never trips this bound: the leader's silence watch (`link_watch`)
/// covers that case.
pub(crate) const STALL: Duration = Duration::from_secs(30);

/// The warn-level message a member logs when it gives up a peer stream
/// that took no batch within the stall bound (30 s) and reconnects. Fault
/// campaigns look for it: the reset restores the link, so nothing else
/// shows that a link carried nothing for that long.
pub const STALLED_STREAM_LOG: &str = "peer stream stalled; reconnecting";

/// The warn-level message a leader's sender to a member logs when it gives
/// up its open stream because the member answered none of the leader's
/// heartbeats or appends for the silence bound (at least 10 s), and
/// reconnects. The transport cannot see delivery (a stream is answered
/// only at its end), so without this a link that stays open and delivers
/// nothing would cut the member off for as long as it stays open. The
/// answers travel on the member's own link to the leader, so the fault
/// may be on that side; this reopen then changes nothing, and the warning
/// repeats every bound. Fault campaigns look for it, as for
/// [`STALLED_STREAM_LOG`].
pub const SILENT_PEER_LOG: &str =
    "the member answered no heartbeat on an open stream; reconnecting";

/// Queues `batch` on the stream, or says how the stream ends.
async fn push(
    btx: &mpsc::Sender<MessageBatch>,
    batch: MessageBatch,
    stall: Duration,
) -> Result<(), StreamEnd> {
    match tokio::time::timeout(stall, btx.send(batch)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(StreamEnd::Broken(
            "the stream's request side closed".to_string(),
        )),
        Err(_) => Err(StreamEnd::Stalled(format!(
            "the peer took no batch for {stall:?}"
        ))),
    }
}

/// Resolves once `shutdown` says true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await.map(|_| ());
}

enum StreamEnd {
    /// The queue was closed: the peer was removed or the member shuts down.
    Closed,
    /// The stream failed; reconnect.
    Broken(String),
    /// A batch waited [`STALL`] to be taken; reconnect.
    Stalled(String),
    /// The leader heard nothing back from the peer for its silence bound
    /// while this stream was open; reconnect.
    Silent,
    /// The peer refused this member's credentials (or their absence).
    Refused(String),
}

async fn stream_to(
    cfg: &TransportConfig,
    to: u64,
    channel: Channel,
    rx: &mut mpsc::UnboundedReceiver<Outbound>,
    cmds: &Sender<Cmd>,
    shutdown: &mut watch::Receiver<bool>,
) -> StreamEnd {
    let mut client = RaftPeerClient::new(cfg.auth.wrap(channel.clone()))
        .max_encoding_message_size(cfg.max_message_bytes)
        .max_decoding_message_size(cfg.max_message_bytes);
    let (btx, brx) = mpsc::channel::<MessageBatch>(16);
    let opened = std::time::Instant::now();
    let mut call = tokio::spawn(async move { client.send(ReceiverStream::new(brx)).await });
    // Leave room for the batch's own framing.
    let budget = cfg.max_message_bytes.saturating_sub(64 << 10).max(1);
    let result = 'stream: loop {
        tokio::select! {
            r = &mut call => break match r {
                Ok(Ok(_)) => StreamEnd::Broken("the peer closed the stream".to_string()),
                Ok(Err(status)) => match crate::auth::refusal_reason(&status) {
                    Some(why) => StreamEnd::Refused(why.to_string()),
                    None => StreamEnd::Broken(status.to_string()),
                },
                Err(e) => StreamEnd::Broken(e.to_string()),
            },
            _ = stopped(shutdown) => break StreamEnd::Closed,
            first = rx.recv() => {
                let Some(first) = first else { break StreamEnd::Closed };
                let mut batch = new_batch(cfg);
                let mut size = 0usize;
                let mut next = Some(first);
                while let Some(item) = next.take() {
                    match item {
                        Outbound::Msg(m) => match m.write_to_bytes() {
                            Ok(b) => {
                                // Send what is batched before this message would
                                // push the batch past the receiver's limit;
                                // otherwise the peer refuses it forever.
                                if !batch.messages.is_empty() && size + b.len() > budget {
                                    let full = std::mem::replace(
                                        &mut batch,
                                        new_batch(cfg),
                                    );
                                    size = 0;
                                    if let Err(end) = push(&btx, full, cfg.stall).await {
                                        break 'stream end;
                                    }
                                }
                                size += b.len();
                                batch.messages.push(Bytes::from(b));
                            }
                            Err(e) => tracing::error!(peer = to, error = %e, "cannot encode a raft message; dropped"),
                        },
                        Outbound::Snapshot(m, file, path) => {
                            tokio::spawn(send_snapshot(cfg.clone(), channel.clone(), m, file, path, cmds.clone()));
                        }
                        // What is batched is dropped with the stream; Raft resends.
                        Outbound::Reopen(silent_for) => {
                            if opened.elapsed() >= silent_for / 2 {
                                break 'stream StreamEnd::Silent;
                            }
                        }
                    }
                    if size >= budget / 2 || batch.messages.len() >= 4096 {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                if batch.messages.is_empty() {
                    continue;
                }
                if let Err(end) = push(&btx, batch, cfg.stall).await {
                    break end;
                }
            }
        }
    };
    call.abort();
    result
}

/// Verifies the snapshot file (every frame, and that it is this cluster's
/// snapshot at the message's index and term), then streams it. A damaged
/// file is never sent: the driver hears `SnapshotDamaged` and replaces it.
/// Every other failure is reported to raft-rs as a failed delivery.
async fn send_snapshot(
    cfg: TransportConfig,
    channel: Channel,
    msg: Message,
    file: std::fs::File,
    path: PathBuf,
    cmds: Sender<Cmd>,
) {
    let to = msg.to;
    let meta = msg.get_snapshot().get_metadata();
    let (index, term) = (meta.index, meta.term);
    let verify = {
        let (path, cluster) = (path.clone(), cfg.identity.cluster_id.clone());
        tokio::task::spawn_blocking(move || {
            crate::storage::verify_snapshot_file_for(&path, &cluster, index, term)
        })
        .await
    };
    match verify {
        Ok(Ok(())) => {}
        Ok(Err(error @ journal_core::JournalError::Corrupt { .. })) => {
            let _ = cmds.send(Cmd::SnapshotDamaged {
                to,
                index,
                term,
                error,
            });
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(peer = to, index, error = %e, "cannot read the snapshot to send");
            let _ = cmds.send(Cmd::SnapshotReport(to, SnapshotStatus::Failure));
            return;
        }
        Err(e) => {
            tracing::warn!(peer = to, index, error = %e, "snapshot verification did not finish");
            let _ = cmds.send(Cmd::SnapshotReport(to, SnapshotStatus::Failure));
            return;
        }
    }
    crate::node::Counters::bump(&cfg.counters.snapshots_sent);
    cfg.metrics
        .raft_snapshot_transferred(journal_core::metrics::Direction::sent);
    let started = std::time::Instant::now();
    let outcome = async {
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut file = tokio::fs::File::from_std(file);
        let header = msg.write_to_bytes().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel::<SnapshotChunk>(2);
        let mut client = RaftPeerClient::new(cfg.auth.wrap(channel))
            .max_encoding_message_size(cfg.max_message_bytes)
            .max_decoding_message_size(cfg.max_message_bytes);
        let call = tokio::spawn(async move { client.snapshot(ReceiverStream::new(rx)).await });
        let first = SnapshotChunk {
            from: cfg.my_id,
            message: header.into(),
            data: Bytes::new(),
            last: false,
            total,
            cluster_id: cfg.identity.cluster_id.clone(),
            membership: cfg.identity.membership,
            address: cfg.identity.address.clone(),
        };
        tx.send(first)
            .await
            .map_err(|_| "snapshot stream closed".to_string())?;
        let mut sent = 0u64;
        let mut progress = Progress::new(
            format!("sending snapshot {index} to member {to}"),
            Unit::Bytes,
            Some(total),
        );
        loop {
            let mut buf = vec![0u8; cfg.chunk_size];
            let mut filled = 0;
            while filled < buf.len() {
                let n = file
                    .read(&mut buf[filled..])
                    .await
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            buf.truncate(filled);
            sent += filled as u64;
            progress.set_done(sent);
            let last = filled == 0 || sent >= total;
            let chunk = SnapshotChunk {
                from: cfg.my_id,
                message: Bytes::new(),
                data: buf.into(),
                last,
                total: 0,
                ..Default::default()
            };
            if tx.send(chunk).await.is_err() {
                break;
            }
            if last {
                break;
            }
        }
        drop(tx);
        progress.finish();
        match call.await {
            Ok(Ok(_)) => Ok(sent),
            Ok(Err(status)) => Err(status.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
    .await;
    match outcome {
        Ok(bytes) => {
            tracing::info!(peer = to, index, bytes, elapsed = ?started.elapsed(), "snapshot sent");
            let _ = cmds.send(Cmd::SnapshotReport(to, SnapshotStatus::Finish));
        }
        Err(e) => {
            tracing::warn!(peer = to, index, error = %e, "snapshot transfer failed");
            let _ = cmds.send(Cmd::SnapshotReport(to, SnapshotStatus::Failure));
        }
    }
}

/// The gRPC service peers call.
pub(crate) struct PeerService {
    pub my_id: u64,
    pub cluster_id: String,
    pub max_snapshot_bytes: u64,
    pub counters: std::sync::Arc<crate::node::Counters>,
    pub cmds: Sender<Cmd>,
    pub snap_dir: PathBuf,
    pub shutdown: watch::Receiver<bool>,
    /// Refuses peers of another group before anything is stepped.
    pub guard: Arc<PeerGuard>,
}

impl PeerService {
    fn step(&self, m: Message) -> Result<(), Status> {
        let tx = &self.cmds;
        tx.send(Cmd::Step(Box::new(m)))
            .map_err(|_| Status::unavailable("this member is shutting down"))
    }

    fn parse(&self, bytes: &[u8]) -> Result<Message, Status> {
        let m = Message::parse_from_bytes(bytes)
            .map_err(|e| Status::invalid_argument(format!("bad raft message: {e}")))?;
        if m.to != self.my_id {
            return Err(Status::invalid_argument(format!(
                "message for member {} reached member {}",
                m.to, self.my_id
            )));
        }
        Ok(m)
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn send(
        &self,
        request: Request<Streaming<MessageBatch>>,
    ) -> Result<Response<Ack>, Status> {
        let remote = request.remote_addr();
        let mut stream = request.into_inner();
        let mut shutdown = self.shutdown.clone();
        // One stream carries one peer's messages: the first batch names it.
        let mut sender: Option<u64> = None;
        let refuse = |why: String| {
            crate::node::Counters::bump(&self.counters.rejected_messages);
            tracing::warn!(member = self.my_id, ?remote, %why, "refused a peer stream");
            Status::invalid_argument(why)
        };
        loop {
            tokio::select! {
                _ = stopped(&mut shutdown) => return Err(Status::unavailable("this member is shutting down")),
                batch = stream.message() => match batch? {
                    None => return Ok(Response::new(Ack {})),
                    Some(batch) => {
                        self.guard.admit(&batch.cluster_id, batch.from, remote)?;
                        if sender.is_none() && !batch.address.is_empty() {
                            let _ = self.cmds.send(Cmd::Learn(batch.from, batch.address.clone()));
                        }
                        if *sender.get_or_insert(batch.from) != batch.from {
                            return Err(refuse(format!(
                                "a stream opened by member {:?} sent a batch as member {}",
                                sender, batch.from
                            )));
                        }
                        for bytes in &batch.messages {
                            let m = Message::parse_from_bytes(bytes).map_err(|e| {
                                refuse(format!("unparsable raft message from member {}: {e}", batch.from))
                            })?;
                            if m.from != batch.from {
                                return Err(refuse(format!(
                                    "member {} relayed a message claiming to be from {}",
                                    batch.from, m.from
                                )));
                            }
                            if m.msg_type == MessageType::MsgSnapshot {
                                return Err(refuse("snapshots go through the Snapshot call".to_string()));
                            }
                            // Everything else (recipient, membership, bounds) is
                            // checked by the driver against its current state.
                            self.step(m)?;
                        }
                    }
                },
            }
        }
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Ack>, Status> {
        let remote = request.remote_addr();
        let mut stream = request.into_inner();
        let mut shutdown = self.shutdown.clone();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        self.guard.admit(&first.cluster_id, first.from, remote)?;
        if !first.address.is_empty() {
            let _ = self
                .cmds
                .send(Cmd::Learn(first.from, first.address.clone()));
        }
        let msg = self.parse(&first.message)?;
        if msg.msg_type != MessageType::MsgSnapshot {
            return Err(Status::invalid_argument(
                "the first chunk must carry a MsgSnapshot",
            ));
        }
        if let Err(why) = crate::validate::check_stateless(&msg, self.my_id) {
            crate::node::Counters::bump(&self.counters.rejected_messages);
            tracing::warn!(member = self.my_id, from = msg.from, reason = why.kind, detail = %why.detail, "refused a snapshot stream");
            return Err(Status::invalid_argument(format!(
                "{}: {}",
                why.kind, why.detail
            )));
        }
        let meta = msg.get_snapshot().get_metadata();
        let (index, term) = (meta.index, meta.term);
        // The sender announces the size first; refuse before writing a byte
        // what this member would not keep, and below, anything longer.
        let total = first.total;
        if total == 0 || total > self.max_snapshot_bytes {
            crate::node::Counters::bump(&self.counters.rejected_messages);
            tracing::warn!(
                member = self.my_id,
                from = msg.from,
                index,
                total,
                max = self.max_snapshot_bytes,
                "refused a snapshot stream: announced size is 0 or above {}",
                crate::config::KEY_MAX_SNAPSHOT
            );
            return Err(Status::resource_exhausted(format!(
                "a snapshot of {total} bytes is refused: this member accepts 1..={} ({})",
                self.max_snapshot_bytes,
                crate::config::KEY_MAX_SNAPSHOT
            )));
        }
        let tmp = self.snap_dir.join(format!(
            "recv-{index:016x}-{term:016x}-{}.tmp",
            rand::random::<u32>()
        ));
        let started = std::time::Instant::now();
        let result: Result<u64, Status> = async {
            // create_new: two streams drawing the same suffix never share a file.
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            let mut received = 0u64;
            let mut progress = Progress::new(
                format!("receiving snapshot {index} from member {}", msg.from),
                Unit::Bytes,
                Some(total),
            );
            let mut done = first.last;
            while !done {
                let chunk = tokio::select! {
                    _ = stopped(&mut shutdown) => return Err(Status::unavailable("this member is shutting down")),
                    c = stream.message() => c?,
                };
                let Some(chunk) = chunk else {
                    return Err(Status::invalid_argument("snapshot stream ended before its last chunk"));
                };
                received += chunk.data.len() as u64;
                if received > total {
                    return Err(Status::resource_exhausted(format!(
                        "the snapshot stream sent more than the {total} bytes it announced"
                    )));
                }
                file.write_all(&chunk.data).await.map_err(|e| Status::internal(e.to_string()))?;
                progress.set_done(received);
                done = chunk.last;
            }
            progress.finish();
            if received != total {
                return Err(Status::invalid_argument(format!(
                    "the snapshot stream ended after {received} of the {total} bytes it announced"
                )));
            }
            file.sync_all().await.map_err(|e| Status::internal(e.to_string()))?;
            drop(file);
            let verify = tmp.clone();
            let cluster = self.cluster_id.clone();
            tokio::task::spawn_blocking(move || {
                crate::storage::verify_snapshot_file_for(&verify, &cluster, index, term)
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::data_loss(e.to_string()))?;
            Ok(received)
        }
        .await;
        match result {
            Ok(bytes) => {
                tracing::info!(index, term, bytes, elapsed = ?started.elapsed(), "snapshot received and verified");
                // The file keeps its temporary name: the driver moves it to
                // its snapshot name only if raft-rs restores it. Renamed
                // here, a stream naming this member's own snapshot (same
                // index and term) would replace that file's content before
                // any check, and a restart would restore the sender's state.
                if self
                    .cmds
                    .send(Cmd::StepSnapshot(Box::new(msg), tmp.clone()))
                    .is_err()
                {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(Status::unavailable("this member is shutting down"));
                }
                Ok(Response::new(Ack {}))
            }
            Err(status) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                tracing::warn!(index, term, error = %status, "snapshot receive failed");
                Err(status)
            }
        }
    }

    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let remote = request.remote_addr();
        let req = request.into_inner();
        self.guard.admit(&req.cluster_id, req.from, remote)?;
        Ok(Response::new(self.guard.hello_reply(&req)))
    }
}

#[cfg(test)]
mod tests;
