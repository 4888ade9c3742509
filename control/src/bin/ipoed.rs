//! ipoed: the router daemon.
//!
//! `ipoed --config FILE` runs the router; `ipoed --check-config FILE` only
//! validates the file (exit 0 when good, 2 with file:line:column otherwise).

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: ipoed --config FILE | --check-config FILE | --version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check_only, path) = match args.as_slice() {
        [flag, file] if flag == "--config" || flag == "-c" => (false, PathBuf::from(file)),
        [flag, file] if flag == "--check-config" => (true, PathBuf::from(file)),
        [flag] if flag == "--version" => {
            println!("ipoed {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match ipoe_config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!("{}: ok", path.display());
        return ExitCode::SUCCESS;
    }
    ipoe_control::logger::init(ipoe_control::logger::level(config.control.log_level));
    match ipoe_control::daemon::run(config, &path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}
