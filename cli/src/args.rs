//! The command line, on clap: options anywhere (they are global), the
//! command as words, and every check the daemon would otherwise make after
//! a round trip (a bad count, a filter on the wrong command), so a typo is
//! a usage error (exit 2) and never an error reply. clap's errors are
//! turned into one line each, in the words of the command as typed.

use std::net::IpAddr;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use ipoe_proto::ctl::TRACE_ADD_MAX;
use serde_json::{json, Map, Value};

pub const DEFAULT_SOCKET: &str = "/run/ipoed/ipoed.sock";

#[derive(Parser, Debug)]
#[command(
    name = "ipoectl",
    version,
    about = "Ask ipoed, the IPoE router daemon, over its control socket",
    subcommand_required = true,
    disable_help_subcommand = true
)]
struct Cli {
    /// the control socket [default: $IPOED_SOCKET, else /run/ipoed/ipoed.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<String>,
    /// print the reply's data as JSON
    #[arg(long, global = true, action = ArgAction::SetTrue, overrides_with = "json")]
    json: bool,
    /// with show errors: list zero counters too
    #[arg(long, global = true, action = ArgAction::SetTrue, overrides_with = "all")]
    all: bool,
    /// with show sessions: tcp, udp, icmp, icmpv6 or a protocol number
    #[arg(long, global = true, value_name = "P")]
    proto: Option<String>,
    /// with show sessions: an IPv4 or IPv6 address, either end
    #[arg(long, global = true, value_name = "ADDR")]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The commands in the order the help lists them.
#[derive(Subcommand, Debug)]
enum Command {
    /// the router's tables and counters
    #[command(subcommand)]
    Show(Show),
    /// the packet trace
    #[command(subcommand)]
    Trace(Trace),
    /// zero counters, forget traced packets
    #[command(subcommand)]
    Clear(Clear),
    /// the DHCPv6 prefix delegation client
    #[command(subcommand)]
    Pd(Pd),
    /// re-read the config file and apply the changes
    Reload,
    /// daemon and protocol versions
    Version,
    /// print a completion script for a shell
    Completions {
        /// a shell: bash, zsh, fish, elvish or powershell
        #[arg(value_enum, value_name = "SHELL")]
        shell: Shell,
    },
    /// print the manual page (roff)
    Man,
}

#[derive(Subcommand, Debug)]
enum Show {
    /// interfaces, addresses, per-queue counters
    Interfaces,
    /// non-zero error counters of every node (--all: zeros too)
    Errors,
    /// per-worker node calls, vectors and clocks
    Runtime,
    /// ARP and NDP neighbors
    Neighbors,
    /// the running config as YAML
    Config,
    /// WAN IPv6: addresses, routers, RA
    Wan,
    /// DHCPv6 prefix delegation
    Pd,
    /// the DS-Lite tunnel
    Tunnel,
    /// MAP-E: rule, shared IPv4, PSID, port runs, ports in use
    Map,
    /// LAN addresses, RA as sent, DNS proxy
    Lan,
    /// DHCPv4 and DHCPv6 leases
    Leases,
    /// firewall policy, rule hits, recent drops
    Firewall,
    /// firewall sessions (--proto P, --host ADDR)
    Sessions,
    /// the packets traced since `trace add`
    Trace,
}

#[derive(Subcommand, Debug)]
enum Trace {
    /// trace the next N packets (1..1000), from wan, lan or both
    // `-5` is a bad count, not an unknown option.
    #[command(allow_negative_numbers = true)]
    Add {
        /// a packet count, 1..1000
        #[arg(value_name = "N", value_parser = trace_count)]
        count: u64,
        /// only packets received on this interface (default: both)
        #[arg(value_enum, value_name = "wan|lan")]
        rx: Option<Rx>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Rx {
    Wan,
    Lan,
}

#[derive(Subcommand, Debug)]
enum Clear {
    /// zero the runtime figures
    Runtime,
    /// zero the error counters
    Errors,
    /// forget the traced packets
    Trace,
}

#[derive(Subcommand, Debug)]
enum Pd {
    /// make the DHCPv6 client Renew now
    Renew,
    /// make the DHCPv6 client Rebind now
    Rebind,
}

impl Command {
    /// The words typed, which are also the protocol command
    /// (control/PROTOCOL.md) of all but `completions` and `man`.
    fn name(&self) -> &'static str {
        match self {
            Command::Show(s) => match s {
                Show::Interfaces => "show interfaces",
                Show::Errors => "show errors",
                Show::Runtime => "show runtime",
                Show::Neighbors => "show neighbors",
                Show::Config => "show config",
                Show::Wan => "show wan",
                Show::Pd => "show pd",
                Show::Tunnel => "show tunnel",
                Show::Map => "show map",
                Show::Lan => "show lan",
                Show::Leases => "show leases",
                Show::Firewall => "show firewall",
                Show::Sessions => "show sessions",
                Show::Trace => "show trace",
            },
            Command::Trace(Trace::Add { .. }) => "trace add",
            Command::Clear(c) => match c {
                Clear::Runtime => "clear runtime",
                Clear::Errors => "clear errors",
                Clear::Trace => "clear trace",
            },
            Command::Pd(Pd::Renew) => "pd renew",
            Command::Pd(Pd::Rebind) => "pd rebind",
            Command::Reload => "reload",
            Command::Version => "version",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
        }
    }
}

/// The clap command with ipoectl's help layout on every level: the top
/// level lists every whole command (`trace add N [wan|lan]`), not only
/// the first words.
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    let table = command_table(&cmd);
    with_template(cmd)
        .help_template(
            "{about-with-newline}\nusage: {usage}\n\ncommands:\n{before-help}\
             options (anywhere on the line):\n{options}",
        )
        .before_help(table)
}

fn with_template(cmd: clap::Command) -> clap::Command {
    cmd.help_template("{about-with-newline}\nusage: {usage}\n\n{all-args}{after-help}")
        .mut_subcommands(with_template)
}

/// Every whole command with its arguments (`trace add N [wan|lan]`) and
/// what it does.
pub fn leaf_commands(root: &clap::Command) -> Vec<(String, String)> {
    fn leaves(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        for sub in cmd.get_subcommands() {
            let mut name = format!("{path}{}", sub.get_name());
            if sub.has_subcommands() {
                leaves(sub, &format!("{name} "), out);
                continue;
            }
            for a in sub.get_positionals() {
                let v = a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map_or_else(|| a.get_id().to_string(), |v| v.to_string());
                if a.is_required_set() {
                    name.push_str(&format!(" {v}"));
                } else {
                    name.push_str(&format!(" [{v}]"));
                }
            }
            let about = sub.get_about().map(|s| s.to_string()).unwrap_or_default();
            out.push((name, about));
        }
    }
    let mut rows = Vec::new();
    leaves(root, "", &mut rows);
    rows
}

/// The command list of the top level's help, one command a line.
fn command_table(root: &clap::Command) -> String {
    let rows = leaf_commands(root);
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let lines: Vec<String> = rows
        .iter()
        .map(|(n, a)| format!("  {n:<width$}  {a}"))
        .collect();
    lines.join("\n")
}

/// A request ready to send, and how to print its reply.
#[derive(Debug)]
pub struct Invocation {
    pub socket: String,
    pub json: bool,
    /// `show errors --all`.
    pub all: bool,
    /// The protocol command, e.g. `show runtime`.
    pub command: &'static str,
    /// The request's `args`, only for commands that take any.
    pub args: Option<Value>,
}

#[derive(Debug)]
pub enum Parsed {
    /// `-h`, `--help` or `--version`: the text to print.
    Help(String),
    Run(Invocation),
    Completions(Shell),
    Man,
}

/// Why the command line is wrong, in one line, and the help of the
/// command it got as far as.
#[derive(Debug)]
pub struct UsageError {
    pub why: String,
    pub usage: String,
}

pub fn parse(
    argv: impl IntoIterator<Item = String>,
    env_socket: Option<String>,
) -> Result<Parsed, UsageError> {
    let argv: Vec<String> = argv.into_iter().collect();
    let mut cmd = command();
    let path = command_path(&cmd, &argv);
    let bad = |why: String| {
        let mut cmd = command();
        let usage = help_of(&mut cmd, &path);
        Err(UsageError { why, usage })
    };
    let matches = match cmd.try_get_matches_from_mut(
        std::iter::once("ipoectl".to_string()).chain(argv.iter().cloned()),
    ) {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return Ok(Parsed::Help(e.render().to_string()));
        }
        Err(e) => return bad(explain(&e, &cmd, &path)),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return bad(explain(&e, &cmd, &path)),
    };
    let command = cli.command.name();
    let args = match args(command, &cli) {
        Ok(a) => a,
        Err(why) => return bad(why),
    };
    match cli.command {
        Command::Completions { shell } => return Ok(Parsed::Completions(shell)),
        Command::Man => return Ok(Parsed::Man),
        _ => {}
    }
    Ok(Parsed::Run(Invocation {
        socket: cli
            .socket
            .or(env_socket)
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string()),
        json: cli.json,
        all: cli.all,
        command,
        args,
    }))
}

