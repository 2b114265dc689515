//! Every operation and every refusal, one rule per test.

use super::Harness;
use crate::meta::{Entry, ErrorCode, StoreView, ROOT_ID};

#[test]
fn mkdir_creates_a_directory_and_stamps_the_parent() {
    let mut h = Harness::new();
    let a = h.ok(Entry::mkdir("/a", false));
    assert!(a.is_directory && a.completed);
    assert_eq!((a.name.as_str(), a.path.as_str()), ("a", "/a"));
    assert_eq!(
        (a.created_ms, a.modified_ms, a.child_count),
        (h.ms, h.ms, 0)
    );
    let root = h.stat("/");
    assert_eq!(
        (root.id, root.child_count, root.modified_ms),
        (ROOT_ID, 1, h.ms)
    );
    assert_eq!(root.name, "");
}

#[test]
fn mkdir_recursive_creates_missing_parents_and_accepts_existing() {
    let mut h = Harness::new();
    let c = h.ok(Entry::mkdir("/a/b/c", true));
    assert_eq!(c.path, "/a/b/c");
    assert_eq!(h.stat("/a").child_count, 1);
    assert_eq!(h.stat("/a/b").child_count, 1);
    let again = h.ok(Entry::mkdir("/a/b/c", true));
    assert_eq!(again.id, c.id, "an existing directory with -p is success");
    assert_eq!(h.ok(Entry::mkdir("/", true)).id, ROOT_ID);
    // Ids are handed out in path order.
    assert_eq!(h.stat("/a").id + 2, c.id);
}

#[test]
fn mkdir_refusals() {
    let mut h = Harness::new();
    let m = h.fails(Entry::mkdir("/x/y", false), ErrorCode::NotFound);
    assert!(
        m.contains("\"/x\" does not exist") && m.contains("recursive"),
        "{m}"
    );
    h.mkdir("/a");
    let m = h.fails(Entry::mkdir("/a", false), ErrorCode::AlreadyExists);
    assert!(m.contains("\"/a\" already exists"), "{m}");
    h.fails(Entry::mkdir("/", false), ErrorCode::AlreadyExists);
    h.touch("/a/f");
    let m = h.fails(Entry::mkdir("/a/f", true), ErrorCode::AlreadyExists);
    assert!(m.contains("as a file"), "{m}");
    let m = h.fails(Entry::mkdir("/a/f/g", true), ErrorCode::NotADirectory);
    assert!(m.contains("\"/a/f\" is a file"), "{m}");
    let m = h.fails(Entry::mkdir("/a/", true), ErrorCode::InvalidPath);
    assert!(m.contains("\"/a/\"") && m.contains("trailing"), "{m}");
}

#[test]
fn create_file_under_a_directory() {
    let mut h = Harness::new();
    h.mkdir("/d");
    let f = h.touch("/d/f");
    assert!(!f.is_directory && !f.completed);
    assert_eq!((f.length, f.child_count), (0, 0));
    assert_eq!(h.stat("/d").child_count, 1);
    assert_eq!(h.stat("/d").modified_ms, h.ms);
}

#[test]
fn create_file_refusals() {
    let mut h = Harness::new();
    let m = h.fails(Entry::create_file("/nope/f"), ErrorCode::NotFound);
    assert!(m.contains("\"/nope\" does not exist"), "{m}");
    h.touch("/f");
    h.fails(Entry::create_file("/f"), ErrorCode::AlreadyExists);
    let m = h.fails(Entry::create_file("/f/g"), ErrorCode::NotADirectory);
    assert!(m.contains("\"/f\" is a file, not a directory"), "{m}");
    h.fails(Entry::create_file("/"), ErrorCode::AlreadyExists);
    h.fails(Entry::create_file("rel"), ErrorCode::InvalidPath);
    h.fails(Entry::create_file("/a/../b"), ErrorCode::InvalidPath);
    h.fails(Entry::create_file("/a\0"), ErrorCode::InvalidPath);
    h.fails(Entry::create_file("/a//b"), ErrorCode::InvalidPath);
    h.fails(Entry::create_file(""), ErrorCode::InvalidPath);
}

