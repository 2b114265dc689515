//! Cluster URIs: every accepted form, every refused form (with a message that
//! quotes the URI and names the rule), and their resolution to a discovery.

use std::time::Duration;

use master::client::{Authority, ClientError, ClusterUri, Discovery, MasterClient};
use master::config::MasterConfig;

fn ok(text: &str) -> ClusterUri {
    ClusterUri::parse(text).unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
}

fn masters(list: &[&str]) -> Authority {
    Authority::Masters(list.iter().map(|s| s.to_string()).collect())
}

#[test]
fn plain_paths_and_empty_authorities_use_the_configuration() {
    assert_eq!(ok("/a/b").authority, Authority::Configured);
    assert_eq!(ok("/a/b").path, "/a/b");
    assert_eq!(ok("/").path, "/");
    let u = ok("primacy:///a");
    assert_eq!(
        (u.authority, u.path.as_str()),
        (Authority::Configured, "/a")
    );
    assert_eq!(ok("alluxio:///x").authority, Authority::Configured);
}

#[test]
fn master_lists_with_commas_or_semicolons() {
    let u = ok("primacy://h1:19998,h2:19998/p/q");
    assert_eq!(u.authority, masters(&["h1:19998", "h2:19998"]));
    assert_eq!(u.path, "/p/q");
    assert_eq!(
        ok("alluxio://h1:1;h2:2;h3:3/x").authority,
        masters(&["h1:1", "h2:2", "h3:3"])
    );
    assert_eq!(ok("primacy://h1:7").authority, masters(&["h1:7"]));
    assert_eq!(ok("primacy://h1:7").path, "/");
    // Default port, IPv6, upper-case scheme.
    assert_eq!(ok("primacy://h1/x").authority, masters(&["h1:19998"]));
    assert_eq!(
        ok("PRIMACY://[::1]:5,[fe80::1]/x").authority,
        masters(&["[::1]:5", "[fe80::1]:19998"])
    );
}

#[test]
fn zookeeper_and_logical_name_authorities() {
    assert_eq!(
        ok("primacy://zk@z1:2181;z2:2182/p").authority,
        Authority::ZooKeeper(vec!["z1:2181".into(), "z2:2182".into()])
    );
    assert_eq!(
        ok("alluxio://zk@z1,z2:3/p").authority,
        Authority::ZooKeeper(vec!["z1:2181".into(), "z2:3".into()])
    );
    assert_eq!(
        ok("primacy://ebj@my-cluster_1.x/d").authority,
        Authority::Nameservice("my-cluster_1.x".into())
    );
}

#[test]
fn malformed_uris_are_refused_naming_the_uri_and_the_rule() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("a/b", "must be absolute"),
        ("h1:19998", "looks like an address"),
        ("primacy:/a", "two slashes"),
        ("hdfs://nn:8020/a", "unsupported scheme"),
        ("file:///a", "unsupported scheme"),
        ("primacy://h1:0/a", "not a port number"),
        ("primacy://h1:65536/a", "not a port number"),
        ("primacy://h1:x/a", "not a port number"),
        ("primacy://h1:/a", "not a port number"),
        ("primacy://:19998/a", "has no host"),
        ("primacy://h1:1,,h2:2/a", "empty address"),
        ("primacy://h1:1,/a", "empty address"),
        ("primacy://h1:1,h2:2;h3:3/a", "mixes ','"),
        ("primacy://h 1:1/a", "whitespace"),
        ("primacy://[::1:5/a", "without closing"),
        ("primacy://[::1]x/a", "expected ':port'"),
        ("primacy://zk@/a", "zk@ needs"),
        ("primacy://zk@z1:99999/a", "not a port number"),
        ("primacy://ebj@/a", "ebj@ needs"),
        ("primacy://ebj@a:b/a", "logical name"),
        ("primacy://xyz@h/a", "unknown authority prefix"),
        ("primacy://h1:1/a?x=1", "queries"),
        ("primacy://h1:1/a#frag", "fragments"),
    ];
    for (text, rule) in cases {
        match ClusterUri::parse(text) {
            Ok(u) => panic!("{text:?} accepted as {u:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("{text:?}")),
                    "{msg} does not quote {text:?}"
                );
                assert!(msg.contains(rule), "{text:?}: {msg} does not name {rule:?}");
            }
        }
    }
}

#[test]
fn authorities_resolve_to_discoveries() {
    let cfg = MasterConfig::from_pairs(&[
        ("alluxio.master.nameservices.ns1", "m1,m2"),
        ("alluxio.master.rpc.address.ns1.m1", "a:1"),
        ("alluxio.master.rpc.address.ns1.m2", "b:2"),
        ("alluxio.master.rpc.addresses", "c:3,d:4"),
        ("alluxio.zookeeper.leader.path", "/primacy/leader"),
        ("alluxio.zookeeper.connection.timeout", "3s"),
    ])
    .unwrap();
    let d = |t: &str| Discovery::for_authority(&ok(t).authority, &cfg);
    assert_eq!(
        d("primacy://ebj@ns1/x").unwrap(),
        Discovery::Masters(vec!["a:1".into(), "b:2".into()])
    );
    assert_eq!(
        d("/x").unwrap(),
        Discovery::Masters(vec!["c:3".into(), "d:4".into()])
    );
    assert_eq!(
        d("primacy://zk@z:1/x").unwrap(),
        Discovery::ZooKeeper {
            ensemble: vec!["z:1".into()],
            leader_path: "/primacy/leader".into(),
            timeout: Duration::from_secs(3),
        }
    );
    match d("primacy://ebj@nope/x") {
        Err(ClientError::Config(m)) => {
            assert!(m.contains("alluxio.master.nameservices.nope"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_configuration_picks_zookeeper_then_addresses_then_the_single_master() {
    let zk = MasterConfig::from_pairs(&[
        ("alluxio.zookeeper.enabled", "true"),
        ("alluxio.zookeeper.address", "z1:2181,z2:2181"),
        ("alluxio.master.rpc.addresses", "c:3"),
    ])
    .unwrap();
    assert!(matches!(
        Discovery::from_config(&zk).unwrap(),
        Discovery::ZooKeeper { ensemble, .. } if ensemble == ["z1:2181", "z2:2181"]
    ));
    let no_address = MasterConfig::from_pairs(&[("alluxio.zookeeper.enabled", "true")]).unwrap();
    match Discovery::from_config(&no_address) {
        Err(ClientError::Config(m)) => assert!(m.contains("alluxio.zookeeper.address"), "{m}"),
        other => panic!("{other:?}"),
    }
    let single = MasterConfig::from_pairs(&[("alluxio.master.hostname", "m0")]).unwrap();
    assert_eq!(
        Discovery::from_config(&single).unwrap(),
        Discovery::Masters(vec!["m0:19998".into()])
    );
    let (client, path) = MasterClient::from_uri("alluxio://h9:9/dir", &single).unwrap();
    assert_eq!(client.discovery(), &Discovery::Masters(vec!["h9:9".into()]));
    assert_eq!(path, "/dir");
    assert!(matches!(
        MasterClient::from_uri("nope", &single),
        Err(ClientError::Uri(_))
    ));
}
