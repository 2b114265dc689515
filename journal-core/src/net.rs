//! Listening sockets for the gRPC servers primacy runs (the master's RPC
//! port, the embedded journal's peer port).

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};

/// The connections `listener` accepts, each with `TCP_NODELAY` set, in the
/// order they are accepted, for tonic's `serve_with_incoming*`.
///
/// Why: tonic applies its builder's `tcp_nodelay` only to sockets it binds
/// itself, never to a stream of accepted sockets. Without it, Nagle's
/// algorithm holds a small segment (an HTTP/2 WINDOW_UPDATE, the tail of a
/// response) until the peer's delayed ACK, about 40 ms on Linux, and a
/// sender whose flow-control window is full waits that long for every
/// window update.
pub fn nodelay_incoming(
    listener: TcpListener,
) -> impl Stream<Item = std::io::Result<TcpStream>> + Send + 'static {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(socket, _)| {
            // A socket that refuses the option still works, only slower.
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY on an accepted socket");
            }
            socket
        });
        Some((accepted, listener))
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn every_accepted_socket_has_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = nodelay_incoming(listener);
        futures::pin_mut!(incoming);
        for _ in 0..3 {
            let _client = TcpStream::connect(addr).await.unwrap();
            let accepted = incoming.next().await.unwrap().unwrap();
            assert!(
                accepted.nodelay().unwrap(),
                "accepted socket without TCP_NODELAY"
            );
        }
    }
}