#[test]
fn complete_file_sets_length_and_blocks() {
    let mut h = Harness::new();
    h.touch("/f");
    let f = h.ok(Entry::complete_file("/f", &[(7, 100), (3, 28)]));
    assert!(f.completed);
    assert_eq!(f.length, 128);
    let blocks: Vec<(u64, u64)> = f.blocks.iter().map(|b| (b.block_id, b.length)).collect();
    assert_eq!(blocks, [(7, 100), (3, 28)], "block order is kept");
    assert_eq!(h.stat("/f").blocks.len(), 2);
    h.touch("/empty");
    let e = h.ok(Entry::complete_file("/empty", &[]));
    assert!(e.completed && e.length == 0 && e.blocks.is_empty());
}

#[test]
fn complete_file_refusals() {
    let mut h = Harness::new();
    h.fails(Entry::complete_file("/f", &[]), ErrorCode::NotFound);
    h.mkdir("/d");
    let m = h.fails(Entry::complete_file("/d", &[]), ErrorCode::IsADirectory);
    assert!(m.contains("\"/d\" is a directory"), "{m}");
    h.touch("/f");
    let m = h.fails(
        Entry::complete_file("/f", &[(1, 1), (1, 2)]),
        ErrorCode::InvalidArgument,
    );
    assert!(m.contains("block id 1 is listed twice"), "{m}");
    let m = h.fails(
        Entry::complete_file("/f", &[(1, u64::MAX), (2, 1)]),
        ErrorCode::InvalidArgument,
    );
    assert!(m.contains("2^64"), "{m}");
    h.ok(Entry::complete_file("/f", &[(1, 10)]));
    let m = h.fails(
        Entry::complete_file("/f", &[(2, 5)]),
        ErrorCode::FileAlreadyCompleted,
    );
    assert!(m.contains("\"/f\" is already complete"), "{m}");
    assert_eq!(h.stat("/f").length, 10, "the first completion stands");
}

#[test]
fn delete_file_and_empty_directory() {
    let mut h = Harness::new();
    h.mkdir("/d");
    h.touch("/d/f");
    h.ok(Entry::complete_file("/d/f", &[(1, 5)]));
    let r = h.run(Entry::delete("/d/f", false));
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(h.stat("/d").child_count, 0);
    assert_eq!(h.machine.store().counts().block_files, 0, "blocks go too");
    assert!(h.run(Entry::delete("/d", false)).is_ok());
    assert_eq!(h.ls("/"), Vec::<String>::new());
    assert_eq!(h.machine.store().counts().inodes, 1);
}

#[test]
fn delete_recursive_removes_the_subtree() {
    let mut h = Harness::new();
    h.mkdir("/a/b/c");
    h.touch("/a/b/f");
    h.ok(Entry::complete_file("/a/b/f", &[(9, 1)]));
    h.mkdir("/keep");
    let r = h.run(Entry::delete("/a", true));
    assert_eq!(r.outcome, crate::meta::FsResult::deleted(4).outcome);
    assert_eq!(h.ls("/"), ["keep"]);
    let counts = h.machine.store().counts();
    assert_eq!((counts.inodes, counts.edges, counts.block_files), (2, 1, 0));
}

#[test]
fn delete_refusals() {
    let mut h = Harness::new();
    let m = h.fails(Entry::delete("/", true), ErrorCode::InvalidArgument);
    assert!(m.contains("root") && m.contains("cannot be deleted"), "{m}");
    h.fails(Entry::delete("/nope", true), ErrorCode::NotFound);
    h.fails(Entry::delete("/nope/x", true), ErrorCode::NotFound);
    h.mkdir("/d");
    h.touch("/d/f");
    let m = h.fails(Entry::delete("/d", false), ErrorCode::DirectoryNotEmpty);
    assert!(m.contains("\"/d\"") && m.contains("1 children"), "{m}");
    h.fails(Entry::delete("/d/f/x", true), ErrorCode::NotADirectory);
    h.fails(Entry::delete("/d/", true), ErrorCode::InvalidPath);
}

#[test]
fn rename_moves_a_subtree_and_stamps_both_parents() {
    let mut h = Harness::new();
    h.mkdir("/src/dir");
    h.touch("/src/dir/f");
    h.mkdir("/dst");
    let moved = h.ok(Entry::rename("/src/dir", "/dst/renamed"));
    assert_eq!(moved.path, "/dst/renamed");
    assert_eq!(moved.name, "renamed");
    assert_eq!(h.ls("/dst/renamed"), ["f"]);
    assert_eq!(h.stat("/dst/renamed/f").path, "/dst/renamed/f");
    assert_eq!(h.stat("/src").child_count, 0);
    assert_eq!(h.stat("/dst").child_count, 1);
    assert_eq!(h.stat("/src").modified_ms, h.ms);
    assert_eq!(h.stat("/dst").modified_ms, h.ms);
    // Within one directory: the count is unchanged.
    h.ok(Entry::rename("/dst/renamed", "/dst/again"));
    assert_eq!(h.stat("/dst").child_count, 1);
    assert_eq!(h.ls("/dst"), ["again"]);
}

