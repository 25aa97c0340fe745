//! Labelled values per detector type, generated from the formats as the
//! vendors and issuers publish them (written independently of the engine's
//! confirming patterns), and hard negatives that look alike but are not.

use crate::rng::Rng;
use veil_engine::detectors::crypto::{keccak256, sha256};
use veil_engine::detectors::validators::{luhn_valid, verhoeff_valid};

/// One sensitive value to embed.
pub struct Sample {
    pub value: String,
    /// The part of `value` that is the finding (byte range).
    pub label: (usize, usize),
    /// A JSON key / form field that is natural (and, where the type needs
    /// context, required) for the value.
    pub key: &'static str,
    /// Words that introduce the value in free text.
    pub phrase: &'static str,
    /// The whole document when the type needs one (GCP key files, AWS
    /// credential pairs).
    pub whole_json: Option<String>,
    /// Other labelled values inside `whole_json` (type, value).
    pub also: Vec<(&'static str, String)>,
}

impl Sample {
    fn plain(value: String, key: &'static str, phrase: &'static str) -> Sample {
        let label = (0, value.len());
        Sample {
            value,
            label,
            key,
            phrase,
            whole_json: None,
            also: Vec::new(),
        }
    }

    fn part(value: String, part: &str, key: &'static str, phrase: &'static str) -> Sample {
        let s = value.find(part).unwrap_or(0);
        Sample {
            label: (s, s + part.len()),
            value,
            key,
            phrase,
            whole_json: None,
            also: Vec::new(),
        }
    }
}

const DIGITS: &str = "0123456789";
const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ALPHA: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const UPNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LONUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const HEXL: &str = "0123456789abcdef";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64U: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const B32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BECH: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Expands a format such as `xoxb-{d:11}-{an:24}`: `{class:n}` is n
/// characters of a class (d, an, al, up, lo, hl, b64, bu, b32, age, azs).
pub fn pattern(r: &mut Rng, spec: &str) -> String {
    let mut out = String::new();
    let mut rest = spec;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .unwrap_or(rest.len());
        let inner = &rest[open + 1..close];
        let (class, n) = inner.split_once(':').unwrap_or((inner, "1"));
        let n: usize = n.parse().unwrap_or(1);
        let alphabet = match class {
            "d" => DIGITS,
            "an" => ALNUM,
            "al" => ALPHA,
            "up" => UPNUM,
            "lo" => LONUM,
            "hl" => HEXL,
            "b64" => B64,
            "bu" => B64U,
            "b32" => B32,
            "age" => "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
            "azs" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.-",
            _ => ALNUM,
        };
        out.push_str(&r.string(alphabet, n));
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

fn uuid(r: &mut Rng) -> String {
    pattern(r, "{hl:8}-{hl:4}-4{hl:3}-a{hl:3}-{hl:12}")
}

fn b64_encode(bytes: &[u8]) -> String {
    let a = B64.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(a[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64url(bytes: &[u8]) -> String {
    b64_encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62(mut n: u32, width: usize) -> String {
    let mut v = Vec::new();
    while n > 0 {
        v.push(B62[(n % 62) as usize]);
        n /= 62;
    }
    while v.len() < width {
        v.push(b'0');
    }
    v.reverse();
    String::from_utf8(v).unwrap_or_default()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Appends the digit that makes `digits` pass `valid`.
fn with_check_digit(digits: String, valid: fn(&[u8]) -> bool) -> String {
    for d in b'0'..=b'9' {
        let mut s = digits.clone();
        s.push(d as char);
        if valid(s.as_bytes()) {
            return s;
        }
    }
    digits + "0"
}

fn group(s: &str, sizes: &[usize], sep: &str) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    for &n in sizes {
        out.push(&s[i..(i + n).min(s.len())]);
        i += n;
    }
    out.join(sep)
}

fn card(r: &mut Rng) -> String {
    let (prefix, len) = *r.pick(&[
        ("4", 16),
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("2720", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("65", 16),
        ("3528", 16),
        ("3589", 16),
        ("36", 14),
        ("62", 16),
        ("4", 19),
    ]);
    let body = format!("{prefix}{}", r.string(DIGITS, len - prefix.len() - 1));
    let number = with_check_digit(body, luhn_valid);
    match (len, r.range(0, 2)) {
        (_, 0) => number,
        (15, k) => group(&number, &[4, 6, 5], if k == 1 { " " } else { "-" }),
        (16, k) => group(&number, &[4, 4, 4, 4], if k == 1 { " " } else { "-" }),
        _ => number,
    }
}

fn iban(r: &mut Rng) -> String {
    let (country, bban) = match r.range(0, 4) {
        0 => ("DE", r.string(DIGITS, 18)),
        1 => (
            "GB",
            format!(
                "{}{}",
                r.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                r.string(DIGITS, 14)
            ),
        ),
        2 => (
            "NL",
            format!(
                "{}{}",
                r.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                r.string(DIGITS, 10)
            ),
        ),
        3 => ("ES", r.string(DIGITS, 20)),
        _ => ("FR", r.string(DIGITS, 23)),
    };
    let rearranged = format!("{bban}{country}00");
    let mut rem = 0u32;
    for c in rearranged.bytes() {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    let check = 98 - rem;
    let compact = format!("{country}{check:02}{bban}");
    if r.chance(50) {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        compact
    }
}

fn bech32_address(r: &mut Rng) -> String {
    // P2WPKH: witness version 0 + 20-byte program, BIP-173 checksum.
    let program = r.bytes(20);
    let mut data = vec![0u8];
    let (mut acc, mut bits) = (0u32, 0);
    for b in program {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            data.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        data.push(((acc << (5 - bits)) & 31) as u8);
    }
    let hrp = b"bc";
    let mut values: Vec<u8> = hrp.iter().map(|b| b >> 5).collect();
    values.push(0);
    values.extend(hrp.iter().map(|b| b & 31));
    values.extend(&data);
    values.extend([0u8; 6]);
    let gen = [
        0x3b6a57b2u32,
        0x26508e6d,
        0x1ea119fa,
        0x3d4233dd,
        0x2a1462b3,
    ];
    let mut chk = 1u32;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ u32::from(v);
        for (i, g) in gen.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    let polymod = chk ^ 1;
    let bech = BECH.as_bytes();
    let mut out = String::from("bc1");
    for d in &data {
        out.push(bech[*d as usize] as char);
    }
    for i in 0..6 {
        out.push(bech[((polymod >> (5 * (5 - i))) & 31) as usize] as char);
    }
    out
}

fn base58check(payload: &[u8]) -> String {
    let mut full = payload.to_vec();
    full.extend_from_slice(&sha256(&sha256(payload))[..4]);
    let alphabet = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new();
    for &byte in &full {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out: String = full.iter().take_while(|&&b| b == 0).map(|_| '1').collect();
    out.extend(digits.iter().rev().map(|&d| alphabet[d as usize] as char));
    out
}

fn eip55(addr_hex: &str) -> String {
    let hash = keccak256(addr_hex.as_bytes());
    addr_hex
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xf;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn password(r: &mut Rng, n: usize) -> String {
    loop {
        let p = r.string(
            "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%^*-_",
            n,
        );
        let classes = [
            p.bytes().any(|b| b.is_ascii_lowercase()),
            p.bytes().any(|b| b.is_ascii_uppercase()),
            p.bytes().any(|b| b.is_ascii_digit()),
        ];
        if classes.iter().all(|&c| c) {
            return p;
        }
    }
}

/// A positive value of detector `id`.
pub fn sample(id: &str, r: &mut Rng) -> Option<Sample> {
    let p = |r: &mut Rng, spec: &str, key: &'static str| {
        Sample::plain(pattern(r, spec), key, "here is the key:")
    };
    let s = match id {
        "email" => {
            let first = r
                .pick(&["jane", "omar", "li", "sofia", "arjun", "ana-maria", "j.o"])
                .to_string();
            let domain = r.pick(&[
                "example.com",
                "mail.example.co.uk",
                "corp.example.org",
                "ex-ample.io",
            ]);
            Sample::plain(
                format!(
                    "{first}.{}{}@{domain}",
                    pattern(r, "{al:5}").to_lowercase(),
                    r.range(1, 99)
                ),
                "email",
                "write to",
            )
        }
        "payment_card" => Sample::plain(card(r), "card_number", "card"),
        "us_ssn" => {
            let area = loop {
                let a = r.range(1, 899);
                if a != 666 {
                    break a;
                }
            };
            let (g, sr) = (r.range(1, 99), r.range(1, 9999));
            if r.chance(50) {
                Sample::plain(
                    format!("{area:03}-{g:02}-{sr:04}"),
                    "customer_ref",
                    "number",
                )
            } else {
                Sample::plain(format!("{area:03}{g:02}{sr:04}"), "ssn", "SSN:")
            }
        }
        "us_itin" => {
            let g = *r.pick(&[50, 65, 70, 78, 88, 90, 92, 94, 99]);
            let v = format!("9{:02}-{g:02}-{:04}", r.range(0, 99), r.range(0, 9999));
            if r.chance(50) {
                Sample::plain(v, "tax_ref", "number")
            } else {
                Sample::plain(v.replace('-', ""), "itin", "ITIN")
            }
        }
        "phone_number" => match r.range(0, 7) {
            0 => Sample::plain(
                format!(
                    "+1 {} {} {}",
                    r.range(201, 989),
                    r.range(200, 999),
                    pattern(r, "{d:4}")
                ),
                "contact_number",
                "reach us on",
            ),
            1 => Sample::plain(
                format!("+44 20 {} {}", r.range(7000, 8999), pattern(r, "{d:4}")),
                "contact_number",
                "reach us on",
            ),
            2 => Sample::plain(format!("+4915{}", pattern(r, "{d:9}")), "msisdn", "sms"),
            3 => Sample::plain(
                format!(
                    "({}) {}-{}",
                    r.range(201, 989),
                    r.range(200, 999),
                    pattern(r, "{d:4}")
                ),
                "phone",
                "phone:",
            ),
            4 => Sample::plain(
                format!("07700 {}", pattern(r, "{d:6}")),
                "mobile",
                "mobile:",
            ),
            5 => Sample::plain(
                format!(
                    "0{} {} {} {} {}",
                    r.range(1, 7),
                    r.range(10, 99),
                    r.range(10, 99),
                    r.range(10, 99),
                    r.range(10, 99)
                ),
                "telephone",
                "tel",
            ),
            6 => Sample::plain(
                format!("9{} {}", pattern(r, "{d:4}"), pattern(r, "{d:5}")),
                "phone",
                "phone",
            ),
            _ => Sample::plain(
                format!("(11) 9{}-{}", pattern(r, "{d:4}"), pattern(r, "{d:4}")),
                "celular",
                "celular",
            ),
        },
        "iban" => Sample::plain(iban(r), "iban", "IBAN"),
        "ipv4_address" => Sample::plain(
            format!(
                "{}.{}.{}.{}",
                r.range(1, 223),
                r.range(0, 255),
                r.range(0, 255),
                r.range(1, 254)
            ),
            "client_ip",
            "from",
        ),
        "ipv6_address" => {
            let hi = (0x2001_0db8u128 << 96) | (u128::from(r.next_u64() & 0xffff) << 64);
            let lo = if r.chance(50) {
                u128::from(r.next_u64())
            } else {
                u128::from(r.next_u64() & 0xffff)
            };
            Sample::plain(
                std::net::Ipv6Addr::from(hi | lo).to_string(),
                "client_ip",
                "from",
            )
        }
        "uk_nino" => {
            let a = r.string("ABCEHJKLMPRSWY", 1);
            let b = r.string("ABCEHJLMPRSWY", 1);
            let d = pattern(r, "{d:6}");
            let suffix = *r.pick(&['A', 'B', 'C', 'D']);
            if r.chance(50) {
                Sample::plain(format!("{a}{b}{d}{suffix}"), "nino", "NI number")
            } else {
                Sample::plain(
                    format!("{a}{b} {} {} {} {suffix}", &d[0..2], &d[2..4], &d[4..6]),
                    "nino",
                    "NI number",
                )
            }
        }
        "ca_sin" => {
            let first = *r.pick(&["1", "2", "3", "4", "5", "6", "7", "9"]);
            let sin = with_check_digit(format!("{first}{}", pattern(r, "{d:7}")), luhn_valid);
            let shown = match r.range(0, 2) {
                0 => sin,
                1 => group(&sin, &[3, 3, 3], " "),
                _ => group(&sin, &[3, 3, 3], "-"),
            };
            Sample::plain(shown, "sin", "SIN")
        }
        "in_aadhaar" => {
            let n = with_check_digit(
                format!("{}{}", r.range(2, 9), pattern(r, "{d:10}")),
                verhoeff_valid,
            );
            let shown = if r.chance(50) {
                group(&n, &[4, 4, 4], " ")
            } else {
                n
            };
            Sample::plain(shown, "aadhaar", "Aadhaar no.")
        }
        "date_of_birth" => {
            let (y, m, d) = (r.range(1930, 2010), r.range(1, 12), r.range(1, 28));
            let v = if r.chance(50) {
                format!("{y}-{m:02}-{d:02}")
            } else {
                format!("{d:02}/{m:02}/{y}")
            };
            Sample::plain(
                v,
                r.pick::<&'static str>(&["dob", "date_of_birth", "birthDate"]),
                "date of birth:",
            )
        }
        "passport_number" => {
            let v = if r.chance(50) {
                pattern(r, "{d:9}")
            } else {
                format!("{}{}", pattern(r, "{up:1}"), pattern(r, "{d:8}")).to_uppercase()
            };
            Sample::plain(v, "passport_number", "passport no.")
        }
        "drivers_license" => {
            let v = if r.chance(50) {
                format!("D{}", pattern(r, "{d:7}"))
            } else {
                format!(
                    "{}{}",
                    r.string("ABCDEFGHJKLMNPRSTUVWXYZ", 2),
                    pattern(r, "{d:6}")
                )
            };
            Sample::plain(v, "drivers_license", "driving licence")
        }
        "bitcoin_address" => {
            let v = match r.range(0, 2) {
                0 => base58check(&[vec![0u8], r.bytes(20)].concat()),
                1 => base58check(&[vec![5u8], r.bytes(20)].concat()),
                _ => bech32_address(r),
            };
            Sample::plain(v, "payout_address", "send to")
        }
        "ethereum_address" => {
            let hex: String = r.bytes(20).iter().map(|b| format!("{b:02x}")).collect();
            if r.chance(50) {
                Sample::plain(format!("0x{}", eip55(&hex)), "to", "send to")
            } else {
                Sample::plain(format!("0x{hex}"), "wallet", "wallet")
            }
        }
        "aws_access_key_id" => Sample::plain(
            format!("{}{}", r.pick(&["AKIA", "ASIA"]), pattern(r, "{b32:16}")),
            "aws_access_key_id",
            "key id",
        ),
        "aws_secret_access_key" => {
            let v = loop {
                let v = pattern(r, "{b64:40}");
                if v.bytes().any(|b| b.is_ascii_digit())
                    && v.bytes().any(|b| b.is_ascii_uppercase())
                    && v.bytes().any(|b| b.is_ascii_lowercase())
                {
                    break v;
                }
            };
            if r.chance(50) {
                // Next to its access key id, with no keyword: the IAM
                // console's credentials CSV or a JSON credentials object.
                let id = format!("{}{}", r.pick(&["AKIA", "ASIA"]), pattern(r, "{b32:16}"));
                let doc = if r.chance(50) {
                    format!(
                        "User name,Access key ID,Secret access key\ndeploy-{},{id},{v}\n",
                        pattern(r, "{d:3}")
                    )
                } else {
                    format!("{{\"user\":\"ci-{}\",\"key\":\"{id}\",\"value\":\"{v}\",\"status\":\"Active\"}}", pattern(r, "{d:3}"))
                };
                let mut s = Sample::plain(v, "aws_secret_access_key", "");
                s.whole_json = Some(doc);
                s.also.push(("aws_access_key_id", id));
                return Some(s);
            }
            Sample::plain(v, "aws_secret_access_key", "aws_secret_access_key =")
        }
        "gcp_service_account_key" => {
            let id = pattern(r, "{hl:40}");
            let doc = format!(
                "{{\"type\": \"service_account\", \"project_id\": \"proj-{}\", \"private_key_id\": \"{id}\", \"token_uri\": \"https://oauth2.googleapis.com/token\"}}",
                pattern(r, "{d:4}")
            );
            let mut s = Sample::plain(id, "private_key_id", "");
            s.whole_json = Some(doc);
            s
        }
        "pem_private_key" => {
            let kind = *r.pick(&[
                "RSA PRIVATE KEY",
                "EC PRIVATE KEY",
                "PRIVATE KEY",
                "OPENSSH PRIVATE KEY",
                "ENCRYPTED PRIVATE KEY",
            ]);
            let body: Vec<String> = (0..r.range(2, 5))
                .map(|_| b64_encode(&r.bytes(48)))
                .collect();
            Sample::plain(
                format!(
                    "-----BEGIN {kind}-----\n{}\n-----END {kind}-----",
                    body.join("\n")
                ),
                "private_key",
                "key:",
            )
        }
        "sentry_dsn" => {
            let key = pattern(r, "{hl:32}");
            let v = format!(
                "https://{key}@o{}.ingest.sentry.io/{}",
                pattern(r, "{d:6}"),
                pattern(r, "{d:7}")
            );
            Sample::part(v, &key, "sentry_dsn", "dsn")
        }
        "password_in_url" => {
            // RFC 3986 userinfo: unreserved and sub-delims, unencoded.
            let pw = loop {
                let p = r.string(
                    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.~!*",
                    14,
                );
                if p.bytes().any(|b| b.is_ascii_digit()) && !p.ends_with('.') {
                    break p;
                }
            };
            let v = format!(
                "{}://app:{pw}@db{}.internal:5432/app",
                r.pick(&["postgres", "mysql", "redis", "amqp"]),
                r.range(1, 9)
            );
            Sample::part(v, &pw, "database_url", "connect to")
        }
        "basic_auth_credentials" => {
            let creds =
                b64_encode(format!("svc{}:{}", r.range(1, 999), password(r, 16)).as_bytes());
            Sample::part(format!("Basic {creds}"), &creds, "authorization", "header")
        }
        "bearer_token" => {
            let t = pattern(r, "{an:40}");
            Sample::part(format!("Bearer {t}"), &t, "authorization", "header")
        }
        "generic_secret" => {
            let key = *r.pick(&[
                "password",
                "client_secret",
                "DB_PASSWORD",
                "api_key",
                "refreshToken",
            ]);
            let n = r.range(14, 28);
            Sample::plain(password(r, n), key, "password:")
        }
        "datadog_api_key" => Sample::plain(pattern(r, "{hl:32}"), "DD_API_KEY", "DD_API_KEY="),
        "datadog_app_key" => Sample::plain(pattern(r, "{hl:40}"), "DD_APP_KEY", "DD_APP_KEY="),
        "twilio_auth_token" => Sample::plain(
            pattern(r, "{hl:32}"),
            "TWILIO_AUTH_TOKEN",
            "TWILIO_AUTH_TOKEN=",
        ),
        "github_token" => {
            let random = pattern(r, "{an:30}");
            let prefix = *r.pick(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]);
            Sample::plain(
                format!("{prefix}{random}{}", base62(crc32(random.as_bytes()), 6)),
                "token_ref",
                "token",
            )
        }
        "npm_token" => {
            // npm adopted GitHub's format: 30 random chars, then the
            // base62 CRC32 of them.
            let random = pattern(r, "{an:30}");
            Sample::plain(
                format!("npm_{random}{}", base62(crc32(random.as_bytes()), 6)),
                "npm_token_ref",
                "token",
            )
        }
        "atlassian_api_token" => {
            let body = format!("ATATT3xFfGF0{}=", pattern(r, "{bu:171}"));
            let crc = crc32(body.as_bytes());
            Sample::plain(format!("{body}{crc:08X}"), "jira_credential_ref", "token")
        }
        "jwt" => {
            let header = b64url(br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
            let payload = b64url(
                format!(
                    r#"{{"sub":"{}","iat":{}}}"#,
                    uuid(r),
                    r.range(1_600_000_000, 1_800_000_000)
                )
                .as_bytes(),
            );
            let sig = b64url(&r.bytes(64));
            Sample::plain(format!("{header}.{payload}.{sig}"), "id_ref", "jwt")
        }
        "slack_webhook_url" => {
            let v = pattern(
                r,
                "https://hooks.slack.com/services/T{up:8}/B{up:10}/{an:24}",
            );
            let part = v.trim_start_matches("https://").to_string();
            Sample::part(v, &part, "webhook", "post to")
        }
        "discord_webhook_url" => {
            let v = pattern(r, "https://discord.com/api/webhooks/{d:18}/{bu:68}");
            let part = v.trim_start_matches("https://").to_string();
            Sample::part(v, &part, "webhook", "post to")
        }
        "teams_webhook_url" => {
            let part = format!(
                "webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{}",
                uuid(r),
                uuid(r),
                pattern(r, "{hl:32}"),
                uuid(r)
            );
            Sample::part(format!("https://acme.{part}"), &part, "webhook", "post to")
        }
        "azure_storage_account_key" => {
            let key = format!("{}==", pattern(r, "{b64:86}"));
            let v = format!("DefaultEndpointsProtocol=https;AccountName=acct{};AccountKey={key};EndpointSuffix=core.windows.net", r.range(1, 999));
            Sample::part(v, &key, "connection", "use")
        }
        "hubspot_private_app_token" => {
            Sample::plain(format!("pat-na1-{}", uuid(r)), "hubspot_ref", "token")
        }
        "openai_api_key" => {
            let v = if r.chance(50) {
                pattern(r, "sk-proj-{bu:74}T3BlbkFJ{bu:74}")
            } else {
                pattern(r, "sk-{an:20}T3BlbkFJ{an:20}")
            };
            Sample::plain(v, "openai_ref", "token")
        }
        other => {
            let spec = match other {
                "github_fine_grained_pat" => "github_pat_{an:22}_{an:59}",
                "gitlab_pat" => "glpat-{bu:20}",
                "gitlab_runner_token" => "glrt-{bu:20}",
                "gitlab_deploy_token" => "gldt-{bu:20}",
                "gitlab_pipeline_trigger_token" => "glptt-{hl:40}",
                "gitlab_feed_token" => "glft-{bu:20}",
                "slack_bot_token" => "xoxb-{d:11}-{d:13}-{an:24}",
                "slack_user_token" => "xoxp-{d:11}-{d:12}-{d:13}-{hl:32}",
                "slack_app_token" => "xapp-1-A{up:10}-{d:13}-{hl:64}",
                "stripe_secret_key" => "sk_live_{an:24}",
                "stripe_restricted_key" => "rk_live_{an:24}",
                "stripe_webhook_secret" => "whsec_{an:32}",
                "google_api_key" => "AIza{bu:35}",
                "google_oauth_client_secret" => "GOCSPX-{bu:28}",
                "google_oauth_access_token" => "ya29.{bu:120}",
                "azure_ad_client_secret" => "{an:3}{d:1}Q~{azs:33}{an:1}",
                "twilio_api_key" => "SK{hl:32}",
                "sendgrid_api_key" => "SG.{bu:22}.{bu:43}",
                "mailgun_api_key" => "key-{hl:32}",
                "mailchimp_api_key" => "{hl:32}-us{d:2}",
                "pypi_token" => "pypi-AgEIcHlwaS5vcmc{bu:70}",
                "dockerhub_pat" => "dckr_pat_{bu:27}",
                "anthropic_api_key" => "sk-ant-api03-{bu:93}AA",
                "huggingface_token" => "hf_{al:34}",
                "shopify_access_token" => "shpat_{hl:32}",
                "shopify_shared_secret" => "shpss_{hl:32}",
                "new_relic_user_api_key" => "NRAK-{up:27}",
                "new_relic_insert_key" => "NRII-{bu:32}",
                "sentry_auth_token" => "sntryu_{hl:64}",
                "vault_service_token" => "hvs.{bu:95}",
                "vault_batch_token" => "hvb.{bu:150}",
                "terraform_cloud_token" => "{lo:14}.atlasv1.{lo:67}",
                "digitalocean_token" => "dop_v1_{hl:64}",
                "heroku_api_key" => "HRKU-{bu:60}",
                "databricks_token" => "dapi{hl:32}",
                "doppler_token" => "dp.pt.{an:43}",
                "pulumi_token" => "pul-{hl:40}",
                "grafana_cloud_token" => "glc_{an:80}",
                "grafana_service_account_token" => "glsa_{an:32}_{hl:8}",
                "grafana_api_key" => "eyJrIjoi{an:80}",
                "linear_api_key" => "lin_api_{an:40}",
                "notion_token" => "ntn_{d:11}{an:35}",
                "figma_pat" => "figd_{bu:40}",
                "postman_api_key" => "PMAK-{hl:24}-{hl:34}",
                "rubygems_api_key" => "rubygems_{hl:48}",
                "nuget_api_key" => "oy2{lo:43}",
                "square_access_token" => "sq0atp-{bu:22}",
                "square_oauth_secret" => "sq0csp-{bu:43}",
                "flutterwave_secret_key" => "FLWSECK-{hl:32}-X",
                "age_secret_key" => "AGE-SECRET-KEY-1{age:58}",
                "dynatrace_token" => "dt0c01.{up:24}.{up:64}",
                "easypost_api_key" => "EZAK{an:54}",
                "planetscale_token" => "pscale_tkn_{bu:43}",
                "prefect_api_key" => "pnu_{an:36}",
                "readme_api_key" => "rdme_{lo:70}",
                "brevo_api_key" => "xkeysib-{hl:64}-{an:16}",
                "shippo_api_token" => "shippo_live_{hl:40}",
                "typeform_pat" => "tfp_{bu:59}",
                "openshift_token" => "sha256~{bu:43}",
                "supabase_pat" => "sbp_{hl:40}",
                "cloudflare_origin_ca_key" => "v1.0-{hl:24}-{hl:146}",
                "alibaba_access_key_id" => "LTAI{an:20}",
                "mapbox_secret_token" => "sk.eyJ1Ijoi{an:50}.{bu:22}",
                "jfrog_api_key" => "AKCp{an:69}",
                "onepassword_service_account_token" => "ops_eyJ{an:300}",
                "adafruit_io_key" => "aio_{an:28}",
                "telegram_bot_token" => "{d:10}:AA{bu:33}",
                "aws_session_token" => "IQoJb3JpZ2luX2Vj{an:300}",
                "lob_api_key" => "live_{hl:35}",
                "bitbucket_app_password" => "ATBB{an:32}",
                _ => return None,
            };
            p(r, spec, "credential_ref")
        }
    };
    Some(s)
}

/// A hard negative: looks like something sensitive, is not. Returns a
/// (JSON key, value) pair.
pub fn hard_negative(r: &mut Rng) -> (&'static str, String) {
    match r.range(0, 27) {
        0 => {
            // Luhn-failing 16-digit number with a card prefix.
            let body = format!("4{}", pattern(r, "{d:14}"));
            let good = with_check_digit(body.clone(), luhn_valid);
            let last = good.as_bytes()[15] - b'0';
            ("order_total_ref", format!("{body}{}", (last + 1) % 10))
        }
        1 => (
            "order_id",
            format!("ORD-{}-{}", r.range(2019, 2026), pattern(r, "{d:6}")),
        ),
        2 => ("order_number", pattern(r, "{d:10}")),
        3 => ("trace_id", uuid(r)),
        4 => ("checksum", pattern(r, "{hl:40}")),
        5 => ("sha256", pattern(r, "{hl:64}")),
        6 => ("etag", pattern(r, "{hl:32}")),
        7 => (
            "created_at",
            format!("{}", r.range(1_500_000_000, 1_800_000_000)),
        ),
        8 => (
            "created_ms",
            format!(
                "{}{:03}",
                r.range(1_500_000_000, 1_800_000_000),
                r.range(0, 999)
            ),
        ),
        9 => (
            "updated",
            format!(
                "2025-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                r.range(1, 12),
                r.range(1, 28),
                r.range(0, 23),
                r.range(0, 59),
                r.range(0, 59)
            ),
        ),
        10 => (
            "version",
            format!("v{}.{}.{}", r.range(0, 12), r.range(0, 40), r.range(0, 99)),
        ),
        11 => (
            "build",
            format!("10.0.{}.{}", r.range(10000, 22999), r.range(1, 999)),
        ),
        12 => {
            let n = r.range(30, 90);
            ("blob", b64_encode(&r.bytes(n)))
        }
        13 => ("example_key", "AKIAIOSFODNN7EXAMPLE".into()),
        14 => (
            "aws_secret_access_key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        ),
        15 => ("stripe_test", "sk_test_4eC39HqLyjWDarjtT1zdp7dc".into()),
        16 => (
            "webhook_doc",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX".into(),
        ),
        17 => ("ref", pattern(r, "ghp_{an:35}")),
        18 => ("ref", pattern(r, "xoxb-{d:4}-{d:4}-{an:10}")),
        19 => ("ref", pattern(r, "AKIA{b32:15}")),
        20 => ("ref", pattern(r, "sk_live_{an:10}")),
        21 => ("ref", pattern(r, "glpat-{bu:12}")),
        22 => ("ref", pattern(r, "npm_{an:20}")),
        23 => (
            "password",
            r.pick(&[
                "changeme",
                "${DB_PASSWORD}",
                "<password>",
                "xxxxxxxxxxxx",
                "********",
                "your-password-here",
            ])
            .to_string(),
        ),
        24 => ("token_type", "Bearer".into()),
        25 => (
            "mac",
            pattern(r, "{hl:2}:{hl:2}:{hl:2}:{hl:2}:{hl:2}:{hl:2}").to_uppercase(),
        ),
        26 => ("account_no", pattern(r, "{d:9}")),
        _ => ("tracking", pattern(r, "{d:12}")),
    }
}
