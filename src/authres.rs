//! Who is staff: a staff From address counts only with a passing
//! `Authentication-Results` from a trusted authserv-id (RFC 8601).
//!
//! Pure: reads only the headers of an [`Inbound`].
//!
//! # Which `Authentication-Results` header counts
//! Anyone can write an `Authentication-Results` header into the mail they
//! send, naming our MTA's authserv-id and claiming `dmarc=pass`. Our MTA
//! prepends its own header above everything the sender wrote, so only one
//! header counts, the trusted MTA's stamp (RFC 8601 §5):
//!
//! * the topmost header whose authserv-id is one of
//!   [`StaffPolicy::trusted_authserv_ids`],
//! * and only if at most [`StaffPolicy::trusted_received_hops`] `Received`
//!   headers lie above it.
//!
//! Every other header with a trusted id is ignored. One that names the
//! stamp's own authserv-id below it cannot have been written by that MTA
//! (it stamps once), so it came with the message: the mail is treated as
//! an attempted forgery even when the stamp itself passes. An MTA that
//! writes one header per milter (OpenDKIM, then OpenDMARC) looks the same;
//! give each milter its own authserv-id, list them all, and accept the
//! method of the topmost one (`accept = ["dmarc"]`).
//!
//! The default of 0 hops is the strict rule: the stamp must sit above the
//! first `Received` header. When the trusted MTA writes its results below
//! its own `Received` header (some milter setups), or a delivery agent
//! behind it adds one (Dovecot LMTP), the operator raises the number to the
//! count of `Received` headers that *our own* infrastructure adds from the
//! trusted MTA onwards, and no further (`doctor --staff-probe` measures
//! it): with more, a message the MTA did not stamp at all could carry a
//! header of the sender's that counts. RFC 8601 §5 also asks the border MTA
//! to delete headers that claim its authserv-id; this check does not rely
//! on it.
//!
//! # What passes
//! With the From domain `D`, any one of the accepted methods (all three by
//! default, see [`AuthMethod`]):
//! * `dmarc=pass` with `header.from=D`;
//! * `dkim=pass` whose `header.d` (or the domain of `header.i`) is `D` or a
//!   parent of `D` (relaxed alignment, RFC 7489 §3.1.1);
//! * `spf=pass` whose `smtp.mailfrom` domain is `D` or a parent of `D`.
//!
//! Parent domains stand in for DMARC's organisational domain without the
//! Public Suffix List: a parent must have two labels or more and must not
//! look like a public suffix such as `co.uk`.

use serde::{Deserialize, Serialize};

use crate::parse::Inbound;
use crate::signature::{SignatureVerdict, StaffVerify};

/// The staff part of the config that decides trust.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffPolicy {
    /// Staff addresses, lower-cased.
    pub addresses: Vec<String>,
    /// Staff domains: every address there is staff.
    pub domains: Vec<String>,
    /// authserv-ids of the MTAs whose Authentication-Results we trust.
    pub trusted_authserv_ids: Vec<String>,
    /// Which passing results prove a staff sender; empty means all of
    /// [`AuthMethod::ALL`] (DMARC, aligned DKIM, aligned SPF).
    #[serde(default)]
    pub accept: Vec<AuthMethod>,
    /// How many `Received` headers may lie above a trusted
    /// `Authentication-Results` header for it to count (see the module
    /// documentation). 0, the default, is the strict rule.
    #[serde(default)]
    pub trusted_received_hops: usize,
    /// Which evidence counts: the trusted header (default) or recoverydesk's
    /// own DKIM check, which ignores every Authentication-Results header.
    #[serde(default)]
    pub verify: StaffVerify,
}

impl StaffPolicy {
    /// True when the address is configured as staff (before authentication).
    pub fn is_staff_address(&self, address: &str) -> bool {
        let address = address.to_ascii_lowercase();
        self.addresses
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&address))
            || address
                .rsplit_once('@')
                .is_some_and(|(_, d)| self.domains.iter().any(|sd| sd.eq_ignore_ascii_case(d)))
    }

    /// The accepted methods, with the empty list meaning all of them.
    pub fn accepted_methods(&self) -> &[AuthMethod] {
        if self.accept.is_empty() {
            &AuthMethod::ALL
        } else {
            &self.accept
        }
    }

    fn trusts(&self, authserv_id: &str) -> bool {
        self.trusted_authserv_ids
            .iter()
            .any(|t| t.trim().eq_ignore_ascii_case(authserv_id))
    }
}

