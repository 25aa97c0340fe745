//! The catalogue: every built-in detector, its defaults, context keywords,
//! documentation and examples, in one table. `policy-schema/CATALOGUE.md`
//! is generated from this table, and a unit test runs every example.
//!
//! Formats follow the vendors' documentation and the public rule sets of
//! gitleaks (MIT) and Yelp's detect-secrets (Apache-2.0); PII follows
//! Microsoft Presidio's recognizers (MIT) and the issuing authorities'
//! published rules. Nothing is taken from TruffleHog (AGPL).

use super::tokens::{self, TokenSpec, TOKEN};
use super::{digits, email, keyword, literal, network, Confidence, Cx, DigitRun, Span};
use crate::bundle::{Action, Severity};

pub(crate) enum How {
    /// Literal anchor(s), then an anchored confirming regex (+ validator).
    Token(TokenSpec),
    /// Literal anchor(s), then a hand-written confirmation.
    Anchor {
        anchors: &'static [&'static str],
        confirm: fn(&Cx, usize, usize) -> Option<Span>,
    },
    /// The detector's context keywords are its anchors; `value` finds the
    /// value assigned to or following the keyword (at offset 0 when the
    /// keyword was the header name).
    Keyword {
        value: fn(&Cx, usize) -> Option<Span>,
    },
    /// Like `Keyword`, and also found from a literal anchor of a related
    /// value nearby: `near(cx, start, end)` gets the anchor's bytes.
    KeywordOrNear {
        value: fn(&Cx, usize) -> Option<Span>,
        anchors: &'static [&'static str],
        near: fn(&Cx, usize, usize) -> Option<Span>,
    },
    AtSign(fn(&Cx, usize) -> Option<Span>),
    Digits(fn(&Cx, &DigitRun) -> Option<Span>),
    Colon(fn(&Cx, usize) -> Option<Span>),
}

pub(crate) struct Def {
    pub id: &'static str,
    pub category: &'static str,
    pub summary: &'static str,
    pub severity: Severity,
    pub actions: [Action; 2],
    pub confidence: Confidence,
    pub keywords: &'static [&'static str],
    pub positives: &'static [&'static str],
    pub negatives: &'static [&'static str],
    pub how: How,
    pub yields: bool,
    pub in_default: bool,
}

const fn nothing(_: &Cx, _: usize) -> Option<Span> {
    None
}

/// Defaults of a vendor secret: critical, blocked in requests, redacted in
/// responses, in the default bundle.
const SECRET: Def = Def {
    id: "",
    category: "",
    summary: "",
    severity: Severity::Critical,
    actions: [Action::Block, Action::Redact],
    confidence: Confidence::High,
    keywords: &[],
    positives: &[],
    negatives: &[],
    how: How::AtSign(nothing),
    yields: false,
    in_default: true,
};

/// Defaults of PII: redacted both ways, in the default bundle.
const PII: Def = Def {
    severity: Severity::High,
    actions: [Action::Redact, Action::Redact],
    ..SECRET
};

macro_rules! token {
    ($($field:ident : $value:expr),* $(,)?) => {
        How::Token(TokenSpec { $($field: $value,)* ..TOKEN })
    };
}

