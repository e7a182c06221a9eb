//! AES-256-GCM (NIST SP 800-38D), the AEAD of the STREAM chunks (PROTOCOL.md §5) and of the
//! keystore (§9), from one backend per target (PROTOCOL.md §2.1):
//!
//! - native targets: `ring` (BoringSSL's assembly; AES-NI/PCLMULQDQ or ARMv8 crypto when present);
//! - `wasm32`: RustCrypto's `aes-gcm` (constant-time bitsliced software AES and POLYVAL), because
//!   `ring`'s C code needs clang to build for wasm32 and its `getrandom` 0.2 needs the `js` feature.
//!
//! Both sides expose the subset of `ring::aead` this crate uses, with the same names, so the
//! callers ([`crate::stream`], [`crate::keystore`]) have one code path. The test vectors
//! (`tests/vectors/`) pass on both (`serment-wasm`'s `wasm_vectors` test runs them under Node.js).

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

#[cfg(target_arch = "wasm32")]
pub(crate) use rustcrypto::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

#[cfg(target_arch = "wasm32")]
mod rustcrypto {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::{Aes256Gcm, KeyInit};

    /// The authentication tag's length in bytes.
    const TAG_LEN: usize = 16;

    /// The algorithm marker (as `ring::aead::AES_256_GCM`).
    pub(crate) struct Algorithm;

    /// AES-256-GCM, 96-bit nonces, 128-bit tags.
    pub(crate) static AES_256_GCM: Algorithm = Algorithm;

    /// A failed operation (bad key length, bad tag, input too long); carries nothing, like
    /// `ring::error::Unspecified`.
    #[derive(Debug)]
    pub(crate) struct Unspecified;

    /// A key before use (as `ring::aead::UnboundKey`). The expanded key is zeroized on drop
    /// (`aes-gcm`'s `zeroize` feature).
    pub(crate) struct UnboundKey(Aes256Gcm);

    impl UnboundKey {
        /// `key` must be 32 bytes.
        pub(crate) fn new(_: &'static Algorithm, key: &[u8]) -> Result<Self, Unspecified> {
            Aes256Gcm::new_from_slice(key)
                .map(UnboundKey)
                .map_err(|_| Unspecified)
        }
    }

    /// A 96-bit nonce, unique per key by construction at the call site.
    pub(crate) struct Nonce([u8; 12]);

    impl Nonce {
        /// As `ring::aead::Nonce::assume_unique_for_key`.
        pub(crate) fn assume_unique_for_key(n: [u8; 12]) -> Self {
            Nonce(n)
        }
    }

    /// Associated data.
    pub(crate) struct Aad<A>(A);

    impl<A: AsRef<[u8]>> Aad<A> {
        /// As `ring::aead::Aad::from`.
        pub(crate) fn from(a: A) -> Self {
            Aad(a)
        }
    }

    /// A tag returned by [`LessSafeKey::seal_in_place_separate_tag`].
    pub(crate) struct Tag([u8; TAG_LEN]);

    impl AsRef<[u8]> for Tag {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    /// A key in use (as `ring::aead::LessSafeKey`).
    pub(crate) struct LessSafeKey(Aes256Gcm);

    impl LessSafeKey {
        pub(crate) fn new(k: UnboundKey) -> Self {
            LessSafeKey(k.0)
        }

        /// Encrypts `in_out` in place and returns the tag.
        pub(crate) fn seal_in_place_separate_tag<A: AsRef<[u8]>>(
            &self,
            nonce: Nonce,
            aad: Aad<A>,
            in_out: &mut [u8],
        ) -> Result<Tag, Unspecified> {
            let tag = self
                .0
                .encrypt_inout_detached(&nonce.0.into(), aad.0.as_ref(), in_out.into())
                .map_err(|_| Unspecified)?;
            Ok(Tag(tag.into()))
        }

        /// Encrypts `in_out` in place and appends the tag.
        pub(crate) fn seal_in_place_append_tag<A: AsRef<[u8]>>(
            &self,
            nonce: Nonce,
            aad: Aad<A>,
            in_out: &mut Vec<u8>,
        ) -> Result<(), Unspecified> {
            let tag = self.seal_in_place_separate_tag(nonce, aad, in_out)?;
            in_out.extend_from_slice(tag.as_ref());
            Ok(())
        }

        /// Decrypts `in_out` (ciphertext || tag) in place; returns the plaintext, its prefix.
        /// On failure the content of `in_out` is unspecified (as with `ring`).
        pub(crate) fn open_in_place<'a, A: AsRef<[u8]>>(
            &self,
            nonce: Nonce,
            aad: Aad<A>,
            in_out: &'a mut [u8],
        ) -> Result<&'a mut [u8], Unspecified> {
            let plain = in_out.len().checked_sub(TAG_LEN).ok_or(Unspecified)?;
            let (data, tag) = in_out.split_at_mut(plain);
            let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| Unspecified)?;
            self.0
                .decrypt_inout_detached(&nonce.0.into(), aad.0.as_ref(), data.into(), &tag)
                .map_err(|_| Unspecified)?;
            Ok(data)
        }
    }
}
