//! Which chain a wallet is asked to send on, and where its transactions are shown.
use serde::Serialize;

#[derive(Clone, Serialize)]
pub struct ClusterView {
    /// The Wallet Standard chain the page asks wallets to send on (`solana:devnet`, ...).
    pub wallet_chain: String,
    /// An explorer's transaction page, `{signature}` to be replaced; `None` for a chain no
    /// explorer can show (the in-process one).
    pub explorer_tx: Option<String>,
}

impl ClusterView {
    /// From `CLUSTER`: a moniker or an RPC URL. `None`: the in-process chain.
    pub fn for_cluster(cluster: Option<&str>) -> Self {
        const EXPLORER: &str = "https://explorer.solana.com/tx/{signature}";
        let (wallet_chain, explorer_tx) = match cluster {
            None => ("solana:localnet", None),
            Some("mainnet-beta" | "mainnet") => ("solana:mainnet", Some(EXPLORER.to_owned())),
            Some(c @ ("devnet" | "testnet")) => (
                if c == "devnet" {
                    "solana:devnet"
                } else {
                    "solana:testnet"
                },
                Some(format!("{EXPLORER}?cluster={c}")),
            ),
            Some(other) => {
                let url = if other == "localnet" {
                    "http://127.0.0.1:8899"
                } else {
                    other
                };
                let encoded =
                    percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC);
                (
                    "solana:localnet",
                    Some(format!("{EXPLORER}?cluster=custom&customUrl={encoded}")),
                )
            }
        };
        Self {
            wallet_chain: wallet_chain.to_owned(),
            explorer_tx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterView;

    #[test]
    fn each_cluster_gets_its_wallet_chain_and_explorer() {
        let cases = [
            (None, "solana:localnet", None),
            (
                Some("mainnet-beta"),
                "solana:mainnet",
                Some("https://explorer.solana.com/tx/{signature}"),
            ),
            (
                Some("devnet"),
                "solana:devnet",
                Some("https://explorer.solana.com/tx/{signature}?cluster=devnet"),
            ),
            (
                Some("localnet"),
                "solana:localnet",
                Some("https://explorer.solana.com/tx/{signature}?cluster=custom&customUrl=http%3A%2F%2F127%2E0%2E0%2E1%3A8899"),
            ),
            (
                Some("https://rpc.example.com/?key=a&b"),
                "solana:localnet",
                Some("https://explorer.solana.com/tx/{signature}?cluster=custom&customUrl=https%3A%2F%2Frpc%2Eexample%2Ecom%2F%3Fkey%3Da%26b"),
            ),
        ];
        for (cluster, chain, explorer) in cases {
            let view = ClusterView::for_cluster(cluster);
            assert_eq!(view.wallet_chain, chain, "{cluster:?}");
            assert_eq!(view.explorer_tx.as_deref(), explorer, "{cluster:?}");
        }
    }
}
