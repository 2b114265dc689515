//! Failpoints at the journals' durability steps, for fault campaigns.
//!
//! [`failpoint!`](crate::failpoint) expands to a `fail` crate failpoint
//! only in a crate built with its own `failpoints` feature (the `cfg` is
//! evaluated where the macro is used); otherwise it expands to nothing, so
//! production builds carry no failpoint code at all. A failpoint is armed
//! at startup through the `FAILPOINTS` environment variable
//! (`name=action;...`, read by `primacy master` in failpoints builds):
//!
//! - `name=return`: the step fails with an I/O error naming the failpoint
//!   (what the surrounding code does with any I/O error happens next);
//! - `name=return(crash)`: the process aborts on the spot, like a power
//!   cut at that step (no destructor, no flush, no shutdown path).
//!
//! Names are `<journal>-<step>-before` / `-after` (see docs/reliability.md).

/// A failpoint named `$name`. When it fires with `return`, the enclosing
/// function returns `$ret`, evaluated with `$e` bound to an
/// `std::io::Error` naming the failpoint; with `return(crash)` the process
/// aborts.
#[macro_export]
macro_rules! failpoint {
    ($name:literal, |$e:ident| $ret:expr) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name, |arg: Option<String>| {
            if arg.as_deref() == Some("crash") {
                eprintln!(concat!("failpoint ", $name, ": crashing (abort)"));
                std::process::abort();
            }
            let $e = std::io::Error::other(concat!("failpoint ", $name, " fired"));
            $ret
        });
    };
}
