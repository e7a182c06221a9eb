//! The hostile server's storage, on either backend, and the tampering helpers over it.
//!
//! The backend follows the rule of serment-server's own tests (`tests/common`):
//!
//! | environment                                   | metadata                       | blobs                      |
//! |-----------------------------------------------|--------------------------------|----------------------------|
//! | `SERMENT_TEST_SERVER_BACKEND=sqlite`          | SQLite `data/serment.db`       | the directory `data/blobs` |
//! | `SERMENT_TEST_DATABASE_URL=postgres://…`      | PostgreSQL, a fresh schema     |                            |
//! | `SERMENT_TEST_S3` + `AWS_ENDPOINT_URL`        |                                | a fresh bucket (`s3://…`)  |
//! | neither                                       | SQLite                         | the directory              |
//!
//! With `CI=true` (and no `sqlite` override) a missing PostgreSQL or S3 server fails the test:
//! `.ci/run` starts both, and its second pass runs the same tests with the `sqlite` override.
//!
//! [`Storage`] plays the operator with write access to the database and the bucket: raw SQL on
//! either database (rows decoded the same way: bytes as stored, integers as decimal text), a
//! dump of every row, a snapshot and its restore, and the stored bytes of any blob (object,
//! file or inline row) read and rewritten.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::TryStreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use sqlx::{Column as _, Row as _, TypeInfo as _};

/// A row as column name → stored bytes (`None` for NULL): text and blobs as stored, integers as
/// their decimal text, booleans as `1`/`0`.
pub type SqlRow = Vec<(String, Option<Vec<u8>>)>;

/// Which database holds the server's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// SQLite `serment.db` in the data directory.
    Sqlite,
    /// PostgreSQL, in a schema of its own.
    Postgres,
}

#[derive(Debug)]
enum Db {
    /// The database file.
    Sqlite(PathBuf),
    /// A URL whose connections use the test's schema (`options=-c search_path=…`).
    Postgres { url: String, schema: String },
}

enum Blobs {
    /// The data directory (`blobs/<2 hex>/<id>`).
    Dir(PathBuf),
    /// A bucket and the key prefix under which the server keeps `blobs/<2 hex>/<id>`.
    S3 {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        url: String,
    },
}

/// A copy of every table, taken by [`Storage::snapshot`].
#[derive(Debug)]
pub enum DbSnapshot {
    /// A copy of the SQLite file (`VACUUM INTO`).
    Sqlite(PathBuf),
    /// A PostgreSQL schema holding a copy of each table.
    Postgres(String),
}

/// The storage of one hostile server: where its database and blobs are, and raw access to both.
pub struct Storage {
    db: Db,
    blobs: Blobs,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let blobs = match &self.blobs {
            Blobs::Dir(d) => d.display().to_string(),
            Blobs::S3 { url, .. } => url.clone(),
        };
        f.debug_struct("Storage")
            .field("db", &self.db)
            .field("blobs", &blobs)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn random_hex(n: usize) -> String {
    let mut r = vec![0u8; n];
    getrandom::fill(&mut r).expect("the OS random source");
    hex::encode(r)
}

impl Storage {
    /// Picks the backends from the environment (see the module documentation) for a server
    /// whose data directory is `data_dir`, creating a fresh PostgreSQL schema or bucket. Returns
    /// the storage and the server's `database_url` and `blob_url`.
    ///
    /// # Panics
    /// If a configured service cannot be reached, or (with `CI=true`) is not configured.
    pub async fn from_env(data_dir: &Path) -> (Storage, Option<String>, Option<String>) {
        if env("SERMENT_TEST_SERVER_BACKEND").as_deref() == Some("sqlite") {
            return (Storage::sqlite(data_dir), None, None);
        }
        let ci = std::env::var("CI").as_deref() == Ok("true");
        let pg = env("SERMENT_TEST_DATABASE_URL");
        let s3 = env("SERMENT_TEST_S3").and(env("AWS_ENDPOINT_URL"));
        assert!(
            !ci || (pg.is_some() && s3.is_some()),
            "CI=true but SERMENT_TEST_DATABASE_URL or SERMENT_TEST_S3/AWS_ENDPOINT_URL is not \
             set: .ci/run starts PostgreSQL and the S3 server for the hostile tests (or set \
             SERMENT_TEST_SERVER_BACKEND=sqlite)"
        );
        let (db, database_url) = match pg {
            Some(url) => {
                let (db, url) = Db::fresh_schema(&url).await;
                (db, Some(url))
            }
            None => (Db::Sqlite(data_dir.join("serment.db")), None),
        };
        let (blobs, blob_url) = match s3 {
            Some(endpoint) => {
                let (b, url) = Blobs::fresh_bucket(&endpoint).await;
                (b, Some(url))
            }
            None => (Blobs::Dir(data_dir.to_owned()), None),
        };
        (Storage { db, blobs }, database_url, blob_url)
    }

