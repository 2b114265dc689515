//! Micro benchmarks (`cargo bench -p benches --bench micro`, divan): the
//! hot paths under every journal figure: record framing with its CRC,
//! metadata entry encoding, the metadata state machine's apply, UFS chunk
//! encoding and decoding, and the metadata snapshot. Under `cargo test`
//! each runs once on the same small inputs.

use divan::{black_box, Bencher};
use journal_core::framing::{encode_frame, FrameDecoder};
use journal_core::proto::{journal_record::Kind, JournalRecord};
use journal_core::{Bytes, StateMachine};
use journal_ufs::chunk::{decode_chunk, encode_chunk};
use journal_ufs::proto::ChunkHeader;
use master::meta::{encode_entry, Entry, MetaMachine};

fn main() {
    divan::main();
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

/// One frame (length, CRC32C, payload) of 128 B and of 4 KiB.
#[divan::bench(args = [128, 4096])]
fn frame_encode(bencher: Bencher, len: usize) {
    let data = payload(len);
    let mut out = Vec::with_capacity(len + 16);
    bencher
        .counter(divan::counter::BytesCount::new(len))
        .bench_local(|| {
            out.clear();
            encode_frame(black_box(&data), &mut out).map(|_| out.len())
        });
}

/// Verifying and splitting 256 frames of 128 B.
#[divan::bench]
fn frame_decode_256x128(bencher: Bencher) {
    let mut buf = Vec::new();
    let data = payload(128);
    for _ in 0..256 {
        let _ = encode_frame(&data, &mut buf);
    }
    bencher.bench_local(|| {
        FrameDecoder::new(black_box(&buf))
            .filter(Result::is_ok)
            .count()
    });
}

/// A create-file entry as the master proposes it.
#[divan::bench]
fn entry_encode_create(bencher: Bencher) {
    let client = [7u8; 16];
    let mut seq = 0u64;
    bencher.bench_local(|| {
        seq += 1;
        encode_entry(
            &client,
            seq,
            1_700_000_000_000,
            Entry::create_file("/bench/dir/file-000123"),
        )
    });
}

fn create_entries(dirs: usize, files: usize) -> Vec<Bytes> {
    let client = [9u8; 16];
    let mut seq = 0u64;
    let mut out = Vec::new();
    for d in 0..dirs {
        seq += 1;
        out.push(encode_entry(
            &client,
            seq,
            1,
            Entry::mkdir(format!("/d{d}"), true),
        ));
        for f in 0..files {
            seq += 1;
            out.push(encode_entry(
                &client,
                seq,
                1,
                Entry::create_file(format!("/d{d}/f{f}")),
            ));
        }
    }
    out
}

/// Applying 1,000 create-file entries (10 directories of 100 files) to a
/// fresh metadata state machine.
#[divan::bench]
fn meta_apply_1000_creates(bencher: Bencher) {
    let entries = create_entries(10, 99);
    bencher
        .counter(divan::counter::ItemsCount::new(entries.len()))
        .with_inputs(MetaMachine::default)
        .bench_local_values(|mut m| {
            for (i, e) in entries.iter().enumerate() {
                black_box(m.apply(i as u64 + 1, e));
            }
            m
        });
}

fn records(n: u64, len: usize) -> Vec<JournalRecord> {
    let data = Bytes::from(payload(len));
    (1..=n)
        .map(|seq| JournalRecord {
            seq,
            epoch: 1,
            kind: Some(Kind::Entry(data.clone())),
        })
        .collect()
}

fn header(count: u32) -> ChunkHeader {
    ChunkHeader {
        cluster_id: "bench".into(),
        first_seq: 1,
        epoch: 1,
        count,
        writer_id: "w".into(),
    }
}

/// A UFS chunk of 256 records of 128 B.
#[divan::bench]
fn chunk_encode_256x128(bencher: Bencher) {
    let (h, r) = (header(256), records(256, 128));
    bencher.bench_local(|| encode_chunk(black_box(&h), black_box(&r)));
}

/// Decoding and verifying that chunk.
#[divan::bench]
fn chunk_decode_256x128(bencher: Bencher) {
    let bytes = encode_chunk(&header(256), &records(256, 128)).unwrap_or_default();
    bencher.bench_local(|| {
        decode_chunk(black_box(&bytes), 1, "bench")
            .map(|c| c.records.len())
            .ok()
    });
}

/// Writing the snapshot of a namespace of 10,000 files into memory.
#[divan::bench]
fn snapshot_write_10k_inodes(bencher: Bencher) {
    let mut m = MetaMachine::default();
    for (i, e) in create_entries(100, 99).iter().enumerate() {
        m.apply(i as u64 + 1, e);
    }
    bencher.bench_local(|| {
        let mut out = Vec::with_capacity(1 << 20);
        m.snapshot(&mut out).map(|_| out.len())
    });
}
