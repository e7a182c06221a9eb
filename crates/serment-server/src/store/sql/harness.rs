//! The contract suite's hooks ([`crate::store::contract::Harness`]) for a SQL backend, written
//! once (included by each backend's tests; `super::super` is the backend).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serment_core::log::tree::Hash;
use sqlx::AssertSqlSafe;

use super::super::{Db, commit_batch};
use crate::store::batcher::{BatchResult, BatchWriter as _};
use crate::store::contract::Harness;
use crate::store::log_service::LogTx as _;
use crate::store::{CommitJob, MetaStore, StoreError};

/// Drops what a test created (files, a schema), after the store is closed.
pub(crate) type Cleanup = Box<
    dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// A backend under test and how to drop it.
pub(crate) struct SqlHarness {
    pub(crate) db: Arc<Db>,
    pub(crate) drop: Cleanup,
}

#[async_trait::async_trait]
impl Harness for SqlHarness {
    fn meta(&self) -> Arc<dyn MetaStore> {
        self.db.clone()
    }

    async fn batch(&self, jobs: &[CommitJob]) -> BatchResult {
        commit_batch::SqlBatch {
            writer: self.db.writer.clone(),
            signer: Arc::clone(&self.db.log),
        }
        .write_batch(jobs)
        .await
    }

    async fn count(&self, table: &str) -> i64 {
        // Test harness: `table` is one of our own table names, never input.
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn delete_doc_rows(&self, table: &str, doc: &str) {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE doc_id = $1"
        )))
        .bind(doc)
        .execute(&self.db.writer)
        .await
        .unwrap();
    }

    async fn publish_stale(&self, previous: u64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let size = tx.log_size().await?;
        tx.publish_checkpoint(previous, size + 1, &Hash::default(), "forged")
            .await
    }

    async fn cleanup(self: Box<Self>) {
        self.db.close().await;
        (self.drop)().await;
    }
}