    /// SQLite and the blob directory of `data_dir`, whatever the environment.
    pub fn sqlite(data_dir: &Path) -> Storage {
        Storage {
            db: Db::Sqlite(data_dir.join("serment.db")),
            blobs: Blobs::Dir(data_dir.to_owned()),
        }
    }

    /// Which database this is (for the rare statement with no common spelling).
    pub fn db_kind(&self) -> DbKind {
        match self.db {
            Db::Sqlite(_) => DbKind::Sqlite,
            Db::Postgres { .. } => DbKind::Postgres,
        }
    }

    /// Whether blobs live in a bucket rather than the data directory.
    pub fn blobs_in_bucket(&self) -> bool {
        matches!(self.blobs, Blobs::S3 { .. })
    }

    /// A byte-string literal for SQL spliced by a test: `X'..'` on SQLite, a `bytea` on
    /// PostgreSQL.
    pub fn bytes_literal(&self, b: &[u8]) -> String {
        match self.db {
            Db::Sqlite(_) => format!("X'{}'", hex::encode(b)),
            Db::Postgres { .. } => format!("decode('{}', 'hex')", hex::encode(b)),
        }
    }

    /// Runs one query and returns every row (see [`SqlRow`]).
    ///
    /// # Panics
    /// On an SQL error, or a column of a type the decoder does not know.
    pub async fn sql(&self, query: &str) -> Vec<SqlRow> {
        // The hostile harness plays the attacker with write access to the database: the
        // statement is the test's own, on purpose.
        let q = sqlx::AssertSqlSafe(query.to_owned());
        match &self.db {
            Db::Sqlite(path) => {
                let pool = sqlite_pool(path).await;
                let rows = sqlx::query(q)
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{query}: {e}"));
                pool.close().await;
                rows.iter().map(sqlite_row).collect()
            }
            Db::Postgres { url, .. } => {
                let mut c = pg_connect(url).await;
                let rows = sqlx::query(q)
                    .fetch_all(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{query}: {e}"));
                rows.iter().map(|r| pg_row(r, query)).collect()
            }
        }
    }

    /// Executes one or more `;`-separated statements (the server keeps running). Returns the
    /// number of rows changed.
    ///
    /// # Panics
    /// On an SQL error.
    pub async fn sql_exec(&self, statement: &str) -> u64 {
        // As in `sql`: the attacker's own statements, on purpose.
        let q = sqlx::AssertSqlSafe(statement.to_owned());
        match &self.db {
            Db::Sqlite(path) => {
                let pool = sqlite_pool(path).await;
                let n = sqlx::raw_sql(q)
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"))
                    .rows_affected();
                pool.close().await;
                n
            }
            Db::Postgres { url, .. } => {
                let mut c = pg_connect(url).await;
                sqlx::raw_sql(q)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"))
                    .rows_affected()
            }
        }
    }

    /// The tables of the server's database (migration bookkeeping included).
    pub async fn tables(&self) -> Vec<String> {
        let q = match self.db {
            Db::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 ORDER BY name"
            }
            Db::Postgres { .. } => {
                "SELECT table_name::TEXT FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                 ORDER BY table_name"
            }
        };
        self.sql(q)
            .await
            .into_iter()
            .filter_map(|r| r.into_iter().next().and_then(|(_, v)| v))
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .collect()
    }

