//! primacy's measuring and fault-finding tools: the benchmark harness that
//! runs the same work on every journal backend and on their peers (etcd,
//! ZooKeeper), and the fault campaigns that check every client history.

pub mod chaos;
pub mod linearizability;
