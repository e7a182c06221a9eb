//! The integration tests of `serment-cli`, one module per former `tests/*.rs` file, in one test
//! binary: one link and one compile of the shared helpers instead of one per file (CI time).
//! Run one module with `cargo test -p serment-cli --test cli MODULE::`.
#![allow(unreachable_pub)]

#[allow(clippy::indexing_slicing)] // as every file that included it allowed
mod common;

mod accept_rollback;
mod agent;
mod backup;
mod backup_memory;
mod browser;
mod demo;
mod devices;
mod erasure;
mod exit_codes;
mod fhir_strict;
mod first_hour;
mod json_contract;
mod object_storage;
mod offline;
mod offline_replica;
mod pins_and_withheld;
mod provisional;
mod ransomware_drill;
mod readme_walkthrough;
mod recovery;
mod restore;
mod restore_loss_review;
mod restore_own_writes;
mod scale_out;
mod serve;
mod tls;
mod walkthrough;
mod web_verify;
