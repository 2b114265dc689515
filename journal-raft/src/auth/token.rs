//! The per-request token: `v1.<realm>.<unix ms>.<nonce>.<mac>`, where
//! `mac = HMAC-SHA256(secret, "primacy-auth-v1" 0 realm 0 ms 0 nonce)`, the
//! nonce is 16 random bytes and both binary parts are lower-case hex.
//!
//! A verifier accepts a token once: its HMAC must match, its timestamp be
//! within [`MAX_CLOCK_SKEW`] of the verifier's clock, and its nonce not have
//! been accepted before (nonces are remembered until their timestamp leaves
//! the window, so a recorded token cannot be replayed later). The realm
//! keeps a token made for the peer port from opening the RPC port.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

use super::secret::ClusterSecret;

/// The request metadata key carrying the token.
pub const METADATA_KEY: &str = "x-primacy-auth";

/// How far a token's timestamp may be from the verifier's clock. The
/// masters', workers' and clients' clocks must agree this well (NTP).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Nonces remembered at most; past this (only callers holding the secret
/// can add entries) new tokens are refused until old ones expire.
const MAX_REMEMBERED: usize = 1 << 20;

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
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
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
    /// nonce → the time (ms) after which it can no longer pass the clock check.
    seen: Mutex<HashMap<String, u64>>,
}

impl Verifier {
    /// A verifier of `realm` tokens made with `secret`.
    pub fn new(secret: ClusterSecret, realm: Realm) -> Self {
        Verifier {
            secret,
            realm,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The realm this verifier checks.
    pub fn realm(&self) -> Realm {
        self.realm
    }

    /// Accepts `token` or says why not (the reason is safe to show the
    /// caller: it reveals nothing about the secret).
    pub fn check(&self, token: Option<&str>) -> Result<(), String> {
        self.check_at(token, now_millis())
    }

    /// [`Verifier::check`] with a given clock.
    pub fn check_at(&self, token: Option<&str>, now: u64) -> Result<(), String> {
        let token = token.ok_or_else(|| "the request carried no credentials".to_string())?;
        let parts: Vec<&str> = token.split('.').collect();
        let [version, realm, millis, nonce, tag] = parts[..] else {
            return Err("the request's credentials are malformed".to_string());
        };
        if version != "v1" {
            return Err(format!("unknown credential version {version:?}"));
        }
        if realm != self.realm.as_str() {
            return Err(format!(
                "the credentials were made for the {realm:?} port, not the {:?} port",
                self.realm.as_str()
            ));
        }
        let millis: u64 = millis
            .parse()
            .map_err(|_| "the request's credentials are malformed".to_string())?;
        if nonce.len() != 32 || unhex(nonce).is_none() {
            return Err("the request's credentials are malformed".to_string());
        }
        let tag =
            unhex(tag).ok_or_else(|| "the request's credentials are malformed".to_string())?;
        mac(&self.secret, self.realm, millis, nonce)
            .verify_slice(&tag)
            .map_err(|_| {
                "the request's credentials were made with a different secret".to_string()
            })?;
        let skew = MAX_CLOCK_SKEW.as_millis() as u64;
        if now.abs_diff(millis) > skew {
            return Err(format!(
                "the request's credentials are {}s away from this server's clock (at most {}s \
                 are accepted): check the clocks (NTP)",
                now.abs_diff(millis) / 1000,
                skew / 1000
            ));
        }
        let mut seen = self.seen.lock();
        if seen.len() >= MAX_REMEMBERED / 2 {
            seen.retain(|_, expires| *expires >= now);
        }
        if seen.len() >= MAX_REMEMBERED {
            return Err("too many recent credentials to remember; retry later".to_string());
        }
        if seen.insert(nonce.to_string(), millis + skew).is_some() {
            return Err("the request's credentials were already used (a replay)".to_string());
        }
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
        assert!(v.check(Some(&t)).unwrap_err().contains("replay"));
        assert!(v.check(None).unwrap_err().contains("no credentials"));
        let other = make(&secret("another-secret-123"), Realm::Peer);
        assert!(v
            .check(Some(&other))
            .unwrap_err()
            .contains("different secret"));
        let rpc = make(&s, Realm::Rpc);
        assert!(v.check(Some(&rpc)).unwrap_err().contains("\"rpc\" port"));
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
        assert!(v.check_at(Some(&old), now).unwrap_err().contains("NTP"));
        let edge = make_at(
            &s,
            Realm::Rpc,
            now - skew,
            "00112233445566778899aabbccddeef0",
        );
        v.check_at(Some(&edge), now).unwrap();
        assert!(v.check_at(Some(&edge), now).is_err());
    }
}
