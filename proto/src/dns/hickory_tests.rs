//! The pointer rules the resolver keeps on top of hickory-proto's name
//! decoder, which follows any pointer to an earlier offset (the header
//! included) and any number of them.

use super::*;

/// A reply for a.example (id 7) with one AAAA record whose owner is
/// `owner(offset of the owner)`, and `rdata_first` as a record of type 99
/// placed before it (to hold pointer chains).
fn reply_with(rdata_first: &[u8], owner: impl FnOnce(usize, usize) -> Vec<u8>) -> Vec<u8> {
    let mut msg = build_query(7, "a.example", TYPE_AAAA).unwrap();
    msg.truncate(msg.len() - 11); // our OPT
    let mut header = Packet::new_unchecked(&mut msg[..]);
    header.set_flags(FLAG_QR | FLAG_RD | FLAG_RA);
    header.set_answer_count(2);
    header.set_additional_count(0);
    msg.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
    msg.extend_from_slice(&99u16.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    msg.extend_from_slice(&60u32.to_be_bytes());
    msg.extend_from_slice(&(rdata_first.len() as u16).to_be_bytes());
    let rdata_at = msg.len();
    msg.extend_from_slice(rdata_first);
    let owner_at = msg.len();
    msg.extend_from_slice(&owner(rdata_at, owner_at));
    msg.extend_from_slice(&TYPE_AAAA.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    msg.extend_from_slice(&60u32.to_be_bytes());
    msg.extend_from_slice(&16u16.to_be_bytes());
    msg.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    msg
}

fn ptr(target: usize) -> [u8; 2] {
    [0xc0 | (target >> 8) as u8, target as u8]
}

/// RDATA placed at `rdata_at` holding `hops` pointers in a row, each to
/// the one before, the first to the question name.
fn chain(rdata_at: usize, hops: usize) -> Vec<u8> {
    let mut rdata = ptr(HEADER_LEN).to_vec();
    for i in 1..hops {
        rdata.extend_from_slice(&ptr(rdata_at + 2 * (i - 1)));
    }
    rdata
}

#[test]
fn pointer_chains_are_followed_up_to_the_limit_only() {
    // The owner points at the last pointer of a chain; with the owner's
    // own pointer that is `hops + 1` hops.
    let rdata_at = build_query(7, "a.example", TYPE_AAAA).unwrap().len() - 11 + 12;
    for (hops, expected) in [
        (MAX_POINTER_HOPS - 1, Ok(())),
        (MAX_POINTER_HOPS, Err(DnsError::LoopingPointers)),
        (2000, Err(DnsError::LoopingPointers)),
    ] {
        let rdata = chain(rdata_at, hops);
        let msg = reply_with(&rdata, |at, _| {
            assert_eq!(at, rdata_at);
            ptr(at + 2 * (hops - 1)).to_vec()
        });
        let result = parse_aaaa_response(7, "a.example", &msg).map(|_| ());
        assert_eq!(result, expected, "{hops} pointers in the chain");
    }
}

#[test]
fn names_pointing_into_the_header_are_refused() {
    // Offset 4 is QDCOUNT's high octet, 0: hickory alone would read the
    // root name there.
    let msg = reply_with(&[0], |_, _| ptr(4).to_vec());
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::BadPointer)
    );
    // In the question too.
    let mut msg = build_query(7, "a.example", TYPE_AAAA).unwrap()[..HEADER_LEN].to_vec();
    Packet::new_unchecked(&mut msg[..]).set_flags(FLAG_QR | FLAG_RD);
    Packet::new_unchecked(&mut msg[..]).set_additional_count(0);
    msg.extend_from_slice(&ptr(4));
    msg.extend_from_slice(&TYPE_AAAA.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::BadPointer)
    );
}

#[test]
fn hickory_decode_errors_keep_our_names() {
    // A pointer to itself, one to a later offset, reserved label types,
    // a name over 255 octets: each as the hand-written reader named it.
    let msg = reply_with(&[0], |_, at| ptr(at).to_vec());
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::BadPointer)
    );
    let msg = reply_with(&[0], |_, at| ptr(at + 10).to_vec());
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::BadPointer)
    );
    for label_type in [0x40, 0x80] {
        let msg = reply_with(&[0], |_, _| vec![label_type | 1, b'x', 0]);
        assert_eq!(
            parse_aaaa_response(7, "a.example", &msg),
            Err(DnsError::BadLabel)
        );
    }
    let long: Vec<u8> = (0..4)
        .flat_map(|_| [&[63u8][..], &[b'x'; 63]].concat())
        .chain([0])
        .collect();
    let msg = reply_with(&[0], |_, _| long);
    assert_eq!(
        parse_aaaa_response(7, "a.example", &msg),
        Err(DnsError::TooLong)
    );
}
