//! Where the relayer's database is, and the role `relayer migrate` grants serve's needs to.
use super::{ConfigError, Env, Secret};

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    pub url: String,
    /// `DATABASE_ALLOW_PRIVILEGED`: serve may run as a superuser or the tables' owner.
    pub allow_privileged: bool,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn database(&self) -> Result<DatabaseConfig, ConfigError> {
        Ok(DatabaseConfig {
            url: self.postgres_url("DATABASE_URL")?,
            allow_privileged: self.flag("DATABASE_ALLOW_PRIVILEGED")?,
        })
    }

    /// Where `relayer migrate` connects, and the role it grants serve's needs to: with
    /// `DATABASE_OWNER_URL`, the owner migrates and `DATABASE_URL`'s user is granted.
    pub fn migration(&self) -> Result<(String, Option<AppRole>), ConfigError> {
        let app = self.postgres_url("DATABASE_URL")?;
        if self.optional("DATABASE_OWNER_URL").is_none() {
            return Ok((app, None));
        }
        let owner = self.postgres_url("DATABASE_OWNER_URL")?;
        let role = AppRole::of_url(&app).ok_or_else(|| ConfigError {
            var: "DATABASE_URL",
            problem: "names no user, so DATABASE_OWNER_URL cannot grant it".into(),
        })?;
        Ok((owner, Some(role)))
    }

    fn postgres_url(&self, var: &'static str) -> Result<String, ConfigError> {
        let url = self.required(var, "postgres://relayer@127.0.0.1:5432/relayer")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError {
                var,
                problem: "must start with postgres:// or postgresql://".into(),
            });
        }
        Ok(url)
    }
}

/// The role `relayer serve` connects as, from `DATABASE_URL`, for `relayer migrate` to grant.
#[derive(Debug)]
pub struct AppRole {
    pub name: String,
    /// Set on the role when migrate creates it, so the URL works as it is.
    pub password: Option<Secret>,
}

impl AppRole {
    /// The user and password of a `postgres://user[:password]@host/…` URL, percent-decoded.
    fn of_url(url: &str) -> Option<Self> {
        let rest = url.split_once("://")?.1;
        let authority = rest.split(['/', '?']).next()?;
        let (userinfo, _) = authority.rsplit_once('@')?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        };
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(decode(password)?)),
            None => (userinfo, None),
        };
        let name = decode(user)?;
        (!name.is_empty()).then(|| Self {
            name,
            password: password
                .filter(|p| !p.is_empty())
                .map(|p| Secret::new(p.into_bytes())),
        })
    }
}
