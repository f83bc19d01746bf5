//! Times as the dashboard prints them.
//!
//! Written out with `Datelike`/`Timelike` rather than chrono's `format`,
//! whose strftime interpreter would ship to every browser for these four
//! fixed layouts (about 15 KB of wasm). The tests hold each one to chrono's
//! own output.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// `14:03:07`, like `%H:%M:%S`.
pub fn time_of_day(at: &DateTime<Utc>) -> String {
    format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
}

/// `14:03:07.250`, like `%H:%M:%S%.3f`.
pub fn time_of_day_ms(at: &DateTime<Utc>) -> String {
    // A leap second's nanoseconds run past one second; chrono prints them so.
    format!("{}.{:03}", time_of_day(at), at.nanosecond() / 1_000_000)
}

/// `2026-11-22 14:03:07`, like `%Y-%m-%d %H:%M:%S`.
pub fn date_time(at: &DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02} {}", at.year(), at.month(), at.day(), time_of_day(at))
}

/// `Nov 22 14:03:07`, like `%b %d %H:%M:%S`.
pub fn month_day_time(at: &DateTime<Utc>) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!("{} {:02} {}", MONTHS[at.month0() as usize], at.day(), time_of_day(at))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn each_layout_prints_what_chrono_prints(seconds in 0i64..4_102_444_800, millis in 0u32..1000) {
            let at = Utc.timestamp_opt(seconds, millis * 1_000_000).unwrap();
            prop_assert_eq!(time_of_day(&at), at.format("%H:%M:%S").to_string());
            prop_assert_eq!(time_of_day_ms(&at), at.format("%H:%M:%S%.3f").to_string());
            prop_assert_eq!(date_time(&at), at.format("%Y-%m-%d %H:%M:%S").to_string());
            prop_assert_eq!(month_day_time(&at), at.format("%b %d %H:%M:%S").to_string());
        }
    }

    #[test]
    fn a_morning_in_january_is_zero_padded() {
        let at = Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(month_day_time(&at), "Jan 02 03:04:05");
        assert_eq!(date_time(&at), "2027-01-02 03:04:05");
        assert_eq!(time_of_day_ms(&at), "03:04:05.000");
    }
}
