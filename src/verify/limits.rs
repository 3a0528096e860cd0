//! Per-host limits, sans-IO: what an operator set ([`HostLimitSettings`]), how a host's
//! account limit grows with its sustained valid traffic ([`AccountLimitGrowth`]), and the
//! limits in force that follow from both ([`EffectiveLimits`]). Time is passed in.
//!
//! Owns: the meaning of the stored limit values, the growth rule and the default rates.
//! Must not: count, sleep, or touch the store; the ingest shard holds one growth per host,
//! feeds it the host's sequenced events and enforces the result (accounts in
//! `runtime::ingest`, rates through `upstream::rate` in the session).
//!
//! Stored values (`HostRecord.account_limit`, `rate_limits.*`): `0` = not set (the relay's
//! default), `HOST_LIMIT_UNLIMITED_STORED` = unlimited, anything else = that limit.
//!
//! Growth rule: a host starts at `max(HOST_ACCOUNT_LIMIT_BASE, accounts it has)`; every
//! `HOST_ACCOUNT_LIMIT_GROWTH_EVENTS` valid events add `HOST_ACCOUNT_LIMIT_GROWTH_ACCOUNTS`,
//! at most `HOST_ACCOUNT_LIMIT_GROWTH_PER_DAY_MAX` per UTC day, up to
//! `HOST_ACCOUNT_LIMIT_GROWN_MAX`. Growth is kept in memory only: after a restart a host
//! starts again from the accounts it has (which growth let in, so nothing already admitted
//! is lost, only unused headroom).
//!
//! Default rates follow indigo: per second `50 + limit / 1000`, per hour `2,500 + limit`,
//! per day `20,000 + limit × 10`, with `limit` the host's account limit in force; a host
//! whose account limit is unlimited gets indigo's trusted-host rates.

use crate::config::limits::{
    HOST_ACCOUNT_LIMIT_BASE, HOST_ACCOUNT_LIMIT_GROWN_MAX, HOST_ACCOUNT_LIMIT_GROWTH_ACCOUNTS,
    HOST_ACCOUNT_LIMIT_GROWTH_EVENTS, HOST_ACCOUNT_LIMIT_GROWTH_PER_DAY_MAX,
    HOST_LIMIT_UNLIMITED_STORED, HOST_RATE_PER_DAY_BASE, HOST_RATE_PER_DAY_PER_ACCOUNT,
    HOST_RATE_PER_HOUR_BASE, HOST_RATE_PER_HOUR_PER_ACCOUNT, HOST_RATE_PER_SECOND_ACCOUNTS,
    HOST_RATE_PER_SECOND_BASE, HOST_RATE_UNLIMITED_ACCOUNTS_PER_DAY,
    HOST_RATE_UNLIMITED_ACCOUNTS_PER_HOUR, HOST_RATE_UNLIMITED_ACCOUNTS_PER_SECOND,
};
use crate::state::{HostRecord, RateLimits};

const DAY_MILLIS: u64 = 24 * 3_600 * 1_000;

/// One stored limit, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LimitSetting {
    /// Not set by an operator: the relay's default (grown, scaled) applies.
    #[default]
    Default,
    /// Set by an operator to unlimited.
    Unlimited,
    /// Set by an operator to this limit.
    Value(u64),
}

impl LimitSetting {
    /// The setting a stored value means.
    pub fn from_stored(stored: u64) -> LimitSetting {
        match stored {
            0 => LimitSetting::Default,
            HOST_LIMIT_UNLIMITED_STORED.. => LimitSetting::Unlimited,
            n => LimitSetting::Value(n),
        }
    }

    /// The stored value of this setting.
    pub fn to_stored(self) -> u64 {
        match self {
            LimitSetting::Default => 0,
            LimitSetting::Unlimited => HOST_LIMIT_UNLIMITED_STORED,
            LimitSetting::Value(n) => n.min(HOST_LIMIT_UNLIMITED_STORED - 1),
        }
    }

    /// What an operator asked for in changeLimits: `0` = unlimited, `n` = that limit.
    pub fn from_request(value: u64) -> LimitSetting {
        if value == 0 {
            LimitSetting::Unlimited
        } else {
            LimitSetting::Value(value)
        }
    }