    /// Every row of every table, each as `table: col=bytes ...` (bytes as stored).
    pub async fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for t in self.tables().await {
            let select = match self.db {
                Db::Sqlite(_) => format!("SELECT * FROM \"{t}\""),
                // Every column as stored: bytea raw, anything else (timestamps included) as text.
                Db::Postgres { .. } => {
                    let cols: Vec<String> = self
                        .sql(&format!(
                            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
                             WHERE table_schema = current_schema() AND table_name = '{t}' \
                             ORDER BY ordinal_position"
                        ))
                        .await
                        .into_iter()
                        .map(|r| {
                            let s = |i: usize| {
                                let v = r.get(i).and_then(|(_, v)| v.clone()).unwrap_or_default();
                                String::from_utf8_lossy(&v).into_owned()
                            };
                            let (c, ty) = (s(0), s(1));
                            if ty == "bytea" {
                                format!("\"{c}\"")
                            } else {
                                format!("\"{c}\"::TEXT AS \"{c}\"")
                            }
                        })
                        .collect();
                    format!("SELECT {} FROM \"{t}\"", cols.join(", "))
                }
            };
            for row in self.sql(&select).await {
                let mut line = format!("{t}:").into_bytes();
                for (c, v) in row {
                    line.extend_from_slice(format!(" {c}=").as_bytes());
                    line.extend_from_slice(v.as_deref().unwrap_or(b"NULL"));
                }
                out.push((t.clone(), line));
            }
        }
        out
    }

    /// Copies every table (the operator's backup); `scratch` is a directory for a file copy.
    pub async fn snapshot(&self, scratch: &Path) -> DbSnapshot {
        match &self.db {
            Db::Sqlite(_) => {
                let path = scratch.join(format!("snapshot-{}.db", random_hex(4)));
                self.sql_exec(&format!("VACUUM INTO '{}'", path.display()))
                    .await;
                DbSnapshot::Sqlite(path)
            }
            Db::Postgres { schema, .. } => {
                let snap = format!("{schema}_snap_{}", random_hex(4));
                let mut sql = format!("CREATE SCHEMA {snap};");
                for t in self.tables().await {
                    sql.push_str(&format!(
                        " CREATE TABLE {snap}.\"{t}\" AS SELECT * FROM {schema}.\"{t}\";"
                    ));
                }
                self.sql_exec(&sql).await;
                DbSnapshot::Postgres(snap)
            }
        }
    }

    /// Puts every table back as it was in `snap`, in one transaction (the server keeps running).
    pub async fn restore(&self, snap: &DbSnapshot) {
        let tables = self.tables().await;
        let sql = match (snap, &self.db) {
            (DbSnapshot::Sqlite(path), Db::Sqlite(_)) => {
                let mut sql = format!(
                    "PRAGMA foreign_keys = OFF; ATTACH DATABASE '{}' AS snap; BEGIN;",
                    path.display()
                );
                for t in &tables {
                    sql.push_str(&format!(
                        " DELETE FROM main.\"{t}\"; INSERT INTO main.\"{t}\" SELECT * FROM snap.\"{t}\";"
                    ));
                }
                sql.push_str(" COMMIT; DETACH DATABASE snap;");
                sql
            }
            (DbSnapshot::Postgres(snap), Db::Postgres { schema, .. }) => {
                // Foreign keys cannot be switched off without superuser rights: empty every
                // table in one TRUNCATE, then refill referenced tables before referencing ones.
                let list: Vec<String> = tables.iter().map(|t| format!("\"{t}\"")).collect();
                let mut sql = format!("BEGIN; TRUNCATE {};", list.join(", "));
                for t in self.fk_order(&tables).await {
                    sql.push_str(&format!(
                        " INSERT INTO {schema}.\"{t}\" OVERRIDING SYSTEM VALUE \
                         SELECT * FROM {snap}.\"{t}\";"
                    ));
                }
                sql.push_str(" COMMIT;");
                sql
            }
            _ => panic!("a snapshot of another backend"),
        };
        self.sql_exec(&sql).await;
    }

    /// `tables` ordered so that each comes after the tables its foreign keys reference
    /// (PostgreSQL catalogue).
    async fn fk_order(&self, tables: &[String]) -> Vec<String> {
        let edges: Vec<(String, String)> = self
            .sql(
                "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent \
                 FROM pg_constraint WHERE contype = 'f' \
                 AND connamespace = current_schema()::regnamespace",
            )
            .await
            .into_iter()
            .map(|r| {
                let s = |i: usize| {
                    let v = r.get(i).and_then(|(_, v)| v.clone()).unwrap_or_default();
                    String::from_utf8_lossy(&v).trim_matches('"').to_owned()
                };
                (s(0), s(1))
            })
            .collect();
        let mut done: Vec<String> = Vec::new();
        while done.len() < tables.len() {
            let before = done.len();
            for t in tables {
                let ready = edges
                    .iter()
                    .filter(|(c, p)| c == t && p != t)
                    .all(|(_, p)| done.contains(p));
                if !done.contains(t) && ready {
                    done.push(t.clone());
                }
            }
            assert!(
                done.len() > before,
                "a cycle of foreign keys among {tables:?}"
            );
        }
        done
    }

