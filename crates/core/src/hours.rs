//! Opening hours (*chatspreekuur*) per topic: a weekly schedule in a time
//! zone, with holidays.
//!
//! Pure: the time zone is a value (loaded by the shell), and the current
//! time is an argument. [`Schedule::gate_at`] turns a moment into the
//! router's [`Gate`] (open, closing soon, closed until …) and says when to
//! look again. The shell feeds that to the router, so the router itself
//! never deals with calendars or daylight saving time.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use crate::router::Gate;

/// How far ahead the next opening is looked for (a year of holidays is
/// plenty).
const HORIZON_DAYS: usize = 400;

/// One opening period, in local time. A close at or before the open runs
/// past midnight into the next day; `24:00` is written as a close of
/// `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// Opening time.
    pub open: Time,
    /// Closing time; `None` is midnight at the end of the day.
    pub close: Option<Time>,
}

/// A period that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPeriod(String);

impl fmt::Display for BadPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a period like \"09:00-17:30\"", self.0)
    }
}

impl std::error::Error for BadPeriod {}

impl FromStr for Period {
    type Err = BadPeriod;

    /// Parses `"09:00-17:30"`, `"20:00-24:00"` or `"22:00-02:00"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPeriod(s.to_owned());
        let (open, close) = s.split_once('-').ok_or_else(bad)?;
        let open: Time = open.trim().parse().map_err(|_| bad())?;
        let close = match close.trim() {
            "24:00" => None,
            other => Some(other.parse::<Time>().map_err(|_| bad())?),
        };
        if close == Some(open) {
            return Err(bad());
        }
        Ok(Period { open, close })
    }
}

/// A topic's opening hours.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The time zone the times are in, such as Europe/Brussels.
    pub time_zone: TimeZone,
    /// Opening periods per weekday, Monday first.
    pub weekly: [Vec<Period>; 7],
    /// Dates on which no period starts (closed all day).
    pub holidays: BTreeSet<Date>,
    /// How long before closing waiting help-seekers are warned.
    pub closing_warning: Duration,
}

/// Whether a schedule is open at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hours {
    /// Open until `closes_at` (`None`: open around the clock).
    Open {
        /// When it closes next.
        closes_at: Option<Timestamp>,
    },
    /// Closed until `opens_at` (`None`: no opening within a year).
    Closed {
        /// When it opens next.
        opens_at: Option<Timestamp>,
    },
}

fn millis(t: Timestamp) -> u64 {
    u64::try_from(t.as_millisecond()).unwrap_or(0)
}