    /// The limit in force given the relay's default (0 = unlimited).
    fn or_default(self, default: u64) -> u64 {
        match self {
            LimitSetting::Default => default,
            LimitSetting::Unlimited => 0,
            LimitSetting::Value(n) => n,
        }
    }
}

/// What an operator set for one host (each field may be left to the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HostLimitSettings {
    /// Most accounts.
    pub accounts: LimitSetting,
    /// Events per second.
    pub per_second: LimitSetting,
    /// Events per hour.
    pub per_hour: LimitSetting,
    /// Events per day.
    pub per_day: LimitSetting,
}

impl HostLimitSettings {
    /// The settings stored values mean.
    pub fn from_stored(account_limit: u64, rates: RateLimits) -> HostLimitSettings {
        HostLimitSettings {
            accounts: LimitSetting::from_stored(account_limit),
            per_second: LimitSetting::from_stored(rates.per_second),
            per_hour: LimitSetting::from_stored(rates.per_hour),
            per_day: LimitSetting::from_stored(rates.per_day),
        }
    }

    /// The settings of a stored host.
    pub fn of_host(host: &HostRecord) -> HostLimitSettings {
        HostLimitSettings::from_stored(host.account_limit, host.rate_limits)
    }

    fn any_rate_set(&self) -> bool {
        [self.per_second, self.per_hour, self.per_day]
            .iter()
            .any(|s| *s != LimitSetting::Default)
    }
}

/// Where a limit in force comes from (shown by `GET /admin/hosts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// The relay's defaults.
    Default,
    /// The default account limit, grown with the host's valid traffic.
    Grown,
    /// An operator's setting (for rates: at least one of the three).
    Operator,
}

impl LimitSource {
    /// The label shown by the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::Default => "default",
            LimitSource::Grown => "grown",
            LimitSource::Operator => "operator",
        }
    }
}

/// The limits a host runs with now (0 = unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Most accounts (0 = unlimited).
    pub accounts: u64,
    /// Where the account limit comes from.
    pub accounts_source: LimitSource,
    /// Event rates (0 = unlimited).
    pub rates: RateLimits,
    /// Where the rates come from.
    pub rates_source: LimitSource,
}

impl EffectiveLimits {
    /// The limits in force from an operator's `settings` and the grown account limit;
    /// without `defaults` (`--no-default-host-limits`) what the operator did not set is
    /// unlimited.
    pub fn new(
        settings: &HostLimitSettings,
        grown: &AccountLimitGrowth,
        defaults: bool,
    ) -> EffectiveLimits {
        let (accounts, accounts_source) = match settings.accounts {
            LimitSetting::Default if !defaults => (0, LimitSource::Default),
            LimitSetting::Default if grown.has_grown() => (grown.limit(), LimitSource::Grown),
            LimitSetting::Default => (grown.limit(), LimitSource::Default),
            other => (other.or_default(0), LimitSource::Operator),
        };
        let defaults = if defaults {
            default_rates(accounts)
        } else {
            RateLimits::default()
        };
        let rates = RateLimits {
            per_second: settings.per_second.or_default(defaults.per_second),
            per_hour: settings.per_hour.or_default(defaults.per_hour),
            per_day: settings.per_day.or_default(defaults.per_day),
        };
        let rates_source = if settings.any_rate_set() {
            LimitSource::Operator
        } else {
            LimitSource::Default
        };
        EffectiveLimits {
            accounts,
            accounts_source,
            rates,
            rates_source,
        }
    }

    /// Whether a host with `account_count` accounts may gain one more.
    pub fn admits_new_account(&self, account_count: u64) -> bool {
        self.accounts == 0 || account_count < self.accounts
    }
}

/// indigo's default rates for a host whose account limit is `account_limit` (0 = unlimited:
/// the trusted-host rates).
pub fn default_rates(account_limit: u64) -> RateLimits {
    if account_limit == 0 {
        return RateLimits {
            per_second: HOST_RATE_UNLIMITED_ACCOUNTS_PER_SECOND,
            per_hour: HOST_RATE_UNLIMITED_ACCOUNTS_PER_HOUR,
            per_day: HOST_RATE_UNLIMITED_ACCOUNTS_PER_DAY,
        };
    }
    RateLimits {
        per_second: HOST_RATE_PER_SECOND_BASE + account_limit / HOST_RATE_PER_SECOND_ACCOUNTS,
        per_hour: HOST_RATE_PER_HOUR_BASE
            .saturating_add(account_limit.saturating_mul(HOST_RATE_PER_HOUR_PER_ACCOUNT)),
        per_day: HOST_RATE_PER_DAY_BASE
            .saturating_add(account_limit.saturating_mul(HOST_RATE_PER_DAY_PER_ACCOUNT)),
    }
}

