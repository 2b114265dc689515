//! The sender against a peer that accepts a stream and never reads it.

use std::sync::atomic::{AtomicUsize, Ordering};

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
    streams: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl RaftPeer for Sink {
    async fn send(
        &self,
        request: Request<Streaming<MessageBatch>>,
    ) -> Result<Response<Ack>, Status> {
        self.streams.fetch_add(1, Ordering::SeqCst);
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
    let streams = Arc::new(AtomicUsize::new(0));
    let sink = Sink {
        streams: streams.clone(),
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
    // Enough appends to fill the stream's HTTP/2 window, the socket
    // buffers and the sender's queue many times over; fed slowly so the
    // sender is blocked on a full stream most of the time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while streams.load(Ordering::SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sender never gave up the stream the peer does not read ({} stream(s) opened)",
            streams.load(Ordering::SeqCst)
        );
        for _ in 0..32 {
            assert!(peer.tx.send(append()).is_ok(), "the sender task ended");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send_replace(true);
    server.abort();
}
