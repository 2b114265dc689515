//! `primacy format`: formats, refuses a journal holding data without
//! `--force` (exit 1), wipes it with `--force`, and exits 2 on usage and
//! configuration errors.

mod server_support;

use bytes::Bytes;
use master::proto::meta::Mkdir;
use master::proto::rpc::{mutate_request, MutateRequest, PathRequest};
use server_support::*;

#[test]
fn format_refuses_existing_data_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = format!("file://{}/journal", dir.path().display());
    let args = |extra: &[&str]| {
        let mut a = vec!["format".to_string()];
        a.extend(flags(&[("alluxio.master.journal.folder", folder.clone())]));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (code, out, err) = run(&args(&[]), dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim_end(),
        format!("Formatting UFS (single master) journal at {folder} ... done")
    );
    let (code, _, err) = run(&args(&[]), dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already formatted"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let (code, out, err) = run(&args(&["--force"]), dir.path());
    assert_eq!(code, 0, "{out}{err}");

    // A folder holding something that is not a journal is refused even with --force.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("keep.txt"), b"not a journal").expect("write");
    let mut foreign = vec![
        "format".to_string(),
        "-D".to_string(),
        format!("alluxio.master.journal.folder=file://{}", other.display()),
    ];
    let (code, _, err) = run(&foreign, dir.path());
    assert_eq!(code, 1, "{err}");
    foreign.push("--force".to_string());
    let (code, _, err) = run(&foreign, dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(other.join("keep.txt").exists());
}

#[test]
fn format_exits_2_on_usage_and_configuration_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // -D without '='.
    let (code, _, err) = run(&s(&["format", "-D", "novalue"]), dir.path());
    assert_eq!(code, 2, "{err}");
    // A malformed value names the key and the value.
    let (code, _, err) = run(
        &s(&[
            "format",
            "-D",
            "alluxio.master.journal.checkpoint.period.entries=lots",
        ]),
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("alluxio.master.journal.checkpoint.period.entries"),
        "{err}"
    );
    assert!(err.contains("\"lots\""), "{err}");
    // --conf naming a directory without the site file.
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).expect("mkdir");
    let conf_arg = conf.display().to_string();
    let (code, _, err) = run(&s(&["format", "--conf", &conf_arg]), dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("primacy-site.properties"), "{err}");
    // With the site file, --conf is read.
    let folder = format!("file://{}/from-conf", dir.path().display());
    std::fs::write(
        conf.join("primacy-site.properties"),
        format!("alluxio.master.journal.folder={folder}\n"),
    )
    .expect("write");
    let (code, out, err) = run(&s(&["format", "--conf", &conf_arg]), dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&folder), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_format_discards_the_old_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let f = flags(&[
        (
            "alluxio.master.journal.folder",
            format!("file://{}/journal", dir.path().display()),
        ),
        ("alluxio.master.rpc.port", port.to_string()),
        ("alluxio.master.web.port", free_port().to_string()),
    ]);
    let cmd = |sub: &str, extra: &[&str]| {
        let mut a = vec![sub.to_string()];
        a.extend(f.iter().cloned());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    assert_eq!(run(&cmd("format", &[]), dir.path()).0, 0);
    let mut m = Proc::spawn(&cmd("master", &[]), &dir.path().join("m1.log"));
    wait_info(&mut m, port, BOUND, "PRIMARY", |i| i.role == "PRIMARY").await;
    let r = fs_client(port)
        .mutate(MutateRequest {
            client_id: Bytes::from_static(b"format-test"),
            request_seq: 1,
            op: Some(mutate_request::Op::Mkdir(Mkdir {
                path: "/old".into(),
                recursive: false,
            })),
        })
        .await
        .expect("mutate")
        .into_inner();
    assert!(r.is_ok());
    m.term();
    assert_eq!(m.wait_exit(BOUND).code(), Some(0));

    let (code, out, err) = run(&cmd("format", &["--force"]), dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let mut m = Proc::spawn(&cmd("master", &[]), &dir.path().join("m2.log"));
    wait_info(&mut m, port, BOUND, "PRIMARY", |i| i.role == "PRIMARY").await;
    let r = fs_client(port)
        .get_status(PathRequest {
            path: "/old".into(),
        })
        .await
        .expect("stat")
        .into_inner();
    assert_eq!(r.code(), Some(master::meta::ErrorCode::NotFound));
}