impl Schedule {
    /// The absolute intervals of the periods that start on `date`.
    fn intervals_on(&self, date: Date) -> Vec<(Timestamp, Timestamp)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let day = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
        let Ok(next_day) = date.tomorrow() else {
            return Vec::new();
        };
        self.weekly[day % 7]
            .iter()
            .filter_map(|p| {
                let start = date
                    .to_datetime(p.open)
                    .to_zoned(self.time_zone.clone())
                    .ok()?;
                let end_date = match p.close {
                    Some(close) if close > p.open => date.to_datetime(close),
                    Some(close) => next_day.to_datetime(close),
                    None => next_day.to_datetime(Time::midnight()),
                };
                let end = end_date.to_zoned(self.time_zone.clone()).ok()?;
                (start.timestamp() < end.timestamp()).then(|| (start.timestamp(), end.timestamp()))
            })
            .collect()
    }

    /// Whether the schedule is open at `now`, and until or from when.
    pub fn hours_at(&self, now: Timestamp) -> Hours {
        let today = now.to_zoned(self.time_zone.clone()).date();
        let Ok(mut date) = today.yesterday() else {
            return Hours::Closed { opens_at: None };
        };
        // Intervals from yesterday on (yesterday's may run past midnight),
        // collected day by day until the answer is certain.
        let mut intervals: Vec<(Timestamp, Timestamp)> = Vec::new();
        for _ in 0..HORIZON_DAYS {
            intervals.extend(self.intervals_on(date));
            intervals.sort();
            let Ok(next) = date.tomorrow() else { break };
            date = next;
            // Anything starting on `date` or later starts after this bound.
            let Ok(bound) = date
                .to_datetime(Time::midnight())
                .to_zoned(self.time_zone.clone())
            else {
                break;
            };
            let bound = bound.timestamp();
            if let Some(i) = intervals.iter().position(|(s, e)| *s <= now && now < *e) {
                let mut end = intervals[i].1;
                for (s, e) in &intervals[i + 1..] {
                    if *s <= end {
                        end = end.max(*e);
                    }
                }
                // Until the open stretch ends before the days not yet seen,
                // a later period might still extend it.
                if end < bound {
                    return Hours::Open {
                        closes_at: Some(end),
                    };
                }
            } else if let Some((s, _)) = intervals.iter().find(|(s, _)| *s > now) {
                return Hours::Closed { opens_at: Some(*s) };
            }
        }
        if intervals.iter().any(|(s, e)| *s <= now && now < *e) {
            Hours::Open { closes_at: None }
        } else {
            Hours::Closed { opens_at: None }
        }
    }

    /// The router's gate at `now`, and when to look again (`None`: never
    /// changes).
    pub fn gate_at(&self, now: Timestamp) -> (Gate, Option<Timestamp>) {
        match self.hours_at(now) {
            Hours::Open { closes_at: None } => (Gate::Open, None),
            Hours::Open {
                closes_at: Some(closes),
            } => {
                let warning =
                    jiff::SignedDuration::try_from(self.closing_warning).unwrap_or_default();
                let warn_at = closes.checked_sub(warning).unwrap_or(closes);
                if now >= warn_at {
                    (
                        Gate::Closing {
                            at_ms: millis(closes),
                        },
                        Some(closes),
                    )
                } else {
                    (Gate::Open, Some(warn_at))
                }
            }
            Hours::Closed { opens_at } => (
                Gate::Closed {
                    opens_ms: opens_at.map(millis),
                },
                opens_at,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn brussels() -> TimeZone {
        TimeZone::get("Europe/Brussels").unwrap()
    }

    fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        date(y, mo, d)
            .at(h, mi, 0, 0)
            .to_zoned(brussels())
            .unwrap()
            .timestamp()
    }

    fn periods(list: &[&str]) -> Vec<Period> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn office() -> Schedule {
        let weekday = periods(&["09:00-12:00", "13:00-22:00"]);
        Schedule {
            time_zone: brussels(),
            weekly: [
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday,
                periods(&["20:00-02:00"]),
                Vec::new(),
            ],
            holidays: [date(2026, 12, 25)].into_iter().collect(),
            closing_warning: Duration::from_secs(15 * 60),
        }
    }

    #[test]
    fn periods_parse() {
        assert_eq!(
            "09:00-17:30".parse::<Period>().unwrap(),
            Period {
                open: jiff::civil::time(9, 0, 0, 0),
                close: Some(jiff::civil::time(17, 30, 0, 0))
            }
        );
        assert_eq!("20:00-24:00".parse::<Period>().unwrap().close, None);
        assert!("9-5".parse::<Period>().is_err());
        assert!("09:00".parse::<Period>().is_err());
        assert!("10:00-10:00".parse::<Period>().is_err());
    }

    #[test]
    fn open_closing_and_closed_on_an_ordinary_day() {
        let s = office();
        // Monday 23 November 2026.
        assert_eq!(
            s.hours_at(at(2026, 11, 23, 10, 0)),
            Hours::Open {
                closes_at: Some(at(2026, 11, 23, 12, 0))
            }
        );
        assert_eq!(
            s.gate_at(at(2026, 11, 23, 10, 0)),
            (Gate::Open, Some(at(2026, 11, 23, 11, 45)))
        );
        let (gate, next) = s.gate_at(at(2026, 11, 23, 11, 50));
        assert_eq!(
            gate,
            Gate::Closing {
                at_ms: millis(at(2026, 11, 23, 12, 0))
            }
        );
        assert_eq!(next, Some(at(2026, 11, 23, 12, 0)));
        assert_eq!(
            s.hours_at(at(2026, 11, 23, 12, 30)),
            Hours::Closed {
                opens_at: Some(at(2026, 11, 23, 13, 0))
            }
        );
        assert_eq!(
            s.hours_at(at(2026, 11, 23, 7, 0)),
            Hours::Closed {
                opens_at: Some(at(2026, 11, 23, 9, 0))
            }
        );
    }

    #[test]
    fn the_weekend_and_a_period_past_midnight() {
        let s = office();
        // Friday 22:30 → Saturday 20:00.
        assert_eq!(
            s.hours_at(at(2026, 11, 27, 22, 30)),
            Hours::Closed {
                opens_at: Some(at(2026, 11, 28, 20, 0))
            }
        );
        // Sunday 01:00 is still Saturday's evening period.
        assert_eq!(
            s.hours_at(at(2026, 11, 29, 1, 0)),
            Hours::Open {
                closes_at: Some(at(2026, 11, 29, 2, 0))
            }
        );
        // Sunday 03:00 → Monday 09:00.
        assert_eq!(
            s.hours_at(at(2026, 11, 29, 3, 0)),
            Hours::Closed {
                opens_at: Some(at(2026, 11, 30, 9, 0))
            }
        );
    }

    #[test]
    fn holidays_close_all_day() {
        let s = office();
        // Christmas is a Friday: closed, next opening Saturday evening.
        assert_eq!(
            s.hours_at(at(2026, 12, 25, 10, 0)),
            Hours::Closed {
                opens_at: Some(at(2026, 12, 26, 20, 0))
            }
        );
    }

    #[test]
    fn back_to_back_periods_are_one_stretch() {
        let every_day = periods(&["00:00-24:00"]);
        let s = Schedule {
            time_zone: brussels(),
            weekly: std::array::from_fn(|_| every_day.clone()),
            holidays: BTreeSet::new(),
            closing_warning: Duration::from_secs(900),
        };
        assert_eq!(
            s.hours_at(at(2026, 11, 23, 10, 0)),
            Hours::Open { closes_at: None }
        );
        assert_eq!(s.gate_at(at(2026, 11, 23, 10, 0)), (Gate::Open, None));
        let mut weekdays_only = s.clone();
        weekdays_only.weekly[5].clear();
        weekdays_only.weekly[6].clear();
        // Monday 10:00 runs through to Saturday 00:00.
        assert_eq!(
            weekdays_only.hours_at(at(2026, 11, 23, 10, 0)),
            Hours::Open {
                closes_at: Some(at(2026, 11, 28, 0, 0))
            }
        );
    }

    #[test]
    fn daylight_saving_time_is_respected() {
        // On Sunday 28 March 2027 Brussels skips 02:00-03:00.
        let mut s = office();
        s.weekly[6] = periods(&["01:00-04:00"]);
        let open = at(2027, 3, 28, 1, 0);
        match s.hours_at(open) {
            Hours::Open {
                closes_at: Some(close),
            } => {
                assert_eq!(close.as_second() - open.as_second(), 2 * 3600);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn never_open_says_so() {
        let s = Schedule {
            time_zone: brussels(),
            weekly: std::array::from_fn(|_| Vec::new()),
            holidays: BTreeSet::new(),
            closing_warning: Duration::ZERO,
        };
        assert_eq!(
            s.gate_at(at(2026, 11, 23, 10, 0)),
            (Gate::Closed { opens_ms: None }, None)
        );
    }
}
