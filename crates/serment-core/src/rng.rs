//! Randomness from the operating system (`getrandom`), never a user-space generator we wrote.

use crate::error::{Error, Result};

/// Fills `buf` with random bytes from the operating system.
///
/// # Errors
/// [`Error::Rng`] if the system generator fails.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Rng)
}

/// A `rand_core` cryptographic RNG backed by the operating system, for APIs that take one
/// (`ed25519-dalek`, `hpke`). A failing system generator aborts the operation with a panic inside
/// `UnwrapErr`; there is no safe way to continue generating keys without randomness.
pub fn os_rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}
