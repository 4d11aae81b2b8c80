//! Which chain a wallet is asked to send on, and where its transactions are shown.
//!
//! Both follow from the chain's genesis hash, never from `CLUSTER`: that may be an RPC URL with
//! a provider's key in it, which must not reach a public page, and which says nothing about the
//! network behind it.
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// The Wallet Standard chain the page asks wallets to send on (`solana:devnet`, ...).
    pub wallet_chain: String,
    /// An explorer's transaction page, `{signature}` to be replaced; `None` for a chain no
    /// public explorer can show (a local one) unless `EXPLORER_TX_URL` names one.
    pub explorer_tx: Option<String>,
}

const EXPLORER: &str = "https://explorer.solana.com/tx/{signature}";

/// The public clusters' genesis hashes, by their first 32 characters (CAIP-2's reference).
const NETWORKS: [(&str, &str, &str); 3] = [
    ("5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "solana:mainnet", ""),
    (
        "EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        "solana:devnet",
        "?cluster=devnet",
    ),
    (
        "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
        "solana:testnet",
        "?cluster=testnet",
    ),
];

impl ClusterView {
    /// `blockchain_id`: `solana:<genesis hash prefix>` of the chain, when it could be read;
    /// `explorer`: `EXPLORER_TX_URL`, which wins when set.
    pub fn new(blockchain_id: Option<&str>, explorer: Option<&str>) -> Self {
        let reference = blockchain_id.and_then(|id| id.strip_prefix("solana:"));
        let known = NETWORKS.iter().find(|(hash, ..)| Some(*hash) == reference);
        Self {
            wallet_chain: known
                .map_or("solana:localnet", |(_, chain, _)| chain)
                .to_owned(),
            explorer_tx: explorer
                .map(str::to_owned)
                .or_else(|| known.map(|(_, _, query)| format!("{EXPLORER}{query}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterView;

    #[test]
    fn the_genesis_hash_names_the_wallet_chain_and_the_explorer() {
        let view = |id, explorer| ClusterView::new(id, explorer);
        let explorer = |q: &str| Some(format!("https://explorer.solana.com/tx/{{signature}}{q}"));
        let mainnet = view(Some("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"), None);
        assert_eq!(mainnet.wallet_chain, "solana:mainnet");
        assert_eq!(mainnet.explorer_tx, explorer(""));
        let devnet = view(Some("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"), None);
        assert_eq!(
            (devnet.wallet_chain.as_str(), devnet.explorer_tx),
            ("solana:devnet", explorer("?cluster=devnet"))
        );
        let testnet = view(Some("solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z"), None);
        assert_eq!(testnet.explorer_tx, explorer("?cluster=testnet"));
        // A local validator or the in-process chain: no public explorer shows them.
        for id in [Some("solana:GH7ome3EiwEr7tu9JuTh2dpYWBJK3z69"), None] {
            let local = view(id, None);
            assert_eq!(local.wallet_chain, "solana:localnet");
            assert_eq!(local.explorer_tx, None);
        }
        let own = view(None, Some("https://explorer.example/tx/{signature}"));
        assert_eq!(
            own.explorer_tx.as_deref(),
            Some("https://explorer.example/tx/{signature}")
        );
    }
}
