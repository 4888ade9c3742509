//! ipoectl: asks ipoed over its unix socket (control/PROTOCOL.md) and
//! prints the answer as aligned tables, or the reply's data as JSON with
//! `--json`.
//!
//! Exit status: 0 done; 1 the daemon could not be reached, did not answer,
//! or answered with an error; 2 the command line is wrong.

// The helpers live under ipoectl/ and are named by path: a plain `mod`
// beside this file would sit in src/bin/, where cargo takes every file for
// a binary of its own.
#[path = "ipoectl/actions.rs"]
mod actions;
#[path = "ipoectl/args.rs"]
mod args;
#[path = "ipoectl/client.rs"]
mod client;
#[path = "ipoectl/fw.rs"]
mod fw;
#[path = "ipoectl/render.rs"]
mod render;
#[path = "ipoectl/state.rs"]
mod state;
#[path = "ipoectl/stats.rs"]
mod stats;
#[path = "ipoectl/table.rs"]
mod table;
#[path = "ipoectl/tree.rs"]
mod tree;
#[path = "ipoectl/val.rs"]
mod val;

use std::io::Write;
use std::process::ExitCode;

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
    let line = client::request_line(inv.command, inv.args.as_ref());
    let reply = match client::ask(&inv.socket, &line) {
        Ok(r) => r,
        Err(f) => {
            err(&(client::explain(&inv.socket, &f).join("\n") + "\n"));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    if reply.get("ok") != Some(&Value::Bool(true)) {
        err(&refusal(inv.command, &reply));
        return ExitCode::from(EXIT_FAILED);
    }
    let data = reply.get("data").unwrap_or(&Value::Null);
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
fn refusal(command: &str, reply: &Value) -> String {
    let why = match reply.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => format!("an error reply without an error text: {reply}"),
    };
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
