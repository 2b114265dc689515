//! `primacy security generate-secret FILE`: writes a fresh cluster secret
//! to a new file readable by its owner only (docs/security.md).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::exit;

/// `primacy security ...`.
#[derive(Debug, Args)]
pub struct SecurityArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SecurityCommand,
    /// Accepted like every subcommand's; generating a secret reads no
    /// configuration.
    #[command(flatten)]
    pub common: super::CommonArgs,
}

/// The `security` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecurityCommand {
    /// Write a new random cluster secret (32 random bytes, hex) to FILE,
    /// created with mode 0600; an existing FILE is never overwritten.
    GenerateSecret {
        /// The file to create.
        file: PathBuf,
    },
}

/// Runs the subcommand. Exit 0 when written; 1 when FILE exists or
/// cannot be written.
pub fn run(args: SecurityArgs) -> ExitCode {
    match args.command {
        SecurityCommand::GenerateSecret { file } => match generate(&file) {
            Ok(()) => {
                println!(
                    "Wrote a new cluster secret to {} (mode 0600). Give it to every master, worker \
                     and client: {}={}",
                    file.display(),
                    journal_raft::auth::KEY_SECRET_FILE,
                    file.display()
                );
                ExitCode::from(exit::OK)
            }
            Err(e) => {
                eprintln!("primacy security generate-secret: {e}");
                ExitCode::from(exit::REFUSED)
            }
        },
    }
}

/// Creates `file` (never replacing one) with mode 0600 and a new secret,
/// synced to disk.
pub fn generate(file: &Path) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
    let text = format!("{}\n", journal_raft::auth::ClusterSecret::generate_text());
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_secrets_load_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let first = std::fs::read_to_string(&path).unwrap();
        journal_raft::auth::ClusterSecret::from_file(&path).unwrap();
        assert!(generate(&path).unwrap_err().contains("cannot create"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        let other = dir.path().join("other");
        generate(&other).unwrap();
        assert_ne!(std::fs::read_to_string(other).unwrap(), first);
    }
}
