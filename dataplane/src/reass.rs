//! Bounded IPv6 fragment reassembly for the DS-Lite B4.
//!
//! An IPv4 packet of 1500 bytes tunnelled in IPv6 no longer fits a 1500
//! link, so the AFTR fragments the outer IPv6 packet (RFC 6333 5.3,
//! RFC 2473 7.2); the B4 must reassemble it before decapsulating. This
//! runs on one worker's fast path: every buffer is allocated in `new`, a
//! fragment costs work proportional to its size (plus a scan of the few
//! contexts), and hostile input only ever yields an error.
//!
//! Only what an AFTR sends is accepted: a fixed header, then optionally a
//! Hop-by-Hop and Destination Options headers (a Linux AFTR puts RFC 2473's
//! encapsulation limit there), then the Fragment header. Overlaps abandon
//! the datagram (RFC 5722), so no mix of two senders' bytes is ever handed
//! on. A datagram is ECN CE if any of its fragments was (RFC 3168 5.3).
//!
//! The other direction (fragmenting our own IPv4-in-IPv6 packets) uses the
//! pure helpers [`split_for_mtu`] and [`write_fragment_header`].

/// Fixed IPv6 header length.
const IPV6_LEN: usize = 40;
/// Fragment header length (RFC 8200 4.5).
const FRAG_LEN: usize = 8;
/// Next Header value of the Fragment header.
const NH_FRAGMENT: u8 = 44;
/// Hop-by-Hop and Destination Options: allowed before the Fragment header.
const NH_HOP_BY_HOP: u8 = 0;
const NH_DEST_OPTS: u8 = 60;
/// Options headers walked before the Fragment header at most.
const MAX_UNFRAGMENTABLE: usize = 4;
/// ECN CE in the second byte of the IPv6 header (RFC 3168 5).
const CE: u8 = 0x30;
/// IPv4 (IP-in-IP): the DS-Lite payload.
const NH_IPIP: u8 = 4;
/// A first fragment of an IPv4 payload must hold the whole IPv4 header
/// (RFC 7112), so the inner header is never split.
const IPV4_MIN_LEN: usize = 20;
/// Largest IPv6 payload (no jumbograms): fragments ending past it are
/// invalid (RFC 8200 4.5).
const MAX_PAYLOAD: usize = 65535;
/// Distinct fragments kept per datagram. A legitimate AFTR sends two; a
/// datagram in more pieces than this at our sizes is an attack.
pub const MAX_PIECES: usize = 32;
/// `Ctx::total` before the final fragment has arrived.
const NO_TOTAL: usize = usize::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReassError {
    /// Overlapping fragments: the whole datagram is discarded (RFC 5722,
    /// RFC 8200 4.5).
    Overlap,
    /// The reassembled datagram would exceed `max_len` (or the output
    /// buffer): datagram discarded.
    TooBig,
    /// Bad fragment header, non-final fragment length not a multiple of 8,
    /// fragment past the known end, conflicting final fragments, payload
    /// length inconsistent, too many pieces.
    Malformed,
    /// Extension headers other than Hop-by-Hop and Destination Options
    /// before the Fragment header, no Fragment header, or a first fragment
    /// without the whole upper-layer header (RFC 7112).
    Unsupported,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassStats {
    /// Packets handed to `insert` (rejected ones included).
    pub fragments: u64,
    /// Datagrams returned whole (atomic fragments included).
    pub completed: u64,
    /// Datagrams freed because their time ran out.
    pub timed_out: u64,
    /// Datagrams dropped to make room for a newer one.
    pub evicted: u64,
    pub overlaps: u64,
    pub malformed: u64,
    pub too_big: u64,
    /// Exact duplicate fragments, ignored.
    pub duplicates: u64,
}

/// One datagram in progress; its bytes live in `Reassembler::buf`.
#[derive(Clone, Copy)]
struct Ctx {
    busy: bool,
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    start_ns: u64,
    /// Payload length fixed by the final fragment, `NO_TOTAL` before.
    total: usize,
    /// Furthest end seen, so a late final fragment cannot cut off data.
    max_end: usize,
    /// Bytes received: no overlaps are kept, so this reaching `total`
    /// means every byte is there.
    received: usize,
    pieces: usize,
    /// Next Header of the first fragment's Fragment header (RFC 8200:
    /// the first fragment's is the one that counts).
    next_header: u8,
    /// Some fragment was ECN CE.
    ce: bool,
}

const IDLE: Ctx = Ctx {
    busy: false,
    src: [0; 16],
    dst: [0; 16],
    id: 0,
    start_ns: 0,
    total: NO_TOTAL,
    max_end: 0,
    received: 0,
    pieces: 0,
    next_header: 0,
    ce: false,
};

pub struct Reassembler {
    ctxs: Vec<Ctx>,
    /// `max_len` bytes per context: the first fragment's fixed header at
    /// 0..40, the payload after, so completion is one copy.
    buf: Vec<u8>,
    /// Received 8-byte blocks of payload, `words` per context.
    bits: Vec<u64>,
    /// (offset, length) of each fragment kept, `MAX_PIECES` per context,
    /// to tell exact duplicates (ignored) from overlaps (fatal).
    pieces: Vec<(u16, u16)>,
    max_len: usize,
    words: usize,
    timeout_ns: u64,
    in_use: usize,
    stats: ReassStats,
}

/// Result of the context scan at the start of `insert`.
struct Scan {
    found: Option<usize>,
    free: Option<usize>,
    oldest: Option<usize>,
}

impl Reassembler {
    /// `contexts` datagrams in progress at most (at least 1 is kept);
    /// `max_len` the largest reassembled IPv6 packet (fixed header
    /// included) accepted; `timeout_ns` how long a datagram may take from
    /// its first-arriving fragment.
    ///
    /// # Panics
    /// If `contexts * max_len` bytes cannot be allocated (configuration
    /// error, not input).
    pub fn new(contexts: usize, max_len: usize, timeout_ns: u64) -> Self {
        let contexts = contexts.max(1);
        // Nothing larger can be expressed in a Payload Length field.
        let max_len = max_len.min(IPV6_LEN + MAX_PAYLOAD);
        let blocks = max_len.saturating_sub(IPV6_LEN).div_ceil(8);
        let words = blocks.div_ceil(64);
        let bytes = contexts
            .checked_mul(max_len)
            .expect("reassembly buffer size overflows");
        Reassembler {
            ctxs: vec![IDLE; contexts],
            buf: vec![0; bytes],
            bits: vec![0; contexts * words],
            pieces: vec![(0, 0); contexts * MAX_PIECES],
            max_len,
            words,
            timeout_ns,
            in_use: 0,
            stats: ReassStats::default(),
        }
    }

    /// `pkt` is one whole IPv6 packet starting at the fixed header (bytes
    /// past its Payload Length are ignored) with a Fragment header, right
    /// after the fixed header or after Hop-by-Hop and Destination Options
    /// headers. Those are left out of the datagram: the caller processes
    /// their options for each fragment (as Linux does) before handing it
    /// over. Datagrams are keyed by (source, destination, identification)
    /// (RFC 8200 4.5).
    ///
    /// Returns `Ok(None)` when the fragment was buffered (or was an exact
    /// duplicate, ignored), `Ok(Some(n))` when it completed the datagram:
    /// `out[..n]` then holds the first fragment's fixed header with Next
    /// Header and Payload Length (`n - 40`) fixed up, followed by the
    /// reassembled payload, and the context is freed. An atomic fragment
    /// (offset 0, M = 0) is returned at once without a context
    /// (RFC 6946). On `Overlap`, `TooBig` and `Malformed` the datagram's
    /// context, if any, is freed.
    pub fn insert(
        &mut self,
        pkt: &[u8],
        now_ns: u64,
        out: &mut [u8],
    ) -> Result<Option<usize>, ReassError> {
        self.stats.fragments += 1;
        let r = self.insert_inner(pkt, now_ns, out);
        match r {
            Err(ReassError::Overlap) => self.stats.overlaps += 1,
            Err(ReassError::TooBig) => self.stats.too_big += 1,
            Err(ReassError::Malformed) => self.stats.malformed += 1,
            _ => {}
        }
        r
    }

    fn insert_inner(
        &mut self,
        pkt: &[u8],
        now_ns: u64,
        out: &mut [u8],
    ) -> Result<Option<usize>, ReassError> {
        if pkt.len() < IPV6_LEN || pkt[0] >> 4 != 6 {
            return Err(ReassError::Malformed);
        }
        let plen = usize::from(u16::from_be_bytes([pkt[4], pkt[5]]));
        let pkt = pkt.get(..IPV6_LEN + plen).ok_or(ReassError::Malformed)?;
        let fo = fragment_header_at(pkt)?;
        let fh = pkt.get(fo..fo + FRAG_LEN).ok_or(ReassError::Malformed)?;
        let next_header = fh[0];
        let field = u16::from_be_bytes([fh[2], fh[3]]);
        let offset = usize::from(field & 0xfff8);
        let more = field & 1 != 0;
        let id = u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]);
        let ce = pkt[1] & CE == CE;
        let data = &pkt[fo + FRAG_LEN..];
        let len = data.len();
        let end = offset + len;

        if offset == 0 && next_header == NH_IPIP && len < IPV4_MIN_LEN {
            return Err(ReassError::Unsupported);
        }
        if offset == 0 && !more {
            // Atomic fragment: a whole packet, never mixed with a
            // datagram in progress (RFC 6946).
            let n = IPV6_LEN + len;
            if n > self.max_len || n > out.len() {
                return Err(ReassError::TooBig);
            }
            out[..IPV6_LEN].copy_from_slice(&pkt[..IPV6_LEN]);
            out[4..6].copy_from_slice(&(len as u16).to_be_bytes());
            out[6] = next_header;
            out[IPV6_LEN..n].copy_from_slice(data);
            self.stats.completed += 1;
            return Ok(Some(n));
        }

        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(&pkt[8..24]);
        dst.copy_from_slice(&pkt[24..40]);
        let scan = self.scan(&src, &dst, id, now_ns);

        // Checks on the fragment alone: the datagram they belong to is
        // abandoned, but no context is taken for them.
        let alone = if len == 0 || (more && len % 8 != 0) || end > MAX_PAYLOAD {
            Err(ReassError::Malformed)
        } else if IPV6_LEN + end > self.max_len {
            Err(ReassError::TooBig)
        } else {
            Ok(())
        };
        if let Err(e) = alone {
            if let Some(c) = scan.found {
                self.free(c);
            }
            return Err(e);
        }

        let c = match scan.found {
            Some(c) => {
                match self.check(c, offset, len, more) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.stats.duplicates += 1;
                        return Ok(None);
                    }
                    Err(e) => {
                        self.free(c);
                        return Err(e);
                    }
                }
                c
            }
            None => {
                let c = match (scan.free, scan.oldest) {
                    (Some(c), _) => c,
                    (None, Some(c)) => {
                        self.free(c);
                        self.stats.evicted += 1;
                        c
                    }
                    // `new` keeps at least one context, so one of the two
                    // exists; refuse rather than panic all the same.
                    (None, None) => return Err(ReassError::TooBig),
                };
                self.ctxs[c] = Ctx {
                    busy: true,
                    src,
                    dst,
                    id,
                    start_ns: now_ns,
                    ..IDLE
                };
                self.in_use += 1;
                c
            }
        };

        // Accept: copy the bytes, mark their blocks, note the piece.
        let base = c * self.max_len;
        let at = base + IPV6_LEN + offset;
        self.buf[at..at + len].copy_from_slice(data);
        let words = &mut self.bits[c * self.words..(c + 1) * self.words];
        set_blocks(words, offset / 8, end.div_ceil(8));
        let ctx = &mut self.ctxs[c];
        self.pieces[c * MAX_PIECES + ctx.pieces] = (offset as u16, len as u16);
        ctx.pieces += 1;
        ctx.received += len;
        ctx.max_end = ctx.max_end.max(end);
        ctx.ce |= ce;
        if !more {
            ctx.total = end;
        }
        if offset == 0 {
            // The unfragmentable part comes from the first fragment.
            ctx.next_header = next_header;
            self.buf[base..base + IPV6_LEN].copy_from_slice(&pkt[..IPV6_LEN]);
        }
        if ctx.total == NO_TOTAL || ctx.received != ctx.total {
            return Ok(None);
        }

        let total = ctx.total;
        let next_header = ctx.next_header;
        let ce = ctx.ce;
        let n = IPV6_LEN + total;
        self.free(c);
        if n > out.len() {
            return Err(ReassError::TooBig);
        }
        out[..n].copy_from_slice(&self.buf[base..base + n]);
        out[4..6].copy_from_slice(&(total as u16).to_be_bytes());
        out[6] = next_header;
        if ce {
            out[1] |= CE;
        }
        self.stats.completed += 1;
        Ok(Some(n))
    }

    /// One pass over the contexts: time out old ones (lazy expiry), find
    /// the key, and note a free slot and the oldest busy one for a new
    /// datagram.
    fn scan(&mut self, src: &[u8; 16], dst: &[u8; 16], id: u32, now_ns: u64) -> Scan {
        let mut s = Scan {
            found: None,
            free: None,
            oldest: None,
        };
        let mut oldest_ns = u64::MAX;
        for c in 0..self.ctxs.len() {
            let ctx = &self.ctxs[c];
            if ctx.busy && now_ns.saturating_sub(ctx.start_ns) > self.timeout_ns {
                self.free(c);
                self.stats.timed_out += 1;
            }
            let ctx = &self.ctxs[c];
            if !ctx.busy {
                s.free.get_or_insert(c);
                continue;
            }
            if ctx.id == id && ctx.src == *src && ctx.dst == *dst {
                s.found = Some(c);
            }
            if ctx.start_ns < oldest_ns || s.oldest.is_none() {
                oldest_ns = ctx.start_ns;
                s.oldest = Some(c);
            }
        }
        s
    }

    /// Checks a fragment against its datagram in progress: `Ok(true)` to
    /// accept, `Ok(false)` for an exact duplicate.
    fn check(&self, c: usize, offset: usize, len: usize, more: bool) -> Result<bool, ReassError> {
        let ctx = &self.ctxs[c];
        let end = offset + len;
        if ctx.total != NO_TOTAL {
            if end > ctx.total || (!more && end != ctx.total) {
                return Err(ReassError::Malformed);
            }
        } else if !more && end < ctx.max_end {
            return Err(ReassError::Malformed);
        }
        let words = &self.bits[c * self.words..(c + 1) * self.words];
        if any_block(words, offset / 8, end.div_ceil(8)) {
            let kept = &self.pieces[c * MAX_PIECES..c * MAX_PIECES + ctx.pieces];
            // Offsets are 8-aligned and the only short piece is the last,
            // so blocks overlap exactly when bytes do.
            if kept.contains(&(offset as u16, len as u16)) {
                return Ok(false);
            }
            return Err(ReassError::Overlap);
        }
        if ctx.pieces == MAX_PIECES {
            return Err(ReassError::Malformed);
        }
        Ok(true)
    }

    fn free(&mut self, c: usize) {
        if self.ctxs[c].busy {
            self.ctxs[c] = IDLE;
            self.bits[c * self.words..(c + 1) * self.words].fill(0);
            self.in_use -= 1;
        }
    }

    /// Frees datagrams older than the timeout (counted in `timed_out`).
    pub fn expire(&mut self, now_ns: u64) {
        for c in 0..self.ctxs.len() {
            let ctx = &self.ctxs[c];
            if ctx.busy && now_ns.saturating_sub(ctx.start_ns) > self.timeout_ns {
                self.free(c);
                self.stats.timed_out += 1;
            }
        }
    }

    pub fn stats(&self) -> ReassStats {
        self.stats
    }

    /// Datagrams currently in progress.
    pub fn in_use(&self) -> usize {
        self.in_use
    }
}