pub(crate) const DEFS: &[Def] = &[
    // ---- PII -------------------------------------------------------------
    Def {
        id: "email",
        category: "pii.email",
        summary: "Email address (RFC 5321 local part, dotted domain, alphabetic TLD); also with the `@` JSON-escaped as `\\u0040`.",
        severity: Severity::Medium,
        confidence: Confidence::High,
        positives: &["jane.doe@example.com", "{\"to\":\"«a+b@mail.example.co.uk»\"}", "{\"to\":\"«jo\\u0040example.org»\"}"],
        negatives: &["user@localhost", "npm i @scope/pkg", "a@1.2"],
        how: How::AtSign(email::email_at_cx),
        ..PII
    },
    Def {
        id: "payment_card",
        category: "pii.payment_card",
        summary: "Payment card number (Visa, Mastercard incl. 2-series, Amex, Discover, JCB, Diners, UnionPay): issuer prefix and length, Luhn; plain, spaced or dashed; 17-19 ungrouped digits only next to a keyword such as `card`.",
        keywords: &["card", "pan", "cc_num", "ccnum", "credit", "debit", "payment", "visa", "mastercard", "amex"],
        positives: &["4111 1111 1111 1111", "5555-5555-5555-4444", "2223003122003222", "378282246310005", "6011111111111117", "3530111333300000", "30569309025904", "6200000000000005"],
        negatives: &["4111111111111112", "order 1234567812345670", "{\"request_id\":\"4111111111111111110\"}", "sha a4111111111111111", "3.4111111111111111", "0000000000000000"],
        how: How::Digits(digits::payment_card_cx),
        ..PII
    },
    Def {
        id: "us_ssn",
        category: "pii.us_ssn",
        summary: "US Social Security number with valid area/group/serial; spaced or undashed only next to a keyword such as `ssn`.",
        keywords: &["ssn", "social security", "social_security", "socialsecurity", "ss#", "ss_num"],
        positives: &["123-45-6788", "{\"ssn\":\"«123456788»\"}", "Social Security: «123 45 6788»"],
        negatives: &["id 123456788", "666-45-6788", "078-05-1120", "phone 1-123-45-6788"],
        how: How::Digits(digits::us_ssn),
        ..PII
    },
    Def {
        id: "us_itin",
        category: "pii.us_itin",
        summary: "US Individual Taxpayer Identification Number (9XX-7X/8X/9X-XXXX); undashed only with context.",
        keywords: &["itin", "taxpayer", "tax id", "tax_id", "tin"],
        positives: &["912-70-1234", "{\"itin\":\"«912881234»\"}"],
        negatives: &["912-45-1234", "912881234", "912-93-1234"],
        how: How::Digits(digits::us_itin),
        ..PII
    },
    Def {
        id: "phone_number",
        category: "pii.phone_number",
        summary: "Phone number: E.164 (+ country code, 10-15 digits) anywhere; national US, UK, DE, FR, IN and BR formats only next to a keyword such as `phone`.",
        confidence: Confidence::Medium,
        severity: Severity::Medium,
        keywords: &["phone", "tel", "mobile", "cell", "fax", "contact", "call", "sms", "whatsapp", "telefon", "telephone", "portable", "celular", "handy", "msisdn"],
        positives: &["+1 415 555 0132", "+44 20 7946 0958", "{\"phone\":\"«(415) 555-0132»\"}", "mobile: «07700 900123»", "Telefon «030 12345678»", "tel «06 12 34 56 78»", "phone «98765 43210»", "celular «(11) 91234-5678»"],
        negatives: &["order 4155550132", "ts 1732245600", "+12", "version 1.415.555.0132", "{\"amount\":\"(415) 555-0132\"}"],
        how: How::Digits(digits::phone_number),
        ..PII
    },
    Def {
        id: "iban",
        category: "pii.iban",
        summary: "International Bank Account Number: country code, per-country length, ISO 7064 mod-97 check; compact or in groups of four.",
        positives: &["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "FR1420041010050500013M02606"],
        negatives: &["DE89370400440532013001", "GB82 WEST 1234 5698 7654", "XX89370400440532013000"],
        how: How::Digits(digits::iban),
        ..PII
    },
    Def {
        id: "ipv4_address",
        category: "pii.ip_address",
        summary: "IPv4 address in dotted-quad form (octets 0-255, no leading zeros). Off in the default bundle.",
        severity: Severity::Low,
        confidence: Confidence::Medium,
        positives: &["192.168.10.24", "client «203.0.113.7» connected"],
        negatives: &["version 1.2.3.4.5", "10.0.19041.1", "256.1.1.1", "0.0.0.0", "v1.2.3.4"],
        how: How::Digits(network::ipv4),
        in_default: false,
        ..PII
    },
    Def {
        id: "ipv6_address",
        category: "pii.ip_address",
        summary: "IPv6 address (full or :: compressed, optional embedded IPv4). Off in the default bundle.",
        severity: Severity::Low,
        confidence: Confidence::Medium,
        positives: &["2001:db8:85a3::8a2e:370:7334", "fe80::1ff:fe23:4567:890a", "2001:0db8:0000:0000:0000:ff00:0042:8329"],
        negatives: &["12:30:45", "00:1A:2B:3C:4D:5E", "std::vector", "{\"a\":\"b\"}"],
        how: How::Colon(network::ipv6),
        in_default: false,
        ..PII
    },
    Def {
        id: "uk_nino",
        category: "pii.uk_nino",
        summary: "UK National Insurance number (two prefix letters by HMRC rules, six digits, suffix A-D); compact or spaced.",
        positives: &["AB123456C", "AB 12 34 56 C", "{\"nino\":\"«JG103759A»\"}"],
        negatives: &["BG123456C", "DA123456C", "AB123456E", "XAB123456C"],
        how: How::Digits(digits::uk_nino),
        ..PII
    },
    Def {
        id: "ca_sin",
        category: "pii.ca_sin",
        summary: "Canadian Social Insurance Number (9 digits, Luhn), next to a keyword such as `sin`.",
        keywords: &["sin", "social insurance", "social_insurance", "assurance sociale", "nas"],
        positives: &["SIN: «046 454 286»", "{\"sin\":\"«046454286»\"}"],
        negatives: &["SIN: 046 454 287", "ref 046 454 286", "sin 846 454 280"],
        how: How::Digits(digits::ca_sin),
        ..PII
    },
    Def {
        id: "in_aadhaar",
        category: "pii.in_aadhaar",
        summary: "Indian Aadhaar number (12 digits, first 2-9, Verhoeff check digit), next to a keyword such as `aadhaar`.",
        keywords: &["aadhaar", "aadhar", "uidai", "uid"],
        positives: &["Aadhaar: «2341 2341 2346»", "{\"aadhaar\":\"«234123412346»\"}"],
        negatives: &["Aadhaar: 2341 2341 2347", "order 2341 2341 2346", "aadhaar 1341 2341 2340"],
        how: How::Digits(digits::in_aadhaar),
        ..PII
    },
    Def {
        id: "date_of_birth",
        category: "pii.date_of_birth",
        summary: "Date of birth (ISO, US and European numeric dates, plausible year) right after a keyword such as `dob` or `birth`.",
        severity: Severity::Medium,
        confidence: Confidence::Medium,
        keywords: &["dob", "date_of_birth", "date of birth", "birth_date", "birthdate", "birthday", "born", "geburtsdatum", "date_naissance", "fecha_nacimiento"],
        positives: &["{\"dob\":\"«1985-04-12»\"}", "date of birth: «12/04/1985»", "born «12.04.1985»"],
        negatives: &["{\"created\":\"1985-04-12\"}", "dob: 2099-01-01", "{\"dob\":\"1985-13-40\"}"],
        how: How::Keyword { value: keyword::date_of_birth },
        ..PII
    },
    Def {
        id: "passport_number",
        category: "pii.passport_number",
        summary: "Passport number (6-9 letters and digits, at least two digits) right after a keyword such as `passport`.",
        keywords: &["passport", "passport_no", "passport_number", "reisepass", "passeport", "pasaporte"],
        positives: &["{\"passport_number\":\"«C01X00T47»\"}", "passport no. «912803456»"],
        negatives: &["passport: none", "{\"passport_country\":\"DE\"}", "passport expiry 2031"],
        how: How::Keyword { value: keyword::passport_number },
        ..PII
    },
    Def {
        id: "drivers_license",
        category: "pii.drivers_license",
        summary: "Driver's licence number (5-20 letters, digits and dashes, at least four digits) right after a keyword such as `driver's license`.",
        keywords: &["driver_license", "drivers_license", "driver's license", "driver license", "driving_licence", "driving licence", "driver_licence", "dl_number", "license_number", "licence_number", "fuehrerschein", "führerschein"],
        positives: &["{\"drivers_license\":\"«D1234567»\"}", "driving licence «MORGA753116SM9IJ»"],
        negatives: &["{\"license\":\"MIT\"}", "driver license: pending", "{\"license_number\":\"n/a\"}"],
        how: How::Keyword { value: keyword::drivers_license },
        ..PII
    },
    Def {
        id: "bitcoin_address",
        category: "pii.crypto_address",
        summary: "Bitcoin address: legacy/P2SH base58check (1…, 3…) or SegWit/Taproot bech32/bech32m (bc1…), checksum-validated. Off in the default bundle.",
        severity: Severity::Medium,
        positives: &["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"],
        negatives: &["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLz"],
        how: How::Digits(network::bitcoin),
        in_default: false,
        ..PII
    },
    Def {
        id: "ethereum_address",
        category: "pii.crypto_address",
        summary: "Ethereum address (0x + 40 hex): mixed case must pass the EIP-55 checksum; single-case only next to a keyword such as `wallet`. Off in the default bundle.",
        severity: Severity::Medium,
        keywords: &["eth", "ether", "wallet", "address", "addr", "recipient"],
        positives: &["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "{\"wallet\":\"«0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359»\"}"],
        negatives: &["0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "{\"sha\":\"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359\"}", "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d3591"],
        how: How::Anchor { anchors: &["0x"], confirm: network::ethereum },
        in_default: false,
        ..PII
    },
    // ---- Secrets with hand-written confirmation --------------------------
    Def {
        id: "aws_access_key_id",
        category: "secret.aws_access_key_id",
        summary: "AWS access key id (AKIA/ASIA/ABIA/ACCA + 16 base32 chars); AWS documentation examples excluded.",
        positives: &["AKIAZ3MSJ5TVQ4GQDKWY", "ASIAY34FZKBOKMUTVV7A"],
        negatives: &["AKIAIOSFODNN7EXAMPLE", "AKIAZ3MSJ5TVQ4GQDKW", "AKIAZ3MSJ5TVQ4GQDKWYX", "XAKIAZ3MSJ5TVQ4GQDKWY", "AKIAZ3MSJ5TVQ4GQDK0Y"],
        how: How::Anchor { anchors: literal::AWS_PREFIXES, confirm: literal::aws_access_key_id_cx },
        ..SECRET
    },
    Def {
        id: "aws_secret_access_key",
        category: "secret.aws_secret_access_key",
        summary: "AWS secret access key: 40 base64 chars assigned to a key such as `aws_secret_access_key` or `SecretAccessKey`, or within 256 bytes of a valid AWS access key id (an IAM credentials CSV or JSON).",
        keywords: &["aws_secret_access_key", "secret_access_key", "aws_secret_key", "aws_secret"],
        positives: &["aws_secret_access_key = «kY8h3RrN2vQp7WmX5tLz9aBc4dEf6gHj1iKoPq2s»", "{\"SecretAccessKey\":\"«Xr2/Tq9LmW4vZp8sK1nB6cH3dJ5fG7yU0eRtYuIo»\"}", "Access key ID,Secret access key\nAKIAZ3MSJ5TVQ4GQDKWY,«kY8h3RrN2vQp7WmX5tLz9aBc4dEf6gHj1iKoPq2s»"],
        negatives: &["aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = kY8h3RrN2vQp7WmX5tLz9aBc4dEf6gHj1iKoPq2", "{\"note\":\"kY8h3RrN2vQp7WmX5tLz9aBc4dEf6gHj1iKoPq2s\"}", "AKIAZ3MSJ5TVQ4GQDKWY sha1 3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a6b7c8d9e", "AKIAIOSFODNN7EXAMPLE,kY8h3RrN2vQp7WmX5tLz9aBc4dEf6gHj1iKoPq2s"],
        how: How::KeywordOrNear { value: keyword::aws_secret_access_key, anchors: literal::AWS_PREFIXES, near: keyword::aws_secret_near_key_id },
        ..SECRET
    },
    Def {
        id: "gcp_service_account_key",
        category: "secret.gcp_service_account_key",
        summary: "Google Cloud service-account key JSON: the 40-hex `private_key_id` of a document with `\"type\": \"service_account\"` (its `private_key` is found by pem_private_key).",
        positives: &["{\"type\": \"service_account\", \"project_id\": \"acme\", \"private_key_id\": \"«3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a6b7c8d9e»\"}"],
        negatives: &["{\"type\": \"authorized_user\", \"private_key_id\": \"3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a6b7c8d9e\"}"],
        how: How::Anchor { anchors: &["\"private_key_id\""], confirm: keyword::gcp_service_account_key },
        ..SECRET
    },
    Def {
        id: "pem_private_key",
        category: "secret.private_key",
        summary: "PEM private key block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PKCS8, PGP), BEGIN through END; a truncated block is taken to the end of its base64.",
        positives: &["-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEA7\\n-----END RSA PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----"],
        negatives: &["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"],
        how: How::Anchor { anchors: literal::PEM_PREFIXES, confirm: literal::pem_private_key_cx },
        ..SECRET
    },
    Def {
        id: "sentry_dsn",
        category: "secret.sentry_dsn",
        summary: "Sentry DSN: the 32-hex key in https://<key>@o<org>.ingest.sentry.io/<project>. Off in the default bundle: DSNs are embedded in front-end code by design.",
        severity: Severity::High,
        positives: &["https://«e3a7c1b9d2f04a6b8c5d7e9f1a2b3c4d»@o450123.ingest.sentry.io/5512345", "https://«0a1b2c3d4e5f60718293a4b5c6d7e8f9»@o1.ingest.us.sentry.io/2"],
        negatives: &["https://public@sentry.example.com/1", "https://e3a7c1b9d2f04a6b@o450123.ingest.sentry.io/5512345"],
        how: How::Anchor { anchors: &[".ingest."], confirm: literal::sentry_dsn },
        in_default: false,
        ..SECRET
    },
    Def {
        id: "password_in_url",
        category: "secret.password_in_url",
        summary: "Password in a URL's userinfo (scheme://user:password@host); only the password is matched; placeholders excluded.",
        positives: &["postgres://app:«s3cr3T-pa55w0rd»@db.internal:5432/app", "{\"dsn\":\"mysql:\\/\\/root:«Q7v-x9Lk2»@db\\/app\"}", "{\"url\":\"https://deploy:«Zx9!kq2Lm»@git.example.com/repo.git\"}"],
        negatives: &["https://user:password@example.com", "redis://:${REDIS_PASSWORD}@cache:6379", "https://example.com/a:b@c", "mailto:jane@example.com", "http://user:<token>@host"],
        how: How::Anchor { anchors: &["://", ":\\/\\/"], confirm: literal::password_in_url },
        ..SECRET
    },
    Def {
        id: "basic_auth_credentials",
        category: "secret.basic_auth",
        summary: "HTTP Basic credentials inside a body (`Basic <base64 of user:password>`); the base64 must decode to printable `user:password`.",
        positives: &["{\"headers\":{\"Authorization\":\"Basic «YWxhZGRpbjpvcGVuc2VzYW1l»\"}}", "Authorization: Basic «ZGVwbG95OlF3M3J0eSE5»"],
        negatives: &["Basic realm=\"api\"", "basic usage of the api", "Basic dXNlcjpwYXNzd29yZA=="],
        how: How::Anchor { anchors: &["Basic ", "basic ", "BASIC "], confirm: literal::basic_auth },
        ..SECRET
    },
    Def {
        id: "bearer_token",
        category: "secret.bearer_token",
        summary: "Bearer credential inside a body (`Bearer <token>`, 16+ token chars, entropy floor); gives way to a specific detector on the same bytes. Off in the default bundle.",
        severity: Severity::High,
        confidence: Confidence::Medium,
        actions: [Action::Redact, Action::Redact],
        positives: &["{\"auth\":\"Bearer «8f3kQ2xLm9Tz4Wv7Rb1Ns6Yc»\"}", "Authorization: Bearer «a9d8f7e6c5b4a3928171605f4e3d2c1b»"],
        negatives: &["Bearer <token>", "Bearer ${TOKEN}", "bearer token authentication", "Bearer abcdefghijklmnop"],
        how: How::Anchor { anchors: &["Bearer ", "bearer ", "BEARER "], confirm: literal::bearer_token },
        yields: true,
        in_default: false,
        ..SECRET
    },
    Def {
        id: "generic_secret",
        category: "secret.generic",
        summary: "High-entropy value assigned to a key such as password, secret, token or api_key (JSON, form, YAML, env, code); Shannon-entropy floor; placeholders (EXAMPLE, xxxx, changeme, ${VAR}, <token>) excluded; gives way to a specific detector. Off in the default bundle.",
        severity: Severity::High,
        confidence: Confidence::Medium,
        actions: [Action::Redact, Action::Redact],
        keywords: &["password", "passwd", "pwd", "passphrase", "secret", "client_secret", "token", "auth_token", "access_token", "refresh_token", "api_key", "apikey", "api-key", "access_key", "private_key", "credential", "credentials"],
        positives: &["{\"password\":\"«Tr0ub4dor&3xK9»\"}", "DB_PASSWORD=«n7Qx2LpZ8vKs4Tw»", "client_secret: «f3Kp9Zq2Lx7Vw4Rt8Yb1»", "api_key=«c9e1f4a7b2d85e3f6a0b»&x=1"],
        negatives: &["{\"password\":\"changeme\"}", "{\"token\":\"${API_TOKEN}\"}", "{\"api_key\":\"<your-api-key>\"}", "{\"token_type\":\"Bearer\"}", "{\"password\":\"aaaaaaaaaaaa\"}", "{\"secret\":\"EXAMPLEKEY123456\"}", "password_reset_required=true", "{\"token\":\"xxxxxxxxxxxxxxxx\"}"],
        how: How::Keyword { value: keyword::generic_secret },
        yields: true,
        in_default: false,
    },
    Def {
        id: "datadog_api_key",
        category: "secret.datadog_api_key",
        summary: "Datadog API key: 32 hex assigned to a key such as `DD_API_KEY` or in a `DD-API-KEY` header.",
        keywords: &["dd_api_key", "datadog_api_key", "dd-api-key", "datadog_key"],
        positives: &["DD_API_KEY=«3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a»", "{\"datadog_api_key\":\"«0a1b2c3d4e5f60718293a4b5c6d7e8f9»\"}"],
        negatives: &["DD_API_KEY=3f1c9a7be2d04c5a8e6f9b1d2c3e4f5", "{\"api_key\":\"3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a\"}"],
        how: How::Keyword { value: keyword::datadog_api_key },
        ..SECRET
    },
    Def {
        id: "datadog_app_key",
        category: "secret.datadog_app_key",
        summary: "Datadog application key: 40 hex assigned to a key such as `DD_APP_KEY` or in a `DD-APPLICATION-KEY` header.",
        keywords: &["dd_app_key", "dd_application_key", "datadog_app_key", "dd-application-key"],
        positives: &["DD_APP_KEY=«3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a6b7c8d9e»"],
        negatives: &["DD_APP_KEY=3f1c9a7be2d04c5a8e6f9b1d2c3e4f5a"],
        how: How::Keyword { value: keyword::datadog_app_key },
        ..SECRET
    },
    Def {
        id: "twilio_auth_token",
        category: "secret.twilio_auth_token",
        summary: "Twilio auth token: 32 hex assigned to a key such as `TWILIO_AUTH_TOKEN`.",
        keywords: &["twilio_auth_token", "twilio_token", "twilio_secret"],
        positives: &["TWILIO_AUTH_TOKEN=«9b2e4d6f8a0c1e3f5a7b9c0d2e4f6a8b»"],
        negatives: &["TWILIO_AUTH_TOKEN=your_auth_token"],
        how: How::Keyword { value: keyword::hex32 },
        ..SECRET
    },
    // ---- Secrets with a literal anchor and a confirming regex -------------
    Def {
        id: "github_token",
        category: "secret.github_token",
        summary: "GitHub classic token (ghp_/gho_/ghu_/ghs_/ghr_) whose last 6 chars are the base62 CRC32 of the 30 random ones.",
        positives: &["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", "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", "ghs_PGg36SmMTBBZJmhwPGBYa8kRaDS5as0yxZ1G"],
        negatives: &["ghp_abcdefghijklmnopqrstuvwxyzABCD012345", "ghp_Zq8mK3vT9xWb2nLp7dRf4hJs6cYg1u3icDH"],
        how: token!(anchors: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], re: r"gh[pousr]_[A-Za-z0-9]{36}", check: Some(literal::github_checksum_ok)),
        ..SECRET
    },
    Def {
        id: "github_fine_grained_pat",
        category: "secret.github_fine_grained_pat",
        summary: "GitHub fine-grained personal access token (github_pat_, 22 + 59 chars).",
        positives: &["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", "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"],
        negatives: &["github_pat_11ABCDEFG0123456789_short"],
        how: token!(anchors: &["github_pat_"], re: r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"),
        ..SECRET
    },
    Def {
        id: "gitlab_pat",
        category: "secret.gitlab_pat",
        summary: "GitLab personal, project or group access token (glpat-, classic 20 chars or routable).",
        positives: &["glpat-yjMDqftVFFEXlpUwMlpp_jKotrg.8m.hlsoypufk", "glpat-PgE_vZ3gLx2DcqAcmry-"],
        negatives: &["glpat-tooShort123"],
        how: token!(anchors: &["glpat-"], re: r"glpat-(?:[A-Za-z0-9_-]{27,}\.[0-9a-z]{2}\.[0-9a-z]{7,9}|[A-Za-z0-9_-]{20})", max: 340),
        ..SECRET
    },
    Def {
        id: "gitlab_runner_token",
        category: "secret.gitlab_runner_token",
        summary: "GitLab runner authentication token (glrt-) or legacy runner registration token (GR1348941).",
        positives: &["glrt-5TCjmL11BXEFdcLl_aub", "glrt-ys1u_VCQ17CnYUzW2xgp"],
        how: token!(anchors: &["glrt-", "GR1348941"], re: r"(?:glrt-|GR1348941)[A-Za-z0-9_-]{20}"),
        ..SECRET
    },
    Def {
        id: "gitlab_deploy_token",
        category: "secret.gitlab_deploy_token",
        summary: "GitLab deploy token (gldt-).",
        positives: &["gldt-atmtavNtMzRRKG2WuupV", "gldt-8-5q9cWUt5Q5oqdAnroh"],
        how: token!(anchors: &["gldt-"], re: r"gldt-[A-Za-z0-9_-]{20}"),
        ..SECRET
    },
    Def {
        id: "gitlab_pipeline_trigger_token",
        category: "secret.gitlab_pipeline_trigger_token",
        summary: "GitLab pipeline trigger token (glptt- + 40 hex).",
        positives: &["glptt-53e9e2e6b0860e9dcde53db12034676408d5fdd2", "glptt-30763f6d4cd6ac6489a844e8cd7747cbaddbf96f"],
        how: token!(anchors: &["glptt-"], re: r"glptt-[0-9a-f]{40}"),
        ..SECRET
    },
    Def {
        id: "gitlab_feed_token",
        category: "secret.gitlab_feed_token",
        summary: "GitLab feed token (glft-).",
        positives: &["glft-BoM703b9VteYHWk_yWbj", "glft-lsdR4TkP7IcJk4Awuk0I"],
        how: token!(anchors: &["glft-"], re: r"glft-[A-Za-z0-9_-]{20}"),
        ..SECRET
    },
    Def {
        id: "slack_bot_token",
        category: "secret.slack_bot_token",
        summary: "Slack bot token (xoxb-<team>-<bot>-<24 chars>).",
        positives: &["xoxb-880376651521-9956087008-Nl4fbYgIr12Itl4sWJrrF79N", "xoxb-5159316391-51958448766-ZxyHt1XzjoOUHeTxskhRk24t"],
        negatives: &["xoxb-1234-5678-abc"],
        how: token!(anchors: &["xoxb-"], re: r"xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}"),
        ..SECRET
    },
    Def {
        id: "slack_user_token",
        category: "secret.slack_user_token",
        summary: "Slack user token (xoxp-, four numeric/hex groups).",
        positives: &["xoxp-49186393881-25117922539-3209756634203-030f9b857c99d0b0e1275a8ad63641f5", "xoxp-439345487600-6603360752976-41428082459-4fe8e43860d8e16586b4cfde2c9b7647"],
        how: token!(anchors: &["xoxp-"], re: r"xoxp-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[a-f0-9]{32}"),
        ..SECRET
    },
    Def {
        id: "slack_app_token",
        category: "secret.slack_app_token",
        summary: "Slack app-level token (xapp-).",
        positives: &["xapp-9-GEZG0S632BY-898392422982-c45bd023bf2b17d991f95a3bb1d5af72e4bf7a5a7d9e0ef4b54f688c75f12211", "xapp-7-QOXBTJCW3L1R-508359528472-e1e011ae388aa8df1be8b0c74161bb3e0fefbc088b8b190d2d5f134f0ddc0f1d"],
        how: token!(anchors: &["xapp-"], re: r"xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,13}-[a-f0-9]{64}"),
        ..SECRET
    },
    Def {
        id: "slack_webhook_url",
        category: "secret.slack_webhook_url",
        summary: "Slack incoming-webhook / workflow URL (hooks.slack.com/services/T.../B.../secret).",
        positives: &["hooks.slack.com/services/TOZU62S2W/ES1CX6S2DJE/Q7mpbH8UHP8Lbw9MqLdis87", "hooks.slack.com/services/THEW1152M2I/Z42CFRW5PG/3aZiq8o4QVgsXrbCmodEOpj"],
        negatives: &["https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"],
        how: token!(anchors: &["hooks.slack.com/services/", "hooks.slack.com/workflows/", "hooks.slack.com/triggers/"], re: r"hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{8,12}/[A-Z0-9]{8,12}/[A-Za-z0-9]{23,32}"),
        ..SECRET
    },
    Def {
        id: "stripe_secret_key",
        category: "secret.stripe_secret_key",
        summary: "Stripe live secret key (sk_live_).",
        positives: &["sk_live_8INzwQKcWMF6G5P86tHrgGqD", "sk_live_GBD14yTBnwKRznoRgAmiLXsc"],
        negatives: &["sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx"],
        how: token!(anchors: &["sk_live_"], re: r"sk_live_[A-Za-z0-9]{24,99}", max: 110),
        ..SECRET
    },
    Def {
        id: "stripe_restricted_key",
        category: "secret.stripe_restricted_key",
        summary: "Stripe live restricted key (rk_live_).",
        positives: &["rk_live_wTYcauuVHkqGY4logvCgNzYU", "rk_live_xfXFjwb2Tuc7ORlkCNoWrJ59"],
        how: token!(anchors: &["rk_live_"], re: r"rk_live_[A-Za-z0-9]{24,99}", max: 110),
        ..SECRET
    },
    Def {
        id: "stripe_webhook_secret",
        category: "secret.stripe_webhook_secret",
        summary: "Stripe webhook signing secret (whsec_).",
        positives: &["whsec_joX71c2tPuS1DatPR7gExo2qOE1QHROy", "whsec_oGZ4vLONy1ekndzUdYowhvxA3nxgozXd"],
        how: token!(anchors: &["whsec_"], re: r"whsec_[A-Za-z0-9+/]{32,64}", max: 72),
        ..SECRET
    },
    Def {
        id: "google_api_key",
        category: "secret.google_api_key",
        summary: "Google API key (AIza + 35 chars). Off in the default bundle: browser keys (Maps, Firebase) ship in web pages and query strings by design, and redacting them would break those pages.",
        positives: &["AIzaLOPglVvFyRWT6dPJ0DZ2n2gl5OSO2kar3Xm", "AIza5sNserWIkLglP-GBWuUs7pZVl01n37WqVDN"],
        negatives: &["AIzaSyShort"],
        how: token!(anchors: &["AIza"], re: r"AIza[0-9A-Za-z_-]{35}"),
        in_default: false,
        ..SECRET
    },
    Def {
        id: "google_oauth_client_secret",
        category: "secret.google_oauth_client_secret",
        summary: "Google OAuth client secret (GOCSPX-).",
        positives: &["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", "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"],
        how: token!(anchors: &["GOCSPX-"], re: r"GOCSPX-[A-Za-z0-9_-]{28}"),
        ..SECRET
    },
    Def {
        id: "google_oauth_access_token",
        category: "secret.google_oauth_access_token",
        summary: "Google OAuth access token (ya29.).",
        severity: Severity::High,
        positives: &["ya29.1nHLkHbfUsk4oJK2HHTK_-phpVaGuO", "ya29.YMoQ25lc37Mjpsw_fslIRtG5Kd8gqr"],
        how: token!(anchors: &["ya29."], re: r"ya29\.[0-9A-Za-z_-]{30,}", max: 2010),
        ..SECRET
    },
    Def {
        id: "azure_storage_account_key",
        category: "secret.azure_storage_account_key",
        summary: "Azure storage account / Service Bus key after AccountKey= or SharedAccessKey= in a connection string.",
        positives: &["DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=«raTQROq5vNQIzGzeUkeO1zCQPsJd+pFr7nlXzk9dRvWkKDvbjydykyw8x3xu7G+yVNAcdfegI9najQjwfah86A==»;EndpointSuffix=core.windows.net"],
        negatives: &["AccountKey=;AccountName=x"],
        how: token!(anchors: &["AccountKey=", "SharedAccessKey="], re: r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{42,86}={0,2})", max: 120, group: 1),
        ..SECRET
    },
    Def {
        id: "azure_ad_client_secret",
        category: "secret.azure_ad_client_secret",
        summary: "Azure AD (Entra ID) application client secret (…Q~…, 40 chars).",
        positives: &["eLX9Q~FRazHS0f4QQUPHggbagKJhpBdMyUJkG", "z6u1Q~4ZsIkWA~SMJ.LZC-fgBHt74BxuReuXeoNL"],
        how: token!(anchors: &["Q~"], re: r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}", max: 44, back: 4, back_class: tokens::azure_secret_byte),
        ..SECRET
    },
    Def {
        id: "twilio_api_key",
        category: "secret.twilio_api_key",
        summary: "Twilio API key SID (SK + 32 hex).",
        positives: &["SK5a9709978d2ab7be4cb75bbea42efb35", "SK212ddf1bb10b870f597106e226b1fb26"],
        negatives: &["TASK0123456789abcdef0123456789abcdef"],
        how: token!(anchors: &["SK"], re: r"SK[0-9a-f]{32}"),
        ..SECRET
    },
    Def {
        id: "sendgrid_api_key",
        category: "secret.sendgrid_api_key",
        summary: "SendGrid API key (SG.<22>.<43>).",
        positives: &["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", "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"],
        how: token!(anchors: &["SG."], re: r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
        ..SECRET
    },
    Def {
        id: "mailgun_api_key",
        category: "secret.mailgun_api_key",
        summary: "Mailgun private API key (key- + 32 hex).",
        positives: &["key-8615ce36299d5d01cf0d3ad7ef186347", "key-8b0443b40aed52295abb46e07a428bfa"],
        how: token!(anchors: &["key-"], re: r"key-[0-9a-f]{32}"),
        ..SECRET
    },
    Def {
        id: "mailchimp_api_key",
        category: "secret.mailchimp_api_key",
        summary: "Mailchimp API key (32 hex + -usN datacenter).",
        positives: &["0e1ba8d9713f381eddabaabd3c0eba00-us17", "b28e4b777e53f97128954986bcea91a9-us2"],
        how: token!(anchors: &["-us"], re: r"[0-9a-f]{32}-us[0-9]{1,2}", max: 40, back: 32, back_class: tokens::hex_byte),
        ..SECRET
    },
    Def {
        id: "npm_token",
        category: "secret.npm_token",
        summary: "npm access token (npm_ + 30 random chars + 6-char base62 CRC32 of them, the GitHub token format).",
        positives: &["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", "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"],
        negatives: &["npm_khMRLygCzRURYHWMVH8Cj6ozJjzqUcpLkWBq", "npm_wi4OPQklJCbJKCBZYBMir6gKDFMTOu1SNBk5"],
        how: token!(anchors: &["npm_"], re: r"npm_[A-Za-z0-9]{36}", check: Some(literal::github_checksum_ok)),
        ..SECRET
    },
    Def {
        id: "pypi_token",
        category: "secret.pypi_token",
        summary: "PyPI API token (pypi- + macaroon for pypi.org).",
        positives: &["pypi-AgEIcHlwaS5vcmc57Vd4i4ip3xNyMRidlYfSrHL03susd3tn_rh1TnMSXbKIXFNEd", "pypi-AgEIcHlwaS5vcmc_Npo3zZXSmw1iX9BZ5lk0x1I1WQz8E_ic31jd--dl8vMvZ4ubd"],
        how: token!(anchors: &["pypi-AgEIcHlwaS5vcmc"], re: r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}", max: 1100),
        ..SECRET
    },
    Def {
        id: "dockerhub_pat",
        category: "secret.dockerhub_pat",
        summary: "Docker Hub personal access token (dckr_pat_).",
        positives: &["dckr_pat_d3LlPmsXrNJqcnIzM2sYbBHW8sh", "dckr_pat_VY8L_iyXB8OsJEwkO9xItRPuKbB"],
        how: token!(anchors: &["dckr_pat_"], re: r"dckr_pat_[A-Za-z0-9_-]{27}"),
        ..SECRET
    },
    Def {
        id: "openai_api_key",
        category: "secret.openai_api_key",
        summary: "OpenAI API key (sk-, sk-proj-, sk-svcacct-, sk-admin- with the T3BlbkFJ marker).",
        positives: &["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", "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"],
        how: token!(anchors: &["T3BlbkFJ"], re: r"sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,74}T3BlbkFJ[A-Za-z0-9_-]{20,74}", max: 180, back: 100),
        ..SECRET
    },
    Def {
        id: "anthropic_api_key",
        category: "secret.anthropic_api_key",
        summary: "Anthropic API or admin key (sk-ant-api03- / sk-ant-admin01-).",
        positives: &["sk-ant-api03-y5HofW1etbLgHm0D718KoHE8DR6EjMZnZaOBTdv-HFfYHc700L4LMnbRZSEI9nanpbpbew9jWV-271EkwuumWIB7A_YzkAA", "sk-ant-api03-H0losoWXU3Jd3fEcXx9acUC_j_G7sdhYDpW1yNKfGkIRQAbJWA1rc7UmV2mRD5emDUMJq2l2cwbzbsXQuysd0f-EXEuNsAA"],
        how: token!(anchors: &["sk-ant-"], re: r"sk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{93}AA", max: 120),
        ..SECRET
    },
    Def {
        id: "huggingface_token",
        category: "secret.huggingface_token",
        summary: "Hugging Face access token (hf_ + 34 letters).",
        positives: &["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", "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"],
        how: token!(anchors: &["hf_"], re: r"hf_[A-Za-z]{34}"),
        ..SECRET
    },
    Def {
        id: "shopify_access_token",
        category: "secret.shopify_access_token",
        summary: "Shopify access token (shpat_, shpca_, shppa_ + 32 hex).",
        positives: &["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", "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"],
        how: token!(anchors: &["shpat_", "shpca_", "shppa_"], re: r"shp(?:at|ca|pa)_[a-fA-F0-9]{32}"),
        ..SECRET
    },
    Def {
        id: "shopify_shared_secret",
        category: "secret.shopify_shared_secret",
        summary: "Shopify app shared secret (shpss_ + 32 hex).",
        positives: &["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", "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"],
        how: token!(anchors: &["shpss_"], re: r"shpss_[a-fA-F0-9]{32}"),
        ..SECRET
    },
    Def {
        id: "new_relic_user_api_key",
        category: "secret.new_relic_user_api_key",
        summary: "New Relic user API key (NRAK-).",
        positives: &["NRAK-3WPJ4YJRGO6OMCWR5CR5VZ12ACE", "NRAK-XLGNNJI3VYNNPD2W34HX131HKJK"],
        how: token!(anchors: &["NRAK-"], re: r"NRAK-[A-Z0-9]{27}"),
        ..SECRET
    },
    Def {
        id: "new_relic_insert_key",
        category: "secret.new_relic_insert_key",
        summary: "New Relic insert / license key (NRII-).",
        positives: &["NRII-DSeJEd-TWOTRbpreBHnjdWVw3WCWEE4S", "NRII-N1l-7dKgkU0s-rsnRXfjUlAK8kvk7gZC"],
        how: token!(anchors: &["NRII-"], re: r"NRII-[A-Za-z0-9_-]{32}"),
        ..SECRET
    },
    Def {
        id: "sentry_auth_token",
        category: "secret.sentry_auth_token",
        summary: "Sentry organization (sntrys_) or user (sntryu_) auth token.",
        positives: &["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", "sntrys_eyJn_pgmbUvpX6MkZql3cAqrW2mixfnea2e_UPm+_Xo7I3f=ymxvQ=1MmBY+RBE"],
        how: token!(anchors: &["sntrys_", "sntryu_"], re: r"sntryu_[a-f0-9]{64}|sntrys_eyJ[A-Za-z0-9+/=_]{60,}", max: 420),
        ..SECRET
    },
    Def {
        id: "vault_service_token",
        category: "secret.vault_service_token",
        summary: "HashiCorp Vault service token (hvs.).",
        positives: &["hvs.rOz6LToerZ5HxVLo8Cj8KGxsXa6AEqGaOS9g6UcgcAvQo8mFxzzouT-lL2IsszG16XbJ3Z1JQQsOJwpnL_OeClnesX", "hvs.KWsHydbCvyfyTApLOZDWY8G-Qr4eTHML6UNUPWBfup-md4ovaGhozuh9SHHEZevmDqqp7-3KDHpunc3ex3Re_8ww4D"],
        how: token!(anchors: &["hvs."], re: r"hvs\.(?:[A-Za-z0-9_-]{90,}|[A-Za-z0-9]{24})", max: 210),
        ..SECRET
    },
    Def {
        id: "vault_batch_token",
        category: "secret.vault_batch_token",
        summary: "HashiCorp Vault batch token (hvb.).",
        positives: &["hvb.AB0w_qMlOvZc5iigOCFMM9O1HnpvK4WUBKN4TgnmNmIqTRzzeeht9NEHNdmUwX4ka5FVrgC9BkZIv_T2HLn9cHfCbiB71SwqwKp38L8nXztLHqzLJFDOqfZ5B-32Lj7KlYAGDX8ZgO", "hvb.JDZ34tduZE_sxww45LB2vSHRu41-S7r4HyKqPhLEGEG00j101QQ1VWi3E83McBJYIhMyMboFUt0DgslOtlpaK9dzZMly5muKmBI9pAWAYBrVZn1nnhDSJQovrjmA1cTzsC6sx0-rAA"],
        how: token!(anchors: &["hvb."], re: r"hvb\.[A-Za-z0-9_-]{138,}", max: 310),
        ..SECRET
    },
    Def {
        id: "terraform_cloud_token",
        category: "secret.terraform_cloud_token",
        summary: "Terraform Cloud / Enterprise API token (<14>.atlasv1.<60+>).",
        positives: &["xqed6jwh7hux8d.atlasv1.86nc_jay3swsj34zgw6ewhy1_ki33qc618qv1nj_24=nbmbt04y4xnbyza81", "5boxeo3woxeo6s.atlasv1.r16oxozhdb8vu-mt3gh=79gxal3sc4zfxpgp8_f2vg8md1hmf=nd=5h1zx51"],
        how: token!(anchors: &[".atlasv1."], re: r"[a-z0-9]{14}\.atlasv1\.[a-z0-9_=-]{60,70}", max: 100, back: 14, back_class: tokens::alnum_byte),
        ..SECRET
    },
    Def {
        id: "atlassian_api_token",
        category: "secret.atlassian_api_token",
        summary: "Atlassian API token (ATATT3…) whose last 8 chars are the hex CRC32 of the rest.",
        positives: &["ATATT3xFfGF0KiPiKozk8sdYSWTC1Dx31zDjB4xhJ__3Vyv4uEEyloVBc50agPok8JyFN1A2cvO4TIMGE8QLoNWZzR68uO2eQMtIYxG89bobIW7A25ileD7-bWKuyG2BdN_gjbXz2qFG1kXKVaUBkwlUNuPYLwcGSmvgyl83wu5EexeLGkodoHY=ECC3981C", "ATATT3xFfGF0SKKpV0hQ3HDHJyAi859Vd0B2hVIB5wepEQ_4fYP7JEdayg2lyyNlPLb6AWEOw-bCcHRMKUIStJAeRLKesb7AjkzNpHfaOMxPIZniQIwvvCW9ud-cSDBUUFn7GkIW0SBUabthMEVb15jVEb8cgSNKAimqyXwVRvTscgjznPm-j_E=1B24E136"],
        negatives: &["ATATT3xFfGF0a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5a1B2c3D4e5=0000ABCD"],
        how: token!(anchors: &["ATATT3"], re: r"ATATT3[A-Za-z0-9_=-]{186}", max: 192, check: Some(super::validators::atlassian_checksum_valid)),
        ..SECRET
    },
    Def {
        id: "jwt",
        category: "secret.jwt",
        summary: "JSON Web Token: three base64url segments, the header decodes to a JSON object with `alg`.",
        severity: Severity::High,
        actions: [Action::Redact, Action::Redact],
        positives: &["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUgRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.jemlM6eyqD2we4ktCTU4eTJc_RlZSjFH_zLIvo7-6cI", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUgRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.sj5w94DJxHQLGOJsasYt_5bRBCnEMXByQ0VIVILXUUw"],
        negatives: &["eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln", "eyJhbGciOiJIUzI1NiJ9.notjson.c2ln"],
        how: token!(anchors: &["eyJ"], re: r"eyJ[A-Za-z0-9_-]{8,}\.ey[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*", max: 24100, check: Some(super::validators::jwt_valid)),
        in_default: false,
        ..SECRET
    },
    Def {
        id: "digitalocean_token",
        category: "secret.digitalocean_token",
        summary: "DigitalOcean personal access, OAuth or refresh token (dop_v1_ / doo_v1_ / dor_v1_).",
        positives: &["doo_v1_d813d5aa17fc2ee058af85da5fd7cec96ecd70a67452589125501c78b1c4c7d2", "doo_v1_7543a237481ff1ac75688431ebea1a67dd8ea8797fdf3241f34e89b3b15e72fc"],
        how: token!(anchors: &["dop_v1_", "doo_v1_", "dor_v1_"], re: r"do[por]_v1_[a-f0-9]{64}"),
        ..SECRET
    },
    Def {
        id: "heroku_api_key",
        category: "secret.heroku_api_key",
        summary: "Heroku platform API key (HRKU-).",
        positives: &["HRKU-Px9zt-GsCPPrgNxl9-zKU-_2xXXgLUmgzKrNjHkV2kctN69p0sU2kW92FPQM", "HRKU-hEoJiNgeI99ikL89YgsdEbVtnXKNZzS-9eNrbM0_iBU21X6iDdImzJZPYWQw"],
        how: token!(anchors: &["HRKU-"], re: r"HRKU-[A-Za-z0-9_-]{60}"),
        ..SECRET
    },
    Def {
        id: "databricks_token",
        category: "secret.databricks_token",
        summary: "Databricks personal access token (dapi + 32 hex).",
        positives: &["dapic25e8beef6cd0a4626a75cf6c90713b8-0", "dapi05f1d9a0a799cb0a2266e2c7c0e8b020"],
        how: token!(anchors: &["dapi"], re: r"dapi[a-f0-9]{32}(?:-[0-9])?"),
        ..SECRET
    },
    Def {
        id: "doppler_token",
        category: "secret.doppler_token",
        summary: "Doppler token (dp.pt., dp.st., dp.sa., dp.ct.).",
        positives: &["dp.pt.YvFvyzpH4KMi9fXRgzEtiygAqONk7I8bFhxgQE49", "dp.ct.Uk3LHdz3XZrM33If4o0k5HcAtga4a7jXLy0xXT0UZi"],
        how: token!(anchors: &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct."], re: r"dp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,44}"),
        ..SECRET
    },
    Def {
        id: "pulumi_token",
        category: "secret.pulumi_token",
        summary: "Pulumi access token (pul- + 40 hex).",
        positives: &["pul-f1f959f452959c271d9f74edfc7c1e747b3c0b27", "pul-c9e7837a3541e5bc075f5e4311c7b505fee23c33"],
        how: token!(anchors: &["pul-"], re: r"pul-[a-f0-9]{40}"),
        ..SECRET
    },
    Def {
        id: "grafana_cloud_token",
        category: "secret.grafana_cloud_token",
        summary: "Grafana Cloud access policy token (glc_).",
        positives: &["glc_+P8b+Hk44cCBvlzeC8pCS6ksiiXyk5mh=", "glc_HHpQsCZtbwoJf5YGbu0yBVX/95Bl1avW"],
        how: token!(anchors: &["glc_"], re: r"glc_[A-Za-z0-9+/]{32,}={0,2}", max: 410),
        ..SECRET
    },
    Def {
        id: "grafana_service_account_token",
        category: "secret.grafana_service_account_token",
        summary: "Grafana service account token (glsa_).",
        positives: &["glsa_udO8HucvjC2h1fk1YGm7gVNZ11vYg6pN_02Eee68f", "glsa_39CvDtBGJ8PFVjyhV9otSZ9X7Hg4yJX6_DB53AeAa"],
        how: token!(anchors: &["glsa_"], re: r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}"),
        ..SECRET
    },
    Def {
        id: "grafana_api_key",
        category: "secret.grafana_api_key",
        summary: "Grafana legacy API key (base64 JSON starting eyJrIjoi).",
        positives: &["eyJrIjoitprwHkrY4eaRHg4GstMP6axgupAy4OAeHejsieulLXvnddepjv683e1b1Gb7uk5ADlyI95", "eyJrIjoi5HRZQcDn7Sv06BCyscqR63DWu31bB0cXBvUqTmiADmUffYEjgfZ2B2NUjKPEddsfczYYT9=="],
        how: token!(anchors: &["eyJrIjoi"], re: r"eyJrIjoi[A-Za-z0-9]{70,}={0,2}", max: 410),
        ..SECRET
    },
    Def {
        id: "linear_api_key",
        category: "secret.linear_api_key",
        summary: "Linear API key (lin_api_).",
        positives: &["lin_api_RsmUQEpcOhXla69W1T8kyWZzvhVsEDcRzRcewpNB", "lin_api_kU7KrGAYAMBzHP9L2um2l5VW1hd7p1L5lb1PjdyA"],
        how: token!(anchors: &["lin_api_"], re: r"lin_api_[A-Za-z0-9]{40}"),
        ..SECRET
    },
    Def {
        id: "notion_token",
        category: "secret.notion_token",
        summary: "Notion integration token (ntn_).",
        positives: &["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", "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"],
        how: token!(anchors: &["ntn_"], re: r"ntn_[0-9]{11}[A-Za-z0-9]{35}"),
        ..SECRET
    },
    Def {
        id: "figma_pat",
        category: "secret.figma_pat",
        summary: "Figma personal access token (figd_).",
        positives: &["figd_M-HJLM-3WIUNmmz9XhTvPka8rGs1pKYyiFwdiiab", "figd_Lwxw6SvUn9yNqGQVv2s47NSjyGr-dW2-T23aTP7q"],
        how: token!(anchors: &["figd_"], re: r"figd_[A-Za-z0-9_-]{40}"),
        ..SECRET
    },
    Def {
        id: "postman_api_key",
        category: "secret.postman_api_key",
        summary: "Postman API key (PMAK-).",
        positives: &["PMAK-375eb743ec52380f3aaadec5-19bafe1d72c160e6d7c14eae60a012a438", "PMAK-af7d8987087d24dc12431fde-9ab40ee73d053bd9b107d272fcfa2ce640"],
        how: token!(anchors: &["PMAK-"], re: r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
        ..SECRET
    },
    Def {
        id: "rubygems_api_key",
        category: "secret.rubygems_api_key",
        summary: "RubyGems API key (rubygems_ + 48 hex).",
        positives: &["rubygems_0e0242a8e89ad20134cd350e0936b76e7932e66eee658828", "rubygems_a32f42a9d41f7cad5ec94a298b0fcbb816872892905a707b"],
        how: token!(anchors: &["rubygems_"], re: r"rubygems_[a-f0-9]{48}"),
        ..SECRET
    },
    Def {
        id: "nuget_api_key",
        category: "secret.nuget_api_key",
        summary: "NuGet API key (oy2 + 43 chars).",
        positives: &["oy264hfpjjvue4xut54alsbcos5v3yih3bvrvwiw79b2cs", "oy2l8k0td0n2we2vuvcehm1s6yuqah48hbkd2u6jx7lg8s"],
        how: token!(anchors: &["oy2"], re: r"oy2[a-z0-9]{43}"),
        ..SECRET
    },
    Def {
        id: "square_access_token",
        category: "secret.square_access_token",
        summary: "Square access token (sq0atp-).",
        positives: &["sq0atp-9HyG80KO6tO4y6f8EzQBzK", "sq0atp-fWcF-pN-UOhMgiDr_Tacm_"],
        how: token!(anchors: &["sq0atp-"], re: r"sq0atp-[0-9A-Za-z_-]{22}"),
        ..SECRET
    },
    Def {
        id: "square_oauth_secret",
        category: "secret.square_oauth_secret",
        summary: "Square OAuth application secret (sq0csp-).",
        positives: &["sq0csp-Jb5_tcOtSmcQZMAT-4YgPeP71Xtk1Gb_5MnJtlUJK62", "sq0csp--O6AX3ywKjzhHL19zkf05h5-N25XTrCkZaLzgqt7J34"],
        how: token!(anchors: &["sq0csp-"], re: r"sq0csp-[0-9A-Za-z_-]{43}"),
        ..SECRET
    },
    Def {
        id: "flutterwave_secret_key",
        category: "secret.flutterwave_secret_key",
        summary: "Flutterwave secret key (FLWSECK-…-X).",
        positives: &["FLWSECK-36f414c4e777c738a1a1504967602cff-X", "FLWSECK_TEST-e2e5cff8b35d63c879d7f9c4bf9ea7db-X"],
        how: token!(anchors: &["FLWSECK"], re: r"FLWSECK(?:_TEST)?-[a-f0-9]{32}-X"),
        ..SECRET
    },
    Def {
        id: "age_secret_key",
        category: "secret.age_secret_key",
        summary: "age encryption secret key (AGE-SECRET-KEY-1…).",
        positives: &["AGE-SECRET-KEY-1FX5ZD3AJH7JPA5X70J8S385DNVCW5ZVW5JLSWQCGFWFF5LQRKWFHGHGLVR", "AGE-SECRET-KEY-188LPT39UAJ8TK56C58V0PJM2SD9XV542Y64FR80PZRF523Q56L7DX9H86F"],
        how: token!(anchors: &["AGE-SECRET-KEY-1"], re: r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
        ..SECRET
    },
    Def {
        id: "dynatrace_token",
        category: "secret.dynatrace_token",
        summary: "Dynatrace API token (dt0c01.).",
        positives: &["dt0c01.9350ZA4RPCSNFL7STJ6ZY94R.BT5DEDSN07IYWAZ8KD0ESMGIG1PHABX0L5NH7GQVHSTNKWF75IE14WNEC3URDF7G", "dt0c01.CZ0ZMORHSQ3H2JSLK24CYQHK.PGKLRIVYZXKK1H2MX0FCLX5N2M9XJZV90HIN9LORFRY127RWXFTFWKAIIXIQBTAX"],
        how: token!(anchors: &["dt0c01."], re: r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}"),
        ..SECRET
    },
    Def {
        id: "easypost_api_key",
        category: "secret.easypost_api_key",
        summary: "EasyPost API key (EZAK / EZTK).",
        positives: &["EZTKu7U6K7CwoAykTlRskPEd96ZFwN9SMkrIX6lZOXRusZwSl35jCV5VBh", "EZTK83VrHlTs620Uo8JPczze0tM8GeP4ohoc0d9xOB6Otfai2twd9Gq16C"],
        how: token!(anchors: &["EZAK", "EZTK"], re: r"EZ[AT]K[A-Za-z0-9]{54}"),
        ..SECRET
    },
    Def {
        id: "planetscale_token",
        category: "secret.planetscale_token",
        summary: "PlanetScale token or password (pscale_tkn_, pscale_pw_, pscale_oauth_).",
        positives: &["pscale_tkn_7TXmqGl7_xd6xwOljn8Q3-JDyC5N7EC2", "pscale_tkn_WV=u.gvYDT2mVoE2qsaIAqoMELNqBOmE"],
        how: token!(anchors: &["pscale_tkn_", "pscale_pw_", "pscale_oauth_"], re: r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.=-]{32,64}", max: 80),
        ..SECRET
    },
    Def {
        id: "prefect_api_key",
        category: "secret.prefect_api_key",
        summary: "Prefect API key (pnu_).",
        positives: &["pnu_YpiUljmczXs4M4gmKsG5N5DmVzpnsAzhiT4t", "pnu_QSS1AIRR1dEPYHRg7s1qNxfoUTNUyMIrf9QH"],
        how: token!(anchors: &["pnu_"], re: r"pnu_[A-Za-z0-9]{36}"),
        ..SECRET
    },
    Def {
        id: "readme_api_key",
        category: "secret.readme_api_key",
        summary: "ReadMe API key (rdme_).",
        positives: &["rdme_2sehiap2y7bvhfbnfk10havlk360szo0d7aidyzm9h280wjtid24oj32tt7qzi9y28s2y3", "rdme_ia0j7osk3yzbt9bf66lj4lxwpo8127xc7e46qoyuexu7lermyoso46mzdgbmch5jienc9o"],
        how: token!(anchors: &["rdme_"], re: r"rdme_[a-z0-9]{70}"),
        ..SECRET
    },
    Def {
        id: "brevo_api_key",
        category: "secret.brevo_api_key",
        summary: "Brevo (Sendinblue) API key (xkeysib-).",
        positives: &["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", "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"],
        how: token!(anchors: &["xkeysib-"], re: r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}"),
        ..SECRET
    },
    Def {
        id: "shippo_api_token",
        category: "secret.shippo_api_token",
        summary: "Shippo API token (shippo_live_ / shippo_test_).",
        positives: &["shippo_live_f315a32e5d2586a53ffd4e39426783941db6ad29", "shippo_live_6b91d560e17cff3e04caf759fefdc13f3cdee7da"],
        how: token!(anchors: &["shippo_"], re: r"shippo_(?:live|test)_[a-f0-9]{40}"),
        ..SECRET
    },
    Def {
        id: "typeform_pat",
        category: "secret.typeform_pat",
        summary: "Typeform personal access token (tfp_).",
        positives: &["tfp_=3v-l7wcmjyYe8ynOXF0_PSmJiaS-q9exXI_8_72zkG0ScDgXew7ZYUQsAu", "tfp_A2_ai4HjY5wzLYoX4w6ljYi4RquBCzBm=k3ci.0Y0GtPStn8Sn3mEyV=cSh"],
        how: token!(anchors: &["tfp_"], re: r"tfp_[A-Za-z0-9_.=-]{59}", max: 70),
        ..SECRET
    },
    Def {
        id: "openshift_token",
        category: "secret.openshift_token",
        summary: "OpenShift user token (sha256~).",
        positives: &["sha256~aa6nE1bKMk_O4fhYTxV3wkJFKs7o5m_ZEKDC0uS8GBd", "sha256~E1yWdLmXD9QqtVQiKhljURhnd4Vo4rDkkgfGDf78vHP"],
        how: token!(anchors: &["sha256~"], re: r"sha256~[A-Za-z0-9_-]{43}"),
        ..SECRET
    },
    Def {
        id: "supabase_pat",
        category: "secret.supabase_pat",
        summary: "Supabase personal access token (sbp_ + 40 hex).",
        positives: &["sbp_a1f75caede4b068251a60a4baf29c87472e25244", "sbp_c6ed80ddb5541c344bec72142e6907bc28c21356"],
        how: token!(anchors: &["sbp_"], re: r"sbp_[a-f0-9]{40}"),
        ..SECRET
    },
    Def {
        id: "cloudflare_origin_ca_key",
        category: "secret.cloudflare_origin_ca_key",
        summary: "Cloudflare Origin CA key (v1.0-).",
        positives: &["v1.0-7f87863643c776db10ce99ae-c1d57529e5f2b277a4e97a7cd417c92118a29a8c3dce9e441dfc649d536b1b37baf288aaa40a91a08f1e7866f8b9fb5e592640db3dd49e41de00c47e6612bf8f60c47dce929b6b1145", "v1.0-eae0371be3a7e3d5e4f83a50-9d00c8380918cd48c6fd618965cda26ab6e40c88ce29b9ed296ec9ac1b0548a19798127fb7bddff6843fcddab4172706ab9f5d18eebae6dc91b1790f65b459354cd186a90fd4cd4459"],
        how: token!(anchors: &["v1.0-"], re: r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}", max: 180),
        ..SECRET
    },
    Def {
        id: "alibaba_access_key_id",
        category: "secret.alibaba_access_key_id",
        summary: "Alibaba Cloud AccessKey id (LTAI).",
        positives: &["LTAI3zN7rn4MdCvsll4Zcl9D", "LTAIHV0qxZ0ktYldoqA4INmI"],
        how: token!(anchors: &["LTAI"], re: r"LTAI[A-Za-z0-9]{20}"),
        ..SECRET
    },
    Def {
        id: "mapbox_secret_token",
        category: "secret.mapbox_secret_token",
        summary: "Mapbox secret access token (sk.eyJ…).",
        positives: &["sk.eyJEUiQrwlpUqOvTYW9px3nZg6dw-_6vxsLPaS3nyJa0rYqixgRKm.g19e8bKDJ37atmgoJjP-", "sk.eyJJK5L27Ouc0r2yXuS6mPwcROzteiPeplBLUZderVLrp8Odaxkba.FKVWjlh6usekUKdo7W-0"],
        how: token!(anchors: &["sk.eyJ"], re: r"sk\.eyJ[A-Za-z0-9_-]{50,}\.[A-Za-z0-9_-]{20,100}", max: 620),
        ..SECRET
    },
    Def {
        id: "jfrog_api_key",
        category: "secret.jfrog_api_key",
        summary: "JFrog Artifactory API key (AKCp).",
        positives: &["AKCpvBLStBZVWh01F5Utn4c9DIj1mDK7xsl6isPEFBDmn8UDsznEmJ0nMjSHuuBjcDqnim5hp", "AKCpu36D9QKGVzESCo4uX30ernua0ShkSLJmYaFg8RGGr34svepUcyzAPJjtDO1VqhqjmOhAt"],
        how: token!(anchors: &["AKCp"], re: r"AKCp[A-Za-z0-9]{69}"),
        ..SECRET
    },
    Def {
        id: "onepassword_service_account_token",
        category: "secret.onepassword_service_account_token",
        summary: "1Password service account token (ops_eyJ…).",
        positives: &["ops_eyJkVcdkDvQG8Jt2BcMWxwtkoUTlaL39+VKRH8tkOeFvM625vKDimiXUhpYCA2vUBS1cfqEVuR3KkVWLbLZ3wg4fQoC1iA5IySmDzi6126wy2sbCsK/Dqt02DUyxbt44UUF5ndjoPllVr/JhdgTgOBI4r4SZfZigk4+hfOU2rr3AWedeH7SLX6JRKbsVF+GBPrQId8cBKeEJ5ZFzjTvmRY0AUqSU+bC/ADB4vi5gPsAACRwuV+CYVhT4ruKB7===", "ops_eyJbis5LaPHRRvZ1vYYTw1l/tFI0AFRk8h8OXFXxCw4eroxTs16sDIFyPgejJ/BPK7VIYdF57U9DuJ53yfeAuOP9XGDsEmn/cERH4nI/pAW/EoaN0ZFoZkWmikUqH83nZ0Bq3S+8eMJH4ESUODnRAXg1M4nkpSSAif7ZCrzx7WrgBdpqoahrHo+f1fhHoeKN+b6iAP/VMsxpuG1lF8szd6pHQoDpzmRB2FQS5H3CszTyucR+d+011hz4yXV16"],
        how: token!(anchors: &["ops_eyJ"], re: r"ops_eyJ[A-Za-z0-9+/]{250,}={0,3}", max: 2020),
        ..SECRET
    },
    Def {
        id: "adafruit_io_key",
        category: "secret.adafruit_io_key",
        summary: "Adafruit IO key (aio_).",
        positives: &["aio_WDUkgxE56qzFK9IIChQf8F3QvXoP", "aio_p3LRi6gjHHNyIKhVxZqoQIDUZxxt"],
        how: token!(anchors: &["aio_"], re: r"aio_[A-Za-z0-9]{28}"),
        ..SECRET
    },
    Def {
        id: "telegram_bot_token",
        category: "secret.telegram_bot_token",
        summary: "Telegram bot token (<bot id>:AA…).",
        positives: &["5049731944:AARUA_8vvDjxhUNI01cICOrN264jbyzu-qy", "475147303:AAyOaOBEkChUQFZJsLw5P_nCdWiudYlTgML"],
        how: token!(anchors: &[":AA"], re: r"[0-9]{8,10}:AA[A-Za-z0-9_-]{33}", max: 50, back: 10, back_class: tokens::digit_byte),
        ..SECRET
    },
    Def {
        id: "discord_webhook_url",
        category: "secret.discord_webhook_url",
        summary: "Discord webhook URL (discord.com/api/webhooks/<id>/<token>).",
        positives: &["discord.com/api/webhooks/87368147644500277/9T52j6YigGHR8gP4bVyhi-auEjUMM6DszPI6hEE3_ubVsGxgM_qyGY9JwGZ0VLi", "discord.com/api/webhooks/95812580219553564/_eJnpyZsDQScVqpvjKMMHBL4gX5j_E1Ngazl_DaZpoc4CvvvKK1SLL3qRgb4c"],
        how: token!(anchors: &["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"], re: r"discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,68}", max: 120),
        ..SECRET
    },
    Def {
        id: "teams_webhook_url",
        category: "secret.teams_webhook_url",
        summary: "Microsoft Teams incoming-webhook URL (webhook.office.com/webhookb2/…).",
        positives: &["webhook.office.com/webhookb2/2587fa00eeb238ac664-73670cda36e55f5b@e1af23a1bd97d-5e79107f288da-30960742/IncomingWebhook/6f2821b8e4741b422f2fbbb5ad7b02e7/4187046-fefaa-b7e3-d9c964e-45123cbcc", "webhook.office.com/webhookb2/396eebcef-0c3f162cc9ac84971-09d-be32@d68-08148f6de1647cb504c22b8e-8772bc2/IncomingWebhook/f4bec5aeddcf93ea0fac9a04d05e7af1/--efd7e76bdf3b46bedab2891b0027eb3605"],
        how: token!(anchors: &["webhook.office.com/webhookb2/"], re: r"webhook\.office\.com/webhookb2/[0-9a-f-]{36}@[0-9a-f-]{36}/IncomingWebhook/[0-9a-f]{32}/[0-9a-f-]{36}", max: 200),
        ..SECRET
    },
    Def {
        id: "hubspot_private_app_token",
        category: "secret.hubspot_private_app_token",
        summary: "HubSpot private app token (pat-na1- / pat-eu1-).",
        positives: &["pat-eu1-c2b19efb-0912-f712-d57e-ff50eb2e20dd", "pat-na1-6fa00b25-1401-febe-2959-afac491fdc0a"],
        how: token!(anchors: &["pat-na1-", "pat-eu1-"], re: r"pat-(?:na|eu)1-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        ..SECRET
    },
    Def {
        id: "aws_session_token",
        category: "secret.aws_session_token",
        summary: "AWS STS session token (FwoGZXIvYXdzE… / IQoJb3JpZ2luX2Vj…).",
        positives: &["FwoGZXIvYXdzElWpmnnZYmLqJfjgtW7Aasoc/ByTc7DPdXOu80bWvMhIdKAjQ6jpsacg+kCKNXDtsOKmI0+hvmX8axL0J=", "IQoJb3JpZ2luX2VjPU4no8s8S6lqHCOxFHtV8FK6iPsov7ki3ztNO3dDlh98p2JeXdW2EnjZj8ycF7c2gstA3mZbOafyKmAL="],
        how: token!(anchors: &["FwoGZXIvYXdzE", "IQoJb3JpZ2luX2Vj"], re: r"(?:FwoGZXIvYXdzE|IQoJb3JpZ2luX2Vj)[A-Za-z0-9/+]{80,}={0,2}", max: 1300),
        ..SECRET
    },
    Def {
        id: "lob_api_key",
        category: "secret.lob_api_key",
        summary: "Lob live API key (live_ + 35 hex).",
        positives: &["live_c0f3c48545cd50a5ce4b7b8b2768a3bedda", "live_4ed3ea738b87a2665c09e0b0e20b7a99869"],
        how: token!(anchors: &["live_"], re: r"live_[a-f0-9]{35}"),
        ..SECRET
    },
    Def {
        id: "bitbucket_app_password",
        category: "secret.bitbucket_app_password",
        summary: "Bitbucket app password / API token (ATBB + 32 chars).",
        positives: &["ATBB4VYI48ZLeoTMAZMQohcJYziKUGRTyBr9", "ATBBeCr9tI2ILTljwHHx3x5XbtY2mE0E8Q3c"],
        how: token!(anchors: &["ATBB"], re: r"ATBB[A-Za-z0-9]{32}"),
        ..SECRET
    },
];
