//! The forms a setting may be written in, shared by every section: a duration (`"30s"`,
//! `"1m 30s"`, or a number of seconds, with `humantime`) and a list that is an array in a file
//! or a comma-separated environment variable (`CELERIAC__WORKER__QUEUES=emails,reports`).
//! A value that does not fit is refused with the setting's name (the loader adds it).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, IntoDeserializer, SeqAccess, Visitor};

/// A duration: a number of seconds (`30`, `"30"`, `0.5`) or a human form (`"30s"`,
/// `"1m 30s"`, `"500ms"`, `"1day"`). Use as `#[serde(deserialize_with = "duration")]`.
pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

const DURATION_FORM: &str = "a duration such as \"30s\", \"5m\" or \"1h 30m\", or a number of seconds";

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(DURATION_FORM)
    }

    fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(secs))
    }

    fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Duration, E> {
        u64::try_from(secs)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("{secs} is negative; expected {DURATION_FORM}")))
    }

    fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Duration, E> {
        Duration::try_from_secs_f64(secs).map_err(|_| E::custom(format!("{secs} is not {DURATION_FORM}")))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        let text = text.trim();
        if let Ok(secs) = text.parse::<u64>() {
            return self.visit_u64(secs);
        }
        if let Ok(secs) = text.parse::<f64>() {
            return self.visit_f64(secs);
        }
        humantime::parse_duration(text).map_err(|e| E::custom(format!("{text:?} is not {DURATION_FORM} ({e})")))
    }
}

/// A list: an array, or one string of comma-separated items (spaces around an item and empty
/// items are dropped). Use as `#[serde(deserialize_with = "comma_list")]`.
pub fn comma_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_any(ListVisitor(PhantomData))
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list, or comma-separated items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<T>, E> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| T::deserialize(item.into_deserializer()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Form {
        #[serde(deserialize_with = "duration")]
        wait: Duration,
        #[serde(deserialize_with = "comma_list", default)]
        names: Vec<String>,
    }

    fn form(json: &str) -> Result<Form, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn durations_are_seconds_or_human_forms() {
        for (text, secs) in [
            ("30", 30.0),
            ("\"30\"", 30.0),
            ("0.5", 0.5),
            ("\"30s\"", 30.0),
            ("\"1m 30s\"", 90.0),
            ("\"500ms\"", 0.5),
            ("\"1day\"", 86_400.0),
        ] {
            let parsed = form(&format!("{{\"wait\": {text}}}")).unwrap();
            assert_eq!(parsed.wait.as_secs_f64(), secs, "{text}");
        }
        for bad in ["\"soon\"", "-1", "\"30 parsecs\"", "true"] {
            let e = form(&format!("{{\"wait\": {bad}}}")).unwrap_err().to_string();
            assert!(e.contains("a duration such as"), "{bad}: {e}");
        }
    }

    #[test]
    fn lists_are_arrays_or_comma_separated() {
        assert_eq!(form(r#"{"wait": 1, "names": ["a", "b"]}"#).unwrap().names, ["a", "b"]);
        assert_eq!(form(r#"{"wait": 1, "names": " a, ,b "}"#).unwrap().names, ["a", "b"]);
        assert!(form(r#"{"wait": 1, "names": ""}"#).unwrap().names.is_empty());
    }
}