/// Offset of the Fragment header in `pkt` (cut at its Payload Length):
/// after the fixed header and any Hop-by-Hop (first only) and Destination
/// Options headers, whose lengths are checked and whose options are not.
fn fragment_header_at(pkt: &[u8]) -> Result<usize, ReassError> {
    let mut next = pkt[6];
    let mut off = IPV6_LEN;
    for n in 0..=MAX_UNFRAGMENTABLE {
        match next {
            NH_FRAGMENT => return Ok(off),
            NH_HOP_BY_HOP if n == 0 => {}
            NH_DEST_OPTS if n < MAX_UNFRAGMENTABLE => {}
            _ => return Err(ReassError::Unsupported),
        }
        let h = pkt.get(off..off + 2).ok_or(ReassError::Malformed)?;
        next = h[0];
        off += (usize::from(h[1]) + 1) * 8;
    }
    Err(ReassError::Unsupported)
}

/// Mask of bits `lo..hi` (`hi <= 64`) of a word.
fn mask(lo: usize, hi: usize) -> u64 {
    let width = hi - lo;
    if width == 64 {
        !0
    } else {
        ((1u64 << width) - 1) << lo
    }
}

/// Whether any of blocks `from..to` is set.
fn any_block(words: &[u64], from: usize, to: usize) -> bool {
    let mut b = from;
    while b < to {
        let w = b / 64;
        let hi = (to - w * 64).min(64);
        if words[w] & mask(b % 64, hi) != 0 {
            return true;
        }
        b = w * 64 + hi;
    }
    false
}