/// A kind of authentication result that can prove a staff sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `dmarc=pass` for the From domain.
    Dmarc,
    /// `dkim=pass` with a signing domain aligned with the From domain.
    DkimAligned,
    /// `spf=pass` with a MAIL FROM domain aligned with the From domain.
    SpfAligned,
}

impl AuthMethod {
    /// Every method, the default policy.
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::Dmarc,
        AuthMethod::DkimAligned,
        AuthMethod::SpfAligned,
    ];

    /// The config spelling (`dmarc`, `dkim_aligned`, `spf_aligned`).
    pub fn code(self) -> &'static str {
        match self {
            AuthMethod::Dmarc => "dmarc",
            AuthMethod::DkimAligned => "dkim_aligned",
            AuthMethod::SpfAligned => "spf_aligned",
        }
    }
}

/// Whether a message comes from staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StaffTrust {
    /// Not a staff address.
    NotStaff,
    /// A staff address with a passing, trusted authentication result.
    Staff {
        /// The staff member's address.
        address: String,
    },
    /// A staff address without trusted proof: treat as an outsider, alert.
    Forged {
        /// The claimed staff address.
        address: String,
        /// Why it was not trusted.
        why: String,
    },
}

/// Authentication results for display to staff (trust signals).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSummary {
    /// DMARC result from a trusted authserv-id, e.g. `pass`.
    pub dmarc: Option<String>,
    /// DKIM result and its domain, e.g. `pass (example.org)`.
    pub dkim: Option<String>,
    /// SPF result and its domain.
    pub spf: Option<String>,
    /// authserv-ids of results that were ignored because they are not
    /// trusted or not stamped on the way in (a possible forgery signal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// One `method=result` of an `Authentication-Results` header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodResult {
    /// The method, lower-cased, without a version (`dkim`, `spf`, `dmarc`).
    pub method: String,
    /// The result, lower-cased (`pass`, `fail`, `softfail`, `none`, ...).
    pub result: String,
    /// The `reason=` text, when given.
    pub reason: Option<String>,
    /// Properties as (lower-case `ptype.property`, value), e.g.
    /// (`header.d`, `example.org`).
    pub properties: Vec<(String, String)>,
}

impl MethodResult {
    /// The value of a property such as `header.d`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `dkim=pass header.d=example.org`, for explanations.
    fn describe(&self) -> String {
        let mut text = format!("{}={}", self.method, self.result);
        for key in ["header.from", "header.d", "header.i", "smtp.mailfrom"] {
            if let Some(value) = self.property(key) {
                text.push_str(&format!(" {key}={value}"));
            }
        }
        text
    }
}

/// One parsed `Authentication-Results` header (RFC 8601 §2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResults {
    /// Who stamped it, lower-cased.
    pub authserv_id: String,
    /// The results; empty for `none`.
    pub results: Vec<MethodResult>,
}