#[test]
fn rename_refusals() {
    let mut h = Harness::new();
    h.mkdir("/a/b");
    h.touch("/f");
    h.mkdir("/other");
    h.fails(Entry::rename("/nope", "/x"), ErrorCode::NotFound);
    let m = h.fails(
        Entry::rename("/a", "/a/b/inside"),
        ErrorCode::InvalidArgument,
    );
    assert!(m.contains("own subtree"), "{m}");
    h.fails(Entry::rename("/a", "/a/new"), ErrorCode::InvalidArgument);
    let m = h.fails(Entry::rename("/f", "/other"), ErrorCode::AlreadyExists);
    assert!(m.contains("\"/other\" already exists"), "{m}");
    h.fails(Entry::rename("/a", "/a"), ErrorCode::AlreadyExists);
    let m = h.fails(Entry::rename("/", "/x"), ErrorCode::InvalidArgument);
    assert!(m.contains("root"), "{m}");
    h.fails(Entry::rename("/f", "/"), ErrorCode::AlreadyExists);
    h.fails(Entry::rename("/f", "/missing/x"), ErrorCode::NotFound);
    h.fails(Entry::rename("/a", "/f/x"), ErrorCode::NotADirectory);
    h.fails(Entry::rename("/f", "/x/"), ErrorCode::InvalidPath);
    // A sibling whose name starts with the source's is not its subtree.
    h.ok(Entry::rename("/a", "/ab"));
}

#[test]
fn get_and_list_status() {
    let mut h = Harness::new();
    for name in ["b", "a", "C", "aa"] {
        h.touch(&format!("/{name}"));
    }
    h.mkdir("/dir");
    assert_eq!(
        h.ls("/"),
        ["C", "a", "aa", "b", "dir"],
        "bytewise name order"
    );
    assert_eq!(h.ls("/a"), ["a"], "a file lists itself");
    let listing = h.machine.list_status("/").unwrap_or_default();
    assert_eq!(listing[4].path, "/dir");
    assert!(listing[4].is_directory);
    let e = h.machine.get_status("/zz").err().map(|e| e.code);
    assert_eq!(e, Some(ErrorCode::NotFound));
    let e = h.machine.list_status("/a/x").err().map(|e| e.code);
    assert_eq!(e, Some(ErrorCode::NotADirectory));
    let e = h.machine.get_status("no").err().map(|e| e.code);
    assert_eq!(e, Some(ErrorCode::InvalidPath));
}

#[test]
fn malformed_entries_are_errors_and_change_nothing() {
    let mut h = Harness::new();
    h.mkdir("/d");
    let before = h.machine.canonical_dump();
    let garbage: [&[u8]; 5] = [b"\xff\xff\xff", b"\x0a\x05ab", &[0x22, 0x80], b"", &[0x08]];
    for bytes in garbage {
        let r = h.machine.apply_entry(bytes);
        assert!(!r.is_ok(), "{bytes:?}");
    }
    // No op, and a client id that is empty or too long.
    let no_op = crate::meta::proto::Entry {
        client_id: bytes::Bytes::from_static(b"c"),
        request_seq: 1,
        time_ms: 99_999_999,
        op: None,
    };
    let r = h
        .machine
        .apply_entry(&prost::Message::encode_to_vec(&no_op));
    assert_eq!(r.code(), Some(ErrorCode::MalformedEntry));
    let r = h.machine.apply_entry(&crate::meta::encode_entry(
        b"",
        1,
        99_999_999,
        Entry::mkdir("/x", false),
    ));
    assert_eq!(r.code(), Some(ErrorCode::MalformedEntry));
    let r = h.machine.apply_entry(&crate::meta::encode_entry(
        &[7; 65],
        1,
        99_999_999,
        Entry::mkdir("/x", false),
    ));
    assert_eq!(r.code(), Some(ErrorCode::MalformedEntry));
    assert_eq!(
        before,
        h.machine.canonical_dump(),
        "not even log time moved"
    );
}
