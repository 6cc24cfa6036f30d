//! Timestamps: always UTC, always RFC 3339 with milliseconds and a `Z`.
//!
//! ClouDO wrote Rome local time with a literal `Z` (its defect §9.2-12); every time in this
//! engine is a `chrono::DateTime<Utc>` and is formatted only here.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// The time type used across the engine.
pub type Timestamp = DateTime<Utc>;

/// Now, in UTC, to the millisecond (the precision every adapter stores).
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(3)
}

/// `2026-11-21T22:33:15.123Z`.
pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses what [`rfc3339`] wrote (any RFC 3339 offset is accepted and normalised to UTC).
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// ClouDO's log partition key, `YYYYMMDD` (UTC here; ClouDO used Rome time).
pub fn partition_key(t: Timestamp) -> String {
    t.format("%Y%m%d").to_string()
}

/// Serde helpers for `Timestamp` fields written as RFC 3339 with milliseconds.
pub mod serde_rfc3339 {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_rfc3339(&s).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 time"))
    }

    /// The same for `Option<Timestamp>`.
    pub mod option {
        use super::super::Timestamp;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::rfc3339(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            match s {
                None => Ok(None),
                Some(s) => super::super::parse_rfc3339(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 time")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_millis_and_z() {
        let t = parse_rfc3339("2026-11-21T23:30:00.5+01:00").expect("valid time");
        assert_eq!(rfc3339(t), "2026-11-21T22:30:00.500Z");
        assert_eq!(partition_key(t), "20261121");
    }
}
