//! The embedded DNS server's message handling: just enough of RFC 1035 to answer `A`
//! queries for container names and to recognise what must be forwarded upstream.

use std::net::Ipv4Addr;

/// A parsed query: its id, the (lowercased, dot-joined) name, type and the raw question.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: u16,
    pub flags: u16,
    pub name: String,
    pub qtype: u16,
    /// Bytes of the question section, echoed in the answer.
    question: Vec<u8>,
}

pub const TYPE_A: u16 = 1;
pub const RCODE_SERVFAIL: u16 = 2;
pub const RCODE_NXDOMAIN: u16 = 3;

/// Parses a standard query with exactly one question; anything else is `None`.
pub fn parse_query(msg: &[u8]) -> Option<Query> {
    if msg.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    // QR must be 0 (a query) and opcode 0 (standard query).
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qdcount != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        // Compression pointers cannot appear in the first question.
        if len > 63 {
            return None;
        }
        let label = msg.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    msg.get(pos + 2..pos + 4)?;
    Some(Query {
        id,
        flags,
        name: labels.join("."),
        qtype,
        question: msg[12..pos + 4].to_vec(),
    })
}

/// An answer to `q`: the given addresses as `A` records (TTL 600), or an empty answer with
/// `rcode` (0 for "name exists, no record of this type").
pub fn answer(q: &Query, addrs: &[Ipv4Addr], rcode: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + q.question.len() + addrs.len() * 16);
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR=1, opcode 0, AA=1, RD copied, RA=1.
    let flags = 0x8000 | 0x0400 | (q.flags & 0x0100) | 0x0080 | (rcode & 0xf);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&q.question);
    for ip in addrs {
        // Name: a pointer to the question's name at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&600u32.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    #[test]
    fn parses_a_query() {
        let q = parse_query(&query("Web.AppNet", TYPE_A)).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.name, "web.appnet");
        assert_eq!(q.qtype, TYPE_A);
    }

    #[test]
    fn rejects_garbage_and_responses() {
        assert!(parse_query(&[1, 2, 3]).is_none());
        let mut resp = query("a", TYPE_A);
        resp[2] |= 0x80;
        assert!(parse_query(&resp).is_none());
        let mut trunc = query("abc", TYPE_A);
        trunc.truncate(15);
        assert!(parse_query(&trunc).is_none());
    }

    #[test]
    fn builds_answers() {
        let raw = query("b", TYPE_A);
        let q = parse_query(&raw).unwrap();
        let a = answer(&q, &["10.1.2.3".parse().unwrap()], 0);
        assert_eq!(&a[0..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80, "QR set");
        assert_eq!(a[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1, "one answer");
        assert_eq!(&a[12..raw.len()], &raw[12..], "question echoed");
        assert_eq!(&a[a.len() - 4..], &[10, 1, 2, 3]);
        let nx = answer(&q, &[], RCODE_NXDOMAIN);
        assert_eq!(nx[3] & 0x0f, 3);
        assert_eq!(nx.len(), raw.len());
    }
}