/// The subcommands the words name, as far as they name any (`trace add`
/// for `trace add 5 x`), skipping options and their values.
fn command_path(root: &clap::Command, argv: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    let mut cmd = root;
    let mut words = argv.iter();
    while let Some(w) = words.next() {
        if let Some(long) = w.strip_prefix("--") {
            let takes_value = root
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .is_some_and(|a| a.get_action().takes_values());
            if takes_value {
                words.next();
            }
            continue;
        }
        if w.starts_with('-') && w.len() > 1 {
            continue;
        }
        match cmd.find_subcommand(w) {
            Some(sub) => {
                path.push(w.clone());
                cmd = sub;
            }
            None => break,
        }
    }
    path
}

/// The help of the command `path` names, as `ipoectl PATH --help` prints it.
fn help_of(root: &mut clap::Command, path: &[String]) -> String {
    fn descend(cmd: &mut clap::Command, path: &[String]) -> String {
        match path.split_first() {
            Some((p, rest)) => match cmd.find_subcommand_mut(p) {
                Some(sub) => descend(sub, rest),
                None => cmd.render_help().to_string(),
            },
            None => cmd.render_help().to_string(),
        }
    }
    // Built, subcommands get their full names (`ipoectl show`) in usage.
    root.build();
    descend(root, path)
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        _ => None,
    }
}

