//! Times for geotagging, all as UTC seconds since 1970 (`f64`, fractions kept): track fix times
//! (ISO 8601), a photo's EXIF capture time with its offset and sub-seconds, the user's time
//! zone for photos without an offset (`--tz`), and camera clock offsets written as exiftool's
//! `-geosync` reads them.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// UTC seconds of a civil date and time read as UTC (exiftool's `timegm`).
pub fn utc_secs(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> f64 {
    (days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)) as f64
}

/// `2024-05-18 09:41:07 UTC`-like text for a UTC second count (whole seconds), for messages.
pub fn format_utc(secs: f64) -> String {
    let whole = secs.floor() as i64;
    let (days, rem) = (whole.div_euclid(86_400), whole.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Digits of `text` as a number, `None` unless every byte is a digit (and there is one).
fn digits(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `YYYY?MM?DD?HH:MM:SS` (any single separators) -> (date-time seconds as UTC, the rest).
fn date_time_prefix(text: &str) -> Option<(f64, &str)> {
    let b = text.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let year = digits(text.get(0..4)?)?;
    let month = digits(text.get(5..7)?)?;
    let day = digits(text.get(8..10)?)?;
    let hour = digits(text.get(11..13)?)?;
    let minute = digits(text.get(14..16)?)?;
    let second = digits(text.get(17..19)?)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 24 || minute > 59 {
        return None;
    }
    Some((
        utc_secs(i64::from(year), month, day, hour, minute, second),
        &text[19..],
    ))
}

/// A fix time as GPX and KML write it, `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM|±HHMM|±HH]`, in
/// UTC seconds; no zone means UTC (exiftool's `GetTime`).
pub fn parse_iso_time(text: &str) -> Option<f64> {
    let text = text.trim();
    let (mut secs, mut rest) = date_time_prefix(text)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len > 0 {
            secs += format!("0.{}", &frac[..len]).parse::<f64>().ok()?;
        }
        rest = &frac[len..];
    }
    if rest.is_empty() || rest == "Z" || rest == "z" {
        return Some(secs);
    }
    let zone = parse_zone(rest)?;
    Some(secs - f64::from(zone.offset_minutes) * 60.0)
}

/// A fixed offset from UTC: the time zone given for photos whose EXIF has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone {
    pub offset_minutes: i32,
}

/// `UTC`, `Z`, `GMT`, `+02:00`, `-0530`, `+2`, `-05`: a fixed offset. IANA names
/// (`Europe/Kyiv`) are not read: no time zone database is in the dependency tree (chrono-tz
/// or jiff would add one), and a fixed offset is what the photo's own OffsetTimeOriginal
/// carries anyway.
pub fn parse_zone(text: &str) -> Option<TimeZone> {
    let text = text.trim();
    if ["utc", "z", "gmt"].contains(&text.to_ascii_lowercase().as_str()) {
        return Some(TimeZone { offset_minutes: 0 });
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &text[1..];
    let (hours, minutes) = match body.split_once(':') {
        Some((h, m)) => (digits(h)?, digits(m)?),
        None if body.len() == 4 => (digits(&body[..2])?, digits(&body[2..])?),
        None if body.len() <= 2 => (digits(body)?, 0),
        None => return None,
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some(TimeZone {
        offset_minutes: sign * (hours * 60 + minutes) as i32,
    })
}

/// A photo's capture time as EXIF gives it: DateTimeOriginal, SubSecTimeOriginal and
/// OffsetTimeOriginal, the way exiftool's `SubSecDateTimeOriginal` joins them.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureTime {
    /// The camera's clock read as if it were UTC, whole seconds.
    pub local_secs: f64,
    /// SubSecTimeOriginal as a fraction (`"5"` -> 0.5, `"042"` -> 0.042).
    pub subsec: f64,
    /// OffsetTimeOriginal, when the camera wrote one.
    pub offset_minutes: Option<i32>,
}

impl CaptureTime {
    /// From the library's EXIF text (`YYYY-MM-DDTHH:MM:SS` with an optional `±HH:MM`, see
    /// `library::exif::ExifInfo::taken_at`) and SubSecTimeOriginal's digits.
    pub fn from_exif_text(taken_at: &str, subsec: Option<&str>) -> Option<Self> {
        let (local_secs, rest) = date_time_prefix(taken_at)?;
        let offset_minutes = if rest.is_empty() {
            None
        } else {
            Some(parse_zone(rest)?.offset_minutes)
        };
        let subsec = subsec
            .map(|s| s.trim().trim_end_matches('\0'))
            .and_then(|s| {
                let len = s.bytes().take_while(u8::is_ascii_digit).count();
                (len > 0)
                    .then(|| format!("0.{}", &s[..len]).parse::<f64>().ok())
                    .flatten()
            })
            .unwrap_or(0.0);
        Some(Self {
            local_secs,
            subsec,
            offset_minutes,
        })
    }

    /// UTC seconds: the photo's own offset first, else `zone`; `None` when neither is known.
    pub fn utc_secs(&self, zone: Option<TimeZone>) -> Option<f64> {
        let offset = self.offset_minutes.or(zone.map(|z| z.offset_minutes))?;
        Some(self.local_secs + self.subsec - f64::from(offset) * 60.0)
    }
}

/// A camera clock offset as exiftool's `-geosync` reads a plain time difference: the numbers
/// in the text are, from the last, seconds, minutes, hours and days (`+1:00:00` is an hour,
/// `-0:00:37` and `-37` are 37 s, `-1:30` is 90 s, `1 2:00:00` is a day and two hours); the
/// value is negative when the text starts with `-`. The offset is *added* to a photo's time to
/// give the track's time (`track = photo + offset`), exiftool's sign convention.
pub fn parse_offset(text: &str) -> Option<f64> {
    let mut numbers = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit()
            || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        numbers.push(text[start..i].parse::<f64>().ok()?);
    }
    if numbers.is_empty() {
        return None;
    }
    let mut secs = 0.0;
    for mult in [1.0, 60.0, 3600.0, 86_400.0] {
        let Some(n) = numbers.pop() else { break };
        secs += mult * n;
    }
    Some(if text.trim_start().starts_with('-') {
        -secs
    } else {
        secs
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-1, 0, 59, 11_016, 19_876, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_utc(1_716_025_267.9), "2024-05-18 09:41:07 UTC");
    }

    #[test]
    fn iso_times_with_zones() {
        let utc = parse_iso_time("2024-05-18T09:41:07Z").unwrap();
        assert_eq!(utc, 1_716_025_267.0);
        assert_eq!(parse_iso_time("2024-05-18T09:41:07"), Some(utc));
        assert_eq!(parse_iso_time("2024-05-18T11:41:07+02:00"), Some(utc));
        assert_eq!(parse_iso_time("2024-05-18T04:11:07-0530"), Some(utc));
        assert_eq!(parse_iso_time("2024-05-18T10:41:07+01"), Some(utc));
        assert_eq!(parse_iso_time("2024-05-18T09:41:07.250Z"), Some(utc + 0.25));
        assert_eq!(parse_iso_time("2024-05-18"), None);
        assert_eq!(parse_iso_time("yesterday"), None);
    }

    #[test]
    fn zones() {
        assert_eq!(parse_zone("UTC").unwrap().offset_minutes, 0);
        assert_eq!(parse_zone("Z").unwrap().offset_minutes, 0);
        assert_eq!(parse_zone("+02:00").unwrap().offset_minutes, 120);
        assert_eq!(parse_zone("-0530").unwrap().offset_minutes, -330);
        assert_eq!(parse_zone("+2").unwrap().offset_minutes, 120);
        assert_eq!(parse_zone("Europe/Kyiv"), None);
        assert_eq!(parse_zone("+25:00"), None);
    }

    #[test]
    fn capture_time_offset_subsec_and_zone() {
        let t = CaptureTime::from_exif_text("2024-05-18T11:41:07+02:00", Some("25")).unwrap();
        assert_eq!(t.utc_secs(None), Some(1_716_025_267.25));
        // The photo's own offset wins over the zone given.
        assert_eq!(t.utc_secs(parse_zone("-05:00")), Some(1_716_025_267.25));
        let naive = CaptureTime::from_exif_text("2024-05-18T11:41:07", None).unwrap();
        assert_eq!(naive.utc_secs(None), None);
        assert_eq!(naive.utc_secs(parse_zone("+02:00")), Some(1_716_025_267.0));
        let padded = CaptureTime::from_exif_text("2024-05-18T09:41:07", Some("042\0")).unwrap();
        assert!((padded.subsec - 0.042).abs() < 1e-12);
    }

    #[test]
    fn offsets_as_exiftool_geosync_reads_them() {
        assert_eq!(parse_offset("+1:00:00"), Some(3600.0));
        assert_eq!(parse_offset("-0:00:37"), Some(-37.0));
        assert_eq!(parse_offset("+37"), Some(37.0));
        assert_eq!(parse_offset("37"), Some(37.0));
        assert_eq!(parse_offset("-1:30"), Some(-90.0));
        assert_eq!(parse_offset("1 2:00:00"), Some(93_600.0));
        assert_eq!(parse_offset("-0:00:01.5"), Some(-1.5));
        assert_eq!(parse_offset("soon"), None);
        assert_eq!(
            crate::domain::format_offset(parse_offset("-0:00:37").unwrap()),
            "-0:00:37"
        );
    }
}
