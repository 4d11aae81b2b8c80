//! JSON that means one thing: a body with the same key twice in an object is refused. Parsers
//! disagree on which of the two wins (serde_json keeps the last, others the first), so a signed
//! body with duplicates could be read one way when verified and another way downstream.
use std::{collections::HashSet, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `Ok` when `bytes` is one JSON value whose objects have distinct keys at every depth.
pub fn reject_duplicate_keys(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Distinct
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())
}

/// Walks a value, refusing duplicate keys; keeps nothing.
struct Distinct;

impl<'de> DeserializeSeed<'de> for Distinct {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Distinct {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Distinct)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "duplicate key {key:?}: a body must say each thing once"
                )));
            }
            map.next_value_seed(Distinct)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::reject_duplicate_keys;

    #[test]
    fn duplicates_are_refused_at_every_depth() {
        assert!(reject_duplicate_keys(br#"{"a":1,"b":{"c":[{"d":1,"e":2}]}}"#).is_ok());
        for body in [
            r#"{"status":"in_transit","status":"delivered"}"#,
            r#"{"details":{"x":1,"x":2}}"#,
            r#"[{"a":1},{"b":1,"b":2}]"#,
        ] {
            let e = reject_duplicate_keys(body.as_bytes()).unwrap_err();
            assert!(e.contains("duplicate key"), "{body}: {e}");
        }
        assert!(
            reject_duplicate_keys(br#"{"a":1} {"b":2}"#).is_err(),
            "one value only"
        );
        assert!(reject_duplicate_keys(b"{").is_err());
    }
}
