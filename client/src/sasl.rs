//! SASL DIGEST-MD5 ([RFC 2831]) as ZooKeeper's servers speak it: quality of protection
//! `auth` only (no integrity or confidentiality layer), no authorization id (the server then
//! authorizes the user name itself, so the session's identity is `sasl:<user>`).
//!
//! The exchange runs over ZooKeeper's `sasl` request (opcode 102, one token each way) right
//! after every handshake, before any other request (see `session::handshake::sasl`):
//!
//! 1. the client sends an empty token (DIGEST-MD5 has no initial response);
//! 2. the server answers with its digest-challenge (realm, nonce, qop, charset, algorithm);
//! 3. the client sends its digest-response ([`DigestMd5::step`]);
//! 4. the server answers with `rspauth=...`, which the client checks: a server that does not
//!    know the password cannot produce it.
//!
//! ZooKeeper's server names itself `zookeeper/zk-sasl-md5` ([`PROTOCOL`], [`SERVER_NAME`]):
//! the digest-uri the response must carry.
//!
//! [RFC 2831]: https://www.rfc-editor.org/rfc/rfc2831

use md5::{Digest, Md5};

/// The SASL service (protocol) name ZooKeeper's server registers.
pub const PROTOCOL: &str = "zookeeper";
/// The server name ZooKeeper's server uses for DIGEST-MD5 (also its realm).
pub const SERVER_NAME: &str = "zk-sasl-md5";

/// User name and password for SASL DIGEST-MD5 (see `Builder::sasl_digest`).
#[derive(Clone)]
pub(crate) struct SaslCredentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Why a DIGEST-MD5 exchange failed on the client's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SaslError {
    /// The server's challenge could not be parsed.
    #[error("malformed DIGEST-MD5 challenge: {0}")]
    Malformed(String),
    /// The challenge lacks something the mechanism needs, or offers nothing usable.
    #[error("unusable DIGEST-MD5 challenge: {0}")]
    Unsupported(String),
    /// The server's `rspauth` does not prove it knows the password.
    #[error("the server's rspauth does not match: the server is not who it claims")]
    BadServerProof,
    /// The server sent a token after the exchange was complete.
    #[error("unexpected token after DIGEST-MD5 completed")]
    AlreadyComplete,
}

/// Where the exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Waiting for the digest-challenge.
    Challenge,
    /// The response was sent; waiting for `rspauth`, which must equal this (lowercase hex).
    ServerProof(String),
    /// Authenticated, and the server proved itself.
    Complete,
}

/// One client side of a DIGEST-MD5 exchange.
pub(crate) struct DigestMd5 {
    user: String,
    password: String,
    digest_uri: String,
    cnonce: String,
    stage: Stage,
}

impl DigestMd5 {
    /// A new exchange for `credentials` against service `protocol` on `server` (digest-uri
    /// `protocol/server`), with client nonce `cnonce` (at least 64 random bits, printable,
    /// without quotes or backslashes: hex is fine).
    pub(crate) fn new(
        credentials: &SaslCredentials,
        protocol: &str,
        server: &str,
        cnonce: String,
    ) -> DigestMd5 {
        DigestMd5 {
            user: credentials.user.clone(),
            password: credentials.password.clone(),
            digest_uri: format!("{protocol}/{server}"),
            cnonce,
            stage: Stage::Challenge,
        }
    }

    /// The first token the client sends: DIGEST-MD5 starts with the server, so it is empty.
    pub(crate) fn initial(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Whether the server has authenticated the client and proved itself.
    pub(crate) fn is_complete(&self) -> bool {
        self.stage == Stage::Complete
    }

    /// Takes the server's next token; returns the token to send back, if any.
    pub(crate) fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        match std::mem::replace(&mut self.stage, Stage::Challenge) {
            Stage::Challenge => {
                let (response, proof) = self.respond(token)?;
                self.stage = Stage::ServerProof(proof);
                Ok(Some(response))
            }
            Stage::ServerProof(expected) => {
                let fields = parse_directives(token)?;
                let got = find(&fields, "rspauth")
                    .ok_or_else(|| SaslError::Malformed("no rspauth".into()))?;
                if !got.eq_ignore_ascii_case(&expected) {
                    self.stage = Stage::ServerProof(expected);
                    return Err(SaslError::BadServerProof);
                }
                self.stage = Stage::Complete;
                Ok(None)
            }
            Stage::Complete => {
                self.stage = Stage::Complete;
                Err(SaslError::AlreadyComplete)
            }
        }
    }

