//! The status server of real `primacy master` processes
//! (`alluxio.master.web.port`): the page and `/api/v1/master/info` name the
//! right primary on every master before and after a kill -9 failover,
//! `/api/v1/master/health` flips with the role, `/metrics` parses as
//! Prometheus text and its counters move under load; and what an attacker
//! sends (garbage, unknown paths, other methods, huge requests, a request
//! that never ends) is refused without harming the master. UFS + ZooKeeper:
//! every master is listed through ZooKeeper's contenders, and the page
//! still renders, quickly, while ZooKeeper is down.

mod server_support;

use std::time::{Duration, Instant};

use election_zk::testkit::ZkServer;
use master::client::MasterClient;
use serde_json::Value;
use server_support::http::{exchange, get, parse, request, wait_get, HttpResponse};
use server_support::*;

/// The value of sample `name` with `labels` in a scrape (0 when absent;
/// histograms are not summed).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// GET /metrics, checked line by line (every sample line is
/// `name{labels} number`) and parsed with prometheus-parse.
async fn scrape(web_port: u16) -> prometheus_parse::Scrape {
    let r = get(web_port, "/metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        r.headers
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    for line in r
        .body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(
            line.starts_with("primacy_") && value.parse::<f64>().is_ok(),
            "not a sample line: {line:?}"
        );
    }
    prometheus_parse::Scrape::parse(r.body.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

fn primary_of(info: &Value) -> String {
    info["primary"]["address"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn state_of(info: &Value, address: &str) -> String {
    info["masters"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["address"] == address))
        .and_then(|m| m["state"].as_str())
        .unwrap_or("absent")
        .to_string()
}

/// Waits until every running member's `/api/v1/master/info` names
/// `primary` as the primary; returns the answers.
async fn all_name_primary(cluster: &Cluster, primary: &str) -> Vec<Value> {
    let mut answers = Vec::new();
    for m in cluster.members.iter().filter(|m| m.running()) {
        let r = wait_get(
            m.web_port,
            "/api/v1/master/info",
            BOUND,
            &format!("{} to name {primary} as the primary", m.name),
            |r| r.status == 200 && primary_of(&r.json()) == primary,
        )
        .await;
        answers.push(r.json());
    }
    answers
}

async fn health(web_port: u16, query: &str) -> HttpResponse {
    get(web_port, &format!("/api/v1/master/health{query}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_status_follows_a_kill9_failover_and_metrics_move() {
    let mut cluster = Cluster::embedded(3);
    cluster.format();
    cluster.start_all();
    let (p, _) = cluster.wait_primary(BOUND, "the first primary").await;
    let primary = cluster.members[p].address();

    // Every master, standbys too, names the primary; every master is listed.
    for info in all_name_primary(&cluster, &primary).await {
        assert_eq!(info["journal"]["type"], "EMBEDDED", "{info}");
        assert_eq!(info["journal"]["election"], "RAFT", "{info}");
        let masters = info["masters"].as_array().expect("masters");
        assert_eq!(masters.len(), 3, "{info}");
        assert_eq!(state_of(&info, &primary), "PRIMARY", "{info}");
        assert_eq!(
            info["primary"]["web_url"],
            format!("http://127.0.0.1:{}/", cluster.members[p].web_port),
            "{info}"
        );
        assert!(info["version"].is_string() && info["uptime_ms"].is_u64());
    }
    let page = get(cluster.members[(p + 1) % 3].web_port, "/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        page.headers
    );
    assert!(
        page.body.contains(&format!(
            "<a href=\"http://127.0.0.1:{}/\">{primary}</a>",
            cluster.members[p].web_port
        )),
        "the standby's page links to the primary's page:\n{}",
        page.body
    );

    // Health: the primary serves; a standby follows; ?role= picks one.
    let h = health(cluster.members[p].web_port, "").await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.json()["role"], "PRIMARY");
    assert_eq!(
        health(cluster.members[p].web_port, "?role=primary")
            .await
            .status,
        200
    );
    assert_eq!(
        health(cluster.members[p].web_port, "?role=standby")
            .await
            .status,
        503
    );
    let standby = (p + 1) % 3;
    wait_get(
        cluster.members[standby].web_port,
        "/api/v1/master/health?role=standby",
        BOUND,
        "a following standby to be healthy",
        |r| r.status == 200,
    )
    .await;
    let h = health(cluster.members[standby].web_port, "?role=primary").await;
    assert_eq!(h.status, 503, "{}", h.body);
    assert!(h.json()["reason"]
        .as_str()
        .is_some_and(|r| r.contains("not PRIMARY")));

    // Counters move under load.
    let before = scrape(cluster.members[p].web_port).await;
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let n = 25;
    for i in 0..n {
        client
            .create_file(&format!("/metrics-{i}"))
            .await
            .expect("create");
    }
    let after = scrape(cluster.members[p].web_port).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert!(
        moved("primacy_journal_proposals_total", &[]) >= n as f64,
        "proposals"
    );
    assert!(
        moved(
            "primacy_rpc_requests_total",
            &[("method", "FileSystemMaster/Mutate"), ("code", "OK")]
        ) >= n as f64,
        "Mutate OK requests"
    );
    assert!(
        sample(&after, "primacy_journal_last_applied_sequence", &[])
            > sample(&before, "primacy_journal_last_applied_sequence", &[])
    );
    let latency = after
        .samples
        .iter()
        .find(|s| s.metric == "primacy_journal_commit_latency_seconds")
        .expect("the commit latency histogram");
    assert!(matches!(
        latency.value,
        prometheus_parse::Value::Histogram(_)
    ));
    assert!(sample(&after, "primacy_journal_commit_latency_seconds_count", &[]) >= n as f64);
    assert!(sample(&after, "primacy_journal_batch_entries_count", &[]) >= 1.0);
    assert_eq!(
        sample(&after, "primacy_master_role", &[("role", "primary")]),
        1.0
    );
    assert_eq!(sample(&after, "primacy_master_lag_entries", &[]), 0.0);
    assert!(sample(&after, "primacy_raft_leader_changes_total", &[]) >= 1.0);
    let on_standby = scrape(cluster.members[standby].web_port).await;
    assert_eq!(
        sample(&on_standby, "primacy_master_role", &[("role", "standby")]),
        1.0
    );
    assert!(sample(&on_standby, "primacy_master_lag_entries", &[]) >= 0.0);

    // kill -9 the primary: the survivors name the new primary, list the
    // killed one as UNREACHABLE, and health flips on the new primary.
    let survivors: Vec<usize> = (0..3).filter(|i| *i != p).collect();
    cluster.kill(p);
    let (q, after_kill) = cluster
        .wait_primary(BOUND, "a primary after the kill")
        .await;
    assert_ne!(q, p);
    assert!(after_kill.epoch > 0);
    let new_primary = cluster.members[q].address();
    for info in all_name_primary(&cluster, &new_primary).await {
        assert_eq!(state_of(&info, &primary), "UNREACHABLE", "{info}");
        let killed = info["masters"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["address"] == primary.as_str()))
            .cloned()
            .expect("the killed master is still listed");
        assert!(killed["error"].is_string(), "{killed}");
    }
    let h = wait_get(
        cluster.members[q].web_port,
        "/api/v1/master/health?role=primary",
        BOUND,
        "the new primary's health",
        |r| r.status == 200,
    )
    .await;
    assert_eq!(h.json()["role"], "PRIMARY");
    let other = survivors.into_iter().find(|i| *i != q).expect("a standby");
    assert_eq!(
        health(cluster.members[other].web_port, "?role=primary")
            .await
            .status,
        503
    );
    let info = get(cluster.members[q].web_port, "/api/v1/master/info")
        .await
        .json();
    let changes = info["role_changes"].as_array().expect("role changes");
    assert_eq!(changes[0]["role"], "PRIMARY", "{info}");
    assert!(
        changes[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("gained primacy")),
        "{info}"
    );
    let m = scrape(cluster.members[q].web_port).await;
    assert!(
        sample(
            &m,
            "primacy_master_role_changes_total",
            &[("role", "primary")]
        ) >= 1.0
    );
    // The page of a master with an unreachable peer renders, and says so.
    let page = get(cluster.members[q].web_port, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("UNREACHABLE"), "{}", page.body);

    // What an attacker sends, against the new primary.
    attack(cluster.members[q].web_port).await;
    let h = health(cluster.members[q].web_port, "").await;
    assert_eq!(h.status, 200, "still healthy after the attack: {}", h.body);
}

/// Sends `bytes`; the answer must be a 4xx/5xx, or none (the server
/// closed or reset the connection), within the tests' bound.
async fn refused(port: u16, bytes: &[u8], what: &str) {
    match exchange(port, bytes).await {
        Ok(raw) => match parse(&raw) {
            Some(r) => assert!(r.status >= 400, "{what}: {r:?}"),
            None => eprintln!("{what}: the connection was closed without an answer"),
        },
        Err(e) => eprintln!("{what}: the connection was reset ({e})"),
    }
}

/// Bad requests get 4xx answers (or a closed connection) and nothing else.
async fn attack(port: u16) {
    // Unknown paths: 404, as text (the path is never echoed as HTML).
    let r = get(port, "/nope/%3Cscript%3E").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    assert_eq!(get(port, "/api/v1/master/info/extra").await.status, 404);

    // Other methods on GET routes: 405; HEAD: the headers without a body.
    for path in [
        "/",
        "/api/v1/master/info",
        "/api/v1/master/health",
        "/metrics",
    ] {
        assert_eq!(request(port, "POST", path).await.status, 405, "POST {path}");
        assert_eq!(
            request(port, "DELETE", path).await.status,
            405,
            "DELETE {path}"
        );
        let head = request(port, "HEAD", path).await;
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path}: {}", head.body);
    }

    // A bad query: 400 with a JSON reason.
    let r = get(port, "/api/v1/master/health?role=leader").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());

    // Garbage instead of HTTP: 400 or a closed connection, never a hang.
    refused(port, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n", "garbage").await;
    refused(port, b"GET / HTTP/9.9\r\n\r\n", "an unknown HTTP version").await;

    // A huge body on a GET route: refused without reading it all.
    let mut big = format!(
        "POST /api/v1/master/health HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        16 << 20
    )
    .into_bytes();
    big.resize(big.len() + (16 << 20), b'x');
    refused(port, &big, "a 16 MiB body").await;
    // Huge headers: refused (431) or the connection closed.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    refused(port, huge.as_bytes(), "1 MiB of headers").await;
    // Headers that never end: the server hangs up (header read timeout).
    let started = Instant::now();
    refused(port, b"GET / HTTP/1.1\r\nHost: x\r\n", "unfinished headers").await;
    eprintln!(
        "an unfinished request was dropped after {} ms",
        started.elapsed().as_millis()
    );

    // The server still answers.
    assert_eq!(get(port, "/api/v1/master/info").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ufs_zk_masters_are_listed_and_the_page_renders_while_zookeeper_is_down() {
    let mut zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(3, &zk.address());
    cluster.format();
    cluster.start_all();
    let (p, _) = cluster.wait_primary(BOUND, "the first primary").await;
    let primary = cluster.members[p].address();
    // No address list is configured: the standbys find every master
    // through ZooKeeper's election contenders.
    for info in all_name_primary(&cluster, &primary).await {
        assert_eq!(info["journal"]["type"], "UFS");
        assert_eq!(info["journal"]["election"], "ZOOKEEPER");
        assert_eq!(info["masters"].as_array().map(Vec::len), Some(3), "{info}");
    }
    let standby = (p + 1) % 3;
    wait_get(
        cluster.members[standby].web_port,
        "/api/v1/master/health",
        BOUND,
        "a following UFS standby to be healthy",
        |r| r.status == 200 && r.json()["role"] == "STANDBY",
    )
    .await;

    zk.stop();
    for m in cluster.members.iter() {
        let started = Instant::now();
        let page = tokio::time::timeout(Duration::from_secs(10), get(m.web_port, "/"))
            .await
            .unwrap_or_else(|_| panic!("{}'s page did not render within 10 s", m.name));
        assert_eq!(page.status, 200);
        assert!(page.body.contains("ZooKeeper"), "{}", page.body);
        let info = get(m.web_port, "/api/v1/master/info").await.json();
        let notes = info["notes"].as_array().cloned().unwrap_or_default();
        assert!(
            notes
                .iter()
                .any(|n| n.as_str().is_some_and(|n| n.contains("ZooKeeper"))),
            "{info}"
        );
        eprintln!(
            "{}: page and info with ZooKeeper down in {} ms",
            m.name,
            started.elapsed().as_millis()
        );
    }
    zk.restart();
}

/// `(last_applied, digest)` of `/api/v1/master/state-digest`.
async fn digest(web_port: u16) -> (u64, String) {
    let r = get(web_port, "/api/v1/master/state-digest").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("JSON");
    (
        v["last_applied"].as_u64().expect("last_applied"),
        v["digest"].as_str().expect("digest").to_string(),
    )
}

/// Polls every member until all report the same applied sequence; returns
/// their reports.
async fn settled_digests(cluster: &Cluster) -> Vec<(u64, String)> {
    let deadline = Instant::now() + BOUND;
    loop {
        let mut all = Vec::new();
        for m in &cluster.members {
            all.push(digest(m.web_port).await);
        }
        if all.iter().all(|d| d.0 == all[0].0) {
            return all;
        }
        assert!(Instant::now() < deadline, "never settled: {all:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_digests_agree_across_members_and_move_with_writes() {
    let mut cluster = Cluster::embedded(3);
    cluster.start_caught_up().await;
    let before = settled_digests(&cluster).await;
    assert!(before.iter().all(|d| d == &before[0]), "{before:?}");
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    client.mkdir("/d", false).await.expect("mkdir");
    client.create_file("/d/f").await.expect("create");
    let after = settled_digests(&cluster).await;
    // Same sequence, same state: one digest on every member.
    assert!(after.iter().all(|d| d == &after[0]), "{after:?}");
    assert!(after[0].0 > before[0].0, "{before:?} -> {after:?}");
    assert_ne!(
        after[0].1, before[0].1,
        "the digest did not move with the state"
    );
    // Not a route for writes.
    let r = request(
        cluster.members[0].web_port,
        "POST",
        "/api/v1/master/state-digest",
    )
    .await;
    assert_eq!(r.status, 405, "{}", r.body);
}
