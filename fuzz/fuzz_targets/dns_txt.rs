//! The TXT side of the WAN resolver (HB46PP's `4over6.info`): a reply to
//! our query, then the records it gives through HB46PP's TXT parser.
//! Input: two bytes of query id, then the DNS message.
//!
//! Checked: no panic; every record that parses is no longer than the
//! message it came from; and its record view yields the same bytes again.
#![no_main]

use ipoe_proto::dns::txt::{emit_txt_rdata, parse_txt_response, TxtRdata};
use ipoe_proto::hb46pp::txt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((id, msg)) = data.split_first_chunk::<2>() else {
        return;
    };
    let id = u16::from_be_bytes(*id);
    if let Ok(records) = parse_txt_response(id, "4over6.info", msg) {
        for r in &records {
            assert!(r.len() <= msg.len());
            let mut rdata = Vec::new();
            emit_txt_rdata(r, &mut rdata);
            let view = TxtRdata::new_checked(&rdata).expect("our own rdata");
            assert_eq!(&view.joined(), r);
        }
        let _ = txt::parse(&records);
    }
    // The record view on raw bytes as well.
    if let Ok(view) = TxtRdata::new_checked(msg) {
        assert!(view.joined().len() <= msg.len());
    }
});
