//! The `http_response` target: the HTTP/1.1 response reader fed a
//! response in pieces, as TCP delivers it.
//!
//! Header: one byte; bit 0: small limits (512-byte head, 8 headers,
//! 1 KiB body) instead of the defaults.
//!
//! Records: the pieces, in order; flags bit 0: the connection ends after
//! this piece.
//!
//! Checked: once complete (or failed) the reader stays so; a response has
//! at most the limits' headers and body, a status of three digits, and a
//! `Location` only on a 3xx.

use ipoe_proto::http::{Limits, ResponseReader};

pub fn run(data: &[u8]) {
    let (header, records) = crate::split::<1>(data);
    let limits = if header[0] & 1 != 0 {
        Limits {
            max_head: 512,
            max_headers: 8,
            max_body: 1024,
        }
    } else {
        Limits::default()
    };
    let mut reader = ResponseReader::new(limits);
    let mut outcome = None;
    for record in &records {
        let r = reader.push(record.bytes);
        match (&outcome, &r) {
            (Some(Ok(true)), _) => assert_eq!(r, Ok(true), "complete stays complete"),
            (Some(Err(e)), _) => assert_eq!(r, Err(*e), "failed stays failed"),
            _ => {}
        }
        if r != Ok(false) {
            outcome.get_or_insert(r);
        }
        if record.flags & 1 != 0 {
            let _ = reader.eof();
            break;
        }
    }
    if let Some(resp) = reader.take() {
        assert!(resp.headers.len() <= limits.max_headers);
        assert!(resp.body.len() <= limits.max_body);
        assert!((100..1000).contains(&resp.status));
        assert!(resp.location().is_none() || (300..400).contains(&resp.status));
    }
}
