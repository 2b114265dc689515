//! Restore's semantic checks: streams whose frames are intact (valid CRCs)
//! but whose content breaks a rule are refused, naming the rule.

use journal_core::framing::{encode_message, read_frame};
use journal_core::StateMachine;
use prost::Message;

use super::Harness;
use crate::meta::proto::{snapshot_record::Record, SnapshotRecord};
use crate::meta::{Entry, MetaMachine};

/// The records of a small valid state: root, /d (dir), /d/f (complete, two
/// blocks), /e (open file), and one session.
fn records() -> Vec<Record> {
    let mut h = Harness::new();
    h.mkdir("/d");
    h.touch("/d/f");
    h.ok(Entry::complete_file("/d/f", &[(1, 10), (2, 5)]));
    h.touch("/e");
    snapshot_records(&h)
}

/// The records of `h`'s machine's snapshot, in stream order.
pub(super) fn snapshot_records(h: &Harness) -> Vec<Record> {
    let mut bytes = Vec::new();
    h.machine
        .snapshot(&mut bytes)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut input = &bytes[..];
    let mut offset = 0;
    let mut out = Vec::new();
    while let Ok(Some(frame)) = read_frame(&mut input, &mut offset) {
        let rec = SnapshotRecord::decode(frame.as_slice()).unwrap_or_else(|e| panic!("{e}"));
        out.extend(rec.record);
    }
    out
}

/// `records` framed as a snapshot stream (each with its CRC).
pub(super) fn stream(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let msg = SnapshotRecord {
            record: Some(r.clone()),
        };
        encode_message(&msg, &mut out).unwrap_or_else(|e| panic!("{e}"));
    }
    out
}

/// Restores `records` after `change`, expects a refusal mentioning `rule`.
fn refused(rule: &str, change: impl FnOnce(&mut Vec<Record>)) {
    let mut recs = records();
    change(&mut recs);
    let mut m = MetaMachine::default();
    let before = m.canonical_dump();
    match m.restore(&mut &stream(&recs)[..]) {
        Ok(()) => panic!("accepted a stream that breaks: {rule}"),
        Err(e) => assert!(e.to_string().contains(rule), "{rule}: got {e}"),
    }
    assert_eq!(before, m.canonical_dump());
}

fn header(recs: &mut [Record]) -> &mut crate::meta::proto::SnapshotHeader {
    match recs.first_mut() {
        Some(Record::Header(h)) => h,
        _ => panic!("no header first"),
    }
}

fn find<T>(recs: &mut [Record], pick: impl Fn(&mut Record) -> Option<&mut T>) -> &mut T {
    recs.iter_mut()
        .find_map(pick)
        .unwrap_or_else(|| panic!("record not found"))
}

#[test]
fn the_unchanged_records_restore() {
    let mut m = MetaMachine::default();
    m.restore(&mut &stream(&records())[..])
        .unwrap_or_else(|e| panic!("{e}"));
    let c = crate::meta::StoreView::counts(m.store());
    assert_eq!((c.inodes, c.edges, c.block_files), (4, 3, 1));
}

#[test]
fn version_counts_order_and_trailer() {
    refused("format version 2", |r| header(r).version = 2);
    refused("header counts", |r| header(r).inodes += 1);
    refused("trailer counts", |r| {
        let n = r.len();
        if let Some(Record::Trailer(t)) = r.get_mut(n - 1) {
            t.records += 1;
        }
    });
    refused("out of order", |r| {
        let h = r[0].clone();
        r.insert(2, h);
    });
    refused("out of order", |r| {
        let inodes = find(r, |x| match x {
            Record::Inodes(b) => Some(b),
            _ => None,
        });
        let first = inodes.inodes[0];
        inodes.inodes.push(first);
    });
    refused("before its trailer", |r| {
        r.pop();
    });
}

