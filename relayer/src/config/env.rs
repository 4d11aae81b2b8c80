//! Reading variables: through a lookup function, so tests configure without touching the process
//! environment, and only names `vars::VARS` lists (with their defaults from there).
use std::{str::FromStr, time::Duration};

use super::{vars, ConfigError};

pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The value, or the table's default; an empty value counts as unset.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        let var = vars::entry(name);
        (self.0)(name)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| var.default.map(str::to_owned))
    }

    pub fn required(&self, name: &'static str, example: &str) -> Result<String, ConfigError> {
        self.optional(name).ok_or_else(|| ConfigError {
            var: name,
            problem: format!("is not set (e.g. {example})"),
        })
    }

    /// The value (or default) parsed; `None` when unset without a default.
    pub fn parsed_opt<T: FromStr>(
        &self,
        name: &'static str,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.optional(name)
            .map(|v| {
                v.trim().parse().map_err(|_| ConfigError {
                    var: name,
                    problem: format!("is {v:?}, expected {expected}"),
                })
            })
            .transpose()
    }

    /// The value parsed, or its default; a variable without a default must be set.
    pub fn parsed<T: FromStr>(&self, name: &'static str, expected: &str) -> Result<T, ConfigError> {
        self.parsed_opt(name, expected)?.ok_or_else(|| ConfigError {
            var: name,
            problem: format!("is not set (expected {expected})"),
        })
    }

    /// Whole seconds at least `min`.
    pub fn secs(&self, name: &'static str, min: u64) -> Result<Duration, ConfigError> {
        let secs: u64 = self.parsed(name, "seconds")?;
        at_least(name, secs, min)?;
        Ok(Duration::from_secs(secs))
    }

    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref().map(str::trim) {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError {
                var: name,
                problem: format!("is {other:?}, expected true or false"),
            }),
        }
    }
}

pub fn at_least(name: &'static str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError {
            var: name,
            problem: format!("must be at least {min}"),
        });
    }
    Ok(())
}
