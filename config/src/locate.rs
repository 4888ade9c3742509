//! Finds the line:column of a dotted key path (`dataplane.cores[1]`) in YAML
//! text, for refusals that serde cannot attach a position to by itself
//! (checks across fields, done after parsing).
//!
//! Rather than scanning the text by hand, this walks the document again with
//! serde_yaml_ng and makes the deserialization fail on purpose at the wanted
//! node: the parser then reports that node's exact position. This handles
//! block and flow style, quoting, comments and anchors the same way the real
//! parse did.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What to point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The key of the last path segment (`lan:` for path `lan`).
    Key,
    /// The value of the last path segment.
    Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into segments; `None` if it is not such a path.
fn parse_path(path: &str) -> Option<Vec<Seg<'_>>> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if key.is_empty() || key.contains(']') {
            return None;
        }
        segs.push(Seg::Key(key));
        while !rest.is_empty() {
            let (index, after) = rest.strip_prefix('[')?.split_once(']')?;
            segs.push(Seg::Index(index.parse().ok()?));
            rest = after;
        }
    }
    Some(segs)
}

/// The 1-based (line, column) of `path` in `text`, or `None` if the path is
/// not written in the text (e.g. a default value).
pub(crate) fn locate(text: &str, path: &str, target: Target) -> Option<(usize, usize)> {
    let segs = parse_path(path)?;
    let walk = Walk {
        segs: &segs,
        target,
    };
    match walk.deserialize(serde_yaml::Deserializer::from_str(text)) {
        Ok(()) => None,
        Err(found) => found.location().map(|l| (l.line(), l.column())),
    }
}

/// The error used to stop at the node; only its position matters.
fn found<E: de::Error>() -> E {
    E::custom("found")
}

/// Walks down `segs`; returns `Ok(())` when the path does not exist.
struct Walk<'a> {
    segs: &'a [Seg<'a>],
    target: Target,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.segs.is_empty() {
            // At the node: any error raised while visiting it carries its
            // position (for a mapping or sequence, where it starts).
            deserializer.deserialize_any(Stop)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Seg::Key(want) = self.segs[0] else {
            return drain_map(map);
        };
        let last = self.segs.len() == 1;
        let stop_at_key = last && self.target == Target::Key;
        while let Some(matched) = map.next_key_seed(KeySeed { want, stop_at_key })? {
            // Keep going after a match that found nothing: serde_yaml_ng
            // refuses a mapping visit that leaves entries unread.
            if matched {
                map.next_value_seed(Walk {
                    segs: &self.segs[1..],
                    target: self.target,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Seg::Index(want) = self.segs[0] else {
            return drain_seq(seq);
        };
        for index in 0.. {
            let more = if index == want {
                seq.next_element_seed(Walk {
                    segs: &self.segs[1..],
                    target: self.target,
                })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(drop)
            };
            if more.is_none() {
                break;
            }
        }
        Ok(())
    }

    // Scalars cannot contain the rest of the path.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads a mapping key; says whether it is the wanted one, or fails at it
/// when the key itself is the target.
struct KeySeed<'a> {
    want: &'a str,
    stop_at_key: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        match key == self.want {
            true if self.stop_at_key => Err(found()),
            matched => Ok(matched),
        }
    }
}

/// Fails on whatever node it is asked to visit.
struct Stop;

impl Visitor<'_> for Stop {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# comment
wan:
  interface: enp1s0   # trailing comment
  mtu: 1500
lan: {interface: \"enp2s0\", ipv4: 192.168.2.1/24}
dataplane:
  cores:
    - 0
    - 1
  other: [5, 6, {x: 7}]
";

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path("dataplane.cores[1]"),
            Some(vec![
                Seg::Key("dataplane"),
                Seg::Key("cores"),
                Seg::Index(1)
            ])
        );
        assert_eq!(parse_path("a[0][2]").map(|s| s.len()), Some(3));
        for bad in ["", "a..b", "a[", "a[x]", "a]"] {
            assert_eq!(parse_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn finds_block_style_values_and_keys() {
        assert_eq!(locate(DOC, "wan", Target::Key), Some((2, 1)));
        assert_eq!(locate(DOC, "wan", Target::Value), Some((3, 3)));
        assert_eq!(locate(DOC, "wan.interface", Target::Key), Some((3, 3)));
        assert_eq!(locate(DOC, "wan.interface", Target::Value), Some((3, 14)));
        assert_eq!(locate(DOC, "wan.mtu", Target::Value), Some((4, 8)));
    }

    #[test]
    fn finds_flow_style_and_quoted_values() {
        assert_eq!(locate(DOC, "lan.interface", Target::Value), Some((5, 18)));
        assert_eq!(locate(DOC, "lan.ipv4", Target::Key), Some((5, 28)));
        assert_eq!(locate(DOC, "lan.ipv4", Target::Value), Some((5, 34)));
    }

    #[test]
    fn finds_sequence_elements() {
        assert_eq!(locate(DOC, "dataplane.cores", Target::Value), Some((8, 5)));
        assert_eq!(
            locate(DOC, "dataplane.cores[0]", Target::Value),
            Some((8, 7))
        );
        assert_eq!(
            locate(DOC, "dataplane.cores[1]", Target::Value),
            Some((9, 7))
        );
        assert_eq!(
            locate(DOC, "dataplane.other[1]", Target::Value),
            Some((10, 14))
        );
        assert_eq!(
            locate(DOC, "dataplane.other[2].x", Target::Value),
            Some((10, 21))
        );
    }

    #[test]
    fn absent_paths_are_none() {
        assert_eq!(locate(DOC, "control", Target::Key), None);
        assert_eq!(locate(DOC, "wan.ipv6.address", Target::Value), None);
        assert_eq!(locate(DOC, "wan.mtu.x", Target::Value), None);
        assert_eq!(locate(DOC, "dataplane.cores[2]", Target::Value), None);
        assert_eq!(locate(DOC, "dataplane[0]", Target::Value), None);
        assert_eq!(locate("", "wan", Target::Key), None);
    }
}
