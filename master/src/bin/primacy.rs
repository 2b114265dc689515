//! The `primacy` binary: see [`master::cli`].

fn main() -> std::process::ExitCode {
    master::cli::main()
}
