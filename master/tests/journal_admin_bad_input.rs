//! The JournalMaster service attacked directly with a raw tonic client
//! (what `primacy journal` never sends): empty, blank and huge addresses,
//! ids 0 and u64::MAX, digits past u64, control characters, a port out of
//! range, the address of a non-member and of nobody. Every call must come
//! back as a gRPC status (INVALID_ARGUMENT, NOT_FOUND or
//! FAILED_PRECONDITION) with a message of bounded size (a status message
//! travels in an HTTP/2 header, so echoing a megabyte of input breaks the
//! answer itself), and nothing may change: same primary, same members,
//! writes still accepted.

mod server_support;

use master::proto::rpc::journal_master_client::JournalMasterClient;
use master::proto::rpc::{
    GetQuorumInfoRequest, QuorumInfo, QuorumMemberRequest, TransferLeadershipRequest,
};
use server_support::*;
use tonic::transport::Channel;
use tonic::Code;

/// Longest status message the service may answer with.
const MAX_MESSAGE: usize = 4096;

async fn journal_client(port: u16) -> JournalMasterClient<Channel> {
    let ch = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    JournalMasterClient::new(ch).max_decoding_message_size(64 << 20)
}

fn shape(q: &QuorumInfo) -> Vec<(String, String, String, bool)> {
    let mut v: Vec<_> = q
        .members
        .iter()
        .map(|m| (m.id.clone(), m.address.clone(), m.role.clone(), m.is_leader))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_addresses_are_refused_and_change_nothing() {
    let mut cluster = Cluster::embedded(2);
    cluster.format();
    cluster.start_all();
    let (p, _) = cluster.wait_primary(BOUND, "the first primary").await;
    let other = 1 - p;
    cluster.wait_caught_up(other, BOUND).await;
    let mut admin = journal_client(cluster.members[p].rpc_port).await;
    let before = admin
        .get_quorum_info(GetQuorumInfoRequest {})
        .await
        .expect("quorum info")
        .into_inner();
    assert_eq!(before.members.len(), 2, "{before:?}");

    let huge = "h".repeat(1 << 20) + ":19200";
    let huge_digits = "9".repeat(1 << 20);
    let nobody = format!("127.0.0.1:{}", free_port());
    let inputs: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("blank", "   ".into()),
        ("id 0", "0".into()),
        ("id u64::MAX", u64::MAX.to_string()),
        ("digits past u64", "18446744073709551616".into()),
        ("1 MiB of digits", huge_digits),
        ("1 MiB host", huge),
        ("port 0", "127.0.0.1:0".into()),
        ("port 65536", "127.0.0.1:65536".into()),
        ("NUL", "h\0st:19200".into()),
        ("newline", "host:19200\n127.0.0.1:1".into()),
        ("only a colon", ":".into()),
        ("non-member", nobody),
    ];
    for (what, address) in &inputs {
        let transfer = admin
            .transfer_leadership(TransferLeadershipRequest {
                address: address.clone(),
            })
            .await;
        let remove = admin
            .remove_quorum_member(QuorumMemberRequest {
                address: address.clone(),
            })
            .await;
        let add = admin
            .add_quorum_member(QuorumMemberRequest {
                address: address.clone(),
            })
            .await;
        for (op, r) in [
            ("elect", transfer.map(|_| ())),
            ("remove", remove.map(|_| ())),
        ]
        .into_iter()
        .chain([("add", add.map(|_| ()))])
        {
            let e = r.expect_err(&format!("{op} {what}: refused"));
            assert!(
                matches!(
                    e.code(),
                    Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition
                ),
                "{op} {what}: a clear refusal, not {:?}: {}",
                e.code(),
                e.message().chars().take(300).collect::<String>()
            );
            assert!(
                e.message().len() <= MAX_MESSAGE,
                "{op} {what}: the message is {} bytes",
                e.message().len()
            );
            assert!(!e.message().is_empty(), "{op} {what}: says why");
        }
    }
    // A request past the 4 MiB limit is refused by the transport.
    let too_big = admin
        .transfer_leadership(TransferLeadershipRequest {
            address: "x".repeat(5 << 20),
        })
        .await
        .expect_err("over the limit");
    assert!(
        matches!(too_big.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{too_big:?}"
    );

    // Nothing changed: same primary, same members, writes accepted.
    let after = admin
        .get_quorum_info(GetQuorumInfoRequest {})
        .await
        .expect("quorum info after")
        .into_inner();
    assert_eq!(shape(&before), shape(&after));
    assert_eq!(cluster.wait_primary(BOUND, "after").await.0, p);
    let client =
        master::client::MasterClient::from_config(&cluster.client_config()).expect("client");
    client
        .mkdir("/still-serving", false)
        .await
        .expect("a write");
    for i in 0..2 {
        assert!(cluster.members[i].running(), "master {i} still runs");
    }
}

/// Usage errors that clap itself reports (a missing or empty `--address`,
/// an unknown flag or subcommand, a malformed `-D`) still print one JSON
/// object on stdout when `--json` was given, exit 2, and keep clap's
/// message on stderr.
#[test]
fn usage_errors_are_json_with_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        "journal quorum elect --json",
        "journal quorum elect --json --address",
        "journal quorum add --address h:1 -D nonsense --json",
        "journal quorum bogus --json",
        "journal checkpoint --json --bogus",
        "fs ls --json",
    ] {
        let argv: Vec<String> = args.split(' ').map(str::to_string).collect();
        let (code, out, err) = run(&argv, dir.path());
        assert_eq!(code, 2, "{args}: {err}");
        let json: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{args}: stdout is not one JSON value ({e}): {out:?}"));
        let message = json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{args}: no error in {json}"));
        assert!(
            !message.is_empty() && !message.contains("Usage:"),
            "{args}: {message}"
        );
        assert!(
            err.contains("error:"),
            "{args}: clap's message on stderr: {err}"
        );
    }
    // Without --json stdout stays empty.
    let argv: Vec<String> = ["journal", "quorum", "elect"].map(String::from).to_vec();
    let (code, out, _) = run(&argv, dir.path());
    assert_eq!((code, out.as_str()), (2, ""));
}
