//! Weak KDF parameters: a keystore whose Argon2id parameters are below OWASP's floor (one
//! iteration, tiny memory, no lanes) or missing is refused even when it is otherwise perfectly
//! valid, and the client never falls back to a default (PROTOCOL.md §9). The server never supplies
//! KDF parameters in this protocol (no server-side key backup): the only channel is a keystore
//! file an attacker swapped, as tested here.

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serment_client::ClientError;
use serment_client::keystore::Keystore;
use serment_core::Error;
use serment_core::keystore::KdfParams;
use serment_hostile::harness::Hostile;
use zeroize::Zeroizing;

/// A correctly encrypted keystore file with parameters `(m, t, p)`: what the client would open
/// if it trusted the file's parameters.
fn keystore_with(payload: &[u8], pass: &str, m: u32, t: u32, p: u32) -> Vec<u8> {
    let salt = [7u8; 16];
    let nonce = [9u8; 12];
    let mut out = Vec::new();
    out.extend_from_slice(b"SRMK");
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&m.to_be_bytes());
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&p.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let mut key = [0u8; 32];
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(m, t, p.max(1), Some(32)).unwrap(),
    )
    .hash_password_into(pass.as_bytes(), &salt, &mut key)
    .unwrap();
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let mut body = payload.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&out),
        &mut body,
    )
    .unwrap();
    out.extend_from_slice(&body);
    out
}

#[test]
fn weak_kdf_parameters_below_the_floor_are_refused_never_downgraded() {
    let h = Hostile::new();
    drop(h.party("alice"));
    let path = h.keystore_path("alice");
    let pass = "passphrase of alice";
    let good = std::fs::read(&path).unwrap();
    let payload = serment_core::keystore::open(pass.as_bytes(), &good).unwrap();
    // The control: the same construction at the floor opens.
    std::fs::write(&path, keystore_with(&payload, pass, 19456, 2, 1)).unwrap();
    Keystore::open(&path, Zeroizing::new(pass.to_owned())).unwrap();
    for (m, t, p, what) in [
        (19456, 1, 1, "one iteration"),
        (8, 2, 1, "8 KiB of memory"),
        (8, 1, 1, "both"),
        (19455, 2, 1, "one KiB under the floor"),
    ] {
        let weak = keystore_with(&payload, pass, m, t, p);
        std::fs::write(&path, &weak).unwrap();
        let e = Keystore::open(&path, Zeroizing::new(pass.to_owned())).unwrap_err();
        assert!(
            matches!(e, ClientError::Keystore(Error::WeakKdf { .. })),
            "{what}: {e:?}"
        );
        // Refused, not repaired: the file is left as it was.
        assert_eq!(std::fs::read(&path).unwrap(), weak, "{what}");
    }
    // No lanes: Argon2 itself cannot run it, and the client refuses it before trying.
    let mut no_lanes = keystore_with(&payload, pass, 19456, 2, 1);
    no_lanes[16..20].copy_from_slice(&0u32.to_be_bytes());
    std::fs::write(&path, &no_lanes).unwrap();
    let e = Keystore::open(&path, Zeroizing::new(pass.to_owned())).unwrap_err();
    assert!(
        matches!(e, ClientError::Keystore(Error::WeakKdf { .. })),
        "{e:?}"
    );
    // Above the caps (a memory or time bomb) is refused as well.
    for (at, v) in [(8usize, u32::MAX), (12, 1000), (16, 1000)] {
        let mut b = good.clone();
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        std::fs::write(&path, &b).unwrap();
        let e = Keystore::open(&path, Zeroizing::new(pass.to_owned())).unwrap_err();
        assert!(
            matches!(e, ClientError::Keystore(Error::WeakKdf { .. })),
            "cap at {at}: {e:?}"
        );
    }
}

#[test]
fn weak_kdf_parameters_missing_are_refused() {
    let h = Hostile::new();
    drop(h.party("alice"));
    let path = h.keystore_path("alice");
    let good = std::fs::read(&path).unwrap();
    // The file cut inside or just before the parameters: no default is assumed.
    for cut in [8usize, 10, 12, 16, 20] {
        std::fs::write(&path, &good[..cut]).unwrap();
        let e = Keystore::open(&path, Zeroizing::new("passphrase of alice".into())).unwrap_err();
        assert!(
            matches!(e, ClientError::Keystore(Error::Truncated { .. })),
            "cut {cut}: {e:?}"
        );
    }
    // All-zero parameters.
    let mut b = good.clone();
    b[8..20].fill(0);
    std::fs::write(&path, &b).unwrap();
    let e = Keystore::open(&path, Zeroizing::new("passphrase of alice".into())).unwrap_err();
    assert!(
        matches!(e, ClientError::Keystore(Error::WeakKdf { .. })),
        "{e:?}"
    );
}

#[test]
fn weak_kdf_parameters_cannot_be_chosen_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    for p in [
        KdfParams {
            m_cost_kib: 19456,
            t_cost: 1,
            p_cost: 1,
        },
        KdfParams {
            m_cost_kib: 1024,
            t_cost: 2,
            p_cost: 1,
        },
        KdfParams {
            m_cost_kib: 19456,
            t_cost: 2,
            p_cost: 0,
        },
    ] {
        let path = dir.path().join("k.srmk");
        let e =
            Keystore::create(&path, Zeroizing::new("p".into()), "alice", "Alice", p).unwrap_err();
        assert!(
            matches!(e, ClientError::Keystore(Error::WeakKdf { .. })),
            "{p:?}: {e:?}"
        );
        assert!(!path.exists());
    }
}
