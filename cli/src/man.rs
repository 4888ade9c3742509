//! `ipoectl man`: the manual page, from the same clap command as `--help`.
//! clap_mangen's subcommand section points at one page per subcommand,
//! which nobody installs; this page lists every whole command instead,
//! and says what the exit status and `$IPOED_SOCKET` mean.

use std::io::Write;

use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use crate::args::{self, DEFAULT_SOCKET};

pub fn page(w: &mut dyn Write) -> std::io::Result<()> {
    let cmd = args::command();
    let man = Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for (name, about) in args::leaf_commands(&cmd) {
        roff.control("TP", []);
        roff.text([bold(name)]);
        roff.text([roman(about)]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in [
        ("0", "done"),
        (
            "1",
            "ipoed could not be reached, did not answer, or answered with an error",
        ),
        ("2", "the command line is wrong (the usage is printed)"),
    ] {
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(what)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", []);
    roff.text([bold("IPOED_SOCKET")]);
    roff.text([roman(format!(
        "the control socket when --socket is not given (default {DEFAULT_SOCKET})"
    ))]);
    roff.to_writer(w)?;
    man.render_version_section(w)
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_lists_every_command_and_the_exit_status() {
        let mut out = Vec::new();
        super::page(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains(".TH ipoectl 1"), "{page}");
        for want in [
            ".SH COMMANDS",
            "trace add N [wan|lan]",
            "pd rebind",
            ".SH \"EXIT STATUS\"",
            "IPOED_SOCKET",
        ] {
            assert!(page.contains(want), "no {want:?} in\n{page}");
        }
    }
}