/// A host's default account limit, grown by its valid traffic (the rule in the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLimitGrowth {
    start: u64,
    limit: u64,
    credit: u64,
    day: u64,
    grown_today: u64,
}

impl AccountLimitGrowth {
    /// The growth of a host that has `account_count` accounts now.
    pub fn new(account_count: u64) -> AccountLimitGrowth {
        let start = HOST_ACCOUNT_LIMIT_BASE.max(account_count);
        AccountLimitGrowth {
            start,
            limit: start,
            credit: 0,
            day: 0,
            grown_today: 0,
        }
    }

    /// The grown default limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether traffic raised the limit above where it started.
    pub fn has_grown(&self) -> bool {
        self.limit > self.start
    }

    /// Count one valid event of the host at `now_ms` (Unix milliseconds); true when the
    /// limit grew.
    pub fn on_valid_event(&mut self, now_ms: u64) -> bool {
        let day = now_ms / DAY_MILLIS;
        if day != self.day {
            self.day = day;
            self.grown_today = 0;
        }
        self.credit += 1;
        if self.credit < HOST_ACCOUNT_LIMIT_GROWTH_EVENTS {
            return false;
        }
        self.credit = 0;
        let room_today = HOST_ACCOUNT_LIMIT_GROWTH_PER_DAY_MAX.saturating_sub(self.grown_today);
        let room = HOST_ACCOUNT_LIMIT_GROWN_MAX.saturating_sub(self.limit);
        let step = HOST_ACCOUNT_LIMIT_GROWTH_ACCOUNTS.min(room_today).min(room);
        self.limit += step;
        self.grown_today += step;
        step > 0
    }
}

/// The limits in force of every running host, as its ingest shard last computed them, for
/// `GET /admin/hosts`. Shards write only on a change (a host added, an operator's change, a
/// growth step: at most once per `HOST_ACCOUNT_LIMIT_GROWTH_EVENTS` events of a host); the
/// lock is held for one map operation, never across an await. One entry per host a shard
/// runs, so it is bounded like the hosts are.
#[derive(Debug, Default)]
pub struct HostLimitsBoard {
    hosts: std::sync::Mutex<std::collections::HashMap<u64, EffectiveLimits>>,
}

