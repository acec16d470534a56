//! Timestamps: stored as microseconds since the Unix epoch (sortable integers in both
//! databases), sent as RFC 3339.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current instant.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self((nanos / 1_000) as i64)
    }

    /// From stored microseconds.
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Stored microseconds.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// RFC 3339 with microseconds, e.g. `2026-11-25T18:01:55.123456Z`.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let t = OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)?;
        Ok(Self((t.unix_timestamp_nanos() / 1_000) as i64))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

/// A calendar period of spending budgets, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// From midnight to midnight.
    Day,
    /// From the first of the month to the first of the next.
    Month,
}

impl Timestamp {
    /// The period holding this instant: its start (inclusive) and end (exclusive).
    pub fn period(self, period: Period) -> (Timestamp, Timestamp) {
        let micros = |t: OffsetDateTime| Timestamp((t.unix_timestamp_nanos() / 1_000) as i64);
        let Ok(now) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000) else {
            return (self, self);
        };
        let midnight = now.replace_time(time::Time::MIDNIGHT);
        match period {
            Period::Day => (micros(midnight), micros(midnight + time::Duration::DAY)),
            Period::Month => {
                let first = midnight.replace_day(1).unwrap_or(midnight);
                let (year, month) = match first.month() {
                    time::Month::December => (first.year() + 1, time::Month::January),
                    m => (first.year(), m.next()),
                };
                let next = first
                    .replace_year(year)
                    .and_then(|t| t.replace_month(month))
                    .unwrap_or(first);
                (micros(first), micros(next))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339() {
        let t = Timestamp::from_micros(1_764_093_715_123_456);
        let json = serde_json::to_string(&t).unwrap_or_default();
        assert_eq!(json, "\"2025-11-25T18:01:55.123456Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap_or(Timestamp(0));
        assert_eq!(back, t);
    }

    #[test]
    fn periods_are_utc_days_and_calendar_months() {
        let t: Timestamp = serde_json::from_str("\"2026-12-31T23:59:59Z\"").unwrap_or(Timestamp(0));
        let (start, end) = t.period(Period::Day);
        assert_eq!(start.to_rfc3339(), "2026-12-31T00:00:00Z");
        assert_eq!(end.to_rfc3339(), "2027-01-01T00:00:00Z");
        let (start, end) = t.period(Period::Month);
        assert_eq!(start.to_rfc3339(), "2026-12-01T00:00:00Z");
        assert_eq!(end.to_rfc3339(), "2027-01-01T00:00:00Z");
    }
}
