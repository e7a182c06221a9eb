//! The storage contract ([`crate::store::contract`]) on PostgreSQL, each test in a schema of its
//! own. Needs `SERMENT_TEST_DATABASE_URL` (`postgres://…`): without it the tests skip with a
//! message, and fail when `CI=true`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::str::FromStr as _;
use std::sync::Arc;

use sqlx::Connection as _;
use sqlx::postgres::PgConnectOptions;

#[path = "../sql/harness.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod harness;

use crate::store::contract::{Harness, meta_contract_tests};

/// The test database's URL, or `None` (skip) when it is not set outside CI.
pub(crate) fn test_database_url() -> Option<String> {
    match std::env::var("SERMENT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but SERMENT_TEST_DATABASE_URL is not set: PostgreSQL tests cannot run")
        }
        _ => {
            eprintln!(
                "skipped: set SERMENT_TEST_DATABASE_URL=postgres://… to run the PostgreSQL tests"
            );
            None
        }
    }
}

async fn open() -> Option<Box<dyn Harness>> {
    let url = test_database_url()?;
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    let schema = format!("serment_test_{}", hex::encode(r));
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    drop(admin);
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let log = Arc::new(
        serment_core::log::note::NoteSigner::new(
            "serment.log/test",
            serment_core::log::note::KEY_TYPE_ED25519,
            &r.repeat(4).try_into().unwrap(),
        )
        .unwrap(),
    );
    let db = super::Db::open_with(options, log).await.unwrap();
    Some(Box::new(harness::SqlHarness {
        db: Arc::new(db),
        drop: Box::new(move || {
            Box::pin(async move {
                let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            })
        }),
    }))
}

meta_contract_tests!(open);
