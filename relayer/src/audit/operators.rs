//! Operators in the audit log: public entries carry a commitment to the operator who acted, never
//! the operator's name; `operator_commitments` (readable through the operator API) opens it.
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

/// What a commitment hashes: a domain, the nonce and the operator's token subject.
pub fn commitment_of(nonce: &[u8; 16], operator: &str) -> String {
    let preimage = format!(
        "openclaw-escrow operator\n{}\n{operator}",
        hex::encode(nonce)
    );
    hex::encode(Sha256::digest(preimage.as_bytes()))
}

/// A fresh commitment to `operator`, stored so that it can be opened; goes in the caller's
/// transaction, before its audit append.
pub async fn commit(conn: &mut PgConnection, operator: &str) -> sqlx::Result<String> {
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let commitment = commitment_of(&nonce, operator);
    sqlx::query(
        "INSERT INTO operator_commitments (commitment, operator, nonce) VALUES ($1, $2, $3)",
    )
    .bind(&commitment)
    .bind(operator)
    .bind(nonce.to_vec())
    .execute(conn)
    .await?;
    Ok(commitment)
}

/// The operator and nonce behind a commitment.
pub async fn open(pool: &PgPool, commitment: &str) -> sqlx::Result<Option<(String, Vec<u8>)>> {
    sqlx::query_as("SELECT operator, nonce FROM operator_commitments WHERE commitment = $1")
        .bind(commitment)
        .fetch_optional(pool)
        .await
}
