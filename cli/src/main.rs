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
mod man;
mod map;
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
        Ok(Parsed::Help(text)) => {
            out(&text);
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(inv)) => run(&inv),
        Ok(Parsed::Completions(shell)) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut args::command(), "ipoectl", &mut script);
            out(&String::from_utf8_lossy(&script));
            ExitCode::SUCCESS
        }
        Ok(Parsed::Man) => {
            let mut page = Vec::new();
            match man::page(&mut page) {
                Ok(()) => {
                    out(&String::from_utf8_lossy(&page));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    err(&format!("ipoectl: rendering the manual page: {e}\n"));
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        Err(e) => {
            let (code, text) = usage_failure(&e);
            err(&text);
            ExitCode::from(code)
        }
    }
}

/// A wrong command line: exit 2, the reason, then the usage.
fn usage_failure(e: &UsageError) -> (u8, String) {
    (EXIT_USAGE, format!("ipoectl: {}\n{}", e.why, e.usage))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Parsed, UsageError> {
        args::parse(words.iter().map(|w| w.to_string()), None)
    }

    #[test]
    fn usage_errors_exit_2_with_the_reason_then_the_usage() {
        for words in [
            &["show", "foo"][..],
            &[],
            &["trace", "add", "0"],
            &["--bogus"],
        ] {
            let Err(e) = parse(words) else {
                panic!("{words:?} parsed")
            };
            let (code, text) = usage_failure(&e);
            assert_eq!(code, 2, "{words:?}");
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some(format!("ipoectl: {}", e.why).as_str()));
            assert!(
                lines.any(|l| l.starts_with("usage: ipoectl")),
                "{words:?}: {text}"
            );
        }
        // Help is printed on stdout with exit 0, not as a usage error.
        assert!(matches!(parse(&["show", "-h"]), Ok(Parsed::Help(_))));
    }
}
