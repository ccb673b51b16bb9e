//! The `load-tester` binary: parses the flags and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = load_tester::Args::parse();
    match load_tester::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load-tester: {e:#}");
            ExitCode::FAILURE
        }
    }
}
