//! Access control: the identities a connection holds, the `digest` and `ip` schemes, ACL
//! expansion on create/setACL (`fixupACL`) and the permission check (`checkACL`), rule for rule
//! as ZooKeeper's `PrepRequestProcessor`, `ZooKeeperServer.checkACL`,
//! `DigestAuthenticationProvider` and `IPAuthenticationProvider`.

use std::net::IpAddr;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use zkit::proto::{Acl, ErrorCode, Id, Perms};

/// `user:password` -> `user:base64(sha1(user:password))`, the id a `digest` auth yields.
pub fn digest_id(credential: &str) -> String {
    let user = credential.split(':').next().unwrap_or("");
    let hash = Sha1::digest(credential.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Java's `String.split(":")`: trailing empty strings removed.
fn java_split_colon(s: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(':').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts == [""] {
        parts.clear();
    }
    parts
}

/// Whether `id` is a well-formed id of `scheme` (`AuthenticationProvider.isValid`).
fn is_valid(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => java_split_colon(id).len() == 2,
        "ip" => parse_ip_expr(id).is_some(),
        _ => false,
    }
}

/// Parses an `ip` ACL expression: an address with an optional `/bits` mask.
fn parse_ip_expr(expr: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (expr, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

fn ip_matches(client: &str, expr: &str) -> bool {
    let (Some((net, bits)), Ok(client)) = (parse_ip_expr(expr), client.parse::<IpAddr>()) else {
        return false;
    };
    match (net, client) {
        (IpAddr::V4(n), IpAddr::V4(c)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(c) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(c)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(c) & mask
        }
        _ => false,
    }
}

/// Whether an identity of this scheme counts as authenticated (`isAuthenticated`): `auth` ACL
/// entries expand only to those.
fn is_authenticated(scheme: &str) -> bool {
    scheme == "digest"
}

/// The identities held by one connection: its `ip`, then whatever addAuth added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    ids: Vec<Id>,
}

impl AuthInfo {
    /// Identities as they are (a write forwarded by another ensemble member).
    pub fn from_ids(ids: Vec<Id>) -> AuthInfo {
        AuthInfo { ids }
    }

    /// The identities of a new connection from `peer` (its `ip` id, as ZooKeeper adds it).
    pub fn for_peer(peer: IpAddr) -> AuthInfo {
        AuthInfo {
            ids: vec![Id {
                scheme: "ip".to_owned(),
                id: peer.to_string(),
            }],
        }
    }

    /// The identities, in the order they were added.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    /// Handles an addAuth packet: `Ok` with the identity added, `AuthFailed` for a scheme
    /// that has no provider here (ZooKeeper then closes the connection).
    pub fn add(&mut self, scheme: &str, auth: &[u8]) -> ErrorCode {
        match scheme {
            "digest" => {
                let Ok(credential) = std::str::from_utf8(auth) else {
                    return ErrorCode::AuthFailed;
                };
                self.push(Id {
                    scheme: "digest".to_owned(),
                    id: digest_id(credential),
                });
                ErrorCode::Ok
            }
            _ => ErrorCode::AuthFailed,
        }
    }

    fn push(&mut self, id: Id) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    /// The user name a whoAmI reply shows for an identity (`getUserName`).
    pub fn user_name(id: &Id) -> String {
        match id.scheme.as_str() {
            "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
            _ => id.id.clone(),
        }
    }
}

/// Validates and expands an ACL for create or setACL (`fixupACL`): duplicates removed, `auth`
/// entries replaced by the caller's authenticated identities, unknown schemes and malformed
/// ids refused with `InvalidAcl`, as is an empty list.
pub fn fixup_acl(auth: &AuthInfo, acl: &[Acl]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(a.clone());
        } else if id.scheme == "auth" {
            let mut valid = false;
            for held in auth.ids() {
                if is_authenticated(&held.scheme) {
                    valid = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: held.clone(),
                    });
                }
            }
            if !valid {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid(&id.scheme, &id.id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// Whether `auth` may do `perm` on a node with `acl` (`checkACL`): an entry grants it when it
/// shares a bit with `perm` and names `world:anyone` or an identity the caller holds. An empty
/// ACL grants everything.
pub fn check_acl(auth: &AuthInfo, acl: &[Acl], perm: Perms) -> Result<(), ErrorCode> {
    if acl.is_empty() {
        return Ok(());
    }
    for a in acl {
        if a.perms.0 & perm.0 == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return Ok(());
        }
        for held in auth.ids() {
            if held.scheme != a.id.scheme {
                continue;
            }
            let matches = match held.scheme.as_str() {
                "digest" => held.id == a.id.id,
                "ip" => ip_matches(&held.id, &a.id.id),
                _ => false,
            };
            if matches {
                return Ok(());
            }
        }
    }
    Err(ErrorCode::NoAuth)
}

/// A copy of `acl` with digest hashes hidden (`user:x`), as getACL shows it to a caller
/// without ADMIN permission.
pub fn redact(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl::new(a.perms, "digest", &format!("{user}:x"))
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // DigestAuthenticationProvider.generateDigest("super:test")
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn fixup_rules() {
        let none = AuthInfo::for_peer("127.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])));
        assert_eq!(fixup_acl(&none, &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup_acl(&none, &Acl::creator_all()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&none, &[Acl::new(Perms::ALL, "world", "nobody")]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&none, &[Acl::new(Perms::ALL, "digest", "user:")]),
            Err(ErrorCode::InvalidAcl)
        );
        let mut me = none.clone();
        assert_eq!(me.add("digest", b"bob:pw"), ErrorCode::Ok);
        let expanded = fixup_acl(&me, &Acl::creator_all()).unwrap_or_default();
        assert_eq!(
            expanded,
            vec![Acl::new(Perms::ALL, "digest", &digest_id("bob:pw"))]
        );
        assert_eq!(check_acl(&me, &expanded, Perms::WRITE), Ok(()));
        assert_eq!(
            check_acl(&none, &expanded, Perms::WRITE),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn ip_scheme() {
        let peer = AuthInfo::for_peer(IpAddr::from([10, 1, 2, 3]));
        assert!(check_acl(
            &peer,
            &[Acl::new(Perms::READ, "ip", "10.1.0.0/16")],
            Perms::READ
        )
        .is_ok());
        assert!(check_acl(
            &peer,
            &[Acl::new(Perms::READ, "ip", "10.2.0.0/16")],
            Perms::READ
        )
        .is_err());
    }
}
