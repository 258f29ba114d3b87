//! Verification challenge codes: generation (the caller's CSPRNG), HMAC at
//! rest, constant-time comparison, finding codes in text, the owner's
//! yes/no, and masking addresses for staff.
//!
//! Pure. Placeholder pieces; the verification issue replaces them.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Code alphabet without 0/O and 1/I.
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Draws a code shown as `XXXX-XXXX`.
pub fn generate_code(rng: &mut impl Rng) -> String {
    let chars: String = (0..8)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// HMAC (hex) of a code bound to its case, as kept in the store.
pub fn code_mac(key: &[u8], case_id: &str, code: &str) -> String {
    let normalized: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(case_id.as_bytes());
    mac.update(b":");
    mac.update(normalized.to_ascii_uppercase().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares a candidate against the stored MAC in constant time.
pub fn code_matches(key: &[u8], case_id: &str, candidate: &str, stored_mac: &str) -> bool {
    let computed = code_mac(key, case_id, candidate);
    computed.as_bytes().ct_eq(stored_mac.as_bytes()).into()
}

/// Code-shaped tokens in a text, normalised to `XXXX-XXXX`.
pub fn find_codes(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || ",.;:()[]<>\"'".contains(c))
        .filter_map(|w| {
            let alnum: String = w.chars().filter(|c| *c != '-').collect::<String>().to_ascii_uppercase();
            (alnum.len() == 8 && alnum.bytes().all(|b| CODE_ALPHABET.contains(&b)))
                .then(|| format!("{}-{}", &alnum[..4], &alnum[4..]))
        })
        .collect()
}

/// What the owner of the linked mailbox said on the challenge thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAnswer {
    /// "Yes, that was me."
    Confirmed,
    /// "No, I did not ask for this."
    Denied,
    /// Neither, or both.
    Unclear,
}

/// Reads the owner's yes or no from the new text of a challenge reply.
pub fn owner_answer(new_text: &str) -> OwnerAnswer {
    let lower = new_text.trim().to_lowercase();
    if lower.starts_with("no") || lower.contains("wasn't me") || lower.contains("was not me") {
        OwnerAnswer::Denied
    } else if lower.starts_with("yes") {
        OwnerAnswer::Confirmed
    } else {
        OwnerAnswer::Unclear
    }
}

/// Masks an address for staff display: `j***@e***.org`.
pub fn mask_address(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return "***".into();
    };
    let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let tld = if tld.is_empty() { String::new() } else { format!(".{tld}") };
    format!("{}***@{}***{}", first(local), first(host), tld)
}
