//! The control socket's messages (control/PROTOCOL.md): one JSON request
//! line, one JSON reply line. Both ends use these, ipoed to read requests
//! and write replies, ipoectl to write requests and read replies, so the
//! two cannot drift apart.

use serde_json::{json, Value};

pub const PROTOCOL_VERSION: u64 = 1;
/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Most packets one `trace add` may arm (the dataplane's `TRACE_MAX`).
pub const TRACE_ADD_MAX: u64 = 1000;

/// One request line, checked: valid JSON, the protocol version we speak,
/// and a command name. What the command's `args` mean is up to the command.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub command: String,
    /// `null` when the request has none.
    pub args: Value,
}

impl Request {
    /// The request line with its newline, fields in the order PROTOCOL.md
    /// shows them (a serde_json map would sort them), `args` only when
    /// there are any.
    pub fn to_line(&self) -> String {
        let mut line = format!(
            "{{\"version\":{PROTOCOL_VERSION},\"command\":{}",
            Value::String(self.command.clone())
        );
        if !self.args.is_null() {
            line.push_str(&format!(",\"args\":{}", self.args));
        }
        line.push_str("}\n");
        line
    }
}

/// Parse one request line (without its newline). The error is the text of
/// the error reply.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let req: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return Err(format!("malformed request: {e}")),
    };
    match req.get("version").and_then(Value::as_u64) {
        Some(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "unsupported protocol version {v} (this daemon speaks {PROTOCOL_VERSION})"
            ))
        }
        None => return Err("missing \"version\"".to_string()),
    }
    let Some(command) = req.get("command").and_then(Value::as_str) else {
        return Err("missing \"command\"".to_string());
    };
    Ok(Request {
        command: command.to_string(),
        args: req.get("args").cloned().unwrap_or(Value::Null),
    })
}

pub fn ok_reply(data: Value) -> Value {
    json!({"version": PROTOCOL_VERSION, "ok": true, "data": data})
}

pub fn error_reply(msg: &str) -> Value {
    json!({"version": PROTOCOL_VERSION, "ok": false, "error": msg})
}

/// What a reply says: its `data` (`null` when it has none), or the error
/// text of anything but `"ok": true`.
pub fn parse_reply(reply: &Value) -> Result<&Value, String> {
    if reply.get("ok") == Some(&Value::Bool(true)) {
        return Ok(reply.get("data").unwrap_or(&Value::Null));
    }
    Err(match reply.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => format!("an error reply without an error text: {reply}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_request_takes_command_and_args() {
        let r = parse_request(br#"{"version":1,"command":"trace add","args":{"count":5}}"#);
        assert_eq!(
            r,
            Ok(Request {
                command: "trace add".to_string(),
                args: json!({"count": 5}),
            })
        );
        let r = parse_request(br#"{"version":1,"command":"show errors"}"#).unwrap();
        assert_eq!(r.args, Value::Null);
    }

    #[test]
    fn parse_request_refusals_keep_their_texts() {
        let err = |line: &[u8]| parse_request(line).unwrap_err();
        assert!(err(b"{").starts_with("malformed request: "));
        assert!(err(b"").starts_with("malformed request: "));
        assert_eq!(
            err(br#"{"version":2,"command":"version"}"#),
            "unsupported protocol version 2 (this daemon speaks 1)"
        );
        assert_eq!(err(br#"{"command":"version"}"#), "missing \"version\"");
        assert_eq!(err(br#"{"version":"1"}"#), "missing \"version\"");
        assert_eq!(err(b"[1]"), "missing \"version\"");
        assert_eq!(err(br#"{"version":1}"#), "missing \"command\"");
        assert_eq!(err(br#"{"version":1,"command":7}"#), "missing \"command\"");
    }
}

/// The two ends against each other: what one writes the other reads back.
#[cfg(test)]
mod round_trip {
    use super::*;

    #[test]
    fn request_line_is_what_protocol_md_shows() {
        let r = Request {
            command: "trace add".into(),
            args: json!({"count": 5, "rx": "lan"}),
        };
        assert_eq!(
            r.to_line(),
            "{\"version\":1,\"command\":\"trace add\",\"args\":{\"count\":5,\"rx\":\"lan\"}}\n"
        );
        let bare = Request {
            command: "show wan".into(),
            args: Value::Null,
        };
        assert_eq!(bare.to_line(), "{\"version\":1,\"command\":\"show wan\"}\n");
    }

    #[test]
    fn every_request_line_parses_back_to_itself() {
        for r in [
            Request {
                command: "show sessions".into(),
                args: json!({"proto": "tcp", "host": "2001:db8::1"}),
            },
            Request {
                command: "a \"quoted\"\ncommand".into(),
                args: Value::Null,
            },
        ] {
            let line = r.to_line();
            let body = line.strip_suffix('\n').expect("ends with its newline");
            assert!(!body.contains('\n'), "one line: {line:?}");
            assert_eq!(parse_request(body.as_bytes()), Ok(r));
        }
    }

    #[test]
    fn replies_read_back_as_data_or_error_text() {
        let data = json!({"armed": 5});
        assert_eq!(parse_reply(&ok_reply(data.clone())), Ok(&data));
        assert_eq!(
            parse_reply(&error_reply("no delegated prefix to renew yet")),
            Err("no delegated prefix to renew yet".to_string())
        );
        // Anything short of "ok": true is a refusal, with what text it has.
        assert_eq!(parse_reply(&json!({"ok": true})), Ok(&Value::Null));
        assert_eq!(
            parse_reply(&json!({"ok": "yes", "error": 7})),
            Err("7".to_string())
        );
        assert!(parse_reply(&json!({"version": 1}))
            .unwrap_err()
            .starts_with("an error reply without an error text"));
    }
}
