//! The per-request token: `v1.<realm>.<unix ms>.<nonce>.<mac>`, where
//! `mac = HMAC-SHA256(secret, "primacy-auth-v1" 0 realm 0 ms 0 nonce)`, the
//! nonce is 16 random bytes and both binary parts are lower-case hex.
//!
//! A verifier accepts a token once: its HMAC must match, its timestamp be
//! within [`MAX_CLOCK_SKEW`] of the verifier's clock, and its nonce not have
//! been accepted before (nonces are remembered until their timestamp leaves
//! the window, so a recorded token cannot be replayed later). The realm
//! keeps a token made for the peer port from opening the RPC port.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

use super::secret::ClusterSecret;

/// The request metadata key carrying the token.
pub const METADATA_KEY: &str = "x-primacy-auth";

/// How far a token's timestamp may be from the verifier's clock. The
/// masters', workers' and clients' clocks must agree this well (NTP). It
/// also bounds how long a nonce is remembered (until its timestamp is this
/// far in the past), so it bounds the replay memory.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Nonces remembered at most (about 60 bytes each). Only callers holding
/// the secret add entries; past this, requests are answered "busy"
/// (UNAVAILABLE, which clients retry) until old nonces expire, so a burst
/// beyond it slows callers down instead of weakening replay protection.
pub const MAX_REMEMBERED: usize = 2_000_000;

/// Why [`Verifier::check`] did not accept a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The token is missing, malformed, forged, stale or replayed. The text
    /// is safe to show the caller: it reveals nothing about the secret.
    Refused(String),
    /// The token may be fine, but too many recent nonces are remembered to
    /// take another now; retrying later helps.
    Busy,
}

impl CheckError {
    /// The reason as text.
    pub fn reason(&self) -> &str {
        match self {
            CheckError::Refused(why) => why,
            CheckError::Busy => "too many recent requests to remember; retry later",
        }
    }
}

/// The accepted nonces whose timestamps are still inside the window, and
/// the order to forget them in.
#[derive(Debug, Default)]
struct Seen {
    nonces: HashSet<u128>,
    /// (time after which the nonce can no longer pass the clock check, nonce),
    /// in acceptance order: nearly time order, and a nonce kept a little
    /// longer than needed behind a later one costs only memory.
    expiry: VecDeque<(u64, u128)>,
}

const DOMAIN: &[u8] = b"primacy-auth-v1";

/// Which port a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// The embedded journal's peer port.
    Peer,
    /// The master's RPC port.
    Rpc,
}

impl Realm {
    /// The realm's name in a token.
    pub fn as_str(self) -> &'static str {
        match self {
            Realm::Peer => "peer",
            Realm::Rpc => "rpc",
        }
    }
}

