//! Reading JSON written by serde_json where non-finite numbers became `null`.
//!
//! serde_json writes NaN and infinities as `null` and refuses `null` for an `f64`
//! when reading back; results hold NaN legitimately (e.g. the R-hat of the fraction
//! of a one-subtype model). [`from_str`] reads such files: a `null` where a number
//! is expected becomes NaN, and `null` for an `Option` is still `None`.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::Value;

/// Parses `text` as `T`, reading `null` numbers as NaN.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    from_value(value)
}

/// [`from_str`] of already parsed JSON.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(NanNull(value))
}

struct NanNull(Value);

impl<'de> de::Deserializer<'de> for NanNull {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            // serde's own sequence and map access, with every element and value
            // read as NanNull in turn.
            Value::Array(items) => {
                visitor.visit_seq(SeqDeserializer::new(items.into_iter().map(NanNull)))
            }
            Value::Object(map) => visitor.visit_map(MapDeserializer::new(
                map.into_iter().map(|(key, value)| (key, NanNull(value))),
            )),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_f64(f64::NAN),
            other => other.deserialize_f64(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_f32(f32::NAN),
            other => other.deserialize_f32(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(NanNull(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for NanNull {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct T {
        a: Vec<f64>,
        b: Option<f64>,
        c: u32,
        d: String,
    }

    #[test]
    fn null_numbers_are_nan() {
        let t: T = super::from_str(r#"{"a":[1.5,null],"b":null,"c":3,"d":"x","e":null}"#).unwrap();
        assert_eq!(t.a[0], 1.5);
        assert!(t.a[1].is_nan());
        assert_eq!(t.b, None);
        assert_eq!((t.c, t.d.as_str()), (3, "x"));
    }
}
