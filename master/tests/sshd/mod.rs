//! A real OpenSSH server for tests: `/usr/sbin/sshd` on a free loopback
//! port, with a throwaway host key, a throwaway client key in its
//! authorized keys and a known-hosts file naming its host key, run as the
//! current user; killed when dropped. `scripts/test-all.sh` installs the
//! Debian package `openssh-server` when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary (Debian's `openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd, killed (and reaped) when dropped.
pub struct Sshd {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1 only).
    pub port: u16,
    /// Holds the keys, the config and the server's log.
    pub dir: PathBuf,
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (Debian openssh-client)")
        .success();
    assert!(ok, "ssh-keygen -f {}", path.display());
}

impl Sshd {
    /// Starts sshd in `dir` (created) and waits until it accepts
    /// connections.
    pub fn start(dir: &Path, port: u16) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: apt-get install openssh-server (scripts/test-all.sh does)"
        );
        std::fs::create_dir_all(dir).expect("sshd dir");
        let host_key = dir.join("host_ed25519");
        let client_key = dir.join("client_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        let client_pub = std::fs::read_to_string(client_key.with_extension("pub")).expect("pub");
        std::fs::write(dir.join("authorized_keys"), client_pub).expect("authorized_keys");
        let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).expect("host pub");
        let mut words = host_pub.split_whitespace();
        let (kind, key) = (words.next().expect("type"), words.next().expect("key"));
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .expect("known_hosts");
        // SAFETY: getuid has no preconditions.
        let root = unsafe { libc::getuid() } == 0;
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             StrictModes no\nPidFile {pid}\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n{root_line}LogLevel VERBOSE\n",
            hk = host_key.display(),
            ak = dir.join("authorized_keys").display(),
            pid = dir.join("sshd.pid").display(),
            root_line = if root {
                "PermitRootLogin prohibit-password\n"
            } else {
                ""
            },
        );
        std::fs::write(dir.join("sshd_config"), config).expect("sshd_config");
        // The privilege separation directory sshd insists on.
        if root {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let log = std::fs::File::create(dir.join("sshd.log")).expect("sshd log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        let mut sshd = Sshd {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(c) = sshd.child.as_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    panic!("sshd exited ({s}): {}", sshd.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "sshd not listening: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    /// What sshd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The ssh options that reach this server with the throwaway key and
    /// known-hosts file (for `PRIMACY_SSH_OPTS`); no user configuration is
    /// read.
    pub fn client_opts(&self) -> String {
        format!(
            "-F /dev/null -p {} -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
             -o StrictHostKeyChecking=yes -o LogLevel=ERROR",
            self.port,
            self.dir.join("client_ed25519").display(),
            self.dir.join("known_hosts").display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
