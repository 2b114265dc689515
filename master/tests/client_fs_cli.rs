//! `primacy fs` in-process (`fs_cmd::main_with`) against a fake primary:
//! argument parsing, output, and exit codes (0 ok, 1 refused, 2 usage or
//! configuration, 3 unreachable). The process-level tests of the `primacy`
//! binary come with the server side.

mod fake_master;

use fake_master::{dead_address, FakeMaster, Role};
use master::cli::fs_cmd::main_with;

struct Run {
    code: u8,
    out: String,
    err: String,
}

fn fs(args: &[&str]) -> Run {
    let mut argv = vec!["primacy-fs"];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with(argv, &mut out, &mut err);
    Run {
        code,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
    }
}

struct Cluster {
    _rt: tokio::runtime::Runtime,
    primary: FakeMaster,
    standby: FakeMaster,
}

impl Cluster {
    fn start() -> Cluster {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let primary = rt.block_on(FakeMaster::start(Role::Primary));
        let standby = rt.block_on(FakeMaster::start(Role::Standby(Some(primary.address()))));
        Cluster {
            _rt: rt,
            primary,
            standby,
        }
    }

    /// `-D` flags naming the standby first, then the primary.
    fn flag(&self) -> String {
        format!(
            "alluxio.master.rpc.addresses={},{}",
            self.standby.address(),
            self.primary.address()
        )
    }
}

#[test]
fn operations_print_results_and_exit_0_or_1() {
    let c = Cluster::start();
    let d = c.flag();
    let run = |args: &[&str]| {
        let mut all = vec!["-D", d.as_str()];
        all.extend_from_slice(args);
        fs(&all)
    };

    let r = run(&["leader"]);
    assert_eq!(
        (r.code, r.out.trim()),
        (0, c.primary.address().as_str()),
        "{}",
        r.err
    );

    let r = run(&["mkdir", "/a"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("/a"), "{}", r.out);
    let r = run(&["mkdir", "/a"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("mkdir /a") && r.err.contains("already exists"),
        "{}",
        r.err
    );
    assert_eq!(run(&["mkdir", "-p", "/a/b/c"]).code, 0);
    assert_eq!(run(&["touch", "/a/f"]).code, 0);
    assert_eq!(run(&["touch", "/missing/f"]).code, 1);

    let r = run(&["ls", "/a"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.out);
    assert!(
        lines[0].starts_with("DIRECTORY") && lines[0].ends_with("/a/b"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("INCOMPLETE") && lines[1].ends_with("/a/f"),
        "{}",
        lines[1]
    );

    let r = run(&["ls", "--json", "/a"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["path"], "/a/b");
    assert_eq!(arr[0]["type"], "directory");
    assert_eq!(arr[0]["child_count"], 1);
    assert_eq!(arr[1]["type"], "file");
    assert_eq!(arr[1]["completed"], false);

    let r = run(&["stat", "--json", "/a/f"]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(
        (v["name"].as_str(), v["length"].as_u64()),
        (Some("f"), Some(0))
    );
    let r = run(&["stat", "/a"]);
    assert_eq!(r.code, 0);
    assert!(r.out.contains("type: directory"), "{}", r.out);
    assert_eq!(run(&["stat", "/nope"]).code, 1);

    let r = run(&["rm", "/a"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("/a"), "{}", r.err);
    assert_eq!(run(&["mv", "/a/f", "/a/g"]).code, 0);
    assert_eq!(run(&["mv", "/a/g", "/a/b"]).code, 1);
    assert_eq!(run(&["rm", "-R", "/a"]).code, 0);
    assert_eq!(run(&["ls", "/"]).out, "");
}

#[test]
fn uri_authorities_pick_the_cluster() {
    let c = Cluster::start();
    // The configuration names a dead master; the URI names the real ones.
    let dead = format!("alluxio.master.rpc.addresses={}", dead_address());
    let auth = format!("{};{}", c.standby.address(), c.primary.address());
    let uri = format!("primacy://{auth}/u");
    let r = fs(&["-D", &dead, "mkdir", &uri]);
    assert_eq!(r.code, 0, "{}", r.err);
    let r = fs(&["-D", &dead, "ls", &format!("alluxio://{auth}/")]);
    assert!(r.out.contains("/u"), "{}", r.out);
    // A plain DST stays in SRC's cluster.
    let r = fs(&["-D", &dead, "mv", &uri, "/v"]);
    assert_eq!(r.code, 0, "{}", r.err);
    // Different clusters: a usage error.
    let other = format!("primacy://{}/w", c.primary.address());
    let r = fs(&["-D", &dead, "mv", &format!("primacy://{auth}/v"), &other]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("different clusters"), "{}", r.err);
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["mkdir"][..],
        &["mv", "/a"][..],
        &["ls", "--bogus", "/"][..],
        &["-D", "novalue", "leader"][..],
    ] {
        let r = fs(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
        assert!(!r.err.is_empty(), "{args:?}");
    }
    assert_eq!(fs(&["--help"]).code, 0);
    // A malformed value names the key.
    let r = fs(&["-D", "alluxio.master.rpc.port=abc", "leader"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("alluxio.master.rpc.port"), "{}", r.err);
    // A malformed path or URI, before any connection.
    let dead = format!("alluxio.master.rpc.addresses={}", dead_address());
    for bad in [
        "relative",
        "/a//b",
        "hdfs://nn/a",
        "primacy://h:0/a",
        "primacy://ebj@nope/a",
    ] {
        let r = fs(&["-D", &dead, "mkdir", bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.err);
    }
    // --conf naming a directory without the site file.
    let r = fs(&["--conf", "/nonexistent-primacy-conf", "leader"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("nonexistent-primacy-conf"), "{}", r.err);
}

#[test]
fn an_unreachable_cluster_exits_3() {
    let dead = format!("alluxio.master.rpc.addresses={}", dead_address());
    let quick = "alluxio.user.rpc.retry.max.duration=300ms";
    let r = fs(&["-D", &dead, "-D", quick, "leader"]);
    assert_eq!(r.code, 3);
    assert!(r.err.contains("no primary master answered"), "{}", r.err);
    assert_eq!(r.out, "");
    // -D after the subcommand works too.
    let r = fs(&["ls", "/", "-D", &dead, "-D", quick]);
    assert_eq!(r.code, 3, "{}", r.err);
}
