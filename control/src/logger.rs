//! A small stderr logger. Under systemd (`JOURNAL_STREAM` set) each line
//! starts with its syslog priority (`<3>`..`<7>`, sd-daemon(3)), so the
//! journal keeps the level and `journalctl -p warning` works; the journal
//! adds the timestamps. Elsewhere lines read `ipoed[level] message`.

use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

static JOURNAL: AtomicBool = AtomicBool::new(false);

/// The journal's priority for a level (syslog numbering).
pub fn priority(l: Level) -> u8 {
    match l {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One log line as written, without the newline.
pub fn format_line(journal: bool, l: Level, msg: &str) -> String {
    if journal {
        // A message spanning lines would lose its priority after the
        // first: keep it on one.
        format!("<{}>{}", priority(l), msg.replace('\n', " "))
    } else {
        format!("ipoed[{}] {msg}", l.as_str().to_lowercase())
    }
}

impl Log for Stderr {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record) {
        if self.enabled(r.metadata()) {
            let line = format_line(
                JOURNAL.load(Ordering::Relaxed),
                r.level(),
                &r.args().to_string(),
            );
            eprintln!("{line}");
        }
    }
    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

pub fn init(level: LevelFilter) {
    JOURNAL.store(
        std::env::var_os("JOURNAL_STREAM").is_some(),
        Ordering::Relaxed,
    );
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The filter for a configured level.
pub fn level(l: ipoe_config::LogLevel) -> LevelFilter {
    match l {
        ipoe_config::LogLevel::Error => LevelFilter::Error,
        ipoe_config::LogLevel::Warn => LevelFilter::Warn,
        ipoe_config::LogLevel::Info => LevelFilter::Info,
        ipoe_config::LogLevel::Debug => LevelFilter::Debug,
        ipoe_config::LogLevel::Trace => LevelFilter::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_lines_carry_their_priority() {
        assert_eq!(
            format_line(true, Level::Warn, "wan: no default router\nsecond"),
            "<4>wan: no default router second"
        );
        assert_eq!(format_line(true, Level::Error, "x"), "<3>x");
        assert_eq!(format_line(false, Level::Info, "x"), "ipoed[info] x");
    }
}
