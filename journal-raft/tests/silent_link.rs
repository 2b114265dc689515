//! The symptom of the chaos campaign's embedded seed 10050, made on
//! purpose: the leader's stream to one follower stays open and delivers
//! nothing, while every other link works. The follower hears no leader;
//! whatever it sends is answered on those streams too, and the leader's
//! lease holds through the other follower, so nothing in Raft ends it.
//! The transport cannot see it either: the stream is healthy at the
//! HTTP/2 level (pings answered) and a few heartbeats never fill its
//! window, so the stall bound never fires. Only the leader's watch of its
//! followers' answers can: after the silence bound it has the link
//! reopened, and the follower must then catch up. Without that watch this
//! test fails (the follower never applies anything).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{entry, init_tracing, Group};
use futures::StreamExt;
use journal_core::JournalSystem;
use journal_raft::proto::raft_peer_client::RaftPeerClient;
use journal_raft::proto::raft_peer_server::{RaftPeer, RaftPeerServer};
use journal_raft::proto::{Ack, HelloReply, HelloRequest, MessageBatch, SnapshotChunk};
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

/// A gRPC relay in front of one member, for one sender: it holds the
/// first message stream it is given open and never reads it (HTTP/2 keeps
/// answering pings), and relays every later call to the member.
struct Relay {
    target: String,
    streams: Arc<AtomicUsize>,
}

impl Relay {
    async fn client(&self) -> Result<RaftPeerClient<Channel>, Status> {
        RaftPeerClient::connect(format!("http://{}", self.target))
            .await
            .map_err(|e| Status::unavailable(format!("relay: {e}")))
    }
}

/// The items of an inbound stream up to its first error.
fn items<T: Send + 'static>(s: Streaming<T>) -> impl futures::Stream<Item = T> + Send + 'static {
    s.take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(|r| futures::future::ready(r.ok()))
}

#[tonic::async_trait]
impl RaftPeer for Relay {
    async fn send(
        &self,
        request: Request<Streaming<MessageBatch>>,
    ) -> Result<Response<Ack>, Status> {
        if self.streams.fetch_add(1, Ordering::SeqCst) == 0 {
            let _unread = request;
            std::future::pending::<()>().await;
            return Err(Status::internal("unreachable"));
        }
        self.client().await?.send(items(request.into_inner())).await
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Ack>, Status> {
        self.client()
            .await?
            .snapshot(items(request.into_inner()))
            .await
    }

    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        self.client().await?.hello(request.into_inner()).await
    }
}

async fn start_relay(target: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let streams = Arc::new(AtomicUsize::new(0));
    let relay = Relay {
        target,
        streams: streams.clone(),
    };
    tokio::spawn(
        Server::builder()
            .add_service(RaftPeerServer::new(relay))
            .serve_with_incoming(journal_core::net::nodelay_incoming(listener)),
    );
    (address, streams)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_reopens_a_link_its_follower_never_answers_on() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        // Member 2 is the follower; members 0 and 1 reach it through a
        // relay each, whose first message stream goes nowhere. Its own
        // links are direct, so the others hear it and it hears no one.
        let f = 2;
        let opened = Instant::now();
        let mut relays = Vec::new();
        for x in 0..2 {
            let (address, streams) = start_relay(g.addresses[f].clone()).await;
            let mut cfg = g.config(x);
            cfg.connect_via.insert(g.addresses[f].clone(), address);
            g.open_with(x, cfg).await;
            relays.push(streams);
        }
        g.open(f).await;
        // It cannot win: the answers to its votes travel on the held streams.
        let leader = g.primary(Duration::from_secs(30)).await;
        assert_ne!(leader, f, "the follower that hears no one was elected");
        for n in 0..5 {
            g.m(leader)
                .journal
                .propose(entry("before", n, 50))
                .await
                .expect("two of three members commit");
        }
        let target = g.m(leader).journal.status().last_applied;

        // Back after the silence bound (10 s from the election, which came
        // after `opened`), a reconnect and a catch-up.
        g.wait_applied(f, target, Duration::from_secs(40)).await;
        let caught_up = opened.elapsed();
        // Both relays: on a loaded machine leadership may have moved to the
        // other founder since `primary` answered.
        let streams: Vec<usize> = relays.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert!(
            streams.iter().any(|n| *n >= 2),
            "the follower caught up without a leader reopening its stream (streams per relay: \
             {streams:?})"
        );
        assert!(
            caught_up >= Duration::from_secs(10),
            "caught up {caught_up:?} after the start, before the silence bound: the stream was \
             not the held one"
        );
        // And the link now works: a new entry reaches the follower.
        let leader = g.primary(Duration::from_secs(30)).await;
        g.m(leader)
            .journal
            .propose(entry("after", 0, 50))
            .await
            .expect("commit");
        let target = g.m(leader).journal.status().last_applied;
        g.wait_applied(f, target, Duration::from_secs(10)).await;
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}
