//! Test support (feature `testkit`): a real S3-compatible server, moto
//! (`pip install 'moto[server]'`), on a free loopback port.
//!
//! The server runs single-threaded: moto checks `If-None-Match: *` and then
//! stores the object without a lock, so its threaded server (the default of
//! `moto_server`) lets two racing creates of one name both succeed. One
//! request at a time makes every conditional PUT atomic, as on S3.
//!
//! The Python process gets SIGKILL when the thread that owns it exits
//! (`PR_SET_PDEATHSIG`), and is killed and reaped on drop, so no server
//! outlives a test, even one that panics or is killed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How moto is started: its WSGI app served by werkzeug without threads.
const LAUNCHER: &str = r#"
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=False, use_reloader=False)
"#;

/// Why a moto server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    /// The Python package is not installed.
    #[error("moto is not installed (python3 -m pip install 'moto[server]')")]
    NotInstalled,
    /// Spawning or talking to the server failed.
    #[error("moto server: {0}")]
    Server(String),
}

/// A running moto server with one bucket; killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    port: u16,
    bucket: String,
    stop: Option<mpsc::Sender<()>>,
    owner: Option<JoinHandle<()>>,
}

impl MotoServer {
    /// Whether `python3 -c 'import moto.server'` works here.
    pub fn installed() -> bool {
        Command::new("python3")
            .args(["-c", "import moto.moto_server.werkzeug_app, werkzeug"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts a server on a free loopback port, waits until it answers and
    /// creates `bucket` (an S3 bucket name: 3-63 lowercase characters).
    pub fn start(bucket: &str) -> Result<MotoServer, MotoError> {
        if !Self::installed() {
            return Err(MotoError::NotInstalled);
        }
        let port = journal_core::ports::free_loopback_port()
            .map_err(|e| MotoError::Server(format!("no free port: {e}")))?;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<Result<(), String>>();
        let owner = std::thread::spawn(move || {
            let mut cmd = Command::new("python3");
            cmd.args(["-c", LAUNCHER, &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe; it asks the kernel to
            // SIGKILL the server when this owning thread exits.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = started_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = started_tx.send(Ok(()));
            let _ = stop_rx.recv();
            let _ = child.kill();
            let _ = child.wait();
        });
        let mut server = MotoServer {
            port,
            bucket: bucket.to_string(),
            stop: Some(stop_tx),
            owner: Some(owner),
        };
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(MotoError::Server(format!("spawn python3: {e}"))),
            Err(_) => return Err(MotoError::Server("the owner thread died".into())),
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match server.request("PUT", &format!("/{bucket}")) {
                Ok(status) if (200..300).contains(&status) => break,
                Ok(status) => {
                    server.stop();
                    return Err(MotoError::Server(format!(
                        "creating bucket {bucket} answered HTTP {status}"
                    )));
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => {
                    server.stop();
                    return Err(MotoError::Server(format!(
                        "not answering on 127.0.0.1:{port} after 60 s: {e}"
                    )));
                }
            }
        }
        Ok(server)
    }

    /// One plain HTTP/1.0 request without a body; the status code. moto
    /// does not check signatures, so creating a bucket needs none.
    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
            self.port
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        out.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {out:.80}")))
    }

    /// The server's endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, prefix.trim_matches('/'))
    }

    /// Store options that reach this server (object_store's key names).
    pub fn options(&self) -> BTreeMap<String, String> {
        [
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".to_string()),
            ("aws_access_key_id", "testing".to_string()),
            ("aws_secret_access_key", "testing".to_string()),
            ("aws_region", "us-east-1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The same settings under Alluxio's key names, as an operator writes
    /// them in alluxio-site.properties.
    pub fn alluxio_properties(&self) -> Vec<(String, String)> {
        vec![
            ("alluxio.underfs.s3.endpoint".into(), self.endpoint()),
            (
                "alluxio.underfs.s3.endpoint.region".into(),
                "us-east-1".into(),
            ),
            (
                "alluxio.underfs.s3.disable.dns.buckets".into(),
                "true".into(),
            ),
            ("aws.accessKeyId".into(), "testing".into()),
            ("aws.secretKey".into(), "testing".into()),
        ]
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
