//! ipoectl: asks ipoed over its unix socket (control/PROTOCOL.md) and
//! prints the answer as aligned tables, or the reply's data as JSON with
//! `--json`.
//!
//! Exit status: 0 done; 1 the daemon could not be reached, did not answer,
//! or answered with an error; 2 the command line is wrong.

mod actions;
mod args;
mod client;
mod fw;
mod render;
mod state;
mod stats;
mod table;
mod tree;
mod val;

use std::io::Write;
use std::process::ExitCode;

use ipoe_proto::ctl::{parse_reply, Request};
use serde_json::Value;

use args::{Invocation, Parsed, UsageError};

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let env_socket = std::env::var("IPOED_SOCKET").ok().filter(|s| !s.is_empty());
    match args::parse(std::env::args().skip(1), env_socket) {
        Ok(Parsed::Help) => {
            out(&format!("{}\n", args::usage()));
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(inv)) => run(&inv),
        Err(UsageError(why)) => {
            err(&format!("ipoectl: {why}\n{}\n", args::usage()));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(inv: &Invocation) -> ExitCode {
    let line = Request {
        command: inv.command.to_string(),
        args: inv.args.clone().unwrap_or(Value::Null),
    }
    .to_line();
    let reply = match client::ask(&inv.socket, &line) {
        Ok(r) => r,
        Err(f) => {
            err(&(client::explain(&inv.socket, &f).join("\n") + "\n"));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let data = match parse_reply(&reply) {
        Ok(data) => data,
        Err(why) => {
            err(&refusal(inv.command, &why));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let text = if inv.json {
        serde_json::to_string_pretty(data).unwrap_or_default() + "\n"
    } else {
        render::render(
            inv.command,
            data,
            &render::Opts {
                all: inv.all,
                args: inv.args.as_ref(),
            },
        )
    };
    out(&text);
    ExitCode::SUCCESS
}

/// An `ok: false` reply as stderr text. A reload error names the config
/// file's line and column (`/etc/ipoed.yaml:12:5: ...`); it goes on a line
/// of its own, verbatim, where editors and people find the position.
fn refusal(command: &str, why: &str) -> String {
    if command == "reload" {
        format!("ipoed: reload failed:\n{why}\n")
    } else {
        format!("ipoed: {why}\n")
    }
}

/// Writes stdout in one go. A reader that went away (`ipoectl ... | head`)
/// is not an error worth a panic, which `print!` would make of it.
fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes()).and_then(|()| o.flush());
}

fn err(s: &str) {
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}
