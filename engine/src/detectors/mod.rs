//! Built-in detectors: the catalogue addressable from bundles by id.
//!
//! A detector never scans a whole buffer by itself. The scanner finds
//! candidates cheaply (a literal anchor from the shared aho-corasick
//! automaton, an `@`, a run of digits) and hands the detector a position;
//! the detector confirms on a small window around it and validates
//! (Luhn, SSN area rules, GitHub CRC32, ...). This keeps the cost per byte
//! independent of the number of detectors.

mod digits;
mod email;
mod literal;
pub mod validators;

pub use digits::DigitRun;

/// A confirmed match of a detector: byte offsets into the scanned buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// How the scanner finds candidates for a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Literal anchors fed to the shared automaton.
    Literals(&'static [&'static str]),
    /// Every `@` byte.
    AtSign,
    /// Every maximal run of digits (with single space or dash separators).
    DigitRun,
}

/// Documentation of one built-in detector, used by the CLI and the
/// generated catalogue.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinInfo {
    pub id: &'static str,
    pub category: &'static str,
    pub summary: &'static str,
    pub example: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    Email,
    PaymentCard,
    UsSsn,
    AwsAccessKeyId,
    GithubClassicToken,
    PemPrivateKey,
}

pub const ALL_BUILTINS: &[Builtin] = &[
    Builtin::Email,
    Builtin::PaymentCard,
    Builtin::UsSsn,
    Builtin::AwsAccessKeyId,
    Builtin::GithubClassicToken,
    Builtin::PemPrivateKey,
];

impl Builtin {
    pub fn from_id(id: &str) -> Option<Builtin> {
        ALL_BUILTINS.iter().copied().find(|b| b.info().id == id)
    }

    pub fn info(self) -> BuiltinInfo {
        match self {
            Builtin::Email => BuiltinInfo {
                id: "email",
                category: "pii.email",
                summary: "Email address (RFC 5321 local part, dotted domain, alphabetic TLD).",
                example: "jane.doe@example.com",
            },
            Builtin::PaymentCard => BuiltinInfo {
                id: "payment_card",
                category: "pii.payment_card",
                summary: "Payment card number, 13-19 digits with a known issuer prefix, Luhn-valid; plain, spaced or dashed.",
                example: "4111 1111 1111 1111",
            },
            Builtin::UsSsn => BuiltinInfo {
                id: "us_ssn",
                category: "pii.us_ssn",
                summary: "US Social Security number with valid area/group/serial; undashed only next to a keyword such as `ssn`.",
                example: "123-45-6788",
            },
            Builtin::AwsAccessKeyId => BuiltinInfo {
                id: "aws_access_key_id",
                category: "secret.aws_access_key_id",
                summary: "AWS access key id (AKIA/ASIA/ABIA/ACCA + 16 base32 chars); AWS documentation examples excluded.",
                example: "AKIAZ3MSJ5TVQ4GQDKWY",
            },
            Builtin::GithubClassicToken => BuiltinInfo {
                id: "github_token",
                category: "secret.github_token",
                summary: "GitHub classic token (ghp_/gho_/ghu_/ghs_/ghr_) whose last 6 chars are the base62 CRC32 of the rest.",
                example: "ghp_<30 random chars><6-char checksum>",
            },
            Builtin::PemPrivateKey => BuiltinInfo {
                id: "pem_private_key",
                category: "secret.private_key",
                summary: "PEM private key block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PKCS8, PGP), BEGIN through END.",
                example: "-----BEGIN RSA PRIVATE KEY-----\\n...\\n-----END RSA PRIVATE KEY-----",
            },
        }
    }

    pub fn trigger(self) -> Trigger {
        match self {
            Builtin::Email => Trigger::AtSign,
            Builtin::PaymentCard | Builtin::UsSsn => Trigger::DigitRun,
            Builtin::AwsAccessKeyId => Trigger::Literals(literal::AWS_PREFIXES),
            Builtin::GithubClassicToken => Trigger::Literals(literal::GITHUB_PREFIXES),
            Builtin::PemPrivateKey => Trigger::Literals(literal::PEM_PREFIXES),
        }
    }

    /// Confirms a literal-anchor hit at `pos` (start of the anchor).
    pub fn confirm_literal(self, hay: &[u8], pos: usize) -> Option<Span> {
        match self {
            Builtin::AwsAccessKeyId => literal::aws_access_key_id(hay, pos),
            Builtin::GithubClassicToken => literal::github_classic_token(hay, pos),
            Builtin::PemPrivateKey => literal::pem_private_key(hay, pos),
            _ => None,
        }
    }

    /// Confirms an email around the `@` at `at`.
    pub fn confirm_at_sign(self, hay: &[u8], at: usize) -> Option<Span> {
        match self {
            Builtin::Email => email::email_at(hay, at),
            _ => None,
        }
    }

    /// Confirms a digit run.
    pub fn confirm_digits(self, hay: &[u8], run: &DigitRun) -> Option<Span> {
        match self {
            Builtin::PaymentCard => digits::payment_card(hay, run),
            Builtin::UsSsn => digits::us_ssn(hay, run),
            _ => None,
        }
    }
}

pub use digits::digit_runs;

/// True for bytes that may continue an identifier-like token; used for
/// word-boundary checks on both sides of a match.
#[inline]
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Case-insensitive search for any keyword in `hay[from..to]`.
pub(crate) fn has_keyword_before(
    hay: &[u8],
    pos: usize,
    window: usize,
    keywords: &[&[u8]],
) -> bool {
    let from = pos.saturating_sub(window);
    let region = &hay[from..pos];
    keywords
        .iter()
        .any(|kw| !kw.is_empty() && region.windows(kw.len()).any(|w| w.eq_ignore_ascii_case(kw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for b in ALL_BUILTINS {
            let id = b.info().id;
            assert!(seen.insert(id), "duplicate id {id}");
            assert_eq!(Builtin::from_id(id), Some(*b));
        }
        assert_eq!(Builtin::from_id("nope"), None);
    }

    #[test]
    fn keyword_search_is_case_insensitive_and_windowed() {
        let hay = b"my SSN is 123456789";
        assert!(has_keyword_before(hay, 10, 16, &[b"ssn"]));
        assert!(!has_keyword_before(hay, 10, 3, &[b"ssn"]));
    }
}
