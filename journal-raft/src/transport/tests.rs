//! The sender against a peer that accepts a stream and never reads it.

use raft::eraftpb::Entry;
use tokio::net::TcpListener;
use tonic::transport::Server;

use super::*;
use crate::proto::raft_peer_server::RaftPeerServer;

/// A peer whose `Send` handler counts the streams it is given and then
/// holds each one open without reading: HTTP/2 keeps the connection alive
/// (it answers pings) while the stream's window, then the sender's queue,
/// fills up. Such a stream never fails, so only the stall bound ends it.
struct Sink {
    /// When each stream was opened.
    opened: Arc<parking_lot::Mutex<Vec<std::time::Instant>>>,
}

#[tonic::async_trait]
impl RaftPeer for Sink {
    async fn send(
        &self,
        request: Request<Streaming<MessageBatch>>,
    ) -> Result<Response<Ack>, Status> {
        self.opened.lock().push(std::time::Instant::now());
        let _unread = request;
        std::future::pending::<()>().await;
        Err(Status::internal("unreachable"))
    }

    async fn snapshot(
        &self,
        _request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn hello(&self, _request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

fn config(stall: Duration) -> TransportConfig {
    TransportConfig {
        my_id: 1,
        chunk_size: 64 << 10,
        max_message_bytes: 256 << 10,
        identity: crate::bootstrap::Identity {
            cluster_id: "raft-test".to_string(),
            membership: 7,
            address: "127.0.0.1:1".to_string(),
            rpc_address: None,
        },
        counters: Arc::new(crate::node::Counters::default()),
        metrics: journal_core::JournalMetrics::default(),
        auth: crate::auth::ClientAuth::new(None, crate::auth::Realm::Peer),
        stall,
    }
}

/// An append of one 32 KiB entry from member 1 to member 2.
fn append() -> Outbound {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgAppend);
    m.from = 1;
    m.to = 2;
    m.term = 1;
    let e = Entry {
        data: vec![7u8; 32 << 10].into(),
        ..Default::default()
    };
    m.entries = vec![e].into();
    Outbound::Msg(m)
}

/// Chaos seed 10050 left a leader's link to one follower carrying nothing
/// for a minute while the follower's own messages got through. A stream
/// that stays open but takes nothing must be given up after the stall
/// bound and a new one opened (Raft resends what was dropped). Without the
/// bound the sender waits on the first stream for ever and this fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_peer_never_reads_is_reopened() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let opened = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = Sink {
        opened: opened.clone(),
    };
    let server = tokio::spawn(
        Server::builder()
            .add_service(RaftPeerServer::new(sink))
            .serve_with_incoming(journal_core::net::nodelay_incoming(listener)),
    );
    let (cmds, _cmd_rx) = std::sync::mpsc::channel();
    let (stop, shutdown) = watch::channel(false);
    let stall = Duration::from_millis(500);
    let peer = spawn_peer(
        &tokio::runtime::Handle::current(),
        config(stall),
        2,
        address.clone(),
        address,
        cmds,
        shutdown,
    );
    // 32 MiB queued at once: more than the stream's HTTP/2 window, the
    // loopback socket buffers and the sender's batch queue hold together,
    // so the sender blocks on the unread stream with appends still queued,
    // and those go to the next stream once it reopens. A fixed amount keeps
    // the test's memory bounded if the reset ever breaks.
    for _ in 0..1024 {
        assert!(peer.tx.send(append()).is_ok(), "the sender task ended");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let reopened = loop {
        let seen = opened.lock().clone();
        if seen.len() >= 2 {
            break seen[1].duration_since(seen[0]);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sender never gave up the stream the peer does not read ({} stream(s) opened)",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Reopened because it stalled, not because the first stream broke.
    assert!(
        reopened >= stall,
        "the second stream opened {reopened:?} after the first, before the {stall:?} bound"
    );
    stop.send_replace(true);
    server.abort();
}