    /// The digest-response to `challenge`, and the `rspauth` the server must answer with.
    fn respond(&self, challenge: &[u8]) -> Result<(Vec<u8>, String), SaslError> {
        let fields = parse_directives(challenge)?;
        let nonce = find(&fields, "nonce")
            .ok_or_else(|| SaslError::Unsupported("no nonce".into()))?
            .to_owned();
        match find(&fields, "algorithm") {
            Some(a) if a.eq_ignore_ascii_case("md5-sess") => {}
            Some(a) => return Err(SaslError::Unsupported(format!("algorithm {a:?}"))),
            None => return Err(SaslError::Unsupported("no algorithm".into())),
        }
        // qop defaults to "auth" (RFC 2831 2.1.1); it may list several, comma-separated.
        if let Some(qop) = find(&fields, "qop") {
            if !qop
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                return Err(SaslError::Unsupported(format!(
                    "qop {qop:?} does not offer auth"
                )));
            }
        }
        let utf8 = find(&fields, "charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
        let ascii = self.user.is_ascii() && self.password.is_ascii();
        if !(utf8 || ascii) {
            // Without charset=utf-8 the server reads names as ISO 8859-1; only ASCII agrees.
            return Err(SaslError::Unsupported(
                "non-ASCII credentials and no charset=utf-8".into(),
            ));
        }
        // The server may offer several realms; the first is its own.
        let realm = find(&fields, "realm").unwrap_or("").to_owned();
        let nc = "00000001";
        let (response, rspauth) = digests(
            &self.user,
            &realm,
            &self.password,
            &nonce,
            &self.cnonce,
            nc,
            &self.digest_uri,
        );
        let mut out = String::with_capacity(256);
        if utf8 {
            out.push_str("charset=utf-8,");
        }
        out.push_str(&format!("username=\"{}\",", quote(&self.user)));
        if find(&fields, "realm").is_some() {
            out.push_str(&format!("realm=\"{}\",", quote(&realm)));
        }
        out.push_str(&format!(
            "nonce=\"{}\",nc={nc},cnonce=\"{}\",digest-uri=\"{}\",maxbuf=65536,response={response},qop=auth",
            quote(&nonce),
            quote(&self.cnonce),
            quote(&self.digest_uri),
        ));
        Ok((out.into_bytes(), rspauth))
    }
}

