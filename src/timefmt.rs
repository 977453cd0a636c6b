//! Wall-clock formatting in the shapes Icecast clients parse, always in UTC:
//! ISO 8601 with a colon-less offset (Prometheus exporters parse
//! `2006-01-02T15:04:05-0700` strictly), RFC 2822-style for `server_start`,
//! the access log's `[day/Mon/year:hh:mm:ss +0000]`, HTTP's `Date`, and
//! RFC 3339 with milliseconds for HLS and DASH.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    weekday: usize,
}

fn civil(t: SystemTime) -> Civil {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
        weekday: (days.rem_euclid(7)) as usize,
    }
}

/// `2026-11-24T04:42:29+0000`
pub fn iso8601(t: SystemTime) -> String {
    let c = civil(t);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+0000", c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// `2026-11-24T04:42:29.123Z`: RFC 3339 with milliseconds, as HLS
/// (`EXT-X-PROGRAM-DATE-TIME`) and DASH (`xs:dateTime`) want it.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let c = civil(t);
    let millis = t.duration_since(UNIX_EPOCH).map(|d| d.subsec_millis()).unwrap_or(0);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// `Tue, 24 Nov 2026 04:42:29 +0000`
pub fn rfc2822(t: SystemTime) -> String {
    weekday_date_time(t, "+0000")
}

/// `Tue, 24 Nov 2026 04:42:29 GMT`: HTTP's `Date` (RFC 9110's IMF-fixdate).
pub fn http_date(t: SystemTime) -> String {
    weekday_date_time(t, "GMT")
}

fn weekday_date_time(t: SystemTime, zone: &str) -> String {
    let c = civil(t);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {zone}",
        DAYS[c.weekday],
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// `pattern` with strftime's `%Y %m %d %H %M %S %j %s %%` replaced (UTC),
/// for file names; other sequences stay as they are.
pub fn strftime(pattern: &str, t: SystemTime) -> String {
    let c = civil(t);
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{:04}", c.year)),
            Some('m') => out.push_str(&format!("{:02}", c.month)),
            Some('d') => out.push_str(&format!("{:02}", c.day)),
            Some('H') => out.push_str(&format!("{:02}", c.hour)),
            Some('M') => out.push_str(&format!("{:02}", c.minute)),
            Some('S') => out.push_str(&format!("{:02}", c.second)),
            Some('j') => out.push_str(&format!("{:03}", day_of_year(c))),
            Some('s') => out.push_str(&t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

fn day_of_year(c: Civil) -> u32 {
    const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = (c.year % 4 == 0 && c.year % 100 != 0) || c.year % 400 == 0;
    BEFORE[(c.month - 1) as usize] + c.day + u32::from(leap && c.month > 2)
}

/// `24/Nov/2026:04:42:29 +0000`
pub fn clf(t: SystemTime) -> String {
    let c = civil(t);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_495_349); // 2026-11-24T04:42:29Z, a Tuesday
        assert_eq!(iso8601(t), "2026-11-24T04:42:29+0000");
        assert_eq!(rfc2822(t), "Tue, 24 Nov 2026 04:42:29 +0000");
        assert_eq!(http_date(t), "Tue, 24 Nov 2026 04:42:29 GMT");
        assert_eq!(clf(t), "24/Nov/2026:04:42:29 +0000");
        assert_eq!(rfc3339_millis(t + Duration::from_millis(7)), "2026-11-24T04:42:29.007Z");
        assert_eq!(strftime("live-%Y%m%d-%H%M%S.mp3", t), "live-20261124-044229.mp3");
        assert_eq!(strftime("%j %s 100%% %q %", t), "328 1795495349 100% %q %");
        assert_eq!(strftime("%j", UNIX_EPOCH + Duration::from_secs(951_782_400)), "060", "2000 was a leap year");
        assert_eq!(iso8601(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00+0000");
    }
}
