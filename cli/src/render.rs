//! From a command's reply data to the text a person reads.

use serde_json::Value;

use crate::{actions, fw, map, state, stats, tree};

/// The client-side choices that shape output.
pub struct Opts<'a> {
    /// `show errors --all`.
    pub all: bool,
    /// The request's args, for replies that leave out what was asked.
    pub args: Option<&'a Value>,
}

pub fn render(command: &str, d: &Value, o: &Opts) -> String {
    match command {
        "show interfaces" => stats::interfaces(d),
        "show errors" => stats::errors(d, o.all),
        "show runtime" => stats::runtime(d),
        "show neighbors" => stats::neighbors(d),
        "show config" => state::config(d),
        "show wan" => state::wan(d),
        "show pd" => state::pd(d),
        "show tunnel" => state::tunnel(d),
        "show map" => map::map(d),
        "show lan" => state::lan(d),
        "show leases" => state::leases(d),
        "show firewall" => fw::firewall(d),
        "show sessions" => fw::sessions(d),
        "show trace" => actions::trace(d),
        "trace add" => actions::trace_add(d, o.args),
        "clear runtime" | "clear errors" | "clear trace" => {
            actions::cleared(d, command.trim_start_matches("clear "))
        }
        "pd renew" | "pd rebind" => actions::pd_action(d, command),
        "reload" => actions::reload(d),
        "version" => state::version(d),
        _ => tree::render(d, &tree::Style::default()),
    }
}
