//! Two `primacy master` processes on one UFS journal with a real ZooKeeper:
//! the standby refuses with UNAVAILABLE and names the primary (message and
//! `primacy-primary` metadata); after the primary stops, the standby takes
//! over with every acknowledged write.

mod server_support;

use bytes::Bytes;
use election_zk::testkit::ZkServer;
use master::proto::meta::Mkdir;
use master::proto::rpc::{mutate_request, MutateRequest, PathRequest, RegisterWorkerRequest};
use master::rpc::PRIMARY_METADATA_KEY;
use server_support::*;
use tonic::Code;

fn mkdir(seq: u64, path: &str) -> MutateRequest {
    MutateRequest {
        client_id: Bytes::from_static(b"redirect-test"),
        request_seq: seq,
        op: Some(mutate_request::Op::Mkdir(Mkdir {
            path: path.to_string(),
            recursive: false,
        })),
    }
}

fn primary_header(s: &tonic::Status) -> Option<String> {
    s.metadata()
        .get(PRIMARY_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_redirects_to_the_primary_and_takes_over_when_it_stops() {
    let zk = ZkServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = format!("file://{}/journal", dir.path().display());
    let common = |port: u16| {
        flags(&[
            ("alluxio.master.journal.type", "UFS".into()),
            ("alluxio.master.journal.folder", folder.clone()),
            ("alluxio.zookeeper.enabled", "true".into()),
            ("alluxio.zookeeper.address", zk.address()),
            ("alluxio.master.hostname", "127.0.0.1".into()),
            ("alluxio.master.rpc.port", port.to_string()),
            ("alluxio.master.web.port", free_port().to_string()),
        ])
    };
    let (p1, p2) = (free_port(), free_port());
    let mut format = vec!["format".to_string()];
    format.extend(common(p1));
    let (code, out, err) = run(&format, dir.path());
    assert_eq!(code, 0, "{out}{err}");

    let args = |port: u16| {
        let mut a = vec!["master".to_string()];
        a.extend(common(port));
        a
    };
    let mut m1 = Proc::spawn(&args(p1), &dir.path().join("m1.log"));
    wait_info(&mut m1, p1, BOUND, "m1 PRIMARY", |i| i.role == "PRIMARY").await;
    let mut m2 = Proc::spawn(&args(p2), &dir.path().join("m2.log"));
    let a1 = format!("127.0.0.1:{p1}");
    let standby = wait_info(&mut m2, p2, BOUND, "m2 STANDBY knowing m1", |i| {
        i.role == "STANDBY" && i.primary_address == a1
    })
    .await;
    assert_eq!(standby.epoch, 0);

    let r = fs_client(p1)
        .mutate(mkdir(1, "/before"))
        .await
        .expect("mutate on the primary");
    assert!(r.into_inner().is_ok());

    let e = fs_client(p2)
        .mutate(mkdir(2, "/x"))
        .await
        .expect_err("standby refuses");
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(
        e.message(),
        format!("not the primary; the primary is at {a1}")
    );
    assert_eq!(primary_header(&e).as_deref(), Some(a1.as_str()));
    let e = fs_client(p2)
        .get_status(PathRequest { path: "/".into() })
        .await
        .expect_err("standby refuses reads");
    assert_eq!(primary_header(&e).as_deref(), Some(a1.as_str()));
    let e = worker_client(p2)
        .register_worker(RegisterWorkerRequest {
            address: "127.0.0.1:29999".into(),
            ..Default::default()
        })
        .await
        .expect_err("standby refuses workers");
    assert_eq!(e.code(), Code::Unavailable);

    // The primary stops cleanly; the standby takes over with /before.
    m1.term();
    assert_eq!(m1.wait_exit(BOUND).code(), Some(0), "{}", m1.stderr());
    wait_info(&mut m2, p2, BOUND, "m2 PRIMARY", |i| i.role == "PRIMARY").await;
    let r = fs_client(p2)
        .get_status(PathRequest {
            path: "/before".into(),
        })
        .await
        .expect("stat on the new primary")
        .into_inner();
    assert!(
        r.into_info()
            .expect("/before survived the failover")
            .is_directory
    );
    assert!(
        m2.stderr().contains("gained primacy at epoch"),
        "{}",
        m2.stderr()
    );
}