fn context_list(e: &clap::Error, kind: ContextKind) -> Vec<String> {
    match e.get(kind) {
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// An option as the user typed it: `--socket`, not `--socket <PATH>`.
fn option_name(arg: &str) -> &str {
    let first = arg.split(' ').next().unwrap_or(arg);
    first.split('=').next().unwrap_or(first)
}

/// clap's error as one line in the words of the command typed.
fn explain(e: &clap::Error, root: &clap::Command, path: &[String]) -> String {
    let typed = path.join(" ");
    let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
    let value = context(e, ContextKind::InvalidValue).unwrap_or_default();
    let leaf = path
        .iter()
        .try_fold(root, |c, p| c.find_subcommand(p))
        .unwrap_or(root);
    match e.kind() {
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            if path.is_empty() =>
        {
            "no command given".to_string()
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let subs: Vec<&str> = leaf.get_subcommands().map(|c| c.get_name()).collect();
            format!("incomplete command {typed:?}: one of {}", subs.join(", "))
        }
        ErrorKind::InvalidSubcommand => {
            let word = context(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            let full = if typed.is_empty() {
                word
            } else {
                format!("{typed} {word}")
            };
            let mut why = format!("unknown command {full:?}");
            if let Some(s) = context_list(e, ContextKind::SuggestedSubcommand).first() {
                why.push_str(&format!("; did you mean {s:?}?"));
            }
            why
        }
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            format!("unknown option {}", option_name(&arg))
        }
        ErrorKind::UnknownArgument => format!("unexpected {arg:?} after `{typed}`"),
        ErrorKind::InvalidValue if value.is_empty() => {
            format!("{} needs a value", option_name(&arg))
        }
        ErrorKind::InvalidValue => format!(
            "{typed}: {value:?} is not {}",
            one_of(&context_list(e, ContextKind::ValidValue))
        ),
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(e).map_or(String::new(), |s| s.to_string());
            format!("{typed}: {why}")
        }
        ErrorKind::MissingRequiredArgument => {
            let needs: Vec<String> = leaf
                .get_positionals()
                .filter(|a| a.is_required_set())
                .map(|a| a.get_help().map_or(arg.clone(), |h| h.to_string()))
                .collect();
            format!("{typed} needs {}", needs.join(" and "))
        }
        ErrorKind::ArgumentConflict
            if option_name(&arg)
                == option_name(&context(e, ContextKind::PriorArg).unwrap_or_default()) =>
        {
            format!("{} given twice", option_name(&arg))
        }
        ErrorKind::TooManyValues => format!("{} takes no value", option_name(&arg)),
        // Anything else in clap's words, without its "error: ".
        _ => {
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or_default();
            line.strip_prefix("error: ").unwrap_or(line).to_string()
        }
    }
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(values: &[String]) -> String {
    match values.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "valid".to_string(),
    }
}

fn trace_count(n: &str) -> Result<u64, String> {
    match n.parse::<u64>() {
        Ok(c) if (1..=TRACE_ADD_MAX).contains(&c) && n.bytes().all(|b| b.is_ascii_digit()) => Ok(c),
        _ => Err(format!(
            "the count must be a whole number from 1 to {TRACE_ADD_MAX}, not {n:?}"
        )),
    }
}

/// The request's `args`, after checking each option goes with the command.
fn args(command: &str, cli: &Cli) -> Result<Option<Value>, String> {
    if cli.all && command != "show errors" {
        return Err(format!(
            "--all goes only with `show errors`, not `{command}`"
        ));
    }
    for (name, given) in [("--proto", &cli.proto), ("--host", &cli.host)] {
        if given.is_some() && command != "show sessions" {
            return Err(format!(
                "{name} goes only with `show sessions`, not `{command}`"
            ));
        }
    }
    if let Command::Trace(Trace::Add { count, rx }) = &cli.command {
        return Ok(Some(match rx {
            Some(Rx::Wan) => json!({ "count": count, "rx": "wan" }),
            Some(Rx::Lan) => json!({ "count": count, "rx": "lan" }),
            None => json!({ "count": count }),
        }));
    }
    if command != "show sessions" {
        return Ok(None);
    }
    let mut filters = Map::new();
    if let Some(p) = &cli.proto {
        check_proto(p)?;
        filters.insert("proto".into(), Value::String(p.clone()));
    }
    if let Some(h) = &cli.host {
        if h.parse::<IpAddr>().is_err() {
            return Err(format!("--host {h:?}: not an IPv4 or IPv6 address"));
        }
        filters.insert("host".into(), Value::String(h.clone()));
    }
    Ok((!filters.is_empty()).then_some(Value::Object(filters)))
}

/// The protocols the daemon accepts: a name or a protocol number.
fn check_proto(p: &str) -> Result<(), String> {
    if matches!(p, "tcp" | "udp" | "icmp" | "icmpv6") || p.parse::<u8>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "--proto {p:?}: expected tcp, udp, icmp, icmpv6 or a protocol number (0..255)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str, env: Option<&str>) -> Result<Parsed, UsageError> {
        parse(
            line.split_whitespace().map(String::from),
            env.map(String::from),
        )
    }

    fn run(line: &str) -> Invocation {
        match parse_words(line, None) {
            Ok(Parsed::Run(inv)) => inv,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn usage_error(line: &str) -> UsageError {
        match parse_words(line, None) {
            Err(e) => e,
            Ok(p) => panic!("{line:?} parsed: {p:?}"),
        }
    }

    /// clap's own checks of the definition (names, overrides, positionals),
    /// which it otherwise makes only in debug builds.
    #[test]
    fn command_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn every_listed_command_is_its_protocol_command() {
        let leaves = leaf_commands(&command());
        assert_eq!(leaves.len(), 24, "{leaves:?}");
        for (name, _) in leaves {
            let words: Vec<&str> = name
                .split(' ')
                .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .collect();
            let line = name
                .replace(" N", " 5")
                .replace(" [wan|lan]", "")
                .replace(" SHELL", " bash");
            match parse_words(&line, None) {
                Ok(Parsed::Run(inv)) => assert_eq!(inv.command, words.join(" "), "{name}"),
                Ok(Parsed::Completions(_)) => assert_eq!(words, ["completions"]),
                Ok(Parsed::Man) => assert_eq!(words, ["man"]),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn socket_from_option_then_environment_then_default() {
        let sock = |line: &str, env: Option<&str>| match parse_words(line, env) {
            Ok(Parsed::Run(inv)) => inv.socket,
            other => panic!("{line:?}: {other:?}"),
        };
        assert_eq!(sock("version", None), DEFAULT_SOCKET);
        assert_eq!(sock("version", Some("/tmp/env.sock")), "/tmp/env.sock");
        assert_eq!(
            sock("version --socket /tmp/flag.sock", Some("/tmp/env.sock")),
            "/tmp/flag.sock"
        );
        assert_eq!(sock("--socket=/tmp/eq.sock show wan", None), "/tmp/eq.sock");
    }

    #[test]
    fn options_go_anywhere_on_the_line() {
        let inv = run("--json show --socket /s errors --all");
        assert_eq!(inv.command, "show errors");
        assert!(inv.json && inv.all);
        assert_eq!(inv.socket, "/s");
        assert_eq!(inv.args, None);
        let inv = run("show --host 2001:db8::1 sessions --proto 6");
        assert_eq!(inv.args, Some(json!({"proto": "6", "host": "2001:db8::1"})));
        // A repeated flag is harmless; a repeated value is ambiguous.
        assert!(run("--json --json version").json);
        assert_eq!(
            usage_error("show sessions --host ::1 --host ::2").why,
            "--host given twice"
        );
    }

    #[test]
    fn trace_add_args() {
        assert_eq!(run("trace add 1000").args, Some(json!({"count": 1000})));
        assert_eq!(
            run("trace add 7 wan --json").args,
            Some(json!({"count": 7, "rx": "wan"}))
        );
        assert_eq!(
            usage_error("trace add 1001").why,
            "trace add: the count must be a whole number from 1 to 1000, not \"1001\""
        );
        assert_eq!(
            usage_error("trace add 5 both").why,
            "trace add: \"both\" is not wan or lan"
        );
    }

    /// Each kind of clap error becomes a one-line reason and the help of
    /// the command it got as far as, which main prints with exit 2.
    #[test]
    fn clap_errors_become_one_line_usage_errors() {
        for (line, why, help_of) in [
            ("", "no command given", "usage: ipoectl [OPTIONS] <COMMAND>"),
            (
                "show wna",
                "unknown command \"show wna\"",
                "usage: ipoectl show",
            ),
            (
                "pd",
                "incomplete command \"pd\": one of renew, rebind",
                "usage: ipoectl pd",
            ),
            (
                "reload --frob=1",
                "unknown option --frob",
                "usage: ipoectl reload",
            ),
            (
                "show lan lan",
                "unexpected \"lan\" after `show lan`",
                "usage: ipoectl show lan",
            ),
            (
                "version --json=1",
                "--json takes no value",
                "usage: ipoectl version",
            ),
            (
                "version --host",
                "--host needs a value",
                "usage: ipoectl version",
            ),
            (
                "trace add",
                "trace add needs a packet count, 1..1000",
                "usage: ipoectl trace add [OPTIONS] <N> [wan|lan]",
            ),
            (
                "completions tcsh",
                "completions: \"tcsh\" is not bash, elvish, fish, powershell or zsh",
                "usage: ipoectl completions",
            ),
        ] {
            let e = usage_error(line);
            assert_eq!(e.why, why, "{line:?}");
            assert!(!e.why.contains('\n'), "{line:?}: {}", e.why);
            assert!(e.usage.contains(help_of), "{line:?}: {}", e.usage);
        }
    }

    #[test]
    fn help_and_version_are_not_errors() {
        let text = |line: &str| match parse_words(line, None) {
            Ok(Parsed::Help(t)) => t,
            other => panic!("{line:?}: {other:?}"),
        };
        let top = text("--help");
        assert!(top.contains("usage: ipoectl"), "{top}");
        assert!(top.contains("  trace add N [wan|lan]  trace the next N packets"));
        assert!(top.contains("options (anywhere on the line):"), "{top}");
        assert!(text("show -h").contains("usage: ipoectl show [OPTIONS] <COMMAND>"));
        assert!(text("--version").contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn completions_name_the_commands() {
        assert!(matches!(
            parse_words("completions fish", None),
            Ok(Parsed::Completions(Shell::Fish))
        ));
        assert!(matches!(parse_words("man", None), Ok(Parsed::Man)));
        assert_eq!(
            usage_error("completions bash --all").why,
            "--all goes only with `show errors`, not `completions`"
        );
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "ipoectl", &mut script);
            let script = String::from_utf8(script).unwrap();
            for word in ["ipoectl", "show", "sessions", "rebind", "socket"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }
}