/// Parses one `Authentication-Results` value. Comments in parentheses are
/// dropped; `None` when there is no authserv-id. Never panics.
pub fn parse_authentication_results(value: &str) -> Option<AuthResults> {
    let cleaned = strip_comments(value);
    let mut segments = split_outside_quotes(&cleaned, ';').into_iter();
    let head = segments.next()?;
    // The authserv-id may be followed by a version number (RFC 8601 §2.2).
    let authserv_id = head
        .split_whitespace()
        .next()?
        .trim_matches('"')
        .to_ascii_lowercase();
    if authserv_id.is_empty() || authserv_id.contains('=') {
        return None;
    }
    let mut results = Vec::new();
    for segment in segments {
        let tokens = tokens(&segment);
        let Some((first, rest)) = tokens.split_first() else {
            continue;
        };
        let Some((method, result)) = first.split_once('=') else {
            // `none` (no-result) or garbage: nothing to record.
            continue;
        };
        let method = method
            .split('/')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if method.is_empty() {
            continue;
        }
        let mut entry = MethodResult {
            method,
            result: unquote(result).to_ascii_lowercase(),
            ..MethodResult::default()
        };
        for token in rest {
            let Some((name, value)) = token.split_once('=') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let value = unquote(value).to_string();
            if name == "reason" {
                entry.reason = Some(value);
            } else if name.contains('.') {
                entry.properties.push((name, value));
            }
        }
        results.push(entry);
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// The headers that may be read, split by trust (see the module docs).
struct Collected {
    /// The trusted MTA's stamp: the topmost header with a trusted
    /// authserv-id, when it sits within the configured hops. Only it decides.
    stamp: Option<AuthResults>,
    /// Headers naming the stamp's authserv-id below it: the MTA writes one,
    /// so these came with the message (RFC 8601 §5), an attempted forgery.
    forged_below: Vec<AuthResults>,
    /// Other headers with a trusted id that do not count: the topmost one
    /// when it sits below too many `Received` headers, and headers of
    /// another trusted id below the stamp.
    too_low: Vec<AuthResults>,
    /// Stamped by an authserv-id we do not trust.
    untrusted: Vec<AuthResults>,
}

fn collect(inbound: &Inbound, policy: &StaffPolicy) -> Collected {
    let mut collected = Collected {
        stamp: None,
        forged_below: Vec::new(),
        too_low: Vec::new(),
        untrusted: Vec::new(),
    };
    // Once the topmost trusted header is seen (counted or too low), every
    // later one is below the trusted MTA's own stamp and cannot count.
    let mut seen_trusted = false;
    let mut received_above = 0usize;
    for (name, value) in &inbound.headers {
        if name == "received" {
            received_above += 1;
            continue;
        }
        if name != "authentication-results" {
            continue;
        }
        let Some(parsed) = parse_authentication_results(value) else {
            continue;
        };
        if !policy.trusts(&parsed.authserv_id) {
            collected.untrusted.push(parsed);
            continue;
        }
        let names_the_stamp = collected
            .stamp
            .as_ref()
            .is_some_and(|s| s.authserv_id == parsed.authserv_id);
        if names_the_stamp {
            collected.forged_below.push(parsed);
        } else if !seen_trusted && received_above <= policy.trusted_received_hops {
            collected.stamp = Some(parsed);
        } else {
            collected.too_low.push(parsed);
        }
        seen_trusted = true;
    }
    collected
}

/// Decides whether the message comes from staff.
pub fn staff_trust(inbound: &Inbound, policy: &StaffPolicy) -> StaffTrust {
    let Some(from) = inbound.from_address() else {
        return StaffTrust::NotStaff;
    };
    if !policy.is_staff_address(from.as_str()) {
        return StaffTrust::NotStaff;
    }
    let address = from.to_string();
    let forged = |why: String| StaffTrust::Forged {
        address: address.clone(),
        why,
    };
    // Several From mailboxes would leave "the From domain" ambiguous
    // (RFC 7489 §6.6.1 rejects such mail for DMARC too).
    if inbound.header_all("from").count() > 1 {
        return forged("more than one From header".into());
    }
    let domain = from.domain().to_ascii_lowercase();
    let collected = collect(inbound, policy);

    if !collected.forged_below.is_empty() {
        return forged(format!(
            "attempted forgery: {} more Authentication-Results naming trusted {} below the one it stamped; \
             only the topmost counts, the others came with the message (RFC 8601 section 5)",
            collected.forged_below.len(),
            ids(&collected.forged_below)
        ));
    }
    let Some(stamp) = &collected.stamp else {
        return forged(no_stamp(&collected));
    };

    let accepted = policy.accepted_methods();
    let mut seen = Vec::new();
    for result in &stamp.results {
        let Some(method) = method_kind(&result.method) else {
            continue;
        };
        seen.push(result.describe());
        if !accepted.contains(&method) || result.result != "pass" {
            continue;
        }
        if proves(method, result, &domain) {
            return StaffTrust::Staff { address };
        }
    }
    let accepted_names: Vec<&str> = accepted.iter().map(|m| m.code()).collect();
    let found = if seen.is_empty() {
        "no dmarc, dkim or spf result".to_string()
    } else {
        seen.join(", ")
    };
    forged(format!(
        "no passing result aligned with {domain} from trusted {} (accepted: {}): {found}",
        stamp.authserv_id,
        accepted_names.join(", ")
    ))
}

/// Decides staff trust under `staff.verify = "dkim"` from the verdict of
/// the signature check; `None` means the check did not run (an offline
/// reading), which proves nothing. Authentication-Results are not read.
pub fn staff_trust_by_signature(
    inbound: &Inbound,
    policy: &StaffPolicy,
    verdict: Option<&SignatureVerdict>,
) -> StaffTrust {
    let Some(from) = inbound.from_address() else {
        return StaffTrust::NotStaff;
    };
    if !policy.is_staff_address(from.as_str()) {
        return StaffTrust::NotStaff;
    }
    let address = from.to_string();
    let why = if inbound.header_all("from").count() > 1 {
        "more than one From header".to_string()
    } else {
        match verdict {
            Some(SignatureVerdict::Aligned { .. }) => return StaffTrust::Staff { address },
            Some(SignatureVerdict::Unproven { why }) => why.clone(),
            // A staff member's mail waits for a working resolver rather
            // than counting unproven; the alert names the failure.
            Some(SignatureVerdict::DnsFailure { why }) => {
                format!("DKIM could not be checked, DNS lookup failed (not trusted for now): {why}")
            }
            None => "DKIM signature not checked".to_string(),
        }
    };
    StaffTrust::Forged { address, why }
}

/// Why no header counts: the trusted ones sit too low, or none is trusted.
fn no_stamp(collected: &Collected) -> String {
    let mut why = String::from("no Authentication-Results from a trusted authserv-id");
    if !collected.too_low.is_empty() {
        why.push_str(&format!(
            "; results naming trusted {} sit below a Received header, so the sender could have written them",
            ids(&collected.too_low)
        ));
    }
    if !collected.untrusted.is_empty() {
        why.push_str(&format!(
            "; results stamped by untrusted {}",
            ids(&collected.untrusted)
        ));
    }
    why
}

/// Summarises trusted authentication results for staff notifications,
/// reading only the headers the strict rule counts (see the module docs),
/// with the policy's `trusted_received_hops`.
pub fn summarize_with(inbound: &Inbound, policy: &StaffPolicy) -> AuthSummary {
    let collected = collect(inbound, policy);
    let mut summary = AuthSummary::default();
    for header in collected.stamp.iter() {
        for result in &header.results {
            let (slot, domain) = match result.method.as_str() {
                "dmarc" => (
                    &mut summary.dmarc,
                    result.property("header.from").map(str::to_string),
                ),
                "dkim" => (&mut summary.dkim, dkim_domain(result)),
                "spf" => (&mut summary.spf, spf_domain(result)),
                _ => continue,
            };
            // The first (topmost) result per method is the one shown; a
            // pass anywhere replaces a non-pass, so one failing signature
            // next to a good one does not hide the good one.
            let text = match domain {
                Some(d) => format!("{} ({d})", result.result),
                None => result.result.clone(),
            };
            if slot.is_none()
                || (result.result == "pass"
                    && !slot.as_deref().is_some_and(|s| s.starts_with("pass")))
            {
                *slot = Some(text);
            }
        }
    }
    let mut ignored: Vec<String> = collected
        .untrusted
        .iter()
        .chain(collected.too_low.iter())
        .chain(collected.forged_below.iter())
        .map(|h| h.authserv_id.clone())
        .collect();
    ignored.dedup();
    summary.ignored = ignored;
    summary
}

fn method_kind(method: &str) -> Option<AuthMethod> {
    match method {
        "dmarc" => Some(AuthMethod::Dmarc),
        "dkim" => Some(AuthMethod::DkimAligned),
        "spf" => Some(AuthMethod::SpfAligned),
        _ => None,
    }
}

/// True when a passing result proves the From domain under `method`.
fn proves(method: AuthMethod, result: &MethodResult, from_domain: &str) -> bool {
    match method {
        AuthMethod::Dmarc => result
            .property("header.from")
            .is_some_and(|d| domain_of(d).eq_ignore_ascii_case(from_domain)),
        AuthMethod::DkimAligned => dkim_domain(result).is_some_and(|d| aligned(&d, from_domain)),
        AuthMethod::SpfAligned => spf_domain(result).is_some_and(|d| aligned(&d, from_domain)),
    }
}

/// The DKIM signing domain: `header.d`, else the domain of `header.i`.
fn dkim_domain(result: &MethodResult) -> Option<String> {
    result
        .property("header.d")
        .or_else(|| result.property("header.i"))
        .map(|d| domain_of(d).to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// The SPF-checked domain: the domain of `smtp.mailfrom` (or `smtp.mail`,
/// the older spelling some stampers still write).
fn spf_domain(result: &MethodResult) -> Option<String> {
    result
        .property("smtp.mailfrom")
        .or_else(|| result.property("smtp.mail"))
        .map(|d| domain_of(d).to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// The part after the last `@`, or the whole value; brackets and a trailing
/// dot removed.
fn domain_of(value: &str) -> &str {
    let value = value.trim().trim_start_matches('<').trim_end_matches('>');
    let domain = value.rsplit_once('@').map_or(value, |(_, d)| d);
    domain.trim_end_matches('.')
}

/// Relaxed alignment: the authenticated domain is the From domain or a
/// parent of it that is not a public suffix.
pub(crate) fn aligned(authenticated: &str, from_domain: &str) -> bool {
    let authenticated = authenticated.trim_end_matches('.').to_ascii_lowercase();
    let from_domain = from_domain.trim_end_matches('.').to_ascii_lowercase();
    if authenticated.is_empty() {
        return false;
    }
    if authenticated == from_domain {
        return true;
    }
    from_domain.ends_with(&format!(".{authenticated}")) && !looks_like_public_suffix(&authenticated)
}

/// A rough stand-in for the Public Suffix List: single labels (`org`) and
/// two-label country registries (`co.uk`, `com.au`, `ne.jp`).
fn looks_like_public_suffix(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    match labels.as_slice() {
        [_] => true,
        [second, tld] => {
            tld.len() == 2
                && matches!(
                    *second,
                    "co" | "com"
                        | "net"
                        | "org"
                        | "ac"
                        | "gov"
                        | "edu"
                        | "ne"
                        | "or"
                        | "go"
                        | "gob"
                        | "nic"
                        | "ltd"
                        | "plc"
                )
        }
        _ => false,
    }
}

/// The distinct authserv-ids of some headers, for explanations.
fn ids(headers: &[AuthResults]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for header in headers {
        if !names.contains(&header.authserv_id.as_str()) {
            names.push(&header.authserv_id);
        }
    }
    names.join(", ")
}

/// Removes RFC 5322 comments (nested parentheses, backslash escapes), but
/// not inside quoted strings.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            if depth == 0 {
                out.push(c);
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                in_quotes = !in_quotes;
                out.push(c);
            }
            '(' if !in_quotes => {
                depth += 1;
                out.push(' ');
            }
            ')' if !in_quotes && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Splits on `sep` outside quoted strings.
fn split_outside_quotes(value: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut in_quotes = false;
    let mut escaped = false;
    for c in value.chars() {
        let current = parts.last_mut().expect("never empty");
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
            current.push(c);
        } else if c == sep && !in_quotes {
            parts.push(String::new());
        } else {
            current.push(c);
        }
    }
    parts
}

/// Whitespace-separated tokens outside quotes, with spaces around `=`
/// removed first (RFC 8601 allows CFWS there).
fn tokens(segment: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let chars: Vec<char> = segment.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            in_quotes = !in_quotes;
            current.push(c);
        } else if !in_quotes && c.is_whitespace() {
            // Join `a = b` into `a=b`.
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let next_is_eq = j < chars.len() && chars[j] == '=';
            let prev_is_eq = current.ends_with('=');
            if !(next_is_eq || prev_is_eq || current.is_empty()) {
                tokens.push(std::mem::take(&mut current));
            }
            i = j;
            continue;
        } else {
            current.push(c);
        }
        i += 1;
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn unquote(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn policy() -> StaffPolicy {
        StaffPolicy {
            addresses: vec!["lead@pypi.test".into()],
            domains: vec!["staff.pypi.test".into()],
            trusted_authserv_ids: vec!["mx.pypi.test".into()],
            ..StaffPolicy::default()
        }
    }

    fn trust(headers: &str) -> StaffTrust {
        let raw = format!("{headers}Subject: re\r\nMessage-ID: <x@y>\r\n\r\n/close\r\n");
        staff_trust(&parse(raw.as_bytes()), &policy())
    }

    const RECEIVED: &str = "Received: from out.pypi.test by mx.pypi.test with ESMTPS; Mon, 2 Nov 2026 10:00:00 +0000\r\n";

    #[test]
    fn by_signature_only_the_verdict_counts_never_a_header() {
        let raw = format!("{RECEIVED}Authentication-Results: mx.pypi.test; dmarc=pass header.from=pypi.test\r\nFrom: lead@pypi.test\r\nSubject: re\r\n\r\n/close\r\n");
        let inbound = parse(raw.as_bytes());
        let by = |verdict: Option<&SignatureVerdict>| {
            staff_trust_by_signature(&inbound, &policy(), verdict)
        };
        assert!(
            matches!(by(None), StaffTrust::Forged { .. }),
            "a passing header proves nothing"
        );
        let aligned = SignatureVerdict::Aligned {
            proof: "dkim=pass d=pypi.test".into(),
        };
        assert_eq!(
            by(Some(&aligned)),
            StaffTrust::Staff {
                address: "lead@pypi.test".into()
            }
        );
        let dns = SignatureVerdict::DnsFailure {
            why: "timed out".into(),
        };
        match by(Some(&dns)) {
            StaffTrust::Forged { why, .. } => assert!(why.contains("DNS lookup failed"), "{why}"),
            other => panic!("{other:?}"),
        }
        let outsider = parse(b"From: someone@example.org\r\n\r\nhi\r\n");
        assert_eq!(
            staff_trust_by_signature(&outsider, &policy(), Some(&aligned)),
            StaffTrust::NotStaff
        );
        let two_froms = parse(b"From: lead@pypi.test\r\nFrom: lead@pypi.test\r\n\r\nhi\r\n");
        assert!(matches!(
            staff_trust_by_signature(&two_froms, &policy(), Some(&aligned)),
            StaffTrust::Forged { .. }
        ));
    }

    #[test]
    fn parses_rfc8601_example_with_comments_and_versions() {
        let parsed = parse_authentication_results(
            "example.com 1; dkim/1=pass (good signature) header.d=example.net header.b=\"abc;def\"; spf = fail smtp.mailfrom=user@example.org (reason here); dmarc=pass reason=\"aligned; ok\" header.from=example.net",
        )
        .unwrap();
        assert_eq!(parsed.authserv_id, "example.com");
        assert_eq!(parsed.results.len(), 3);
        assert_eq!(parsed.results[0].method, "dkim");
        assert_eq!(parsed.results[0].property("header.d"), Some("example.net"));
        assert_eq!(parsed.results[0].property("header.b"), Some("abc;def"));
        assert_eq!(parsed.results[1].result, "fail");
        assert_eq!(
            parsed.results[1].property("smtp.mailfrom"),
            Some("user@example.org")
        );
        assert_eq!(parsed.results[2].reason.as_deref(), Some("aligned; ok"));
        assert_eq!(
            parse_authentication_results("mx.example.org; none")
                .unwrap()
                .results,
            vec![]
        );
        assert!(parse_authentication_results("").is_none());
        assert!(parse_authentication_results("((((\"").is_none());
    }

    #[test]
    fn dmarc_pass_from_trusted_id_is_staff() {
        let t = trust(&format!(
            "Authentication-Results: mx.pypi.test; dmarc=pass (p=reject) header.from=pypi.test\r\n{RECEIVED}From: Lead <lead@pypi.test>\r\n"
        ));
        assert_eq!(
            t,
            StaffTrust::Staff {
                address: "lead@pypi.test".into()
            }
        );
    }

    #[test]
    fn failing_results_are_forged_with_the_results_named() {
        let t = trust(&format!(
            "Authentication-Results: mx.pypi.test; dkim=fail header.d=pypi.test; spf=softfail smtp.mailfrom=pypi.test; dmarc=fail header.from=pypi.test\r\n{RECEIVED}From: lead@pypi.test\r\n"
        ));
        let StaffTrust::Forged { why, .. } = t else {
            panic!("{t:?}")
        };
        assert!(why.contains("dkim=fail header.d=pypi.test"), "{why}");
        assert!(why.contains("dmarc=fail"), "{why}");
    }

    #[test]
    fn missing_results_are_forged() {
        let StaffTrust::Forged { why, .. } = trust(&format!("{RECEIVED}From: lead@pypi.test\r\n"))
        else {
            panic!()
        };
        assert!(
            why.contains("no Authentication-Results from a trusted authserv-id"),
            "{why}"
        );
    }

    #[test]
    fn untrusted_authserv_id_is_forged() {
        let t = trust(&format!(
            "Authentication-Results: mx.evil.example; dmarc=pass header.from=pypi.test\r\n{RECEIVED}From: lead@pypi.test\r\n"
        ));
        let StaffTrust::Forged { why, .. } = t else {
            panic!("{t:?}")
        };
        assert!(why.contains("untrusted mx.evil.example"), "{why}");
    }

    #[test]
    fn forged_trusted_header_below_received_does_not_count() {
        // Our MTA stamped a failure on top; the sender's own header claims a pass.
        let t = trust(&format!(
            "Authentication-Results: mx.pypi.test; dmarc=fail header.from=pypi.test\r\n{RECEIVED}Authentication-Results: mx.pypi.test; dmarc=pass header.from=pypi.test\r\nFrom: lead@pypi.test\r\n"
        ));
        assert!(matches!(t, StaffTrust::Forged { .. }), "{t:?}");
        // And without our MTA's stamp, the sender's header alone is not enough.
        let t = trust(&format!(
            "{RECEIVED}Authentication-Results: mx.pypi.test; dmarc=pass header.from=pypi.test\r\nFrom: lead@pypi.test\r\n"
        ));
        let StaffTrust::Forged { why, .. } = t else {
            panic!("{t:?}")
        };
        assert!(why.contains("below a Received header"), "{why}");
    }

    #[test]
    fn hops_allow_results_below_our_own_received_header() {
        let raw = format!(
            "{RECEIVED}Authentication-Results: mx.pypi.test; dkim=pass header.d=pypi.test\r\nFrom: lead@pypi.test\r\n\r\nhi\r\n"
        );
        let policy = StaffPolicy {
            trusted_received_hops: 1,
            ..policy()
        };
        assert!(matches!(
            staff_trust(&parse(raw.as_bytes()), &policy),
            StaffTrust::Staff { .. }
        ));
    }

    #[test]
    fn provider_style_results_below_two_own_received_headers() {
        // Large providers stamp their results below their own internal hops.
        let raw = "Received: by 10.0.0.1 with SMTP id q1;\r\n        Mon, 2 Nov 2026 10:00:02 -0800\r\nReceived: from out.pypi.test (out.pypi.test. [192.0.2.7])\r\n        by mx.pypi.test with ESMTPS id q2;\r\n        Mon, 2 Nov 2026 10:00:01 -0800\r\nAuthentication-Results: mx.pypi.test;\r\n       spf=pass (mx.pypi.test: domain of lead@pypi.test designates 192.0.2.7 as permitted sender) smtp.mail=lead@pypi.test;\r\n       dkim=pass header.i=@pypi.test;\r\n       dmarc=pass (p=REJECT dis=NONE) header.from=pypi.test\r\nFrom: Lead <lead@pypi.test>\r\n\r\nhi\r\n";
        let inbound = parse(raw.as_bytes());
        assert!(matches!(
            staff_trust(&inbound, &policy()),
            StaffTrust::Forged { .. }
        ));
        let two_hops = StaffPolicy {
            trusted_received_hops: 2,
            ..policy()
        };
        assert!(matches!(
            staff_trust(&inbound, &two_hops),
            StaffTrust::Staff { .. }
        ));
        let only_spf = StaffPolicy {
            accept: vec![AuthMethod::SpfAligned],
            ..two_hops.clone()
        };
        assert!(matches!(
            staff_trust(&inbound, &only_spf),
            StaffTrust::Staff { .. }
        ));
        let summary = summarize_with(&inbound, &two_hops);
        assert_eq!(summary.dkim.as_deref(), Some("pass (pypi.test)"));
    }

    #[test]
    fn aligned_subdomain_and_parent_domain() {
        // A staff member at a subdomain, signed by the parent domain: aligned.
        let t = trust(&format!(
            "Authentication-Results: mx.pypi.test; dkim=pass header.d=pypi.test header.s=sel\r\n{RECEIVED}From: ann@staff.pypi.test\r\n"
        ));
        assert_eq!(
            t,
            StaffTrust::Staff {
                address: "ann@staff.pypi.test".into()
            }
        );
        // SPF pass for an unrelated domain is not aligned.
        let t = trust(&format!(
            "Authentication-Results: mx.pypi.test; spf=pass smtp.mailfrom=bounce@mailer.example\r\n{RECEIVED}From: ann@staff.pypi.test\r\n"
        ));
        assert!(matches!(t, StaffTrust::Forged { .. }), "{t:?}");
        // A signature by a public suffix never aligns.
        assert!(!aligned("test", "staff.pypi.test"));
        assert!(!aligned("co.uk", "pypi.co.uk"));
        assert!(aligned("pypi.co.uk", "staff.pypi.co.uk"));
        assert!(!aligned("staff.pypi.test", "pypi.test"));
    }

    #[test]
    fn accepted_methods_are_honoured() {
        let raw = format!(
            "Authentication-Results: mx.pypi.test; spf=pass smtp.mailfrom=lead@pypi.test\r\n{RECEIVED}From: lead@pypi.test\r\n\r\nhi\r\n"
        );
        let inbound = parse(raw.as_bytes());
        assert!(matches!(
            staff_trust(&inbound, &policy()),
            StaffTrust::Staff { .. }
        ));
        let dmarc_only = StaffPolicy {
            accept: vec![AuthMethod::Dmarc],
            ..policy()
        };
        assert!(matches!(
            staff_trust(&inbound, &dmarc_only),
            StaffTrust::Forged { .. }
        ));
    }

    #[test]
    fn outsiders_are_not_staff() {
        assert_eq!(trust("From: jo@example.org\r\n"), StaffTrust::NotStaff);
    }

    #[test]
    fn summary_shows_trusted_results_and_ignored_ids() {
        let raw = format!(
            "Authentication-Results: mx.pypi.test; dkim=fail header.d=x.example; dkim=pass header.d=example.org; spf=pass smtp.mailfrom=jo@example.org; dmarc=pass header.from=example.org\r\n{RECEIVED}Authentication-Results: mx.evil.example; dmarc=pass\r\nFrom: jo@example.org\r\n\r\nhi\r\n"
        );
        let policy = StaffPolicy {
            trusted_authserv_ids: vec!["mx.pypi.test".to_string()],
            ..StaffPolicy::default()
        };
        let summary = summarize_with(&parse(raw.as_bytes()), &policy);
        assert_eq!(summary.dmarc.as_deref(), Some("pass (example.org)"));
        assert_eq!(summary.dkim.as_deref(), Some("pass (example.org)"));
        assert_eq!(summary.spf.as_deref(), Some("pass (example.org)"));
        assert_eq!(summary.ignored, vec!["mx.evil.example"]);
    }
}
