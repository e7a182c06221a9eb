//! The server is the adversary (issue 3).
//!
//! This test-only crate (never published) holds:
//!
//! - [`harness`]: a real in-process [`serment_server::Server`] behind an intercepting proxy on
//!   loopback. A test scripts a malicious server with it: rewrite any response, replay an earlier
//!   one, serve different views to different devices, and edit the database and the stored blobs
//!   directly, on SQLite + a directory or PostgreSQL + S3 ([`storage`]). Tests drive the real
//!   [`serment_client::vault::Session`] through the proxy.
//! - [`forge`]: what a key-holding adversary (a malicious co-tenant, a compromised author device)
//!   can build with the public core API: sealed documents with arbitrary framed plaintext.
//! - [`fuzz`]: the body of every cargo-fuzz target in `fuzz/`, so that the saved corpora replay as
//!   ordinary tests (`tests/fuzz_corpus.rs`) and CI needs no nightly toolchain.
//!
//! The tests in `tests/` are named after the attack classes of `docs/THREAT_MODEL.md`.

#![forbid(unsafe_code)]

pub mod forge;
pub mod fuzz;
pub mod harness;
pub mod storage;
