//! `soak`: steady load with clients joining, parting, logging off and vanishing, for a long
//! time, sampling the server's memory and threads; see `load_tester::soak`.

use clap::Parser;
use load_tester::soak::{main_with, SoakArgs};

fn main() -> std::process::ExitCode {
    let args = SoakArgs::parse();
    match main_with(&args) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        // The report is printed; a failed check still fails the run.
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