/// The `response` value and the `rspauth` the server must send, both lowercase hex
/// (RFC 2831 2.1.2.1, algorithm md5-sess, qop auth, no authzid).
pub(crate) fn digests(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    nc: &str,
    digest_uri: &str,
) -> (String, String) {
    let secret = Md5::digest(format!("{user}:{realm}:{password}").as_bytes());
    let mut a1 = secret.to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    let ha1 = hex(&Md5::digest(&a1));
    let kd = |a2: &str| {
        let ha2 = hex(&Md5::digest(a2.as_bytes()));
        hex(&Md5::digest(
            format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes(),
        ))
    };
    (
        kd(&format!("AUTHENTICATE:{digest_uri}")),
        kd(&format!(":{digest_uri}")),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Escapes `"` and `\` for a quoted-string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The value of the first directive named `name` (case-insensitive).
pub(crate) fn find<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses `name=value, name="quoted, \"value\"", ...` (RFC 2831 `#(digest-challenge)`):
/// directives separated by commas and optional white space, values tokens or quoted strings
/// with backslash escapes. Empty list elements are skipped.
pub(crate) fn parse_directives(token: &[u8]) -> Result<Vec<(String, String)>, SaslError> {
    let text = std::str::from_utf8(token)
        .map_err(|_| SaslError::Malformed("challenge is not UTF-8".into()))?;
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(SaslError::Malformed(format!(
                "directive {name:?} has no value"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(SaslError::Malformed(format!(
                            "unterminated quoted value of {name:?}"
                        )))
                    }
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(SaslError::Malformed(format!(
                                "dangling escape in {name:?}"
                            )))
                        }
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some(',') => {}
            Some(c) => {
                return Err(SaslError::Malformed(format!(
                    "unexpected {c:?} after the value of {name:?}"
                )))
            }
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(user: &str, password: &str) -> SaslCredentials {
        SaslCredentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The worked example of RFC 2831 section 4 (an IMAP login).
    #[test]
    fn rfc_2831_example() {
        let mut mech = DigestMd5::new(
            &credentials("chris", "secret"),
            "imap",
            "elwood.innosoft.com",
            "OA6MHXh6VqTrRk".into(),
        );
        assert!(mech.initial().is_empty());
        let challenge = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;
        let response = mech.step(challenge).unwrap().unwrap();
        let response = String::from_utf8(response).unwrap();
        let fields = parse_directives(response.as_bytes()).unwrap();
        assert_eq!(
            find(&fields, "response"),
            Some("d388dad90d4bbd760a152321f2143af7")
        );
        assert_eq!(find(&fields, "username"), Some("chris"));
        assert_eq!(find(&fields, "realm"), Some("elwood.innosoft.com"));
        assert_eq!(
            find(&fields, "digest-uri"),
            Some("imap/elwood.innosoft.com")
        );
        assert_eq!(find(&fields, "nc"), Some("00000001"));
        assert_eq!(find(&fields, "qop"), Some("auth"));
        assert!(!mech.is_complete());
        assert_eq!(
            mech.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd")
                .unwrap(),
            None
        );
        assert!(mech.is_complete());
        assert_eq!(mech.step(b"rspauth=x"), Err(SaslError::AlreadyComplete));
    }

    #[test]
    fn a_wrong_server_proof_is_refused() {
        let mut mech = DigestMd5::new(
            &credentials("alice", "secret"),
            PROTOCOL,
            SERVER_NAME,
            "c".into(),
        );
        mech.step(b"realm=\"zk-sasl-md5\",nonce=\"n\",charset=utf-8,algorithm=md5-sess")
            .unwrap();
        assert_eq!(
            mech.step(b"rspauth=00000000000000000000000000000000"),
            Err(SaslError::BadServerProof)
        );
        assert!(!mech.is_complete());
    }

    #[test]
    fn unusable_challenges_are_refused() {
        let creds = credentials("alice", "secret");
        let fresh = || DigestMd5::new(&creds, PROTOCOL, SERVER_NAME, "c".into());
        for challenge in [
            &b"nonce=\"n\",algorithm=md5"[..],
            b"nonce=\"n\"",
            b"realm=\"r\",algorithm=md5-sess",
            b"nonce=\"n\",algorithm=md5-sess,qop=\"auth-conf\"",
            b"nonce=\"n,algorithm=md5-sess",
            b"nonce",
        ] {
            assert!(
                fresh().step(challenge).is_err(),
                "{}",
                String::from_utf8_lossy(challenge)
            );
        }
        let mut ok = fresh();
        assert!(ok
            .step(b" nonce = \"a\\\"b\" ,, qop=\"auth,auth-int\", algorithm=md5-sess ")
            .is_ok());
    }

    #[test]
    fn quoted_values_unescape_and_responses_escape() {
        let fields = parse_directives(br#"a="x\"y\\z",b=tok"#).unwrap();
        assert_eq!(find(&fields, "A"), Some("x\"y\\z"));
        assert_eq!(find(&fields, "b"), Some("tok"));
        let mut mech = DigestMd5::new(&credentials("a\"b", "p"), PROTOCOL, SERVER_NAME, "c".into());
        let response = mech
            .step(b"nonce=\"n\",algorithm=md5-sess,charset=utf-8")
            .unwrap()
            .unwrap();
        let fields = parse_directives(&response).unwrap();
        assert_eq!(find(&fields, "username"), Some("a\"b"));
        assert_eq!(find(&fields, "realm"), None);
    }

    #[test]
    fn credentials_do_not_print_the_password() {
        let s = format!("{:?}", credentials("alice", "hunter2"));
        assert!(s.contains("alice") && !s.contains("hunter2"), "{s}");
    }
}
