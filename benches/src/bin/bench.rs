//! `bench`: primacy's benchmark harness (see `benches::harness::cli`).
//! Hidden forms the harness runs as its own children: `bench node SPEC`
//! (a journal member), `bench restart PROPERTIES` (a cold restart of a
//! metadata journal, measured) and `bench primacy ARGS...` (the `primacy`
//! CLI).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("primacy") => {
            return match master::cli::Cli::try_parse_from(&args[1..]) {
                Ok(cli) => master::cli::run(cli),
                Err(e) => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
            };
        }
        Some("node") => {
            master::cli::init_logging("warn");
            let spec = args.get(2).cloned().unwrap_or_default();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("bench node: cannot start a runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            return match runtime.block_on(benches::harness::node::run_node(&spec)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bench node: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some("restart") => {
            master::cli::init_logging("warn");
            let props: Vec<(String, String)> =
                match serde_json::from_str(args.get(2).map_or("", String::as_str)) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("bench restart: bad properties: {e}");
                        return ExitCode::FAILURE;
                    }
                };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("bench restart: cannot start a runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            return match runtime.block_on(benches::scenario::state::restart_child(&props)) {
                Ok(report) => {
                    let line = serde_json::to_string(&report).unwrap_or_default();
                    benches::scenario::state::say(&line);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench restart: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let cli = benches::harness::cli::BenchArgs::parse();
    // The members' own logs go to files; the harness's terminal shows the
    // progress and the table, and errors only.
    master::cli::init_logging("error");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C: no child may outlive the harness.
    runtime.spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            benches::harness::procs::kill_all();
            eprintln!("\ninterrupted: every child process was killed");
            std::process::exit(130);
        }
    });
    // block_on runs the harness on this (main) thread, which lives as long
    // as the run: children die with it (PR_SET_PDEATHSIG).
    match runtime.block_on(benches::harness::cli::run(cli)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