    /// Where the server keeps the blob `id` in the directory or the bucket.
    fn blob_key(id: &str) -> [String; 3] {
        // The layout of serment-server's blob stores (store/blobs.rs, store/object.rs).
        [
            "blobs".to_owned(),
            id.get(..2).unwrap_or("xx").to_owned(),
            id.to_owned(),
        ]
    }

    /// The stored bytes of blob `id` in the directory or the bucket, if it is there.
    async fn object(&self, id: &str) -> Option<Vec<u8>> {
        match &self.blobs {
            Blobs::Dir(d) => {
                let p = Self::blob_key(id).iter().fold(d.clone(), |p, s| p.join(s));
                tokio::fs::read(p).await.ok()
            }
            Blobs::S3 { store, prefix, .. } => {
                let key = Self::blob_key(id)
                    .iter()
                    .fold(prefix.clone(), |p, s| p.join(s.as_str()));
                match store.get(&key).await {
                    Ok(r) => Some(r.bytes().await.expect("read the object").to_vec()),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(e) => panic!("get {key}: {e}"),
                }
            }
        }
    }

    /// Overwrites blob `id` in the directory or the bucket; `false` if it is not there.
    async fn set_object(&self, id: &str, bytes: &[u8]) -> bool {
        if self.object(id).await.is_none() {
            return false;
        }
        match &self.blobs {
            Blobs::Dir(d) => {
                let p = Self::blob_key(id).iter().fold(d.clone(), |p, s| p.join(s));
                tokio::fs::write(p, bytes)
                    .await
                    .expect("write the blob file");
            }
            Blobs::S3 { store, prefix, .. } => {
                let key = Self::blob_key(id)
                    .iter()
                    .fold(prefix.clone(), |p, s| p.join(s.as_str()));
                store
                    .put(&key, PutPayload::from(bytes.to_vec()))
                    .await
                    .expect("overwrite the object");
            }
        }
        true
    }

    /// The stored bytes of a blob: its object (directory or bucket), or its row in the database
    /// when it was committed inline (PROTOCOL.md §8.3).
    ///
    /// # Panics
    /// If the blob is stored in neither place.
    pub async fn blob_bytes(&self, id: &str) -> Vec<u8> {
        if let Some(b) = self.object(id).await {
            return b;
        }
        let rows = self
            .sql(&format!(
                "SELECT data FROM blobs WHERE blob_id = '{}' AND data IS NOT NULL",
                hex_only(id)
            ))
            .await;
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .and_then(|(_, v)| v)
            .unwrap_or_else(|| panic!("blob {id} is stored nowhere"))
    }

    /// Replaces the stored bytes of a blob where [`Storage::blob_bytes`] finds them.
    ///
    /// # Panics
    /// If the blob is stored in neither place or the write fails.
    pub async fn set_blob_bytes(&self, id: &str, bytes: &[u8]) {
        if self.set_object(id, bytes).await {
            return;
        }
        let n = self
            .sql_exec(&format!(
                "UPDATE blobs SET data = {} WHERE blob_id = '{}' AND data IS NOT NULL",
                self.bytes_literal(bytes),
                hex_only(id)
            ))
            .await;
        assert_eq!(n, 1, "blob {id} is stored nowhere");
    }