fn mac(secret: &ClusterSecret, realm: Realm, millis: u64, nonce: &str) -> Hmac<Sha256> {
    let mut m = secret.mac();
    m.update(DOMAIN);
    m.update(&[0]);
    m.update(realm.as_str().as_bytes());
    m.update(&[0]);
    m.update(millis.to_string().as_bytes());
    m.update(&[0]);
    m.update(nonce.as_bytes());
    m
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A fresh token for one request to `realm` (new nonce, current time).
pub fn make(secret: &ClusterSecret, realm: Realm) -> String {
    make_at(
        secret,
        realm,
        now_millis(),
        &hex(&rand::random::<[u8; 16]>()),
    )
}

/// A token with a given time and nonce (tests forge old and reused ones).
pub fn make_at(secret: &ClusterSecret, realm: Realm, millis: u64, nonce: &str) -> String {
    let tag = hex(&mac(secret, realm, millis, nonce).finalize().into_bytes());
    format!("v1.{}.{millis}.{nonce}.{tag}", realm.as_str())
}

/// Checks tokens for one realm and remembers the nonces it accepted.
///
/// Guarantees: [`Verifier::check`] accepts a token only if it was made with
/// the same secret for the same realm, within [`MAX_CLOCK_SKEW`] of now,
/// and its nonce was never accepted before by this verifier.
#[derive(Debug)]
pub struct Verifier {
    secret: ClusterSecret,
    realm: Realm,
    seen: Mutex<Seen>,
}

impl Verifier {
    /// A verifier of `realm` tokens made with `secret`.
    pub fn new(secret: ClusterSecret, realm: Realm) -> Self {
        Verifier {
            secret,
            realm,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// The realm this verifier checks.
    pub fn realm(&self) -> Realm {
        self.realm
    }

    /// Accepts `token` or says why not.
    pub fn check(&self, token: Option<&str>) -> Result<(), CheckError> {
        self.check_at(token, now_millis())
    }

    /// [`Verifier::check`] with a given clock.
    pub fn check_at(&self, token: Option<&str>, now: u64) -> Result<(), CheckError> {
        let refused = |why: &str| CheckError::Refused(why.to_string());
        let malformed = || refused("the request's credentials are malformed");
        let token = token.ok_or_else(|| refused("the request carried no credentials"))?;
        let parts: Vec<&str> = token.split('.').collect();
        let [version, realm, millis, nonce, tag] = parts[..] else {
            return Err(malformed());
        };
        if version != "v1" {
            return Err(CheckError::Refused(format!(
                "unknown credential version {version:?}"
            )));
        }
        if realm != self.realm.as_str() {
            return Err(CheckError::Refused(format!(
                "the credentials were made for the {realm:?} port, not the {:?} port",
                self.realm.as_str()
            )));
        }
        let millis: u64 = millis.parse().map_err(|_| malformed())?;
        let nonce_bits = match unhex(nonce) {
            Some(b) if nonce.len() == 32 => {
                u128::from_be_bytes(b.try_into().map_err(|_| malformed())?)
            }
            _ => return Err(malformed()),
        };
        let tag = unhex(tag).ok_or_else(malformed)?;
        mac(&self.secret, self.realm, millis, nonce)
            .verify_slice(&tag)
            .map_err(|_| refused("the request's credentials were made with a different secret"))?;
        let skew = MAX_CLOCK_SKEW.as_millis() as u64;
        if now.abs_diff(millis) > skew {
            return Err(CheckError::Refused(format!(
                "the request's credentials are {}s away from this server's clock (at most {}s \
                 are accepted): check the clocks (NTP)",
                now.abs_diff(millis) / 1000,
                skew / 1000
            )));
        }
        let mut seen = self.seen.lock();
        while let Some(&(expires, old)) = seen.expiry.front() {
            if expires >= now {
                break;
            }
            seen.expiry.pop_front();
            seen.nonces.remove(&old);
        }
        if seen.nonces.len() >= MAX_REMEMBERED {
            return Err(CheckError::Busy);
        }
        if !seen.nonces.insert(nonce_bits) {
            return Err(refused(
                "the request's credentials were already used (a replay)",
            ));
        }
        seen.expiry
            .push_back((millis.saturating_add(skew), nonce_bits));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> ClusterSecret {
        ClusterSecret::from_bytes(s.as_bytes(), "test").unwrap()
    }

    #[test]
    fn accepts_once_and_refuses_forgeries() {
        let s = secret("the-cluster-secret-1");
        let v = Verifier::new(s.clone(), Realm::Peer);
        let t = make(&s, Realm::Peer);
        v.check(Some(&t)).unwrap();
        assert!(v.check(Some(&t)).unwrap_err().reason().contains("replay"));
        assert!(v
            .check(None)
            .unwrap_err()
            .reason()
            .contains("no credentials"));
        let other = make(&secret("another-secret-123"), Realm::Peer);
        assert!(v
            .check(Some(&other))
            .unwrap_err()
            .reason()
            .contains("different secret"));
        let rpc = make(&s, Realm::Rpc);
        assert!(v
            .check(Some(&rpc))
            .unwrap_err()
            .reason()
            .contains("\"rpc\" port"));
        for bad in [
            "",
            "v1",
            "v1.peer.x.y.z",
            "v2.peer.1.2.3",
            "v1.peer.1.zz.00",
            "v1.peer.1.00112233445566778899aabbccddeeff.zz",
        ] {
            assert!(v.check(Some(bad)).is_err(), "{bad}");
        }
        // A valid token with its timestamp changed fails the HMAC.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        parts[2] = (parts[2].parse::<u64>().unwrap() + 1).to_string();
        parts[3] = "00112233445566778899aabbccddeeff".into();
        assert!(v
            .check(Some(&parts.join(".")))
            .unwrap_err()
            .reason()
            .contains("different secret"));
    }

    #[test]
    fn clock_window() {
        let s = secret("the-cluster-secret-1");
        let v = Verifier::new(s.clone(), Realm::Rpc);
        let now = 10_000_000_000u64;
        let skew = MAX_CLOCK_SKEW.as_millis() as u64;
        let old = make_at(
            &s,
            Realm::Rpc,
            now - skew - 1,
            "00112233445566778899aabbccddeeff",
        );
        assert!(v
            .check_at(Some(&old), now)
            .unwrap_err()
            .reason()
            .contains("NTP"));
        let edge = make_at(
            &s,
            Realm::Rpc,
            now - skew,
            "00112233445566778899aabbccddeef0",
        );
        v.check_at(Some(&edge), now).unwrap();
        assert!(v.check_at(Some(&edge), now).is_err());
        // Once its timestamp left the window, the nonce is forgotten (and
        // the token refused by the clock check instead).
        let later = now + 2 * skew + 1;
        let fresh = make_at(&s, Realm::Rpc, later, "00112233445566778899aabbccddeef1");
        v.check_at(Some(&fresh), later).unwrap();
        assert_eq!(
            v.seen.lock().nonces.len(),
            1,
            "expired nonces were forgotten"
        );
        assert!(v
            .check_at(Some(&edge), later)
            .unwrap_err()
            .reason()
            .contains("NTP"));
    }
}
