//! The worker agent's loop against fake masters: register with a full block
//! report, heartbeat, register again on REGISTER and on a failover, stop on
//! request.

mod fake_master;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fake_master::{quick_options, FakeMaster, Role};
use journal_core::testkit::wait_until;
use master::client::{Discovery, MasterClient};
use master::config::MasterConfig;
use master::worker::{WorkerAgent, WorkerError, WorkerOptions};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_heartbeats_and_registers_again_on_register_and_on_failover() {
    let a = FakeMaster::start(Role::Primary).await;
    let b = FakeMaster::start(Role::Standby(Some(a.address()))).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("5"), b"12345").unwrap();
    std::fs::write(dir.path().join("1"), b"x").unwrap();
    std::fs::write(dir.path().join("README"), b"not a block").unwrap();
    let client = MasterClient::new(
        Discovery::Masters(vec![b.address(), a.address()]),
        quick_options(Duration::from_secs(10)),
    );
    let options = WorkerOptions {
        address: "worker-1:29999".into(),
        data_dir: dir.path().to_path_buf(),
        heartbeat_interval: Duration::from_millis(20),
        capacity_bytes: Some(1 << 30),
    };
    let agent = WorkerAgent::new(client, options).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));

    // Registered with the primary, with the full block report.
    wait_until("registered with a", WAIT, || {
        a.state.registrations.lock().unwrap().len() == 1
    })
    .await;
    {
        let regs = a.state.registrations.lock().unwrap();
        assert_eq!(regs[0].address, "worker-1:29999");
        assert_eq!(regs[0].block_ids, vec![1, 5]);
        assert_eq!(regs[0].used_bytes, 6);
        assert_eq!(regs[0].capacity_bytes, 1 << 30);
    }
    wait_until("heartbeats to a", WAIT, || {
        a.state.heartbeats.lock().unwrap().len() >= 2
    })
    .await;

    // REGISTER: registers again at once.
    a.state.ask_register.store(true, Ordering::SeqCst);
    wait_until("registered again with a", WAIT, || {
        a.state.registrations.lock().unwrap().len() == 2
    })
    .await;

    // Failover: a redirects to b; the agent registers with b.
    b.state.set_role(Role::Primary);
    a.state.set_role(Role::Standby(Some(b.address())));
    wait_until("registered with b", WAIT, || {
        b.state.registrations.lock().unwrap().len() == 1
    })
    .await;

    // Heartbeats carry the current block report.
    std::fs::write(dir.path().join("9"), b"abc").unwrap();
    wait_until("block 9 reported to b", WAIT, || {
        b.state
            .heartbeats
            .lock()
            .unwrap()
            .last()
            .is_some_and(|h| h.block_ids == [1, 5, 9] && h.used_bytes == 9)
    })
    .await;
    assert_eq!(a.state.registrations.lock().unwrap().len(), 2);

    let _ = stop.send(());
    let result = tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn an_unreachable_cluster_is_retried_until_a_primary_appears() {
    let m = FakeMaster::start(Role::Standby(None)).await;
    let dir = tempfile::tempdir().unwrap();
    let client = MasterClient::new(
        Discovery::Masters(vec![m.address()]),
        quick_options(Duration::from_millis(200)),
    );
    let options = WorkerOptions {
        address: "w:1".into(),
        data_dir: dir.path().join("created"),
        heartbeat_interval: Duration::from_millis(20),
        capacity_bytes: None,
    };
    let agent = WorkerAgent::new(client, options).unwrap();
    assert!(dir.path().join("created").is_dir());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));
    // Several give-ups of the client later, the agent is still trying.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!run.is_finished());
    m.state.set_role(Role::Primary);
    wait_until("registered", WAIT, || {
        m.state.registrations.lock().unwrap().len() == 1
    })
    .await;
    assert!(m.state.registrations.lock().unwrap()[0].capacity_bytes > 0);
    let _ = stop.send(());
    assert!(tokio::time::timeout(WAIT, run)
        .await
        .unwrap()
        .unwrap()
        .is_ok());
}

#[test]
fn options_come_from_the_configuration_and_need_a_data_folder() {
    let cfg = MasterConfig::from_pairs(&[
        ("alluxio.worker.hostname", "w7"),
        ("alluxio.worker.rpc.port", "31000"),
        ("alluxio.work.dir", "/var/primacy"),
        ("alluxio.worker.block.heartbeat.interval", "250ms"),
    ])
    .unwrap();
    let o = WorkerOptions::from_config(&cfg).unwrap();
    assert_eq!(o.address, "w7:31000");
    assert_eq!(o.data_dir, std::path::PathBuf::from("/var/primacy/worker"));
    assert_eq!(o.heartbeat_interval, Duration::from_millis(250));
    let none = MasterConfig::from_pairs::<&str, &str>(&[]).unwrap();
    match WorkerOptions::from_config(&none) {
        Err(WorkerError::Config(m)) => assert!(m.contains("alluxio.worker.data.folder"), "{m}"),
        other => panic!("{other:?}"),
    }
}