    /// Every stored blob as (blob id, bytes): objects (directory or bucket) and inline rows.
    pub async fn all_blobs(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        match &self.blobs {
            Blobs::Dir(d) => {
                for shard in std::fs::read_dir(d.join("blobs"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    for f in std::fs::read_dir(shard.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                    {
                        if let Ok(b) = std::fs::read(f.path()) {
                            out.push((f.file_name().to_string_lossy().into_owned(), b));
                        }
                    }
                }
            }
            Blobs::S3 { store, prefix, .. } => {
                let under = prefix.clone().join("blobs");
                let metas: Vec<_> = store
                    .list(Some(&under))
                    .try_collect()
                    .await
                    .expect("list the bucket");
                for m in metas {
                    let r = store.get(&m.location).await.expect("get an object");
                    let b = r.bytes().await.expect("read an object").to_vec();
                    let id = m.location.filename().unwrap_or_default().to_owned();
                    out.push((id, b));
                }
            }
        }
        for row in self
            .sql("SELECT blob_id, data FROM blobs WHERE data IS NOT NULL")
            .await
        {
            let mut cols = row.into_iter();
            if let (Some((_, Some(id))), Some((_, Some(data)))) = (cols.next(), cols.next()) {
                out.push((String::from_utf8_lossy(&id).into_owned(), data));
            }
        }
        out
    }
}

impl Db {
    /// Creates a fresh schema in the database of `url`; returns it and a URL whose connections
    /// use it.
    async fn fresh_schema(url: &str) -> (Db, String) {
        let schema = format!("serment_h_{}", random_hex(8));
        let mut c = pg_connect(url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("create schema {schema} at SERMENT_TEST_DATABASE_URL: {e}"));
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        (
            Db::Postgres {
                url: url.clone(),
                schema,
            },
            url,
        )
    }
}

impl Blobs {
    /// Creates a fresh bucket on the S3 test server at `endpoint`; returns it and the server's
    /// `blob_url` for it.
    async fn fresh_bucket(endpoint: &str) -> (Blobs, String) {
        let bucket = format!("serment-hostile-{}", random_hex(6));
        // reqwest is built without a crypto provider of its own; ring is installed as the
        // process default (as the server does when it opens its own client). rustls
        // deprecates ring for its lack of post-quantum key exchange; ring is the project's one
        // backend (serment-server's tls.rs), and this client speaks plain HTTP on loopback.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Bucket creation is outside object_store's API; the test server accepts an unsigned PUT.
        let status = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the S3 test server at {endpoint} answers: {e}"))
            .status();
        assert!(status.is_success(), "create bucket {bucket}: {status}");
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .expect("an S3 client from the AWS_* environment");
        let url = format!("s3://{bucket}/hostile");
        (
            Blobs::S3 {
                store: Arc::new(store),
                prefix: ObjectPath::from("hostile"),
                url: url.clone(),
            },
            url,
        )
    }
}

async fn sqlite_pool(path: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the SQLite database")
}

async fn pg_connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to SERMENT_TEST_DATABASE_URL: {e}"))
}

fn sqlite_row(r: &sqlx::sqlite::SqliteRow) -> SqlRow {
    r.columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let v: Option<Vec<u8>> = r.try_get(i).unwrap_or_else(|_| {
                r.try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .map(String::into_bytes)
                    .or_else(|| {
                        r.try_get::<Option<i64>, _>(i)
                            .ok()
                            .flatten()
                            .map(|n| n.to_string().into_bytes())
                    })
            });
            (c.name().to_owned(), v)
        })
        .collect()
}

fn pg_row(r: &sqlx::postgres::PgRow, query: &str) -> SqlRow {
    r.columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = c.type_info().name().to_owned();
            let v: Option<Vec<u8>> = match ty.as_str() {
                "BYTEA" => r.try_get(i).ok().flatten(),
                "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => r
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .map(String::into_bytes),
                "INT8" => int(r.try_get::<Option<i64>, _>(i).ok().flatten()),
                "INT4" => int(r.try_get::<Option<i32>, _>(i).ok().flatten()),
                "INT2" => int(r.try_get::<Option<i16>, _>(i).ok().flatten()),
                "BOOL" => r
                    .try_get::<Option<bool>, _>(i)
                    .ok()
                    .flatten()
                    .map(|b| if b { b"1".to_vec() } else { b"0".to_vec() }),
                other => panic!("{query}: column {} of type {other} (cast it)", c.name()),
            };
            (c.name().to_owned(), v)
        })
        .collect()
}

fn int(n: Option<impl ToString>) -> Option<Vec<u8>> {
    n.map(|n| n.to_string().into_bytes())
}

/// Keeps only hex digits (ids spliced into test SQL).
fn hex_only(s: &str) -> String {
    s.chars().filter(char::is_ascii_hexdigit).collect()
}
