//! The AFL driver: `fuzz-afl <target>` runs one target of
//! [`primacy_fuzz::TARGETS`] under afl-fuzz (build it with
//! `cargo afl build --release --features afl`; docs/reliability.md).

fn main() {
    let name = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PRIMACY_FUZZ_TARGET").ok())
        .unwrap_or_default();
    let Some(target) = primacy_fuzz::target(&name) else {
        eprintln!("usage: fuzz-afl <target>; targets:");
        for t in primacy_fuzz::TARGETS {
            eprintln!("  {:16} {}", t.name, t.covers);
        }
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| {
        (target.run)(data);
    });
}
