//! Where to connect and whose key signs, by the Solana CLI's conventions: `--url` and
//! `--keypair` win, then the Solana CLI config file (`~/.config/solana/cli/config.yml`, or
//! `--config`), then the Solana CLI's defaults.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The two settings this CLI shares with `solana config get`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SolanaConfig {
    pub json_rpc_url: Option<String>,
    pub keypair_path: Option<String>,
}

pub fn default_config_path() -> Option<PathBuf> {
    home().map(|h| h.join(".config/solana/cli/config.yml"))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

impl SolanaConfig {
    /// Reads the config file; a missing default file is an empty config, a missing file named
    /// with `--config` is an error.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => match default_config_path() {
                Some(p) => (p, false),
                None => return Ok(Self::default()),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read config {}", path.display())),
        }
    }

    /// The file `solana config set` writes is a flat YAML map of scalars; this reads the two
    /// keys used here and ignores the rest.
    pub fn parse(text: &str) -> Self {
        let mut config = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().trim_matches(|c| c == '\'' || c == '"');
            if value.is_empty() {
                continue;
            }
            match key.trim() {
                "json_rpc_url" => config.json_rpc_url = Some(value.to_owned()),
                "keypair_path" => config.keypair_path = Some(value.to_owned()),
                _ => {}
            }
        }
        config
    }
}

/// The Solana CLI's monikers (`-um`, `-ud`, `-ul`...) and their full names, or a URL.
pub fn rpc_url(moniker_or_url: &str) -> anyhow::Result<String> {
    Ok(match moniker_or_url {
        "m" | "mainnet-beta" => "https://api.mainnet-beta.solana.com".into(),
        "d" | "devnet" => "https://api.devnet.solana.com".into(),
        "t" | "testnet" => "https://api.testnet.solana.com".into(),
        "l" | "localhost" | "localnet" => "http://127.0.0.1:8899".into(),
        url if url.starts_with("http://") || url.starts_with("https://") => url.into(),
        other => bail!(
            "--url {other:?}: use an http(s) URL or one of mainnet-beta (m), devnet (d), testnet (t), localhost (l)"
        ),
    })
}

/// Expands a leading `~/`, as the Solana CLI does for keypair paths.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), home()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// The RPC URL and keypair path to use, after flags, config file and defaults.
pub fn resolve(
    url: Option<&str>,
    keypair: Option<&str>,
    config: &SolanaConfig,
) -> anyhow::Result<(String, PathBuf)> {
    let url = rpc_url(
        url.or(config.json_rpc_url.as_deref())
            .unwrap_or("mainnet-beta"),
    )?;
    let keypair = keypair
        .or(config.keypair_path.as_deref())
        .map(expand_home)
        .or_else(|| home().map(|h| h.join(".config/solana/id.json")))
        .context("no --keypair, no keypair_path in the config, and no HOME for the default")?;
    Ok((url, keypair))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_solana_config_set_writes() {
        let text = "---\njson_rpc_url: \"http://127.0.0.1:8899\"\nwebsocket_url: \"\"\n\
                    keypair_path: /home/me/.config/solana/id.json\naddress_labels:\n  \
                    \"11111111111111111111111111111111\": System Program\ncommitment: confirmed\n";
        assert_eq!(
            SolanaConfig::parse(text),
            SolanaConfig {
                json_rpc_url: Some("http://127.0.0.1:8899".into()),
                keypair_path: Some("/home/me/.config/solana/id.json".into()),
            }
        );
    }

    #[test]
    fn flags_win_over_the_config_and_monikers_expand() {
        let config = SolanaConfig {
            json_rpc_url: Some("https://api.devnet.solana.com".into()),
            keypair_path: Some("/k.json".into()),
        };
        let (url, key) = resolve(Some("l"), Some("/other.json"), &config).unwrap();
        assert_eq!(
            (url.as_str(), key),
            ("http://127.0.0.1:8899", "/other.json".into())
        );
        let (url, key) = resolve(None, None, &config).unwrap();
        assert_eq!(
            (url.as_str(), key),
            ("https://api.devnet.solana.com", "/k.json".into())
        );
        assert!(rpc_url("ftp://x").is_err());
    }
}
