//! Real ZooKeeper servers for tests (feature `testkit`).
//!
//! Each server is the Debian package's ZooKeeper (`/usr/share/java/zookeeper.jar`)
//! run as a child JVM on a free loopback port with a fresh data directory and
//! a 200 ms tick, so sessions of 1-2 s expire quickly. Servers are killed when
//! their handle is dropped, and also when the test process dies (the child
//! gets SIGKILL through `PR_SET_PDEATHSIG`), so no JVM outlives a test.

mod expire;
mod server;

pub use expire::expire_session;
pub use server::{free_port, ZkEnsemble, ZkServer};
