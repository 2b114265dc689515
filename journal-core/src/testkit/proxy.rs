//! A TCP proxy on loopback that a test can stop and resume, to cut a process
//! off from a server (ZooKeeper, a Raft peer) without killing either side.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards connections from `local_addr()` to a target address.
///
/// `block()` stops forwarding: open connections are closed (both sides see
/// the connection end) and new ones are accepted then closed at once, like a network
/// partition where the peer's host stays up. `unblock()` resumes forwarding.
/// Dropping the proxy stops it.
pub struct TcpProxy {
    local: SocketAddr,
    blocked: watch::Sender<bool>,
    accept_errors: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy on a free loopback port towards `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local = listener.local_addr()?;
        let (blocked, rx) = watch::channel(false);
        let rx = Arc::new(rx);
        let accept_errors = Arc::new(AtomicU64::new(0));
        let errors = accept_errors.clone();
        let task = tokio::spawn(async move {
            loop {
                // An accept error (EMFILE, ENOBUFS, a connection aborted in
                // the queue) must not end the proxy: with the listener gone
                // every later connect is refused, and a test would read a
                // dead proxy as a peer that never answers. The pause keeps
                // a persistent error (EMFILE leaves the connection queued,
                // so the listener stays readable) from spinning.
                let inbound = match listener.accept().await {
                    Ok((inbound, _)) => inbound,
                    Err(e) => {
                        // The 1st, 2nd, 4th, 8th... error: a persistent one
                        // must not flood the log every 20 ms.
                        let n = errors.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.is_power_of_two() {
                            tracing::warn!(proxy = %local, target = %target, error = %e, errors = n, "test proxy: accept failed; retrying");
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let mut rx = (*rx).clone();
                if *rx.borrow() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let flag = rx.clone();
                    let forward = async {
                        tokio::select! {
                            _ = pump(&mut ri, &mut wo, &flag) => {},
                            _ = pump(&mut ro, &mut wi, &flag) => {},
                        }
                    };
                    tokio::select! {
                        biased;
                        _ = rx.wait_for(|b| *b) => {},
                        _ = forward => {},
                    }
                    let _ = wo.shutdown().await;
                    let _ = wi.shutdown().await;
                });
            }
        });
        Ok(TcpProxy {
            local,
            blocked,
            accept_errors,
            task,
        })
    }

    /// The address to connect to instead of the target.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops forwarding and cuts every open connection.
    pub fn block(&self) {
        self.blocked.send_replace(true);
    }

    /// Resumes forwarding for new connections.
    pub fn unblock(&self) {
        self.blocked.send_replace(false);
    }

    /// How many times accepting a connection failed (each is logged at
    /// warn and retried; the proxy keeps listening).
    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Ordering::Relaxed)
    }

    /// False once the proxy's accept task has ended, which only a panic in
    /// it can do while the proxy lives: a harness can check its proxies
    /// are alive.
    pub fn is_listening(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.blocked.send_replace(true);
        self.task.abort();
    }
}

/// Copies `from` to `to` until either side closes or the proxy is blocked.
/// The block flag is checked after every read and before the bytes are
/// written, so nothing read after `block()` returned is ever forwarded: a
/// message sent after the cut never crosses it (`tokio::io::copy` inside a
/// `select!` could still forward one buffer before the block was noticed).
async fn pump<R, W>(from: &mut R, to: &mut W, blocked: &watch::Receiver<bool>)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if *blocked.borrow() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_blocks_and_resumes() {
        let proxy = TcpProxy::start(echo_server().await).await.unwrap();
        assert_eq!(round_trip(proxy.local_addr()).await.unwrap(), b"ping");
        let mut open = TcpStream::connect(proxy.local_addr()).await.unwrap();
        open.write_all(b"ab").await.unwrap();
        let mut two = [0u8; 2];
        open.read_exact(&mut two).await.unwrap();
        proxy.block();
        assert!(round_trip(proxy.local_addr()).await.is_err());
        // The connection that was open is cut too.
        let mut buf = [0u8; 1];
        let cut =
            tokio::time::timeout(std::time::Duration::from_secs(5), open.read(&mut buf)).await;
        assert!(matches!(cut, Ok(Ok(0)) | Ok(Err(_))), "{cut:?}");
        proxy.unblock();
        assert_eq!(round_trip(proxy.local_addr()).await.unwrap(), b"ping");
    }
}