#[test]
fn tree_invariants() {
    let edges = |r: &mut Vec<Record>| -> Vec<crate::meta::proto::EdgeRecord> {
        find(r, |x| match x {
            Record::Edges(b) => Some(b),
            _ => None,
        })
        .edges
        .clone()
    };
    let set_edges = |r: &mut Vec<Record>, e: Vec<crate::meta::proto::EdgeRecord>| {
        find(r, |x| match x {
            Record::Edges(b) => Some(b),
            _ => None,
        })
        .edges = e;
    };
    refused("to inode 999", |r| {
        let mut e = edges(r);
        e[0].child = 999;
        set_edges(r, e);
    });
    refused("counts", |r| {
        let inodes = find(r, |x| match x {
            Record::Inodes(b) => Some(b),
            _ => None,
        });
        inodes.inodes[0].size += 1; // the root claims one child more
    });
    refused("not allowed", |r| {
        let mut e = edges(r);
        e[0].name = "..".into();
        set_edges(r, e);
    });
    // /d/f moved under /e, a file.
    refused("not a directory", |r| {
        let mut e = edges(r);
        let file = e.iter().position(|x| x.name == "f").unwrap_or(0);
        let open = e.iter().find(|x| x.name == "e").map_or(0, |x| x.child);
        let mut moved = e.remove(file);
        moved.parent = open;
        e.push(moved);
        e.sort_by(|a, b| (a.parent, &a.name).cmp(&(b.parent, &b.name)));
        set_edges(r, e);
    });
    // /d made its own child: unreachable from the root (a cycle).
    refused("reachable", |r| {
        let mut e = edges(r);
        let d = e.iter().find(|x| x.name == "d").map_or(0, |x| x.child);
        e.retain(|x| x.name != "d");
        e.push(crate::meta::proto::EdgeRecord {
            parent: d,
            name: "loop".into(),
            child: d,
        });
        e.sort_by(|a, b| (a.parent, &a.name).cmp(&(b.parent, &b.name)));
        set_edges(r, e);
        let inodes = find(r, |x| match x {
            Record::Inodes(b) => Some(b),
            _ => None,
        });
        for i in &mut inodes.inodes {
            if i.id == 1 {
                i.size -= 1;
            } else if i.id == d {
                i.size += 1;
            }
        }
    });
}

#[test]
fn blocks_and_sessions() {
    refused("blocks sum", |r| {
        find(r, |x| match x {
            Record::Blocks(b) => Some(b),
            _ => None,
        })
        .files[0]
            .blocks[0]
            .length += 1;
    });
    refused("twice", |r| {
        let f = &mut find(r, |x| match x {
            Record::Blocks(b) => Some(b),
            _ => None,
        })
        .files[0];
        f.blocks[1].block_id = f.blocks[0].block_id;
    });
    refused("bad client id or time", |r| {
        find(r, |x| match x {
            Record::Sessions(b) => Some(b),
            _ => None,
        })
        .sessions[0]
            .last_ms = u64::MAX;
    });
}

#[test]
fn one_parent_order_and_orphans() {
    fn edges(r: &mut [Record]) -> &mut Vec<crate::meta::proto::EdgeRecord> {
        &mut find(r, |x| match x {
            Record::Edges(b) => Some(b),
            _ => None,
        })
        .edges
    }
    // /e's inode also linked under /d (as /d/g): counts agree, but the
    // inode has two parents.
    refused("two parents", |r| {
        let e = edges(r);
        let d = e.iter().find(|x| x.name == "d").map_or(0, |x| x.child);
        let open = e.iter().find(|x| x.name == "e").map_or(0, |x| x.child);
        e.push(crate::meta::proto::EdgeRecord {
            parent: d,
            name: "g".into(),
            child: open,
        });
        e.sort_by(|a, b| (a.parent, &a.name).cmp(&(b.parent, &b.name)));
        header(r).edges += 1;
        let inodes = find(r, |x| match x {
            Record::Inodes(b) => Some(b),
            _ => None,
        });
        for i in &mut inodes.inodes {
            if i.id == d {
                i.size += 1;
            }
        }
    });
    // Two edges of the root swapped: same rows, wrong order.
    refused("out of order", |r| {
        let e = edges(r);
        e.swap(0, 1);
    });
    // The same edge twice.
    refused("out of order", |r| {
        let e = edges(r);
        let first = e[0].clone();
        e.insert(0, first);
    });
    // An extra file inode that no edge reaches (an orphan).
    refused("reachable", |r| {
        let next = header(r).next_id;
        header(r).next_id = next + 1;
        header(r).inodes += 1;
        let inodes = find(r, |x| match x {
            Record::Inodes(b) => Some(b),
            _ => None,
        });
        let mut orphan = inodes.inodes[inodes.inodes.len() - 1];
        orphan.id = next;
        inodes.inodes.push(orphan);
    });
    // An edge to the root.
    refused("to inode 1", |r| {
        let e = edges(r);
        e[0].child = 1;
    });
}
