//! The hostile-server suite: one module per attack class of `docs/THREAT_MODEL.md`, each driving
//! the real client (`serment_client::vault::Session`) through the intercepting proxy of
//! `serment_hostile::harness` in front of a real server.
//!
//! Classes whose feature does not exist yet have `#[ignore = "OPEN: ..."]` tests that state the
//! check they will need; `cargo test -- --ignored` lists them. None is skipped silently.
#![allow(
    missing_docs,
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

mod care_team_devices;
mod care_teams;
mod chunk_attacks;
mod cross_context_replay;
mod devices;
mod downgrade;
mod erasure;
mod injection_and_context_binding;
mod key_substitution;
mod metadata_leakage;
mod metadata_tampering;
mod nonce_key_reuse;
mod offline_replica;
mod parser_confusion;
mod pq_downgrade;
mod pq_rewrap;
mod provisional;
mod recovery;
mod revocation_not_enforced;
mod rollback_freshness_forks;
mod social_recovery;
mod social_recovery_limits;
mod social_recovery_views;
mod stolen_token;
mod storage_tampering;
mod unauthenticated_key_material;
mod unsigned_membership_and_device_changes;
mod weak_kdf_parameters;