/// Marks blocks `from..to` received.
fn set_blocks(words: &mut [u64], from: usize, to: usize) {
    let mut b = from;
    while b < to {
        let w = b / 64;
        let hi = (to - w * 64).min(64);
        words[w] |= mask(b % 64, hi);
        b = w * 64 + hi;
    }
}

/// Sizes for splitting an IPv6 packet of `payload_len` bytes of payload
/// (no extension headers) in two so that each fragment packet (40 + 8 +
/// data) fits `mtu`: the data length of the first fragment (a multiple of
/// 8, as large as fits, as Linux does); the rest goes in the second.
///
/// `None` if two fragments are not enough, if `mtu` is below the IPv6
/// minimum of 1280, or if no split is needed (the packet fits `mtu`
/// whole: fragmenting it would only cost a header).
pub fn split_for_mtu(payload_len: usize, mtu: usize) -> Option<usize> {
    if mtu < 1280 || payload_len > MAX_PAYLOAD || IPV6_LEN + payload_len <= mtu {
        return None;
    }
    let room = mtu - IPV6_LEN - FRAG_LEN;
    let first = room & !7;
    // The second (final) fragment need not be a multiple of 8.
    if payload_len - first > room {
        return None;
    }
    Some(first)
}

/// Writes a Fragment header (RFC 8200 4.5) at `buf[at..at + 8]`: next
/// header, reserved, offset in bytes (a multiple of 8, stored in 8-octet
/// units in the top 13 bits), the two reserved bits, the M flag, then the
/// identification.
///
/// # Panics
/// If `buf` is shorter than `at + 8` (the caller sizes its own buffer).
pub fn write_fragment_header(
    buf: &mut [u8],
    at: usize,
    next_header: u8,
    offset: usize,
    more: bool,
    id: u32,
) {
    debug_assert!(offset & 7 == 0 && offset <= 0xfff8, "bad fragment offset");
    let field = (offset as u16 & 0xfff8) | u16::from(more);
    let h = &mut buf[at..at + FRAG_LEN];
    h[0] = next_header;
    h[1] = 0;
    h[2..4].copy_from_slice(&field.to_be_bytes());
    h[4..8].copy_from_slice(&id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const MS: u64 = 1_000_000;

    fn reassembler() -> Reassembler {
        Reassembler::new(4, 1600, 2_000 * MS)
    }

    /// An unfragmented IPv6 packet (traffic class and flow label set so
    /// the header copy is visible) carrying `payload` as next header `nh`.
    fn packet(src: [u8; 16], dst: [u8; 16], nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x6a, 0xb1, 0x23, 0x45];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[nh, 57]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    /// A 1520-byte IPv4-looking payload.
    fn ipv4ish(len: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        v[0] = 0x45;
        v[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        v
    }

    /// Fragment `orig` (an unfragmented packet): bytes `off..off + len` of
    /// its payload, M set unless they reach the end.
    fn frag(orig: &[u8], id: u32, off: usize, len: usize) -> Vec<u8> {
        let total = orig.len() - IPV6_LEN;
        frag_m(orig, id, off, len, off + len < total)
    }

    fn frag_m(orig: &[u8], id: u32, off: usize, len: usize, more: bool) -> Vec<u8> {
        let mut p = orig[..IPV6_LEN].to_vec();
        p[4..6].copy_from_slice(&((FRAG_LEN + len) as u16).to_be_bytes());
        p[6] = NH_FRAGMENT;
        p.extend_from_slice(&[0; FRAG_LEN]);
        write_fragment_header(&mut p, IPV6_LEN, orig[6], off, more, id);
        p.extend_from_slice(&orig[IPV6_LEN + off..IPV6_LEN + off + len]);
        p
    }

    fn original() -> Vec<u8> {
        packet(SRC, DST, NH_IPIP, &ipv4ish(1520))
    }

    fn feed(r: &mut Reassembler, frags: &[Vec<u8>], now: u64) -> Option<Vec<u8>> {
        let mut out = vec![0u8; 2048];
        let mut done = None;
        for (i, f) in frags.iter().enumerate() {
            match r.insert(f, now, &mut out).unwrap() {
                Some(n) => {
                    assert_eq!(i, frags.len() - 1, "completed early");
                    done = Some(out[..n].to_vec());
                }
                None => assert!(i < frags.len() - 1, "last fragment did not complete"),
            }
        }
        done
    }

    #[test]
    fn two_fragments_in_order_byte_exact() {
        let orig = original();
        let mut r = reassembler();
        // Linux at MTU 1500: 1448 data bytes, then the remaining 72.
        let f = [frag(&orig, 7, 0, 1448), frag(&orig, 7, 1448, 72)];
        assert_eq!(f[0].len(), 1496);
        assert_eq!(feed(&mut r, &f, 0).unwrap(), orig);
        assert_eq!(r.in_use(), 0);
        let s = r.stats();
        assert_eq!((s.fragments, s.completed), (2, 1));
    }

    #[test]
    fn two_fragments_out_of_order_byte_exact() {
        let orig = original();
        let mut r = reassembler();
        let f = [frag(&orig, 7, 1448, 72), frag(&orig, 7, 0, 1448)];
        assert_eq!(feed(&mut r, &f, 0).unwrap(), orig);
        assert_eq!(r.in_use(), 0);
    }

    #[test]
    fn three_fragments_any_order() {
        let orig = original();
        let orders: [[usize; 3]; 6] = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let pieces = [(0, 512), (512, 1000), (1512, 8)];
        let mut r = reassembler();
        for (k, o) in orders.iter().enumerate() {
            let f: Vec<Vec<u8>> = o
                .iter()
                .map(|&i| frag(&orig, k as u32, pieces[i].0, pieces[i].1))
                .collect();
            assert_eq!(feed(&mut r, &f, 0).unwrap(), orig, "order {o:?}");
        }
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.stats().completed, 6);
    }

    #[test]
    fn exact_duplicate_ignored() {
        let orig = original();
        let mut r = reassembler();
        let mut out = [0u8; 2048];
        let a = frag(&orig, 1, 0, 1448);
        let b = frag(&orig, 1, 1448, 72);
        assert_eq!(r.insert(&a, 0, &mut out), Ok(None));
        assert_eq!(r.insert(&a, 1, &mut out), Ok(None));
        assert_eq!(r.stats().duplicates, 1);
        assert_eq!(r.insert(&b, 2, &mut out), Ok(Some(orig.len())));
        assert_eq!(&out[..orig.len()], &orig[..]);
        // A duplicate final fragment before completion is ignored too.
        assert_eq!(r.insert(&b, 3, &mut out), Ok(None));
        assert_eq!(r.insert(&b, 3, &mut out), Ok(None));
        assert_eq!(r.stats().duplicates, 2);
        assert_eq!(r.insert(&a, 4, &mut out), Ok(Some(orig.len())));
        assert_eq!(&out[..orig.len()], &orig[..]);
    }

    #[test]
    fn overlap_abandons_datagram() {
        let orig = original();
        let mut out = [0u8; 2048];
        // Overlapping tail, different start (RFC 5722).
        let mut r = reassembler();
        assert_eq!(r.insert(&frag(&orig, 1, 0, 1448), 0, &mut out), Ok(None));
        assert_eq!(
            r.insert(&frag(&orig, 1, 1440, 80), 0, &mut out),
            Err(ReassError::Overlap)
        );
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.stats().overlaps, 1);
        // The proper tail now starts a new datagram: nothing leaks out.
        assert_eq!(r.insert(&frag(&orig, 1, 1448, 72), 0, &mut out), Ok(None));
        assert_eq!(r.in_use(), 1);

        // Same offset, different length: not a duplicate.
        let mut r = reassembler();
        assert_eq!(r.insert(&frag(&orig, 2, 0, 64), 0, &mut out), Ok(None));
        assert_eq!(
            r.insert(&frag(&orig, 2, 0, 128), 0, &mut out),
            Err(ReassError::Overlap)
        );
        assert_eq!(r.in_use(), 0);

        // A fragment inside another one.
        let mut r = reassembler();
        assert_eq!(r.insert(&frag(&orig, 3, 8, 1000), 0, &mut out), Ok(None));
        assert_eq!(
            r.insert(&frag(&orig, 3, 512, 8), 0, &mut out),
            Err(ReassError::Overlap)
        );
        assert_eq!(r.in_use(), 0);
    }

    #[test]
    fn tiny_first_fragment_unsupported() {
        let orig = original();
        let mut r = reassembler();
        let mut out = [0u8; 2048];
        assert_eq!(
            r.insert(&frag(&orig, 1, 0, 16), 0, &mut out),
            Err(ReassError::Unsupported)
        );
        // Also as an atomic fragment.
        let short = packet(SRC, DST, NH_IPIP, &[0x45; 12]);
        assert_eq!(
            r.insert(&frag(&short, 2, 0, 12), 0, &mut out),
            Err(ReassError::Unsupported)
        );
        // Other upper layers are not held to it.
        let udp = packet(SRC, DST, 17, &[1; 64]);
        assert_eq!(r.insert(&frag(&udp, 3, 0, 8), 0, &mut out), Ok(None));
        assert_eq!(r.in_use(), 1);
    }

    #[test]
    fn non_multiple_of_8_middle_fragment_malformed() {
        let orig = original();
        let mut r = reassembler();
        let mut out = [0u8; 2048];
        assert_eq!(r.insert(&frag(&orig, 1, 0, 512), 0, &mut out), Ok(None));
        assert_eq!(
            r.insert(&frag(&orig, 1, 512, 100), 0, &mut out),
            Err(ReassError::Malformed)
        );
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.stats().malformed, 1);
    }

    #[test]
    fn fragment_past_the_end_malformed() {
        let orig = original();
        let mut out = [0u8; 2048];
        // Final fragment says the payload ends at 1000; a later one goes on.
        let mut r = reassembler();
        assert_eq!(
            r.insert(&frag_m(&orig, 1, 992, 8, false), 0, &mut out),
            Ok(None)
        );
        assert_eq!(
            r.insert(&frag(&orig, 1, 1000, 16), 0, &mut out),
            Err(ReassError::Malformed)
        );
        assert_eq!(r.in_use(), 0);
        // Data already past the end a late final fragment claims.
        let mut r = reassembler();
        assert_eq!(r.insert(&frag(&orig, 2, 1000, 16), 0, &mut out), Ok(None));
        assert_eq!(
            r.insert(&frag_m(&orig, 2, 96, 8, false), 0, &mut out),
            Err(ReassError::Malformed)
        );
        assert_eq!(r.in_use(), 0);
        // Two final fragments with different ends.
        let mut r = reassembler();
        assert_eq!(r.insert(&frag(&orig, 3, 1448, 72), 0, &mut out), Ok(None));
        assert_eq!(
            r.insert(&frag_m(&orig, 3, 1448, 64, false), 0, &mut out),
            Err(ReassError::Malformed)
        );
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.stats().malformed, 1);
    }

    #[test]
    fn datagram_exceeding_max_len_too_big() {
        let big = packet(SRC, DST, NH_IPIP, &ipv4ish(2000));
        let mut out = [0u8; 4096];
        let mut r = reassembler();
        assert_eq!(r.insert(&frag(&big, 1, 0, 1448), 0, &mut out), Ok(None));
        assert_eq!(
            r.insert(&frag(&big, 1, 1448, 552), 0, &mut out),
            Err(ReassError::TooBig)
        );
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.stats().too_big, 1);
        // Exactly max_len is fine.
        let edge = packet(SRC, DST, NH_IPIP, &ipv4ish(1560));
        let f = [frag(&edge, 2, 0, 1448), frag(&edge, 2, 1448, 112)];
        assert_eq!(feed(&mut r, &f, 0).unwrap(), edge);
        // An output buffer too small for the datagram.
        let orig = original();
        let mut small = [0u8; 1500];
        assert_eq!(r.insert(&frag(&orig, 3, 0, 1448), 0, &mut small), Ok(None));
        assert_eq!(
            r.insert(&frag(&orig, 3, 1448, 72), 0, &mut small),
            Err(ReassError::TooBig)
        );
        assert_eq!(r.in_use(), 0);
    }

    #[test]
    fn payload_length_mismatch_malformed() {
        let orig = original();
        let mut out = [0u8; 2048];
        let mut r = reassembler();
        let mut f = frag(&orig, 1, 0, 1448);
        f[5] = f[5].wrapping_add(8); // claims 8 more bytes than there are
        assert_eq!(r.insert(&f, 0, &mut out), Err(ReassError::Malformed));
        // Payload length shorter than the Fragment header.
        let mut g = frag(&orig, 1, 0, 1448);
        g[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(r.insert(&g, 0, &mut out), Err(ReassError::Malformed));
        // Shorter than a fixed header.
        assert_eq!(r.insert(&g[..39], 0, &mut out), Err(ReassError::Malformed));
        assert_eq!(r.in_use(), 0);
        // Trailing bytes (Ethernet padding) past the payload are ignored.
        let mut a = frag(&orig, 2, 0, 1448);
        a.extend_from_slice(&[0xee; 6]);
        let b = frag(&orig, 2, 1448, 72);
        assert_eq!(feed(&mut r, &[a, b], 0).unwrap(), orig);
        assert_eq!(r.stats().malformed, 3);
    }

    #[test]
    fn extension_header_before_fragment_unsupported() {
        let orig = original();
        let mut out = [0u8; 2048];
        let mut r = reassembler();
        // A Routing header (type 2, no segments left) then the Fragment
        // header: only options headers may come first.
        let f = frag(&orig, 1, 0, 1448);
        let mut p = f[..IPV6_LEN].to_vec();
        p[4..6].copy_from_slice(&((f.len() - IPV6_LEN + 8) as u16).to_be_bytes());
        p[6] = 43;
        p.extend_from_slice(&[NH_FRAGMENT, 0, 2, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&f[IPV6_LEN..]);
        assert_eq!(r.insert(&p, 0, &mut out), Err(ReassError::Unsupported));
        // Not a fragment at all.
        assert_eq!(r.insert(&orig, 0, &mut out), Err(ReassError::Unsupported));
        assert_eq!(r.in_use(), 0);
    }

    /// Issue 15 m5: a Linux AFTR's fragments carry the encapsulation
    /// limit in a Destination Options header before the Fragment header.
    #[test]
    fn m5_options_headers_before_the_fragment_header_are_left_out() {
        let orig = original();
        let mut out = [0u8; 2048];
        let mut r = reassembler();
        let with = |f: Vec<u8>, opts: &[u8], first: u8| {
            let mut p = f[..IPV6_LEN].to_vec();
            p[4..6].copy_from_slice(&((f.len() - IPV6_LEN + opts.len()) as u16).to_be_bytes());
            p[6] = first;
            p.extend_from_slice(opts);
            p.extend_from_slice(&f[IPV6_LEN..]);
            p
        };
        // Hop-by-Hop (PadN), then Destination Options (limit 4, PadN).
        let opts = [
            NH_DEST_OPTS,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
            NH_FRAGMENT,
            0,
            4,
            1,
            4,
            1,
            1,
            0,
        ];
        let rest = orig.len() - IPV6_LEN - 1448;
        let f1 = with(frag(&orig, 5, 0, 1448), &opts, NH_HOP_BY_HOP);
        let f2 = with(frag(&orig, 5, 1448, rest), &opts[8..], NH_DEST_OPTS);
        assert_eq!(r.insert(&f2, 0, &mut out), Ok(None));
        let n = r.insert(&f1, 0, &mut out).unwrap().expect("complete");
        assert_eq!(&out[..n], &orig[..]);
        // Hop-by-Hop not first, a header running past the packet, and a
        // chain of options headers longer than we walk.
        let hbh_second = [
            NH_HOP_BY_HOP,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
            NH_FRAGMENT,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
        ];
        let f = with(frag(&orig, 6, 0, 1448), &hbh_second, NH_DEST_OPTS);
        assert_eq!(r.insert(&f, 0, &mut out), Err(ReassError::Unsupported));
        let mut f = with(
            frag(&orig, 7, 0, 8),
            &[NH_FRAGMENT, 0, 1, 4, 0, 0, 0, 0],
            NH_DEST_OPTS,
        );
        f[IPV6_LEN + 1] = 200;
        assert_eq!(r.insert(&f, 0, &mut out), Err(ReassError::Malformed));
        let chain: Vec<u8> = (0..6)
            .flat_map(|_| [NH_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0])
            .collect();
        let f = with(frag(&orig, 8, 0, 1448), &chain, NH_DEST_OPTS);
        assert_eq!(r.insert(&f, 0, &mut out), Err(ReassError::Unsupported));
        assert_eq!(r.in_use(), 0);
    }

    /// Issue 15 m2: RFC 3168 5.3, the datagram is CE if any fragment was.
    #[test]
    fn m2_datagram_is_ce_if_any_fragment_was() {
        let mut orig = original();
        orig[1] = 0x21; // traffic class 0xa2: ECT(0)
        let rest = orig.len() - IPV6_LEN - 1448;
        for ce_in in [0, 1] {
            let mut f = [frag(&orig, 9, 0, 1448), frag(&orig, 9, 1448, rest)];
            f[ce_in][1] |= CE;
            let whole = feed(&mut reassembler(), &f, 0).expect("complete");
            assert_eq!(whole[1], 0x31, "CE from fragment {ce_in}");
            assert_eq!(&whole[2..], &orig[2..]);
        }
        let f = [frag(&orig, 9, 0, 1448), frag(&orig, 9, 1448, rest)];
        assert_eq!(
            feed(&mut reassembler(), &f, 0).unwrap(),
            orig,
            "no CE, none added"
        );
    }

    #[test]
    fn atomic_fragment_returned_at_once() {
        let small = packet(SRC, DST, NH_IPIP, &ipv4ish(200));
        let mut out = [0u8; 2048];
        let mut r = reassembler();
        // A datagram in progress with the same key is left alone (RFC 6946).
        let orig = original();
        assert_eq!(r.insert(&frag(&orig, 9, 0, 1448), 0, &mut out), Ok(None));
        let f = frag(&small, 9, 0, 200);
        assert_eq!(&f[IPV6_LEN + 2..IPV6_LEN + 4], &[0, 0]);
        assert_eq!(r.insert(&f, 0, &mut out), Ok(Some(small.len())));
        assert_eq!(&out[..small.len()], &small[..]);
        assert_eq!(r.in_use(), 1);
        assert_eq!(
            r.insert(&frag(&orig, 9, 1448, 72), 0, &mut out),
            Ok(Some(orig.len()))
        );
        assert_eq!(&out[..orig.len()], &orig[..]);
        assert_eq!(r.stats().completed, 2);
    }

    #[test]
    fn timeout_frees_and_counts() {
        let orig = original();
        let mut out = [0u8; 2048];
        let mut r = reassembler();
        assert_eq!(r.insert(&frag(&orig, 1, 0, 1448), 0, &mut out), Ok(None));
        r.expire(2_000 * MS);
        assert_eq!(r.in_use(), 1, "exactly the timeout is still in time");
        r.expire(2_000 * MS + 1);
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.stats().timed_out, 1);
        // The late tail starts afresh and does not complete.
        assert_eq!(
            r.insert(&frag(&orig, 1, 1448, 72), 3_000 * MS, &mut out),
            Ok(None)
        );
        // Lazy expiry on insert: a new fragment much later frees it.
        assert_eq!(
            r.insert(&frag(&orig, 2, 0, 1448), 9_000 * MS, &mut out),
            Ok(None)
        );
        assert_eq!(r.in_use(), 1);
        assert_eq!(r.stats().timed_out, 2);
        // The clock going backwards does not expire anything.
        r.expire(0);
        assert_eq!(r.in_use(), 1);
    }

    #[test]
    fn exhaustion_evicts_oldest() {
        let orig = original();
        let mut out = [0u8; 2048];
        let mut r = reassembler();
        for id in 0..4u32 {
            let now = u64::from(id) * MS;
            assert_eq!(r.insert(&frag(&orig, id, 0, 1448), now, &mut out), Ok(None));
        }
        assert_eq!(r.in_use(), 4);
        assert_eq!(
            r.insert(&frag(&orig, 4, 0, 1448), 10 * MS, &mut out),
            Ok(None)
        );
        assert_eq!(r.in_use(), 4);
        assert_eq!(r.stats().evicted, 1);
        // id 0 (the oldest) is gone: its tail starts a new datagram
        // (evicting id 1); ids 2..=4 still complete.
        assert_eq!(
            r.insert(&frag(&orig, 0, 1448, 72), 11 * MS, &mut out),
            Ok(None)
        );
        assert_eq!(r.stats().evicted, 2);
        for id in 2..5u32 {
            let tail = frag(&orig, id, 1448, 72);
            assert_eq!(r.insert(&tail, 12 * MS, &mut out), Ok(Some(orig.len())));
            assert_eq!(&out[..orig.len()], &orig[..]);
        }
        assert_eq!(r.in_use(), 1);
    }

    #[test]
    fn different_ids_and_sources_do_not_mix() {
        let mut other_src = SRC;
        other_src[15] = 9;
        let mut other_dst = DST;
        other_dst[15] = 9;
        let a = original();
        let b = packet(
            other_src,
            DST,
            NH_IPIP,
            &ipv4ish(1520).iter().map(|x| !x).collect::<Vec<_>>(),
        );
        let c = packet(SRC, other_dst, NH_IPIP, &vec![0x45; 1520]);
        let mut out = [0u8; 2048];
        let mut r = Reassembler::new(8, 1600, 2_000 * MS);
        // Heads of four datagrams sharing parts of the key.
        for f in [
            frag(&a, 1, 0, 1448),
            frag(&a, 2, 0, 1448),
            frag(&b, 1, 0, 1448),
            frag(&c, 1, 0, 1448),
        ] {
            assert_eq!(r.insert(&f, 0, &mut out), Ok(None));
        }
        assert_eq!(r.in_use(), 4);
        for (p, id) in [(&c, 1), (&b, 1), (&a, 2), (&a, 1)] {
            assert_eq!(
                r.insert(&frag(p, id, 1448, 72), 0, &mut out),
                Ok(Some(p.len()))
            );
            assert_eq!(&out[..p.len()], &p[..]);
        }
        assert_eq!(r.in_use(), 0);
        assert_eq!(r.stats().overlaps, 0);
    }

    #[test]
    fn too_many_pieces_malformed() {
        // UDP inside, so 8-byte first pieces pass the RFC 7112 check.
        let orig = packet(SRC, DST, 17, &ipv4ish(1520));
        let mut out = [0u8; 2048];
        let mut r = reassembler();
        for k in 0..MAX_PIECES {
            assert_eq!(r.insert(&frag(&orig, 1, k * 8, 8), 0, &mut out), Ok(None));
        }
        assert_eq!(
            r.insert(&frag(&orig, 1, MAX_PIECES * 8, 8), 0, &mut out),
            Err(ReassError::Malformed)
        );
        assert_eq!(r.in_use(), 0);
        // 32 pieces is still fine.
        let mut r = reassembler();
        let mut done = None;
        for k in 0..MAX_PIECES {
            let len = if k == MAX_PIECES - 1 {
                1520 - 31 * 48
            } else {
                48
            };
            done = r.insert(&frag(&orig, 2, k * 48, len), 0, &mut out).unwrap();
        }
        assert_eq!(done, Some(orig.len()));
        assert_eq!(&out[..orig.len()], &orig[..]);
    }

    #[test]
    fn split_then_reassemble_round_trip() {
        // What the B4's fragmenting node does for a 1540-byte packet.
        let orig = packet(SRC, DST, NH_IPIP, &ipv4ish(1500));
        let first = split_for_mtu(1500, 1500).unwrap();
        let f = [
            frag(&orig, 5, 0, first),
            frag(&orig, 5, first, 1500 - first),
        ];
        assert!(f.iter().all(|p| p.len() <= 1500));
        let mut r = reassembler();
        assert_eq!(feed(&mut r, &f, 0).unwrap(), orig);
    }

    #[test]
    fn split_for_mtu_sizes() {
        assert_eq!(split_for_mtu(1500, 1500), Some(1448));
        assert_eq!(split_for_mtu(1520, 1500), Some(1448));
        // Largest that fits in two: 1448 + 1452.
        assert_eq!(split_for_mtu(2900, 1500), Some(1448));
        assert_eq!(split_for_mtu(2901, 1500), None);
        // Minimum MTU: 1232 of data in the first.
        assert_eq!(split_for_mtu(1300, 1280), Some(1232));
        assert_eq!(split_for_mtu(2000, 1279), None);
        // Fits whole: no split.
        assert_eq!(split_for_mtu(1460, 1500), None);
        assert_eq!(split_for_mtu(1461, 1500), Some(1448));
        assert_eq!(split_for_mtu(70_000, 65_000), None);
    }

    #[test]
    fn write_fragment_header_layout() {
        let mut b = [0xffu8; 12];
        write_fragment_header(&mut b, 2, 4, 1448, true, 0x1234_5678);
        // Next Header, Reserved, Offset (13 bits, 8-octet units) | Res(2)
        // | M, Identification (RFC 8200 4.5).
        assert_eq!(&b[..2], &[0xff, 0xff]);
        assert_eq!(b[2], 4);
        assert_eq!(b[3], 0);
        assert_eq!(u16::from_be_bytes([b[4], b[5]]) >> 3, 1448 / 8);
        assert_eq!(&b[4..6], &[0x05, 0xa9]);
        assert_eq!(&b[6..10], &[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(&b[10..], &[0xff, 0xff]);
        write_fragment_header(&mut b, 0, 17, 65528, false, 1);
        assert_eq!(&b[..8], &[17, 0, 0xff, 0xf8, 0, 0, 0, 1]);
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Fragments of consistent datagrams (each key always carries the
    /// same bytes and length) in random pieces, orders, overlaps,
    /// duplicates and losses: whatever completes must be exactly the
    /// datagram.
    #[test]
    fn consistent_fuzz_completes_only_exact_datagrams() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let keys: Vec<Vec<u8>> = (0..12u8)
            .map(|k| {
                let len = 20 + (usize::from(k) * 131) % 1540;
                let body: Vec<u8> = (0..len).map(|i| (i as u8) ^ k.wrapping_mul(37)).collect();
                let mut src = SRC;
                src[15] = k % 3;
                packet(src, DST, NH_IPIP, &body)
            })
            .collect();
        let mut r = Reassembler::new(6, 1600, 50 * MS);
        let mut out = vec![0u8; 1600];
        let mut now = 0;
        let mut completed = 0;
        for _ in 0..100_000 {
            now += rng.below(200_000) as u64;
            let k = rng.below(keys.len());
            let orig = &keys[k];
            let id = k as u32 % 4;
            let total = orig.len() - IPV6_LEN;
            let off = if rng.below(4) == 0 {
                0
            } else {
                rng.below(total.div_ceil(8)) * 8
            };
            let want = 8 * (1 + rng.below(64));
            let f = if off + want >= total {
                frag(orig, id, off, total - off)
            } else {
                frag(orig, id, off, want)
            };
            match r.insert(&f, now, &mut out) {
                Ok(Some(n)) => {
                    assert_eq!(&out[..n], &orig[..]);
                    completed += 1;
                }
                Ok(None) | Err(ReassError::Overlap | ReassError::Malformed) => {}
                Err(ReassError::Unsupported) => {
                    assert!(off == 0 && f.len() - IPV6_LEN - FRAG_LEN < IPV4_MIN_LEN)
                }
                Err(e) => panic!("{e:?}"),
            }
            assert!(r.in_use() <= 6);
        }
        assert!(completed > 1000, "only {completed} completed");
        assert_eq!(r.stats().completed, completed);
    }

    /// Random and mutated packets: never a panic, never more contexts
    /// than configured, every output a well-formed packet within bounds.
    #[test]
    fn hostile_fuzz_never_panics() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let orig = original();
        for (contexts, max_len) in [(4, 1600), (1, 48), (3, 40), (2, 200), (5, 70_000)] {
            let mut r = Reassembler::new(contexts, max_len, 10 * MS);
            // Mostly room for any datagram, sometimes too little.
            let room = if contexts == 2 {
                1 + rng.below(1700)
            } else {
                2048
            };
            let mut out = vec![0u8; room];
            let mut now = 0u64;
            for _ in 0..40_000 {
                now = now.wrapping_add(rng.next() % (MS / 4)).min(u64::MAX / 2);
                if rng.below(64) == 0 {
                    now = now.saturating_sub(rng.next() % (20 * MS));
                }
                // A plausible fragment (aligned, small pieces, shared
                // keys) that the mutations below then corrupt.
                let off = rng.below(190) * 8;
                let len = if rng.below(4) == 0 {
                    1520 - off
                } else {
                    (8 * (1 + rng.below(24))).min(1520 - off)
                };
                let mut p = frag(&orig, rng.below(3) as u32, off, len);
                match rng.below(10) {
                    0 => {
                        // Random bytes anywhere, the headers included.
                        for _ in 0..1 + rng.below(6) {
                            let i = rng.below(p.len());
                            p[i] = rng.next() as u8;
                        }
                    }
                    1 => p.truncate(rng.below(p.len() + 1)),
                    2 => {
                        let field = rng.next() as u16;
                        p[IPV6_LEN + 2..IPV6_LEN + 4].copy_from_slice(&field.to_be_bytes());
                    }
                    3 => {
                        let plen = rng.next() as u16;
                        p[4..6].copy_from_slice(&plen.to_be_bytes());
                    }
                    4 => {
                        p = (0..rng.below(120)).map(|_| rng.next() as u8).collect();
                        if p.len() > 6 && rng.below(2) == 0 {
                            p[0] = 0x60;
                            p[6] = NH_FRAGMENT;
                        }
                    }
                    _ => {}
                }
                if let Ok(Some(n)) = r.insert(&p, now, &mut out) {
                    assert!(n <= out.len() && n <= max_len && n >= IPV6_LEN);
                    assert_eq!(
                        usize::from(u16::from_be_bytes([out[4], out[5]])),
                        n - IPV6_LEN
                    );
                }
                if rng.below(100) == 0 {
                    r.expire(now);
                }
                assert!(r.in_use() <= contexts.max(1));
            }
            let s = r.stats();
            assert_eq!(s.fragments, 40_000);
        }
    }
}
