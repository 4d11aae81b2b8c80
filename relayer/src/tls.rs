//! TLS terminated by the relayer itself (rustls), for deployments without a proxy in front, and
//! client certificates for the operator API (mTLS).
//!
//! One listener serves everything, so the handshake cannot know which route a client wants: with
//! `TLS_CLIENT_CA_FILE` the server asks every client for a certificate, rejects any that does not
//! chain to that CA, and lets clients without one through. The operator API then refuses requests
//! whose connection presented no valid certificate (see `auth::Operator`); webhooks, Actions and
//! health stay reachable by carriers and wallets, which have none.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig,
};
use tokio::net::TcpStream;
use tokio_rustls::{server::TlsStream, TlsAcceptor};

/// A client has this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `TLS_CERT_FILE`, `TLS_KEY_FILE` and optionally `TLS_CLIENT_CA_FILE` (PEM files).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Operator API clients must present a certificate issued by this CA.
    pub client_ca_file: Option<PathBuf>,
}

/// Who is at the other end of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client presented a certificate that chains to `TLS_CLIENT_CA_FILE`.
    pub client_certified: bool,
}

fn certificates(path: &Path, var: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "{var} {}: not a readable PEM certificate file",
                path.display()
            )
        })?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{var} {}: holds no certificate",
        path.display()
    );
    Ok(certs)
}

/// The rustls server configuration; every error names the variable to fix.
pub fn acceptor(config: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = certificates(&config.cert_file, "TLS_CERT_FILE")?;
    let key = PrivateKeyDer::from_pem_file(&config.key_file).with_context(|| {
        format!(
            "TLS_KEY_FILE {}: not a readable PEM private key",
            config.key_file.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &config.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "TLS_CLIENT_CA_FILE")? {
                roots
                    .add(cert)
                    .context("TLS_CLIENT_CA_FILE: a certificate is not a usable CA")?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .context("TLS_CLIENT_CA_FILE: cannot build a client verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .context("TLS_CERT_FILE and TLS_KEY_FILE do not form a usable key pair")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The TLS handshake of one connection, within `HANDSHAKE_TIMEOUT`; who it is from, and whether
/// the client presented a certificate that chains to `TLS_CLIENT_CA_FILE`. `None` when it failed.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
) -> Option<(TlsStream<TcpStream>, Peer)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let client_certified = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            Some((
                tls,
                Peer {
                    addr,
                    client_certified,
                },
            ))
        }
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%addr, "TLS handshake timed out");
            None
        }
    }
}