impl HostLimitsBoard {
    fn hosts(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, EffectiveLimits>> {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Record host `id`'s limits in force.
    pub fn set(&self, id: u64, limits: EffectiveLimits) {
        self.hosts().insert(id, limits);
    }

    /// Host `id`'s limits in force, if a shard runs it.
    pub fn get(&self, id: u64) -> Option<EffectiveLimits> {
        self.hosts().get(&id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stored_values_round_trip() {
        for setting in [
            LimitSetting::Default,
            LimitSetting::Unlimited,
            LimitSetting::Value(1),
            LimitSetting::Value(5_000),
        ] {
            assert_eq!(LimitSetting::from_stored(setting.to_stored()), setting);
        }
        assert_eq!(LimitSetting::from_request(0), LimitSetting::Unlimited);
        assert_eq!(LimitSetting::from_stored(u64::MAX), LimitSetting::Unlimited);
    }

    #[test]
    fn defaults_follow_indigo() {
        let growth = AccountLimitGrowth::new(0);
        let limits = EffectiveLimits::new(&HostLimitSettings::default(), &growth, true);
        assert_eq!(limits.accounts, 100);
        assert_eq!(limits.accounts_source, LimitSource::Default);
        assert_eq!(
            limits.rates,
            RateLimits {
                per_second: 50,
                per_hour: 2_600,
                per_day: 21_000
            }
        );
        assert_eq!(default_rates(10_000).per_second, 60);
        assert_eq!(default_rates(0).per_second, 5_000);
    }

    #[test]
    fn an_operator_overrides_each_field() {
        let growth = AccountLimitGrowth::new(0);
        let settings = HostLimitSettings {
            accounts: LimitSetting::Value(3),
            per_second: LimitSetting::Value(5),
            per_hour: LimitSetting::Default,
            per_day: LimitSetting::Unlimited,
        };
        let limits = EffectiveLimits::new(&settings, &growth, true);
        assert_eq!(
            (limits.accounts, limits.accounts_source),
            (3, LimitSource::Operator)
        );
        assert_eq!(limits.rates.per_second, 5);
        assert_eq!(
            limits.rates.per_hour, 2_503,
            "default scaled by the limit in force"
        );
        assert_eq!(limits.rates.per_day, 0);
        assert_eq!(limits.rates_source, LimitSource::Operator);
        assert!(limits.admits_new_account(2));
        assert!(!limits.admits_new_account(3));
    }

    #[test]
    fn without_defaults_only_operator_settings_limit() {
        let growth = AccountLimitGrowth::new(0);
        let none = EffectiveLimits::new(&HostLimitSettings::default(), &growth, false);
        assert_eq!((none.accounts, none.rates), (0, RateLimits::default()));
        assert_eq!(none.accounts_source, LimitSource::Default);
        let settings = HostLimitSettings {
            per_second: LimitSetting::Value(7),
            ..HostLimitSettings::default()
        };
        let some = EffectiveLimits::new(&settings, &growth, false);
        assert_eq!(
            (some.accounts, some.rates.per_second, some.rates.per_hour),
            (0, 7, 0)
        );
    }

    #[test]
    fn a_stored_host_starts_at_its_accounts() {
        assert_eq!(AccountLimitGrowth::new(7).limit(), 100);
        assert_eq!(AccountLimitGrowth::new(4_000).limit(), 4_000);
    }

    #[test]
    fn growth_needs_valid_events_and_shows_as_grown() {
        let mut growth = AccountLimitGrowth::new(0);
        for _ in 0..HOST_ACCOUNT_LIMIT_GROWTH_EVENTS - 1 {
            assert!(!growth.on_valid_event(0));
        }
        assert!(growth.on_valid_event(0));
        assert_eq!(growth.limit(), 100 + HOST_ACCOUNT_LIMIT_GROWTH_ACCOUNTS);
        let limits = EffectiveLimits::new(&HostLimitSettings::default(), &growth, true);
        assert_eq!(limits.accounts_source, LimitSource::Grown);
    }

    proptest! {
        /// Whatever the traffic: the limit never shrinks, grows at most the daily cap in
        /// one UTC day, never passes the growth maximum, and grows by exactly one step per
        /// step's worth of events while neither cap binds.
        #[test]
        fn growth_is_bounded_per_day_and_overall(
            start in 0u64..200_000,
            bursts in proptest::collection::vec((0u64..3, 0u64..40_000), 1..12),
        ) {
            let mut growth = AccountLimitGrowth::new(start);
            let mut now = 0u64;
            for (days_later, events) in bursts {
                now += days_later * DAY_MILLIS;
                let day_start = growth.limit();
                let steps = (growth.credit + events) / HOST_ACCOUNT_LIMIT_GROWTH_EVENTS;
                for _ in 0..events {
                    let before = growth.limit();
                    growth.on_valid_event(now);
                    prop_assert!(growth.limit() >= before);
                }
                let grown = growth.limit() - day_start;
                prop_assert!(grown <= HOST_ACCOUNT_LIMIT_GROWTH_PER_DAY_MAX);
                prop_assert!(growth.limit() <= HOST_ACCOUNT_LIMIT_GROWN_MAX.max(start.max(HOST_ACCOUNT_LIMIT_BASE)));
                let uncapped = steps * HOST_ACCOUNT_LIMIT_GROWTH_ACCOUNTS;
                if day_start + HOST_ACCOUNT_LIMIT_GROWTH_PER_DAY_MAX <= HOST_ACCOUNT_LIMIT_GROWN_MAX
                    && days_later > 0
                {
                    prop_assert_eq!(grown, uncapped.min(HOST_ACCOUNT_LIMIT_GROWTH_PER_DAY_MAX));
                }
            }
        }
    }
}
